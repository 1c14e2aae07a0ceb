//! What the soak observed and the limits it ran with: the input of every
//! check, kept apart from the checks so that the soak binary and the tests
//! build the same data.

use std::time::Duration;

/// The client settings and margins the soak runs with.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Concurrent callers.
    pub callers: usize,
    /// The facade's whole-call `timeout`.
    pub timeout: Duration,
    /// The facade's `attempt_timeout`.
    pub attempt_timeout: Duration,
    /// The breaker's `reset_timeout`.
    pub reset_timeout: Duration,
    /// Scheduling slack added to every time bound (a loaded 2-core machine
    /// running a debug build delays timers and tasks).
    pub margin: Duration,
    /// Largest acceptable RSS growth after the warm-up, in bytes.
    pub rss_growth: u64,
    /// Largest acceptable server requests per logical call in outages.
    pub outage_amplification: f64,
    /// The retry budget of the budget-only client: retries may add this
    /// fraction of its calls...
    pub budget_percent: f64,
    /// ...plus this many retries per second of the run, plus a reserve of
    /// `budget_per_sec × budget_ttl` at the start.
    pub budget_per_sec: f64,
    /// The budget's window.
    pub budget_ttl: Duration,
    /// Tasks that call again at once whenever their call fails fast (0: no
    /// starvation check).
    pub loopers: usize,
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response (any status).
    Response(u16),
    /// Rejected by the open circuit, without I/O.
    CircuitOpen,
    /// The whole-call or attempt timeout elapsed.
    Timeout,
    /// A 2xx head whose body could not be read (cut short, stalled, reset)
    /// or was not JSON.
    BadBody,
    /// Another error (reset, truncated, connect, budget...).
    Error,
    /// The soak dropped the call's future before it finished.
    Cancelled,
}

/// What kind of request a call was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// A GET, read and decoded as JSON.
    Get,
    /// A POST without an `Idempotency-Key` (must never be sent twice).
    Post,
    /// A POST with an `Idempotency-Key` (may be replayed).
    KeyedPost,
}

/// One logical call.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    /// When it started, from the start of the storm.
    pub started: Duration,
    /// How long until the facade returned (or the soak cancelled it), the
    /// body read and decoded included: callers read bodies through the
    /// library (`decode`), so a stalled body is part of the call.
    pub elapsed: Duration,
    /// The request.
    pub kind: CallKind,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether it started while the server was in an outage.
    pub in_outage: bool,
    /// Whether it was made by the budget-only client (no breaker).
    pub budget_only: bool,
}

/// A breaker state, as the soak saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breaker {
    /// Calls pass.
    Closed,
    /// Calls fail fast.
    Open,
    /// A trial is allowed.
    HalfOpen,
}

/// Everything the soak observed.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// Panics anywhere in the process (the panic hook counts them), plus
    /// caller tasks that ended in a panic.
    pub panics: u64,
    /// Every logical call.
    pub calls: Vec<Call>,
    /// Breaker transitions `(when, to)`, from the start of the storm.
    pub transitions: Vec<(Duration, Breaker)>,
    /// When the callers stopped starting calls.
    pub storm_end: Duration,
    /// The longest time no request reached the server while callers ran,
    /// and when it began.
    pub longest_silence: (Duration, Duration),
    /// Requests of the breaker client the server received while in an outage.
    pub outage_requests: u64,
    /// Requests of the budget-only client the server received.
    pub budget_requests: u64,
    /// How long the budget-only client ran, until its last call returned.
    pub budget_run: Duration,
    /// POSTs without a key that reached the server more than once:
    /// `(call id, arrivals)`.
    pub replayed_posts: Vec<(u64, u32)>,
    /// The most connections the server held at once.
    pub peak_connections: u64,
    /// Connections the server still held after the client was dropped and
    /// every handler had time to finish.
    pub connections_after_drain: u64,
    /// RSS samples `(when, bytes)`.
    pub rss: Vec<(Duration, u64)>,
    /// Samples before this are the warm-up.
    pub warmup: Duration,
    /// Phases in which every body failed after a `200` head, `(from, to)`
    /// from the start of the storm; only those that ended before the storm.
    pub bad_body_phases: Vec<(Duration, Duration)>,
    /// Requests the server answered with a failing body in those phases.
    pub bad_body_requests: u64,
    /// The ticker's ticks: `(when it was due, how late it ran)`.
    pub ticks: Vec<(Duration, Duration)>,
    /// When loopers were looping on rejected calls without yielding,
    /// `(from, to)`, one per tight loop.
    pub loops: Vec<(Duration, Duration)>,
    /// Fail-fast calls made in those tight loops.
    pub loop_calls: u64,
}

impl Observations {
    /// How many calls `f` holds for.
    pub fn count(&self, f: impl Fn(&Call) -> bool) -> usize {
        self.calls.iter().filter(|c| f(c)).count()
    }

    /// Whether a tick due at `due` that ran `late` late overlapped one of
    /// the tight [`loops`](Observations::loops).
    pub fn looping(&self, due: Duration, late: Duration) -> bool {
        self.loops
            .iter()
            .any(|(from, to)| due <= *to && due + late >= *from)
    }
}
