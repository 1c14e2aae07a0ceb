//! Property test: random sequences of operations against a plain
//! single-threaded reference model of the documented behaviour.

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;
use svc_breaker::{CircuitBreaker, Config, FailureRate, ManualClock, Outcome, Permit, State};

const RESET_MS: u64 = 1_000;

#[derive(Debug, Clone, Copy)]
enum Policy {
    Consecutive(u32),
    Rate {
        percent: u32,
        window: usize,
        min_calls: usize,
    },
}

#[derive(Debug, Clone, Copy)]
struct Setup {
    policy: Policy,
    trials: u32,
    successes: u32,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Acquire,
    Record(usize, Outcome),
    Drop(usize),
    Advance(u64),
    ForceOpen,
    Disable,
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    Closed { failures: u32 },
    Open { until: u64 },
    Half { in_flight: u32, successes: u32 },
    Forced,
    Disabled,
}

/// The behaviour as documented, with no concurrency to worry about.
struct Model {
    setup: Setup,
    st: St,
    epoch: u32,
    window: VecDeque<bool>,
}

impl Model {
    fn new(setup: Setup) -> Self {
        Model {
            setup,
            st: St::Closed { failures: 0 },
            epoch: 0,
            window: VecDeque::new(),
        }
    }

    fn go(&mut self, st: St) {
        self.st = st;
        self.epoch += 1;
        if matches!(st, St::Closed { .. }) {
            self.window.clear();
        }
    }

    fn refresh(&mut self, now: u64) {
        if let St::Open { until } = self.st
            && now >= until
        {
            self.go(St::Half {
                in_flight: 0,
                successes: 0,
            });
        }
    }

    fn state(&mut self, now: u64) -> State {
        self.refresh(now);
        match self.st {
            St::Closed { .. } | St::Disabled => State::Closed,
            St::Open { .. } | St::Forced => State::Open,
            St::Half { .. } => State::HalfOpen,
        }
    }

    /// `Ok((epoch, trial))` or `Err(retry_after_ms)`.
    fn acquire(&mut self, now: u64) -> Result<(u32, bool), u64> {
        self.refresh(now);
        match self.st {
            St::Closed { .. } | St::Disabled => Ok((self.epoch, false)),
            St::Forced => Err(RESET_MS),
            St::Open { until } => Err(until - now),
            St::Half {
                in_flight,
                successes,
            } => {
                if in_flight >= self.setup.trials {
                    return Err(0);
                }
                self.st = St::Half {
                    in_flight: in_flight + 1,
                    successes,
                };
                Ok((self.epoch, true))
            }
        }
    }

    fn record(&mut self, epoch: u32, outcome: Outcome, now: u64) {
        if epoch != self.epoch {
            return;
        }
        let open = St::Open {
            until: now + RESET_MS,
        };
        match (self.st, self.setup.policy) {
            (St::Closed { failures }, Policy::Consecutive(threshold)) => match outcome {
                Outcome::Success => self.st = St::Closed { failures: 0 },
                Outcome::Failure if failures + 1 >= threshold => self.go(open),
                Outcome::Failure => {
                    self.st = St::Closed {
                        failures: failures + 1,
                    }
                }
                Outcome::Ignored => {}
            },
            (
                St::Closed { .. },
                Policy::Rate {
                    percent,
                    window,
                    min_calls,
                },
            ) => {
                if outcome == Outcome::Ignored {
                    return;
                }
                self.window.push_back(outcome == Outcome::Failure);
                if self.window.len() > window {
                    self.window.pop_front();
                }
                let calls = self.window.len();
                let failed = self.window.iter().filter(|f| **f).count();
                if calls >= min_calls && failed * 100 >= percent as usize * calls {
                    self.go(open);
                }
            }
            (
                St::Half {
                    in_flight,
                    successes,
                },
                _,
            ) => match outcome {
                Outcome::Ignored => {
                    self.st = St::Half {
                        in_flight: in_flight - 1,
                        successes,
                    }
                }
                Outcome::Success if successes + 1 >= self.setup.successes => {
                    self.go(St::Closed { failures: 0 })
                }
                Outcome::Success => {
                    self.st = St::Half {
                        in_flight: in_flight - 1,
                        successes: successes + 1,
                    }
                }
                Outcome::Failure => self.go(open),
            },
            _ => {}
        }
    }

    fn manual(&mut self, st: St) {
        if st != self.st || matches!(st, St::Closed { .. }) {
            self.go(st);
        }
    }
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => Just(Outcome::Success),
        3 => Just(Outcome::Failure),
        1 => Just(Outcome::Ignored),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::Acquire),
        8 => (0..8usize, outcome()).prop_map(|(i, o)| Op::Record(i, o)),
        1 => (0..8usize).prop_map(Op::Drop),
        3 => prop_oneof![Just(RESET_MS - 1), Just(1), 0..1_500u64].prop_map(Op::Advance),
        1 => prop_oneof![Just(Op::ForceOpen), Just(Op::Disable), Just(Op::Reset)],
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    let policy = prop_oneof![
        (1..5u32).prop_map(Policy::Consecutive),
        (1..=100u32, 1..8usize)
            .prop_flat_map(|(percent, window)| (Just(percent), Just(window), 1..=window))
            .prop_map(|(percent, window, min_calls)| Policy::Rate {
                percent,
                window,
                min_calls,
            }),
    ];
    (policy, 1..4u32, 1..4u32).prop_map(|(policy, trials, successes)| Setup {
        policy,
        trials,
        successes,
    })
}

fn build(setup: Setup, clock: &ManualClock) -> CircuitBreaker {
    let mut config = Config::default()
        .reset_timeout(Duration::from_millis(RESET_MS))
        .half_open_max_calls(setup.trials)
        .success_threshold(setup.successes);
    config = match setup.policy {
        Policy::Consecutive(n) => config.failure_threshold(n),
        Policy::Rate {
            percent,
            window,
            min_calls,
        } => config
            .failure_rate(FailureRate::new(percent, window as u32).min_calls(min_calls as u32)),
    };
    CircuitBreaker::with_clock(config, clock.clone()).unwrap()
}

proptest! {
    // Failing cases are saved next to this file, in
    // `model.proptest-regressions`, as in svc-discovery's tests (the default
    // policy would put them in `tests/proptest-regressions/model.txt`).
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn breaker_matches_the_reference_model(setup in setup(), ops in prop::collection::vec(op(), 1..120)) {
        let clock = ManualClock::new();
        let breaker = build(setup, &clock);
        let mut model = Model::new(setup);
        let mut now = 0u64;
        let mut held: Vec<(Permit<'_>, u32)> = Vec::new();

        for op in ops {
            match op {
                Op::Acquire => match (breaker.try_acquire(), model.acquire(now)) {
                    (Ok(permit), Ok((epoch, trial))) => {
                        prop_assert_eq!(permit.epoch(), epoch);
                        prop_assert_eq!(permit.is_trial(), trial);
                        if held.len() < 8 {
                            held.push((permit, epoch));
                        } else {
                            permit.record_success();
                            model.record(epoch, Outcome::Success, now);
                        }
                    }
                    (Err(open), Err(ms)) => {
                        prop_assert_eq!(open.retry_after(), Duration::from_millis(ms));
                    }
                    (real, expected) => {
                        prop_assert!(false, "acquire: breaker {:?}, model {:?}", real.map(|p| p.epoch()), expected);
                    }
                },
                Op::Record(i, outcome) if !held.is_empty() => {
                    let (permit, epoch) = held.swap_remove(i % held.len());
                    permit.record(outcome);
                    model.record(epoch, outcome, now);
                }
                Op::Drop(i) if !held.is_empty() => {
                    let (permit, epoch) = held.swap_remove(i % held.len());
                    drop(permit);
                    model.record(epoch, Outcome::Ignored, now);
                }
                Op::Record(..) | Op::Drop(_) => {}
                Op::Advance(ms) => {
                    now += ms;
                    clock.advance(Duration::from_millis(ms));
                }
                Op::ForceOpen => {
                    breaker.force_open();
                    model.manual(St::Forced);
                }
                Op::Disable => {
                    breaker.disable();
                    model.manual(St::Disabled);
                }
                Op::Reset => {
                    breaker.reset();
                    model.manual(St::Closed { failures: 0 });
                }
            }
            prop_assert_eq!(breaker.state(), model.state(now));
            let m = breaker.metrics();
            prop_assert_eq!(m.epoch(), model.epoch);
            prop_assert_eq!(m.is_forced_open(), model.st == St::Forced);
            prop_assert_eq!(m.is_disabled(), model.st == St::Disabled);
            match model.st {
                St::Closed { failures } if matches!(setup.policy, Policy::Consecutive(_)) => {
                    prop_assert_eq!(m.consecutive_failures(), failures);
                }
                St::Closed { .. } => {
                    prop_assert_eq!(m.window_calls() as usize, model.window.len());
                }
                St::Half { in_flight, successes } => {
                    prop_assert_eq!(m.half_open_in_flight(), in_flight);
                    prop_assert_eq!(m.half_open_successes(), successes);
                }
                St::Open { until } => {
                    prop_assert_eq!(m.retry_after(), Some(Duration::from_millis(until - now)));
                }
                St::Forced | St::Disabled => {}
            }
        }
    }
}
