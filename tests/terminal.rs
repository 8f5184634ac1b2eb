//! The REPL in a real pseudo-terminal, typed at as a person would. Ctrl-C
//! and Ctrl-D at a password prompt cancel the command. Ctrl-C stops a
//! command that waits for the cluster without ending the REPL. Every
//! entered line reaches the history file at once.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::{serial, Scratch, Server, ALMANAC};
use rexpect::process::{Signal, WaitStatus};
use rexpect::session::{spawn_command, PtySession};

/// How long each expected text may take to appear. A debug build hashes a
/// password with argon2id in about a second on a busy machine.
const EXPECT_TIMEOUT_MS: u64 = 30_000;

const PASSWORD: &str = "alice-password-1";

/// Starts `almanac repl` in a pseudo-terminal and waits for its prompt.
fn terminal_repl(cluster: &str, history: &Path) -> PtySession {
    let mut command = Command::new(ALMANAC);
    command
        .args(["repl", "--cluster", cluster, "--history"])
        .arg(history)
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    let mut session =
        spawn_command(command, Some(EXPECT_TIMEOUT_MS)).expect("start the REPL in a terminal");
    session.exp_string("almanac> ").expect("the first prompt");
    session
}

/// Types `quit` and checks that the REPL exits with status 0.
fn quit(mut session: PtySession) {
    session.send_line("quit").expect("type quit");
    session.exp_eof().expect("the REPL ends after quit");
    let status = session.process().wait().expect("reap the REPL");
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "the REPL ended with {status:?}"
    );
}

/// Starts a TCP listener that accepts connections and never replies, like
/// a node that hangs. Each accepted connection is reported on the returned
/// channel and kept open until the test ends.
fn silent_node() -> (SocketAddr, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a silent node");
    let address = listener.local_addr().expect("silent node address");
    let (accepted, connections) = mpsc::channel();
    std::thread::spawn(move || {
        let mut open_streams: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().take(16) {
            let Ok(stream) = stream else { break };
            if accepted.send(()).is_err() {
                break;
            }
            // Drain what the client sends, so that it never blocks writing.
            let mut reader = stream.try_clone().expect("clone the accepted stream");
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while matches!(reader.read(&mut buffer), Ok(n) if n > 0) {}
            });
            let _ = stream.set_nodelay(true);
            open_streams.push(stream);
        }
    });
    (address, connections)
}

/// Types `register alice` and waits for the first password prompt.
fn start_register(repl: &mut PtySession) {
    repl.send_line("register alice").expect("type register");
    repl.exp_string("Choose a password for alice:")
        .expect("the password prompt");
}

/// Answers the first password prompt and waits for the second.
fn type_first_password(repl: &mut PtySession) {
    repl.send_line(PASSWORD).expect("type the password");
    repl.exp_string("Repeat it:").expect("the second prompt");
}

#[test]
fn password_prompt_ctrl_c_ctrl_d() {
    let _serial = serial();
    let scratch = Scratch::new();
    let server = Server::start(&scratch.path("data"));
    let mut repl = terminal_repl(&server.cluster(), &scratch.path("history"));

    start_register(&mut repl);
    repl.send_control('c').expect("press Ctrl-C");
    repl.exp_string("register cancelled; nothing was sent")
        .expect("Ctrl-C cancels the registration");
    repl.exp_string("almanac> ").expect("the prompt again");

    start_register(&mut repl);
    type_first_password(&mut repl);
    repl.send_control('d').expect("press Ctrl-D");
    repl.exp_string("register cancelled; nothing was sent")
        .expect("Ctrl-D on an empty prompt cancels the registration");
    repl.exp_string("almanac> ").expect("the prompt again");

    // Neither cancelled attempt registered alice, so this one succeeds.
    start_register(&mut repl);
    type_first_password(&mut repl);
    repl.send_line(PASSWORD).expect("repeat the password");
    repl.exp_string("alice registered and logged in")
        .expect("the registration");
    repl.exp_string("alice> ").expect("the logged-in prompt");
    quit(repl);
}

#[test]
fn ctrl_c_stops_a_waiting_command() {
    let _serial = serial();
    let scratch = Scratch::new();
    let (address, connections) = silent_node();
    let mut repl = terminal_repl(&address.to_string(), &scratch.path("history"));

    start_register(&mut repl);
    type_first_password(&mut repl);
    repl.send_line(PASSWORD).expect("repeat the password");
    connections
        .recv_timeout(Duration::from_millis(EXPECT_TIMEOUT_MS))
        .expect("the REPL connects to the silent node");
    repl.send_control('c').expect("press Ctrl-C");
    repl.exp_string("stopped waiting for `register`")
        .expect("Ctrl-C stops the registration");
    repl.exp_string("the cluster may still create the account; try `login alice`")
        .expect("the warning that the account may still be created");
    repl.exp_string("almanac> ").expect("the prompt again");

    // The REPL still works: a local command replies.
    repl.send_line("when 2031-01-06 09:00").expect("type when");
    repl.exp_string("2031-01-06T09:00Z")
        .expect("the answer of when");
    quit(repl);
}

#[test]
fn history_kept_when_killed() {
    let _serial = serial();
    let scratch = Scratch::new();
    let history = scratch.path("history");
    let (address, _connections) = silent_node();
    let mut repl = terminal_repl(&address.to_string(), &history);

    repl.send_line("when 2031-01-06 09:00").expect("type when");
    repl.exp_string("2031-01-06T09:00Z")
        .expect("the answer of when");
    repl.send_line("help agenda").expect("type help");
    repl.exp_string("agenda [").expect("the help of agenda");
    repl.exp_string("almanac> ").expect("the prompt again");
    repl.process_mut()
        .kill(Signal::SIGKILL)
        .expect("kill the REPL");

    let saved = std::fs::read_to_string(&history).expect("read the history file");
    let lines: Vec<&str> = saved.lines().collect();
    assert!(
        lines.contains(&"when 2031-01-06 09:00"),
        "history file: {saved:?}"
    );
    assert!(lines.contains(&"help agenda"), "history file: {saved:?}");
}

#[test]
fn unwritable_history_warns_once() {
    let _serial = serial();
    let scratch = Scratch::new();
    let history = scratch.path("missing-dir").join("history");
    let (address, _connections) = silent_node();
    let mut repl = terminal_repl(&address.to_string(), &history);

    repl.send_line("when 2031-01-06 09:00").expect("type when");
    repl.exp_string("warning: cannot write the history file")
        .expect("the warning about the history file");
    repl.exp_string("2031-01-06T09:00Z")
        .expect("the answer of when");
    repl.send_line("help agenda").expect("type help");
    let (before, _) = repl.exp_regex("agenda \\[").expect("the help of agenda");
    assert!(!before.contains("warning"), "warned twice: {before}");
    quit(repl);
}
