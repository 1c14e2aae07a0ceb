//! The demo's child processes, always stopped.
//!
//! [`Children`] owns every service the driver started; dropping it (normal
//! exit, an error, a panic unwinding, Ctrl-C) closes their stdin, kills them
//! and waits for them, so no process and no port is left behind. If the
//! driver itself is killed (SIGKILL runs no destructor), the children still
//! go: each is started with `SVC_DEMO_EXIT_ON_STDIN_EOF=1` and a piped stdin
//! whose other end only the driver holds, and exits when it reads end of file
//! (see [`crate::telemetry::exit_when_stdin_closes`]).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a service may take to print its address.
const START_DEADLINE: Duration = Duration::from_secs(15);

/// Variables a service must not inherit from the driver's environment: the
/// driver sets exactly what the platform would inject.
const SCRUBBED: [&str; 5] = [
    "AUTH_SVC_URL",
    "CHAT_SVC_URL",
    "PROFILE_SVC_URL",
    "LISTEN_ADDR",
    "PORT",
];

/// The running services; dropping this stops them all.
#[derive(Debug, Default)]
pub struct Children {
    children: Vec<(String, Child)>,
}

impl Children {
    /// No children yet.
    pub fn new() -> Self {
        Children::default()
    }

    /// Starts `exe` as `name` listening on `127.0.0.1:0` with the extra
    /// `env`, its stderr (the logs) appended to `log`, and returns the
    /// address it bound (the first line of its stdout: `listening on ADDR`).
    ///
    /// # Errors
    ///
    /// When the program cannot start, exits, or does not print its address
    /// within 15 s; the message names the service and its log.
    pub fn spawn(
        &mut self,
        name: &str,
        exe: &Path,
        env: &[(&str, String)],
        log: &Path,
    ) -> Result<SocketAddr, String> {
        let log_file =
            File::create(log).map_err(|err| format!("cannot create {}: {err}", log.display()))?;
        let mut command = Command::new(exe);
        for var in SCRUBBED {
            command.env_remove(var);
        }
        command
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("SVC_DEMO_EXIT_ON_STDIN_EOF", "1")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file);
        // The driver reads the services' info lines (each request's trace
        // id), whatever the caller's RUST_LOG says.
        command.env("RUST_LOG", "info");
        let mut child = command
            .spawn()
            .map_err(|err| format!("cannot start {name} ({}): {err}", exe.display()))?;
        let stdout = child.stdout.take();
        self.children.push((name.to_owned(), child));

        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = stdout {
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let first = lines.next();
                let _ = tx.send(first);
                // Drain the rest so the service never blocks on a full pipe.
                for _ in lines {}
            });
        }
        let fail = |why: String| format!("{name} did not start: {why} (see {})", log.display());
        match rx.recv_timeout(START_DEADLINE) {
            Ok(Some(Ok(line))) => {
                let addr = line
                    .strip_prefix("listening on ")
                    .ok_or_else(|| fail(format!("unexpected first line `{line}`")))?;
                addr.trim()
                    .parse()
                    .map_err(|_| fail(format!("not an address: `{addr}`")))
            }
            Ok(Some(Err(err))) => Err(fail(format!("cannot read its output: {err}"))),
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(fail("it exited before listening".to_owned()))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(fail(format!("no address within {START_DEADLINE:?}")))
            }
        }
    }

    /// The names of the running children, in start order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.children.iter().map(|(name, _)| name.as_str())
    }

    /// Stops every child now (also done on drop).
    pub fn stop_all(&mut self) {
        for (_, child) in &mut self.children {
            // Closing stdin alone would stop them; kill to be sure and quick.
            drop(child.stdin.take());
            let _ = child.kill();
        }
        for (_, mut child) in self.children.drain(..) {
            let _ = child.wait();
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all();
    }
}
