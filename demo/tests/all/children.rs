//! The driver's child processes: started on a port of their own, and gone
//! (port released) when the driver drops them or its end of their stdin.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use svc_demo::procs::Children;

const AUTH_SVC: &str = env!("CARGO_BIN_EXE_auth-svc");

fn healthz(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

/// Polls until nothing accepts connections on `addr` (bounded: 5 s).
fn port_released(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn dropping_children_stops_them_and_frees_their_ports() {
    let dir = std::env::temp_dir().join(format!("svc-demo-children-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("auth-svc.log");
    let mut children = Children::new();
    let addr = children
        .spawn("auth-svc", Path::new(AUTH_SVC), &[], &log)
        .unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0);
    assert!(healthz(addr));
    assert_eq!(children.names().collect::<Vec<_>>(), ["auth-svc"]);

    drop(children);
    assert!(port_released(addr), "auth-svc still listens on {addr}");
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("auth-svc listening"), "{logs}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_service_exits_when_the_driver_closes_its_stdin() {
    let mut child = Command::new(AUTH_SVC)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("SVC_DEMO_EXIT_ON_STDIN_EOF", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(healthz(addr));

    // What happens when the driver dies, even by SIGKILL: its end of the pipe closes.
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("auth-svc did not exit after its stdin closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert!(port_released(addr));
}

#[test]
fn a_service_that_cannot_start_is_reported_with_its_log() {
    let dir = std::env::temp_dir().join(format!("svc-demo-badstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("auth-svc.log");
    let mut children = Children::new();
    // An invalid listen address: the service exits before listening.
    let err = children
        .spawn(
            "auth-svc",
            Path::new(AUTH_SVC),
            &[("LISTEN_ADDR", "nowhere".to_owned())],
            &log,
        )
        .unwrap_err();
    assert!(err.contains("auth-svc did not start"), "{err}");
    assert!(err.contains("auth-svc.log"), "{err}");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("LISTEN_ADDR"),
        "the log names the bad variable"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
