//! One attempt of a gRPC call and the end of the call: what each leaves
//! behind (breaker record, client span, `rpc.client.duration` point; for
//! the call, its `svc.client.calls` point and one log line on failure).
//!
//! The span follows the OpenTelemetry RPC conventions (v1.37, the version
//! the gRPC instrumentations of other languages emit): `otel.kind =
//! "client"`, named `package.Service/Method`, with `rpc.system = "grpc"`,
//! `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, `server.address`,
//! `server.port` and `peer.service`. As those conventions say for client
//! spans, every status other than `OK` sets the span's status to error.

use std::sync::Arc;

use svc_breaker::{Outcome, OwnedPermit};
#[cfg(feature = "metrics")]
use tokio::time::Instant;
use tonic::{Code, Status};
use tracing::Span;
use tracing::field::Empty;

use super::channel::Shared;
use super::classify;
use crate::error::{Error, GrpcProblem};

#[cfg(feature = "metrics")]
use crate::metrics::CallOutcome;

/// One call: the channel and the method called.
pub(crate) struct Call {
    pub(crate) shared: Arc<Shared>,
    /// `/package.Service/Method`.
    pub(crate) path: Box<str>,
}

/// How an attempt (and so maybe the call) ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum End {
    /// The service's status.
    Status(Code),
    /// No status from the service.
    Failed(GrpcProblem),
}

impl End {
    /// The code the caller sees.
    fn code(self) -> Option<Code> {
        match self {
            End::Status(code) => Some(code),
            End::Failed(GrpcProblem::Timeout | GrpcProblem::DeadlineExceeded) => {
                Some(Code::DeadlineExceeded)
            }
            End::Failed(GrpcProblem::Connect | GrpcProblem::Transport) => Some(Code::Unavailable),
            End::Failed(GrpcProblem::CircuitOpen(_)) => None,
        }
    }

    fn error_type(self) -> Option<&'static str> {
        match self {
            End::Status(_) => None,
            End::Failed(GrpcProblem::Timeout) => Some("timeout"),
            End::Failed(GrpcProblem::DeadlineExceeded) => Some("deadline_exceeded"),
            End::Failed(GrpcProblem::Connect) => Some("connect"),
            End::Failed(GrpcProblem::Transport) => Some("transport"),
            End::Failed(GrpcProblem::CircuitOpen(_)) => Some("circuit_open"),
        }
    }

    pub(crate) fn outcome(self) -> Outcome {
        match self {
            End::Status(code) => classify::outcome(code),
            // The caller's budget ran out, the service is not at fault
            // (crate::deadline).
            End::Failed(GrpcProblem::DeadlineExceeded) => Outcome::Ignored,
            End::Failed(_) => Outcome::Failure,
        }
    }
}

// ===== impl Call =====

impl Call {
    /// The status the caller gets for a failure of ours, with the
    /// facade's error as its source ([`Error::from_status`]).
    pub(crate) fn status(
        &self,
        problem: GrpcProblem,
        attempts: u32,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Status {
        let err = Error::grpc(problem, &self.path, attempts, source)
            .with_service(&self.shared.client.inner.service);
        let mut status = match problem {
            GrpcProblem::Timeout | GrpcProblem::DeadlineExceeded => {
                Status::deadline_exceeded(err.to_string())
            }
            GrpcProblem::CircuitOpen(open) => {
                let mut status = Status::unavailable(err.to_string());
                let ms = u64::try_from(open.retry_after().as_millis()).unwrap_or(u64::MAX);
                if let Ok(value) = ms.to_string().parse() {
                    status
                        .metadata_mut()
                        .insert("grpc-retry-pushback-ms", value);
                }
                status
            }
            GrpcProblem::Connect | GrpcProblem::Transport => Status::unavailable(err.to_string()),
        };
        status.set_source(Arc::new(err));
        status
    }

    /// Records the end of the call: its `svc.client.calls` point and, when
    /// it failed, one log line.
    pub(crate) fn finish(&self, end: End, attempts: u32) {
        let service = &*self.shared.client.inner.service;
        let rpc = &*self.path;
        let rejected = matches!(end, End::Failed(GrpcProblem::CircuitOpen(_))) && attempts == 0;
        let out_of_time =
            matches!(end, End::Failed(GrpcProblem::DeadlineExceeded)) && attempts == 0;
        let failed = end.outcome() == Outcome::Failure || matches!(end, End::Failed(_));
        #[cfg(feature = "metrics")]
        self.shared.client.inner.instruments.record_call(
            &http::Method::POST,
            if rejected {
                CallOutcome::Degraded
            } else if out_of_time {
                CallOutcome::DeadlineExceeded
            } else if failed {
                CallOutcome::Error
            } else {
                CallOutcome::Ok
            },
        );
        let code = end.code().map(|c| i64::from(i32::from(c)));
        let error_type = end.error_type();
        if rejected {
            tracing::debug!(
                target: "svc_client",
                service,
                rpc,
                attempts,
                "service call rejected: circuit open"
            );
        } else if out_of_time {
            tracing::debug!(
                target: "svc_client",
                service,
                rpc,
                attempts,
                "service call rejected: deadline exceeded"
            );
        } else if failed {
            tracing::warn!(
                target: "svc_client",
                service,
                rpc,
                attempts,
                code,
                error_type,
                "service call failed"
            );
        }
    }
}

/// One attempt, from its request to its status. Dropped before its status
/// is known, it is a cancellation: the breaker permit is released with no
/// effect.
pub(crate) struct Attempt {
    call: Arc<Call>,
    permit: Option<OwnedPermit>,
    span: Span,
    #[cfg(feature = "metrics")]
    started: Instant,
    /// The attempts of the call so far, this one included.
    number: u32,
    finished: bool,
}

impl Attempt {
    /// Starts the `number`-th attempt of `call` (1 for the first), its
    /// span a child of `parent`.
    pub(crate) fn start(
        call: &Arc<Call>,
        parent: &Span,
        permit: Option<OwnedPermit>,
        number: u32,
    ) -> Attempt {
        let shared = &call.shared;
        let (service, method) = classify::rpc_names(&call.path);
        let name = call.path.strip_prefix('/').unwrap_or(&call.path);
        let span = tracing::info_span!(
            target: "svc_client",
            parent: parent,
            "gRPC",
            "otel.kind" = "client",
            "otel.name" = name,
            "otel.status_code" = Empty,
            "rpc.system" = "grpc",
            "rpc.service" = service,
            "rpc.method" = method,
            "rpc.grpc.status_code" = Empty,
            "server.address" = &*shared.server_address,
            "server.port" = i64::from(shared.server_port),
            "peer.service" = &*shared.client.inner.service,
            "error.type" = Empty,
            "svc.attempt" = i64::from(number),
        );
        Attempt {
            call: Arc::clone(call),
            permit,
            span,
            #[cfg(feature = "metrics")]
            started: Instant::now(),
            number,
            finished: false,
        }
    }

    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Records how the attempt ended: breaker, span, duration metric.
    pub(crate) fn finish(&mut self, end: End) {
        self.finished = true;
        if let Some(permit) = self.permit.take() {
            permit.record(end.outcome());
        }
        self.record(end.code(), end.error_type());
    }

    /// Records the end of the call that this attempt ends.
    pub(crate) fn finish_call(&self, end: End) {
        self.call.finish(end, self.number);
    }

    /// The status of a call whose deadline passed during this attempt.
    pub(crate) fn timed_out(&self) -> Status {
        self.call.status(GrpcProblem::Timeout, self.number, None)
    }

    fn record(&mut self, code: Option<Code>, error_type: Option<&'static str>) {
        let span = std::mem::replace(&mut self.span, Span::none());
        if let Some(code) = code {
            span.record("rpc.grpc.status_code", i64::from(i32::from(code)));
            if code != Code::Ok {
                span.record("otel.status_code", "ERROR");
            }
        }
        if let Some(error_type) = error_type {
            span.record("error.type", error_type);
        }
        // The span ends here, when the attempt's status is known.
        drop(span);
        #[cfg(feature = "metrics")]
        {
            let (service, method) = classify::rpc_names(&self.call.path);
            self.call.shared.rpc_duration.record(
                self.started.elapsed(),
                service,
                method,
                code.map(i32::from),
                error_type,
            );
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.finished {
            // Cancelled by the caller: the permit drops with no effect on
            // the breaker; the span and the metric say CANCELLED, as gRPC
            // clients report it.
            self.permit = None;
            self.record(Some(Code::Cancelled), None);
        }
    }
}
