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

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};

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
