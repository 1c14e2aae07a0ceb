//! `call`: run a future under a permit, on any executor.
//!
//! The helpers only `.await` the future; they depend on no runtime. The
//! permit lives inside the returned future, so dropping that future mid-call
//! (a timeout, a `select!` that chose another branch, a client that hung up)
//! drops the permit, which records [`Outcome::Ignored`] and frees a half-open
//! trial slot: a cancelled caller never wedges the circuit.

use std::future::Future;

use crate::breaker::CircuitBreaker;
use crate::error::Error;
use crate::transition::Outcome;

impl CircuitBreaker {
    /// Runs `fut` if the circuit allows it: `Ok` is a success, `Err` a
    /// failure. Returns [`Error::Open`] without polling `fut` when the
    /// circuit is open.
    ///
    /// # Example
    ///
    /// ```
    /// use svc_breaker::{CircuitBreaker, Error};
    ///
    /// async fn fetch() -> Result<String, std::io::Error> {
    ///     Ok("pong".to_owned())
    /// }
    ///
    /// # async fn run() {
    /// let breaker = CircuitBreaker::default();
    /// match breaker.call(fetch()).await {
    ///     Ok(body) => assert_eq!(body, "pong"),
    ///     Err(Error::Open(open)) => eprintln!("unavailable, retry in {:?}", open.retry_after()),
    ///     Err(e) => eprintln!("failed: {e}"),
    /// }
    /// # }
    /// ```
    pub async fn call<T, E, F>(&self, fut: F) -> Result<T, Error<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_with(default_classifier, fut).await
    }

    /// Like [`call`](CircuitBreaker::call), with `classify` deciding what the
    /// result means for the breaker, e.g. that a "not found" error says
    /// nothing about the dependency's health.
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use svc_breaker::{CircuitBreaker, Outcome};
    ///
    /// # async fn run() {
    /// let breaker = CircuitBreaker::default();
    /// let classify = |r: &Result<(), std::io::Error>| match r {
    ///     Ok(()) => Outcome::Success,
    ///     Err(e) if e.kind() == ErrorKind::NotFound => Outcome::Ignored,
    ///     Err(_) => Outcome::Failure,
    /// };
    /// let result = breaker
    ///     .call_with(classify, async { Err(std::io::Error::from(ErrorKind::NotFound)) })
    ///     .await;
    /// assert!(result.is_err());
    /// assert_eq!(breaker.metrics().failures(), 0);
    /// # }
    /// ```
    pub async fn call_with<T, E, F, C>(&self, classify: C, fut: F) -> Result<T, Error<E>>
    where
        F: Future<Output = Result<T, E>>,
        C: FnOnce(&Result<T, E>) -> Outcome,
    {
        let permit = self.try_acquire().map_err(Error::Open)?;
        let result = fut.await;
        permit.record(classify(&result));
        result.map_err(Error::Inner)
    }
}

fn default_classifier<T, E>(result: &Result<T, E>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}
