//! The free functions and `Registry::from_env` read the live process
//! environment.
//!
//! Tests never call `std::env::set_var` (it races with every thread reading
//! the environment). Instead each scenario re-runs this test binary as a child
//! process with a fresh environment set on the `Command`; the ignored
//! `child` test runs the scenario there and the parent checks its outcome.

use std::process::{Command, Output};

use svc_discovery::{
    Error, Registry, lookup, lookup_optional, must_service_url, service_configured, service_url,
};

/// Names the scenario the child runs.
const SCENARIO: &str = "SVC_DISCOVERY_TEST_SCENARIO";

/// Runs `scenario` in a child process whose environment is exactly `vars`
/// (plus what the OS needs to start a process).
fn run(scenario: &str, vars: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    command
        .args([
            // The path of the `child` test below in the one test binary.
            "process_env::child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env(SCENARIO, scenario)
        .env("RUST_BACKTRACE", "0");
    for keep in ["SYSTEMROOT", "PATH"] {
        if let Some(value) = std::env::var_os(keep) {
            command.env(keep, value);
        }
    }
    for (key, value) in vars {
        command.env(key, value);
    }
    command.output().expect("run the test binary")
}

/// [`run`] with values that are text.
fn run_utf8(scenario: &str, vars: &[(&str, &str)]) -> Output {
    let vars: Vec<_> = vars
        .iter()
        .map(|(k, v)| (*k, std::ffi::OsStr::new(v)))
        .collect();
    run(scenario, &vars)
}

/// Runs `scenario` and asserts it passed.
fn passes(scenario: &str, vars: &[(&str, &str)]) {
    let output = run_utf8(scenario, vars);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "scenario {scenario} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

/// Runs `scenario`, asserts it panicked, and returns its stderr.
fn panics(scenario: &str, vars: &[(&str, &str)]) -> String {
    let output = run_utf8(scenario, vars);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success() && stdout.contains("1 failed"),
        "scenario {scenario} should have panicked\n{stdout}"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
#[ignore = "runs only as a child process of the other tests in this file"]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        eprintln!("nothing to do: {SCENARIO} is not set");
        return;
    };
    match scenario.as_str() {
        "seed" => seed(),
        "kubernetes" => kubernetes(),
        "invalid" => invalid(),
        "empty" => empty(),
        "must_not_configured" => {
            must_service_url("auth-svc");
        }
        "must_invalid" => {
            must_service_url("auth-svc");
        }
        #[cfg(unix)]
        "not_unicode" => not_unicode(),
        other => panic!("unknown scenario {other:?}"),
    }
}

// ===== scenarios (run in the child) =====

fn seed() {
    let auth = "http://myproject-auth-svc:8001/";
    let chat = "http://myproject-chat-svc:8002/";
    assert_eq!(lookup("auth-svc").unwrap().as_str(), auth);
    assert_eq!(lookup("Auth_Svc").unwrap().as_str(), auth);
    assert_eq!(service_url("chat-svc").unwrap().as_str(), chat);
    assert!(service_configured("auth-svc"));
    assert!(service_configured("chat-svc"));
    assert_eq!(must_service_url("auth-svc").as_str(), auth);
    assert_eq!(lookup_optional("chat-svc").unwrap().unwrap().as_str(), chat);

    assert!(!service_configured("search-svc"));
    assert_eq!(service_url("search-svc"), None);
    assert_eq!(lookup_optional("search-svc"), Ok(None));
    assert!(lookup("search-svc").unwrap_err().is_not_configured());

    let registry = Registry::from_env();
    let listed: Vec<_> = registry
        .iter()
        .map(|(name, url)| (name, url.unwrap().to_string()))
        .collect();
    assert_eq!(
        listed,
        [("AUTH_SVC", auth.to_owned()), ("CHAT_SVC", chat.to_owned())]
    );
    for name in ["auth-svc", "chat-svc", "search-svc"] {
        assert_eq!(registry.lookup(name), lookup(name), "{name}");
    }
}

fn kubernetes() {
    assert_eq!(
        lookup("auth-svc").unwrap().as_str(),
        "http://[fd00::7]:8001/"
    );
    assert_eq!(
        lookup("chat-svc").unwrap().as_str(),
        "https://chat.example/api/v1",
        "the _URL variable wins"
    );
    let registry = Registry::from_env();
    assert_eq!(registry.lookup("auth-svc"), lookup("auth-svc"));
    assert_eq!(registry.lookup("chat-svc"), lookup("chat-svc"));
    assert_eq!(registry.iter().count(), 2);
}

fn invalid() {
    let err = lookup("auth-svc").unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    assert_eq!(err.variable(), Some("AUTH_SVC_URL"));
    assert!(!err.to_string().contains("hunter2"));
    assert!(!service_configured("auth-svc"));
    assert_eq!(service_url("auth-svc"), None);
    assert_eq!(lookup_optional("auth-svc"), Err(err.clone()));
    assert_eq!(Registry::from_env().lookup("auth-svc"), Err(err));

    let err = lookup("chat-svc").unwrap_err();
    assert_eq!(err.variable(), Some("CHAT_SVC_SERVICE_PORT"));
}

fn empty() {
    assert!(lookup("auth-svc").unwrap_err().is_not_configured());
    assert!(!service_configured("auth-svc"));
    assert_eq!(Registry::from_env().iter().count(), 0);
}

#[cfg(unix)]
fn not_unicode() {
    for (service, variable) in [
        ("auth-svc", "AUTH_SVC_URL"),
        ("chat-svc", "CHAT_SVC_SERVICE_HOST"),
    ] {
        let err = lookup(service).unwrap_err();
        assert_eq!(err.variable(), Some(variable));
        assert!(err.to_string().contains("not valid unicode"), "{err}");
        assert_eq!(Registry::from_env().lookup(service), Err(err));
    }
    assert_eq!(Registry::from_env().iter().count(), 2);
    assert!(format!("{:?}", Registry::from_env()).contains("<not unicode>"));
}

// ===== tests (run in the parent) =====

#[test]
fn seed_examples_from_the_process_environment() {
    passes(
        "seed",
        &[
            ("AUTH_SVC_URL", "http://myproject-auth-svc:8001"),
            ("CHAT_SVC_URL", "http://myproject-chat-svc:8002"),
        ],
    );
}

#[test]
fn kubernetes_fallback_from_the_process_environment() {
    passes(
        "kubernetes",
        &[
            ("AUTH_SVC_SERVICE_HOST", "fd00::7"),
            ("AUTH_SVC_SERVICE_PORT", "8001"),
            ("CHAT_SVC_URL", "https://chat.example/api/v1"),
            ("CHAT_SVC_SERVICE_HOST", "10.0.0.8"),
            ("CHAT_SVC_SERVICE_PORT", "8002"),
        ],
    );
}

#[test]
fn invalid_values_from_the_process_environment() {
    passes(
        "invalid",
        &[
            ("AUTH_SVC_URL", "ftp://app:hunter2@auth"),
            ("CHAT_SVC_SERVICE_HOST", "10.0.0.8"),
            ("CHAT_SVC_SERVICE_PORT", "0"),
        ],
    );
}

#[test]
fn blank_values_in_the_process_environment_are_unset() {
    passes("empty", &[("AUTH_SVC_URL", "   ")]);
}

#[test]
fn must_service_url_panics_naming_every_variable() {
    let stderr = panics("must_not_configured", &[]);
    assert!(
        stderr.contains(
            "required service is unavailable: service \"auth-svc\" is not configured: \
             set AUTH_SVC_URL, or AUTH_SVC_SERVICE_HOST and AUTH_SVC_SERVICE_PORT"
        ),
        "{stderr}"
    );
    // `#[track_caller]`: the panic points at the caller, not into the crate.
    assert!(stderr.contains("tests/all/process_env.rs"), "{stderr}");
}

#[test]
fn must_service_url_panics_naming_the_invalid_variable_without_the_password() {
    let stderr = panics(
        "must_invalid",
        &[("AUTH_SVC_URL", "http://app:hunter2@auth/?q")],
    );
    assert!(
        stderr.contains("invalid url in AUTH_SVC_URL=\"http://app:***@auth/?***\": it has a query"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn values_that_are_not_unicode_are_invalid() {
    use std::os::unix::ffi::OsStrExt;

    let bad = std::ffi::OsStr::from_bytes(b"http://auth\xff:8001");
    let output = run(
        "not_unicode",
        &[("AUTH_SVC_URL", bad), ("CHAT_SVC_SERVICE_HOST", bad)],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{stdout}\n{stderr}"
    );
}
