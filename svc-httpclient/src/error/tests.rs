//! Unit tests of the error type: size, predicates, messages, vocabulary.

use super::*;
use std::time::Duration;

#[test]
fn error_is_pointer_sized_send_sync_static() {
    fn assert_traits<T: Send + Sync + 'static + StdError>() {}
    assert_traits::<Error>();
    assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
}

#[test]
fn predicates_walk_the_source_chain() {
    let url = Url::parse("http://user:hunter2@example.test:81/a").unwrap();
    let timeout = Error::new(Kind::Timeout).with_url(&url).with_attempts(3);
    let budget = Error::new(Kind::BudgetExhausted)
        .with_url(&url)
        .with_attempts(3)
        .with_source(timeout);
    assert!(budget.is_budget_exhausted());
    assert!(budget.is_timeout());
    assert!(!budget.is_connect());
    assert!(!budget.is_circuit_open());

    #[derive(Debug)]
    struct Wrapper(Error);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("facade error")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }
    let wrapped = Error::new(Kind::Transport).with_source(Wrapper(budget));
    assert!(wrapped.is_budget_exhausted());
    assert!(wrapped.is_timeout());
}

#[test]
fn messages_are_lower_case_and_without_credentials() {
    let url = Url::parse("http://user:hunter2@host:1/path").unwrap();
    let err = Error::new(Kind::Timeout)
        .with_url(&url)
        .with_method(Method::GET)
        .with_attempts(3);
    assert_eq!(
        err.to_string(),
        "request to http://host:1/path timed out after 3 attempts"
    );
    assert!(!format!("{err:?}").contains("hunter2"));
    assert_eq!(err.url().unwrap().as_str(), "http://host:1/path");
    let one = Error::new(Kind::Connect).with_url(&url).with_attempts(1);
    assert_eq!(
        one.to_string(),
        "could not connect to http://host:1/path after 1 attempt"
    );
    let attempt = Error::new(Kind::AttemptTimeout(Duration::from_millis(200)));
    assert_eq!(attempt.to_string(), "attempt timed out after 200ms");
    let config = Error::config("timeout", "must be greater than zero");
    assert_eq!(
        config.to_string(),
        "invalid client config: `timeout` must be greater than zero"
    );
    assert!(config.is_request());
}

#[test]
fn error_types_name_the_failure_through_its_wrappers() {
    let open = || {
        let breaker =
            svc_breaker::CircuitBreaker::new(svc_breaker::Config::default().failure_threshold(1))
                .unwrap();
        breaker.try_acquire().unwrap().record_failure();
        breaker.try_acquire().unwrap_err()
    };
    let timeout = || {
        Error::new(Kind::Timeout)
            .with_attempts(2)
            .with_source(Error::new(Kind::AttemptTimeout(Duration::from_secs(1))))
    };
    let cases = [
        (Error::new(Kind::CircuitOpen(open())), "circuit_open"),
        (timeout(), "timeout"),
        (Error::new(Kind::Connect).with_attempts(4), "connect"),
        (Error::new(Kind::TlsRoots), "connect"),
        (
            Error::new(Kind::CircuitOpen(open()))
                .with_attempts(3)
                .with_status(Some(StatusCode::SERVICE_UNAVAILABLE)),
            "503",
        ),
        (
            Error::new(Kind::CircuitOpen(open()))
                .with_attempts(3)
                .with_source(Error::new(Kind::Transport).with_attempts(3)),
            "transport",
        ),
        (
            Error::new(Kind::CircuitOpen(open()))
                .with_attempts(3)
                .with_source(timeout()),
            "timeout",
        ),
        (
            Error::new(Kind::BudgetExhausted).with_source(Error::new(Kind::Transport)),
            "retry_budget",
        ),
        (
            Error::new(Kind::BudgetExhausted).with_source(timeout()),
            "timeout",
        ),
        (Error::new(Kind::BodyTooLarge(10)), "body_too_large"),
        (Error::new(Kind::Body), "transport"),
        (Error::new(Kind::Transport), "transport"),
        (Error::new(Kind::Status(StatusCode::NOT_FOUND)), "404"),
        (Error::new(Kind::Decode), "decode"),
        (Error::new(Kind::Request), "request"),
        (
            Error::config("timeout", "must be greater than zero"),
            "request",
        ),
    ];
    for (err, expected) in cases {
        assert_eq!(err.error_type(), expected, "{err:?}");
    }
}

#[test]
fn error_chain_skips_repeated_sources() {
    let inner = Error::new(Kind::Connect).with_attempts(1);
    let outer = Error::new(Kind::BudgetExhausted)
        .with_attempts(1)
        .with_source(inner);
    assert_eq!(
        error_chain(&outer),
        "retry budget exhausted: request failed after 1 attempt: could not connect after 1 attempt"
    );
    #[derive(Debug)]
    struct Same(Error);
    impl fmt::Display for Same {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Display::fmt(&self.0, f)
        }
    }
    impl StdError for Same {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }
    let same = Same(Error::new(Kind::Decode));
    assert_eq!(error_chain(&same), "could not decode the JSON response");
}
