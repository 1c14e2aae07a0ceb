//! The per-origin map (breaker and budget per scheme, host and port) is
//! bounded: a caller with many hosts (a webhook sender) cannot grow it
//! forever.

use std::time::Duration;

use svc_httpclient::{Client, Config, State};

fn url(i: u32) -> url::Url {
    format!("http://hook-{i}.example.test:8080/deliver")
        .parse()
        .unwrap()
}

/// A call to `url(i)` that creates its origin's state without any I/O: a
/// zero timeout fails it before its first attempt.
async fn touch(client: &Client, i: u32) {
    let err = client
        .get(url(i))
        .timeout(Duration::ZERO)
        .await
        .unwrap_err();
    assert!(err.is_timeout() && err.attempts() == 0, "{err}");
}

#[tokio::test]
async fn thousands_of_origins_stay_under_the_cap() {
    let client = Client::new(Config::default().log_failures(false)).unwrap();
    for i in 0..5_000 {
        touch(&client, i).await;
    }
    let count = client.origin_count();
    assert!((1..=1024).contains(&count), "{count} origins kept");
    assert!(format!("{client:?}").contains(&format!("origins: {count}")));
}

#[tokio::test]
async fn the_least_recently_used_go_first_and_handed_out_breakers_stay() {
    let client = Client::new(Config::default().log_failures(false).max_origins(100)).unwrap();
    let held = client.breaker(&url(0)).unwrap();
    held.force_open();
    for i in 1..1_000 {
        touch(&client, i).await;
        // Origin 1 is used all the time: it is never the oldest.
        touch(&client, 1).await;
    }
    assert!(client.origin_count() <= 100, "{}", client.origin_count());
    assert_eq!(client.circuit_state(&url(0)), Some(State::Open), "pinned");
    assert!(format!("{client:?}").contains("origins"));
    let kept = |i| client.circuit_state(&url(i)) == Some(State::Closed);
    assert!(kept(1) && kept(999));
}

#[tokio::test(start_paused = true)]
async fn idle_origins_are_dropped() {
    let config = Config::default()
        .log_failures(false)
        .origin_idle_timeout(Duration::from_secs(60));
    let client = Client::new(config).unwrap();
    for i in 0..50 {
        touch(&client, i).await;
    }
    assert_eq!(client.origin_count(), 50);
    tokio::time::advance(Duration::from_secs(30)).await;
    touch(&client, 7).await;
    tokio::time::advance(Duration::from_secs(31)).await;
    touch(&client, 1_000).await;
    assert_eq!(client.origin_count(), 2, "origin 7 was used 31 s ago");
}

#[test]
fn the_bounds_are_validated() {
    let err = Client::new(Config::default().max_origins(0)).unwrap_err();
    assert!(err.to_string().contains("`max_origins`"), "{err}");
    let err = Client::new(Config::default().origin_idle_timeout(Duration::ZERO)).unwrap_err();
    assert!(err.to_string().contains("`origin_idle_timeout`"), "{err}");
}
