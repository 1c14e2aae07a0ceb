//! Discovery wiring: a `Registry` (never `set_var`) names the service's URL.

use crate::support::{fast_config, recording_server};
use svc_client::{Client, ClientConfig, Registry, Url};

#[test]
fn an_unconfigured_service_is_an_error_naming_the_variables() {
    let registry = Registry::from_vars([("CHAT_SVC_URL", "http://127.0.0.1:1")]);
    let err = Client::from_registry(&registry, "auth-svc", ClientConfig::default()).unwrap_err();
    assert!(err.is_not_configured(), "{err}");
    assert!(err.is_discovery());
    assert!(!err.is_circuit_open());
    let msg = err.to_string();
    assert!(msg.contains("AUTH_SVC_URL"), "{msg}");
    assert!(msg.contains("AUTH_SVC_SERVICE_HOST"), "{msg}");
}

#[test]
fn an_invalid_url_is_a_discovery_error_naming_the_variable() {
    for value in ["not a url", "ftp://files:21", "http://", "/relative"] {
        let registry = Registry::from_vars([("AUTH_SVC_URL", value)]);
        let err =
            Client::from_registry(&registry, "auth-svc", ClientConfig::default()).unwrap_err();
        assert!(err.is_discovery(), "{value}: {err}");
        assert!(
            !err.is_not_configured(),
            "{value}: set but invalid is not 'absent'"
        );
        assert!(err.to_string().contains("AUTH_SVC_URL"), "{value}: {err}");
    }
}

#[test]
fn an_invalid_service_name_is_a_discovery_error() {
    let registry = Registry::from_vars(Vec::<(String, String)>::new());
    let err = Client::from_registry(&registry, "auth svc", ClientConfig::default()).unwrap_err();
    assert!(err.is_discovery() && !err.is_not_configured(), "{err}");
}

#[test]
fn credentials_in_the_url_never_show() {
    let registry = Registry::from_vars([("AUTH_SVC_URL", "http://user:s3cret@127.0.0.1:1/api")]);
    let client = Client::from_registry(&registry, "auth-svc", ClientConfig::default()).unwrap();
    assert!(!format!("{client:?}").contains("s3cret"), "{client:?}");
    let registry = Registry::from_vars([("AUTH_SVC_URL", "ftp://user:s3cret@host")]);
    let err = Client::from_registry(&registry, "auth-svc", ClientConfig::default()).unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
}

#[tokio::test]
async fn a_configured_service_is_called_under_its_base_path() {
    let server = recording_server(200, "ok").await;
    let (addr, seen) = (server.addr(), &server);
    let registry = Registry::from_vars([
        ("AUTH_SVC_URL", format!("http://{addr}/auth/v1")),
        ("CHAT_SVC_URL", "http://127.0.0.1:1".to_owned()),
    ]);
    let client = Client::from_registry(&registry, "auth-svc", fast_config()).unwrap();
    assert_eq!(client.service(), "auth-svc");
    assert_eq!(client.base_url().as_str(), format!("http://{addr}/auth/v1"));
    client.get("/users/1").await.unwrap();
    assert_eq!(seen.uris(), ["/auth/v1/users/1"]);
}

#[tokio::test]
async fn the_kubernetes_fallback_is_used_when_the_url_is_unset() {
    let server = recording_server(200, "ok").await;
    let (addr, seen) = (server.addr(), &server);
    let registry = Registry::from_vars([
        ("AUTH_SVC_SERVICE_HOST", addr.ip().to_string()),
        ("AUTH_SVC_SERVICE_PORT", addr.port().to_string()),
    ]);
    let client = Client::from_registry(&registry, "auth-svc", fast_config()).unwrap();
    client.get("/users/1").await.unwrap();
    assert_eq!(seen.uris(), ["/users/1"]);
}

#[test]
fn a_base_url_must_be_http_with_a_host_and_no_query() {
    for bad in [
        "ftp://host/",
        "http://host/?x=1",
        "http://host/#f",
        "data:text/plain,x",
    ] {
        let err = Client::with_base_url("x", Url::parse(bad).unwrap(), ClientConfig::default())
            .unwrap_err();
        assert!(err.is_config(), "{bad}: {err}");
        assert!(err.to_string().contains("base_url"), "{bad}: {err}");
    }
    let ok = Client::with_base_url(
        "x",
        Url::parse("https://host:8443/p").unwrap(),
        ClientConfig::default(),
    )
    .unwrap();
    assert_eq!(ok.url("/q").unwrap().as_str(), "https://host:8443/p/q");
}

#[test]
fn an_invalid_config_names_the_setting() {
    let registry = Registry::from_vars([("AUTH_SVC_URL", "http://127.0.0.1:1")]);
    let err = Client::from_registry(
        &registry,
        "auth-svc",
        ClientConfig::default().decode_limit(0),
    )
    .unwrap_err();
    assert!(err.is_config());
    assert!(err.to_string().contains("decode_limit"), "{err}");

    let err = Client::from_registry(
        &registry,
        "auth-svc",
        ClientConfig::default().timeout(std::time::Duration::ZERO),
    )
    .unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(err.to_string().contains("timeout"), "{err}");
}

#[tokio::test]
async fn credentials_never_show_in_call_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let registry =
        Registry::from_vars([("AUTH_SVC_URL", format!("http://user:s3cret@{addr}/api"))]);
    let client =
        Client::from_registry(&registry, "auth-svc", fast_config().max_retries(0)).unwrap();
    let err = client.get("/users/1").await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
    if let Some(url) = err.url() {
        assert!(url.password().is_none(), "{url}");
    }
}
