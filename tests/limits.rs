//! Limits of a real node that a client can hit: connections per remote
//! address, and failed logins per user.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use almanac::rpc::gateway::login_limit::USER_FAILURES_BURST;
use almanac::rpc::serve::CONNECTIONS_PER_ADDRESS_MAX;
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
    let mut open: Vec<TcpStream> = (0..CONNECTIONS_PER_ADDRESS_MAX)
        .map(|_| TcpStream::connect(server.address).unwrap())
        .collect();
    let mut extra = TcpStream::connect(server.address).unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(5)),
        "connection {} from one address stayed open",
        CONNECTIONS_PER_ADDRESS_MAX + 1
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
