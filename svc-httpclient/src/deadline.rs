//! A deadline given from outside the call
//! ([`RequestBuilder::deadline`](crate::RequestBuilder::deadline)): in
//! svc-client, what is left of the budget the server received from its own
//! caller.
//!
//! It bounds the call as its `timeout` does (the earlier of the two wins,
//! so the retries and the backoff stop at it too: [`crate::retry`] never
//! starts a wait that ends past the deadline), with three differences when
//! it is the earlier one:
//!
//! - a call with nothing left fails at once with
//!   [`Error::is_deadline_exceeded`](crate::Error::is_deadline_exceeded):
//!   no I/O, no breaker permit taken, no retry-budget deposit;
//! - an attempt that this deadline cuts short is not a failure for the
//!   breaker ([`Outcome::Ignored`]): the service was given the caller's
//!   last few milliseconds, it is not at fault for missing them;
//! - the call's error is `is_deadline_exceeded()` (and `is_timeout()`);
//! - a `504` that arrives at the very end of a budget the outer deadline
//!   set (less than a tenth of the attempt's time so far, at least 2 ms,
//!   left) is not a breaker failure either: a service behind
//!   svc's server layer answers `504` when the budget it was sent runs
//!   out, which can be a moment before this side's own timer fires. The
//!   response is still returned (a response is never an error).
//!
//! With a header name
//! ([`RequestBuilder::deadline_header`](crate::RequestBuilder::deadline_header)),
//! every attempt tells the service its own budget, `min(attempt_timeout,
//! remaining)` in whole milliseconds (rounded down, so the service never
//! believes it has more time than the caller waits).

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use tokio::time::Instant;

use crate::Outcome;
use crate::attempt::Attempt;

/// The deadline of a call that started at `start` with `timeout`, and
/// whether the outer deadline `outer` is the one that binds.
pub(crate) fn of_call(
    start: Instant,
    timeout: Duration,
    outer: Option<Instant>,
) -> (Instant, bool) {
    let own = start.checked_add(timeout);
    match (own, outer) {
        (Some(own), Some(outer)) if outer <= own => (outer, true),
        (None, Some(outer)) => (outer, true),
        (Some(own), _) => (own, false),
        // Unreachable in practice: `timeout` too large for an `Instant`.
        (None, None) => (start + super::call::FAR_FUTURE, false),
    }
}

/// Writes the attempt's budget `limit` into `request` as `header`
/// (milliseconds, rounded down).
pub(crate) fn stamp(request: &mut reqwest::Request, header: &'static HeaderName, limit: Duration) {
    let millis = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    request
        .headers_mut()
        .insert(header.clone(), HeaderValue::from(millis));
}

/// Whether `attempt` was cut short by the outer deadline (`outer`: it is
/// the call's deadline).
pub(crate) fn cut_by_outer(attempt: &Attempt, outer: bool) -> bool {
    outer && matches!(attempt, Attempt::Failed(f) if f.deadline)
}

/// What the breaker makes of `attempt`, which took `elapsed`: not a
/// failure when the outer deadline cut it short, nor for a `504` at the
/// very end of an attempt that the outer deadline ends (`bound`, at
/// `deadline`): the service (with svc's server layer) gave up at the budget
/// it was sent, a moment before this side's timer would have.
pub(crate) fn outcome(
    attempt: &Attempt,
    outer: bool,
    bound: bool,
    elapsed: Duration,
    deadline: Instant,
) -> Outcome {
    if cut_by_outer(attempt, outer) || (bound && gave_up_at_budget(attempt, elapsed, deadline)) {
        Outcome::Ignored
    } else {
        attempt.outcome()
    }
}

/// A `504` with less than a tenth of the attempt's time so far (at least
/// 2 ms) left before `deadline`: at the end of its budget.
fn gave_up_at_budget(attempt: &Attempt, elapsed: Duration, deadline: Instant) -> bool {
    let end = (elapsed / 10).max(Duration::from_millis(2));
    matches!(attempt, Attempt::Response(resp, _) if resp.status() == reqwest::StatusCode::GATEWAY_TIMEOUT)
        && deadline.saturating_duration_since(Instant::now()) <= end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_earlier_deadline_binds() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(of_call(start, ms(100), None), (start + ms(100), false));
        assert_eq!(
            of_call(start, ms(100), Some(start + ms(50))),
            (start + ms(50), true)
        );
        assert_eq!(
            of_call(start, ms(100), Some(start + ms(150))),
            (start + ms(100), false)
        );
        assert_eq!(
            of_call(start, Duration::MAX, Some(start + ms(5))),
            (start + ms(5), true)
        );
    }
}
