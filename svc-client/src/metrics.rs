//! OpenTelemetry metrics of service calls (feature `metrics`, on by default).
//!
//! | instrument | kind, unit | attributes |
//! |---|---|---|
//! | `http.client.request.duration` | histogram, `s`, one point per **attempt** | `http.request.method`, `server.address`, `server.port`, `url.scheme`, `http.response.status_code` (when a response came), `error.type` (when it failed), `peer.service` |
//! | `svc.client.calls` | counter, `{call}`, one per **call** | `peer.service`, `http.request.method`, `svc.outcome` = `ok`, `degraded` (circuit open: nothing was sent) or `error` (an error, or a final 5xx response) |
//! | `svc.client.circuit_breaker.state` | gauge, `{state}` | `peer.service`, `svc.circuit.state` = `closed`, `open`, `half-open`: 1 for the current state, 0 for the others |
//! | `svc.client.circuit_breaker.transitions` | counter, `{transition}` | `peer.service`, `svc.circuit.from`, `svc.circuit.to` |
//!
//! The duration histogram follows the OpenTelemetry HTTP client semantic
//! conventions, bucket boundaries included, so dashboards built for other
//! instrumented clients work unchanged. Per attempt rather than per call:
//! retries are exactly what a latency dashboard must show.
//!
//! Instruments come from the [`Meter`] given to
//! [`ClientConfig::meter`](crate::ClientConfig::meter), or else from the
//! global meter provider (scope `svc-client`) **when the client is
//! created**: install the provider before creating clients. Each client
//! registers one state-gauge callback, which holds the client weakly and
//! reports nothing once it is dropped (one more reason to create clients at
//! startup, not per request).

use std::sync::{Arc, Weak};

use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::{InstrumentationScope, KeyValue, global};
use svc_httpclient::AttemptEnd;

use crate::{CircuitBreaker, State};

/// The OpenTelemetry semantic-convention buckets for
/// `http.client.request.duration`.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// How a call ended, for `svc.client.calls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallOutcome {
    Ok,
    Degraded,
    Error,
}

impl CallOutcome {
    fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Degraded => "degraded",
            CallOutcome::Error => "error",
        }
    }
}

/// The instruments of one client (cheap to clone).
#[derive(Clone)]
pub(crate) struct Instruments {
    service: KeyValue,
    meter: Meter,
    duration: Histogram<f64>,
    calls: Counter<u64>,
    transitions: Counter<u64>,
}

impl Instruments {
    pub(crate) fn new(service: &str, meter: Option<&Meter>) -> Instruments {
        let meter = match meter {
            Some(meter) => meter.clone(),
            None => global::meter_with_scope(
                InstrumentationScope::builder("svc-client")
                    .with_version(env!("CARGO_PKG_VERSION"))
                    .build(),
            ),
        };
        Instruments {
            service: KeyValue::new("peer.service", service.to_owned()),
            duration: meter
                .f64_histogram("http.client.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP client requests (one per attempt).")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            calls: meter
                .u64_counter("svc.client.calls")
                .with_unit("{call}")
                .with_description(
                    "Calls to a service by outcome: ok, degraded (circuit open) or error.",
                )
                .build(),
            transitions: meter
                .u64_counter("svc.client.circuit_breaker.transitions")
                .with_unit("{transition}")
                .with_description("Circuit breaker state transitions.")
                .build(),
            meter,
        }
    }

    /// One point of `http.client.request.duration`.
    pub(crate) fn record_attempt(&self, attempt: &AttemptEnd<'_>) {
        let url = attempt.url();
        let mut attributes = Vec::with_capacity(7);
        attributes.push(KeyValue::new(
            "http.request.method",
            attempt.method().as_str().to_owned(),
        ));
        if let Some(host) = url.host_str() {
            attributes.push(KeyValue::new("server.address", host.to_owned()));
        }
        if let Some(port) = url.port_or_known_default() {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        attributes.push(KeyValue::new("url.scheme", url.scheme().to_owned()));
        if let Some(status) = attempt.status() {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
        }
        if let Some(error_type) = attempt.error_type() {
            attributes.push(KeyValue::new("error.type", error_type.to_owned()));
        }
        attributes.push(self.service.clone());
        self.duration
            .record(attempt.duration().as_secs_f64(), &attributes);
    }

    /// One increment of `svc.client.calls`.
    pub(crate) fn record_call(&self, method: &http::Method, outcome: CallOutcome) {
        self.calls.add(
            1,
            &[
                self.service.clone(),
                KeyValue::new("http.request.method", method.as_str().to_owned()),
                KeyValue::new("svc.outcome", outcome.as_str()),
            ],
        );
    }

    /// One increment of `svc.client.circuit_breaker.transitions`.
    pub(crate) fn record_transition(&self, from: State, to: State) {
        self.transitions.add(
            1,
            &[
                self.service.clone(),
                KeyValue::new("svc.circuit.from", crate::state_str(from)),
                KeyValue::new("svc.circuit.to", crate::state_str(to)),
            ],
        );
    }

    /// Registers the `svc.client.circuit_breaker.state` gauge of `breaker`.
    /// The callback holds the breaker weakly: once the client is dropped it
    /// reports nothing.
    pub(crate) fn observe_state<T>(
        &self,
        owner: &Arc<T>,
        breaker: fn(&T) -> Option<&CircuitBreaker>,
    ) where
        T: Send + Sync + 'static,
    {
        let owner: Weak<T> = Arc::downgrade(owner);
        let service = self.service.clone();
        let _gauge = self
            .meter
            .i64_observable_gauge("svc.client.circuit_breaker.state")
            .with_unit("{state}")
            .with_description("Circuit breaker state: 1 for the current state, 0 for the others.")
            .with_callback(move |observer| {
                let Some(owner) = owner.upgrade() else {
                    return;
                };
                let Some(breaker) = breaker(&owner) else {
                    return;
                };
                let current = breaker.state();
                for state in [State::Closed, State::Open, State::HalfOpen] {
                    observer.observe(
                        i64::from(state == current),
                        &[
                            service.clone(),
                            KeyValue::new("svc.circuit.state", crate::state_str(state)),
                        ],
                    );
                }
            })
            .build();
    }
}
