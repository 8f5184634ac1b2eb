//! Limits of a real node that a client can hit: connections per remote
//! address, failed logins per user, and prepares of many large requests.

#[allow(dead_code, unused_imports)]
mod cluster_support;
mod common;

use std::io::Read;
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use almanac::calendar::limits::{MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS};
use almanac::rpc::gateway::login_limit::USER_FAILURES_BURST;
use almanac::rpc::serve::CONNECTIONS_PER_ADDRESS_DEFAULT;
use cluster_support::{Cluster, Repl};
use common::{login, register, repl, Scratch, Server};

/// Returns whether the node closed `stream` (end of stream or a reset)
/// within `wait`.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buffer = [0u8; 64];
    match stream.read(&mut buffer) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn connections_per_address_are_limited() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let mut open: Vec<TcpStream> = (0..CONNECTIONS_PER_ADDRESS_DEFAULT)
        .map(|_| TcpStream::connect(server.address).unwrap())
        .collect();
    let mut extra = TcpStream::connect(server.address).unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(5)),
        "connection {} from one address stayed open",
        CONNECTIONS_PER_ADDRESS_DEFAULT + 1
    );
    assert!(
        !closed_within(&mut open[0], Duration::from_millis(200)),
        "a connection within the limit was closed"
    );
    assert!(
        server.log().contains("the maximum number of connections"),
        "no log line for the rejected connection:\n{}",
        server.log()
    );

    // Closing one frees its place for a client that does real work.
    drop(open.pop());
    let finished = repl(
        &server.cluster(),
        &register("conny", "conny-password"),
        &["--output", "json"],
    );
    finished.expect_code(0);
}

#[test]
fn failed_logins_are_rate_limited() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    repl(
        &server.cluster(),
        &register("lena", "lena-password"),
        &["--output", "json"],
    )
    .expect_code(0);

    let attempts = USER_FAILURES_BURST as usize + 1;
    let script = login("lena", "wrong-password").repeat(attempts);
    let finished = repl(
        &server.cluster(),
        &script,
        &["--keep-going", "--output", "json"],
    );
    let replies = finished.replies();
    assert_eq!(replies.len(), attempts, "{finished}");
    for reply in &replies[..attempts - 1] {
        let text = reply.to_string();
        assert!(text.contains("wrong username or password"), "{text}");
    }
    let last = replies[attempts - 1].to_string();
    assert!(
        last.contains("too many failed logins for user lena"),
        "{last}"
    );
    // The wait is 12 s less the time the failed attempts took.
    assert!(last.contains(" s before trying again"), "{last}");
}

/// Clients that schedule at the same time, and events each one schedules.
const LARGE_CLIENTS: usize = 3;
const LARGE_EVENTS_PER_CLIENT: usize = 4;

/// Returns a `schedule` line for an event with the longest title and
/// description the calendar accepts, written in a two-byte character so
/// that the request is as large as a single event gets.
fn large_event_line(client: usize, index: usize) -> String {
    let label = format!("c{client}e{index} ");
    let title = format!("{label}{}", "é".repeat(MAX_TITLE_CHARS - label.len()));
    let description = "é".repeat(MAX_DESCRIPTION_CHARS);
    let day = 1 + index;
    let hour = 8 + client;
    format!("schedule \"{title}\" 2027-02-{day:02} {hour:02}:00 for 1h about \"{description}\"")
}

#[test]
fn large_events_commit_on_all_nodes() {
    let _serial = common::serial();
    let mut cluster = Cluster::start();
    let addresses = cluster.addresses();
    let clients: Vec<_> = (0..LARGE_CLIENTS)
        .map(|client| {
            let addresses = addresses.clone();
            thread::spawn(move || {
                let mut repl = Repl::spawn(&addresses, &[]);
                repl.register(&format!("large{client}"));
                for index in 0..LARGE_EVENTS_PER_CLIENT {
                    repl.ok(&large_event_line(client, index));
                }
                let agenda = repl.ok("agenda 2027-02-01 to 2027-03-01");
                agenda.to_string()
            })
        })
        .collect();
    for (client, handle) in clients.into_iter().enumerate() {
        let agenda = handle.join().expect("a client thread panicked");
        for index in 0..LARGE_EVENTS_PER_CLIENT {
            let label = format!("c{client}e{index} ");
            assert!(
                agenda.contains(&label),
                "client {client} does not see its event {index}: {agenda}"
            );
        }
    }

    // Every node reports the same commit number, which covers the
    // registrations, logins and every event.
    let status = cluster.converge();
    let ops_min = (LARGE_CLIENTS * (LARGE_EVENTS_PER_CLIENT + 2)) as u64;
    for node in &status {
        let report = node.report.as_ref().expect("a converged node responds");
        assert!(
            report.commit >= ops_min,
            "node {} committed {} ops, fewer than {ops_min}",
            report.id,
            report.commit
        );
    }
}
