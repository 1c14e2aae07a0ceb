//! The count-based sliding window of the failure-rate policy.
//!
//! A ring of `window` one-byte slots, each holding the outcome of one call,
//! indexed by a shared counter: recording a call is one `fetch_add` for the
//! index, one `swap` for the slot, and an add to the aggregate counts only
//! when the slot's content actually changed (in a steady state, a success
//! replacing a success changes nothing).
//!
//! The aggregates are maintained from the value each `swap` displaced, so
//! they always converge to the ring's true content, whatever the
//! interleaving. Under concurrency the window is approximate in two bounded
//! ways: a reader may see an aggregate that misses the deltas of calls being
//! recorded at that instant (at most one per recording thread), and an
//! outcome of the closed period that opened the circuit whose recording
//! thread stalled for the whole open period may land in the next window.
//! The ring is emptied on the way from open to half-open, before any trial
//! is granted (see `Shared::half_open`), and by `reset()` just before its
//! transition, so that no call of a new closed period sees the outcomes of
//! the previous one. A lock would make it exact at the price of the
//! contention this crate exists to avoid.

use crate::loom::{AtomicU8, AtomicU64, Ordering};

const FILLED: u8 = 1;
const FAILED: u8 = 2;
const SLOW: u8 = 4;

pub(crate) struct Window {
    slots: Box<[AtomicU8]>,
    next: AtomicU64,
    // Two's-complement counts: a delta may land before the delta it
    // compensates, so a count can be transiently "negative" (read as 0).
    filled: AtomicU64,
    failed: AtomicU64,
    slow: AtomicU64,
}

/// A consistent-enough reading of the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

impl Window {
    pub(crate) fn new(len: u32) -> Self {
        Window {
            slots: (0..len).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicU64::new(0),
            filled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            slow: AtomicU64::new(0),
        }
    }

    /// Records one outcome (`failed` or not, `slow` or not).
    pub(crate) fn record(&self, failed: bool, slow: bool) {
        let code = FILLED | if failed { FAILED } else { 0 } | if slow { SLOW } else { 0 };
        let len = self.slots.len() as u64;
        let i = self.next.fetch_add(1, Ordering::Relaxed) % len;
        // `i < len <= MAX_WINDOW`, so the cast is lossless.
        let old = self.slots[i as usize].swap(code, Ordering::AcqRel);
        self.apply(old, code);
    }

    /// Empties the ring (on the way to half-open, and on reset).
    pub(crate) fn clear(&self) {
        for slot in self.slots.iter() {
            let old = slot.swap(0, Ordering::AcqRel);
            self.apply(old, 0);
        }
    }

    fn apply(&self, old: u8, new: u8) {
        if old == new {
            return;
        }
        for (bit, count) in [
            (FILLED, &self.filled),
            (FAILED, &self.failed),
            (SLOW, &self.slow),
        ] {
            match (old & bit != 0, new & bit != 0) {
                (false, true) => {
                    count.fetch_add(1, Ordering::AcqRel);
                }
                (true, false) => {
                    count.fetch_sub(1, Ordering::AcqRel);
                }
                _ => {}
            }
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        fn read(count: &AtomicU64) -> u32 {
            // Reinterpret as signed: a transiently negative count reads 0.
            let signed = count.load(Ordering::Acquire) as i64;
            u32::try_from(signed.max(0)).unwrap_or(u32::MAX)
        }
        Counts {
            calls: read(&self.filled),
            failures: read(&self.failed),
            slow: read(&self.slow),
        }
    }
}
