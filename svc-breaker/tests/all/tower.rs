//! `CircuitBreakerLayer` (feature `tower`): on a plain `tower::service_fn`,
//! and on a tonic channel talking to a real tonic server on 127.0.0.1.

use std::convert::Infallible;
use std::future::Future;
use std::io::{self, ErrorKind};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use svc_breaker::{
    CircuitBreaker, CircuitBreakerLayer, Config, Error, ManualClock, Outcome, State,
};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

const SECS_30: Duration = Duration::from_secs(30);

fn breaker(threshold: u32) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let b = CircuitBreaker::with_clock(
        Config::default().failure_threshold(threshold),
        clock.clone(),
    )
    .expect("valid config");
    (b, clock)
}

/// A `service_fn` answering `answer(request)` and counting its calls.
fn counting<Req, T, E>(
    answer: impl Fn(Req) -> Result<T, E> + Clone,
) -> (
    Arc<AtomicUsize>,
    impl Service<Req, Response = T, Error = E, Future = impl Future<Output = Result<T, E>>> + Clone,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let svc = service_fn(move |req: Req| {
        seen.fetch_add(1, Ordering::SeqCst);
        let out = answer(req);
        async move { out }
    });
    (calls, svc)
}

// ===== a plain service_fn =====

#[tokio::test]
async fn err_is_a_failure_and_an_open_circuit_does_not_call_the_service() {
    let (b, _) = breaker(3);
    let (calls, inner) = counting(|_: ()| Err::<(), _>(io::Error::other("boom")));
    let mut svc = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(b.clone()))
        .service(inner);

    for n in 1..=3 {
        let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
        assert!(matches!(err, Error::Inner(ref e) if e.to_string() == "boom"));
        assert_eq!(calls.load(Ordering::SeqCst), n);
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.metrics().failures(), 3);

    for _ in 0..5 {
        let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
        let open = err.as_open().expect("open");
        assert_eq!(open.retry_after(), SECS_30);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the open circuit called the service"
    );
    assert_eq!(b.metrics().rejections(), 5);
}

#[tokio::test]
async fn ok_is_a_success() {
    let (b, _) = breaker(2);
    let (calls, inner) = counting(|n: u32| Ok::<_, Infallible>(n * 2));
    let mut svc = CircuitBreakerLayer::new(b.clone()).layer(inner);
    for n in 0..10 {
        assert_eq!(svc.ready().await.unwrap().call(n).await.unwrap(), n * 2);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 10);
    assert_eq!(b.metrics().successes(), 10);
    assert_eq!(b.state(), State::Closed);
}

/// What a caller's classifier typically says: a 503 inside an `Ok` is a
/// failure, a "not found" error says nothing about the dependency.
fn status_classifier(result: &Result<u16, io::Error>) -> Outcome {
    match result {
        Ok(status) if *status >= 500 => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(e) if e.kind() == ErrorKind::NotFound => Outcome::Ignored,
        Err(_) => Outcome::Failure,
    }
}

#[tokio::test]
async fn a_custom_classifier_decides_ok_503_fails_and_not_found_is_ignored() {
    let (b, _) = breaker(2);
    let (calls, inner) = counting(|req: &'static str| match req {
        "missing" => Err(io::Error::from(ErrorKind::NotFound)),
        "overloaded" => Ok(503),
        _ => Ok(200),
    });
    let mut svc = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(b.clone()).classify(status_classifier))
        .service(inner);

    // Twenty "not found" errors: the caller's problem, no effect.
    for _ in 0..20 {
        let err = svc
            .ready()
            .await
            .unwrap()
            .call("missing")
            .await
            .unwrap_err();
        assert_eq!(err.into_inner().unwrap().kind(), ErrorKind::NotFound);
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().ignored(), 20);
    assert_eq!(b.metrics().failures(), 0);

    // Two `Ok(503)`s: failures, which open it.
    for _ in 0..2 {
        assert_eq!(
            svc.ready().await.unwrap().call("overloaded").await.unwrap(),
            503
        );
    }
    assert_eq!(b.state(), State::Open);
    let err = svc.ready().await.unwrap().call("fine").await.unwrap_err();
    assert!(err.is_open());
    assert_eq!(calls.load(Ordering::SeqCst), 22);
}

#[tokio::test]
async fn a_closure_classifier_with_its_types_inferred_from_the_service() {
    let (b, _) = breaker(1);
    let (_, inner) = counting(|n: u32| if n == 0 { Err(n) } else { Ok(n) });
    // The closure's argument types come from the service it wraps.
    let layer = CircuitBreakerLayer::new(b.clone()).classify(|r| match r {
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Ignored,
    });
    let mut svc = ServiceBuilder::new().layer(layer).service(inner);
    assert_eq!(
        svc.ready().await.unwrap().call(0).await,
        Err(Error::Inner(0))
    );
    assert_eq!(b.metrics().ignored(), 1);
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test]
async fn recovers_through_half_open() {
    let (b, clock) = breaker(2);
    let (calls, inner) = counting(|ok: bool| if ok { Ok(()) } else { Err("down") });
    let mut svc = CircuitBreakerLayer::new(b.clone()).layer(inner);
    for _ in 0..2 {
        svc.ready().await.unwrap().call(false).await.unwrap_err();
    }
    assert_eq!(b.state(), State::Open);

    clock.advance(SECS_30 - Duration::from_millis(1));
    assert!(
        svc.ready()
            .await
            .unwrap()
            .call(true)
            .await
            .unwrap_err()
            .is_open()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // A failed trial re-opens for another 30 s.
    clock.advance(Duration::from_millis(1));
    svc.ready().await.unwrap().call(false).await.unwrap_err();
    assert_eq!(b.state(), State::Open);

    // A successful trial closes it.
    clock.advance(SECS_30);
    svc.ready().await.unwrap().call(true).await.unwrap();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

/// Polls `fut` once without a runtime.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test]
async fn a_dropped_response_future_releases_the_half_open_trial_as_ignored() {
    let (b, clock) = breaker(1);
    b.try_acquire().unwrap().record_failure();
    clock.advance(SECS_30);

    // Never answers: the caller gives up on it.
    let (calls, inner) = counting(|_: ()| Ok::<_, Infallible>(()));
    let hanging = service_fn(|_: ()| std::future::pending::<Result<(), Infallible>>());
    let mut stuck = CircuitBreakerLayer::new(b.clone()).layer(hanging);
    let mut healthy = CircuitBreakerLayer::new(b.clone()).layer(inner);

    {
        let mut trial = pin!(stuck.ready().await.unwrap().call(()));
        assert!(poll_once(trial.as_mut()).is_pending());
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(b.metrics().half_open_in_flight(), 1);
        // The one trial slot is taken: another call fails fast.
        let err = healthy.ready().await.unwrap().call(()).await.unwrap_err();
        assert!(err.is_open());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    } // the trial's future is dropped here

    assert_eq!(b.metrics().ignored(), 1);
    assert_eq!(b.metrics().half_open_in_flight(), 0);
    assert_eq!(b.state(), State::HalfOpen);
    healthy.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn poll_ready_takes_no_trial_slot() {
    let (b, clock) = breaker(1);
    b.try_acquire().unwrap().record_failure();
    clock.advance(SECS_30);
    let (calls, inner) = counting(|_: ()| Ok::<_, Infallible>(()));
    let layer = CircuitBreakerLayer::new(b.clone());

    // Made ready and never called, as tower allows (a balancer probing,
    // a `select!` that chose another branch).
    let mut idle = layer.layer(inner.clone());
    idle.ready().await.unwrap();
    let mut other = layer.layer(inner);
    other.ready().await.unwrap();
    assert_eq!(b.metrics().half_open_in_flight(), 0);

    // The trial goes to the service that calls.
    other.call(()).await.unwrap();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    drop(idle);
}

/// A service whose `poll_ready` fails: broken for good, per tower.
#[derive(Debug, Clone)]
struct Broken(Arc<AtomicUsize>);

impl Service<()> for Broken {
    type Response = ();
    type Error = io::Error;
    type Future = std::future::Ready<Result<(), io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Err(io::Error::other("worker gone")))
    }

    fn call(&mut self, _: ()) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(()))
    }
}

#[tokio::test]
async fn a_poll_ready_error_is_inner_and_not_recorded() {
    let (b, _) = breaker(1);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut svc = CircuitBreakerLayer::new(b.clone()).layer(Broken(Arc::clone(&calls)));
    for _ in 0..3 {
        let err = svc.ready().await.expect_err("poll_ready fails");
        assert!(matches!(err, Error::Inner(ref e) if e.to_string() == "worker gone"));
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().calls(), 0);
    assert_eq!(b.metrics().failures(), 0);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::test]
async fn over_a_boxed_error_service_into_boxed_gives_a_box_error_stack_again() {
    let (b, _) = breaker(1);
    // tower's own middleware (`Timeout`, `Buffer`) fails with a `BoxError`.
    let (calls, inner) = counting(|_: ()| Err::<(), BoxError>(io::Error::other("boom").into()));
    let svc = ServiceBuilder::new()
        .map_err(Error::into_boxed)
        .layer(CircuitBreakerLayer::new(b.clone()))
        .service(inner);
    fn is_box_error_service<S: Service<(), Error = BoxError>>(s: S) -> S {
        s
    }
    let mut svc = is_box_error_service(svc);

    let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(err.downcast_ref::<io::Error>().unwrap().to_string(), "boom");
    assert_eq!(b.state(), State::Open);
    let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    let open = err
        .downcast_ref::<svc_breaker::CircuitOpen>()
        .expect("open");
    assert_eq!(open.retry_after(), SECS_30);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn the_layer_and_its_service_are_debug_clone_send_sync() {
    fn assert_traits<T: std::fmt::Debug + Clone + Send + Sync + 'static>(_: &T) {}
    let layer = CircuitBreakerLayer::new(CircuitBreaker::default());
    assert_traits(&layer);
    let classified = layer.clone().classify(status_classifier);
    assert_traits(&classified);
    let svc = classified.layer(Broken(Arc::default()));
    assert_traits(&svc);
    assert!(format!("{svc:?}").contains("CircuitBreakerService"));
}

#[test]
fn a_response_future_is_send_when_the_inner_one_is() {
    fn assert_send<T: Send>(_: &T) {}
    let (_, inner) = counting(|_: ()| Ok::<_, Infallible>(()));
    let mut svc = CircuitBreakerLayer::new(CircuitBreaker::default()).layer(inner);
    let fut = svc.call(());
    assert_send(&fut);
}

// ===== a tonic channel =====

mod grpc {
    use super::*;

    use std::error::Error as _;
    use svc_test_support::{GrpcServer, closed_port};
    use tonic::body::Body;
    use tonic::codegen::http::Response;
    use tonic::transport::{Channel, Endpoint, Server};
    use tonic::{Code, Status};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    type ChannelError = tonic::transport::Error;

    /// gRPC's classification, from the response head. An immediate error
    /// `Status` comes as a trailers-only response, whose `grpc-status` is in
    /// the head; a status sent after a body is in the trailers, which a
    /// layer on the response future does not see (that call counts as a
    /// success, by its HTTP 200).
    fn grpc_classifier(result: &Result<Response<Body>, ChannelError>) -> Outcome {
        let Ok(response) = result else {
            return Outcome::Failure; // transport: refused, reset, closed
        };
        if !response.status().is_success() {
            return Outcome::Failure;
        }
        let code = match response.headers().get("grpc-status") {
            Some(value) => Code::from_bytes(value.as_bytes()),
            None => return Outcome::Success,
        };
        match code {
            Code::Ok => Outcome::Success,
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Internal
            | Code::Unknown => Outcome::Failure,
            _ => Outcome::Ignored,
        }
    }

    /// A tonic server with `grpc.health.v1` on 127.0.0.1:0 (the unnamed
    /// service "" is SERVING; any other name is NOT_FOUND).
    struct HealthServer {
        url: String,
        server: GrpcServer,
    }

    impl HealthServer {
        async fn start() -> HealthServer {
            let (_reporter, service) = tonic_health::server::health_reporter();
            let server = GrpcServer::start(|incoming, stop| {
                Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(incoming, stop)
            })
            .await;
            HealthServer {
                url: server.url(),
                server,
            }
        }

        /// Stops it and waits until it is gone.
        async fn shut_down(self) {
            self.server.shut_down().await;
        }
    }

    type Classifier = fn(&Result<Response<Body>, ChannelError>) -> Outcome;
    type Guarded = svc_breaker::CircuitBreakerService<Channel, Classifier>;

    /// A `grpc.health.v1` client on a lazy channel to `url` guarded by
    /// `breaker`.
    fn client(url: &str, breaker: &CircuitBreaker) -> HealthClient<Guarded> {
        let channel = Endpoint::from_shared(url.to_owned())
            .unwrap()
            .connect_lazy();
        let svc = ServiceBuilder::new()
            .layer(
                CircuitBreakerLayer::new(breaker.clone()).classify(grpc_classifier as Classifier),
            )
            .service(channel);
        HealthClient::new(svc)
    }

    fn check(service: &str) -> HealthCheckRequest {
        HealthCheckRequest {
            service: service.to_owned(),
        }
    }

    /// The breaker's error inside the `Status` tonic made of it.
    fn breaker_error(status: &Status) -> &Error<ChannelError> {
        status
            .source()
            .and_then(|e| e.downcast_ref::<Error<ChannelError>>())
            .unwrap_or_else(|| panic!("not the breaker's error: {status:?}"))
    }

    #[tokio::test]
    async fn not_found_does_not_open_and_ok_is_a_success() {
        let server = HealthServer::start().await;
        let (b, _) = breaker(2);
        let mut health = client(&server.url, &b);

        for _ in 0..10 {
            let status = health.check(check("no-such-service")).await.unwrap_err();
            assert_eq!(status.code(), Code::NotFound);
        }
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.metrics().ignored(), 10);
        assert_eq!(b.metrics().failures(), 0);

        let reply = health.check(check("")).await.unwrap().into_inner();
        assert_eq!(reply.status, 1, "SERVING");
        assert_eq!(b.metrics().successes(), 1);
        server.shut_down().await;
    }

    #[tokio::test]
    async fn a_server_that_went_away_opens_the_circuit_which_then_fails_fast() {
        let server = HealthServer::start().await;
        let (b, clock) = breaker(3);
        let mut health = client(&server.url, &b);
        health.check(check("")).await.unwrap();
        server.shut_down().await;

        for _ in 0..3 {
            let status = health.check(check("")).await.unwrap_err();
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        }
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.metrics().failures(), 3);

        // Open: tonic's `Status` carries the breaker's error, no I/O.
        let status = health.check(check("")).await.unwrap_err();
        let open = breaker_error(&status).as_open().expect("open");
        assert_eq!(open.retry_after(), SECS_30);
        assert_eq!(b.metrics().rejections(), 1);

        // Still down after 30 s: the trial fails and re-opens it.
        clock.advance(SECS_30);
        health.check(check("")).await.unwrap_err();
        assert_eq!(b.state(), State::Open);
    }

    #[tokio::test]
    async fn a_closed_port_opens_the_circuit_and_a_new_server_closes_it() {
        let (b, clock) = breaker(2);
        let mut down = client(&format!("http://{}", closed_port()), &b);
        for _ in 0..2 {
            let status = down.check(check("")).await.unwrap_err();
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        }
        assert_eq!(b.state(), State::Open);
        assert!(breaker_error(&down.check(check("")).await.unwrap_err()).is_open());

        // The same breaker guards a channel to a server that is up: after
        // the open period its trial succeeds and closes the circuit.
        let server = HealthServer::start().await;
        let mut up = client(&server.url, &b);
        assert!(breaker_error(&up.check(check("")).await.unwrap_err()).is_open());
        clock.advance(SECS_30);
        up.check(check("")).await.unwrap();
        assert_eq!(b.state(), State::Closed);
        server.shut_down().await;
    }
}
