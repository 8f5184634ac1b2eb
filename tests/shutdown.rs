//! Graceful shutdown of a real `almanac server` process. SIGTERM or SIGINT
//! makes it stop accepting, reply to the calls it accepted, and exit 0, and
//! a restart on the same data directory has every acknowledged write.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{free_port, login, register, repl_json, wait_until, wait_with_deadline, Scratch};
use serde_json::Value;

/// Maximum time a node may take from the signal to its exit: the shutdown grace
/// for waiting writes is 5 s, and an idle node needs none of it.
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// A server process that is killed and reaped when dropped, so a failing
/// test leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a single-node server on `address` and waits until it listens.
fn start_server(address: SocketAddr, data_dir: &Path, log: &Path) -> Running {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(common::ALMANAC)
        .args(["server", "--listen", &address.to_string(), "--data"])
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn almanac server");
    let up = wait_until(common::STARTUP_TIMEOUT, || {
        TcpStream::connect(address).is_ok()
    });
    let running = Running(child);
    assert!(up, "the server on {address} did not listen");
    running
}

fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {} failed", child.id());
}

fn agenda_titles(reply: &Value) -> Vec<String> {
    reply["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|event| event["title"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Writes an event, stops the server with `signal`, checks it exits 0 and
/// logged its shutdown, then restarts it and checks the event is there.
fn shutdown_keeps_acked_writes(signal: &str) {
    let scratch = Scratch::new();
    let data = scratch.path("data");
    let log = scratch.path("server.log");
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut server = start_server(address, &data, &log);

    let script = format!(
        "{}schedule \"Before {signal}\" 2031-01-07 10:00 for 30m\n",
        register("olga", "olga-password")
    );
    let replies = repl_json(&address.to_string(), &script);
    assert!(
        replies.iter().all(|reply| reply["ok"] == true),
        "the write before the signal failed: {replies:?}"
    );

    send_signal(&server.0, signal);
    let status = wait_with_deadline(&mut server.0, EXIT_TIMEOUT);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("no exit within {EXIT_TIMEOUT:?}:\n{output}"));
    assert_eq!(status.code(), Some(0), "exit after {signal}:\n{output}");
    assert!(
        output.contains("received a shutdown signal"),
        "no shutdown line in the log:\n{output}"
    );
    assert!(
        TcpStream::connect(address).is_err(),
        "the port still accepts after the exit"
    );

    let restart_log = scratch.path("restart.log");
    let _restarted = start_server(address, &data, &restart_log);
    let script = format!("{}agenda 2031-01-07\n", login("olga", "olga-password"));
    let replies = repl_json(&address.to_string(), &script);
    assert_eq!(
        agenda_titles(&replies[1]),
        [format!("Before {signal}")],
        "{replies:?}"
    );
}

#[test]
fn sigterm_exits_zero_and_keeps_writes() {
    let _serial = common::serial();
    shutdown_keeps_acked_writes("TERM");
}

#[test]
fn sigint_exits_zero_and_keeps_writes() {
    let _serial = common::serial();
    shutdown_keeps_acked_writes("INT");
}
