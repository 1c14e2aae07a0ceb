//! The scenario: its phases, their durations and the load rate.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Healthy,
    /// One auth replica (the last) answers 500; the others are healthy.
    ReplicaDown,
    ChatDown,
    AuthFailing,
    AuthRecovered,
    /// auth-svc slow, each request with a budget, propagated.
    AuthSlow,
    /// The same, with profile-svc's propagation to auth off.
    AuthSlowUnbounded,
}

/// The budget the driver gives each request of the deadline phases.
pub(super) const BUDGET: Duration = Duration::from_millis(300);

/// auth-svc's slow work in the deadline phases.
pub(super) const AUTH_SLOW_MS: u64 = 800;

#[derive(Clone, Copy, Debug)]
pub(super) struct Phase {
    pub(super) kind: Kind,
    pub(super) name: &'static str,
    pub(super) secs: u64,
}

/// Durations, load and client settings of one run.
#[derive(Clone, Debug)]
pub(super) struct Plan {
    pub(super) phases: Vec<Phase>,
    pub(super) rate: u32,
    pub(super) breaker_reset: Duration,
    /// The part at the end of the recovered phase that must be all but clean.
    pub(super) settle: Duration,
}

impl Plan {
    /// The plan; `breaker_reset` is profile-svc's when the driver does not
    /// set it itself (attached), and the recovered phase lasts long enough
    /// for a trial and the settled part after it.
    /// With several auth `replicas`, a phase breaks one of them.
    pub(super) fn new(quick: bool, breaker_reset: Option<Duration>, replicas: usize) -> Plan {
        let mut secs: [u64; 7] = if quick {
            [4, 4, 5, 6, 7, 3, 3]
        } else {
            [10, 10, 15, 18, 17, 8, 8]
        };
        let settle = Duration::from_secs(if quick { 3 } else { 6 });
        let breaker_reset = breaker_reset.unwrap_or(Duration::from_secs(if quick { 2 } else { 5 }));
        let needed = (breaker_reset + settle).as_secs() + 2;
        secs[4] = secs[4].max(needed);
        let phases = [
            (Kind::Healthy, "healthy"),
            (Kind::ReplicaDown, "auth replica down"),
            (Kind::ChatDown, "chat down"),
            (Kind::AuthFailing, "auth failing"),
            (Kind::AuthRecovered, "auth recovered"),
            (Kind::AuthSlow, "auth slow"),
            (Kind::AuthSlowUnbounded, "no propagation"),
        ]
        .into_iter()
        .zip(secs)
        .filter(|((kind, _), _)| *kind != Kind::ReplicaDown || replicas >= 2)
        .map(|((kind, name), secs)| Phase { kind, name, secs })
        .collect();
        Plan {
            phases,
            rate: if quick { 50 } else { 80 },
            breaker_reset,
            settle,
        }
    }
}

pub(super) fn describe(kind: Kind) -> &'static str {
    match kind {
        Kind::Healthy => "every service answers",
        Kind::ReplicaDown => {
            "the last auth-svc replica answers 500: it is ejected, the others serve, nobody fails"
        }
        Kind::ChatDown => {
            "auth replica healed; chat-svc resets every connection: profiles degrade, nobody fails"
        }
        Kind::AuthFailing => {
            "chat-svc back; auth-svc answers 500: the breaker opens, profile-svc fails fast"
        }
        Kind::AuthRecovered => {
            "auth-svc healthy again: a half-open trial succeeds, the breaker closes"
        }
        Kind::AuthSlow => {
            "auth-svc takes 800 ms, each request has 300 ms: profile-svc answers 504 in time, auth-svc stops at the deadline"
        }
        Kind::AuthSlowUnbounded => {
            "the same with profile-svc's deadline propagation off: auth-svc works on for nobody"
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_plan_stays_short() {
        let plan = Plan::new(true, None, 3);
        let secs: u64 = plan.phases.iter().map(|p| p.secs).sum();
        // The replica phase adds 4 s and the deadline phases 6 s to the
        // first four's 22.
        assert!(secs <= 32, "{secs}");
        // Recovery needs a trial (after `breaker_reset`) before the settled part.
        let recovered = *plan
            .phases
            .iter()
            .find(|p| p.kind == Kind::AuthRecovered)
            .unwrap();
        assert!(plan.breaker_reset + plan.settle < Duration::from_secs(recovered.secs));
        let full = Plan::new(false, None, 3);
        let secs: u64 = full.phases.iter().map(|p| p.secs).sum();
        assert!((60..=90).contains(&secs), "{secs}");
        // One replica: no replica to break.
        let single = Plan::new(true, None, 1);
        assert!(single.phases.iter().all(|p| p.kind != Kind::ReplicaDown));
    }

    #[test]
    fn a_long_breaker_reset_lengthens_the_recovered_phase() {
        let plan = Plan::new(true, Some(Duration::from_secs(10)), 3);
        let recovered = plan
            .phases
            .iter()
            .find(|p| p.kind == Kind::AuthRecovered)
            .unwrap();
        assert!(plan.breaker_reset + plan.settle < Duration::from_secs(recovered.secs));
    }
}
