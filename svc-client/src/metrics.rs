//! OpenTelemetry metrics of service calls (feature `metrics`, on by default).
//!
//! | instrument | kind, unit | attributes |
//! |---|---|---|
//! | `http.client.request.duration` | histogram, `s`, one point per **attempt** | `http.request.method`, `server.address`, `server.port`, `url.scheme`, `http.response.status_code` (when a response came), `error.type` (when it failed), `peer.service` |
//! | `svc.client.calls` | counter, `{call}`, one per **call** | `peer.service`, `http.request.method`, `svc.outcome` = `ok`, `degraded` (circuit open: nothing was sent), `deadline_exceeded` (the request's deadline had passed: nothing was sent, see [`crate::deadline`]) or `error` (an error, or a final 5xx response) |
//! | `svc.client.circuit_breaker.state` | gauge, `{state}` | `peer.service`, `svc.circuit.state` = `closed`, `open`, `half-open`: 1 for the current state, 0 for the others |
//! | `svc.client.circuit_breaker.transitions` | counter, `{transition}` | `peer.service`, `svc.circuit.from`, `svc.circuit.to` |
//! | `svc.server.shed` (the server layer, features `axum`/`grpc`) | counter, `{request}` | `svc.shed.reason` = `expired` or `below_min_budget`: requests answered without running the handler, see `server` |
//! | `svc.client.endpoint.requests` | counter, `{request}`, one per **attempt** of a service with several endpoints | `peer.service`, `svc.endpoint` (`host:port` of the endpoint), `svc.outcome` = `ok` or `error` (the breaker's classification; `ok` for a 4xx) |
//! | `svc.client.endpoint.ejections` | counter, `{ejection}` | `peer.service`, `svc.endpoint` |
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
use opentelemetry::{InstrumentationScope, KeyValue, StringValue, Value, global};
use svc_httpclient::AttemptEnd;
use url::Url;

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
    /// Nothing was sent: the request's deadline had passed.
    DeadlineExceeded,
    Error,
}

impl CallOutcome {
    fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Degraded => "degraded",
            CallOutcome::DeadlineExceeded => "deadline_exceeded",
            CallOutcome::Error => "error",
        }
    }
}

/// The instruments of one client (cheap to clone).
#[derive(Clone)]
pub(crate) struct Instruments {
    service: KeyValue,
    /// `server.address`, `server.port` and `url.scheme` of the service's
    /// base URL, built once: every attempt goes there.
    origin: Arc<Origin>,
    meter: Meter,
    duration: Histogram<f64>,
    calls: Counter<u64>,
    transitions: Counter<u64>,
    endpoint_requests: Counter<u64>,
    ejections: Counter<u64>,
}

struct Origin {
    scheme: String,
    host: Option<Arc<str>>,
    port: Option<u16>,
    attributes: Vec<KeyValue>,
}

impl Origin {
    fn of(url: &Url) -> Origin {
        let host: Option<Arc<str>> = url.host_str().map(Arc::from);
        let port = url.port_or_known_default();
        let mut attributes = Vec::with_capacity(3);
        if let Some(host) = &host {
            attributes.push(KeyValue::new(
                "server.address",
                Value::String(StringValue::from(Arc::clone(host))),
            ));
        }
        if let Some(port) = port {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        attributes.push(KeyValue::new("url.scheme", scheme_value(url.scheme())));
        Origin {
            scheme: url.scheme().to_owned(),
            host,
            port,
            attributes,
        }
    }

    fn matches(&self, url: &Url) -> bool {
        self.scheme == url.scheme()
            && self.host.as_deref() == url.host_str()
            && self.port == url.port_or_known_default()
    }
}

fn scheme_value(scheme: &str) -> Value {
    match scheme {
        "http" => Value::from("http"),
        "https" => Value::from("https"),
        other => Value::from(other.to_owned()),
    }
}

/// The method as an attribute value (`_OTHER` for a non-standard one),
/// without allocating.
fn method_value(method: &http::Method) -> Value {
    use http::Method;
    let name: &'static str = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        // OpenTelemetry HTTP conventions: any other method is `_OTHER`,
        // which also bounds the attribute's cardinality.
        _ => "_OTHER",
    };
    Value::from(name)
}

impl Instruments {
    pub(crate) fn new(service: &str, base_url: &Url, meter: Option<&Meter>) -> Instruments {
        let meter = match meter {
            Some(meter) => meter.clone(),
            None => global::meter_with_scope(
                InstrumentationScope::builder("svc-client")
                    .with_version(env!("CARGO_PKG_VERSION"))
                    .build(),
            ),
        };
        Instruments {
            service: KeyValue::new(
                "peer.service",
                Value::String(StringValue::from(Arc::<str>::from(service))),
            ),
            origin: Arc::new(Origin::of(base_url)),
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
            endpoint_requests: meter
                .u64_counter("svc.client.endpoint.requests")
                .with_unit("{request}")
                .with_description("Attempts per endpoint of a service with several endpoints.")
                .build(),
            ejections: meter
                .u64_counter("svc.client.endpoint.ejections")
                .with_unit("{ejection}")
                .with_description("Endpoints ejected after consecutive failures.")
                .build(),
            meter,
        }
    }

    /// One point of `http.client.request.duration`. The attributes are on
    /// the stack: with no meter provider installed the point goes nowhere,
    /// and a `Vec` would be an allocation per attempt for nothing.
    pub(crate) fn record_attempt(&self, attempt: &AttemptEnd<'_>) {
        let url = attempt.url();
        let other;
        let origin = if self.origin.matches(url) {
            &self.origin.attributes
        } else {
            other = Origin::of(url);
            &other.attributes
        };
        // At most 7: method, the origin's 3, status, error type, service.
        let mut attributes: [KeyValue; 7] = std::array::from_fn(|_| KeyValue::new("", false));
        let mut n = 0;
        let mut push = |kv: KeyValue| {
            attributes[n] = kv;
            n += 1;
        };
        push(KeyValue::new(
            "http.request.method",
            method_value(attempt.method()),
        ));
        for kv in origin.iter().take(3) {
            push(kv.clone());
        }
        if let Some(status) = attempt.status() {
            push(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
        }
        if let Some(error_type) = attempt.error_type() {
            push(KeyValue::new("error.type", error_type.to_owned()));
        }
        push(self.service.clone());
        self.duration
            .record(attempt.duration().as_secs_f64(), &attributes[..n]);
        if let Some(endpoint) = attempt.endpoint() {
            self.record_endpoint(endpoint, attempt);
        }
    }

    /// `svc.client.endpoint.requests` and `.ejections` of an attempt of a
    /// service with several endpoints.
    fn record_endpoint(&self, endpoint: &str, attempt: &AttemptEnd<'_>) {
        let endpoint = KeyValue::new("svc.endpoint", endpoint.to_owned());
        let outcome = if attempt.outcome() == svc_httpclient::Outcome::Failure {
            "error"
        } else {
            "ok"
        };
        self.endpoint_requests.add(
            1,
            &[
                self.service.clone(),
                endpoint.clone(),
                KeyValue::new("svc.outcome", outcome),
            ],
        );
        if attempt.ejected() {
            self.ejections.add(1, &[self.service.clone(), endpoint]);
        }
    }

    /// One increment of `svc.client.calls`.
    pub(crate) fn record_call(&self, method: &http::Method, outcome: CallOutcome) {
        self.calls.add(
            1,
            &[
                self.service.clone(),
                KeyValue::new("http.request.method", method_value(method)),
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
                KeyValue::new("svc.circuit.from", from.as_str()),
                KeyValue::new("svc.circuit.to", to.as_str()),
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
                            KeyValue::new("svc.circuit.state", state.as_str()),
                        ],
                    );
                }
            })
            .build();
    }
}

// ===== gRPC =====

/// The OpenTelemetry RPC convention's buckets for `rpc.client.duration`,
/// in milliseconds.
#[cfg(feature = "grpc")]
const RPC_DURATION_BUCKETS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// `rpc.client.duration` of a gRPC channel: histogram, `ms`, one point per
/// attempt, with `rpc.system`, `rpc.service`, `rpc.method`,
/// `rpc.grpc.status_code` (or `error.type` when no status came),
/// `server.address`, `server.port` and `peer.service`, as the
/// OpenTelemetry RPC conventions (v1.37) name them.
#[cfg(feature = "grpc")]
#[derive(Clone)]
pub(crate) struct RpcDuration {
    histogram: Histogram<f64>,
    /// `rpc.system`, `server.address`, `server.port`, `peer.service`.
    base: Arc<[KeyValue]>,
}

#[cfg(feature = "grpc")]
impl Instruments {
    /// The gRPC duration histogram, from this client's meter.
    pub(crate) fn rpc_duration(&self) -> RpcDuration {
        let mut base = vec![KeyValue::new("rpc.system", "grpc")];
        base.extend(
            self.origin
                .attributes
                .iter()
                .filter(|kv| kv.key.as_str() != "url.scheme")
                .cloned(),
        );
        base.push(self.service.clone());
        RpcDuration {
            histogram: self
                .meter
                .f64_histogram("rpc.client.duration")
                .with_unit("ms")
                .with_description("Duration of outbound gRPC calls (one per attempt).")
                .with_boundaries(RPC_DURATION_BUCKETS.to_vec())
                .build(),
            base: base.into(),
        }
    }
}

#[cfg(feature = "grpc")]
impl RpcDuration {
    /// One point: an attempt of `service`/`method` that took `elapsed` and
    /// ended with status `code`, or without a status for `error_type`.
    pub(crate) fn record(
        &self,
        elapsed: std::time::Duration,
        service: &str,
        method: &str,
        code: Option<i32>,
        error_type: Option<&'static str>,
    ) {
        let mut attributes = Vec::with_capacity(self.base.len() + 3);
        attributes.extend(self.base.iter().cloned());
        attributes.push(KeyValue::new("rpc.service", service.to_owned()));
        attributes.push(KeyValue::new("rpc.method", method.to_owned()));
        if let Some(code) = code {
            attributes.push(KeyValue::new("rpc.grpc.status_code", i64::from(code)));
        }
        if let Some(error_type) = error_type {
            attributes.push(KeyValue::new("error.type", error_type));
        }
        self.histogram
            .record(elapsed.as_secs_f64() * 1000.0, &attributes);
    }
}
