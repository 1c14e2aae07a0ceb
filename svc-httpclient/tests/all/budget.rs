//! The retry budget during a 100% outage, with the breaker off and 3
//! retries: a naive client sends 4 requests per call.

use std::sync::Arc;
use std::time::Duration;

use svc_httpclient::{Backoff, Client, Config, RetryBudget, StatusCode};

use svc_test_support as support;

fn client(budget: Option<RetryBudget>) -> Client {
    Client::new(
        Config::default()
            .circuit_breaker(None)
            .max_retries(3)
            .retry_budget(budget)
            .backoff(
                Backoff::default()
                    .base(Duration::from_millis(1))
                    .cap(Duration::from_millis(5)),
            ),
    )
    .unwrap()
}

async fn burst(client: Client, url: String, calls: usize) {
    let mut tasks = Vec::new();
    for _ in 0..calls {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let resp = client.get(url).await.expect("a 503 is a response");
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn without_a_budget_an_outage_quadruples_the_load() {
    let server = support::always(503).await;
    burst(client(None), server.url("/"), 50).await;
    assert_eq!(server.hits(), 200, "4 requests per call");
}

#[tokio::test(start_paused = true)]
async fn budget_holds_a_burst_of_200_concurrent_calls_under_2_requests_per_call() {
    let server = support::always(503).await;
    burst(client(Some(RetryBudget::default())), server.url("/"), 200).await;
    let per_call = server.hits() as f64 / 200.0;
    eprintln!("burst of 200 calls: {per_call:.3} requests per call");
    assert!(per_call < 2.0, "{per_call} requests per call");
    assert!(per_call > 1.0, "retries still happen: {per_call}");
}

#[tokio::test(start_paused = true)]
async fn budget_holds_a_sustained_outage_under_1_5_requests_per_call() {
    let server = support::always(503).await;
    let client = client(Some(RetryBudget::default()));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    // 10 callers, 100 calls each, one call every 10 ms per caller: 1,000
    // calls over about a second of (paused) time.
    for _ in 0..10 {
        let (client, url, calls) = (client.clone(), server.url("/"), calls.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..100 {
                let resp = client.get(&url).await.unwrap();
                assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1000);
    let per_call = server.hits() as f64 / 1000.0;
    eprintln!("sustained 1,000 calls: {per_call:.3} requests per call");
    assert!(per_call < 1.5, "{per_call} requests per call");
    assert!(per_call > 1.0, "retries still happen: {per_call}");
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_after_an_error_is_reported_with_the_cause() {
    let addr = support::closed_port();
    let client = client(Some(
        RetryBudget::default().min_per_sec(0).retry_percent(0.0),
    ));
    let err = client.get(format!("http://{addr}/")).await.unwrap_err();
    assert!(err.is_budget_exhausted(), "{err:?}");
    assert!(err.is_connect(), "the last attempt's error is the source");
    assert_eq!(err.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn budgets_are_per_origin() {
    let a = support::always(503).await;
    let b = support::statuses(&[503, 200]).await;
    // A reserve of 10 retries (1/s over 10 s), no percentage.
    let client = client(Some(
        RetryBudget::default().min_per_sec(1).retry_percent(0.0),
    ));
    for _ in 0..5 {
        client.get(a.url("/")).await.unwrap();
    }
    assert_eq!(a.hits(), 5 + 10, "a's reserve is spent");
    let resp = client.get(b.url("/")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "b has its own budget");
}
