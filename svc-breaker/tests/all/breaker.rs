//! The seed's state table, the defaults and every decision of the design,
//! driven by a `ManualClock` (no test sleeps).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use svc_breaker::{
    CircuitBreaker, Clock, Config, FailureRate, ManualClock, OpenBackoff, Outcome, Reason, State,
    Transition,
};

const MS: Duration = Duration::from_millis(1);
const SECS_30: Duration = Duration::from_secs(30);

fn breaker(config: Config) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::with_clock(config, clock.clone()).expect("valid config");
    (breaker, clock)
}

fn fail(breaker: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        breaker.try_acquire().expect("closed").record_failure();
    }
}

type Seen = Arc<Mutex<Vec<(State, State, Reason)>>>;

/// Records every transition as (from, to, reason).
fn recorder() -> (Seen, impl Fn(&Transition) + Send + Sync + 'static) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    (seen, move |t: &Transition| {
        log.lock().unwrap().push((t.from(), t.to(), t.reason()))
    })
}

// ===== closed =====

#[test]
fn closed_lets_calls_through() {
    let (b, _) = breaker(Config::default());
    assert_eq!(b.state(), State::Closed);
    for _ in 0..100 {
        b.try_acquire().expect("closed").record_success();
    }
    assert_eq!(b.metrics().successes(), 100);
}

#[test]
fn opens_after_five_consecutive_failures_not_four() {
    let (b, _) = breaker(Config::default());
    fail(&b, 4);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().consecutive_failures(), 4);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_success_resets_the_failure_count() {
    let (b, _) = breaker(Config::default());
    fail(&b, 4);
    b.try_acquire().unwrap().record_success();
    assert_eq!(b.metrics().consecutive_failures(), 0);
    fail(&b, 4);
    assert_eq!(b.state(), State::Closed);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn ignored_outcomes_have_no_effect() {
    let (b, _) = breaker(Config::default());
    fail(&b, 4);
    for _ in 0..10 {
        b.try_acquire().unwrap().record(Outcome::Ignored);
        drop(b.try_acquire().unwrap());
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().consecutive_failures(), 4, "not reset either");
    assert_eq!(b.metrics().ignored(), 20);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn custom_failure_threshold() {
    let (b, _) = breaker(Config::default().failure_threshold(3));
    fail(&b, 2);
    assert_eq!(b.state(), State::Closed);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
}

// ===== open =====

#[test]
fn open_rejects_at_once_with_exact_retry_after() {
    let (b, clock) = breaker(Config::default());
    fail(&b, 5);
    let open = b.try_acquire().unwrap_err();
    assert_eq!(open.retry_after(), SECS_30);
    assert!(!open.is_forced());
    assert_eq!(open.to_string(), "circuit breaker is open");

    clock.advance(Duration::from_secs(10));
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Duration::from_secs(20)
    );
    assert_eq!(b.metrics().rejections(), 2);
    assert_eq!(b.metrics().retry_after(), Some(Duration::from_secs(20)));
}

#[test]
fn waits_exactly_thirty_seconds_before_half_open() {
    let (b, clock) = breaker(Config::default());
    clock.advance(Duration::from_secs(1000)); // any origin
    fail(&b, 5);
    clock.advance(SECS_30 - MS);
    assert_eq!(b.state(), State::Open, "29.999 s: still open");
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), MS);
    clock.advance(MS);
    assert_eq!(b.state(), State::HalfOpen, "30 s: half-open");
    assert!(b.try_acquire().is_ok());
}

#[test]
fn the_reset_timeout_holds_whatever_the_clock_origin() {
    // A clock reading wall time (since 1970), and one a century past its
    // origin: both are far beyond what fits the open deadline if it were
    // kept on the clock's own scale.
    for origin in [
        Duration::from_secs(1_700_000_000),
        Duration::from_secs(100 * 365 * 24 * 3600),
    ] {
        let last = Arc::new(Mutex::new(None));
        let l = Arc::clone(&last);
        let clock = ManualClock::new();
        clock.set(origin + Duration::from_nanos(123_456)); // not a whole ms either
        let b = CircuitBreaker::with_clock(
            Config::default().on_transition(move |t| *l.lock().unwrap() = Some(*t)),
            clock.clone(),
        )
        .unwrap();
        clock.advance(Duration::from_secs(5));
        fail(&b, 5);
        assert_eq!(b.state(), State::Open, "origin {origin:?}");
        assert_eq!(b.try_acquire().unwrap_err().retry_after(), SECS_30);
        let t = last.lock().unwrap().expect("opened");
        assert_eq!(
            t.at(),
            clock.now(),
            "transitions carry the clock's own time"
        );
        assert_eq!(t.open_for(), Some(SECS_30));
        clock.advance(SECS_30 - MS);
        assert_eq!(b.state(), State::Open, "origin {origin:?}: 29.999 s");
        assert_eq!(b.try_acquire().unwrap_err().retry_after(), MS);
        clock.advance(MS);
        assert_eq!(b.state(), State::HalfOpen, "origin {origin:?}: 30 s");
        assert_eq!(b.metrics().time_in_state(), Duration::ZERO);
    }
}

#[test]
fn custom_reset_timeout() {
    let (b, clock) = breaker(Config::default().reset_timeout(Duration::from_millis(250)));
    fail(&b, 5);
    clock.advance(Duration::from_millis(249));
    assert!(b.try_acquire().is_err());
    clock.advance(MS);
    assert!(b.try_acquire().is_ok());
}

// ===== half-open =====

#[test]
fn half_open_allows_one_trial_and_rejects_the_rest() {
    let (b, clock) = breaker(Config::default());
    fail(&b, 5);
    clock.advance(SECS_30);
    let trial = b.try_acquire().expect("the trial");
    assert!(trial.is_trial());
    for _ in 0..10 {
        let rejected = b.try_acquire().unwrap_err();
        assert_eq!(rejected.retry_after(), Duration::ZERO);
    }
    assert_eq!(b.metrics().half_open_in_flight(), 1);
    drop(trial);
}

#[test]
fn one_success_in_half_open_closes() {
    let (seen, listener) = recorder();
    let (b, clock) = breaker(Config::default().on_transition(listener));
    fail(&b, 5);
    clock.advance(SECS_30);
    b.try_acquire().unwrap().record_success();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (State::Closed, State::Open, Reason::ConsecutiveFailures),
            (State::Open, State::HalfOpen, Reason::ResetTimeout),
            (State::HalfOpen, State::Closed, Reason::TrialsSucceeded),
        ]
    );
    // Closed again means a fresh count: five more failures to open.
    fail(&b, 4);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_failure_in_half_open_reopens_for_another_full_period() {
    let (seen, listener) = recorder();
    let (b, clock) = breaker(Config::default().on_transition(listener));
    fail(&b, 5);
    clock.advance(SECS_30);
    b.try_acquire().unwrap().record_failure();
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), SECS_30);
    assert_eq!(
        seen.lock().unwrap().last(),
        Some(&(State::HalfOpen, State::Open, Reason::TrialFailed))
    );
    clock.advance(SECS_30 - MS);
    assert_eq!(b.state(), State::Open);
    clock.advance(MS);
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn ignored_trial_keeps_half_open_and_frees_the_slot() {
    let (b, clock) = breaker(Config::default());
    fail(&b, 5);
    clock.advance(SECS_30);
    b.try_acquire().unwrap().record(Outcome::Ignored);
    assert_eq!(b.state(), State::HalfOpen);
    let trial = b.try_acquire().expect("slot freed by the ignored trial");
    trial.record_success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn dropped_trial_permit_frees_the_slot() {
    let (b, clock) = breaker(Config::default());
    fail(&b, 5);
    clock.advance(SECS_30);
    let trial = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(trial);
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.metrics().half_open_in_flight(), 0);
    b.try_acquire().expect("slot freed").record_success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn several_trials_and_several_successes() {
    let (b, clock) = breaker(
        Config::default()
            .half_open_max_calls(3)
            .success_threshold(2),
    );
    fail(&b, 5);
    clock.advance(SECS_30);
    let trials: Vec<_> = (0..3).map(|_| b.try_acquire().unwrap()).collect();
    assert!(b.try_acquire().is_err(), "exactly three trials");
    let mut trials = trials.into_iter();
    trials.next().unwrap().record_success();
    assert_eq!(b.state(), State::HalfOpen, "one success of two");
    assert_eq!(b.metrics().half_open_successes(), 1);
    let fourth = b.try_acquire().expect("the finished trial's slot");
    trials.next().unwrap().record_success();
    assert_eq!(b.state(), State::Closed);
    // The remaining trials are from the half-open epoch: stale now.
    trials.next().unwrap().record_failure();
    fourth.record_failure();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().consecutive_failures(), 0);
}

#[test]
fn any_failed_trial_reopens_even_after_successes() {
    let (b, clock) = breaker(
        Config::default()
            .half_open_max_calls(2)
            .success_threshold(2),
    );
    fail(&b, 5);
    clock.advance(SECS_30);
    let a = b.try_acquire().unwrap();
    let c = b.try_acquire().unwrap();
    a.record_success();
    c.record_failure();
    assert_eq!(b.state(), State::Open);
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_trial_held_past_max_half_open_wait_counts_as_failed() {
    let (seen, listener) = recorder();
    let (b, clock) = breaker(
        Config::default()
            .failure_threshold(1)
            .max_half_open_wait(WAIT)
            .on_transition(listener),
    );
    fail(&b, 1);
    clock.advance(SECS_30);
    let leaked = b.try_acquire_owned().unwrap();
    clock.advance(WAIT - MS);
    assert_eq!(b.state(), State::HalfOpen, "9.999 s: still waiting");
    assert!(b.try_acquire().is_err());
    clock.advance(MS);
    // As a failed trial: open again for a full period...
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), SECS_30);
    clock.advance(SECS_30);
    // ... then the slot is free for a new trial, and the expired one's late
    // result has no effect.
    let trial = b.try_acquire().unwrap();
    leaked.record_success();
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.metrics().half_open_in_flight(), 1);
    trial.record_success();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (State::Closed, State::Open, Reason::ConsecutiveFailures),
            (State::Open, State::HalfOpen, Reason::ResetTimeout),
            (State::HalfOpen, State::Open, Reason::HalfOpenTimeout),
            (State::Open, State::HalfOpen, Reason::ResetTimeout),
            (State::HalfOpen, State::Closed, Reason::TrialsSucceeded),
        ]
    );
}

#[test]
fn a_late_trial_result_cannot_close_after_max_half_open_wait() {
    // Nobody looked at the breaker while the wait ran out: the late
    // success itself finds the trial expired.
    for outcome in [Outcome::Success, Outcome::Ignored, Outcome::Failure] {
        let (b, clock) = breaker(
            Config::default()
                .failure_threshold(1)
                .max_half_open_wait(WAIT),
        );
        fail(&b, 1);
        clock.advance(SECS_30);
        let trial = b.try_acquire().unwrap();
        clock.advance(WAIT);
        trial.record(outcome);
        assert_eq!(b.state(), State::Open, "{outcome:?}");
        assert_eq!(b.metrics().retry_after(), Some(SECS_30), "{outcome:?}");
    }
}

#[test]
fn max_half_open_wait_is_off_by_default_and_measured_from_half_open() {
    let (b, clock) = breaker(Config::default().failure_threshold(1));
    fail(&b, 1);
    clock.advance(SECS_30);
    let _held = b.try_acquire().unwrap();
    clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(b.state(), State::HalfOpen, "held a day, still half-open");

    // Measured from entering half-open, not from the end of the open period.
    let (b, clock) = breaker(
        Config::default()
            .failure_threshold(1)
            .max_half_open_wait(WAIT),
    );
    fail(&b, 1);
    clock.advance(SECS_30 + Duration::from_secs(3600));
    let _trial = b.try_acquire().unwrap();
    clock.advance(WAIT - MS);
    assert_eq!(b.state(), State::HalfOpen);
    clock.advance(MS);
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        Config::default()
            .max_half_open_wait(WAIT)
            .max_half_open_wait(None),
        Config::default()
    );
}

// ===== epochs =====

#[test]
fn a_stale_success_cannot_close_a_later_open_circuit() {
    let (b, _) = breaker(Config::default());
    let slow_call = b.try_acquire().unwrap();
    fail(&b, 5);
    assert_eq!(b.state(), State::Open);
    slow_call.record_success();
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.metrics().successes(), 1, "still counted in the metrics");
}

#[test]
fn a_stale_result_cannot_touch_a_later_half_open_or_closed_epoch() {
    let (b, clock) = breaker(Config::default());
    let from_first_closed = b.try_acquire().unwrap();
    fail(&b, 5);
    clock.advance(SECS_30);
    let trial = b.try_acquire().unwrap();
    from_first_closed.record_failure();
    assert_eq!(
        b.state(),
        State::HalfOpen,
        "a stale failure does not re-open"
    );
    let from_half_open = trial;
    let other = b.try_acquire();
    assert!(other.is_err());
    from_half_open.record_success();
    assert_eq!(b.state(), State::Closed);

    // Stale results from the half-open epoch do not count in the new closed
    // epoch either.
    let (b, clock) = breaker(
        Config::default()
            .half_open_max_calls(2)
            .failure_threshold(1),
    );
    fail(&b, 1);
    clock.advance(SECS_30);
    let t1 = b.try_acquire().unwrap();
    let t2 = b.try_acquire().unwrap();
    t1.record_success();
    assert_eq!(b.state(), State::Closed);
    t2.record_failure();
    assert_eq!(
        b.state(),
        State::Closed,
        "threshold 1, but the failure is stale"
    );
}

#[test]
fn epochs_increase_on_every_transition() {
    let (b, clock) = breaker(Config::default().failure_threshold(1));
    let e0 = b.metrics().epoch();
    fail(&b, 1);
    assert_eq!(b.metrics().epoch(), e0 + 1);
    clock.advance(SECS_30);
    let trial = b.try_acquire().unwrap();
    assert_eq!(trial.epoch(), e0 + 2);
    trial.record_success();
    assert_eq!(b.metrics().epoch(), e0 + 3);
}

/// Epochs have 21 bits: `reset()` makes one transition each, so this many
/// bring the epoch back to where it was.
const EPOCHS: u32 = 1 << 21;

fn resets(b: &CircuitBreaker, n: u32) {
    for _ in 0..n {
        b.reset();
    }
}

#[test]
fn a_closed_permit_whose_epoch_wrapped_to_a_half_open_one_is_stale() {
    let (b, clock) = breaker(Config::default().failure_threshold(1).success_threshold(2));
    let stale = b.try_acquire().unwrap();
    assert!(!stale.is_trial());
    // Closed at epoch -2, open at -1, half-open at the stale permit's epoch.
    resets(&b, EPOCHS - 2);
    fail(&b, 1);
    clock.advance(SECS_30);
    let trial = b.try_acquire().unwrap();
    assert_eq!(trial.epoch(), stale.epoch(), "aliased");
    stale.record_success();
    let m = b.metrics();
    assert_eq!(m.half_open_in_flight(), 1, "it freed no slot");
    assert_eq!(m.half_open_successes(), 0, "it is not a trial");
    assert!(
        b.try_acquire().is_err(),
        "the one slot is still the trial's"
    );
    trial.record_success();
    assert_eq!(b.metrics().half_open_successes(), 1);
}

#[test]
fn a_trial_permit_whose_epoch_wrapped_to_a_closed_one_is_stale() {
    let (b, clock) = breaker(Config::default().failure_threshold(1));
    fail(&b, 1);
    clock.advance(SECS_30);
    let stale = b.try_acquire().unwrap();
    assert!(stale.is_trial());
    // Back to closed at the trial's epoch.
    resets(&b, EPOCHS);
    assert_eq!(b.metrics().epoch(), stale.epoch(), "aliased");
    assert_eq!(b.state(), State::Closed);
    stale.record_failure();
    assert_eq!(
        b.state(),
        State::Closed,
        "threshold 1, but the trial is stale"
    );
    assert_eq!(b.metrics().consecutive_failures(), 0);
}

// ===== failure-rate policy =====

#[test]
fn rate_policy_opens_at_the_threshold_after_min_calls() {
    let (seen, listener) = recorder();
    let (b, _) = breaker(
        Config::default()
            .failure_rate(FailureRate::new(50, 10).min_calls(4))
            .on_transition(listener),
    );
    // Three failures: below min_calls.
    fail(&b, 3);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().window_calls(), 3);
    // 3 failures of 4: 75 % >= 50 %.
    b.try_acquire().unwrap().record_success();
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        *seen.lock().unwrap(),
        [(State::Closed, State::Open, Reason::FailureRate)]
    );
}

#[test]
fn rate_policy_stays_closed_below_the_threshold() {
    let (b, _) = breaker(Config::default().failure_rate(FailureRate::new(50, 10)));
    for i in 0..100 {
        let p = b.try_acquire().expect("stays closed");
        // 4 failures in every 10 consecutive calls: 40 %.
        if i % 5 < 2 {
            p.record_failure();
        } else {
            p.record_success();
        }
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().window_calls(), 10);
    assert_eq!(b.metrics().failure_rate(), 40.0);
    // The last ten are F F S S S F F S S S: two more failures replace the two
    // oldest failures (still 40 %), the third replaces a success (50 %).
    fail(&b, 2);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().failure_rate(), 40.0);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn rate_window_slides_and_restarts_empty_when_closed() {
    let (b, clock) = breaker(Config::default().failure_rate(FailureRate::new(60, 5)));
    fail(&b, 2);
    for _ in 0..5 {
        b.try_acquire().unwrap().record_success();
    }
    // The two failures slid out of the window.
    assert_eq!(b.metrics().failure_rate(), 0.0);
    fail(&b, 3);
    assert_eq!(b.state(), State::Open, "3 of the last 5");
    clock.advance(SECS_30);
    b.try_acquire().unwrap().record_success();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().window_calls(), 0, "fresh window");
    fail(&b, 4);
    assert_eq!(b.state(), State::Closed, "min_calls (= window) not reached");
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn rate_window_ignores_ignored_outcomes() {
    let (b, _) = breaker(Config::default().failure_rate(FailureRate::new(100, 3)));
    fail(&b, 2);
    for _ in 0..10 {
        b.try_acquire().unwrap().record(Outcome::Ignored);
    }
    assert_eq!(b.metrics().window_calls(), 2);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn failure_threshold_is_unused_under_the_rate_policy() {
    let (b, _) = breaker(
        Config::default()
            .failure_threshold(1)
            .failure_rate(FailureRate::new(100, 3)),
    );
    fail(&b, 2);
    assert_eq!(b.state(), State::Closed);
}

// ===== slow calls =====

#[test]
fn slow_calls_open_on_the_slow_call_rate() {
    let (seen, listener) = recorder();
    let (b, clock) = breaker(
        Config::default()
            .failure_rate(FailureRate::new(50, 4).slow_calls(Duration::from_secs(2), 75))
            .on_transition(listener),
    );
    // Fast successes, then slow successes timed by the permit.
    b.try_acquire().unwrap().record_success();
    for _ in 0..2 {
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_secs(2));
        p.record_success();
    }
    assert_eq!(b.state(), State::Closed, "2 slow of 3");
    assert_eq!(b.metrics().slow_calls(), 2);
    // A call just under the limit is not slow.
    let p = b.try_acquire().unwrap();
    clock.advance(Duration::from_secs(2) - MS);
    p.record_success();
    assert_eq!(b.state(), State::Closed, "2 slow of 4");
    // The caller's own measurement.
    b.try_acquire()
        .unwrap()
        .record_with_duration(Outcome::Success, Duration::from_secs(5));
    assert_eq!(b.metrics().slow_call_rate(), 75.0);
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        *seen.lock().unwrap(),
        [(State::Closed, State::Open, Reason::SlowCallRate)]
    );
}

#[test]
fn slow_calls_are_timed_exactly_not_to_the_millisecond() {
    let clock = ManualClock::new();
    clock.set(Duration::from_secs(1_700_000_000) + Duration::from_micros(400));
    let b = CircuitBreaker::with_clock(
        Config::default().failure_rate(FailureRate::new(50, 4).slow_calls(MS, 100)),
        clock.clone(),
    )
    .unwrap();
    // Calls starting 0.95 ms into a millisecond: 0.1 ms is fast, and so is
    // a call 1 ns short of the 1 ms threshold.
    clock.advance(Duration::from_micros(950));
    let p = b.try_acquire().unwrap();
    clock.advance(Duration::from_micros(100));
    p.record_success();
    assert_eq!(b.metrics().slow_calls(), 0, "a 0.1 ms call is not slow");
    clock.advance(Duration::from_micros(850));
    let p = b.try_acquire().unwrap();
    clock.advance(MS - Duration::from_nanos(1));
    p.record_success();
    assert_eq!(b.metrics().slow_calls(), 0, "999.999 us is not slow");
    // Exactly the threshold is slow.
    let p = b.try_acquire().unwrap();
    clock.advance(MS);
    p.record_success();
    assert_eq!(b.metrics().slow_calls(), 1, "1 ms is slow");
}

#[test]
fn a_slow_trial_reopens() {
    let (b, clock) = breaker(
        Config::default()
            .failure_rate(FailureRate::new(50, 2).slow_calls(Duration::from_secs(1), 100)),
    );
    fail(&b, 2);
    clock.advance(SECS_30);
    b.try_acquire()
        .unwrap()
        .record_with_duration(Outcome::Success, Duration::from_secs(3));
    assert_eq!(b.state(), State::Open);
    clock.advance(SECS_30);
    b.try_acquire()
        .unwrap()
        .record_with_duration(Outcome::Success, Duration::from_millis(10));
    assert_eq!(b.state(), State::Closed);
}

// ===== open backoff =====

#[test]
fn open_period_grows_on_reopens_caps_and_resets_when_closed() {
    let (b, clock) = breaker(
        Config::default()
            .failure_threshold(1)
            .reset_timeout(Duration::from_secs(10))
            .open_backoff(OpenBackoff::new(Duration::from_secs(50)).jitter_percent(0)),
    );
    let mut periods = Vec::new();
    fail(&b, 1);
    for _ in 0..5 {
        let period = b.try_acquire().unwrap_err().retry_after();
        periods.push(period.as_secs());
        clock.advance(period);
        b.try_acquire().expect("trial").record_failure();
    }
    assert_eq!(periods, [10, 20, 40, 50, 50]);

    // A successful trial closes and resets the growth.
    clock.advance(Duration::from_secs(50));
    b.try_acquire().unwrap().record_success();
    fail(&b, 1);
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Duration::from_secs(10)
    );
}

#[test]
fn jittered_open_periods_stay_between_base_and_cap() {
    let (b, clock) = breaker(
        Config::default()
            .failure_threshold(1)
            .reset_timeout(Duration::from_secs(10))
            .open_backoff(OpenBackoff::new(Duration::from_secs(80)).jitter_percent(50)),
    );
    fail(&b, 1);
    let mut seen = Vec::new();
    for reopen in 0..6u32 {
        let period = b.try_acquire().unwrap_err().retry_after();
        let grown = Duration::from_secs(10 * 2u64.pow(reopen)).min(Duration::from_secs(80));
        assert!(period <= grown, "{period:?} > {grown:?}");
        assert!(
            period >= Duration::from_secs(10).max(grown / 2) - MS,
            "{period:?}"
        );
        seen.push(period);
        clock.advance(period);
        b.try_acquire().unwrap().record_failure();
    }
    assert_eq!(seen[0], Duration::from_secs(10), "the first open is exact");
}

#[test]
fn without_backoff_every_open_lasts_reset_timeout() {
    let (b, clock) = breaker(Config::default());
    fail(&b, 5);
    for _ in 0..4 {
        assert_eq!(b.try_acquire().unwrap_err().retry_after(), SECS_30);
        clock.advance(SECS_30);
        b.try_acquire().unwrap().record_failure();
    }
}

// ===== manual control =====

#[test]
fn force_open_rejects_until_reset() {
    let (seen, listener) = recorder();
    let (b, clock) = breaker(Config::default().on_transition(listener));
    let in_flight = b.try_acquire().unwrap();
    b.force_open();
    assert_eq!(b.state(), State::Open);
    assert!(b.is_forced_open());
    assert!(b.metrics().is_forced_open());
    let open = b.try_acquire().unwrap_err();
    assert!(open.is_forced());
    assert_eq!(open.retry_after(), SECS_30);
    assert_eq!(open.to_string(), "circuit breaker is forced open");
    // Time does not close a forced circuit, and in-flight results are stale.
    clock.advance(Duration::from_secs(3600));
    in_flight.record_success();
    assert_eq!(b.state(), State::Open);
    b.force_open(); // idempotent: no second transition
    b.reset();
    assert_eq!(b.state(), State::Closed);
    assert!(!b.is_forced_open());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (State::Closed, State::Open, Reason::ForcedOpen),
            (State::Open, State::Closed, Reason::Reset),
        ]
    );
}

#[test]
fn disable_lets_everything_through_and_still_counts() {
    let (b, _) = breaker(Config::default());
    fail(&b, 5);
    b.disable();
    assert!(b.is_disabled());
    assert_eq!(b.state(), State::Closed);
    fail(&b, 100);
    assert_eq!(b.state(), State::Closed);
    assert!(b.metrics().is_disabled());
    assert_eq!(b.metrics().failures(), 105);
    b.reset();
    assert!(!b.is_disabled());
    fail(&b, 5);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn reset_clears_counts_backoff_and_window() {
    let (b, clock) = breaker(
        Config::default()
            .failure_threshold(1)
            .reset_timeout(Duration::from_secs(10))
            .open_backoff(OpenBackoff::new(Duration::from_secs(100)).jitter_percent(0)),
    );
    fail(&b, 1);
    clock.advance(Duration::from_secs(10));
    b.try_acquire().unwrap().record_failure();
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Duration::from_secs(20)
    );
    b.reset();
    fail(&b, 1);
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Duration::from_secs(10)
    );

    let (b, _) = breaker(Config::default().failure_rate(FailureRate::new(50, 4)));
    fail(&b, 3);
    b.reset();
    assert_eq!(b.metrics().window_calls(), 0);
    fail(&b, 1);
    assert_eq!(b.state(), State::Closed);

    let (b, _) = breaker(Config::default());
    fail(&b, 4);
    b.reset();
    fail(&b, 4);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn force_open_and_disable_override_each_other() {
    let (b, _) = breaker(Config::default());
    b.force_open();
    b.disable();
    assert!(b.is_disabled() && !b.is_forced_open());
    assert!(b.try_acquire().is_ok());
    b.force_open();
    assert!(b.is_forced_open() && !b.is_disabled());
    assert!(b.try_acquire().is_err());
}

// ===== observability =====

#[test]
fn metrics_count_everything() {
    let (b, clock) = breaker(Config::default().failure_threshold(2));
    b.try_acquire().unwrap().record_success();
    b.try_acquire().unwrap().record(Outcome::Ignored);
    fail(&b, 2);
    clock.advance(Duration::from_secs(5));
    let _ = b.try_acquire();
    let _ = b.try_acquire();
    let m = b.metrics();
    assert_eq!(m.state(), State::Open);
    assert_eq!(m.calls(), 4);
    assert_eq!((m.successes(), m.failures(), m.ignored()), (1, 2, 1));
    assert_eq!(m.rejections(), 2);
    assert_eq!(m.time_in_state(), Duration::from_secs(5));
    assert_eq!(m.retry_after(), Some(Duration::from_secs(25)));
    assert!((m.failure_rate() - 200.0 / 3.0).abs() < 1e-9);
}

#[test]
fn listeners_run_in_order_and_only_on_transitions() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let (first, second) = (Arc::clone(&order), Arc::clone(&order));
    let (b, clock) = breaker(
        Config::default()
            .failure_threshold(1)
            .on_transition(move |_| first.lock().unwrap().push(1))
            .on_transition(move |t| {
                assert_eq!(t.open_for(), Some(SECS_30));
                second.lock().unwrap().push(2)
            }),
    );
    for _ in 0..10 {
        b.try_acquire().unwrap().record_success();
    }
    assert!(order.lock().unwrap().is_empty());
    fail(&b, 1);
    assert_eq!(*order.lock().unwrap(), [1, 2]);
    let _ = clock;
}

#[test]
fn transition_reports_time_and_epoch() {
    let last = Arc::new(Mutex::new(None));
    let l = Arc::clone(&last);
    let (b, clock) = breaker(
        Config::default()
            .failure_threshold(1)
            .on_transition(move |t| *l.lock().unwrap() = Some(*t)),
    );
    clock.advance(Duration::from_secs(7));
    fail(&b, 1);
    let t = last.lock().unwrap().expect("a transition");
    assert_eq!((t.from(), t.to()), (State::Closed, State::Open));
    assert_eq!(t.at(), Duration::from_secs(7));
    assert_eq!(t.epoch(), b.metrics().epoch());
}

#[test]
fn listener_may_read_the_breaker() {
    let slot: Arc<Mutex<Option<CircuitBreaker>>> = Arc::default();
    let states = Arc::new(Mutex::new(Vec::new()));
    let (s, st) = (Arc::clone(&slot), Arc::clone(&states));
    let (b, _) = breaker(
        Config::default()
            .failure_threshold(1)
            .on_transition(move |_| {
                if let Some(b) = s.lock().unwrap().as_ref() {
                    st.lock().unwrap().push(b.metrics().state());
                }
            }),
    );
    *slot.lock().unwrap() = Some(b.clone());
    fail(&b, 1);
    assert_eq!(*states.lock().unwrap(), [State::Open]);
    slot.lock().unwrap().take();
}

// ===== permits, clones, debug =====

#[test]
fn owned_permits_move_into_threads() {
    let (b, clock) = breaker(Config::default().failure_threshold(1));
    fail(&b, 1);
    clock.advance(SECS_30);
    let trial = b.try_acquire_owned().unwrap();
    assert!(trial.is_trial());
    std::thread::spawn(move || trial.record_success())
        .join()
        .unwrap();
    assert_eq!(b.state(), State::Closed);

    fail(&b, 1);
    clock.advance(SECS_30);
    let trial = b.try_acquire().unwrap().into_owned();
    assert!(b.try_acquire().is_err());
    std::thread::spawn(move || drop(trial)).join().unwrap();
    assert!(
        b.try_acquire().is_ok(),
        "dropping the owned permit freed the slot"
    );
}

#[test]
fn clones_share_state() {
    let (b, _) = breaker(Config::default());
    let c = b.clone();
    fail(&c, 5);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn debug_output_is_useful_and_does_not_choke_on_closures() {
    let config = Config::default().name("auth-svc").on_transition(|_| {});
    let text = format!("{config:?}");
    assert!(
        text.contains("auth-svc") && text.contains("on_transition: true"),
        "{text}"
    );
    let b = CircuitBreaker::new(config.clone()).unwrap();
    let text = format!("{b:?}");
    assert!(text.contains("state: Closed"), "{text}");
    let permit = b.try_acquire().unwrap();
    assert!(format!("{permit:?}").contains("epoch"));
    assert_eq!(b.config(), &config, "equal: same listener");
    assert_ne!(&Config::default().on_transition(|_| {}), &Config::default());
    assert_eq!(Config::default(), Config::default());
}

#[test]
fn default_breaker_is_the_seed() {
    let b = CircuitBreaker::default();
    fail(&b, 4);
    assert_eq!(b.state(), State::Closed);
    fail(&b, 1);
    let open = b.try_acquire().unwrap_err();
    assert!(open.retry_after() <= SECS_30 && open.retry_after() > Duration::from_secs(29));
}
