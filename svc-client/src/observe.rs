//! What a call leaves behind: the trace context it sends, and the one log
//! line, metric point and span status of its end.
//!
//! The three always agree (the table is in the crate docs, "Outcomes"): a
//! call that reached the service and failed is a failure everywhere, a call
//! the open circuit rejected before sending anything is a fail-fast
//! rejection everywhere.

use svc_httpclient::{AttemptEnd, AttemptObserver, AttemptStart};
use tracing::Span;

use crate::client::Shared;
use crate::error::Error;
use crate::{Method, State, StatusCode, reqwest};

#[cfg(feature = "metrics")]
use crate::metrics::{CallOutcome, Instruments};

/// Injects the trace context of the nearest recorded span into every
/// attempt and records the attempt's duration.
pub(crate) struct FacadeObserver {
    #[cfg(feature = "metrics")]
    pub(crate) instruments: Instruments,
}

impl AttemptObserver for FacadeObserver {
    fn on_attempt_start(&self, request: &mut reqwest::Request, attempt: &AttemptStart<'_>) {
        crate::trace::inject_nearest(attempt.span(), attempt.parent(), request.headers_mut());
    }

    fn on_attempt_end(&self, attempt: &AttemptEnd<'_>) {
        #[cfg(feature = "metrics")]
        self.instruments.record_attempt(attempt);
        #[cfg(not(feature = "metrics"))]
        let _ = attempt;
    }
}

pub(crate) fn log_transition(service: &str, from: State, to: State) {
    let (from, to) = (from.as_str(), to.as_str());
    if to == "open" {
        tracing::warn!(target: "svc_client", service, from, to, "circuit breaker opened: calls fail fast");
    } else {
        tracing::info!(target: "svc_client", service, from, to, "circuit breaker state changed");
    }
}

/// Records the end of a call on its span, in the metrics and (on failure)
/// in one log line. The three always agree; see "Outcomes" in the crate
/// docs for the table.
pub(crate) fn finish<R>(
    shared: &Shared,
    span: &Span,
    method: &Method,
    path: &str,
    result: Result<R, Error>,
    status: impl FnOnce(&R) -> StatusCode,
) -> Result<R, Error> {
    match result {
        Ok(resp) => {
            let status = status(&resp);
            span.record("http.response.status_code", i64::from(status.as_u16()));
            // A final 5xx or 429 is a failed call (the breaker counts it as
            // one) even though it is not an `Err`.
            let failed = is_failure_status(status);
            if failed {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", status.as_str());
                log_failed_response(shared, method, path, status);
            }
            #[cfg(feature = "metrics")]
            shared.instruments.record_call(
                method,
                if failed {
                    CallOutcome::Error
                } else {
                    CallOutcome::Ok
                },
            );
            Ok(resp)
        }
        Err(err) => {
            let err = err.with_service(&shared.service);
            span.record("otel.status_code", "ERROR");
            span.record("error.type", &*err.error_type());
            if let Some(status) = err.status() {
                span.record("http.response.status_code", i64::from(status.as_u16()));
            }
            #[cfg(feature = "metrics")]
            shared.instruments.record_call(
                method,
                if err.is_rejection() {
                    CallOutcome::Degraded
                } else if err.is_deadline_rejection() {
                    CallOutcome::DeadlineExceeded
                } else {
                    CallOutcome::Error
                },
            );
            log_failure(shared, method, path, &err);
            Err(err)
        }
    }
}

/// What the breaker counts as a failure among final responses.
fn is_failure_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// The one log line of a failed call. A fail-fast rejection (nothing sent)
/// is the breaker doing its job and would flood the log during an outage
/// (the transition to open is logged at `warn`), so it is `debug`; so is
/// a call the request's deadline left no time for.
fn log_failure(shared: &Shared, method: &Method, path: &str, err: &Error) {
    // One event shape at two levels (`tracing` levels are static).
    macro_rules! call_event {
        ($level:expr, $message:literal) => {
            tracing::event!(
                target: "svc_client",
                $level,
                service = &*shared.service,
                method = method.as_str(),
                path,
                attempts = err.attempts(),
                cause = svc_httpclient::error_chain(err),
                $message,
            )
        };
    }
    if err.is_rejection() {
        call_event!(tracing::Level::DEBUG, "service call rejected: circuit open");
    } else if err.is_deadline_rejection() {
        // The caller's budget ran out before the call: this service's
        // caller gave up, nothing is wrong with the service called.
        call_event!(
            tracing::Level::DEBUG,
            "service call rejected: deadline exceeded"
        );
    } else {
        call_event!(tracing::Level::WARN, "service call failed");
    }
}

/// The one log line of a call whose last response was a failure (5xx or
/// 429): the caller gets the response, but the call failed.
fn log_failed_response(shared: &Shared, method: &Method, path: &str, status: StatusCode) {
    tracing::warn!(
        target: "svc_client",
        service = &*shared.service,
        method = method.as_str(),
        path,
        status = status.as_u16(),
        "service call failed",
    );
}
