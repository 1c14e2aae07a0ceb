//! The harness's own servers answer as documented: every fault, the outage
//! mode, connection accounting and POST counting.

use std::sync::Arc;
use std::time::{Duration, Instant};
use svc_bench::fault::{self, CALL_ID, Delays, FORCE_FAULT, Fault, FaultState, Mode};
use svc_demo::net;

fn delays() -> Delays {
    Delays {
        slow: Duration::from_millis(50),
        hang: Duration::from_millis(400),
    }
}

async fn start() -> (net::Server, Arc<FaultState>) {
    let state = FaultState::new(delays());
    let server = net::spawn(fault::router(Arc::clone(&state)))
        .await
        .expect("bind 127.0.0.1:0");
    (server, state)
}

async fn forced(
    client: &reqwest::Client,
    url: &str,
    fault: Fault,
) -> reqwest::Result<reqwest::Response> {
    client
        .get(format!("{url}/x"))
        .header(FORCE_FAULT, fault.name())
        .send()
        .await
}

#[tokio::test]
async fn each_fault_answers_as_documented() {
    let (server, state) = start().await;
    let url = server.url();
    let client = reqwest::Client::new();

    let healthy = forced(&client, &url, Fault::Healthy).await.unwrap();
    assert_eq!(healthy.status(), 200);
    let value: serde_json::Value = healthy.json().await.unwrap();
    assert_eq!(value["ok"], true);

    let error = forced(&client, &url, Fault::ServerError).await.unwrap();
    assert!([500, 502, 503, 504].contains(&error.status().as_u16()));

    let limited = forced(&client, &url, Fault::TooManyRequests).await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));

    let started = Instant::now();
    let slow = forced(&client, &url, Fault::Slow).await.unwrap();
    assert_eq!(slow.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(50));

    let reset = forced(&client, &url, Fault::Reset).await;
    assert!(
        reset.is_err(),
        "a reset connection gives no response: {reset:?}"
    );

    let truncated = forced(&client, &url, Fault::Truncated).await.unwrap();
    assert_eq!(truncated.status(), 200);
    assert!(
        truncated.bytes().await.is_err(),
        "the body must be cut short"
    );

    let invalid = forced(&client, &url, Fault::InvalidJson).await.unwrap();
    assert!(invalid.json::<serde_json::Value>().await.is_err());

    let missing = forced(&client, &url, Fault::NotFound).await.unwrap();
    assert_eq!(missing.status(), 404);

    assert_eq!(state.requests(), 8);
    assert!(server.stats().resets() >= 1);
    let counted: u64 = state.by_fault().iter().map(|(_, n)| n).sum();
    assert_eq!(counted, 8);
}

#[tokio::test]
async fn outage_mode_answers_503_to_everything() {
    let (server, state) = start().await;
    state.set_mode(Mode::Outage);
    let client = reqwest::Client::new();
    for fault in [Fault::Healthy, Fault::Reset, Fault::Hang] {
        let resp = forced(&client, &server.url(), fault).await.unwrap();
        assert_eq!(resp.status(), 503);
    }
    assert_eq!(state.outage_requests(), 3);
    state.set_mode(Mode::Mixed);
    let resp = forced(&client, &server.url(), Fault::Healthy)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(state.outage_requests(), 3);
    assert_eq!(state.requests(), 4);
}

#[tokio::test]
async fn posts_are_counted_per_call_id_and_key() {
    let (server, state) = start().await;
    let client = reqwest::Client::new();
    let post = |id: u64, key: Option<&str>| {
        let mut req = client
            .post(format!("{}/orders", server.url()))
            .header(CALL_ID, id.to_string())
            .header(FORCE_FAULT, "healthy")
            .body("{}");
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        req.send()
    };
    post(1, None).await.unwrap();
    post(2, None).await.unwrap();
    post(2, None).await.unwrap();
    post(3, Some("k")).await.unwrap();
    post(3, Some("k")).await.unwrap();
    assert_eq!(state.unkeyed_posts(), 2);
    assert_eq!(state.replayed_unkeyed_posts(), vec![(2, 2)]);
    assert_eq!(state.keyed_posts(), (1, 2));
}

#[tokio::test]
async fn connections_are_counted_until_closed() {
    let (server, _state) = start().await;
    let client = reqwest::Client::new();
    let url = server.url();
    let calls: Vec<_> = (0..4).map(|_| forced(&client, &url, Fault::Slow)).collect();
    for resp in futures_util::future::join_all(calls).await {
        assert_eq!(resp.unwrap().status(), 200);
    }
    assert_eq!(
        server.stats().accepted(),
        4,
        "four concurrent calls, four connections"
    );
    assert_eq!(server.stats().peak_open(), 4);
    assert_eq!(
        server.stats().open(),
        4,
        "idle keep-alive connections stay open"
    );
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().open() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.stats().open(), 0, "dropping the client closes them");
}

#[tokio::test]
async fn failing_bodies_come_after_a_200_head() {
    let (server, state) = start().await;
    let url = server.url();
    let client = reqwest::Client::new();

    // Stalls for `hang` (400 ms here): a reader with a shorter timeout
    // gives up first.
    let stalled = forced(&client, &url, Fault::StalledBody).await.unwrap();
    assert_eq!(stalled.status(), 200);
    let started = Instant::now();
    let read = tokio::time::timeout(Duration::from_millis(150), stalled.bytes()).await;
    assert!(read.is_err(), "the body must stall: {read:?}");
    assert!(started.elapsed() >= Duration::from_millis(150));

    let resets_before = server.stats().resets();
    let reset = forced(&client, &url, Fault::BodyReset).await.unwrap();
    assert_eq!(reset.status(), 200);
    assert!(reset.bytes().await.is_err(), "the body must be reset");
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.stats().resets() == resets_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        server.stats().resets(),
        resets_before + 1,
        "an RST, not a FIN"
    );

    // In the bad-bodies mode every answer is a 200 whose body fails,
    // whatever the request asks for.
    state.set_mode(Mode::BadBodies);
    for _ in 0..6 {
        let resp = forced(&client, &url, Fault::Healthy).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = tokio::time::timeout(Duration::from_millis(150), resp.bytes()).await;
        assert!(
            !matches!(body, Ok(Ok(_))),
            "a body that succeeded: {body:?}"
        );
    }
    assert_eq!(state.bad_body_requests(), 6);
    let counted: u64 = state.by_fault().iter().map(|(_, n)| n).sum();
    assert_eq!(counted, 2, "the mixed-mode counts only");
}

#[tokio::test]
async fn looper_requests_are_counted_apart() {
    let (server, state) = start().await;
    let client = reqwest::Client::new();
    state.set_mode(Mode::Outage);
    let resp = client
        .get(format!("{}{}x", server.url(), fault::LOOP_PREFIX))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        (state.loop_requests(), state.outage_requests()),
        (1, 0),
        "a looper's request is not one of the main client's"
    );
    assert_eq!(state.last_arrival(), None);
}
