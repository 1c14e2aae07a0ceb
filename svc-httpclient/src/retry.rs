//! What is retried, and when: the rules that keep retries from doing harm.
//!
//! Replaying a request is only safe if sending it twice has the effect of
//! sending it once. That holds for the idempotent methods (GET, HEAD,
//! OPTIONS, PUT, DELETE, TRACE; RFC 9110 §9.2.2) but not for POST or PATCH:
//! a POST that timed out may well have charged the card, and sending it
//! again charges it twice. Clients that retry POSTs by default cause exactly
//! that (dotnet/extensions #5248, reqwest-retry users in kittycad.rs #1042).
//! So a POST or PATCH is replayed only when
//!
//! - the attempt failed to connect (nothing was sent), or
//! - it carries an `Idempotency-Key` header, which lets the server detect
//!   the duplicate, or
//! - the caller declared it safe with
//!   [`RequestBuilder::retry_unsafe`](crate::RequestBuilder::retry_unsafe).
//!
//! Only failures that can succeed later are retried: timeouts, connection
//! failures and resets, and the statuses 408, 429, 500, 502, 503, 504
//! (configurable). A 400 or 404 will fail the same way every time.
//!
//! `Retry-After` on a 429 or 503 is obeyed (seconds or an HTTP date), capped
//! by `max_retry_after`, and never past the call's deadline: if the server
//! asks for a wait that would outlast the deadline, the response is returned
//! at once rather than slept on (go-retryablehttp #272).
//!
//! A retry that is allowed is still not made when the origin cannot take
//! it: when its breaker is open (the sequence stops with a circuit-open
//! error, the last failure as its cause), or when its retry budget is spent
//! ([`crate::budget`] explains why a client needs one). The wait is the
//! backoff's, or the server's `Retry-After` when that is longer.
//!
//! This module decides ([`Policy::next`]); [`crate::call`] carries the
//! decision out, as tower's `retry::Policy` and `retry::future` do.

use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;

use crate::attempt::Attempt;
use crate::config::Config;
use crate::error::Kind;
use crate::origin::Origin;
use crate::request::CallOptions;
use crate::{CircuitOpen, State};

/// What the call does after an attempt.
pub(crate) enum Next {
    /// Return the attempt's result, for this reason.
    Return(&'static str),
    /// Retry after this wait.
    Retry(Duration),
    /// The breaker opened: stop with a circuit-open error.
    CircuitOpen(CircuitOpen),
    /// The budget refused the retry.
    BudgetExhausted,
}

/// The retry rules of one call, fixed when it starts.
pub(crate) struct Policy<'a> {
    config: &'a Config,
    /// The request may be sent again after it was (maybe) sent once.
    replay: bool,
    /// The first attempt and the retries; 1 for a body that cannot be
    /// replayed (a stream).
    pub(crate) max_attempts: u32,
    /// The call's deadline: no wait may pass it.
    pub(crate) deadline: Instant,
}

// ===== impl Policy =====

impl<'a> Policy<'a> {
    /// The rules for `request` under `config` and the call's `opts`, with
    /// the call's `deadline`.
    pub(crate) fn new(
        config: &'a Config,
        request: &reqwest::Request,
        opts: &CallOptions,
        deadline: Instant,
    ) -> Policy<'a> {
        let replayable_body = request.body().is_none_or(|b| b.as_bytes().is_some());
        let max_attempts = if replayable_body {
            opts.max_retries
                .unwrap_or(config.max_retries)
                .saturating_add(1)
        } else {
            1
        };
        Policy {
            config,
            replay: replay_allowed(request.method(), request.headers(), opts.retry_unsafe),
            max_attempts,
            deadline,
        }
    }

    /// Decides whether and when to retry after `attempt`, the `sent`-th
    /// attempt of the call to `origin`. Withdraws from the origin's budget
    /// when the answer is a retry.
    pub(crate) fn next(&self, attempt: &Attempt, origin: &Origin, sent: u32) -> Next {
        let config = self.config;
        let retryable = match attempt {
            Attempt::Response(resp, _) => self.replay && config.is_retry_status(resp.status()),
            // Nothing was sent: safe to retry whatever the method.
            Attempt::Failed(f) if matches!(f.kind, Kind::Connect) => true,
            Attempt::Failed(f) => {
                self.replay
                    && !f.deadline
                    && matches!(
                        f.kind,
                        Kind::Timeout | Kind::AttemptTimeout(_) | Kind::Transport | Kind::Body
                    )
            }
        };
        if !retryable {
            return Next::Return("not retryable");
        }
        if sent >= self.max_attempts {
            return Next::Return("retries exhausted");
        }
        let mut wait = config.backoff.delay(sent - 1);
        if let Attempt::Response(resp, _) = attempt
            && honours_retry_after(resp.status())
            && let Some(retry_after) = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
        {
            wait = wait.max(retry_after.min(config.max_retry_after));
        }
        if Instant::now()
            .checked_add(wait)
            .is_none_or(|at| at >= self.deadline)
        {
            return Next::Return("the wait would pass the deadline");
        }
        if let Some(breaker) = &origin.breaker
            && breaker.state() == State::Open
        {
            match breaker.try_acquire() {
                Err(open) => return Next::CircuitOpen(open),
                // It just turned half-open: leave the trial to the retry.
                Ok(permit) => drop(permit),
            }
        }
        if let Some(budget) = &origin.budget
            && !budget.withdraw()
        {
            return Next::BudgetExhausted;
        }
        Next::Retry(wait)
    }
}

// ===== rules =====

/// RFC 9110 §9.2.2 idempotent methods.
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// The `Idempotency-Key` header name (IETF draft-ietf-httpapi-idempotency-key-header).
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Whether a request may be sent again after it was (maybe) sent once.
pub(crate) fn replay_allowed(method: &Method, headers: &HeaderMap, retry_unsafe: bool) -> bool {
    retry_unsafe || is_idempotent(method) || headers.contains_key(IDEMPOTENCY_KEY)
}

/// Whether `status` may carry a `Retry-After` that we obey.
pub(crate) fn honours_retry_after(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP date, relative to
/// `now`. A date in the past is zero; a huge number saturates; anything else
/// (negative, fractional, garbage) is `None` and the backoff is used.
pub(crate) fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: only overflow can fail; a huge value saturates and
        // `max_retry_after` caps it.
        let secs = text.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Option<Duration> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        parse_retry_after(&HeaderValue::from_str(s).unwrap(), now)
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(
            parse("99999999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse("-5"), None);
        assert_eq!(parse("1.5"), None);
        assert_eq!(parse("soon"), None);
        assert_eq!(parse(""), None);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(parse(&later), Some(Duration::from_secs(90)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse(&earlier), Some(Duration::ZERO));
    }

    #[test]
    fn idempotent_methods() {
        for m in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"] {
            assert!(is_idempotent(&m.parse().unwrap()), "{m}");
        }
        for m in ["POST", "PATCH", "CONNECT", "PURGE"] {
            assert!(!is_idempotent(&m.parse().unwrap()), "{m}");
        }
        let mut headers = HeaderMap::new();
        assert!(!replay_allowed(&Method::POST, &headers, false));
        assert!(replay_allowed(&Method::POST, &headers, true));
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("k1"));
        assert!(replay_allowed(&Method::POST, &headers, false));
    }

    proptest! {
        #[test]
        fn retry_after_never_panics(s in "\\PC*") {
            if let Ok(v) = HeaderValue::from_str(&s) {
                let _ = parse_retry_after(&v, SystemTime::now());
            }
        }

        #[test]
        fn retry_after_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                let _ = parse_retry_after(&v, SystemTime::UNIX_EPOCH);
            }
        }

        #[test]
        fn retry_after_seconds_round_trip(secs in any::<u64>()) {
            let v = HeaderValue::from_str(&secs.to_string()).unwrap();
            prop_assert_eq!(parse_retry_after(&v, SystemTime::now()), Some(Duration::from_secs(secs)));
        }

        #[test]
        fn retry_after_negative_is_ignored(secs in 1..i64::MAX) {
            let v = HeaderValue::from_str(&(-secs).to_string()).unwrap();
            prop_assert_eq!(parse_retry_after(&v, SystemTime::now()), None);
        }

        #[test]
        fn retry_after_dates_are_relative(offset in 0u64..10_000_000) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
            let v = HeaderValue::from_str(&httpdate::fmt_http_date(now + Duration::from_secs(offset))).unwrap();
            prop_assert_eq!(parse_retry_after(&v, now), Some(Duration::from_secs(offset)));
        }
    }
}
