//! The per-origin state: naming origins, and the bounded map that keeps
//! each origin's breaker and retry budget.
//!
//! Health is a property of an origin (scheme, host, port), not of the
//! client: one failing service must not open the breaker of its healthy
//! siblings, and its retries must not spend their budget. So the state is
//! kept per origin, created on the first call there.
//!
//! The map is bounded. A caller with many hosts (a webhook sender) would
//! otherwise grow it forever: idle origins are dropped after
//! `origin_idle_timeout`, and at `max_origins` the least recently used
//! ones. An origin with a call in flight (its `Arc` is shared) or whose
//! breaker was handed out by [`Client::breaker`](crate::Client::breaker) is
//! never dropped, so no call loses the breaker it records into.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use tokio::time::Instant;
use url::{Position, Url};

use crate::budget::Budget;
use crate::config::Config;
use crate::endpoint::EndpointSet;
use crate::{CircuitBreaker, CircuitBreakerConfig, State};

/// The per-origin state: its breaker and its retry budget.
pub(crate) struct Origin {
    pub(crate) key: Box<str>,
    pub(crate) breaker: Option<CircuitBreaker>,
    pub(crate) budget: Option<Budget>,
    /// The last call (ms since the map's `epoch`).
    last_used: AtomicU64,
    /// Its breaker was handed out ([`Client::breaker`](crate::Client::breaker)):
    /// never dropped.
    pinned: AtomicBool,
    /// Its endpoints, when it has several ([`Client::balance`](crate::Client::balance)).
    pub(crate) endpoints: OnceLock<Arc<EndpointSet>>,
}

impl Origin {
    /// Keeps this origin for the life of the client.
    pub(crate) fn pin(&self) {
        self.pinned.store(true, Ordering::Relaxed);
    }
}

/// The map of origins. Hashed with foldhash, seeded at random per process:
/// every call looks its origin up, and SipHash (the default) cost about 200
/// instructions of it; the map is bounded (`max_origins`), so even keys
/// chosen to collide cannot make a lookup unbounded.
type Map = HashMap<Box<str>, Arc<Origin>, foldhash::fast::RandomState>;

/// The origins a client has called, by [`origin_key`].
pub(crate) struct Origins {
    map: RwLock<Map>,
    /// The breaker settings of every new origin (its transition hooks
    /// included), validated when the client was built.
    breaker: Option<CircuitBreakerConfig>,
    /// The origin of the millisecond clock of `Origin::last_used`.
    epoch: Instant,
    /// When idle origins were last dropped (ms since `epoch`).
    last_sweep: AtomicU64,
}

// ===== impl Origins =====

impl Origins {
    pub(crate) fn new(breaker: Option<CircuitBreakerConfig>) -> Origins {
        Origins {
            map: RwLock::new(Map::default()),
            breaker,
            epoch: Instant::now(),
            last_sweep: AtomicU64::new(0),
        }
    }

    /// How many origins are kept.
    pub(crate) fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// `url`'s origin, if the map has it.
    pub(crate) fn find(&self, url: &Url) -> Option<Arc<Origin>> {
        let key = origin_key(url);
        let origins = self.map.read().unwrap_or_else(PoisonError::into_inner);
        origins.get(&*key).cloned()
    }

    /// The state of `url`'s origin breaker (`Closed` if no call went there
    /// yet); `None` when the breaker is disabled.
    pub(crate) fn state(&self, url: &Url) -> Option<State> {
        self.breaker.as_ref()?;
        let key = origin_key(url);
        let origins = self.map.read().unwrap_or_else(PoisonError::into_inner);
        match origins.get(&*key) {
            Some(origin) => origin.breaker.as_ref().map(CircuitBreaker::state),
            None => Some(State::Closed),
        }
    }

    /// `url`'s origin, created if needed, marked as used at `now`.
    pub(crate) fn get(&self, url: &Url, now: Instant, config: &Config) -> Arc<Origin> {
        let key = origin_key(url);
        let now_ms = self.millis(now);
        {
            let origins = self.map.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(origin) = origins.get(&*key) {
                origin.last_used.store(now_ms, Ordering::Relaxed);
                return Arc::clone(origin);
            }
        }
        let mut origins = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if !origins.contains_key(&*key) {
            self.sweep(&mut origins, now_ms, config);
        }
        let origin = origins.entry(key.into()).or_insert_with_key(|key| {
            Arc::new(Origin {
                key: key.clone(),
                // Validated when the client was built, so `ok()` never drops one.
                breaker: self
                    .breaker
                    .as_ref()
                    .and_then(|c| CircuitBreaker::new(c.clone()).ok()),
                budget: config.retry_budget.as_ref().map(Budget::new),
                last_used: AtomicU64::new(now_ms),
                pinned: AtomicBool::new(false),
                endpoints: OnceLock::new(),
            })
        });
        origin.last_used.store(now_ms, Ordering::Relaxed);
        Arc::clone(origin)
    }

    /// Milliseconds from the map's creation to `now`.
    fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Before a new origin is added: drops the origins idle for longer than
    /// `origin_idle_timeout` (at most once per timeout), and at the cap the
    /// least recently used ones, down to three quarters of it. Origins with
    /// a call in flight (their `Arc` is shared) or a breaker handed out are
    /// kept.
    fn sweep(&self, origins: &mut Map, now_ms: u64, config: &Config) {
        let idle_ms = u64::try_from(config.origin_idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let droppable =
            |o: &Arc<Origin>| Arc::strong_count(o) == 1 && !o.pinned.load(Ordering::Relaxed);
        let last_sweep = self.last_sweep.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last_sweep) >= idle_ms || origins.len() >= config.max_origins {
            self.last_sweep.store(now_ms, Ordering::Relaxed);
            origins.retain(|_, o| {
                !droppable(o)
                    || now_ms.saturating_sub(o.last_used.load(Ordering::Relaxed)) < idle_ms
            });
        }
        if origins.len() < config.max_origins {
            return;
        }
        let keep = config.max_origins - config.max_origins / 4 - 1;
        let mut by_age: Vec<(u64, Box<str>)> = origins
            .iter()
            .filter(|(_, o)| droppable(o))
            .map(|(k, o)| (o.last_used.load(Ordering::Relaxed), k.clone()))
            .collect();
        by_age.sort_unstable();
        let excess = origins.len().saturating_sub(keep);
        for (_, key) in by_age.into_iter().take(excess) {
            origins.remove(&key);
        }
    }
}

// ===== origin keys =====

/// The origin of `url` as `scheme://host[:port]`, the key of the per-origin
/// breaker and budget. The `url` crate drops default ports and lower-cases
/// hosts of special schemes, so equal origins give equal keys.
pub(crate) fn origin_key(url: &Url) -> Cow<'_, str> {
    if url.username().is_empty() && url.password().is_none() {
        return Cow::Borrowed(&url[Position::BeforeScheme..Position::AfterPort]);
    }
    let mut key = String::with_capacity(url.as_str().len());
    key.push_str(url.scheme());
    key.push_str("://");
    key.push_str(&url[Position::BeforeHost..Position::AfterPort]);
    Cow::Owned(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn origin_keys_never_hold_the_password(
            user in "[a-z]{1,8}",
            password in "[A-Za-z0-9]{12,20}",
            host in "[a-z]{1,10}(\\.[a-z]{2,5})?",
            port in proptest::option::of(1u16..),
            path in "(/[a-z0-9]{0,6}){0,3}",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let url = Url::parse(&format!("http://{user}:{password}@{host}{port}{path}")).unwrap();
            proptest::prop_assert!(!origin_key(&url).contains(&password));
            let clean = svc_discovery::strip_userinfo(&url).into_owned();
            proptest::prop_assert_eq!(origin_key(&url), origin_key(&clean));
        }
    }

    #[test]
    fn origin_keys_ignore_path_credentials_and_default_port() {
        let key = |s: &str| origin_key(&Url::parse(s).unwrap()).into_owned();
        assert_eq!(key("http://Host.Test:80/a/b?c"), "http://host.test");
        assert_eq!(key("http://u:p@host.test/x"), "http://host.test");
        assert_eq!(key("http://host.test:8080/"), "http://host.test:8080");
        assert_eq!(key("http://127.0.0.1:9/"), "http://127.0.0.1:9");
        assert_ne!(key("https://host.test/"), key("http://host.test/"));
    }
}
