//! The fault server's schedule: mixed faults, an outage, mixed faults, bad
//! bodies, repeated; the storm follows it and the checks judge by it.

use crate::fault::Mode;
use std::time::Duration;

/// Mixed faults, an outage, mixed faults, bad bodies; repeated.
pub(super) const MIXED: Duration = Duration::from_millis(3000);
pub(super) const OUTAGE: Duration = Duration::from_millis(1500);
pub(super) const BAD_BODIES: Duration = Duration::from_millis(1500);
const CYCLE: [(Mode, Duration); 4] = [
    (Mode::Mixed, MIXED),
    (Mode::Outage, OUTAGE),
    (Mode::Mixed, MIXED),
    (Mode::BadBodies, BAD_BODIES),
];

/// The phases of a storm of `duration`: `(from, to, mode)`, the last one
/// cut at `duration`.
pub(super) fn phases(duration: Duration) -> Vec<(Duration, Duration, Mode)> {
    let mut out = Vec::new();
    let mut t = Duration::ZERO;
    for (mode, length) in CYCLE.iter().cycle() {
        if t >= duration {
            break;
        }
        let to = (t + *length).min(duration);
        out.push((t, to, *mode));
        t = to;
    }
    out
}

/// The server's mode at `t` from the start of the storm (the schedule
/// repeats past any duration).
fn mode_at(t: Duration) -> Mode {
    let cycle: Duration = CYCLE.iter().map(|(_, d)| *d).sum();
    let mut into = Duration::from_nanos((t.as_nanos() % cycle.as_nanos()) as u64);
    for (mode, length) in CYCLE {
        if into < length {
            return mode;
        }
        into -= length;
    }
    Mode::Mixed
}

/// Whether the server is in an outage at `t` from the start of the storm.
pub(super) fn in_outage(t: Duration) -> bool {
    mode_at(t) == Mode::Outage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_repeats_mixed_outage_mixed_bad_bodies() {
        let ms = Duration::from_millis;
        assert!(!in_outage(Duration::ZERO));
        assert!(!in_outage(ms(2999)));
        assert!(in_outage(ms(3000)));
        assert!(in_outage(ms(4499)));
        assert!(!in_outage(ms(4500)));
        assert_eq!(mode_at(ms(7499)), Mode::Mixed);
        assert_eq!(mode_at(ms(7500)), Mode::BadBodies);
        assert_eq!(mode_at(ms(8999)), Mode::BadBodies);
        assert_eq!(mode_at(ms(9000)), Mode::Mixed);
        assert!(in_outage(ms(12_100)));
        // The quick run: one outage and one bad-body phase, the end cut.
        let quick = phases(Duration::from_secs(10));
        assert_eq!(
            quick,
            [
                (ms(0), ms(3000), Mode::Mixed),
                (ms(3000), ms(4500), Mode::Outage),
                (ms(4500), ms(7500), Mode::Mixed),
                (ms(7500), ms(9000), Mode::BadBodies),
                (ms(9000), ms(10_000), Mode::Mixed),
            ]
        );
        for (from, to, mode) in phases(Duration::from_secs(60)) {
            assert_eq!(mode_at(from), mode);
            assert_eq!(mode_at(to - ms(1)), mode);
        }
    }
}
