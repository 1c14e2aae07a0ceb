//! One call, from its first attempt to its result: the loop that carries
//! out the pipeline's decisions, and the one place that builds its errors.
//!
//! ```text
//! call ─ deadline (timeout) ─┬─ retry loop: budget, classify, backoff / Retry-After
//!                            └─ breaker of the origin ─ one attempt (min(attempt_timeout, remaining))
//! ```
//!
//! Each step has its module: [`crate::attempt`] sends one attempt and
//! classifies it, [`crate::retry`] decides whether and when to try again,
//! [`crate::span`] and the [observers](crate::AttemptObserver) report it.
//! This module only sequences them, as tower's `retry::future` sequences
//! its `Policy`.
//!
//! The breaker sees every attempt, not every call: three failed attempts are
//! three failures, because each one reached (or failed to reach) the
//! server. A call the caller drops mid-attempt drops the breaker permit,
//! which counts as no effect and frees a half-open trial slot, so
//! cancellation can never wedge the breaker.
//!
//! Every error of a call says what the caller needs to act on it: the
//! method, the URL (credentials stripped), how many attempts were sent and
//! the last status received. [`Call`] carries those as the call goes and
//! builds each error from them ([`Call::error`]), so no exit of the loop
//! can forget one.

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, Response, StatusCode};
use tokio::time::Instant;
use tracing::Span;
use url::Url;

use crate::attempt::Attempt;
use crate::client::{Client, RootsMissing};
use crate::error::{Error, Kind};
use crate::observe::{AttemptEnd, AttemptStart};
use crate::origin::Origin;
use crate::request::CallOptions;
use crate::retry::{Next, Policy};
use crate::span::{Scope, attempt_span, in_span, record_end};
use crate::{CircuitOpen, Outcome};

/// What the errors and log events of one call need to know about it.
pub(crate) struct Call<'a> {
    method: Method,
    /// The request's URL without credentials.
    url: Url,
    /// Attempts sent so far.
    sent: u32,
    /// The status of the last response head received, if any.
    last_status: Option<StatusCode>,
    scope: Scope<'a>,
    log_failures: bool,
}

/// A deadline too far away to compute (`Instant` overflow) is a year away.
const FAR_FUTURE: Duration = Duration::from_secs(60 * 60 * 24 * 365);

// ===== impl Call =====

impl Call<'_> {
    /// An error of this call: `kind`, with the call's method, URL,
    /// attempts and last status.
    pub(crate) fn error(&self, kind: Kind) -> Error {
        Error::new(kind)
            .with_method(self.method.clone())
            .with_clean_url(self.url.clone())
            .with_attempts(self.sent)
            .with_status(self.last_status)
    }

    /// Logs the failed call once (unless `log_failures` is off), and hands
    /// its error back. `origin` is `None` when the call failed before it
    /// got to its origin's state.
    fn failed(&self, err: Error, origin: Option<&Origin>) -> Error {
        if self.log_failures {
            self.scope.call_failed(&err, origin.map(|o| &*o.key));
        }
        err
    }

    /// Logs a call that returns a failed response (5xx, 429) because of
    /// `why`.
    fn response_failed(&self, status: StatusCode, why: &str) {
        if self.log_failures {
            self.scope
                .response_failed(&self.method, &self.url, self.sent, status, why);
        }
    }
}

/// The whole call: deadline, retry loop, breaker, attempts. The attempt
/// spans and the call's events are children of `parent` when given (it
/// need not be entered), else of the current span.
pub(crate) async fn run(
    client: &Client,
    mut request: reqwest::Request,
    opts: CallOptions,
    parent: Option<&Span>,
) -> Result<(Response, Option<Bytes>), Error> {
    let config = client.config();
    let start = Instant::now();
    let timeout = opts.timeout.unwrap_or(config.timeout);
    let deadline = start
        .checked_add(timeout)
        .unwrap_or_else(|| start + FAR_FUTURE);
    client.prepare(&mut request);
    let mut call = Call {
        method: request.method().clone(),
        url: svc_discovery::strip_userinfo(request.url()).into_owned(),
        sent: 0,
        last_status: None,
        scope: Scope(parent),
        log_failures: config.log_failures,
    };
    if let Some(missing) = client.roots_missing()
        && call.url.scheme() == "https"
    {
        let err = call
            .error(Kind::TlsRoots)
            .with_source(RootsMissing::clone(missing));
        return Err(call.failed(err, None));
    }
    let origin = client.origin(request.url(), start);
    let policy = Policy::new(config, &request, &opts, deadline);
    if let Some(budget) = &origin.budget {
        budget.deposit();
    }

    let mut template = Some(request);
    loop {
        let permit = match &origin.breaker {
            Some(breaker) => match breaker.try_acquire() {
                Ok(permit) => Some(permit),
                Err(open) => {
                    let err = call.error(Kind::CircuitOpen(open));
                    return Err(call.failed(err, Some(&origin)));
                }
            },
            None => None,
        };
        let attempt_start = Instant::now();
        let remaining = deadline.saturating_duration_since(attempt_start);
        if remaining.is_zero() {
            return Err(call.failed(call.error(Kind::Timeout), Some(&origin)));
        }
        let limit = config.attempt_timeout.min(remaining);
        let next_request = if call.sent + 1 < policy.max_attempts {
            template.as_ref().and_then(reqwest::Request::try_clone)
        } else {
            template.take()
        };
        let Some(mut req) = next_request else {
            // Unreachable: a body that cannot be cloned gets one attempt.
            return Err(call.failed(call.error(Kind::Request), Some(&origin)));
        };
        // One timer per attempt, reqwest's own: it bounds the attempt from
        // connecting to the end of the response body, so reading the body
        // of the returned response stays within the attempt's limit too.
        // (A second, tokio, timer would double the cost of the pipeline on
        // a healthy call.)
        *req.timeout_mut() = Some(limit);

        let resend_count = call.sent;
        call.sent += 1;
        let span = &attempt_span(
            parent,
            &call.method,
            &call.url,
            resend_count,
            config.peer_service.as_deref(),
        );
        let started = AttemptStart {
            resend_count,
            span,
            parent,
        };
        // Everything about the attempt, the observer's end hook included,
        // runs in its last poll, inside the span: no extra enter and exit
        // of the span (costly under OpenTelemetry).
        let (attempt, outcome, next) = in_span(span, async {
            if let Some(observer) = &config.observer {
                observer.on_attempt_start(&mut req, &started);
            }
            let attempt = Attempt::send(client.http(), req, opts.read_body, limit, remaining).await;
            let status = attempt.status();
            let outcome = attempt.outcome();
            if let Some(permit) = permit {
                permit.record(outcome);
            }
            if status.is_some() {
                call.last_status = status;
            }
            let next = policy.next(&attempt, &origin, call.sent);
            let error_type = attempt.error_type(&status);
            record_end(span, status, error_type);
            if let Some(observer) = &config.observer {
                observer.on_attempt_end(&AttemptEnd {
                    method: &call.method,
                    url: &call.url,
                    resend_count,
                    status,
                    error_type,
                    duration: attempt_start.elapsed(),
                    outcome,
                    will_retry: matches!(next, Next::Retry(_)),
                });
            }
            (attempt, outcome, next)
        })
        .await;

        match (next, attempt) {
            (Next::Retry(wait), attempt) => {
                let status = attempt.status();
                let reason = attempt.error_type(&status);
                call.scope
                    .retrying(&call.method, &call.url, call.sent, reason, wait);
                // Release the connection before sleeping.
                drop(attempt);
                tokio::time::sleep(wait).await;
            }
            (Next::Return(why), Attempt::Response(resp, body)) => {
                if outcome == Outcome::Failure {
                    call.response_failed(resp.status(), why);
                }
                return Ok((resp, body));
            }
            (Next::Return(_), Attempt::Failed(failure)) => {
                let err = failure.into_error(&call);
                return Err(call.failed(err, Some(&origin)));
            }
            (Next::CircuitOpen(open), attempt) => {
                let err = circuit_opened(&call, open, attempt);
                return Err(call.failed(err, Some(&origin)));
            }
            (Next::BudgetExhausted, Attempt::Response(resp, body)) => {
                call.response_failed(resp.status(), "retry budget exhausted");
                return Ok((resp, body));
            }
            (Next::BudgetExhausted, Attempt::Failed(failure)) => {
                let source = failure.into_error(&call);
                let err = call.error(Kind::BudgetExhausted).with_source(source);
                return Err(call.failed(err, Some(&origin)));
            }
        }
    }
}

/// The error of a call whose breaker opened after `attempt`. The last
/// failure is the cause, so `is_timeout()` or `is_connect()` answer for it
/// too.
fn circuit_opened(call: &Call<'_>, open: CircuitOpen, attempt: Attempt) -> Error {
    let err = call.error(Kind::CircuitOpen(open));
    match attempt {
        Attempt::Failed(failure) => err.with_source(failure.into_error(call)),
        Attempt::Response(..) => err,
    }
}
