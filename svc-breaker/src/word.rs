//! The bit packing: the state word, a permit's grant, and epoch-tagged cells.
//!
//! # Why one word
//!
//! Everything a decision needs lives in a single `AtomicU64`:
//!
//! ```text
//!  63                         24 23                3 2     0
//! +-----------------------------+-------------------+-------+
//! |          payload (40)       |    epoch (21)     | tag(3)|
//! +-----------------------------+-------------------+-------+
//! closed:    consecutive failures
//! half-open: successes (20) | trials in flight (20)
//! open:      deadline, in whole milliseconds since the breaker's origin
//!            (rounded up)
//! ```
//!
//! The tag is closed, open, half-open, forced-open, disabled, or clearing
//! (open, its period over, while the failure-rate window is emptied on the
//! way to half-open). Because the
//! whole state is one value, every change is one compare-and-swap from a
//! state that was read to the state that follows it, and a transition can
//! never be half-applied: there is no window in which a reader sees "open"
//! with the previous period's deadline, or "half-open" with the previous
//! period's trial count.
//!
//! Every time in the word and in a permit is relative to the breaker's
//! origin, the clock's reading when the breaker was built: a `Clock` may
//! count from any origin (wall time since 1970, a century ago), and the
//! 40-bit deadline still covers about 34 years of the breaker's life.
//!
//! This module only packs and unpacks; which word follows which is the state
//! machine's business (`machine.rs`).

use std::fmt;
use std::time::Duration;

use crate::clock::nanos;
use crate::loom::{AtomicU64, Ordering};
use crate::transition::State;

// ===== the state word =====

const TAG_MASK: u64 = 0b111;
const EPOCH_SHIFT: u32 = 3;
const EPOCH_BITS: u32 = 21;
const EPOCH_MASK: u64 = (1 << EPOCH_BITS) - 1;
const PAYLOAD_SHIFT: u32 = EPOCH_SHIFT + EPOCH_BITS;
const PAYLOAD_MASK: u64 = (1 << (64 - PAYLOAD_SHIFT)) - 1;
const HALF_BITS: u32 = 20;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tag {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
    ForcedOpen = 3,
    Disabled = 4,
    // Open, its period over, and one thread clearing the failure-rate window
    // before it turns the circuit half-open (see `Shared::half_open`).
    Clearing = 5,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    pub(crate) fn new(tag: Tag, epoch: u32, payload: u64) -> Word {
        Word(
            tag as u64
                | (u64::from(epoch) & EPOCH_MASK) << EPOCH_SHIFT
                | (payload & PAYLOAD_MASK) << PAYLOAD_SHIFT,
        )
    }

    pub(crate) fn half_open(epoch: u32, in_flight: u32, successes: u32) -> Word {
        let payload =
            u64::from(in_flight) & HALF_MASK | (u64::from(successes) & HALF_MASK) << HALF_BITS;
        Word::new(Tag::HalfOpen, epoch, payload)
    }

    pub(crate) fn tag(self) -> Tag {
        match self.0 & TAG_MASK {
            0 => Tag::Closed,
            1 => Tag::Open,
            2 => Tag::HalfOpen,
            3 => Tag::ForcedOpen,
            4 => Tag::Disabled,
            _ => Tag::Clearing,
        }
    }

    pub(crate) fn epoch(self) -> u32 {
        // Masked to 21 bits: lossless.
        ((self.0 >> EPOCH_SHIFT) & EPOCH_MASK) as u32
    }

    pub(crate) fn next_epoch(self) -> u32 {
        self.epoch().wrapping_add(1) & EPOCH_MASK as u32
    }

    pub(crate) fn payload(self) -> u64 {
        self.0 >> PAYLOAD_SHIFT
    }

    pub(crate) fn in_flight(self) -> u32 {
        (self.payload() & HALF_MASK) as u32
    }

    pub(crate) fn successes(self) -> u32 {
        ((self.payload() >> HALF_BITS) & HALF_MASK) as u32
    }

    pub(crate) fn deadline(self) -> Duration {
        Duration::from_millis(self.payload())
    }

    pub(crate) fn state(self) -> State {
        match self.tag() {
            Tag::Closed | Tag::Disabled => State::Closed,
            Tag::Open | Tag::ForcedOpen | Tag::Clearing => State::Open,
            Tag::HalfOpen => State::HalfOpen,
        }
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Word")
            .field("tag", &self.tag())
            .field("epoch", &self.epoch())
            .field("payload", &self.payload())
            .finish()
    }
}

/// Whether epoch `a` is later than `b`, modulo wrapping.
fn newer(a: u32, b: u32) -> bool {
    let d = u64::from(a.wrapping_sub(b)) & EPOCH_MASK;
    d != 0 && d < 1 << (EPOCH_BITS - 1)
}

/// `d` in whole milliseconds, rounded up, saturating at the payload width.
pub(crate) fn ceil_millis(d: Duration) -> u64 {
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX).min(PAYLOAD_MASK)
}

// ===== a permit's grant =====

/// What a permit remembers: a word of flags and epoch, and the call's start.
///
/// ```text
///  63          23   22    21   20        0
/// +--------------+------+-----+-----------+
/// |   (unused)   | done |trial|  epoch    |
/// +--------------+------+-----+-----------+
/// start: nanoseconds since the breaker's origin, plus 1 (0: untimed)
/// ```
///
/// The start is only recorded when a slow-call threshold is configured, at
/// full precision: a call is compared to the threshold exactly, never to a
/// start rounded to the millisecond. 64 bits of nanoseconds cover 584 years.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant {
    bits: u64,
    start: u64,
}

const GRANT_TRIAL: u64 = 1 << EPOCH_BITS;
const GRANT_DONE: u64 = 1 << (EPOCH_BITS + 1);

impl Grant {
    #[inline]
    pub(crate) fn untimed(epoch: u32, trial: bool) -> Grant {
        Grant {
            bits: u64::from(epoch) & EPOCH_MASK | if trial { GRANT_TRIAL } else { 0 },
            start: 0,
        }
    }

    pub(crate) fn timed(epoch: u32, trial: bool, start: Duration) -> Grant {
        Grant {
            start: nanos(start).saturating_add(1),
            ..Grant::untimed(epoch, trial)
        }
    }

    #[inline]
    pub(crate) fn epoch(self) -> u32 {
        (self.bits & EPOCH_MASK) as u32
    }

    #[inline]
    pub(crate) fn trial(self) -> bool {
        self.bits & GRANT_TRIAL != 0
    }

    #[inline]
    pub(crate) fn done(self) -> bool {
        self.bits & GRANT_DONE != 0
    }

    /// Marks the grant recorded; returns it as it was.
    #[inline]
    pub(crate) fn take(&mut self) -> Grant {
        let before = *self;
        self.bits |= GRANT_DONE;
        before
    }

    pub(crate) fn started(self) -> Option<Duration> {
        match self.start {
            0 => None,
            n => Some(Duration::from_nanos(n - 1)),
        }
    }
}

// ===== epoch-tagged cells =====

/// An atomic `epoch << shift | value`, written only if the writer's epoch is
/// newer than the stored one (0 is "never written"): a thread that made a
/// transition and was delayed cannot overwrite what a later transition
/// wrote.
pub(crate) struct EpochCell {
    cell: AtomicU64,
    shift: u32,
}

impl EpochCell {
    /// An unwritten cell whose value takes the low `shift` bits.
    pub(crate) fn new(shift: u32) -> EpochCell {
        EpochCell {
            cell: AtomicU64::new(0),
            shift,
        }
    }

    /// The stored epoch and value.
    #[inline]
    pub(crate) fn load(&self) -> (u32, u64) {
        let bits = self.cell.load(Ordering::Acquire);
        ((bits >> self.shift) as u32, bits & ((1 << self.shift) - 1))
    }

    /// Stores `value` for `epoch` unless the cell holds a newer epoch
    /// already.
    pub(crate) fn store_newer(&self, epoch: u32, value: u64) {
        let new = u64::from(epoch) << self.shift | value;
        let mut current = self.cell.load(Ordering::Acquire);
        loop {
            let stored_epoch = (current >> self.shift) as u32;
            if stored_epoch != 0 && !newer(epoch, stored_epoch) {
                return;
            }
            match self
                .cell
                .compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_round_trips() {
        let w = Word::half_open(EPOCH_MASK as u32, HALF_MASK as u32, 7);
        assert_eq!(w.tag(), Tag::HalfOpen);
        assert_eq!(w.epoch(), EPOCH_MASK as u32);
        assert_eq!(w.in_flight(), HALF_MASK as u32);
        assert_eq!(w.successes(), 7);
        assert_eq!(w.next_epoch(), 0);

        let open = Word::new(Tag::Open, 5, PAYLOAD_MASK);
        assert_eq!(open.tag(), Tag::Open);
        assert_eq!(open.epoch(), 5);
        assert_eq!(open.payload(), PAYLOAD_MASK);
        assert_eq!(
            Word::new(Tag::Closed, 3, u64::from(u32::MAX)).payload(),
            u64::from(u32::MAX)
        );
    }

    #[test]
    fn epochs_compare_modulo_wrap() {
        assert!(newer(1, 0));
        assert!(!newer(0, 1));
        assert!(!newer(4, 4));
        assert!(newer(0, EPOCH_MASK as u32));
    }

    #[test]
    fn deadlines_round_up_and_saturate() {
        assert_eq!(ceil_millis(Duration::from_secs(30)), 30_000);
        assert_eq!(ceil_millis(Duration::from_nanos(30_000_000_001)), 30_001);
        assert_eq!(ceil_millis(Duration::MAX), PAYLOAD_MASK);
    }
}
