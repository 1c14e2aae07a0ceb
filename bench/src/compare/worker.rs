//! A client on a thread of its own: a current-thread tokio runtime in a
//! dedicated thread, whose CPU time (`CLOCK_THREAD_CPUTIME_ID`) is the
//! client's and nothing else's (the server runs on the main runtime's
//! workers). Rounds are run on request, so that the suites can pair them
//! round by round in rotated order across clients.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The CPU time this thread has used so far.
pub(super) fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// One logical call of a client, as a suite makes it.
pub(super) trait Caller: Clone + Send + Sync + 'static {
    /// Makes the call; an error says what went wrong.
    fn call(&self) -> impl Future<Output = Result<(), String>> + Send + 'static;
}

/// What a worker is asked to do.
#[derive(Clone, Copy, Debug)]
pub(super) enum Job {
    /// `n` calls one after the other, each timed.
    Sequential(usize),
    /// `inflight` callers looping for `length`.
    Concurrent { inflight: usize, length: Duration },
}

/// What a round measured.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) calls: u64,
    /// The worker thread's CPU time over the round.
    pub(super) cpu: Duration,
    pub(super) wall: Duration,
    /// Per call, for [`Job::Sequential`] only.
    pub(super) latencies: Vec<Duration>,
}

impl Outcome {
    /// CPU nanoseconds per call.
    pub(super) fn cpu_per_call_ns(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e9 / self.calls.max(1) as f64
    }
}

type Reply = tokio::sync::oneshot::Sender<Result<Outcome, String>>;

/// A client on its own thread.
pub(super) struct Worker {
    jobs: Option<mpsc::Sender<(Job, Reply)>>,
    thread: Option<JoinHandle<()>>,
}

/// Runs `rounds` rounds of `job` on every worker, one after another in an
/// order rotated each round (no client always runs first, on a warmer or a
/// busier machine), and returns each worker's outcomes, in `workers` order.
pub(super) async fn rotated_rounds<K>(
    workers: &[(K, Worker)],
    rounds: usize,
    name: impl Fn(&K) -> &'static str,
    job: impl Fn() -> Job,
) -> Result<Vec<Vec<Outcome>>, String> {
    let mut outcomes: Vec<Vec<Outcome>> = (0..workers.len()).map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for offset in 0..workers.len() {
            let i = (round + offset) % workers.len();
            let (kind, worker) = &workers[i];
            let outcome = worker
                .run(job())
                .await
                .map_err(|e| format!("{}: {e}", name(kind)))?;
            outcomes[i].push(outcome);
        }
    }
    Ok(outcomes)
}

impl Worker {
    /// Starts a thread, builds the caller there (inside its runtime) with
    /// `build` and waits until it is ready.
    pub(super) fn spawn<C, B>(name: &str, build: B) -> Result<Worker, String>
    where
        C: Caller,
        B: FnOnce() -> Result<C, String> + Send + 'static,
    {
        let (jobs, inbox) = mpsc::channel::<(Job, Reply)>();
        let (ready, started) = mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name(format!("client-{name}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(format!("cannot start a runtime: {e}")));
                        return;
                    }
                };
                let caller = match runtime.block_on(async { build() }) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                while let Ok((job, reply)) = inbox.recv() {
                    let _ = reply.send(runtime.block_on(run(&caller, job)));
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        started
            .recv()
            .map_err(|_| format!("{name}: the client thread died"))??;
        Ok(Worker {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `job` on the worker's thread.
    pub(super) async fn run(&self, job: Job) -> Result<Outcome, String> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.jobs
            .as_ref()
            .ok_or("worker stopped")?
            .send((job, reply))
            .map_err(|_| "the client thread died".to_owned())?;
        outcome
            .await
            .map_err(|_| "the client thread died".to_owned())?
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn run<C: Caller>(caller: &C, job: Job) -> Result<Outcome, String> {
    match job {
        Job::Sequential(n) => {
            let mut latencies = Vec::with_capacity(n);
            let started = Instant::now();
            let cpu = thread_cpu();
            for _ in 0..n {
                let call = Instant::now();
                caller.call().await?;
                latencies.push(call.elapsed());
            }
            Ok(Outcome {
                calls: n as u64,
                cpu: thread_cpu().saturating_sub(cpu),
                wall: started.elapsed(),
                latencies,
            })
        }
        Job::Concurrent { inflight, length } => {
            let done = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let cpu = thread_cpu();
            let deadline = started + length;
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..inflight {
                let caller = caller.clone();
                let done = Arc::clone(&done);
                tasks.spawn(async move {
                    while Instant::now() < deadline {
                        caller.call().await?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<(), String>(())
                });
            }
            while let Some(joined) = tasks.join_next().await {
                joined.map_err(|e| format!("task failed: {e}"))??;
            }
            Ok(Outcome {
                calls: done.load(Ordering::Relaxed),
                cpu: thread_cpu().saturating_sub(cpu),
                wall: started.elapsed(),
                latencies: Vec::new(),
            })
        }
    }
}

/// The median of `values` (0 when empty).
pub(super) fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Spin;

    impl Caller for Spin {
        // The trait's future is `'static`: an `async fn` would borrow `self`.
        #[allow(clippy::manual_async_fn)]
        fn call(&self) -> impl Future<Output = Result<(), String>> + Send + 'static {
            async {
                let until = Instant::now() + Duration::from_micros(200);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                tokio::task::yield_now().await;
                Ok(())
            }
        }
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn a_worker_counts_its_own_thread_cpu() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let worker = Worker::spawn("spin", || Ok(Spin)).unwrap();
        let main_cpu = thread_cpu();
        let seq = rt.block_on(worker.run(Job::Sequential(20))).unwrap();
        assert_eq!(seq.calls, 20);
        assert_eq!(seq.latencies.len(), 20);
        // 20 × 200 µs of spinning, on the worker's clock, not this thread's.
        assert!(seq.cpu >= Duration::from_millis(3), "{seq:?}");
        assert!(thread_cpu() - main_cpu < seq.cpu, "{seq:?}");
        let conc = rt
            .block_on(worker.run(Job::Concurrent {
                inflight: 4,
                length: Duration::from_millis(20),
            }))
            .unwrap();
        assert!(conc.calls > 0);
        assert!(conc.cpu_per_call_ns() > 100_000.0, "{conc:?}");
    }
}
