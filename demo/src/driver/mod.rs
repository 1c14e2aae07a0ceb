//! The driver of `cargo xtask demo`: starts the services, drives a failure
//! scenario through them, and checks that svc did what it promises.
//!
//! The scenario, each phase set up with the backends' fault endpoints:
//!
//! | phase | faults | expected |
//! |---|---|---|
//! | healthy | none | ≥ 99% full profiles |
//! | chat down | chat-svc resets every connection | no failed request, ≥ 95% degraded |
//! | auth failing | chat-svc healthy, auth-svc answers 500 | auth's breaker opens; afterwards ≥ 90% fast 503s (p50 < 50 ms); auth receives < 10% of the phase's requests |
//! | auth recovered | none | the breaker goes half-open, then closed; ≥ 95% full profiles at the end |
//! | auth slow | auth-svc takes 800 ms; each request has a 300 ms budget (`svc-timeout-ms`) | ≥ 95% answered (504) within the budget; auth-svc stops its work at the deadline: ≤ 20 ms past it per request |
//! | no propagation | the same, profile-svc's propagation to auth off | auth-svc works on past the deadline (≥ 200 ms per request, 10× more than with propagation) |
//!
//! Besides, one trace id sent by the driver must be seen by all three
//! services (their logs and `auth`/`chat` stats), and returned by
//! profile-svc as `x-trace-id`.
//!
//! One module per part of a run: `options` (the command line, [`Options`]),
//! `plan` (the phases and their durations), `load` (setting faults,
//! sending requests, sampling the breakers), `checks` (the expectations)
//! and `summary` (the text written at the end). This file starts the
//! services and runs the parts in order.

mod checks;
mod deadlines;
mod load;
mod options;
mod plan;
mod summary;

pub use options::{Attach, Options, USAGE};

use self::load::{Env, drive};
use self::plan::Plan;
use crate::chart;
use crate::procs::Children;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use svc_client::reqwest;

/// Starts the services, runs the scenario, prints and writes the results.
/// Returns whether every expectation held.
///
/// # Errors
///
/// A startup failure (a service did not start or become ready).
pub async fn run(options: &Options, children: &mut Children) -> Result<bool, String> {
    let replicas = match &options.attach {
        Some(attach) => attach.auth.len(),
        None => AUTH_REPLICAS,
    };
    let plan = Plan::new(
        options.quick,
        options.attach.as_ref().map(|a| a.breaker_reset),
        replicas,
    );
    let logs = options.out_dir.join("logs");
    std::fs::create_dir_all(if options.attach.is_some() {
        &options.out_dir
    } else {
        &logs
    })
    .map_err(|err| format!("cannot create {}: {err}", logs.display()))?;
    let (profile, auth, chat) = match &options.attach {
        Some(attach) => {
            println!(
                "svc demo: attached to profile-svc at {}, auth-svc at {}, chat-svc at {}",
                attach.profile,
                attach.auth.join(","),
                attach.chat
            );
            println!(
                "  assuming profile-svc's breaker opens for {:?} (--breaker-reset-ms)",
                plan.breaker_reset
            );
            (
                attach.profile.clone(),
                attach.auth.clone(),
                attach.chat.clone(),
            )
        }
        None => start_services(options, &plan, &logs, children)?,
    };

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
    let env = Arc::new(Env {
        http,
        auth,
        chat,
        profile,
        budget_ms: std::sync::atomic::AtomicU64::new(0),
    });
    for base in env.auth.iter().chain([&env.chat, &env.profile]) {
        wait_ready(&env.http, base).await?;
    }
    println!(
        "  all ready; {} phases, {} req/s\n",
        plan.phases.len(),
        plan.rate
    );

    let report = drive(&env, &plan).await;
    // Attached, the services' logs are elsewhere (kubectl logs).
    let checks = report.checks(&plan, options.attach.is_none().then_some(logs.as_path()));
    let summary = report.summary(&plan, &checks);
    print!("\n{summary}");

    let chart = chart::render(
        &format!(
            "svc demo{}: profile-svc under failures",
            if options.quick { " --quick" } else { "" }
        ),
        &report.points,
        &report.spans,
    );
    let chart_path = options.out_dir.join("timeline.svg");
    let summary_path = options.out_dir.join("summary.txt");
    std::fs::write(&chart_path, chart)
        .map_err(|err| format!("cannot write {}: {err}", chart_path.display()))?;
    std::fs::write(&summary_path, &summary)
        .map_err(|err| format!("cannot write {}: {err}", summary_path.display()))?;
    if options.attach.is_some() {
        println!(
            "wrote {} and {}",
            summary_path.display(),
            chart_path.display()
        );
    } else {
        println!(
            "wrote {}, {} and {}/",
            summary_path.display(),
            chart_path.display(),
            logs.display()
        );
    }
    Ok(checks.iter().all(|c| c.passed))
}

/// How many replicas of auth-svc the demo runs.
const AUTH_REPLICAS: usize = 3;

/// Starts the services as the platform would: each on a port of its own
/// (auth-svc as three replicas), profile-svc with its siblings' URLs
/// (`AUTH_SVC_URL` lists the replicas). Returns the base URLs of
/// profile-svc, the auth-svc replicas and chat-svc.
fn start_services(
    options: &Options,
    plan: &Plan,
    logs: &Path,
    children: &mut Children,
) -> Result<(String, Vec<String>, String), String> {
    let exe = |name: &str| {
        options
            .bin_dir
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    };
    println!(
        "svc demo: starting auth-svc (×{AUTH_REPLICAS}), chat-svc and profile-svc on 127.0.0.1"
    );
    let mut auth = Vec::with_capacity(AUTH_REPLICAS);
    for replica in 1..=AUTH_REPLICAS {
        // The first replica's log keeps the one-replica name.
        let log = if replica == 1 {
            "auth-svc.log".to_owned()
        } else {
            format!("auth-svc-{replica}.log")
        };
        auth.push(children.spawn(
            &format!("auth-svc-{replica}"),
            &exe("auth-svc"),
            &[],
            &logs.join(log),
        )?);
    }
    let auth_list = auth
        .iter()
        .map(|addr| format!("http://{addr}"))
        .collect::<Vec<_>>();
    let chat = children.spawn(
        "chat-svc",
        &exe("chat-svc"),
        &[],
        &logs.join("chat-svc.log"),
    )?;
    // What the platform injects, and the demo's client settings, next to
    // each URL as svc-client reads them (`ClientConfig::apply_settings`).
    let reset = format!("{}ms", plan.breaker_reset.as_millis());
    let mut profile_env = vec![
        ("AUTH_SVC_URL".to_owned(), auth_list.join(",")),
        ("CHAT_SVC_URL".to_owned(), format!("http://{chat}")),
    ];
    for prefix in ["AUTH_SVC", "CHAT_SVC"] {
        // Generous timeouts: no phase relies on them, and a loaded CI
        // machine must not turn a slow answer into a failed check.
        for (setting, value) in [
            ("TIMEOUT", "2500ms"),
            ("ATTEMPT_TIMEOUT", "1s"),
            ("MAX_RETRIES", "1"),
            ("BREAKER_FAILURE_THRESHOLD", "5"),
            ("BREAKER_RESET_TIMEOUT", &reset),
        ] {
            profile_env.push((format!("{prefix}_{setting}"), value.to_owned()));
        }
    }
    let profile_env: Vec<(&str, String)> = profile_env
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    let profile = children.spawn(
        "profile-svc",
        &exe("profile-svc"),
        &profile_env,
        &logs.join("profile-svc.log"),
    )?;
    for (name, value) in &profile_env[..2] {
        println!("  profile-svc gets {name}={value}");
    }
    println!(
        "  profile-svc listens on {profile}; breaker: 5 failures open it for {:?}",
        plan.breaker_reset
    );
    Ok((
        format!("http://{profile}"),
        auth_list,
        format!("http://{chat}"),
    ))
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let url = format!("{base}/healthz");
    loop {
        if let Ok(resp) = http.get(&url).send().await
            && resp.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{url} not ready within 10 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
