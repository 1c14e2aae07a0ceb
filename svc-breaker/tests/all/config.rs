//! Bad settings are rejected with an error naming them, never a panic.

use std::time::Duration;

use svc_breaker::{CircuitBreaker, Config, ConfigError, FailureRate, OpenBackoff};

fn error(config: Config) -> ConfigError {
    CircuitBreaker::new(config).expect_err("invalid config accepted")
}

#[test]
fn every_bad_setting_is_named() {
    let rate = |r: FailureRate| Config::default().failure_rate(r);
    let backoff = |b: OpenBackoff| Config::default().open_backoff(b);
    let cases: Vec<(Config, &str, &str)> = vec![
        (
            Config::default().failure_threshold(0),
            "failure_threshold",
            "failure_threshold must be at least 1",
        ),
        (
            Config::default().reset_timeout(Duration::ZERO),
            "reset_timeout",
            "reset_timeout must be greater than zero",
        ),
        (
            Config::default().half_open_max_calls(0),
            "half_open_max_calls",
            "half_open_max_calls must be at least 1",
        ),
        (
            Config::default().half_open_max_calls(1 << 20),
            "half_open_max_calls",
            "half_open_max_calls must be at most 1048575",
        ),
        (
            Config::default().success_threshold(0),
            "success_threshold",
            "success_threshold must be at least 1",
        ),
        (
            Config::default().success_threshold(u32::MAX),
            "success_threshold",
            "success_threshold must be at most 1048575",
        ),
        (
            rate(FailureRate::new(0, 10)),
            "failure_rate.threshold_percent",
            "failure_rate.threshold_percent must be between 1 and 100",
        ),
        (
            rate(FailureRate::new(101, 10)),
            "failure_rate.threshold_percent",
            "failure_rate.threshold_percent must be between 1 and 100",
        ),
        (
            rate(FailureRate::new(50, 0)),
            "failure_rate.window",
            "failure_rate.window must be at least 1",
        ),
        (
            rate(FailureRate::new(50, 2_000_000)),
            "failure_rate.window",
            "failure_rate.window must be at most 1000000",
        ),
        (
            rate(FailureRate::new(50, 10).min_calls(0)),
            "failure_rate.min_calls",
            "failure_rate.min_calls must be at least 1",
        ),
        (
            rate(FailureRate::new(50, 10).min_calls(11)),
            "failure_rate.min_calls",
            "failure_rate.min_calls must not exceed failure_rate.window",
        ),
        (
            rate(FailureRate::default().slow_calls(Duration::ZERO, 50)),
            "failure_rate.slow_call_duration",
            "failure_rate.slow_call_duration must be greater than zero",
        ),
        (
            rate(FailureRate::default().slow_calls(Duration::from_secs(1), 0)),
            "failure_rate.slow_call_threshold_percent",
            "failure_rate.slow_call_threshold_percent must be between 1 and 100",
        ),
        (
            backoff(OpenBackoff::new(Duration::from_secs(60)).multiplier(0)),
            "open_backoff.multiplier",
            "open_backoff.multiplier must be at least 1",
        ),
        (
            backoff(OpenBackoff::new(Duration::from_secs(60)).jitter_percent(101)),
            "open_backoff.jitter_percent",
            "open_backoff.jitter_percent must be between 0 and 100",
        ),
        (
            backoff(OpenBackoff::new(Duration::from_secs(29))),
            "open_backoff.max",
            "open_backoff.max must be at least reset_timeout",
        ),
        (
            Config::default().max_half_open_wait(Duration::ZERO),
            "max_half_open_wait",
            "max_half_open_wait must be greater than zero",
        ),
    ];
    for (config, setting, message) in cases {
        let err = error(config.clone());
        assert_eq!(err.setting(), setting, "{config:?}");
        assert_eq!(err.to_string(), message);
        assert_eq!(config.validate(), Err(err));
        assert_eq!(config.build().unwrap_err(), err);
    }
}

#[test]
fn edge_values_are_accepted() {
    let ok = [
        Config::default(),
        Config::default().failure_threshold(u32::MAX),
        Config::default().reset_timeout(Duration::from_nanos(1)),
        Config::default().reset_timeout(Duration::MAX),
        Config::default().half_open_max_calls(svc_breaker::MAX_HALF_OPEN_CALLS),
        Config::default().failure_rate(FailureRate::new(100, 1)),
        Config::default().failure_rate(FailureRate::new(1, svc_breaker::MAX_WINDOW).min_calls(1)),
        Config::default().open_backoff(
            OpenBackoff::new(Duration::from_secs(30))
                .multiplier(1)
                .jitter_percent(100),
        ),
    ];
    for config in ok {
        assert!(CircuitBreaker::new(config.clone()).is_ok(), "{config:?}");
    }
}

#[test]
fn config_error_is_a_std_error() {
    fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<ConfigError>();
}

#[test]
fn a_huge_reset_timeout_stays_open_without_overflow() {
    let clock = svc_breaker::ManualClock::new();
    let b = CircuitBreaker::with_clock(
        Config::default()
            .failure_threshold(1)
            .reset_timeout(Duration::MAX),
        clock.clone(),
    )
    .unwrap();
    b.try_acquire().unwrap().record_failure();
    // Deadlines saturate about 34 years after the clock's origin.
    clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    assert!(b.try_acquire().is_err());
}
