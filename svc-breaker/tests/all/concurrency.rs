//! Many threads on one breaker: the stress test and the half-open
//! thundering herd. Invariants are checked on every operation and at the end.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use svc_breaker::{CircuitBreaker, Config, FailureRate, ManualClock, Outcome, State};

const THREADS: usize = 4;
const OPS_PER_THREAD: usize = 75_000;
const TRIALS: u32 = 3;

/// A small xorshift generator: the test needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Default)]
struct Tally {
    successes: AtomicU64,
    failures: AtomicU64,
    ignored: AtomicU64,
    rejections: AtomicU64,
}

fn stress(config: Config) -> (CircuitBreaker, Tally, u64) {
    let clock = ManualClock::new();
    let transitions = Arc::new(AtomicU64::new(0));
    let t = Arc::clone(&transitions);
    let breaker = CircuitBreaker::with_clock(
        config
            .half_open_max_calls(TRIALS)
            .reset_timeout(Duration::from_millis(1))
            .on_transition(move |_| {
                t.fetch_add(1, Ordering::Relaxed);
            }),
        clock.clone(),
    )
    .unwrap();
    // Trials alive per epoch, as seen from outside the breaker.
    let trials: Vec<AtomicU32> = (0..1 << 21).map(|_| AtomicU32::new(0)).collect();
    let tally = Tally::default();

    std::thread::scope(|s| {
        for seed in 0..THREADS {
            let (breaker, clock, trials, tally) = (&breaker, &clock, &trials, &tally);
            s.spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((seed as u64 + 1) * 0x1234_5678_9ABC));
                for _ in 0..OPS_PER_THREAD {
                    let roll = rng.next() % 100;
                    let permit = match breaker.try_acquire() {
                        Ok(permit) => permit,
                        Err(open) => {
                            tally.rejections.fetch_add(1, Ordering::Relaxed);
                            assert!(open.retry_after() <= Duration::from_millis(1));
                            if roll < 30 {
                                clock.advance(Duration::from_micros(500));
                            }
                            continue;
                        }
                    };
                    let epoch = permit.epoch() as usize;
                    if permit.is_trial() {
                        let alive = trials[epoch].fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(alive <= TRIALS, "{alive} trials alive in epoch {epoch}");
                        trials[epoch].fetch_sub(1, Ordering::SeqCst);
                    }
                    match roll {
                        0..55 => {
                            tally.successes.fetch_add(1, Ordering::Relaxed);
                            permit.record_success();
                        }
                        55..90 => {
                            tally.failures.fetch_add(1, Ordering::Relaxed);
                            permit.record_failure();
                        }
                        90..95 => {
                            tally.ignored.fetch_add(1, Ordering::Relaxed);
                            permit.record(Outcome::Ignored);
                        }
                        _ => {
                            tally.ignored.fetch_add(1, Ordering::Relaxed);
                            drop(permit);
                        }
                    }
                }
            });
        }
    });
    let transitions = transitions.load(Ordering::Relaxed);
    (breaker, tally, transitions)
}

fn check_totals(breaker: &CircuitBreaker, tally: &Tally, transitions: u64) {
    let m = breaker.metrics();
    assert_eq!(m.successes(), tally.successes.load(Ordering::Relaxed));
    assert_eq!(m.failures(), tally.failures.load(Ordering::Relaxed));
    assert_eq!(m.ignored(), tally.ignored.load(Ordering::Relaxed));
    assert_eq!(m.rejections(), tally.rejections.load(Ordering::Relaxed));
    assert_eq!(
        m.calls() + m.rejections(),
        (THREADS * OPS_PER_THREAD) as u64
    );
    // Every transition was made by exactly one CAS and reported once.
    assert_eq!(u64::from(m.epoch()), transitions);
    assert!(
        transitions > 100,
        "the run should cycle the circuit: {transitions}"
    );
    // No permit is alive, so no trial slot may be held.
    assert_eq!(m.half_open_in_flight(), 0, "a leaked trial slot: {m:?}");
}

#[test]
fn stress_consecutive_failures() {
    let (breaker, tally, transitions) =
        stress(Config::default().failure_threshold(3).success_threshold(2));
    check_totals(&breaker, &tally, transitions);
}

#[test]
fn stress_failure_rate() {
    let (breaker, tally, transitions) = stress(
        Config::default()
            .failure_rate(FailureRate::new(40, 20).min_calls(10))
            .success_threshold(2),
    );
    check_totals(&breaker, &tally, transitions);
    let m = breaker.metrics();
    assert!(m.window_calls() <= 20, "{m:?}");
    assert!(m.failure_rate() <= 100.0);
}

#[test]
fn half_open_thundering_herd_gets_exactly_n_trials() {
    const HERD: usize = 16;
    for trials in [1, 3] {
        for _round in 0..25 {
            let clock = ManualClock::new();
            let breaker = CircuitBreaker::with_clock(
                Config::default()
                    .failure_threshold(1)
                    .half_open_max_calls(trials),
                clock.clone(),
            )
            .unwrap();
            breaker.try_acquire().unwrap().record_failure();
            clock.advance(Duration::from_secs(30));

            let granted = AtomicU32::new(0);
            let start = Barrier::new(HERD);
            let hold = Barrier::new(HERD);
            std::thread::scope(|s| {
                for _ in 0..HERD {
                    s.spawn(|| {
                        start.wait();
                        let permit = breaker.try_acquire();
                        if permit.is_ok() {
                            granted.fetch_add(1, Ordering::SeqCst);
                        }
                        // Everyone holds what they got until all have tried.
                        hold.wait();
                        drop(permit);
                    });
                }
            });
            assert_eq!(granted.load(Ordering::SeqCst), trials);
            assert_eq!(breaker.state(), State::HalfOpen);
            let m = breaker.metrics();
            assert_eq!(m.half_open_in_flight(), 0);
            assert_eq!(m.rejections(), (HERD as u64) - u64::from(trials));
        }
    }
}

#[test]
fn counts_are_exact_with_more_threads_than_owned_cells() {
    // More threads than the per-thread cells (16), alive at once, and then a
    // second generation that inherits the cells of the first.
    const WIDE: usize = 40;
    const EACH: u64 = 2_000;
    let breaker = CircuitBreaker::default();
    for _generation in 0..2 {
        let start = Barrier::new(WIDE);
        std::thread::scope(|s| {
            for i in 0..WIDE {
                let (breaker, start) = (&breaker, &start);
                s.spawn(move || {
                    start.wait();
                    for _ in 0..EACH {
                        let permit = breaker.try_acquire().expect("closed");
                        if i % 2 == 0 {
                            permit.record_success();
                        } else {
                            drop(permit);
                        }
                    }
                });
            }
        });
    }
    let m = breaker.metrics();
    let half = (WIDE as u64 / 2) * EACH * 2;
    assert_eq!(m.successes(), half);
    assert_eq!(m.ignored(), half);
    assert_eq!(m.calls(), 2 * half);
}
