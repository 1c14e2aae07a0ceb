//! A service in a minimal container image (`FROM scratch`: no
//! `/etc/ssl/certs`) still builds its clients and calls plain-HTTP siblings;
//! an `https` call then fails with a typed error saying the root
//! certificates are missing.
//!
//! The scenario runs in a child process whose `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` point into an empty folder (never `std::env::set_var`).

use std::process::Command;

const SCENARIO: &str = "SVC_CLIENT_NO_CA_SCENARIO";

#[test]
fn plain_http_siblings_work_without_a_ca_bundle() {
    let empty = std::env::temp_dir().join(format!("svc-no-ca-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "no_ca_bundle::child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env(SCENARIO, "1")
        .env("SSL_CERT_FILE", empty.join("none.pem"))
        .env("SSL_CERT_DIR", &empty)
        .env("RUST_BACKTRACE", "0");
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    let output = command.output().unwrap();
    let _ = std::fs::remove_dir_all(&empty);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

/// Runs in the child only.
#[test]
#[ignore = "run by plain_http_siblings_work_without_a_ca_bundle in a child process"]
fn child() {
    assert!(
        std::env::var_os(SCENARIO).is_some(),
        "run by the parent test"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(|| async { "ok" });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let registry = svc_client::Registry::from_vars([
            ("AUTH_SVC_URL", format!("http://{addr}")),
            ("BILLING_SVC_URL", "https://127.0.0.1:1".to_owned()),
        ]);
        for config in [
            svc_client::ClientConfig::default(),
            svc_client::ClientConfig::default().shared_pool(false),
        ] {
            let client = svc_client::Client::from_registry(&registry, "auth-svc", config.clone())
                .unwrap_or_else(|e| panic!("a plain-HTTP client builds without roots: {e}"));
            let body = client.get("/x").text().await.unwrap();
            assert_eq!(body, "ok");

            let billing = svc_client::Client::from_registry(&registry, "billing-svc", config)
                .unwrap_or_else(|e| panic!("an https client builds too: {e}"));
            let err = billing.get("/charges").await.unwrap_err();
            let message = err.to_string();
            assert!(message.contains("root certificates"), "{message}");
            assert!(err.is_connect(), "{err:?}");
            assert_eq!(err.attempts(), 0, "nothing was sent: {err:?}");
        }
        let http = svc_httpclient_client();
        let err = http.get("https://127.0.0.1:1/").await.unwrap_err();
        assert!(err.to_string().contains("root certificates"), "{err}");
        assert!(
            std::error::Error::source(&err).is_some(),
            "the cause is kept"
        );
    });
}

fn svc_httpclient_client() -> svc_httpclient::Client {
    svc_httpclient::Client::new(Default::default()).unwrap()
}
