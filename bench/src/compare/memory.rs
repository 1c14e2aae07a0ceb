//! The memory suite: RSS per client and per idle connection, each client
//! measured by a probe in a fresh child process (this binary again, with
//! `--memory-probe`).

use super::Sizes;
use super::clients::{Ended, Kind, Profile, build, expect_ok};
use crate::mem;
use crate::report::{Flat, human_bytes, table};
use std::fmt::Write as _;
use std::time::Duration;
use svc_demo::net;

/// Runs the memory probe of each kind in a fresh child process.
pub(super) async fn suite(
    sizes: &Sizes,
    base: &str,
    healthy: &net::Server,
    flat: &mut Flat,
    md: &mut String,
) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let _ = writeln!(md, "### Memory\n");
    let _ = writeln!(
        md,
        "Resident set size deltas (`VmRSS` of `/proc/self/status`) in a fresh child process per \
         client: after one warm-up request, create {} more clients and keep them; then open {} \
         connections at once through one client (the server holds each request until all have \
         arrived) and let them go idle in its pool. The workspace forbids `unsafe` code, so a \
         counting global allocator is not available: these are page-granular, approximate \
         figures that include allocator slack. The facade's clients share one connection pool \
         by default, so a facade client costs only its own state.\n",
        sizes.clients, sizes.connections
    );
    let _ = writeln!(
        md,
        "| client | bytes per client | bytes per idle connection |"
    );
    let _ = writeln!(md, "|---|---|---|");
    let mut rows = Vec::new();
    for kind in Kind::ALL {
        let before = healthy.stats().accepted();
        let mut command = tokio::process::Command::new(&exe);
        command.args(["--memory-probe", kind.name(), base]);
        if sizes.connections < 200 {
            command.arg("--quick");
        }
        let output = command
            .output()
            .await
            .map_err(|e| format!("cannot run the memory probe: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "memory probe for {} failed: {}",
                kind.name(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let values = Flat::parse(&String::from_utf8_lossy(&output.stdout));
        let per_client: f64 = values
            .get("client_bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        let per_conn: f64 = values
            .get("idle_conn_bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        let opened = healthy.stats().accepted() - before;
        if opened < sizes.connections as u64 {
            return Err(format!(
                "memory probe for {}: the server saw {opened} connections, expected at least {}",
                kind.name(),
                sizes.connections
            ));
        }
        let name = kind.name();
        flat.num(format!("memory.{name}.client_bytes"), per_client);
        flat.num(format!("memory.{name}.idle_conn_bytes"), per_conn);
        let _ = writeln!(
            md,
            "| {name} | {} | {} |",
            human_bytes(per_client),
            human_bytes(per_conn)
        );
        rows.push(vec![
            name.to_owned(),
            human_bytes(per_client),
            human_bytes(per_conn),
        ]);
    }
    let _ = writeln!(md);
    Ok(table(
        &["client", "per client", "per idle connection"],
        &rows,
    ))
}

/// The child side of the memory suite: prints `client_bytes` and
/// `idle_conn_bytes` as `key<TAB>value` lines.
pub(super) async fn probe(kind: Kind, base: &str, quick: bool) -> Result<(), String> {
    let sizes = Sizes::new(quick);
    let rss = || mem::rss_bytes().ok_or("no /proc/self/status on this system");
    let first = build(kind, base, Profile::Defaults)?;
    expect_ok(kind, first.get(base, "/ok").await)?;
    let before = rss()?;
    let mut clients = Vec::with_capacity(sizes.clients);
    for _ in 0..sizes.clients {
        clients.push(build(kind, base, Profile::Defaults)?);
    }
    let after = rss()?;
    let per_client = after.saturating_sub(before) as f64 / sizes.clients as f64;

    let before = rss()?;
    let mut holds = tokio::task::JoinSet::new();
    for _ in 0..sizes.connections {
        let client = first.clone();
        let base = base.to_owned();
        holds.spawn(async move { client.get(&base, "/hold").await });
    }
    let all = async {
        while let Some(joined) = holds.join_next().await {
            if joined.map_err(|e| e.to_string())? != Ended::Status(200) {
                return Err("a held request failed".to_owned());
            }
        }
        Ok::<(), String>(())
    };
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .map_err(|_| "the held requests did not complete in 30 s".to_owned())??;
    // Let the connections go idle in the pool.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = rss()?;
    let per_conn = after.saturating_sub(before) as f64 / sizes.connections as f64;
    let mut flat = Flat::new();
    flat.num("client_bytes", per_client);
    flat.num("idle_conn_bytes", per_conn);
    print!("{}", flat.render());
    drop(clients);
    Ok(())
}
