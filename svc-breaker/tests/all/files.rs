//! Configuration files (feature `serde`): the setters' names, durations as
//! strings, defaults for missing fields, and every bad value rejected while
//! the file is read, naming the setting.

use std::time::Duration;

use svc_breaker::{Config, FailureRate, OpenBackoff};

#[test]
fn toml_file_round_trips() {
    let file = r#"
        failure_threshold = 3
        reset_timeout = "1m30s"
        half_open_max_calls = 2
        success_threshold = 2
        max_half_open_wait = "10s"
        name = "auth-svc"

        [failure_rate]
        threshold_percent = 40
        window = 50
        min_calls = 10
        slow_call_duration = "2s"
        slow_call_threshold_percent = 80

        [open_backoff]
        max = "10m"
        multiplier = 3
        jitter_percent = 0
    "#;
    let config: Config = toml::from_str(file).unwrap();
    let expected = Config::default()
        .failure_threshold(3)
        .reset_timeout(Duration::from_secs(90))
        .half_open_max_calls(2)
        .success_threshold(2)
        .max_half_open_wait(Duration::from_secs(10))
        .name("auth-svc")
        .failure_rate(
            FailureRate::new(40, 50)
                .min_calls(10)
                .slow_calls(Duration::from_secs(2), 80),
        )
        .open_backoff(
            OpenBackoff::new(Duration::from_secs(600))
                .multiplier(3)
                .jitter_percent(0),
        );
    assert_eq!(config, expected);

    let written = toml::to_string(&config).unwrap();
    let again: Config = toml::from_str(&written).unwrap();
    assert_eq!(again, expected, "{written}");
    assert!(written.contains(r#"reset_timeout = "1m30s""#), "{written}");
}

#[test]
fn missing_fields_keep_the_defaults() {
    let config: Config = toml::from_str("").unwrap();
    assert_eq!(config, Config::default());
    let config: Config = serde_json::from_str(r#"{"reset_timeout": "250ms"}"#).unwrap();
    assert_eq!(
        config,
        Config::default().reset_timeout(Duration::from_millis(250))
    );
    let rate: FailureRate = serde_json::from_str("{}").unwrap();
    assert_eq!(rate, FailureRate::default());
}

#[test]
fn json_round_trips_the_defaults() {
    let json = serde_json::to_value(Config::default()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "failure_threshold": 5,
            "reset_timeout": "30s",
            "half_open_max_calls": 1,
            "success_threshold": 1,
        })
    );
    let back: Config = serde_json::from_value(json).unwrap();
    assert_eq!(back, Config::default());
}

/// One case per invalid value; each error names its setting.
#[test]
fn every_invalid_value_is_named() {
    let cases = [
        (
            "failure_threshold = 0",
            "failure_threshold must be at least 1",
        ),
        (
            "failure_threshold = -1",
            "invalid value: integer `-1`, expected u32",
        ),
        ("failure_threshold = 4294967296", "expected u32"),
        (
            "failure_threshold = \"5\"",
            "invalid type: string \"5\", expected u32",
        ),
        (
            "reset_timeout = \"0s\"",
            "reset_timeout must be greater than zero",
        ),
        ("reset_timeout = \"30\"", "a unit is needed"),
        ("reset_timeout = \"-1s\"", "must not be negative"),
        ("reset_timeout = \"1.5s\"", "fractions are not supported"),
        ("reset_timeout = \"99999999999999999999s\"", "too large"),
        ("reset_timeout = 30", "expected a duration string"),
        (
            "half_open_max_calls = 0",
            "half_open_max_calls must be at least 1",
        ),
        (
            "success_threshold = 2000000",
            "success_threshold must be at most 1048575",
        ),
        (
            "max_half_open_wait = \"0ms\"",
            "max_half_open_wait must be greater than zero",
        ),
        ("failure_treshold = 3", "unknown field `failure_treshold`"),
        (
            "failure_rate = { window = 0 }",
            "failure_rate.window must be at least 1",
        ),
        (
            "failure_rate = { threshold_percent = 101 }",
            "failure_rate.threshold_percent",
        ),
        (
            "failure_rate = { window = 10, min_calls = 11 }",
            "failure_rate.min_calls",
        ),
        (
            "failure_rate = { slow_call_threshold_percent = 50 }",
            "needs failure_rate.slow_call_duration",
        ),
        (
            "failure_rate = { slow_call_duration = \"0s\" }",
            "failure_rate.slow_call_duration",
        ),
        ("failure_rate = { windw = 10 }", "unknown field `windw`"),
        ("open_backoff = { multiplier = 2 }", "missing field `max`"),
        (
            "open_backoff = { max = \"1m\", multiplier = 0 }",
            "open_backoff.multiplier",
        ),
        (
            "open_backoff = { max = \"1m\", jitter_percent = 101 }",
            "open_backoff.jitter_percent",
        ),
        (
            "open_backoff = { max = \"1s\" }",
            "open_backoff.max must be at least reset_timeout",
        ),
    ];
    for (file, expected) in cases {
        let err = toml::from_str::<Config>(file).expect_err(file);
        // The message itself, not the quoted line of the file.
        let message = err.message();
        assert!(message.contains(expected), "{file}: {message}");
    }
}

#[test]
fn json_errors_name_the_setting_too() {
    let err = serde_json::from_str::<Config>(r#"{"half_open_max_calls": 0}"#).unwrap_err();
    assert!(
        err.to_string()
            .contains("half_open_max_calls must be at least 1"),
        "{err}"
    );
}
