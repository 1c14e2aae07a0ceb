//! svc-breaker side by side with failsafe 1.x.
//!
//! `failsafe` is configured with the same policy as ours (the seed's: 5
//! consecutive failures, 30 s open), the fair comparison; `failsafe-default`
//! is `failsafe::Config::new()` out of the box, whose success-rate window
//! also reads the clock on every call.
//!
//! Groups:
//! - `closed_path`: acquire a permit and record a success.
//! - `open_rejection`: a call refused by an open circuit.
//! - `contended_2_threads`: two threads each doing the closed path on one
//!   shared breaker; the time is per pair of concurrent calls.
//!
//! Run: `cargo bench -p svc-breaker --bench breaker` (or `cargo xtask bench`).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::{FailurePolicy, StateMachine};
use svc_breaker::{CircuitBreaker, Config};

const SVC: &str = "svc-breaker";
const FAILSAFE: &str = "failsafe";
const FAILSAFE_DEFAULT: &str = "failsafe-default";

fn failsafe_breaker() -> StateMachine<impl FailurePolicy + Send, ()> {
    let policy = failsafe::failure_policy::consecutive_failures(
        5,
        failsafe::backoff::constant(Duration::from_secs(30)),
    );
    failsafe::Config::new().failure_policy(policy).build()
}

fn svc_breaker() -> CircuitBreaker {
    CircuitBreaker::new(Config::default()).expect("default config")
}

#[inline]
fn svc_call(b: &CircuitBreaker) {
    if let Ok(permit) = black_box(b).try_acquire() {
        permit.record_success();
    }
}

#[inline]
fn failsafe_call<P: FailurePolicy>(b: &StateMachine<P, ()>) {
    let b = black_box(b);
    if b.is_call_permitted() {
        b.on_success();
    }
}

fn closed_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("closed_path");
    let svc = svc_breaker();
    group.bench_function(SVC, |bench| bench.iter(|| svc_call(&svc)));
    let fs = failsafe_breaker();
    group.bench_function(FAILSAFE, |bench| bench.iter(|| failsafe_call(&fs)));
    let fs_default = failsafe::Config::new().build();
    group.bench_function(FAILSAFE_DEFAULT, |bench| {
        bench.iter(|| failsafe_call(&fs_default))
    });
    group.finish();
}

fn open_rejection(c: &mut Criterion) {
    let mut group = c.benchmark_group("open_rejection");
    let svc = svc_breaker();
    for _ in 0..5 {
        svc.try_acquire().unwrap().record_failure();
    }
    assert!(svc.try_acquire().is_err());
    group.bench_function(SVC, |bench| {
        bench.iter(|| black_box(black_box(&svc).try_acquire().is_err()))
    });
    let fs = failsafe_breaker();
    for _ in 0..5 {
        fs.on_error();
    }
    assert!(!fs.is_call_permitted());
    group.bench_function(FAILSAFE, |bench| {
        bench.iter(|| black_box(!black_box(&fs).is_call_permitted()))
    });
    group.finish();
}

/// Runs `op` `iters` times on each of two threads started together and
/// returns the wall-clock time.
fn two_threads<B: Sync>(breaker: &B, iters: u64, op: fn(&B)) -> Duration {
    let start = Barrier::new(3);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                start.wait();
                for _ in 0..iters {
                    op(breaker);
                }
            });
        }
        start.wait();
        let t0 = Instant::now();
        // Leaving the scope joins both threads.
        t0
    })
    .elapsed()
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("contended_2_threads");
    let svc = svc_breaker();
    group.bench_function(SVC, |bench| {
        bench.iter_custom(|iters| two_threads(&svc, iters, svc_call))
    });
    let fs = failsafe_breaker();
    group.bench_function(FAILSAFE, |bench| {
        bench.iter_custom(|iters| two_threads(&fs, iters, failsafe_call))
    });
    let fs_default = failsafe::Config::new().build();
    group.bench_function(FAILSAFE_DEFAULT, |bench| {
        bench.iter_custom(|iters| two_threads(&fs_default, iters, failsafe_call))
    });
    group.finish();
}

criterion_group!(benches, closed_path, open_rejection, contended);
criterion_main!(benches);
