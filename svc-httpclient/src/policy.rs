//! [`RetryPolicy`]: a client's retry settings and one origin's retry
//! budget, for calls that another transport sends.
//!
//! A service is often reached over HTTP and over gRPC with one
//! configuration. Its gRPC calls (svc-client's `grpc::Channel`) are not sent
//! by this crate, but must follow the same rules: the same deadline, the
//! same number of retries and backoff, and the same per-origin budget, so
//! an outage cannot multiply the load through the other transport. This
//! type hands those rules out without exposing the client's configuration
//! field by field.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use crate::backoff::Backoff;
use crate::client::Client;
use crate::origin::Origin;

/// The retry rules of a [`Client`] for one origin: the timeouts, the number
/// of retries, the backoff and the origin's retry budget (shared with the
/// client's own calls there). Cheap to clone.
///
/// For transports that send their own requests (svc-client's gRPC channel):
/// make one call [`deposit`](RetryPolicy::deposit), and every retry
/// [`withdraw`](RetryPolicy::withdraw) first.
///
/// ```
/// use svc_httpclient::{Client, Config};
///
/// let client = Client::new(Config::default().max_retries(2))?;
/// let url = url::Url::parse("http://auth-svc:50051").unwrap();
/// let policy = client.retry_policy(&url);
/// assert_eq!(policy.max_retries(), 2);
/// policy.deposit();
/// assert!(policy.withdraw(), "the budget's floor allows a retry");
/// # Ok::<(), svc_httpclient::Error>(())
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    timeout: Duration,
    attempt_timeout: Duration,
    max_retries: u32,
    backoff: Backoff,
    origin: Arc<Origin>,
}

impl Client {
    /// The retry rules of calls to `url`'s origin: this client's settings
    /// and the origin's retry budget. The origin's state (its budget and
    /// breaker) is kept as long as the client lives.
    pub fn retry_policy(&self, url: &Url) -> RetryPolicy {
        let origin = self.origin(url, Instant::now());
        origin.pin();
        let config = self.config();
        RetryPolicy {
            timeout: config.timeout,
            attempt_timeout: config.attempt_timeout,
            max_retries: config.max_retries,
            backoff: config.backoff,
            origin,
        }
    }
}

impl RetryPolicy {
    /// The deadline of a whole call, retries and backoff included.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The limit of one attempt, never past the call's remaining time.
    pub fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// Retries after the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The wait before each retry.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// Counts a call in the origin's retry budget (each call earns a
    /// fraction of a retry). Does nothing without a budget.
    pub fn deposit(&self) {
        if let Some(budget) = &self.origin.budget {
            budget.deposit(Instant::now());
        }
    }

    /// Takes one retry from the origin's budget; `false` when the budget is
    /// spent and the retry must not be made. Always `true` without a budget.
    pub fn withdraw(&self) -> bool {
        self.origin.budget.as_ref().is_none_or(|b| b.withdraw())
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("origin", &self.origin.key)
            .field("timeout", &self.timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("retry_budget", &self.origin.budget.is_some())
            .finish()
    }
}
