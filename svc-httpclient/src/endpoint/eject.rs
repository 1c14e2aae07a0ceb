//! Outlier ejection: an endpoint that keeps failing gets no traffic for a
//! while, and the service breaker hears only of failures of the service as
//! a whole.
//!
//! After `consecutive_failures` failures in a row (the breaker's
//! classification), an endpoint is ejected for `base_ejection_time` × the
//! number of its ejections, at most `max_ejection_time`, unless that would
//! pass the cap on ejected endpoints ([`OutlierConfig::max_ejected`]: a
//! fraction of the set, at least one of two or more, never the last
//! serving one). When its time is up it comes back with the lowest latency
//! estimate of the set, so that it gets traffic again and shows whether it
//! healed; still failing, it is ejected for longer.
//!
//! The service breaker is per origin, above the endpoints. A failure is
//! **absorbed** (not recorded to it) when another endpoint of the set
//! serves and its last attempt succeeded: the retry goes there, and the
//! service is not failing as a whole. When every endpoint fails, no
//! failure is absorbed and the breaker opens as it would for one endpoint.
//!
//! [`OutlierConfig::max_ejected`]: crate::OutlierConfig

use std::sync::Arc;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use crate::Outcome;
use crate::endpoint::{Endpoint, EndpointSet, Verdict};

impl EndpointSet {
    /// Records an attempt's end at `endpoint`.
    pub(super) fn record(
        &self,
        endpoint: &Endpoint,
        outcome: Outcome,
        rtt: Duration,
        now: Instant,
    ) -> Verdict {
        {
            let mut stats = endpoint.lock();
            stats.requests += 1;
            let failure = outcome == Outcome::Failure;
            if failure {
                stats.failures += 1;
            }
            stats.rtt.observe(rtt, now, self.config.decay);
        }
        let mut verdict = Verdict::default();
        match outcome {
            Outcome::Success => endpoint.failures_in_row.store(0, Ordering::Relaxed),
            Outcome::Ignored => {}
            Outcome::Failure => {
                let in_row = endpoint.failures_in_row.fetch_add(1, Ordering::Relaxed) + 1;
                let threshold = self.config.outlier.consecutive_failures;
                if threshold > 0 && in_row >= threshold {
                    verdict.ejected = self.eject(endpoint, in_row, now);
                }
                verdict.absorbed = self.another_is_healthy(endpoint, now);
            }
        }
        verdict
    }

    /// Another endpoint serves and its last attempt did not fail.
    fn another_is_healthy(&self, endpoint: &Endpoint, now: Instant) -> bool {
        let now_ns = self.nanos(now);
        self.snapshot().iter().any(|e| {
            !std::ptr::eq(&**e, endpoint)
                && !e.is_ejected(now_ns)
                && e.failures_in_row.load(Ordering::Relaxed) == 0
        })
    }

    /// Ejects `endpoint` if the cap allows; whether it did.
    fn eject(&self, endpoint: &Endpoint, in_row: u32, now: Instant) -> bool {
        let _decide = self
            .eject_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now_ns = self.nanos(now);
        let endpoints = self.snapshot();
        if endpoint.is_ejected(now_ns) || !endpoints.iter().any(|e| std::ptr::eq(&**e, endpoint)) {
            return false;
        }
        let ejected = endpoints.iter().filter(|e| e.is_ejected(now_ns)).count();
        if ejected >= self.config.outlier.max_ejected(endpoints.len()) {
            return false;
        }
        let outlier = &self.config.outlier;
        let (period, times) = {
            let mut stats = endpoint.lock();
            // In for a whole `max_ejection_time` since it came back: a
            // fresh start.
            if stats
                .returned_at
                .is_some_and(|at| now.saturating_duration_since(at) >= outlier.max_ejection_time)
            {
                stats.multiplier = 0;
            }
            stats.multiplier = stats.multiplier.saturating_add(1);
            stats.times_ejected = stats.times_ejected.saturating_add(1);
            let period = outlier
                .base_ejection_time
                .saturating_mul(stats.multiplier)
                .min(outlier.max_ejection_time);
            (period, stats.times_ejected)
        };
        let until = self.nanos(now + period).max(1);
        endpoint.ejected_until.store(until, Ordering::Relaxed);
        endpoint.failures_in_row.store(0, Ordering::Relaxed);
        tracing::info!(
            target: "svc_httpclient",
            origin = &*self.origin,
            endpoint = &*endpoint.label,
            failures = in_row,
            ejected_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            times_ejected = times,
            ejected_now = ejected + 1,
            endpoints = endpoints.len(),
            "endpoint ejected",
        );
        true
    }

    /// Brings back the endpoints whose ejection is over.
    pub(super) fn return_expired(&self, endpoints: &[Arc<Endpoint>], now: Instant, now_ns: u64) {
        for endpoint in endpoints {
            let until = endpoint.ejected_until.load(Ordering::Relaxed);
            if until == 0 || until > now_ns {
                continue;
            }
            if endpoint
                .ejected_until
                .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            let start = self.lowest_estimate(endpoints, now);
            {
                let mut stats = endpoint.lock();
                stats.rtt.reset(start, now);
                stats.returned_at = Some(now);
            }
            tracing::info!(
                target: "svc_httpclient",
                origin = &*self.origin,
                endpoint = &*endpoint.label,
                "endpoint returned from ejection",
            );
        }
    }
}
