//! Many endpoints behind one origin (`Client::balance`): three real
//! servers on 127.0.0.1, balancing, outlier ejection, the service breaker,
//! and re-resolution of a host name with an injected resolver.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode as AxumStatus;
use svc_httpclient::{
    Backoff, CircuitBreakerConfig, Client, Config, EndpointsConfig, OutlierConfig, State,
    StatusCode, reqwest::Url,
};
use svc_test_support::{self as support, Server};

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// Retries at once, no budget, and a latency estimate that forgets in
/// 20 ms: on a busy machine one slow response (a connection set up under
/// load) would otherwise keep a replica out of the draws for seconds,
/// which is the balancer's job but not what these tests are about.
fn config(max_retries: u32, outlier: OutlierConfig) -> Config {
    Config::default()
        .max_retries(max_retries)
        .retry_budget(None)
        .backoff(
            Backoff::default()
                .base(Duration::from_millis(1))
                .jitter(false),
        )
        .endpoints(
            EndpointsConfig::default()
                .outlier(outlier)
                .decay(Duration::from_millis(20)),
        )
}

/// Calls until `server` has seen `hits` requests (at most 500 calls), all
/// answered 200; how many calls it took.
async fn until_hits(client: &Client, base: &Url, server: &Server, hits: usize) -> usize {
    for calls in 1..=500 {
        let resp = client.get(base.clone()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        if server.hits() >= hits {
            return calls;
        }
    }
    panic!("{} got {} requests of 500", server.addr(), server.hits());
}

/// A client balancing over `servers`, and the URL to call (the first one's).
fn balanced(config: Config, servers: &[&Server]) -> (Client, Url) {
    let client = Client::new(config).unwrap();
    let urls: Vec<Url> = servers.iter().map(|s| url(&s.url("/"))).collect();
    client.balance(&urls[0], &urls).unwrap();
    (client, urls[0].clone())
}

async fn get_ok(client: &Client, base: &Url, n: usize) {
    for i in 0..n {
        let resp = client
            .get(base.join(&format!("/n/{i}")).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "call {i}");
    }
}

fn state_of(client: &Client, base: &Url, server: &Server) -> svc_httpclient::EndpointState {
    let address = server.addr().to_string();
    client
        .endpoints(base)
        .into_iter()
        .find(|e| e.address == address)
        .unwrap_or_else(|| panic!("no endpoint {address}"))
}

#[tokio::test]
async fn a_failing_replica_is_ejected_and_the_others_serve_everything() {
    let (good1, good2, bad) = (
        support::always(200).await,
        support::always(200).await,
        support::always(503).await,
    );
    let outlier = OutlierConfig::default().consecutive_failures(3);
    // The failing one first: it is also the origin the client is called at.
    let (client, base) = balanced(config(2, outlier), &[&bad, &good1, &good2]);

    let calls = until_hits(&client, &base, &bad, 3).await;
    get_ok(&client, &base, 60).await;

    // Ejected after its third failure in a row; every call succeeded on
    // another replica.
    assert_eq!(bad.hits(), 3);
    assert_eq!(good1.hits() + good2.hits(), calls + 60);
    let state = state_of(&client, &base, &bad);
    assert!(state.ejected_for.is_some(), "{state:?}");
    assert_eq!(state.times_ejected, 1);
    assert_eq!((state.requests, state.failures), (3, 3));
    // One replica of three failing is not the service failing.
    assert_eq!(client.circuit_state(&base), Some(State::Closed));
    assert!(client.endpoints(&base).iter().all(|e| e.in_flight == 0));
}

#[tokio::test]
async fn an_ejected_replica_returns_after_its_ejection() {
    let (good1, good2) = (support::always(200).await, support::always(200).await);
    // Three failures, then healthy.
    let flaky = support::statuses(&[503, 503, 503, 200]).await;
    let outlier = OutlierConfig::default()
        .consecutive_failures(3)
        .base_ejection_time(Duration::from_millis(300));
    let (client, base) = balanced(config(2, outlier), &[&good1, &flaky, &good2]);

    until_hits(&client, &base, &flaky, 3).await;
    get_ok(&client, &base, 10).await;
    assert_eq!(flaky.hits(), 3);
    let ejected_for = state_of(&client, &base, &flaky)
        .ejected_for
        .expect("ejected");
    get_ok(&client, &base, 10).await;
    assert_eq!(flaky.hits(), 3, "still ejected");

    tokio::time::sleep(ejected_for + Duration::from_millis(20)).await;
    // Back, as a peer: it serves again, and succeeds.
    until_hits(&client, &base, &flaky, 3 + 5).await;
    let state = state_of(&client, &base, &flaky);
    assert_eq!(state.ejected_for, None);
    assert_eq!(state.times_ejected, 1);
}

#[tokio::test]
async fn a_slow_replica_gets_less_traffic_than_the_fast_ones() {
    let (fast1, fast2) = (support::always(200).await, support::always(200).await);
    // The default decay (10 s): the slow replica's 25 ms stay in its
    // estimate for the whole test.
    let slow = support::serve(|_| async {
        tokio::time::sleep(Duration::from_millis(25)).await;
        AxumStatus::OK
    })
    .await;
    let (client, base) = balanced(
        config(0, OutlierConfig::default()).endpoints(EndpointsConfig::default()),
        &[&fast1, &slow, &fast2],
    );

    get_ok(&client, &base, 60).await;

    assert_eq!(fast1.hits() + fast2.hits() + slow.hits(), 60);
    assert!(
        slow.hits() * 4 < fast1.hits().min(fast2.hits()),
        "slow {} fast {} {}",
        slow.hits(),
        fast1.hits(),
        fast2.hits()
    );
    let slow_state = state_of(&client, &base, &slow);
    assert!(
        slow_state.latency >= Duration::from_millis(10),
        "{slow_state:?}"
    );
}

#[tokio::test]
async fn all_three_failing_open_the_service_breaker() {
    let servers = [
        support::always(503).await,
        support::always(503).await,
        support::always(503).await,
    ];
    let breaker = CircuitBreakerConfig::default().failure_threshold(5);
    let config =
        config(0, OutlierConfig::default().consecutive_failures(3)).circuit_breaker(Some(breaker));
    let (client, base) = balanced(config, &[&servers[0], &servers[1], &servers[2]]);

    // A failure is absorbed while another replica may still be healthy (not
    // ejected, its last attempt not failed, or never tried): at least the
    // first failures of two replicas, at most those until the third is
    // tried (the balancer's draws). Then five recorded failures open it.
    let mut calls = 0;
    while client.circuit_state(&base) != Some(State::Open) {
        calls += 1;
        assert!(calls <= 24, "the breaker did not open after {calls} calls");
        let resp = client.get(base.clone()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert!(calls >= 5 + 2, "{calls}");
    let err = client.get(base.clone()).await.unwrap_err();
    assert!(err.is_circuit_open());
    assert_eq!(servers.iter().map(Server::hits).sum::<usize>(), calls);
}

#[tokio::test]
async fn one_of_three_failing_keeps_the_service_breaker_closed() {
    let (good1, good2, bad) = (
        support::always(200).await,
        support::always(200).await,
        support::always(503).await,
    );
    // The most sensitive breaker there is: one recorded failure opens it.
    let breaker = CircuitBreakerConfig::default().failure_threshold(1);
    let config =
        config(0, OutlierConfig::default().consecutive_failures(0)).circuit_breaker(Some(breaker));
    let (client, base) = balanced(config, &[&good1, &bad, &good2]);

    let mut failed = 0;
    for _ in 0..30 {
        let resp = client.get(base.clone()).await.unwrap();
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            failed += 1;
        }
    }
    assert!(failed > 0, "the failing replica was never called");
    assert_eq!(bad.hits(), failed);
    assert_eq!(client.circuit_state(&base), Some(State::Closed));
}

#[tokio::test]
async fn a_retry_goes_to_another_endpoint() {
    let (good, bad) = (support::always(200).await, support::always(503).await);
    // No ejection: only the retry's preference keeps the calls whole.
    let (client, base) = balanced(
        config(1, OutlierConfig::default().consecutive_failures(0)),
        &[&bad, &good],
    );

    get_ok(&client, &base, 30).await;

    assert!(bad.hits() > 0, "the failing replica was never called");
    assert_eq!(good.hits(), 30);
}

#[tokio::test]
async fn balance_rejects_bad_endpoint_lists() {
    let client = Client::new(Config::default()).unwrap();
    let base = url("http://127.0.0.1:1/");
    assert!(client.balance(&base, &[]).is_err());
    let err = client
        .balance(&base, &[base.clone(), url("https://127.0.0.1:2/")])
        .unwrap_err();
    assert!(err.to_string().contains("scheme"), "{err}");
    // A single endpoint that is an IP address: no set, called as before.
    client.balance(&base, std::slice::from_ref(&base)).unwrap();
    assert!(client.endpoints(&base).is_empty());
}

// ===== host names =====

/// What the injected resolver answers next.
#[derive(Clone)]
enum Answer {
    Addrs(Vec<SocketAddr>),
    Fails,
    Nothing,
}

#[derive(Clone)]
struct FakeDns {
    answer: Arc<Mutex<Answer>>,
    asked: Arc<AtomicUsize>,
}

impl FakeDns {
    fn new(answer: Answer) -> FakeDns {
        FakeDns {
            answer: Arc::new(Mutex::new(answer)),
            asked: Arc::default(),
        }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn config(&self) -> EndpointsConfig {
        let dns = self.clone();
        EndpointsConfig::default()
            .refresh_interval(Duration::from_secs(1))
            // As `config()`: a latency spike is forgotten in 20 ms.
            .decay(Duration::from_millis(20))
            .resolver(move |host: &str, _port: u16| {
                assert_eq!(host, "replicas.test");
                dns.asked.fetch_add(1, Ordering::SeqCst);
                let answer = dns.answer.lock().unwrap().clone();
                async move {
                    match answer {
                        Answer::Addrs(addrs) => Ok(addrs),
                        Answer::Fails => Err(io::Error::other("SERVFAIL")),
                        Answer::Nothing => Ok(Vec::new()),
                    }
                }
            })
    }
}

/// Three replicas on 127.0.0.1, .2 and .3 with one port, as the pods of a
/// headless Service.
async fn replicas() -> Vec<Server> {
    let first = support::serve(|_| async { AxumStatus::OK }).await;
    let port = first.addr().port();
    let mut servers = vec![first];
    for ip in [[127, 0, 0, 2], [127, 0, 0, 3]] {
        servers.push(
            support::serve_on(SocketAddr::from((ip, port)), |_| async { AxumStatus::OK }).await,
        );
    }
    servers
}

#[tokio::test]
async fn a_host_name_gives_one_endpoint_per_address_and_keeps_the_last_good_set() {
    let servers = replicas().await;
    let addrs: Vec<SocketAddr> = servers.iter().map(Server::addr).collect();
    let dns = FakeDns::new(Answer::Addrs(addrs.clone()));
    let client = Client::new(Config::default().endpoints(dns.config())).unwrap();
    let base = url(&format!("http://replicas.test:{}/", addrs[0].port()));
    client.balance(&base, std::slice::from_ref(&base)).unwrap();

    assert_eq!(client.refresh_endpoints(&base).await, 3);
    get_ok(&client, &base, 30).await;
    for server in &servers {
        assert!(server.hits() > 0, "{} got nothing", server.addr());
        // The name, not the address, is the request's authority.
        let host = format!("replicas.test:{}", addrs[0].port());
        assert!(
            server
                .header_values("host")
                .iter()
                .all(|h| h.as_deref() == Some(host.as_str()))
        );
    }
    let mut shown: Vec<String> = client
        .endpoints(&base)
        .into_iter()
        .map(|e| e.address)
        .collect();
    shown.sort();
    assert_eq!(
        shown,
        addrs.iter().map(ToString::to_string).collect::<Vec<_>>()
    );

    // A pod goes away.
    dns.set(Answer::Addrs(addrs[..2].to_vec()));
    assert_eq!(client.refresh_endpoints(&base).await, 2);
    let third = servers[2].hits();
    get_ok(&client, &base, 20).await;
    assert_eq!(servers[2].hits(), third);

    // A failing or empty answer keeps the last good set.
    for answer in [Answer::Fails, Answer::Nothing] {
        dns.set(answer);
        assert_eq!(client.refresh_endpoints(&base).await, 2);
        get_ok(&client, &base, 4).await;
    }
    // One address: the name is called as it is, without a set to balance.
    dns.set(Answer::Addrs(vec![addrs[0]]));
    assert_eq!(client.refresh_endpoints(&base).await, 1);
    let before = servers[0].hits();
    get_ok(&client, &base, 3).await;
    assert_eq!(client.endpoints(&base).len(), 1);
    assert_eq!(servers[0].hits(), before + 3);
}

#[tokio::test(start_paused = true)]
async fn the_name_is_resolved_again_in_the_background_until_the_client_is_dropped() {
    let servers = replicas().await;
    let addrs: Vec<SocketAddr> = servers.iter().map(Server::addr).collect();
    let dns = FakeDns::new(Answer::Addrs(addrs[..1].to_vec()));
    let client = Client::new(Config::default().endpoints(dns.config())).unwrap();
    let base = url(&format!("http://replicas.test:{}/", addrs[0].port()));
    client.balance(&base, std::slice::from_ref(&base)).unwrap();
    // Nothing is resolved before the first call (no runtime is needed to
    // build a client).
    assert_eq!(dns.asked.load(Ordering::SeqCst), 0);

    get_ok(&client, &base, 1).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(dns.asked.load(Ordering::SeqCst), 1);
    assert_eq!(client.endpoints(&base).len(), 1);

    // Scaled up: the next resolution finds the new pods.
    dns.set(Answer::Addrs(addrs.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(dns.asked.load(Ordering::SeqCst), 2);
    assert_eq!(client.endpoints(&base).len(), 3);

    drop(client);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        dns.asked.load(Ordering::SeqCst) <= 3,
        "the task outlived its client"
    );
}

#[tokio::test(start_paused = true)]
async fn a_resolver_that_hangs_costs_the_first_call_at_most_half_its_time() {
    let server = support::always(200).await;
    let hanging = EndpointsConfig::default().resolver(|_: &str, _: u16| std::future::pending());
    let client = Client::new(
        Config::default()
            .timeout(Duration::from_secs(2))
            .endpoints(hanging),
    )
    .unwrap();
    // `localhost`: the pool resolves it itself, as without a set.
    let base = url(&format!("http://localhost:{}/", server.addr().port()));
    client.balance(&base, std::slice::from_ref(&base)).unwrap();

    let start = tokio::time::Instant::now();
    let resp = client.get(base.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        start.elapsed() <= Duration::from_millis(1100),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(client.endpoints(&base).len(), 1);
}

#[tokio::test]
async fn attempt_spans_name_the_host_and_the_address_of_each_endpoint() {
    let servers = replicas().await;
    let addrs: Vec<SocketAddr> = servers.iter().map(Server::addr).collect();
    let dns = FakeDns::new(Answer::Addrs(addrs.clone()));
    let client = Client::new(Config::default().endpoints(dns.config())).unwrap();
    let port = addrs[0].port();
    let base = url(&format!("http://replicas.test:{port}/"));
    client.balance(&base, std::slice::from_ref(&base)).unwrap();
    assert_eq!(client.refresh_endpoints(&base).await, 3);
    let (_events, spans, _guard) = support::capture();

    get_ok(&client, &base, 30).await;

    let attempts = spans.named("HTTP GET");
    assert_eq!(attempts.len(), 30);
    let mut peers = std::collections::BTreeSet::new();
    for span in &attempts {
        // The name is the server; the address is the peer.
        assert_eq!(span.field("server.address"), Some("replicas.test"));
        assert_eq!(span.field("server.port"), Some(port.to_string().as_str()));
        assert!(
            span.field("url.full")
                .unwrap()
                .starts_with("http://replicas.test:")
        );
        peers.insert(span.field("network.peer.address").unwrap().to_owned());
    }
    let ips: std::collections::BTreeSet<String> =
        addrs.iter().map(|a| a.ip().to_string()).collect();
    assert!(peers.is_subset(&ips), "{peers:?}");
    assert!(peers.len() >= 2, "every attempt went to {peers:?}");
}
