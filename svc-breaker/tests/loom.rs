//! Loom models of the breaker's atomics: every interleaving (up to a
//! preemption bound) of acquire, record and transition between 2-3 threads.
//!
//! Run with `cargo xtask loom`, i.e.
//! `RUSTFLAGS="--cfg loom" cargo test -p svc-breaker --release --test loom`.
#![cfg(loom)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loom::thread;
use svc_breaker::{CircuitBreaker, Config, FailureRate, ManualClock, State};

const RESET: Duration = Duration::from_secs(30);

/// Explores every interleaving with at most `PREEMPTIONS` preemptions (loom's
/// advice: most bugs need two or three; without a bound the three-thread
/// models do not finish in minutes).
fn model(f: impl Fn() + Sync + Send + 'static) {
    const PREEMPTIONS: usize = 3;
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(PREEMPTIONS);
    builder.check(f);
}

/// A breaker with a manual clock and a transition counter.
fn breaker(config: Config) -> (CircuitBreaker, ManualClock, Arc<AtomicUsize>) {
    let clock = ManualClock::new();
    let transitions = Arc::new(AtomicUsize::new(0));
    let t = Arc::clone(&transitions);
    let breaker = CircuitBreaker::with_clock(
        config.on_transition(move |_| {
            t.fetch_add(1, Ordering::SeqCst);
        }),
        clock.clone(),
    )
    .unwrap();
    (breaker, clock, transitions)
}

/// Opens the circuit (threshold 1) and lets the open period elapse.
fn expired(config: Config) -> (CircuitBreaker, Arc<AtomicUsize>) {
    let (b, clock, transitions) = breaker(config.failure_threshold(1));
    b.try_acquire().unwrap().record_failure();
    clock.advance(RESET);
    (b, transitions)
}

#[test]
fn racing_failures_open_the_circuit_exactly_once() {
    model(|| {
        let (b, _, transitions) = breaker(Config::default().failure_threshold(2));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || b.try_acquire_owned().unwrap().record_failure())
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(b.state(), State::Open);
        assert_eq!(transitions.load(Ordering::SeqCst), 1);
        assert_eq!(b.metrics().epoch(), 1);
    });
}

#[test]
fn racing_callers_at_half_open_get_one_trial() {
    model(|| {
        let (b, transitions) = expired(Config::default());
        let trials = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (b, trials) = (b.clone(), Arc::clone(&trials));
                thread::spawn(move || {
                    if let Ok(permit) = b.try_acquire_owned() {
                        if permit.is_trial() {
                            trials.fetch_add(1, Ordering::SeqCst);
                        }
                        permit.record_success();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(trials.load(Ordering::SeqCst), 1);
        assert_eq!(b.state(), State::Closed);
        // open, half-open, closed
        assert_eq!(transitions.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn trial_success_and_failure_race_to_one_outcome() {
    model(|| {
        let (b, transitions) = expired(Config::default().half_open_max_calls(2));
        let ok = b.try_acquire_owned().unwrap();
        let bad = b.try_acquire_owned().unwrap();
        let before = transitions.load(Ordering::SeqCst);
        let t1 = thread::spawn(move || ok.record_success());
        let t2 = thread::spawn(move || bad.record_failure());
        t1.join().unwrap();
        t2.join().unwrap();
        // Whichever came first decided; the other was stale.
        assert_eq!(transitions.load(Ordering::SeqCst), before + 1);
        let m = b.metrics();
        assert!(matches!(m.state(), State::Closed | State::Open));
        assert_eq!(m.half_open_in_flight(), 0);
    });
}

#[test]
fn a_stale_failure_cannot_reopen_a_recovering_circuit() {
    model(|| {
        let (b, clock, _) = breaker(Config::default().failure_threshold(1));
        let stale = b.try_acquire_owned().unwrap();
        b.try_acquire().unwrap().record_failure();
        clock.advance(RESET);
        let trial = b.try_acquire_owned().unwrap();
        let t1 = thread::spawn(move || trial.record_success());
        let t2 = thread::spawn(move || stale.record_failure());
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.metrics().consecutive_failures(), 0);
    });
}

#[test]
fn a_dropped_trial_frees_its_slot_for_a_racing_caller() {
    model(|| {
        let (b, _) = expired(Config::default());
        let trial = b.try_acquire_owned().unwrap();
        let t1 = thread::spawn(move || drop(trial));
        let b2 = b.clone();
        let t2 = thread::spawn(move || match b2.try_acquire_owned() {
            Ok(permit) => {
                assert!(permit.is_trial());
                permit.record_success();
                true
            }
            Err(_) => false,
        });
        t1.join().unwrap();
        let granted = t2.join().unwrap();
        let m = b.metrics();
        assert_eq!(m.half_open_in_flight(), 0, "no slot leaked");
        assert_eq!(
            m.state(),
            if granted {
                State::Closed
            } else {
                State::HalfOpen
            }
        );
    });
}

#[test]
fn force_open_wins_over_a_racing_call() {
    model(|| {
        let (b, _, _) = breaker(Config::default().failure_threshold(1));
        let b1 = b.clone();
        let t1 = thread::spawn(move || b1.force_open());
        let b2 = b.clone();
        let t2 = thread::spawn(move || {
            if let Ok(permit) = b2.try_acquire_owned() {
                permit.record_failure();
            }
        });
        t1.join().unwrap();
        t2.join().unwrap();
        assert!(b.is_forced_open());
        assert!(b.try_acquire().unwrap_err().is_forced());
    });
}

#[test]
fn reset_races_with_a_trial() {
    model(|| {
        let (b, _) = expired(Config::default());
        let trial = b.try_acquire_owned().unwrap();
        let b1 = b.clone();
        let t1 = thread::spawn(move || b1.reset());
        let t2 = thread::spawn(move || trial.record_failure());
        t1.join().unwrap();
        t2.join().unwrap();
        // Reset last: closed. Reset first: the failure is stale. Either way
        // the circuit is closed with a clean count.
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.metrics().consecutive_failures(), 0);
    });
}

#[test]
fn rate_window_failures_open_once() {
    model(|| {
        let (b, _, transitions) = breaker(Config::default().failure_rate(FailureRate::new(50, 2)));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || b.try_acquire_owned().unwrap().record_failure())
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(b.state(), State::Open);
        assert_eq!(transitions.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn three_threads_on_two_trial_slots() {
    model(|| {
        let (b, _) = expired(
            Config::default()
                .half_open_max_calls(2)
                .success_threshold(2),
        );
        let granted = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (b, granted) = (b.clone(), Arc::clone(&granted));
                thread::spawn(move || {
                    b.try_acquire_owned().ok().inspect(|_| {
                        granted.fetch_add(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        let permits: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        // All three held their permit (or rejection) at once: exactly two won.
        assert_eq!(granted.load(Ordering::SeqCst), 2);
        assert_eq!(b.metrics().half_open_in_flight(), 2);
        drop(permits);
        assert_eq!(b.metrics().half_open_in_flight(), 0);
    });
}

#[test]
fn three_trials_succeed_fail_and_succeed() {
    model(|| {
        let (b, transitions) = expired(
            Config::default()
                .half_open_max_calls(2)
                .success_threshold(2),
        );
        let before = transitions.load(Ordering::SeqCst);
        let handles: Vec<_> = [true, false, true]
            .into_iter()
            .map(|ok| {
                let b = b.clone();
                thread::spawn(move || {
                    if let Ok(permit) = b.try_acquire_owned() {
                        if ok {
                            permit.record_success();
                        } else {
                            permit.record_failure();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let m = b.metrics();
        assert_eq!(m.half_open_in_flight(), 0);
        // Every transition was made by one CAS and reported once: half-open,
        // then closed (two successes) or open (the failed trial); after a
        // close, the late failure (threshold 1) opens the circuit again.
        let made = transitions.load(Ordering::SeqCst) - before;
        assert_eq!(m.epoch() as usize, before + made);
        match made {
            2 => assert!(matches!(m.state(), State::Closed | State::Open)),
            3 => assert_eq!(m.state(), State::Open),
            _ => panic!("{made} transitions"),
        }
    });
}

#[test]
fn a_failure_racing_a_success_is_never_lost() {
    model(|| {
        let (b, _, _) = breaker(Config::default().failure_threshold(2));
        b.try_acquire().unwrap().record_failure();
        let ok = b.try_acquire_owned().unwrap();
        let bad = b.try_acquire_owned().unwrap();
        let t1 = thread::spawn(move || ok.record_success());
        let t2 = thread::spawn(move || bad.record_failure());
        t1.join().unwrap();
        t2.join().unwrap();
        // The failure first: two in a row open the circuit (the success is
        // then stale). The success first: the failure starts a new count.
        let m = b.metrics();
        match m.state() {
            State::Open => {}
            State::Closed => assert_eq!(m.consecutive_failures(), 1, "the failure was lost"),
            State::HalfOpen => panic!("half-open without the clock moving"),
        }
    });
}

#[test]
fn a_call_after_closing_never_sees_the_failures_that_opened() {
    model(|| {
        // One failure in a window of 2 (min 1 call) opens; one failure and
        // one success would open again (50 %).
        let (b, clock, _) =
            breaker(Config::default().failure_rate(FailureRate::new(50, 2).min_calls(1)));
        b.try_acquire().unwrap().record_failure();
        assert_eq!(b.state(), State::Open);
        clock.advance(RESET);
        // Both race to the trial; the loser may get a permit of the closed
        // epoch the winner's success starts.
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || {
                    if let Ok(permit) = b.try_acquire_owned() {
                        permit.record_success();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.metrics().failure_rate(), 0.0, "the window starts empty");
    });
}

#[test]
fn an_expired_trial_and_its_late_success_reopen_once() {
    model(|| {
        let wait = Duration::from_secs(10);
        let (b, clock, transitions) = breaker(
            Config::default()
                .failure_threshold(1)
                .max_half_open_wait(wait),
        );
        b.try_acquire().unwrap().record_failure();
        clock.advance(RESET);
        let trial = b.try_acquire_owned().unwrap();
        clock.advance(wait);
        let before = transitions.load(Ordering::SeqCst);
        let t1 = thread::spawn(move || trial.record_success());
        let b2 = b.clone();
        let t2 = thread::spawn(move || b2.try_acquire_owned().is_ok());
        t1.join().unwrap();
        assert!(!t2.join().unwrap(), "an expired half-open grants no trial");
        // Whoever noticed first re-opened the circuit; the success is stale.
        assert_eq!(transitions.load(Ordering::SeqCst), before + 1);
        assert_eq!(b.state(), State::Open);
    });
}
