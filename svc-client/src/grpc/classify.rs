//! What a gRPC status means for the breaker, for retries and for the span:
//! the policy, apart from the mechanism that applies it (`channel.rs`).
//!
//! | status | breaker | retried |
//! |---|---|---|
//! | `OK` | success | no |
//! | `UNAVAILABLE` | failure | idempotent methods only |
//! | `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`, `INTERNAL`, `UNKNOWN` | failure | no |
//! | any other code (`NOT_FOUND`, `INVALID_ARGUMENT`, ...) | no effect: the caller's problem, like a 4xx | no |
//! | connection refused, reset, TLS (nothing was sent) | failure | yes, whatever the method |
//! | other transport errors, attempt timeout | failure | idempotent methods only |
//! | cancelled by the caller (future or body dropped) | no effect | no |
//!
//! `DEADLINE_EXCEEDED` is not retried: the server says the deadline that
//! every attempt shares has passed. `RESOURCE_EXHAUSTED` is not retried
//! either: a server shedding load is not helped by more load.

use http::HeaderMap;
use svc_breaker::Outcome;
use tonic::Code;

/// The breaker's view of a status code.
pub(crate) fn outcome(code: Code) -> Outcome {
    match code {
        Code::Ok => Outcome::Success,
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Internal
        | Code::Unknown => Outcome::Failure,
        _ => Outcome::Ignored,
    }
}

/// Whether an idempotent method that got `code` may be tried again.
pub(crate) fn is_retryable(code: Code) -> bool {
    code == Code::Unavailable
}

/// The status of a response known from its head: `grpc-status` in the
/// headers (a trailers-only response), or an HTTP status other than 200,
/// mapped as gRPC's `http-grpc-status-mapping.md` says. `None` when the
/// status comes in the trailers.
pub(crate) fn head_status(status: http::StatusCode, headers: &HeaderMap) -> Option<Code> {
    if let Some(code) = headers.get("grpc-status") {
        return Some(Code::from_bytes(code.as_bytes()));
    }
    if status == http::StatusCode::OK {
        return None;
    }
    Some(match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    })
}

/// The status in the trailers; a stream that ends without one has an
/// unknown status (the gRPC spec requires one, and tonic and grpc-go
/// report `UNKNOWN`).
pub(crate) fn trailer_status(trailers: Option<&HeaderMap>) -> Code {
    trailers
        .and_then(|t| t.get("grpc-status"))
        .map_or(Code::Unknown, |code| Code::from_bytes(code.as_bytes()))
}

/// `rpc.service` and `rpc.method` of a request path
/// (`/grpc.health.v1.Health/Check`); a path of another shape is all
/// service, and `_OTHER` for the method.
pub(crate) fn rpc_names(path: &str) -> (&str, &str) {
    let path = path.strip_prefix('/').unwrap_or(path);
    match path.split_once('/') {
        Some((service, method)) if !service.is_empty() && !method.is_empty() => (service, method),
        _ => (path, "_OTHER"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_breaker_outcomes() {
        let failures = [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
            Code::Internal,
            Code::Unknown,
        ];
        for n in 0..=16 {
            let code = Code::from_i32(n);
            let expected = if code == Code::Ok {
                Outcome::Success
            } else if failures.contains(&code) {
                Outcome::Failure
            } else {
                Outcome::Ignored
            };
            assert_eq!(outcome(code), expected, "{code:?}");
        }
    }

    #[test]
    fn head_status_prefers_grpc_status() {
        let mut headers = HeaderMap::new();
        assert_eq!(head_status(http::StatusCode::OK, &headers), None);
        assert_eq!(
            head_status(http::StatusCode::SERVICE_UNAVAILABLE, &headers),
            Some(Code::Unavailable)
        );
        assert_eq!(
            head_status(http::StatusCode::NOT_FOUND, &headers),
            Some(Code::Unimplemented)
        );
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(
            head_status(http::StatusCode::OK, &headers),
            Some(Code::NotFound)
        );
        // Garbage is an unknown status, never a panic.
        headers.insert("grpc-status", http::HeaderValue::from_static("x9"));
        assert_eq!(
            head_status(http::StatusCode::OK, &headers),
            Some(Code::Unknown)
        );
    }

    #[test]
    fn missing_trailer_status_is_unknown() {
        assert_eq!(trailer_status(None), Code::Unknown);
        assert_eq!(trailer_status(Some(&HeaderMap::new())), Code::Unknown);
    }

    #[test]
    fn rpc_names_split_the_path() {
        assert_eq!(
            rpc_names("/grpc.health.v1.Health/Check"),
            ("grpc.health.v1.Health", "Check")
        );
        assert_eq!(rpc_names("/odd"), ("odd", "_OTHER"));
        assert_eq!(rpc_names("/"), ("", "_OTHER"));
    }
}
