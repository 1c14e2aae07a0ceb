//! A service with several replicas, listed in `{NAME}_URL`: balancing,
//! ejection, the service breaker, spans and metrics through the facade.

use std::collections::BTreeSet;
use std::time::Duration;

use svc_client::{Client, ClientConfig, EndpointsConfig, OutlierConfig, Registry, State};
use svc_test_support::{self as support, Server};

use crate::support::fast_config;

/// [`fast_config`] with a latency estimate that forgets in 20 ms: on a
/// busy machine one slow response would otherwise keep a replica out of
/// the draws for seconds, which is the balancer's job but not what these
/// tests are about.
fn config() -> ClientConfig {
    fast_config().endpoints(EndpointsConfig::default().decay(Duration::from_millis(20)))
}

/// Calls `/x` until `server` has seen `hits` requests (at most 500 calls),
/// all answered 200; how many calls it took.
async fn until_hits(client: &Client, server: &Server, hits: usize) -> usize {
    for calls in 1..=500 {
        assert_eq!(client.get("/x").await.unwrap().status(), 200);
        if server.hits() >= hits {
            return calls;
        }
    }
    panic!("{} got {} requests of 500", server.addr(), server.hits());
}

fn registry(servers: &[&Server]) -> Registry {
    let list: Vec<String> = servers
        .iter()
        .map(|s| format!("http://{}/api", s.addr()))
        .collect();
    Registry::from_vars([("AUTH_SVC_URL", list.join(","))])
}

#[tokio::test]
async fn a_failing_replica_is_ejected_and_the_service_stays_healthy() {
    let (good1, good2, bad) = (
        support::always(200).await,
        support::always(200).await,
        support::always(503).await,
    );
    let client =
        Client::from_registry(&registry(&[&good1, &bad, &good2]), "auth-svc", config()).unwrap();

    let calls = until_hits(&client, &bad, 5).await;
    for i in 0..60 {
        let resp = client.get(&format!("/users/{i}")).await.unwrap();
        assert_eq!(resp.status(), 200, "call {i}");
    }

    // Ejected after five failures in a row (the default), each retried on
    // another replica; the paths kept the base path.
    assert_eq!(bad.hits(), 5);
    assert_eq!(good1.hits() + good2.hits(), calls + 60);
    assert!(
        good1
            .seen()
            .iter()
            .chain(&good2.seen())
            .all(|s| s.path.starts_with("/api/"))
    );
    assert_eq!(client.circuit_state(), Some(State::Closed));
    let endpoints = client.endpoints();
    assert_eq!(endpoints.len(), 3);
    let bad_state = endpoints
        .iter()
        .find(|e| e.address == bad.addr().to_string())
        .unwrap();
    assert!(bad_state.ejected_for.is_some(), "{bad_state:?}");
    assert_eq!(bad_state.times_ejected, 1);
    assert_eq!(client.base_url().port(), Some(good1.addr().port()));
}

#[tokio::test]
async fn every_replica_failing_opens_the_breaker() {
    let servers = [
        support::always(503).await,
        support::always(503).await,
        support::always(503).await,
    ];
    let config = config().max_retries(0).endpoints(
        EndpointsConfig::default().outlier(OutlierConfig::default().consecutive_failures(3)),
    );
    let client = Client::from_registry(
        &registry(&[&servers[0], &servers[1], &servers[2]]),
        "auth-svc",
        config,
    )
    .unwrap();
    let mut calls = 0;
    while client.circuit_state() != Some(State::Open) {
        calls += 1;
        assert!(calls <= 24, "the breaker did not open");
        assert_eq!(client.get("/x").await.unwrap().status(), 503);
    }
    assert!(client.get("/x").await.unwrap_err().is_circuit_open());
}

#[tokio::test]
async fn attempt_spans_name_the_endpoint() {
    let servers = [
        support::always(200).await,
        support::always(200).await,
        support::always(200).await,
    ];
    let client = Client::from_registry(
        &registry(&[&servers[0], &servers[1], &servers[2]]),
        "auth-svc",
        ClientConfig::default(),
    )
    .unwrap();
    let (_events, spans, _guard) = support::capture();

    for _ in 0..30 {
        client.get("/ping").await.unwrap();
    }

    let ports: BTreeSet<String> = servers
        .iter()
        .map(|s| s.addr().port().to_string())
        .collect();
    let attempts = spans.named("HTTP GET");
    assert_eq!(attempts.len(), 30);
    let mut seen = BTreeSet::new();
    for span in &attempts {
        let port = span.field("server.port").unwrap().to_owned();
        assert!(ports.contains(&port), "{}", span.all_text());
        assert_eq!(span.field("network.peer.address"), Some("127.0.0.1"));
        let full = span.field("url.full").unwrap();
        assert_eq!(full, format!("http://127.0.0.1:{port}/api/ping"));
        seen.insert(port);
    }
    assert!(seen.len() >= 2, "every attempt went to {seen:?}");
    // Which replica served is in the servers' counts too.
    assert_eq!(servers.iter().map(Server::hits).sum::<usize>(), 30);
}

#[test]
fn bad_lists_fail_at_construction_naming_the_variable() {
    for value in [
        "http://a:1,,http://b:1",
        "http://a:1,https://b:1",
        "http://a:1/x,http://b:1/y",
    ] {
        let registry = Registry::from_vars([("AUTH_SVC_URL", value)]);
        let err =
            Client::from_registry(&registry, "auth-svc", ClientConfig::default()).unwrap_err();
        assert!(err.to_string().contains("AUTH_SVC_URL"), "{value}: {err}");
        assert!(!err.is_not_configured());
    }
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn requests_and_ejections_are_counted_per_endpoint() {
    use crate::metrics::{points, provider, value};
    use opentelemetry::metrics::MeterProvider as _;

    let (exporter, provider) = provider();
    let (good, bad) = (support::always(200).await, support::always(503).await);
    let config = config().meter(provider.meter("test"));
    let client = Client::from_registry(&registry(&[&good, &bad]), "auth-svc", config).unwrap();
    let calls = until_hits(&client, &bad, 5).await;
    provider.force_flush().unwrap();
    let metrics = exporter.get_finished_metrics().unwrap();

    let requests = points(&metrics, "svc.client.endpoint.requests");
    let (good_addr, bad_addr) = (good.addr().to_string(), bad.addr().to_string());
    let count = |endpoint: &str, outcome: &str| {
        value(
            &requests,
            &[
                ("peer.service", "auth-svc"),
                ("svc.endpoint", endpoint),
                ("svc.outcome", outcome),
            ],
        )
    };
    assert_eq!(count(&bad_addr, "error"), 5.0);
    assert_eq!(count(&good_addr, "ok"), calls as f64);
    let ejections = points(&metrics, "svc.client.endpoint.ejections");
    assert_eq!(value(&ejections, &[("svc.endpoint", &bad_addr)]), 1.0);
    assert_eq!(value(&ejections, &[]), 1.0);
}
