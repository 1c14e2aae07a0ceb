//! Deadlines that cross hops (`svc_client::deadline`, `server::layer()`):
//! real axum and tonic servers on 127.0.0.1, in the test's runtime, with
//! tokio's time paused (a loaded machine cannot make a timer late, and a
//! handler that would work for a second costs nothing).
#![cfg(feature = "axum")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use svc_client::reqwest;
use svc_client::{CircuitBreakerConfig, Client, ClientConfig, deadline, server};
use svc_test_support::capture;
use tokio::time::Instant;

use crate::support::{Seen, client_for, fast_config, recording_server, serve, serve_router};

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What a handler saw of its deadline.
#[derive(Debug, Default, Clone)]
struct Observed {
    calls: Arc<AtomicUsize>,
    remaining: Arc<Mutex<Vec<Option<Duration>>>>,
    /// When the handler saw its deadline pass.
    expired_at: Arc<Mutex<Option<Instant>>>,
    /// When the handler's future ended (completed or dropped).
    ended_at: Arc<Mutex<Option<Instant>>>,
}

impl Observed {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn last_remaining(&self) -> Option<Duration> {
        self.remaining.lock().unwrap().last().copied().flatten()
    }
}

/// Sets `ended_at` when the handler's future is dropped, finished or not.
struct EndGuard(Arc<Mutex<Option<Instant>>>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(Instant::now());
    }
}

/// A handler that records its budget and then works for up to a second,
/// stopping at its deadline (as a well-behaved slow handler does). The
/// work runs in a task of its own, which carries the request's deadline
/// (`deadline::propagate`): a request dropped by its caller hanging up does
/// not end it, the deadline does.
fn slow_handler(observed: Observed) -> Router {
    Router::new().route(
        "/work",
        get(move || {
            let observed = observed.clone();
            async move {
                observed.calls.fetch_add(1, Ordering::SeqCst);
                observed
                    .remaining
                    .lock()
                    .unwrap()
                    .push(deadline::remaining());
                let work = tokio::spawn(deadline::propagate(async move {
                    let _end = EndGuard(observed.ended_at.clone());
                    let work = tokio::time::sleep(Duration::from_secs(1));
                    match deadline::current() {
                        Some(at) => {
                            if tokio::time::timeout_at(at, work).await.is_err() {
                                assert_eq!(deadline::remaining(), Some(Duration::ZERO));
                                *observed.expired_at.lock().unwrap() = Some(Instant::now());
                                return StatusCode::GATEWAY_TIMEOUT;
                            }
                        }
                        None => work.await,
                    }
                    StatusCode::OK
                }));
                work.await.unwrap()
            }
        }),
    )
}

/// Waits (at most 500 ms) for `slot` to be set.
async fn set_soon(slot: &Mutex<Option<Instant>>) -> Option<Instant> {
    for _ in 0..100 {
        if let Some(at) = *slot.lock().unwrap() {
            return Some(at);
        }
        tokio::time::sleep(ms(5)).await;
    }
    None
}

// ===== three hops =====

/// How B's call to C ended, and when.
type CallEnd = (Result<StatusCode, svc_client::Error>, Instant);

/// A sends with a 200 ms budget → B (server layer + facade) → C (server
/// layer, its handler would work for 1 s).
#[tokio::test(start_paused = true)]
async fn three_hops_share_one_budget() {
    let c_seen = Observed::default();
    let c = serve_router(slow_handler(c_seen.clone()).layer(server::layer())).await;

    // Time is paused: the clocks are tokio's, and a loaded machine does not
    // make a timer late. B keeps the default margin (5 ms) of A's budget.
    let margin = ms(5);
    let c_client = client_for("c-svc", c.addr(), "", fast_config());
    let c_breaker = c_client.clone();
    let b_result: Arc<Mutex<Option<CallEnd>>> = Arc::default();
    let b_end = Arc::new(Mutex::new(None));
    let b_app = Router::new()
        .route(
            "/hop",
            get({
                let (b_result, b_end) = (b_result.clone(), b_end.clone());
                move || {
                    let (c_client, b_result, b_end) =
                        (c_client.clone(), b_result.clone(), b_end.clone());
                    async move {
                        let _end = EndGuard(b_end);
                        let result = c_client.get("/work").await.map(|r| r.status());
                        let status = match &result {
                            Ok(status) => *status,
                            Err(_) => StatusCode::GATEWAY_TIMEOUT,
                        };
                        *b_result.lock().unwrap() = Some((result, Instant::now()));
                        status
                    }
                }
            }),
        )
        .layer(server::layer());
    let b = serve_router(b_app).await;

    // A: any HTTP client, one attempt.
    let a = reqwest::Client::new();
    let start = Instant::now();
    let a_deadline = start + ms(200);
    let resp = a
        .get(b.url("/hop"))
        .header(deadline::HEADER, "200")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        Instant::now() <= a_deadline,
        "A waited {:?}",
        start.elapsed()
    );

    // C saw less than A's budget, and watched it pass.
    assert_eq!(c_seen.calls(), 1);
    let c_budget = c_seen.last_remaining().expect("C had a deadline");
    assert!(
        c_budget <= ms(200) - margin && c_budget > ms(150),
        "{c_budget:?}"
    );
    // (C's work may end after B gave up on it: C's clock started a little later.)
    let expired_at = set_soon(&c_seen.expired_at)
        .await
        .expect("C saw its deadline pass");
    assert!(expired_at <= a_deadline, "{:?}", expired_at - a_deadline);
    let c_end = set_soon(&c_seen.ended_at).await.expect("C's work ended");
    assert!(c_end <= a_deadline, "{:?}", c_end - a_deadline);

    // B's call to C ended by A's deadline: out of time, or C's own 504.
    let (result, b_call_end) = b_result.lock().unwrap().take().expect("B called C");
    assert!(b_call_end <= a_deadline, "{:?}", b_call_end - a_deadline);
    match result {
        Ok(status) => assert_eq!(status, StatusCode::GATEWAY_TIMEOUT),
        Err(err) => assert!(err.is_deadline_exceeded() && err.is_timeout(), "{err:?}"),
    }
    let b_end = b_end.lock().unwrap().expect("B's handler ended");
    assert!(b_end <= a_deadline + margin, "{:?}", b_end - a_deadline);
    // Running out of A's budget is not a failure of C.
    assert_eq!(c_breaker.metrics().unwrap().failures(), 0);
}

// ===== shedding =====

#[tokio::test(start_paused = true)]
async fn an_expired_budget_never_reaches_the_handler() {
    let observed = Observed::default();
    #[cfg(feature = "metrics")]
    let (exporter, provider) = crate::metrics::provider();
    let layer = server::layer();
    #[cfg(feature = "metrics")]
    let layer = {
        use opentelemetry::metrics::MeterProvider as _;
        layer.meter(&provider.meter("test"))
    };
    let server = serve_router(slow_handler(observed.clone()).layer(layer)).await;
    let http = reqwest::Client::new();
    for (header, value) in [
        ("svc-timeout-ms", "0"),
        ("grpc-timeout", "0m"),
        ("svc-timeout-ms", "0000"),
    ] {
        let resp = http
            .get(server.url("/work"))
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::GATEWAY_TIMEOUT,
            "{header}: {value}"
        );
    }
    assert_eq!(observed.calls(), 0, "the handler never ran");
    assert_eq!(server.hits(), 3);
    #[cfg(feature = "metrics")]
    {
        provider.force_flush().unwrap();
        let metrics = exporter.get_finished_metrics().unwrap();
        let points = crate::metrics::points(&metrics, "svc.server.shed");
        assert_eq!(
            crate::metrics::value(&points, &[("svc.shed.reason", "expired")]),
            3.0
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_budget_below_min_budget_is_shed_and_shedding_can_be_off() {
    let observed = Observed::default();
    let shedding =
        serve_router(slow_handler(observed.clone()).layer(server::layer().min_budget(ms(50))))
            .await;
    let http = reqwest::Client::new();
    let resp = http
        .get(shedding.url("/work"))
        .header("svc-timeout-ms", "20")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(observed.calls(), 0);

    let not_shedding =
        serve_router(slow_handler(observed.clone()).layer(server::layer().shed(false))).await;
    let resp = http
        .get(not_shedding.url("/work"))
        .header("svc-timeout-ms", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::GATEWAY_TIMEOUT,
        "the handler's own answer"
    );
    assert_eq!(observed.calls(), 1);
    assert_eq!(observed.last_remaining(), Some(Duration::ZERO));
    assert!(observed.expired_at.lock().unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_handler_running_at_its_deadline_is_dropped_unless_told_otherwise() {
    let http = reqwest::Client::new();
    for cancel in [true, false] {
        let observed = Observed::default();
        // This handler ignores its deadline and works for its 1 s... unless dropped.
        let app = Router::new()
            .route(
                "/work",
                get({
                    let observed = observed.clone();
                    move || {
                        let observed = observed.clone();
                        async move {
                            let _end = EndGuard(observed.ended_at.clone());
                            observed.calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(if cancel {
                                Duration::from_secs(1)
                            } else {
                                ms(60)
                            })
                            .await;
                            observed
                                .remaining
                                .lock()
                                .unwrap()
                                .push(deadline::remaining());
                            StatusCode::OK
                        }
                    }
                }),
            )
            .layer(server::layer().cancel_at_deadline(cancel));
        let server = serve_router(app).await;
        let start = Instant::now();
        let resp = http
            .get(server.url("/work"))
            .header("svc-timeout-ms", "30")
            .send()
            .await
            .unwrap();
        let ended = observed.ended_at.lock().unwrap().expect("ended");
        if cancel {
            assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
            assert!(
                ended - start < ms(200),
                "dropped at its deadline: {:?}",
                ended - start
            );
        } else {
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(observed.last_remaining(), Some(Duration::ZERO));
        }
    }
}

// ===== bad input =====

/// A header that is ignored (with a debug event naming it), one that is
/// capped, and what the handler then sees.
#[tokio::test(start_paused = true)]
async fn bad_deadline_headers_are_ignored_and_oversize_ones_capped() {
    let (events, _spans, _guard) = capture();
    let observed = Observed::default();
    let app = Router::new()
        .route(
            "/",
            get({
                let observed = observed.clone();
                move || {
                    let observed = observed.clone();
                    async move {
                        observed.calls.fetch_add(1, Ordering::SeqCst);
                        observed
                            .remaining
                            .lock()
                            .unwrap()
                            .push(deadline::remaining());
                        StatusCode::OK
                    }
                }
            }),
        )
        .layer(server::layer().max_budget(Duration::from_secs(2)));
    let server = serve_router(app).await;
    let http = reqwest::Client::new();

    let ignored: &[(&str, &[&str])] = &[
        ("svc-timeout-ms", &["abc"]),
        ("svc-timeout-ms", &["-5"]),
        ("svc-timeout-ms", &["1.5"]),
        ("svc-timeout-ms", &["99999999999999999999999"]),
        ("svc-timeout-ms", &["100", "100"]),
        ("grpc-timeout", &["5"]),
        ("grpc-timeout", &["-1S"]),
        ("grpc-timeout", &["123456789m"]),
        ("grpc-timeout", &["1m", "1m"]),
        ("x-envoy-expected-rq-timeout-ms", &["0"]),
        ("x-envoy-expected-rq-timeout-ms", &["1e3"]),
    ];
    for (header, values) in ignored {
        events.clear();
        let mut request = http.get(server.url("/"));
        for value in *values {
            request = request.header(*header, *value);
        }
        let resp = request.send().await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{header}: {values:?} was not shed"
        );
        assert_eq!(observed.last_remaining(), None, "{header}: {values:?}");
        let named = events.filter(|e| {
            e.message() == "the caller's deadline header is ignored"
                && e.field("header") == Some(*header)
        });
        assert_eq!(named.len(), 1, "{header}: {values:?}: {:?}", events.all());
    }

    for (header, value) in [
        ("svc-timeout-ms", "86400000"),
        ("grpc-timeout", "99999999H"),
        ("x-envoy-expected-rq-timeout-ms", "18446744073709551615"),
    ] {
        let resp = http
            .get(server.url("/"))
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let left = observed.last_remaining().expect("a deadline");
        assert!(
            left <= Duration::from_secs(2) && left > Duration::from_secs(1),
            "{header}: {left:?}"
        );
    }

    // Several: the smallest valid one.
    let resp = http
        .get(server.url("/"))
        .header("svc-timeout-ms", "900")
        .header("grpc-timeout", "300m")
        .header("x-envoy-expected-rq-timeout-ms", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let left = observed.last_remaining().unwrap();
    assert!(left <= ms(300) && left > ms(200), "{left:?}");
}

// ===== the client side =====

/// Builds a future that runs `f` under a deadline `budget` from now.
async fn within<F: IntoFuture>(budget: Duration, f: F) -> F::Output {
    deadline::scope(Instant::now() + budget, f).await
}

#[tokio::test(start_paused = true)]
async fn a_call_with_nothing_left_fails_at_once_without_io_or_breaker_effect() {
    let (events, _spans, _guard) = capture();
    let server = recording_server(200, "ok").await;
    let client = client_for("auth-svc", server.addr(), "", fast_config());
    let before = client.metrics().unwrap();

    let err = deadline::scope(Instant::now(), client.get("/users/1").send())
        .await
        .unwrap_err();
    assert!(err.is_deadline_exceeded(), "{err:?}");
    assert_eq!(err.attempts(), 0);
    assert_eq!(err.error_type(), "deadline_exceeded");
    // Less than the margin left: nothing left.
    let err = within(ms(3), client.get("/users/1").decode::<String>())
        .await
        .unwrap_err();
    assert!(err.is_deadline_exceeded(), "{err:?}");
    assert_eq!(server.hits(), 0, "no I/O");

    let after = client.metrics().unwrap();
    assert_eq!(after.calls(), before.calls(), "no permit taken");
    assert_eq!(after.failures(), 0);
    let rejected = events.with_message("service call rejected: deadline exceeded");
    assert_eq!(rejected.len(), 2, "{:?}", events.all());
    assert_eq!(rejected[0].field("service"), Some("auth-svc"));
}

#[cfg(feature = "metrics")]
#[tokio::test(start_paused = true)]
async fn a_rejected_call_is_one_metric_point_of_its_own() {
    use opentelemetry::metrics::MeterProvider as _;
    let (exporter, provider) = crate::metrics::provider();
    let server = recording_server(200, "ok").await;
    let client = client_for(
        "auth-svc",
        server.addr(),
        "",
        fast_config().meter(provider.meter("test")),
    );
    let _ = deadline::scope(Instant::now(), client.get("/").send()).await;
    provider.force_flush().unwrap();
    let metrics = exporter.get_finished_metrics().unwrap();
    let points = crate::metrics::points(&metrics, "svc.client.calls");
    assert_eq!(
        crate::metrics::value(&points, &[("svc.outcome", "deadline_exceeded")]),
        1.0
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test(start_paused = true)]
async fn each_attempt_sends_its_own_budget_and_the_margin_is_kept() {
    let server = recording_server(200, "ok").await;
    let budget_sent = |server: &svc_test_support::Server| -> Option<u64> {
        server
            .header_values(deadline::HEADER)
            .last()
            .cloned()
            .flatten()
            .map(|v| v.parse().unwrap())
    };

    let client = client_for("auth-svc", server.addr(), "", fast_config());
    client.get("/").await.unwrap();
    assert_eq!(budget_sent(&server), None, "no deadline, no header");

    within(ms(200), client.get("/")).await.unwrap();
    let sent = budget_sent(&server).unwrap();
    assert!((100..=195).contains(&sent), "{sent}");

    let margined = client_for(
        "auth-svc",
        server.addr(),
        "",
        fast_config().deadline_margin(ms(60)),
    );
    within(ms(200), margined.get("/")).await.unwrap();
    let sent = budget_sent(&server).unwrap();
    assert!((50..=140).contains(&sent), "{sent}");

    // The attempt's own limit, when it is the smaller.
    let short = client_for(
        "auth-svc",
        server.addr(),
        "",
        fast_config().attempt_timeout(ms(80)),
    );
    within(ms(200), short.get("/")).await.unwrap();
    assert_eq!(budget_sent(&server), Some(80));

    // Off: the request's deadline is not the client's.
    let off = client_for(
        "auth-svc",
        server.addr(),
        "",
        fast_config().propagate_deadline(false),
    );
    deadline::scope(Instant::now(), off.get("/")).await.unwrap();
    assert_eq!(budget_sent(&server), None);
}

#[tokio::test(start_paused = true)]
async fn a_call_cut_by_the_deadline_is_not_a_breaker_failure() {
    // The service hangs: only a timer ends the call.
    let server = serve(|_seen: Seen| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        StatusCode::OK
    })
    .await;
    let config = fast_config().circuit_breaker(Some(CircuitBreakerConfig::default()));
    let client = client_for("auth-svc", server.addr(), "", config);

    let start = Instant::now();
    let err = within(ms(60), client.get("/")).await.unwrap_err();
    assert!(start.elapsed() < ms(200));
    assert!(err.is_deadline_exceeded() && err.is_timeout(), "{err:?}");
    assert_eq!(err.attempts(), 1, "not retried: no time left");
    assert_eq!(client.metrics().unwrap().failures(), 0);

    // The client's own timeout is the service's failure.
    let err = client.get("/").timeout(ms(60)).await.unwrap_err();
    assert!(err.is_timeout() && !err.is_deadline_exceeded(), "{err:?}");
    assert_eq!(client.metrics().unwrap().failures(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_backoff_is_started_that_would_end_past_the_deadline() {
    let server =
        crate::support::serve(|_seen: Seen| async { StatusCode::SERVICE_UNAVAILABLE }).await;
    let config = ClientConfig::default()
        .http(|c| c.backoff(svc_client::Backoff::default().base(ms(100)).jitter(false)));
    let client = client_for("auth-svc", server.addr(), "", config);
    let start = Instant::now();
    let resp = within(ms(60), client.get("/")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.hits(), 1, "a 100 ms backoff does not fit in 60 ms");
    assert!(
        start.elapsed() < ms(100),
        "returned at once: {:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_spawned_task_carries_the_deadline_only_when_propagated() {
    let at = Instant::now() + ms(100);
    deadline::scope(at, async move {
        assert_eq!(deadline::current(), Some(at));
        let plain = tokio::spawn(async { deadline::current() }).await.unwrap();
        assert_eq!(plain, None, "task-locals are not inherited");
        let carried = tokio::spawn(deadline::propagate(async { deadline::current() }))
            .await
            .unwrap();
        assert_eq!(carried, Some(at));
    })
    .await;
    assert_eq!(deadline::remaining(), None);
}

/// A `Client` made outside the request but called inside it sees the
/// request's deadline (nothing is fixed when the client is built).
#[tokio::test(start_paused = true)]
async fn the_deadline_is_read_per_call() {
    let registry = svc_client::Registry::from_vars([("AUTH_SVC_URL", "http://127.0.0.1:9")]);
    let client = Client::from_registry(&registry, "auth-svc", fast_config()).unwrap();
    let err = deadline::scope(Instant::now(), client.get("/").send())
        .await
        .unwrap_err();
    assert!(err.is_deadline_exceeded());
    let err = client.get("/").await.unwrap_err();
    assert!(!err.is_deadline_exceeded() && err.is_connect(), "{err:?}");
}

// ===== gRPC =====

#[cfg(feature = "grpc")]
mod grpc {
    use super::*;

    use std::net::SocketAddr;

    use svc_client::grpc::Channel;
    use svc_client::{Error, Registry};
    use svc_test_support::GrpcServer;
    use tonic::codegen::tokio_stream;
    use tonic::{Code, Request, Response, Status};
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::health_server::{Health, HealthServer};
    use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

    /// Records the `grpc-timeout` it received and the deadline it saw.
    #[derive(Clone, Default)]
    struct Recording {
        calls: Arc<AtomicUsize>,
        grpc_timeout: Arc<Mutex<Option<String>>>,
        remaining: Arc<Mutex<Option<Duration>>>,
    }

    #[tonic::async_trait]
    impl Health for Recording {
        async fn check(
            &self,
            request: Request<HealthCheckRequest>,
        ) -> Result<Response<HealthCheckResponse>, Status> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if request.get_ref().service == "slow" {
                // Works for a second, unless dropped at the deadline.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            *self.grpc_timeout.lock().unwrap() = request
                .metadata()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            *self.remaining.lock().unwrap() = deadline::remaining();
            Ok(Response::new(HealthCheckResponse { status: 1 }))
        }

        type WatchStream = tokio_stream::Empty<Result<HealthCheckResponse, Status>>;

        async fn watch(
            &self,
            _request: Request<HealthCheckRequest>,
        ) -> Result<Response<Self::WatchStream>, Status> {
            Err(Status::unimplemented("not here"))
        }
    }

    /// A tonic server on 127.0.0.1:0 running `health` behind the server layer.
    async fn start(health: Recording) -> GrpcServer {
        GrpcServer::start(|incoming, stop| {
            tonic::transport::Server::builder()
                .layer(server::layer())
                .add_service(HealthServer::new(health))
                .serve_with_incoming_shutdown(incoming, stop)
        })
        .await
    }

    fn channel_to(addr: SocketAddr, config: ClientConfig) -> Channel {
        let registry = Registry::from_vars([("AUTH_SVC_URL", format!("http://{addr}"))]);
        Channel::from_registry(&registry, "auth-svc", config).unwrap()
    }

    async fn check(channel: &Channel) -> Result<i32, Status> {
        HealthClient::new(channel.clone())
            .check(HealthCheckRequest::default())
            .await
            .map(|resp| resp.into_inner().status)
    }

    fn parse_grpc_timeout(value: &str) -> Duration {
        let (n, unit) = value.split_at(value.len() - 1);
        let n: u64 = n.parse().unwrap();
        match unit {
            "n" => Duration::from_nanos(n),
            "u" => Duration::from_micros(n),
            "m" => Duration::from_millis(n),
            "S" => Duration::from_secs(n),
            other => panic!("unit {other}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_reaches_a_tonic_server_through_the_channel() {
        let health = Recording::default();
        let grpc = start(health.clone()).await;
        let addr = grpc.addr();
        let channel = channel_to(addr, fast_config());
        // Connect first, so the budget is not spent on the handshake.
        check(&channel).await.unwrap();

        within(ms(150), check(&channel)).await.unwrap();
        let sent = parse_grpc_timeout(&health.grpc_timeout.lock().unwrap().clone().unwrap());
        assert!(sent <= ms(145) && sent > ms(50), "{sent:?}");
        let seen = health
            .remaining
            .lock()
            .unwrap()
            .expect("the server layer kept it");
        assert!(seen <= sent, "{seen:?} > {sent:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_grpc_call_cut_by_the_deadline_is_not_a_breaker_failure() {
        let health = Recording::default();
        let grpc = start(health.clone()).await;
        let addr = grpc.addr();
        let channel = channel_to(addr, fast_config());
        check(&channel).await.unwrap();
        let breaker = channel.breaker().unwrap().clone();
        let slow = |channel: &Channel| {
            let mut client = HealthClient::new(channel.clone());
            async move {
                client
                    .check(HealthCheckRequest {
                        service: "slow".to_owned(),
                    })
                    .await
            }
        };

        let start = Instant::now();
        let status = within(ms(60), slow(&channel)).await.unwrap_err();
        assert!(start.elapsed() <= ms(60), "{:?}", start.elapsed());
        assert_eq!(status.code(), Code::DeadlineExceeded);
        let err = Error::from_status(&status).expect("ours");
        assert!(err.is_deadline_exceeded() && err.is_timeout(), "{err:?}");
        assert_eq!(breaker.metrics().failures(), 0);

        // The channel's own timeout: the service's failure.
        let short = channel_to(addr, fast_config().timeout(ms(60)).max_retries(0));
        let status = slow(&short).await.unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded);
        let err = Error::from_status(&status).expect("ours");
        assert!(err.is_timeout() && !err.is_deadline_exceeded(), "{err:?}");
        assert_eq!(short.breaker().unwrap().metrics().failures(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_grpc_call_with_nothing_left_fails_at_once() {
        let health = Recording::default();
        let grpc = start(health.clone()).await;
        let addr = grpc.addr();
        let channel = channel_to(addr, fast_config());
        let status = deadline::scope(Instant::now(), check(&channel))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded);
        let err = Error::from_status(&status).expect("ours");
        assert!(err.is_deadline_exceeded(), "{err:?}");
        assert_eq!(health.calls.load(Ordering::SeqCst), 0);
        assert_eq!(channel.circuit_state(), Some(svc_client::State::Closed));
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_grpc_timeout_is_shed_with_deadline_exceeded() {
        let health = Recording::default();
        let grpc = start(health.clone()).await;
        let addr = grpc.addr();
        let http = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap();
        let resp = http
            .post(format!("http://{addr}/grpc.health.v1.Health/Check"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", "0n")
            .body(vec![0u8, 0, 0, 0, 0])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["grpc-status"], "4");
        assert_eq!(resp.headers()["content-type"], "application/grpc");
        assert_eq!(health.calls.load(Ordering::SeqCst), 0);
    }
}
