//! The settings of balancing, outlier ejection and re-resolution.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::endpoint::resolve::{Resolve, TokioResolver};
use crate::error::Error;

/// How a service with several endpoints (replicas) is called: balancing,
/// [outlier ejection](OutlierConfig) and DNS re-resolution. Part of
/// [`Config`](crate::Config) ([`Config::endpoints`](crate::Config::endpoints)).
///
/// It applies to the origins a client is told have several endpoints
/// ([`Client::balance`](crate::Client::balance); the svc-client facade does
/// it for `{NAME}_URL` lists and host names). Defaults:
///
/// | setting | default | |
/// |---|---|---|
/// | `outlier` | [`OutlierConfig::default`] | Envoy's outlier detection |
/// | `resolve` | on | one endpoint per address of a host name |
/// | `refresh_interval` | 10 s | how often a host name is resolved again |
/// | `default_rtt` | 10 ms | the latency assumed of an endpoint never measured |
/// | `decay` | 10 s | how fast a latency estimate forgets (peak EWMA) |
///
/// With the `serde` feature it deserializes under the setters' names
/// (`endpoints` in a [`Config`](crate::Config) file; the resolver is code
/// only), durations as strings:
///
/// ```toml
/// [endpoints]
/// refresh_interval = "5s"
/// [endpoints.outlier]
/// consecutive_failures = 3
/// base_ejection_time = "10s"
/// ```
///
/// ```
/// use std::time::Duration;
/// use svc_httpclient::{Config, EndpointsConfig, OutlierConfig};
///
/// let config = Config::default().endpoints(
///     EndpointsConfig::default()
///         .refresh_interval(Duration::from_secs(5))
///         .outlier(OutlierConfig::default().consecutive_failures(3)),
/// );
/// # let _ = config;
/// ```
#[derive(Clone)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(try_from = "file::RawEndpoints")
)]
pub struct EndpointsConfig {
    pub(crate) outlier: OutlierConfig,
    pub(crate) resolve: bool,
    pub(crate) refresh_interval: Duration,
    pub(crate) default_rtt: Duration,
    pub(crate) decay: Duration,
    pub(crate) resolver: Arc<dyn Resolve>,
    /// `resolver` is the caller's, not the system's.
    pub(crate) custom_resolver: bool,
}

impl Default for EndpointsConfig {
    fn default() -> Self {
        EndpointsConfig {
            outlier: OutlierConfig::default(),
            resolve: true,
            refresh_interval: Duration::from_secs(10),
            default_rtt: Duration::from_millis(10),
            decay: Duration::from_secs(10),
            resolver: Arc::new(TokioResolver),
            custom_resolver: false,
        }
    }
}

impl EndpointsConfig {
    /// When endpoints are ejected ([`OutlierConfig`]).
    pub fn outlier(mut self, outlier: OutlierConfig) -> Self {
        self.outlier = outlier;
        self
    }

    /// Whether a host name gives one endpoint per address it resolves to
    /// (default on): a Kubernetes headless Service has one address per
    /// ready pod. Off, a host name is one endpoint, resolved by the
    /// connection pool as for any other origin.
    pub fn resolve(mut self, on: bool) -> Self {
        self.resolve = on;
        self
    }

    /// How often a host name is resolved again (default 10 s; at least
    /// 100 ms, at most 10 minutes). Between two resolutions the last good
    /// set is used; a failed or empty answer keeps it.
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The latency assumed of an endpoint that has no measurement yet
    /// (default 10 ms).
    pub fn default_rtt(mut self, rtt: Duration) -> Self {
        self.default_rtt = rtt;
        self
    }

    /// The time constant of the latency estimate (default 10 s, as
    /// Finagle's and tower's peak EWMA): a slow response raises it at once,
    /// and it decays toward faster ones (and, without responses, toward
    /// zero, so that an idle slow endpoint is tried again) over about this
    /// long.
    pub fn decay(mut self, decay: Duration) -> Self {
        self.decay = decay;
        self
    }

    /// Who resolves host names (default: tokio's `lookup_host`, the system
    /// resolver). Tests inject one; a service may use its own DNS client.
    /// With a resolver of its own, a name that resolves to one address is
    /// called at that address too (with the system resolver, it is left to
    /// the connection pool, as without a set).
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use svc_httpclient::EndpointsConfig;
    ///
    /// let config = EndpointsConfig::default().resolver(|host: &str, port: u16| {
    ///     let known = host == "auth-svc";
    ///     async move {
    ///         if known {
    ///             Ok(vec![SocketAddr::from(([10, 0, 0, 7], port)), SocketAddr::from(([10, 0, 0, 8], port))])
    ///         } else {
    ///             Err(std::io::Error::new(std::io::ErrorKind::NotFound, "unknown host"))
    ///         }
    ///     }
    /// });
    /// # let _ = config;
    /// ```
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Arc::new(resolver);
        self.custom_resolver = true;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.outlier.validate()?;
        if self.refresh_interval < Duration::from_millis(100)
            || self.refresh_interval > Duration::from_secs(600)
        {
            return Err(Error::config(
                "endpoints.refresh_interval",
                "must be from 100ms to 10 minutes",
            ));
        }
        if self.default_rtt.is_zero() {
            return Err(Error::config(
                "endpoints.default_rtt",
                "must be greater than zero",
            ));
        }
        if self.decay.is_zero() {
            return Err(Error::config(
                "endpoints.decay",
                "must be greater than zero",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for EndpointsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointsConfig")
            .field("outlier", &self.outlier)
            .field("resolve", &self.resolve)
            .field("refresh_interval", &self.refresh_interval)
            .field("default_rtt", &self.default_rtt)
            .field("decay", &self.decay)
            .finish_non_exhaustive()
    }
}

/// When an endpoint that keeps failing is ejected, and for how long
/// (Envoy's outlier detection; part of [`EndpointsConfig`]).
///
/// After `consecutive_failures` failures in a row (the breaker's
/// classification: 5xx, 429, connect errors, timeouts), the endpoint gets
/// no traffic for `base_ejection_time` × the number of times it was
/// ejected, at most `max_ejection_time`. At most `max_ejection_percent` of
/// the endpoints are ejected at once, but **at least one** when there are
/// two or more (Envoy's 10% of three endpoints rounds down to none, which
/// would make ejection useless for the small sets most services have), and
/// never the last one that is not ejected. The multiplier starts again
/// from one when an endpoint stayed in for `max_ejection_time` since it
/// came back.
///
/// Defaults: 5 failures, 30 s, at most 300 s, 10% (Envoy's, with its cap
/// of 300 s).
///
/// ```
/// use std::time::Duration;
/// use svc_httpclient::OutlierConfig;
///
/// let outlier = OutlierConfig::default()
///     .consecutive_failures(3)
///     .base_ejection_time(Duration::from_secs(10))
///     .max_ejection_percent(50);
/// # let _ = outlier;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(try_from = "file::RawOutlier")
)]
pub struct OutlierConfig {
    pub(crate) consecutive_failures: u32,
    pub(crate) base_ejection_time: Duration,
    pub(crate) max_ejection_time: Duration,
    pub(crate) max_ejection_percent: u32,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            consecutive_failures: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
        }
    }
}

impl OutlierConfig {
    /// Failures in a row that eject an endpoint (default 5; 0 turns
    /// ejection off).
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = n;
        self
    }

    /// How long the first ejection lasts (default 30 s); the n-th lasts n
    /// times as long, up to `max_ejection_time`.
    pub fn base_ejection_time(mut self, time: Duration) -> Self {
        self.base_ejection_time = time;
        self
    }

    /// The longest ejection (default 300 s).
    pub fn max_ejection_time(mut self, time: Duration) -> Self {
        self.max_ejection_time = time;
        self
    }

    /// The most endpoints ejected at once, in percent of the set (default
    /// 10), rounded down but at least one of two or more.
    pub fn max_ejection_percent(mut self, percent: u32) -> Self {
        self.max_ejection_percent = percent;
        self
    }

    /// How many of `n` endpoints may be ejected at once.
    pub(crate) fn max_ejected(&self, n: usize) -> usize {
        if n < 2 {
            return 0;
        }
        let percent = usize::try_from(self.max_ejection_percent.min(100)).unwrap_or(100);
        (n * percent / 100).clamp(1, n - 1)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.base_ejection_time.is_zero() {
            return Err(Error::config(
                "endpoints.outlier.base_ejection_time",
                "must be greater than zero",
            ));
        }
        if self.max_ejection_time < self.base_ejection_time {
            return Err(Error::config(
                "endpoints.outlier.max_ejection_time",
                "must be at least base_ejection_time",
            ));
        }
        if self.max_ejection_percent > 100 {
            return Err(Error::config(
                "endpoints.outlier.max_ejection_percent",
                "must be at most 100",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_least_one_and_never_the_last_is_ejected() {
        let outlier = OutlierConfig::default();
        assert_eq!(outlier.max_ejected(0), 0);
        assert_eq!(outlier.max_ejected(1), 0);
        assert_eq!(outlier.max_ejected(2), 1);
        assert_eq!(outlier.max_ejected(3), 1);
        assert_eq!(outlier.max_ejected(25), 2);
        let all = outlier.max_ejection_percent(100);
        assert_eq!(all.max_ejected(3), 2);
        assert_eq!(all.max_ejected(2), 1);
    }

    #[test]
    fn invalid_settings_are_named() {
        let bad = [
            EndpointsConfig::default().refresh_interval(Duration::from_millis(1)),
            EndpointsConfig::default().default_rtt(Duration::ZERO),
            EndpointsConfig::default().decay(Duration::ZERO),
            EndpointsConfig::default()
                .outlier(OutlierConfig::default().base_ejection_time(Duration::ZERO)),
            EndpointsConfig::default()
                .outlier(OutlierConfig::default().max_ejection_time(Duration::from_secs(1))),
            EndpointsConfig::default().outlier(OutlierConfig::default().max_ejection_percent(101)),
        ];
        for config in bad {
            let err = config.validate().unwrap_err();
            assert!(err.to_string().contains("endpoints."), "{err}");
        }
        assert!(EndpointsConfig::default().validate().is_ok());
    }
}

// ===== serde =====

#[cfg(feature = "serde")]
mod file {
    use std::time::Duration;

    use serde::Deserialize;

    use super::{EndpointsConfig, OutlierConfig};
    use crate::error::Error;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct RawEndpoints {
        outlier: Option<OutlierConfig>,
        resolve: Option<bool>,
        #[serde(default, with = "svc_breaker::serde_duration::option")]
        refresh_interval: Option<Duration>,
        #[serde(default, with = "svc_breaker::serde_duration::option")]
        default_rtt: Option<Duration>,
        #[serde(default, with = "svc_breaker::serde_duration::option")]
        decay: Option<Duration>,
    }

    impl TryFrom<RawEndpoints> for EndpointsConfig {
        type Error = Error;

        fn try_from(raw: RawEndpoints) -> Result<EndpointsConfig, Error> {
            let mut c = EndpointsConfig::default();
            if let Some(o) = raw.outlier {
                c = c.outlier(o);
            }
            if let Some(on) = raw.resolve {
                c = c.resolve(on);
            }
            if let Some(d) = raw.refresh_interval {
                c = c.refresh_interval(d);
            }
            if let Some(d) = raw.default_rtt {
                c = c.default_rtt(d);
            }
            if let Some(d) = raw.decay {
                c = c.decay(d);
            }
            c.validate()?;
            Ok(c)
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct RawOutlier {
        consecutive_failures: Option<u32>,
        #[serde(default, with = "svc_breaker::serde_duration::option")]
        base_ejection_time: Option<Duration>,
        #[serde(default, with = "svc_breaker::serde_duration::option")]
        max_ejection_time: Option<Duration>,
        max_ejection_percent: Option<u32>,
    }

    impl TryFrom<RawOutlier> for OutlierConfig {
        type Error = Error;

        fn try_from(raw: RawOutlier) -> Result<OutlierConfig, Error> {
            let mut c = OutlierConfig::default();
            if let Some(n) = raw.consecutive_failures {
                c = c.consecutive_failures(n);
            }
            if let Some(d) = raw.base_ejection_time {
                c = c.base_ejection_time(d);
            }
            if let Some(d) = raw.max_ejection_time {
                c = c.max_ejection_time(d);
            }
            if let Some(p) = raw.max_ejection_percent {
                c = c.max_ejection_percent(p);
            }
            c.validate()?;
            Ok(c)
        }
    }
}
