//! Host names with several addresses: who resolves them, and the
//! background task that resolves them again.
//!
//! A Kubernetes headless Service answers one A/AAAA record per ready pod,
//! and the set changes as pods come and go, so the name is resolved again
//! every `refresh_interval`. A failed, timed out or empty answer keeps the
//! last good set (a flapping resolver must never leave a client with no
//! endpoint); changes are logged at `info` with their counts.
//!
//! The first call to the origin resolves the name before its first
//! attempt (constructors are synchronous and need no runtime; concurrent
//! first calls go to the name meanwhile), then spawns the task. The task
//! holds only a `Weak` reference (a dropped client stops it at its next
//! tick) and resolves with a timeout of one interval.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use crate::endpoint::EndpointSet;

/// The future a [`Resolve`] returns: the addresses of a host, in any order.
pub type Resolving = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// Resolves a host name to the addresses of its endpoints (see
/// [`EndpointsConfig::resolver`](crate::EndpointsConfig::resolver)).
///
/// Implemented for every `Fn(&str, u16) -> impl Future<Output =
/// io::Result<Vec<SocketAddr>>>` (the future may not borrow the host). The
/// port of the answer is ignored: the URL's port is used, as DNS A/AAAA
/// records carry none.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host` (the URL's port is `port`).
    fn resolve(&self, host: &str, port: u16) -> Resolving;
}

impl<F, Fut> Resolve for F
where
    F: Fn(&str, u16) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static,
{
    fn resolve(&self, host: &str, port: u16) -> Resolving {
        Box::pin(self(host, port))
    }
}

/// The system resolver, through tokio's `lookup_host`.
pub(crate) struct TokioResolver;

impl Resolve for TokioResolver {
    fn resolve(&self, host: &str, port: u16) -> Resolving {
        let target = format!("{host}:{port}");
        Box::pin(async move { Ok(tokio::net::lookup_host(target).await?.collect()) })
    }
}

/// Starts the re-resolution of `set`'s host name in the current runtime,
/// if there is one (first `now`, or after an interval); whether it started.
pub(crate) fn spawn_refresh(set: &Arc<EndpointSet>, now: bool) -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    let weak = Arc::downgrade(set);
    let interval = set.config.refresh_interval;
    runtime.spawn(async move {
        let mut wait = !now;
        loop {
            if wait {
                tokio::time::sleep(interval).await;
            }
            wait = true;
            let Some(set) = weak.upgrade() else { return };
            set.refresh().await;
        }
    });
    true
}
