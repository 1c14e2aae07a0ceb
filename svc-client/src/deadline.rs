//! The current request's deadline: what is left of the budget the caller
//! gave this service, carried across hops.
//!
//! A user request has one budget. If the edge gives up after 300 ms, every
//! service behind it should stop working for that request after 300 ms,
//! not each restart the clock with its own 30 s timeout.
//! [`server::layer()`](crate::server::layer) reads the caller's
//! budget when a request arrives and keeps its deadline for the request;
//! every [`Client`](crate::Client) and
//! [`grpc::Channel`](crate::grpc::Channel) call made while
//! handling it is bound by it and sends what is left downstream.
//!
//! ```
//! use std::time::Duration;
//!
//! async fn handler() -> &'static str {
//!     match svc_client::deadline::remaining() {
//!         Some(left) if left < Duration::from_millis(50) => "too little time: the cheap answer",
//!         _ => "the full answer",
//!     }
//! }
//! # let _ = handler;
//! ```
//!
//! # On the wire
//!
//! A budget travels as a **relative** duration, never as a timestamp: the
//! hosts' clocks need not agree (the same choice as gRPC's `grpc-timeout`
//! and Envoy's `x-envoy-expected-rq-timeout-ms`). The server layer reads:
//!
//! | header | format | written by |
//! |---|---|---|
//! | [`svc-timeout-ms`](HEADER) | whole milliseconds, `1*20DIGIT` | svc's clients, on every HTTP attempt |
//! | `grpc-timeout` | gRPC's `1*8DIGIT` and a unit `H M S m u n` | gRPC clients ([`grpc::Channel`](crate::grpc::Channel), tonic, grpc-go...) |
//! | `x-envoy-expected-rq-timeout-ms` | whole milliseconds | Envoy (and Istio) in front of the service |
//!
//! svc's own header is `svc-timeout-ms`: milliseconds (the precision an
//! HTTP hop needs, and what Envoy uses; no unit to parse), no `X-` prefix
//! (RFC 6648), and the unit in the name so that nobody reads it as
//! seconds. Each attempt sends its own budget, `min(attempt_timeout,
//! remaining - margin)`, rounded down so that the service never believes it
//! has more time than its caller will wait.
//!
//! **Precedence**: when several headers are present, the smallest valid
//! budget wins (each is a promise by someone on the path that the answer
//! is useless after it). **Caps**: a budget larger than the layer's
//! [`max_budget`](crate::server::ServerLayer::max_budget) (default 30 s, the
//! clients' default timeout) is cut to it, so a peer cannot make this
//! service hold work for days.
//!
//! **Bad input** from a peer never panics and never becomes a zero budget
//! (which would shed every request): a value that is malformed (not
//! digits, a sign, a fraction, a unit that is not gRPC's), too large to
//! represent, or a header sent twice, is ignored with a `debug` event
//! naming the header, as if it were absent. Envoy's `0` means "no timeout"
//! in Envoy and is ignored too; `svc-timeout-ms: 0` and `grpc-timeout: 0m`
//! are budgets that have run out.
//!
//! # The server side
//!
//! `server::layer()` (features `axum` or `grpc`) keeps the deadline
//! (`arrival + budget`) in a tokio task-local around every poll of the
//! handler's future, and around the handler's synchronous part: the
//! handler and everything it awaits see it through [`remaining()`] and
//! [`current()`]. A request that arrives with no budget left (or less than
//! the layer's `min_budget`) is answered `504 Gateway Timeout` (gRPC:
//! `DEADLINE_EXCEEDED`) without running the handler; a handler still
//! running at the deadline is dropped and answered the same way (see the
//! `server` module).
//!
//! # What sees the deadline
//!
//! The deadline lives in the request's task, so:
//!
//! - **seen**: the handler, every future it awaits (`join!`, `select!`,
//!   a `Client` call), and anything polled from inside it;
//! - **not seen**: a task started with `tokio::spawn` or
//!   `tokio::task::spawn_blocking`, or a thread: task-locals are not
//!   inherited; nor a streaming response body, which the server polls
//!   after the handler has returned its response head. Carry it explicitly with [`propagate`] (or [`scope`] with a
//!   deadline of your choice), or read [`current()`] before spawning:
//!
//! ```
//! # async fn handler() {
//! // The spawned task's calls end when the request's budget does.
//! let job = tokio::spawn(svc_client::deadline::propagate(async {
//!     assert_eq!(svc_client::deadline::remaining(), None); // none here: no request
//! }));
//! # job.await.unwrap();
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(handler());
//! ```
//!
//! Work that must outlive the request (a write-behind, a cache refresh)
//! should not carry it: spawn it without [`propagate`], or build its
//! client with [`ClientConfig::propagate_deadline(false)`](crate::ClientConfig::propagate_deadline).
//!
//! # The client side
//!
//! With [`ClientConfig::propagate_deadline`](crate::ClientConfig::propagate_deadline)
//! on (the default), a call of a [`Client`](crate::Client) or of a
//! `grpc::Channel` (feature `grpc`) made under a deadline runs with
//! `min(its own timeout, remaining - deadline_margin)`
//! ([`deadline_margin`](crate::ClientConfig::deadline_margin), default
//! 5 ms), sends each attempt's budget (`svc-timeout-ms`, or
//! `grpc-timeout`), never starts a backoff that would end past the
//! deadline, and with nothing left fails at once with
//! [`Error::is_deadline_exceeded`](crate::Error::is_deadline_exceeded): no
//! I/O, no breaker permit, a `debug` event, one `svc.client.calls` point
//! with `svc.outcome = "deadline_exceeded"`. A call that the propagated
//! deadline cuts short mid-flight is `is_deadline_exceeded()` and
//! `is_timeout()`, and is not a breaker failure of the service: it was
//! given the caller's last milliseconds, it is not at fault for missing
//! them. The time also bounds calls made outside any server, under a
//! [`scope`] of your own.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    /// The deadline of the request being handled by this task.
    static DEADLINE: Option<Instant>;
}

/// The name of svc's own budget header: the time the caller will wait,
/// in whole milliseconds (see the [module docs](self)).
///
/// ```
/// assert_eq!(svc_client::deadline::HEADER, "svc-timeout-ms");
/// ```
pub const HEADER: &str = "svc-timeout-ms";

/// [`HEADER`] as a header name, for the attempts.
pub(crate) static HEADER_NAME: http::HeaderName = http::HeaderName::from_static(HEADER);

/// Envoy's budget header.
#[cfg_attr(not(any(feature = "axum", feature = "grpc")), allow(dead_code))]
pub(crate) const ENVOY_HEADER: &str = "x-envoy-expected-rq-timeout-ms";

/// What is left of the current request's budget: `None` outside a request
/// with a budget (no [`server::layer()`](crate::server::layer), no
/// deadline header, or a task that does not carry it, see the [module
/// docs](self)), `Some(Duration::ZERO)` once it has passed.
///
/// ```
/// use std::time::Duration;
/// use svc_client::deadline;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// assert_eq!(deadline::remaining(), None);
/// let at = tokio::time::Instant::now() + Duration::from_millis(100);
/// deadline::scope(at, async {
///     assert!(deadline::remaining().unwrap() <= Duration::from_millis(100));
/// })
/// .await;
/// # });
/// ```
pub fn remaining() -> Option<Duration> {
    current().map(|at| at.saturating_duration_since(Instant::now()))
}

/// The current request's deadline (a tokio `Instant`, so paused test time
/// applies), `None` outside a request with a budget.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|at| *at).ok().flatten()
}

/// Runs `future` (any `IntoFuture`: a request builder too) with
/// `deadline` as its request's deadline (replacing the
/// current one, if any, while `future` runs): [`remaining()`] inside it
/// counts down to `deadline`, and the calls it makes end by it. For a
/// task spawned on the request's behalf with a deadline of its own, or to
/// give a background job a budget.
///
/// ```
/// use std::time::Duration;
/// use svc_client::deadline;
///
/// # async fn run() {
/// // At most 200 ms for this batch, whoever asked.
/// let at = tokio::time::Instant::now() + Duration::from_millis(200);
/// deadline::scope(at, async { /* calls end by `at` */ }).await;
/// # }
/// ```
pub fn scope<F: IntoFuture>(deadline: Instant, future: F) -> impl Future<Output = F::Output> {
    DEADLINE.scope(Some(deadline), future.into_future())
}

/// Runs `future` with the current request's deadline (or none, when there
/// is none): wrap what you `tokio::spawn` on the request's behalf, since a
/// spawned task does not inherit it (see the [module docs](self)).
///
/// ```
/// # async fn run(client: svc_client::Client) {
/// let audit = tokio::spawn(svc_client::deadline::propagate(async move {
///     let _ = client.post("/audit", &"login").await;
/// }));
/// # let _ = audit;
/// # }
/// ```
pub fn propagate<F: IntoFuture>(future: F) -> impl Future<Output = F::Output> {
    DEADLINE.scope(current(), future.into_future())
}

/// Runs `f` (a poll of the request's future) with `deadline` as the
/// request's deadline.
#[cfg_attr(not(any(feature = "axum", feature = "grpc")), allow(dead_code))]
pub(crate) fn sync_scope<R>(deadline: Instant, f: impl FnOnce() -> R) -> R {
    DEADLINE.sync_scope(Some(deadline), f)
}

/// The deadline a call made now should end by (the current one less
/// `margin`), when the client propagates deadlines. `Some(now)` or earlier
/// when nothing is left.
pub(crate) fn for_call(propagate: bool, margin: Duration) -> Option<Instant> {
    if !propagate {
        return None;
    }
    let at = current()?;
    // An `Instant` before the runtime's start cannot underflow in practice;
    // if it did, the deadline has passed.
    Some(at.checked_sub(margin).unwrap_or_else(Instant::now))
}

// ===== parsing (the server side) =====

#[cfg(any(feature = "axum", feature = "grpc"))]
pub(crate) use parse::budget;

#[cfg(any(feature = "axum", feature = "grpc"))]
mod parse {
    use std::fmt;
    use std::time::Duration;

    use http::{HeaderMap, HeaderValue};

    use crate::grpc_timeout;

    /// The most digits of a millisecond header: `u64::MAX` has 20.
    const MAX_MILLIS_DIGITS: usize = 20;

    /// Why a budget header was ignored.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Problem {
        /// Not `1*20DIGIT` (a sign, a fraction, a space, a unit...).
        Malformed,
        /// More than a `u64` of milliseconds.
        TooLarge,
        /// The header appeared more than once.
        Duplicated,
        /// Envoy's `0`: no timeout in Envoy's terms.
        EnvoyZero,
        /// Not a `grpc-timeout` value.
        Grpc(grpc_timeout::InvalidTimeout),
    }

    impl fmt::Display for Problem {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Problem::Malformed => f.write_str("expected whole milliseconds (1 to 20 digits)"),
                Problem::TooLarge => f.write_str("too large"),
                Problem::Duplicated => f.write_str("sent more than once"),
                Problem::EnvoyZero => f.write_str("0 means no timeout in Envoy"),
                Problem::Grpc(e) => e.fmt(f),
            }
        }
    }

    /// Parses whole milliseconds (`1*20DIGIT`, surrounding spaces allowed).
    pub(crate) fn parse_millis(value: &HeaderValue) -> Result<Duration, Problem> {
        let text = value.as_bytes().trim_ascii();
        if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
            return Err(Problem::Malformed);
        }
        if text.len() > MAX_MILLIS_DIGITS {
            return Err(Problem::TooLarge);
        }
        text.iter()
            .try_fold(0u64, |n, d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .map(Duration::from_millis)
            .ok_or(Problem::TooLarge)
    }

    /// The one value of `name`, or why it is ignored; `None` when absent.
    fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<Result<&'a HeaderValue, Problem>> {
        let mut values = headers.get_all(name).iter();
        let first = values.next()?;
        Some(match values.next() {
            Some(_) => Err(Problem::Duplicated),
            None => Ok(first),
        })
    }

    /// The caller's budget from `headers`: the smallest valid one of
    /// `svc-timeout-ms`, `grpc-timeout` and `x-envoy-expected-rq-timeout-ms`,
    /// capped at `max`. Each ignored header leaves a `debug` event naming it.
    pub(crate) fn budget(headers: &HeaderMap, max: Duration) -> Option<Duration> {
        let svc = single(headers, super::HEADER).map(|v| v.and_then(parse_millis));
        let grpc = single(headers, grpc_timeout::GRPC_TIMEOUT)
            .map(|v| v.and_then(|v| grpc_timeout::parse(v).map_err(Problem::Grpc)));
        let envoy = single(headers, super::ENVOY_HEADER).map(|v| {
            v.and_then(parse_millis).and_then(|d| {
                if d.is_zero() {
                    Err(Problem::EnvoyZero)
                } else {
                    Ok(d)
                }
            })
        });
        let mut smallest: Option<Duration> = None;
        for (header, parsed) in [
            (super::HEADER, svc),
            (grpc_timeout::GRPC_TIMEOUT, grpc),
            (super::ENVOY_HEADER, envoy),
        ] {
            match parsed {
                None => {}
                Some(Ok(budget)) => {
                    smallest = Some(smallest.map_or(budget, |s| s.min(budget)));
                }
                Some(Err(problem)) => tracing::debug!(
                    target: "svc_client",
                    header,
                    %problem,
                    "the caller's deadline header is ignored"
                ),
            }
        }
        smallest.map(|budget| budget.min(max))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.append(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            map
        }

        const MAX: Duration = Duration::from_secs(30);
        const fn ms(n: u64) -> Duration {
            Duration::from_millis(n)
        }

        #[test]
        fn the_smallest_valid_budget_wins_and_is_capped() {
            type Case<'a> = (&'a [(&'a str, &'a str)], Option<Duration>);
            let cases: &[Case<'_>] = &[
                (&[], None),
                (&[("svc-timeout-ms", "250")], Some(ms(250))),
                (&[("svc-timeout-ms", " 250 ")], Some(ms(250))),
                (&[("svc-timeout-ms", "0")], Some(ms(0))),
                (&[("grpc-timeout", "100m")], Some(ms(100))),
                (&[("grpc-timeout", "0n")], Some(ms(0))),
                (&[("x-envoy-expected-rq-timeout-ms", "80")], Some(ms(80))),
                (
                    &[
                        ("svc-timeout-ms", "250"),
                        ("grpc-timeout", "100m"),
                        ("x-envoy-expected-rq-timeout-ms", "150"),
                    ],
                    Some(ms(100)),
                ),
                // Oversize: capped.
                (&[("svc-timeout-ms", "86400000")], Some(MAX)),
                (&[("grpc-timeout", "99999999H")], Some(MAX)),
                (&[("svc-timeout-ms", "18446744073709551615")], Some(MAX)),
                // Bad input: ignored, the others still count.
                (&[("svc-timeout-ms", "-5")], None),
                (&[("svc-timeout-ms", "1.5")], None),
                (&[("svc-timeout-ms", "")], None),
                (&[("svc-timeout-ms", "5s")], None),
                (&[("svc-timeout-ms", "18446744073709551616")], None),
                (&[("svc-timeout-ms", "999999999999999999999999")], None),
                (
                    &[("svc-timeout-ms", "100"), ("svc-timeout-ms", "100")],
                    None,
                ),
                (&[("grpc-timeout", "5")], None),
                (&[("grpc-timeout", "-5m")], None),
                (&[("x-envoy-expected-rq-timeout-ms", "0")], None),
                (
                    &[("svc-timeout-ms", "garbage"), ("grpc-timeout", "70m")],
                    Some(ms(70)),
                ),
            ];
            for (pairs, want) in cases {
                assert_eq!(budget(&headers(pairs), MAX), *want, "{pairs:?}");
            }
        }

        proptest::proptest! {
            #[test]
            fn millis_round_trip(n in proptest::prelude::any::<u64>()) {
                let value = HeaderValue::from(n);
                proptest::prop_assert_eq!(parse_millis(&value), Ok(Duration::from_millis(n)));
            }

            #[test]
            fn never_panics_nor_exceeds_the_cap(
                svc in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
                grpc in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
                envoy in "[0-9 .+-]{0,22}",
            ) {
                let mut map = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_bytes(&svc) {
                    map.append("svc-timeout-ms", v);
                }
                if let Ok(v) = HeaderValue::from_bytes(&grpc) {
                    map.append("grpc-timeout", v);
                }
                if let Ok(v) = HeaderValue::from_str(&envoy) {
                    map.append("x-envoy-expected-rq-timeout-ms", v);
                }
                if let Some(b) = budget(&map, MAX) {
                    proptest::prop_assert!(b <= MAX);
                }
            }
        }
    }
}
