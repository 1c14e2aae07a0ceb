//! Client CPU per request with `INFLIGHT` requests in flight: each client
//! on a current-thread runtime in a thread of its own (see `worker`), the
//! thread's CPU time read around every round, rounds paired across clients
//! in rotated order. CPU per request does not depend on how busy the
//! machine is the way throughput does; the ratio to raw reqwest is the
//! median of the per-round ratios.

use super::clients::{AnyClient, Kind, Profile, build, expect_ok};
use super::worker::{Caller, Job, Outcome, Worker, median, rotated_rounds};
use super::{INFLIGHT, Sizes};
use crate::report::{Flat, table};
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;

#[derive(Clone)]
struct Plain {
    kind: Kind,
    client: AnyClient,
    base: Arc<str>,
}

impl Caller for Plain {
    fn call(&self) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let this = self.clone();
        async move { expect_ok(this.kind, this.client.get(&this.base, "/ok").await) }
    }
}

/// Runs the suite; writes its figures and returns the text table.
pub(super) async fn suite(
    sizes: &Sizes,
    base: &str,
    flat: &mut Flat,
    md: &mut String,
) -> Result<String, String> {
    println!(
        "cpu: {INFLIGHT} requests in flight, each client on its own current-thread runtime, {} rounds of {:?}",
        sizes.cpu_rounds, sizes.cpu_round
    );
    let mut workers = Vec::new();
    for kind in Kind::ALL {
        let base: Arc<str> = Arc::from(base);
        let worker = Worker::spawn(kind.name(), move || {
            Ok(Plain {
                kind,
                client: build(kind, &base, Profile::OwnPool)?,
                base,
            })
        })?;
        // Warm up: the pool opens its connections, lazy statics fill.
        worker
            .run(Job::Concurrent {
                inflight: INFLIGHT,
                length: sizes.cpu_round / 4,
            })
            .await
            .map_err(|e| format!("{}: {e}", kind.name()))?;
        workers.push((kind, worker));
    }
    let rounds = rotated_rounds(
        &workers,
        sizes.cpu_rounds,
        |k| k.name(),
        || Job::Concurrent {
            inflight: INFLIGHT,
            length: sizes.cpu_round,
        },
    )
    .await?;
    drop(workers);

    let _ = writeln!(md, "### Client CPU per request, {INFLIGHT} in flight\n");
    let _ = writeln!(
        md,
        "Each client on a current-thread tokio runtime in a thread of its own (the server stays \
         on the main runtime's two workers), {INFLIGHT} requests in flight for {} rounds of {:?} \
         per client, interleaved with the order rotated every round. CPU is the client thread's \
         own (`CLOCK_THREAD_CPUTIME_ID`, read around each round): it includes the connections' \
         I/O driven on that runtime, and does not move with how busy the machine is the way \
         throughput does. The facade gets a pool of its own here (`shared_pool(false)`), so that \
         its connections are driven on its thread. The CPU ratio is the median of the per-round ratios to raw reqwest \
         (rounds paired); throughput is requests over the client's wall time.\n",
        sizes.cpu_rounds, sizes.cpu_round
    );
    let _ = writeln!(
        md,
        "| client | CPU per request | CPU / reqwest (paired) | requests/s (one thread) | throughput / reqwest |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    let total = |outcomes: &[Outcome]| -> (f64, f64) {
        let calls: u64 = outcomes.iter().map(|o| o.calls).sum();
        let cpu: f64 = outcomes.iter().map(|o| o.cpu.as_secs_f64()).sum();
        let wall: f64 = outcomes.iter().map(|o| o.wall.as_secs_f64()).sum();
        (
            cpu * 1e9 / calls.max(1) as f64,
            calls as f64 / wall.max(f64::MIN_POSITIVE),
        )
    };
    let (_, base_rps) = total(&rounds[0]);
    let mut rows = Vec::new();
    for (i, kind) in Kind::ALL.into_iter().enumerate() {
        let name = kind.name();
        let (cpu_ns, rps) = total(&rounds[i]);
        let ratio = median(
            rounds[i]
                .iter()
                .zip(&rounds[0])
                .map(|(c, b)| c.cpu_per_call_ns() / b.cpu_per_call_ns())
                .collect(),
        );
        let tput = rps / base_rps;
        flat.num(format!("cpu.{name}.ns_per_request"), cpu_ns);
        flat.num(format!("cpu.{name}.rps"), rps);
        if i > 0 {
            flat.num(format!("ratio.cpu.{name}"), ratio);
            flat.num(format!("ratio.cpu_throughput.{name}"), tput);
        }
        let _ = writeln!(
            md,
            "| {name} | {:.1} µs | {ratio:.3}× | {rps:.0} | {tput:.3}× |",
            cpu_ns / 1e3
        );
        rows.push(vec![
            name.to_owned(),
            format!("{:.1} µs", cpu_ns / 1e3),
            format!("{ratio:.3}x"),
            format!("{rps:.0}"),
            format!("{tput:.3}x"),
        ]);
    }
    let _ = writeln!(md);
    Ok(table(
        &["client", "cpu/req", "cpu/reqwest", "req/s", "tput/reqwest"],
        &rows,
    ))
}
