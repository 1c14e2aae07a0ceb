//! Invalid settings are rejected by `Client::new`, naming the setting.

use std::time::Duration;

use svc_httpclient::{Backoff, CircuitBreakerConfig, Client, Config, RetryBudget};

macro_rules! invalid {
    ($($name:ident: $config:expr => $setting:literal,)*) => {$(
        #[test]
        fn $name() {
            let err = Client::new($config).expect_err("invalid config accepted");
            assert!(err.is_request(), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(concat!("`", $setting, "`")), "{message}");
            assert_eq!(message, message.to_lowercase(), "lower-case message");
        }
    )*};
}

invalid! {
    zero_timeout: Config::default().timeout(Duration::ZERO) => "timeout",
    zero_attempt_timeout: Config::default().attempt_timeout(Duration::ZERO) => "attempt_timeout",
    backoff_factor_below_one: Config::default().backoff(Backoff::default().factor(0.5)) => "backoff.factor",
    backoff_factor_nan: Config::default().backoff(Backoff::default().factor(f64::NAN)) => "backoff.factor",
    backoff_cap_below_base: Config::default()
        .backoff(Backoff::default().base(Duration::from_secs(2)).cap(Duration::from_secs(1))) => "backoff.cap",
    budget_ttl_too_short: Config::default()
        .retry_budget(Some(RetryBudget::default().ttl(Duration::from_millis(10)))) => "retry_budget.ttl",
    budget_ttl_too_long: Config::default()
        .retry_budget(Some(RetryBudget::default().ttl(Duration::from_secs(600)))) => "retry_budget.ttl",
    budget_percent_negative: Config::default()
        .retry_budget(Some(RetryBudget::default().retry_percent(-0.1))) => "retry_budget.retry_percent",
    budget_percent_infinite: Config::default()
        .retry_budget(Some(RetryBudget::default().retry_percent(f64::INFINITY))) => "retry_budget.retry_percent",
    breaker_zero_threshold: Config::default()
        .circuit_breaker(Some(CircuitBreakerConfig::default().failure_threshold(0))) => "circuit_breaker",
    user_agent_with_newline: Config::default().user_agent("svc\nevil") => "user_agent",
}

#[test]
fn valid_configs_are_accepted() {
    Client::new(Config::default()).unwrap();
    Client::new(
        Config::default()
            .max_retries(0)
            .backoff(Backoff::default().base(Duration::ZERO).cap(Duration::ZERO))
            .retry_budget(None)
            .circuit_breaker(None)
            .user_agent("svc/1.0"),
    )
    .unwrap();
    Client::with_http_client(Config::default(), svc_httpclient::reqwest::Client::new()).unwrap();
}

#[test]
fn breaker_config_error_is_the_source() {
    let err = Client::new(
        Config::default()
            .circuit_breaker(Some(CircuitBreakerConfig::default().failure_threshold(0))),
    )
    .unwrap_err();
    let source = std::error::Error::source(&err).expect("the breaker's ConfigError");
    assert!(source.to_string().contains("failure_threshold"), "{source}");
}
