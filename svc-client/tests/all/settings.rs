//! Settings from the environment (`AUTH_SVC_TIMEOUT=2s` next to
//! `AUTH_SVC_URL`, through a `Registry`, never `set_var`) and, with the
//! `serde` feature, from files.

use std::time::Duration;

use crate::support::recording_server;
use svc_client::{Backoff, CircuitBreakerConfig, Client, ClientConfig, Registry, State};

/// Configs have no `PartialEq` (they hold hooks); `Debug` shows every
/// setting.
fn same(a: &ClientConfig, b: &ClientConfig) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

fn from_vars(vars: &[(&str, &str)]) -> Result<ClientConfig, svc_client::Error> {
    ClientConfig::from_registry(&Registry::from_vars(vars.iter().copied()), "auth-svc")
}

#[test]
fn every_variable_is_read() {
    let config = from_vars(&[
        ("AUTH_SVC_URL", "http://auth:8001"),
        ("AUTH_SVC_TIMEOUT", "2s"),
        ("AUTH_SVC_ATTEMPT_TIMEOUT", " 500ms "),
        ("AUTH_SVC_MAX_RETRIES", "1"),
        ("AUTH_SVC_BREAKER_FAILURE_THRESHOLD", "3"),
        ("AUTH_SVC_BREAKER_RESET_TIMEOUT", "1m30s"),
        // Another service's settings are not this one's.
        ("CHAT_SVC_TIMEOUT", "1h"),
    ])
    .unwrap();
    let expected = ClientConfig::default()
        .timeout(Duration::from_secs(2))
        .attempt_timeout(Duration::from_millis(500))
        .max_retries(1)
        .circuit_breaker(Some(
            CircuitBreakerConfig::default()
                .failure_threshold(3)
                .reset_timeout(Duration::from_secs(90)),
        ));
    assert!(same(&config, &expected), "{config:?}");
}

#[test]
fn unset_and_blank_variables_keep_the_defaults() {
    let config = from_vars(&[]).unwrap();
    assert!(same(&config, &ClientConfig::default()));
    let config = from_vars(&[("AUTH_SVC_TIMEOUT", ""), ("AUTH_SVC_MAX_RETRIES", "  ")]).unwrap();
    assert!(same(&config, &ClientConfig::default()));
}

#[test]
fn any_spelling_of_the_service_reads_the_same_variables() {
    let registry = Registry::from_vars([("AUTH_SVC_MAX_RETRIES", "0")]);
    for name in ["auth-svc", "Auth_Svc", "auth.svc"] {
        let config = ClientConfig::from_registry(&registry, name).unwrap();
        assert!(
            same(&config, &ClientConfig::default().max_retries(0)),
            "{name}"
        );
    }
    let err = ClientConfig::from_registry(&registry, "auth svc").unwrap_err();
    assert!(err.is_discovery(), "{err:?}");
}

/// One case per invalid value of each variable: the error is a config
/// error naming the variable, quoting the value and saying what was
/// expected.
#[test]
fn every_invalid_value_names_its_variable() {
    const DURATION: &str = "expected a duration such as 250ms, 2s or 1m";
    const NUMBER: &str = "expected a whole number such as 3";
    let cases: &[(&str, &str, &str)] = &[
        ("AUTH_SVC_TIMEOUT", "abc", DURATION),
        ("AUTH_SVC_TIMEOUT", "2", "a unit is needed"),
        ("AUTH_SVC_TIMEOUT", "-1s", "must not be negative"),
        ("AUTH_SVC_TIMEOUT", "1.5s", "fractions are not supported"),
        ("AUTH_SVC_TIMEOUT", "2 s", "spaces are not allowed"),
        ("AUTH_SVC_TIMEOUT", "99999999999999999999s", "too large"),
        (
            "AUTH_SVC_TIMEOUT",
            "0s",
            "`timeout` must be greater than zero",
        ),
        ("AUTH_SVC_ATTEMPT_TIMEOUT", "10 seconds", DURATION),
        (
            "AUTH_SVC_ATTEMPT_TIMEOUT",
            "0ms",
            "`attempt_timeout` must be greater than zero",
        ),
        ("AUTH_SVC_MAX_RETRIES", "-1", "it is negative"),
        ("AUTH_SVC_MAX_RETRIES", "4294967296", "it is too large"),
        ("AUTH_SVC_MAX_RETRIES", "three", NUMBER),
        ("AUTH_SVC_MAX_RETRIES", "1.0", NUMBER),
        (
            "AUTH_SVC_BREAKER_FAILURE_THRESHOLD",
            "0",
            "failure_threshold must be at least 1",
        ),
        ("AUTH_SVC_BREAKER_FAILURE_THRESHOLD", "-5", "it is negative"),
        (
            "AUTH_SVC_BREAKER_FAILURE_THRESHOLD",
            "99999999999",
            "it is too large",
        ),
        ("AUTH_SVC_BREAKER_RESET_TIMEOUT", "30", "a unit is needed"),
        (
            "AUTH_SVC_BREAKER_RESET_TIMEOUT",
            "0s",
            "reset_timeout must be greater than zero",
        ),
    ];
    for &(variable, value, expected) in cases {
        let err = from_vars(&[(variable, value)]).expect_err(variable);
        assert!(err.is_config(), "{variable}={value}: {err:?}");
        assert!(!err.is_discovery() && !err.is_request());
        let setting = err.setting_error().expect("a setting error");
        assert_eq!(setting.variable(), variable);
        assert_eq!(setting.value(), Some(value));
        let message = err.to_string();
        let quoted = format!("{variable}={value:?}: ");
        assert!(message.starts_with(&quoted), "{message}");
        assert!(message.contains(expected), "{variable}={value}: {message}");
        assert_eq!(err.error_type(), "config");
    }
}

#[test]
fn a_long_value_is_cut_in_the_message() {
    let value = "x".repeat(100_000);
    let err = from_vars(&[("AUTH_SVC_TIMEOUT", &value)]).unwrap_err();
    assert!(
        err.to_string().len() < 200,
        "{} bytes",
        err.to_string().len()
    );
}

#[test]
fn settings_apply_over_a_config_of_our_own() {
    let ours = ClientConfig::default()
        .timeout(Duration::from_secs(2))
        .circuit_breaker(Some(CircuitBreakerConfig::default().success_threshold(2)))
        .http(|c| c.backoff(Backoff::default().base(Duration::from_millis(5))));
    let registry = Registry::from_vars([("AUTH_SVC_BREAKER_RESET_TIMEOUT", "5s")]);
    let config = ours.clone().apply_settings(&registry, "auth-svc").unwrap();
    let expected = ours.circuit_breaker(Some(
        CircuitBreakerConfig::default()
            .success_threshold(2)
            .reset_timeout(Duration::from_secs(5)),
    ));
    assert!(same(&config, &expected), "{config:?}");

    // A breaker setting for a client without a breaker is not ignored.
    let err = ClientConfig::default()
        .circuit_breaker(None)
        .apply_settings(&registry, "auth-svc")
        .unwrap_err();
    assert_eq!(
        err.setting_error().map(|e| e.variable()),
        Some("AUTH_SVC_BREAKER_RESET_TIMEOUT")
    );
}

/// The variables change what the client does, not only its `Debug`.
#[tokio::test]
async fn a_client_from_the_environment_obeys_its_settings() {
    let server = recording_server(503, "down").await;
    let registry = Registry::from_vars([
        ("AUTH_SVC_URL", format!("http://{}", server.addr())),
        ("AUTH_SVC_MAX_RETRIES", "0".to_owned()),
        ("AUTH_SVC_BREAKER_FAILURE_THRESHOLD", "2".to_owned()),
        ("AUTH_SVC_BREAKER_RESET_TIMEOUT", "1h".to_owned()),
    ]);
    let config = ClientConfig::from_registry(&registry, "auth-svc").unwrap();
    let client = Client::from_registry(&registry, "auth-svc", config).unwrap();
    for _ in 0..2 {
        assert_eq!(client.get("/x").await.unwrap().status(), 503);
    }
    assert_eq!(server.hits(), 2, "no retry");
    assert_eq!(client.circuit_state(), Some(State::Open), "opened after 2");
    let err = client.get("/x").await.unwrap_err();
    assert!(err.is_circuit_open());
    assert!(
        err.retry_after().unwrap() > Duration::from_secs(3000),
        "1h open"
    );
    assert_eq!(server.hits(), 2);
}

#[cfg(feature = "serde")]
mod files {
    use super::*;

    #[test]
    fn toml_file_round_trips() {
        let file = r#"
            timeout = "2s"
            attempt_timeout = "500ms"
            max_retries = 1
            decode_limit = 1024
            call_span = true
            shared_pool = false
            retry_statuses = [503]
            backoff = { base = "50ms", cap = "1s" }

            [circuit_breaker]
            failure_threshold = 3
            reset_timeout = "1m30s"
        "#;
        let config: ClientConfig = toml::from_str(file).unwrap();
        let expected = ClientConfig::default()
            .timeout(Duration::from_secs(2))
            .attempt_timeout(Duration::from_millis(500))
            .max_retries(1)
            .decode_limit(1024)
            .call_span(true)
            .shared_pool(false)
            .circuit_breaker(Some(
                CircuitBreakerConfig::default()
                    .failure_threshold(3)
                    .reset_timeout(Duration::from_secs(90)),
            ))
            .http(|c| {
                c.retry_statuses([svc_client::StatusCode::SERVICE_UNAVAILABLE])
                    .backoff(
                        Backoff::default()
                            .base(Duration::from_millis(50))
                            .cap(Duration::from_secs(1)),
                    )
            });
        assert!(same(&config, &expected), "{config:?}\n{expected:?}");
    }

    #[test]
    fn json_and_the_environment_compose() {
        let config: ClientConfig =
            serde_json::from_str(r#"{"timeout": "3s", "circuit_breaker": false}"#).unwrap();
        assert!(same(
            &config,
            &ClientConfig::default()
                .timeout(Duration::from_secs(3))
                .circuit_breaker(None)
        ));
        let config: ClientConfig = serde_json::from_str("{}").unwrap();
        assert!(same(&config, &ClientConfig::default()));
        // The file sets our defaults, the environment overrides them.
        let file: ClientConfig = toml::from_str("timeout = \"3s\"\nmax_retries = 1").unwrap();
        let registry = Registry::from_vars([("AUTH_SVC_TIMEOUT", "1s")]);
        let config = file.apply_settings(&registry, "auth-svc").unwrap();
        let expected = ClientConfig::default()
            .timeout(Duration::from_secs(1))
            .max_retries(1);
        assert!(same(&config, &expected), "{config:?}");
    }

    #[test]
    fn every_invalid_field_is_named() {
        let cases = [
            ("timeout = \"0s\"", "`timeout` must be greater than zero"),
            ("timeout = \"2\"", "a unit is needed"),
            ("max_retries = -1", "expected u32"),
            (
                "decode_limit = 0",
                "`decode_limit`: must be at least 1 byte",
            ),
            ("decode_limit = -1", "expected u64"),
            ("call_span = \"yes\"", "expected a boolean"),
            (
                "circuit_breaker = { failure_threshold = 0 }",
                "failure_threshold must be at least 1",
            ),
            (
                "circuit_breaker = { reset_timeout = \"soon\" }",
                "expected a duration such as",
            ),
            ("timout = \"1s\"", "unknown field `timout`"),
            (
                "peer_service = \"x\"",
                "`peer_service` is set by svc-client",
            ),
            ("log_failures = true", "`log_failures` is set by svc-client"),
            ("call_span = true\ncall_span = false", "duplicate key"),
        ];
        for (file, expected) in cases {
            let err = toml::from_str::<ClientConfig>(file).expect_err(file);
            let message = err.message();
            assert!(message.contains(expected), "{file}: {message}");
        }
    }
}
