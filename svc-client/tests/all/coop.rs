//! A call that completes without I/O consumes tokio's cooperative budget,
//! so callers that loop on fail-fast rejections (the seed's "retrying
//! forever" anti-pattern) cannot starve the other tasks of their runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{client_for, fast_config, recording_server};

/// Calls per looping task before it gives up. A task that yields to the
/// scheduler every 128 calls (tokio's budget) needs 16 turns to get there,
/// while the timer fires within the first round of turns; a task that never
/// yields runs them all in one poll.
const MAX_CALLS: usize = 2_000;

/// 200 tasks calling `call` again as soon as it fails, on a 2-worker
/// runtime, and one timer task: the timer must fire while they loop.
fn timer_fires_while_callers_loop<F, Fut>(call: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let call = Arc::new(call);
        let fired = Arc::new(AtomicBool::new(false));
        let stopped_by_timer = Arc::new(AtomicUsize::new(0));
        let mut loopers = Vec::new();
        for _ in 0..200 {
            let (call, fired, stopped) = (call.clone(), fired.clone(), stopped_by_timer.clone());
            loopers.push(tokio::spawn(async move {
                for _ in 0..MAX_CALLS {
                    if fired.load(Ordering::Relaxed) {
                        stopped.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    assert!(!call().await, "every call fails fast");
                }
            }));
        }
        let timer = {
            let fired = fired.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                fired.store(true, Ordering::Relaxed);
            })
        };
        for looper in loopers {
            looper.await.unwrap();
        }
        timer.await.unwrap();
        assert_eq!(
            stopped_by_timer.load(Ordering::Relaxed),
            200,
            "loopers ran all their calls before the timer could fire: they starved the runtime"
        );
    });
}

#[test]
fn looping_on_an_open_circuit_does_not_starve_the_runtime() {
    let client = std::thread::spawn(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let server = recording_server(200, "ok").await;
            let (addr, _seen) = (server.addr(), &server);
            // The server's runtime ends with this thread; the breaker is
            // forced open, so no call reaches it.
            client_for("auth-svc", addr, "", fast_config())
        })
    })
    .join()
    .unwrap();
    client.breaker().unwrap().force_open();
    timer_fires_while_callers_loop(move || {
        let client = client.clone();
        async move { client.get("/users/1").await.is_ok() }
    });
}

#[test]
fn looping_on_an_invalid_path_does_not_starve_the_runtime() {
    let registry = svc_client::Registry::from_vars([("AUTH_SVC_URL", "http://127.0.0.1:9")]);
    let client = svc_client::Client::from_registry(&registry, "auth-svc", fast_config()).unwrap();
    timer_fires_while_callers_loop(move || {
        let client = client.clone();
        async move { client.get("//evil.example/x").await.is_ok() }
    });
}

#[test]
fn looping_on_an_expired_deadline_does_not_starve_the_runtime() {
    let registry = svc_client::Registry::from_vars([("AUTH_SVC_URL", "http://127.0.0.1:9")]);
    let client = svc_client::Client::from_registry(&registry, "auth-svc", fast_config()).unwrap();
    timer_fires_while_callers_loop(move || {
        let client = client.clone();
        let now = tokio::time::Instant::now();
        async move {
            svc_client::deadline::scope(now, client.get("/users/1").send())
                .await
                .is_ok()
        }
    });
}
