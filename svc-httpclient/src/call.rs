//! One call, from its first attempt to its result: the loop that carries
//! out the pipeline's decisions, and the one place that builds its errors.
//!
//! ```text
//! call ─ deadline (timeout) ─┬─ retry loop: budget, classify, backoff / Retry-After
//!                            └─ breaker of the origin ─ one attempt (min(attempt_timeout, remaining))
//! ```
//!
//! Each step has its module: [`crate::attempt`] sends one attempt and
//! classifies it, [`crate::retry`] decides whether and when to try again,
//! [`crate::span`] and the [observers](crate::AttemptObserver) report it.
//! This module only sequences them, as tower's `retry::future` sequences
//! its `Policy`.
//!
//! The breaker sees every attempt, not every call: three failed attempts are
//! three failures, because each one reached (or failed to reach) the
//! server. A call the caller drops mid-attempt drops the breaker permit,
//! which counts as no effect and frees a half-open trial slot, so
//! cancellation can never wedge the breaker.
//!
//! Every error of a call says what the caller needs to act on it: the
//! method, the URL (credentials stripped), how many attempts were sent and
//! the last status received. [`Call`] carries those as the call goes and
//! builds each error from them ([`Call::error`]), so no exit of the loop
//! can forget one.

use std::borrow::Borrow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, Response, StatusCode};
use tokio::time::Instant;
use tracing::Span;
use url::Url;

use crate::attempt::{Attempt, Sending};
use crate::client::{Client, RootsMissing};
use crate::endpoint::{Endpoint, Verdict};
use crate::error::{Error, Kind};
use crate::observe::{AttemptEnd, AttemptStart};
use crate::origin::Origin;
use crate::request::CallOptions;
use crate::retry::{Next, Policy};
use crate::span::{Scope, attempt_span, record_end};
use crate::{CircuitOpen, Outcome};

/// What the errors and log events of one call need to know about it.
pub(crate) struct Call<'a> {
    method: Method,
    /// The request's URL without credentials.
    url: Url,
    /// Attempts sent so far.
    sent: u32,
    /// The status of the last response head received, if any.
    last_status: Option<StatusCode>,
    scope: Scope<'a>,
    log_failures: bool,
}

/// A deadline too far away to compute (`Instant` overflow) is a year away.
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(60 * 60 * 24 * 365);

// ===== impl Call =====

impl Call<'_> {
    /// An error of this call: `kind`, with the call's method, URL,
    /// attempts and last status.
    pub(crate) fn error(&self, kind: Kind) -> Error {
        Error::new(kind)
            .with_method(self.method.clone())
            .with_clean_url(self.url.clone())
            .with_attempts(self.sent)
            .with_status(self.last_status)
    }

    /// Logs the failed call once (unless `log_failures` is off), and hands
    /// its error back. `origin` is `None` when the call failed before it
    /// got to its origin's state.
    fn failed(&self, err: Error, origin: Option<&Origin>) -> Error {
        if self.log_failures {
            self.scope.call_failed(&err, origin.map(|o| &*o.key));
        }
        err
    }

    /// Logs a call that returns a failed response (5xx, 429) because of
    /// `why`.
    fn response_failed(&self, status: StatusCode, why: &str) {
        if self.log_failures {
            self.scope
                .response_failed(&self.method, &self.url, self.sent, status, why);
        }
    }
}

/// The whole call: deadline, retry loop, breaker, attempts. `request` is
/// the builder's result (an invalid one fails here, without I/O). The
/// attempt spans and the call's events are children of `parent` when given
/// (it need not be entered), else of the current span.
///
/// One `async fn` for the whole call, with the attempt a hand-written
/// future ([`Sending`]): callers move and box this future, so its size is
/// copied on every call, and each nested `async fn` would add its own
/// copy of its callee's state.
pub(crate) fn run<P: Borrow<Span> + Send>(
    client: Client,
    request: Result<reqwest::Request, reqwest::Error>,
    opts: CallOptions,
    parent: Option<P>,
) -> impl Future<Output = Result<(Response, Option<Bytes>), Error>> + Send {
    // The request and the builder's error apart: the block below keeps the
    // request in its captured `template`, its one copy for the whole call
    // (an `async fn` would keep its arguments twice, and each binding of
    // them again). Boxed, which keeps the call's future (which `IntoFuture`
    // boxes) within the allocator's per-thread cache of small blocks
    // (1 KiB with glibc): one small allocation instead of a slow large one.
    let (template, invalid) = match request {
        Ok(request) => (Some(Box::new(request)), None),
        Err(e) => (None, Some(e)),
    };
    calls(client, template, invalid, opts, parent)
}

/// [`run`]'s future.
// Not an `async fn`: that would keep every argument twice in the future
// (as captured, and as moved into its locals).
#[allow(clippy::manual_async_fn)]
fn calls<P: Borrow<Span> + Send>(
    client: Client,
    mut template: Option<Box<reqwest::Request>>,
    invalid: Option<reqwest::Error>,
    opts: CallOptions,
    parent: Option<P>,
) -> impl Future<Output = Result<(Response, Option<Bytes>), Error>> + Send {
    async move {
        let parent = parent.as_ref().map(Borrow::borrow);
        let result = if let Some(e) = invalid {
            let err = invalid_request(e);
            if client.config().log_failures {
                Scope(parent).call_failed(&err, None);
            }
            Err(err)
        } else {
            'call: {
                let Some(request) = template.as_mut() else {
                    unreachable!("a call has a request or the builder's error")
                };
                let start = Instant::now();
                let config = client.config();
                let timeout = opts.timeout.unwrap_or(config.timeout);
                // `outer`: the deadline given from outside binds (crate::deadline).
                let (deadline, outer) = crate::deadline::of_call(start, timeout, opts.deadline);
                let clean = client.prepare(request);
                let mut call = Call {
                    method: request.method().clone(),
                    url: if clean {
                        request.url().clone()
                    } else {
                        svc_discovery::strip_userinfo(request.url()).into_owned()
                    },
                    sent: 0,
                    last_status: None,
                    scope: Scope(parent),
                    log_failures: config.log_failures,
                };
                if let Some(missing) = client.roots_missing()
                    && call.url.scheme() == "https"
                {
                    let err = call
                        .error(Kind::TlsRoots)
                        .with_source(RootsMissing::clone(missing));
                    break 'call Err(call.failed(err, None));
                }
                if outer && deadline <= start {
                    // No time left: no I/O, no permit, no budget deposit.
                    break 'call Err(call.failed(call.error(Kind::DeadlineExceeded), None));
                }
                let origin = client.origin(request.url(), start);
                let policy = Policy::new(config, request, &opts, deadline);
                if let Some(budget) = &origin.budget {
                    budget.deposit(start);
                }
                // The endpoint whose failure the next attempt retries, when
                // the origin has several: the retry prefers another one.
                let mut avoid: Option<Arc<Endpoint>> = None;
                if let Some(set) = origin.endpoints.get()
                    && set.resolves_first()
                {
                    // Once per client and host name: boxed, so the call's
                    // future does not carry the resolution's state.
                    // At most half the call's time: a resolver that hangs
                    // leaves the call the other half, at the name.
                    let within = deadline.saturating_duration_since(Instant::now()) / 2;
                    Box::pin(Arc::clone(set).first_refresh(within)).await;
                }

                loop {
                    let permit = match &origin.breaker {
                        Some(breaker) => match breaker.try_acquire() {
                            Ok(permit) => Some(permit),
                            Err(open) => {
                                let err = call.error(Kind::CircuitOpen(open));
                                break 'call Err(call.failed(err, Some(&origin)));
                            }
                        },
                        None => None,
                    };
                    // The first attempt starts when the call does: one clock read less.
                    let attempt_start = if call.sent == 0 {
                        start
                    } else {
                        Instant::now()
                    };
                    let remaining = deadline.saturating_duration_since(attempt_start);
                    if remaining.is_zero() {
                        let kind = if outer {
                            Kind::DeadlineExceeded
                        } else {
                            Kind::Timeout
                        };
                        break 'call Err(call.failed(call.error(kind), Some(&origin)));
                    }
                    let limit = config.attempt_timeout.min(remaining);
                    // The attempt's endpoint, when the origin has several
                    // (`None`: the URL as it is).
                    let picked = match origin.endpoints.get() {
                        Some(set) => set.pick(avoid.as_deref(), attempt_start),
                        None => None,
                    };
                    let span = &attempt_span(
                        parent,
                        &call.method,
                        &call.url,
                        picked.as_ref().map(|p| &*p.endpoint),
                        call.sent,
                        config.peer_service.as_deref(),
                    );
                    // The attempt's request is moved into its future in this
                    // block, so that no binding of it outlives the block (each
                    // would take the request's size in the call's state).
                    let (attempt, outcome, next, failed_at) = {
                        let next_request = if call.sent + 1 < policy.max_attempts {
                            template.as_deref().and_then(clone_request)
                        } else {
                            template.take().map(|request| *request)
                        };
                        let Some(mut req) = next_request else {
                            // Unreachable: a body that cannot be cloned gets one attempt.
                            break 'call Err(call.failed(call.error(Kind::Request), Some(&origin)));
                        };
                        let endpoint_http = match &picked {
                            Some(picked) => {
                                picked.endpoint.apply(&mut req);
                                picked.endpoint.http().cloned()
                            }
                            None => None,
                        };
                        // One timer per attempt, reqwest's own: it bounds the
                        // attempt from connecting to the end of the response
                        // body, so reading the body of the returned response
                        // stays within the attempt's limit too. (A second, tokio,
                        // timer would double the cost of the pipeline on a
                        // healthy call.)
                        *req.timeout_mut() = Some(limit);
                        if let (Some(_), Some(header)) = (opts.deadline, opts.deadline_header) {
                            crate::deadline::stamp(&mut req, header, limit);
                        }
                        let resend_count = call.sent;
                        call.sent += 1;
                        let started = AttemptStart {
                            resend_count,
                            span,
                            parent,
                        };
                        let http = client.http();
                        let call = &mut call;
                        let (policy, origin) = (&policy, &*origin);
                        // The outer deadline ends this attempt (crate::deadline).
                        let bound = outer && limit >= remaining;
                        // Everything about the attempt, the observers' hooks
                        // included, runs inside its span, entered once per poll
                        // (see `Sending`).
                        Sending::new(
                            span,
                            move || {
                                if let Some(observer) = &config.observer {
                                    observer.on_attempt_start(&mut req, &started);
                                }
                                match endpoint_http {
                                    Some(endpoint_http) => endpoint_http.execute(req),
                                    None => http.execute(req),
                                }
                            },
                            opts.read_body,
                            limit,
                            remaining,
                            move |attempt: Attempt| {
                                let status = attempt.status();
                                let outcome = crate::deadline::outcome(
                                    &attempt,
                                    outer,
                                    bound,
                                    attempt_start.elapsed(),
                                    policy.deadline,
                                );
                                let (verdict, endpoint) = match picked {
                                    // A pick comes from the origin's set.
                                    Some(picked) => match origin.endpoints.get() {
                                        Some(set) => {
                                            let (verdict, endpoint) =
                                                picked.end(set, outcome, attempt_start.elapsed());
                                            (verdict, Some(endpoint))
                                        }
                                        None => (Verdict::default(), None),
                                    },
                                    None => (Verdict::default(), None),
                                };
                                if let Some(permit) = permit {
                                    // A failure another endpoint absorbs is not
                                    // the service's (see `endpoint::eject`).
                                    if !verdict.absorbed {
                                        permit.record(outcome);
                                    }
                                }
                                if status.is_some() {
                                    call.last_status = status;
                                }
                                let next = policy.next(&attempt, origin, call.sent);
                                let error_type = attempt.error_type(&status);
                                record_end(span, status, error_type);
                                if let Some(observer) = &config.observer {
                                    observer.on_attempt_end(&AttemptEnd {
                                        method: &call.method,
                                        url: &call.url,
                                        resend_count,
                                        status,
                                        error_type,
                                        duration: attempt_start.elapsed(),
                                        outcome,
                                        will_retry: matches!(next, Next::Retry(_)),
                                        endpoint: endpoint.as_deref().map(|e| &*e.label),
                                        ejected: verdict.ejected,
                                    });
                                }
                                let failed_at = endpoint.filter(|_| outcome == Outcome::Failure);
                                (attempt, outcome, next, failed_at)
                            },
                        )
                    }
                    .await;
                    avoid = failed_at;

                    // The attempt is dropped (its connection released) before
                    // the backoff: nothing of it is kept across the sleep.
                    let wait = match (next, attempt) {
                        (Next::Retry(wait), attempt) => {
                            let status = attempt.status();
                            let reason = attempt.error_type(&status);
                            call.scope
                                .retrying(&call.method, &call.url, call.sent, reason, wait);
                            wait
                        }
                        (Next::Return(why), Attempt::Response(resp, body)) => {
                            if outcome == Outcome::Failure {
                                call.response_failed(resp.status(), why);
                            }
                            break 'call Ok((resp, body));
                        }
                        (Next::Return(_), Attempt::Failed(failure)) => {
                            let cut = outer && failure.deadline;
                            let mut err = failure.into_error(&call);
                            if cut {
                                err = call.error(Kind::DeadlineExceeded).with_source(err);
                            }
                            break 'call Err(call.failed(err, Some(&origin)));
                        }
                        (Next::CircuitOpen(open), attempt) => {
                            let err = circuit_opened(&call, open, attempt);
                            break 'call Err(call.failed(err, Some(&origin)));
                        }
                        (Next::BudgetExhausted, Attempt::Response(resp, body)) => {
                            call.response_failed(resp.status(), "retry budget exhausted");
                            break 'call Ok((resp, body));
                        }
                        (Next::BudgetExhausted, Attempt::Failed(failure)) => {
                            let source = failure.into_error(&call);
                            let err = call.error(Kind::BudgetExhausted).with_source(source);
                            break 'call Err(call.failed(err, Some(&origin)));
                        }
                    };
                    // Boxed: only a retry has a timer of its own, and inline
                    // it would grow every call's future.
                    Box::pin(tokio::time::sleep(wait)).await;
                }
            }
        };
        if let Err(err) = &result
            && err.attempts() == 0
        {
            // Nothing was sent (invalid request, open circuit, deadline
            // already passed): the call completed without I/O, so without ever
            // returning `Pending`. Charge tokio's cooperative budget as tokio's
            // own primitives do, so a caller looping on the rejection yields to
            // the other tasks of its worker (timers included).
            tokio::task::coop::consume_budget().await;
        }
        result
    }
}

/// A deferred builder error (bad URL, header, body encoding), without the
/// URL's credentials.
fn invalid_request(err: reqwest::Error) -> Error {
    let mut out = Error::new(Kind::Request);
    if let Some(url) = err.url() {
        out = out.with_url(url);
    }
    out.with_source(err.without_url())
}

/// A copy of `template` for one attempt. A request without a body is
/// copied by hand: reqwest's `try_clone` allocates a map for the
/// request's timeout, drops it for a copy of the template's, and each
/// attempt then sets its own timer. A request's extensions are reqwest's
/// own (private) and hold only that timeout in reqwest 0.13, which the
/// attempt sets anyway.
fn clone_request(template: &reqwest::Request) -> Option<reqwest::Request> {
    if template.body().is_some() {
        return template.try_clone();
    }
    let mut req = reqwest::Request::new(template.method().clone(), template.url().clone());
    *req.headers_mut() = template.headers().clone();
    *req.version_mut() = template.version();
    Some(req)
}

/// The error of a call whose breaker opened after `attempt`. The last
/// failure is the cause, so `is_timeout()` or `is_connect()` answer for it
/// too.
fn circuit_opened(call: &Call<'_>, open: CircuitOpen, attempt: Attempt) -> Error {
    let err = call.error(Kind::CircuitOpen(open));
    match attempt {
        Attempt::Failed(failure) => err.with_source(failure.into_error(call)),
        Attempt::Response(..) => err,
    }
}
