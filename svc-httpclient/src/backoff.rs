//! The wait between attempts: exponential backoff with full jitter.
//!
//! Clients that failed together (an outage fails every caller at once)
//! retry together unless their waits differ: with a fixed or merely
//! exponential backoff they hit the recovering server in lock-step waves.
//! Full jitter draws each wait uniformly from `[0, ceiling]`, which spreads
//! them best for the least total wait (AWS Architecture Blog, "Exponential
//! Backoff And Jitter"). The ceiling is computed in floats without ever
//! producing NaN or panicking, whatever the settings, because
//! [`Backoff::delay`] is public and may see settings that were never
//! validated.

use std::time::Duration;

use crate::error::Error;

/// Exponential backoff with full jitter: the wait before retry `n` (0-based)
/// is a random duration in `[0, min(cap, base × factor^n)]`.
///
/// Full jitter spreads the retries of many clients that failed together, so
/// they do not hit the recovering server in lock-step (AWS Architecture Blog,
/// "Exponential Backoff And Jitter").
///
/// ```
/// use std::time::Duration;
/// use svc_httpclient::Backoff;
///
/// let backoff = Backoff::default()
///     .base(Duration::from_millis(50))
///     .cap(Duration::from_secs(2));
/// assert!(backoff.delay(3) <= Duration::from_millis(400));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    base: Duration,
    factor: f64,
    cap: Duration,
    jitter: bool,
}

impl Default for Backoff {
    /// 100 ms × 2^n, capped at 5 s, with full jitter.
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            factor: 2.0,
            cap: Duration::from_secs(5),
            jitter: true,
        }
    }
}

impl Backoff {
    /// The delay before the first retry, before jitter (default 100 ms).
    /// Zero retries at once.
    pub fn base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// The growth factor per retry (default 2.0); must be finite and ≥ 1
    /// (validated when a client is built). [`delay`](Backoff::delay) counts
    /// a smaller factor, or NaN, as 1.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// The largest delay, before jitter (default 5 s); must be ≥ `base`.
    pub fn cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// Full jitter on (default) or off. Turn it off only in tests: without
    /// jitter, clients that failed together retry together.
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// The wait before retry number `retry` (0 for the first retry): the
    /// exponential delay, capped, then jittered when jitter is on.
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        if !self.jitter || ceiling.is_zero() {
            return ceiling;
        }
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    /// `min(cap, base × factor^retry)`, without jitter. Total: no NaN, no
    /// panic, whatever the settings (they may not have been validated).
    fn ceiling(&self, retry: u32) -> Duration {
        // Zero times anything is zero, but in floats 0 × ∞ is NaN once the
        // power overflows: answer before computing it.
        if self.base.is_zero() {
            return Duration::ZERO;
        }
        // A factor below 1 (or NaN) fails validation; here it counts as 1.
        // `max` returns the other operand when one is NaN.
        let factor = self.factor.max(1.0);
        // Every u32 is exact in an f64, so the exponent is not clamped (a
        // factor of 1.01 passes a 60 s cap only after hundreds of retries).
        // The power overflows to +∞, and the product, with base > 0 and
        // factor ≥ 1, is at least base: never NaN, never negative.
        let secs = self.base.as_secs_f64() * factor.powf(f64::from(retry));
        // +∞ and values past `Duration::MAX` are errors here, not panics.
        Duration::try_from_secs_f64(secs).map_or(self.cap, |d| d.min(self.cap))
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if !self.factor.is_finite() || self.factor < 1.0 {
            return Err(Error::config(
                "backoff.factor",
                "must be finite and at least 1",
            ));
        }
        if self.cap < self.base {
            return Err(Error::config(
                "backoff.cap",
                "must be at least backoff.base",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_exponential_and_capped() {
        let b = Backoff::default().jitter(false);
        assert_eq!(b.delay(0), Duration::from_millis(100));
        assert_eq!(b.delay(1), Duration::from_millis(200));
        assert_eq!(b.delay(5), Duration::from_millis(3200));
        assert_eq!(b.delay(6), Duration::from_secs(5));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(5));
        let jittered = Backoff::default();
        for n in 0..20 {
            assert!(jittered.delay(n) <= b.delay(n));
        }
    }

    #[test]
    fn backoff_with_zero_base_never_waits() {
        let factors = [
            1.0,
            2.0,
            1000.0,
            f64::MAX,
            f64::INFINITY,
            f64::NAN,
            0.5,
            -2.0,
        ];
        let retries = [0, 1, 2, 63, 64, 65, 1024, 2000, u32::MAX];
        for factor in factors {
            for jitter in [false, true] {
                let b = Backoff::default()
                    .base(Duration::ZERO)
                    .factor(factor)
                    .jitter(jitter);
                for retry in retries {
                    assert_eq!(
                        b.delay(retry),
                        Duration::ZERO,
                        "factor {factor}, retry {retry}"
                    );
                }
            }
        }
    }

    #[test]
    fn backoff_reaches_its_cap_when_the_power_overflows() {
        let cases = [
            // (base, factor, retry): base × factor^retry is far past the cap.
            (Duration::from_millis(100), 2.0, 2000),
            (Duration::from_millis(100), f64::MAX, 2),
            (Duration::from_millis(100), f64::INFINITY, 1),
            (Duration::from_nanos(1), 2.0, u32::MAX),
            // 1.01^2000 ≈ 4e8: a small factor overflows the cap late, not
            // at some fixed exponent.
            (Duration::from_secs(1), 1.01, 2000),
            (Duration::from_secs(1), 1.000_001, u32::MAX),
        ];
        let cap = Duration::from_secs(60);
        for (base, factor, retry) in cases {
            let b = Backoff::default()
                .base(base)
                .factor(factor)
                .cap(cap)
                .jitter(false);
            assert_eq!(
                b.delay(retry),
                cap,
                "base {base:?}, factor {factor}, retry {retry}"
            );
        }
    }

    #[test]
    fn backoff_with_an_invalid_factor_still_waits_within_the_cap() {
        for factor in [f64::NAN, -2.0, 0.0, 0.5, f64::NEG_INFINITY] {
            let b = Backoff::default().factor(factor).jitter(false);
            assert!(b.validate().is_err(), "factor {factor}");
            for retry in [0, 1, 2, 3, 64, u32::MAX] {
                // Counted as a factor of 1: the base, never NaN, never 0.
                assert_eq!(
                    b.delay(retry),
                    Duration::from_millis(100),
                    "factor {factor}, retry {retry}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn backoff_never_exceeds_its_cap(
            base_ms in 0u64..100_000,
            extra_ms in 0u64..100_000,
            factor in 1.0f64..1000.0,
            retry in proptest::prelude::any::<u32>(),
            jitter in proptest::prelude::any::<bool>(),
        ) {
            let backoff = Backoff::default()
                .base(Duration::from_millis(base_ms))
                .cap(Duration::from_millis(base_ms + extra_ms))
                .factor(factor)
                .jitter(jitter);
            proptest::prop_assert!(backoff.validate().is_ok());
            proptest::prop_assert!(backoff.delay(retry) <= backoff.cap);
        }
    }

    /// `Backoff::delay` on settings that were never validated: it is public,
    /// so it must be total on its own.
    mod backoff_any_settings {
        use super::*;
        use proptest::prelude::*;

        fn duration() -> impl Strategy<Value = Duration> {
            prop_oneof![
                Just(Duration::ZERO),
                Just(Duration::MAX),
                any::<Duration>(),
                (0u64..100_000).prop_map(Duration::from_millis),
            ]
        }

        proptest! {
            #[test]
            fn delay_is_within_the_cap_and_zero_for_a_zero_base(
                base in duration(),
                cap in duration(),
                factor in prop_oneof![
                    any::<f64>(),
                    1.0f64..1000.0,
                    Just(f64::MAX),
                    Just(f64::INFINITY),
                    Just(f64::NAN),
                ],
                retry in prop_oneof![0u32..100, any::<u32>()],
                jitter in any::<bool>(),
            ) {
                let backoff = Backoff::default().base(base).cap(cap).factor(factor).jitter(jitter);
                let delay = backoff.delay(retry);
                prop_assert!(delay <= cap, "{:?} > cap {:?}", delay, cap);
                if base.is_zero() {
                    prop_assert_eq!(delay, Duration::ZERO);
                }
            }
        }
    }
}
