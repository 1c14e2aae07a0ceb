//! The fault-injecting server of the soak.
//!
//! In [`Mode::Mixed`] each request draws one [`Fault`] at random (healthy
//! answers, 5xx, 429 with `Retry-After`, answers slower than the client's
//! attempt timeout, hangs past its whole-call timeout, connection resets,
//! bodies that fail after a `200` head (truncated, stalled, reset
//! mid-body), invalid JSON, 404); in [`Mode::Outage`] every request gets a
//! 503; in [`Mode::BadBodies`] every request gets a `200` head and then a
//! body that fails (one of [`Fault::BAD_BODIES`]). [`FaultState`] records
//! what the server saw: requests by kind, how often each non-idempotent POST
//! arrived, and arrival times (to find the longest silence, i.e. a breaker
//! that stopped letting trials through).
//!
//! What a fault is (this module), what the server counted (`state`) and how
//! it answers (`handler`) live apart: the soak and the tests read the
//! counts without caring how an answer is made, and a new fault touches the
//! vocabulary here and one arm of the handler.

mod handler;
mod state;

pub use crate::date::format_http_date;
pub use handler::router;
pub use state::FaultState;

use std::time::Duration;

/// The header carrying a call's unique id (set by the soak's callers).
pub const CALL_ID: &str = "x-soak-call";

/// Requests whose path starts with this come from the soak's second client
/// (retry budget only, no breaker) and are counted apart.
pub const BUDGET_PREFIX: &str = "/budget/";

/// Requests whose path starts with this come from the soak's loopers (a
/// third client, calling again at once whenever its circuit is open) and are
/// counted only in [`FaultState::loop_requests`].
pub const LOOP_PREFIX: &str = "/loop/";

/// A request header naming a [`Fault`] (see [`Fault::name`]) to get that
/// answer instead of a random one in [`Mode::Mixed`] (for tests).
pub const FORCE_FAULT: &str = "x-soak-fault";

/// What the server does with the next requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A random [`Fault`] per request.
    Mixed,
    /// `503 Service Unavailable` for everything.
    Outage,
    /// A `200` head for everything, then a body that fails: one of
    /// [`Fault::BAD_BODIES`] at random. A dependency whose bodies keep
    /// failing: a client that reads the body as part of the attempt sees
    /// every attempt fail.
    BadBodies,
}

/// One way of answering a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `200` with a small JSON body.
    Healthy,
    /// `500`, `502`, `503` or `504`.
    ServerError,
    /// `429` with a `Retry-After` in seconds, as an HTTP date, or absurdly
    /// large (the client must cap it).
    TooManyRequests,
    /// A `200` sent after the client's attempt timeout.
    Slow,
    /// A `200` sent after the client's whole-call timeout.
    Hang,
    /// The connection is reset instead of answered.
    Reset,
    /// `200` with `Content-Length` larger than the bytes sent, then the
    /// connection is closed.
    Truncated,
    /// `200` and the first bytes of the body, then nothing: the body stalls
    /// for [`Delays::hang`] (past the client's whole-call timeout) before
    /// the connection is closed.
    StalledBody,
    /// `200` and the first bytes of a chunked body, then the connection is
    /// reset (TCP RST) mid-body.
    BodyReset,
    /// `200` with `Content-Type: application/json` and a body that is not JSON.
    InvalidJson,
    /// `404`: a client error, no effect on the breaker.
    NotFound,
}

impl Fault {
    /// Every fault, in report order.
    pub const ALL: [Fault; 11] = [
        Fault::Healthy,
        Fault::ServerError,
        Fault::TooManyRequests,
        Fault::Slow,
        Fault::Hang,
        Fault::Reset,
        Fault::Truncated,
        Fault::StalledBody,
        Fault::BodyReset,
        Fault::InvalidJson,
        Fault::NotFound,
    ];

    /// The faults whose `200` head is followed by a body that fails: the
    /// answers of [`Mode::BadBodies`].
    pub const BAD_BODIES: [Fault; 3] = [Fault::Truncated, Fault::StalledBody, Fault::BodyReset];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Healthy => "healthy",
            Fault::ServerError => "5xx",
            Fault::TooManyRequests => "429",
            Fault::Slow => "slow",
            Fault::Hang => "hang",
            Fault::Reset => "reset",
            Fault::Truncated => "truncated",
            Fault::StalledBody => "stalled-body",
            Fault::BodyReset => "body-reset",
            Fault::InvalidJson => "invalid-json",
            Fault::NotFound => "404",
        }
    }

    /// The fault called `name` (see [`Fault::name`]).
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Draws a fault with the soak's weights (percent): healthy 70, 5xx 4,
    /// 429 3, slow 3, hang 1, reset 3, truncated 3, stalled body 1, body
    /// reset 1, invalid JSON 6, 404 5.
    ///
    /// 14% of the answers count as breaker failures (5xx, 429, slow, hang,
    /// reset), and 5% more (the failing bodies) where the client reads the
    /// body within the attempt: enough for five in a row now and then at a
    /// few thousand attempts a second, so the circuit opens in mixed phases
    /// too, while most traffic still goes through a closed circuit.
    pub fn draw(rng: &mut fastrand::Rng) -> Fault {
        Fault::from_percentile(rng.u8(0..100))
    }

    /// The fault for a percentile draw in `0..100` (see [`Fault::draw`]).
    pub fn from_percentile(p: u8) -> Fault {
        match p {
            0..70 => Fault::Healthy,
            70..74 => Fault::ServerError,
            74..77 => Fault::TooManyRequests,
            77..80 => Fault::Slow,
            80..81 => Fault::Hang,
            81..84 => Fault::Reset,
            84..87 => Fault::Truncated,
            87..88 => Fault::StalledBody,
            88..89 => Fault::BodyReset,
            89..95 => Fault::InvalidJson,
            _ => Fault::NotFound,
        }
    }
}

/// How long the slow and hanging answers take.
#[derive(Clone, Copy, Debug)]
pub struct Delays {
    /// Delay of [`Fault::Slow`] (longer than the attempt timeout).
    pub slow: Duration,
    /// Delay of [`Fault::Hang`], and how long a [`Fault::StalledBody`]
    /// stalls (longer than the whole-call timeout, but bounded so the soak
    /// ends).
    pub hang: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn weights_cover_every_fault() {
        let mut seen = HashMap::new();
        for p in 0..100 {
            *seen.entry(Fault::from_percentile(p)).or_insert(0) += 1;
        }
        for fault in Fault::ALL {
            assert!(seen.contains_key(&fault), "{fault:?} is never drawn");
            assert_eq!(Fault::from_name(fault.name()), Some(fault));
        }
        assert_eq!(seen[&Fault::Healthy], 70);
        assert_eq!(seen[&Fault::Hang], 1);
    }
}
