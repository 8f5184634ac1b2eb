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

/// Writes a three-node config of which only node 1 will run, and returns
/// its path and node 1's client address.
fn lonely_primary_config(scratch: &Scratch) -> (std::path::PathBuf, String) {
    let mut text = String::from("cluster_secret = \"a-secret-for-the-shutdown-tests\"\n");
    let mut client_one = String::new();
    for id in 1..=3 {
        let client = format!("127.0.0.1:{}", free_port());
        let peer = format!("127.0.0.1:{}", free_port());
        text.push_str(&format!(
            "[[node]]\nid = {id}\nclient = \"{client}\"\npeer = \"{peer}\"\n"
        ));
        if id == 1 {
            client_one = client;
        }
    }
    let config = scratch.path("cluster.toml");
    std::fs::write(&config, text).unwrap();
    (config, client_one)
}

#[test]
fn sigterm_fails_writes_that_cannot_commit() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let (config, client) = lonely_primary_config(&scratch);
    let log_path = scratch.path("node-1.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(common::ALMANAC)
        .args(["server", "--config"])
        .arg(&config)
        .args(["--id", "1", "--init", "--data"])
        .arg(scratch.path("data"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn almanac server");
    let mut server = Running(child);
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let serving = wait_until(common::STARTUP_TIMEOUT, || {
        read_log().contains("serving node=")
    });
    assert!(serving, "node 1 did not start:\n{}", read_log());

    // Without its backups, node 1 can log the registration but never commit
    // it, so the call waits until the shutdown fails it.
    let mut repl = Command::new(common::ALMANAC)
        .args(["repl", "--cluster", &client, "--output", "json"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn almanac repl");
    {
        use std::io::Write;
        let mut stdin = repl.stdin.take().expect("piped stdin");
        stdin
            .write_all(register("stuck", "stuck-password").as_bytes())
            .unwrap();
    }
    let repl = Running(repl);
    // Hashing the password takes well under a second, so after two the
    // registration waits for its commit.
    std::thread::sleep(Duration::from_secs(2));

    let signalled = std::time::Instant::now();
    send_signal(&server.0, "TERM");
    let status = wait_with_deadline(&mut server.0, EXIT_TIMEOUT);
    let output = read_log();
    let status = status.unwrap_or_else(|| panic!("no exit within {EXIT_TIMEOUT:?}:\n{output}"));
    assert_eq!(status.code(), Some(0), "exit after SIGTERM:\n{output}");
    assert!(
        output.contains("writes still waiting to commit"),
        "the shutdown did not report the write it failed:\n{output}"
    );
    assert!(
        signalled.elapsed() >= almanac::node::SHUTDOWN_GRACE,
        "the shutdown did not wait for the write"
    );
    drop(repl);
}
