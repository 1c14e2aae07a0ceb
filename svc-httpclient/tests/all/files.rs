//! Configuration files (feature `serde`): the setters' names, durations as
//! strings, defaults for missing fields, the breaker and the budget turned
//! off with `false`, and every bad value rejected while the file is read.

use std::time::Duration;

use svc_httpclient::{Backoff, CircuitBreakerConfig, Config, RetryBudget, StatusCode};

/// Configs have no `PartialEq` (they hold hooks); `Debug` shows every
/// setting.
fn same(a: &Config, b: &Config) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

#[test]
fn toml_file_sets_every_data_field() {
    let file = r#"
        timeout = "5s"
        attempt_timeout = "1s500ms"
        max_retries = 2
        max_retry_after = "10s"
        retry_statuses = [503, 429]
        user_agent = "profile-svc/1.0"
        generate_idempotency_keys = true
        log_failures = false
        peer_service = "auth-svc"
        max_origins = 16
        origin_idle_timeout = "1h"

        [backoff]
        base = "50ms"
        factor = 3.0
        cap = "2s"
        jitter = false

        [retry_budget]
        ttl = "5s"
        min_per_sec = 2
        retry_percent = 0.1

        [circuit_breaker]
        failure_threshold = 3
        reset_timeout = "15s"
    "#;
    let config: Config = toml::from_str(file).unwrap();
    let expected = Config::default()
        .timeout(Duration::from_secs(5))
        .attempt_timeout(Duration::from_millis(1500))
        .max_retries(2)
        .max_retry_after(Duration::from_secs(10))
        .retry_statuses([
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS,
        ])
        .user_agent("profile-svc/1.0")
        .generate_idempotency_keys(true)
        .log_failures(false)
        .peer_service("auth-svc")
        .max_origins(16)
        .origin_idle_timeout(Duration::from_secs(3600))
        .backoff(
            Backoff::default()
                .base(Duration::from_millis(50))
                .factor(3.0)
                .cap(Duration::from_secs(2))
                .jitter(false),
        )
        .retry_budget(Some(
            RetryBudget::default()
                .ttl(Duration::from_secs(5))
                .min_per_sec(2)
                .retry_percent(0.1),
        ))
        .circuit_breaker(Some(
            CircuitBreakerConfig::default()
                .failure_threshold(3)
                .reset_timeout(Duration::from_secs(15)),
        ));
    assert!(same(&config, &expected), "{config:?}\n{expected:?}");
}

#[test]
fn missing_fields_keep_the_defaults() {
    let config: Config = toml::from_str("").unwrap();
    assert!(same(&config, &Config::default()));
    let config: Config = serde_json::from_str(r#"{"backoff": {"cap": "1s"}}"#).unwrap();
    let expected = Config::default().backoff(Backoff::default().cap(Duration::from_secs(1)));
    assert!(same(&config, &expected), "{config:?}");
}

#[test]
fn false_turns_the_breaker_and_the_budget_off() {
    let off: Config = toml::from_str("circuit_breaker = false\nretry_budget = false").unwrap();
    let expected = Config::default().circuit_breaker(None).retry_budget(None);
    assert!(same(&off, &expected), "{off:?}");
    let on: Config = toml::from_str("circuit_breaker = true\nretry_budget = true").unwrap();
    assert!(same(&on, &Config::default()), "{on:?}");
    // Null is the same as a missing field: the default, not "off".
    let null: Config = serde_json::from_str(r#"{"circuit_breaker": null}"#).unwrap();
    assert!(same(&null, &Config::default()));
}

/// One case per invalid value; each error names its setting.
#[test]
fn every_invalid_value_is_named() {
    let cases = [
        ("timeout = \"0s\"", "`timeout` must be greater than zero"),
        ("timeout = \"5\"", "a unit is needed"),
        (
            "timeout = \"abc\"",
            "expected a duration such as 250ms, 2s or 1m",
        ),
        (
            "attempt_timeout = \"0ms\"",
            "`attempt_timeout` must be greater than zero",
        ),
        ("attempt_timeout = \"-1s\"", "must not be negative"),
        (
            "max_retries = -1",
            "invalid value: integer `-1`, expected u32",
        ),
        ("max_retries = 4294967296", "expected u32"),
        ("max_retry_after = \"99999999999999999999s\"", "too large"),
        (
            "origin_idle_timeout = \"0s\"",
            "`origin_idle_timeout` must be greater than zero",
        ),
        ("max_origins = 0", "`max_origins` must be at least 1"),
        ("retry_statuses = [1000]", "`retry_statuses` has 1000"),
        (
            "user_agent = \"bad\\nagent\"",
            "`user_agent` must be a valid header value",
        ),
        (
            "backoff = { factor = 0.5 }",
            "`backoff.factor` must be finite and at least 1",
        ),
        (
            "backoff = { base = \"2s\", cap = \"1s\" }",
            "`backoff.cap` must be at least backoff.base",
        ),
        ("backoff = { bse = \"1s\" }", "unknown field `bse`"),
        (
            "retry_budget = { ttl = \"1ms\" }",
            "`retry_budget.ttl` must be between 1s and 60s",
        ),
        (
            "retry_budget = { retry_percent = 11.0 }",
            "`retry_budget.retry_percent`",
        ),
        (
            "retry_budget = \"off\"",
            "false (off), true (the defaults) or a table",
        ),
        (
            "circuit_breaker = { failure_threshold = 0 }",
            "failure_threshold must be at least 1",
        ),
        (
            "circuit_breaker = { reset_timeout = \"0s\" }",
            "reset_timeout must be greater than zero",
        ),
        (
            "circuit_breaker = { failure_treshold = 1 }",
            "unknown field `failure_treshold`",
        ),
        (
            "circuit_breaker = 5",
            "false (off), true (the defaults) or a table",
        ),
        (
            "endpoints = { refresh_interval = \"1ms\" }",
            "`endpoints.refresh_interval` must be from 100ms to 10 minutes",
        ),
        (
            "endpoints = { outlier = { max_ejection_percent = 101 } }",
            "`endpoints.outlier.max_ejection_percent` must be at most 100",
        ),
        (
            "endpoints = { resolver = \"x\" }",
            "unknown field `resolver`",
        ),
        ("default_headers = {}", "unknown field `default_headers`"),
        ("timout = \"1s\"", "unknown field `timout`"),
    ];
    for (file, expected) in cases {
        let err = toml::from_str::<Config>(file).expect_err(file);
        // The message itself, not the quoted line of the file.
        let message = err.message();
        assert!(message.contains(expected), "{file}: {message}");
    }
}

#[test]
fn validate_checks_what_client_new_checks() {
    assert!(Config::default().validate().is_ok());
    let err = Config::default()
        .circuit_breaker(Some(CircuitBreakerConfig::default().half_open_max_calls(0)))
        .validate()
        .unwrap_err();
    assert!(err.is_request(), "{err:?}");
    assert!(err.to_string().contains("half_open_max_calls"), "{err}");
}

#[test]
fn endpoints_read_under_the_setters_names() {
    use svc_httpclient::{EndpointsConfig, OutlierConfig};

    let file = r#"
        [endpoints]
        resolve = false
        refresh_interval = "5s"
        default_rtt = "2ms"
        decay = "1s"
        [endpoints.outlier]
        consecutive_failures = 3
        base_ejection_time = "10s"
        max_ejection_time = "1m"
        max_ejection_percent = 50
    "#;
    let config: Config = toml::from_str(file).unwrap();
    let expected = Config::default().endpoints(
        EndpointsConfig::default()
            .resolve(false)
            .refresh_interval(Duration::from_secs(5))
            .default_rtt(Duration::from_millis(2))
            .decay(Duration::from_secs(1))
            .outlier(
                OutlierConfig::default()
                    .consecutive_failures(3)
                    .base_ejection_time(Duration::from_secs(10))
                    .max_ejection_time(Duration::from_secs(60))
                    .max_ejection_percent(50),
            ),
    );
    assert!(same(&config, &expected), "{config:?}");
    assert!(!same(&config, &Config::default()));
}
