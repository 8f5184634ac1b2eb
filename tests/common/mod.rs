//! Helpers for the integration tests: real `almanac` processes on loopback
//! ports, scripted REPL runs, and a REPL kept open on a pipe.
//!
//! Every wait has a deadline, and every process a helper starts is killed
//! (SIGKILL) and reaped when its handle drops, so a failing test leaves
//! nothing running.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The `almanac` binary cargo built for these tests.
pub const ALMANAC: &str = env!("CARGO_BIN_EXE_almanac");

/// How long a server may take to listen; replaying a small log takes
/// milliseconds, so this only guards against a hang.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one scripted REPL run may take. Each register or login hashes a
/// password with argon2id, tens of milliseconds in a debug build.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many fresh ports a server start tries when the port it picked was
/// taken by another process in the meantime.
const PORT_ATTEMPTS: usize = 5;

/// The reference time every scripted REPL gets with `--now`: a Monday.
pub const NOW: &str = "2031-01-06T09:00:00Z";

/// Runs the tests of one test binary one at a time. Each register and login
/// hashes a password with argon2id, which takes about a second in a debug
/// build on a busy 2-core machine, and two tests hashing at once pushed
/// calls past the client's 3-second call timeout. Every test holds the
/// returned guard until it ends.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Returns a port on 127.0.0.1 that was free a moment ago. Another process
/// can take it before the caller binds it, so callers retry on a busy port.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for a free port");
    listener.local_addr().expect("local address").port()
}

/// Polls `predicate` every 20 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut predicate: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if predicate() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` to exit, killing it if `timeout` passes first.
/// Returns None on a timeout (after killing and reaping it).
pub fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().expect("poll a child process") {
            Some(status) => return Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Reads a pipe to its end on a thread of its own, so a chatty child never
/// blocks on a full pipe.
fn collect(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// One `almanac server` process on a loopback port. Dropping it kills and
/// reaps the process.
pub struct Server {
    pub address: SocketAddr,
    pub data_dir: PathBuf,
    /// Where the server's stdout and stderr go, for failure messages.
    pub log_path: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// Starts a server on a free port with its log in `data_dir` and waits
    /// until it accepts connections.
    pub fn start(data_dir: &Path) -> Server {
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
            match Server::start_on(address, data_dir) {
                Ok(server) => return server,
                Err(StartFailure::PortBusy(log)) => last_log = log,
                Err(StartFailure::Exited(status, log)) => {
                    panic!("the server on {address} exited with {status} at startup:\n{log}")
                }
            }
        }
        panic!("no free port after {PORT_ATTEMPTS} attempts; last server log:\n{last_log}");
    }

    /// Starts a server on `address`, which must be free.
    pub fn start_at(address: SocketAddr, data_dir: &Path) -> Server {
        match Server::start_on(address, data_dir) {
            Ok(server) => server,
            Err(StartFailure::PortBusy(log)) | Err(StartFailure::Exited(_, log)) => {
                panic!("the server on {address} did not start:\n{log}")
            }
        }
    }

    fn start_on(address: SocketAddr, data_dir: &Path) -> Result<Server, StartFailure> {
        let log_path = log_path_for(data_dir);
        let mut child = spawn_server(address, data_dir, &log_path);
        let listening = wait_until(STARTUP_TIMEOUT, || {
            TcpStream::connect(address).is_ok() || matches!(child.try_wait(), Ok(Some(_)))
        });
        if let Ok(Some(status)) = child.try_wait() {
            let log = read_log(&log_path);
            return Err(if log.contains("another process uses that port") {
                StartFailure::PortBusy(log)
            } else {
                StartFailure::Exited(status, log)
            });
        }
        if !listening {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server on {address} did not listen within {STARTUP_TIMEOUT:?}:\n{}",
                read_log(&log_path)
            );
        }
        Ok(Server {
            address,
            data_dir: data_dir.to_owned(),
            log_path,
            child: Some(child),
        })
    }

    /// Returns the address in the form `--cluster` takes.
    pub fn cluster(&self) -> String {
        self.address.to_string()
    }

    /// Sends SIGKILL and reaps the process, so it can no longer reply to a
    /// client or write to disk when this returns.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the server");
            child.wait().expect("reap the killed server");
        }
    }

    /// Sends `signal` (such as `STOP` or `CONT`) to the server process with
    /// the system's `kill` command.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", child.id());
    }

    /// Kills the server and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        let restarted = Server::start_at(self.address, &self.data_dir);
        *self = restarted;
    }

    /// Returns the server's output so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

enum StartFailure {
    PortBusy(String),
    Exited(ExitStatus, String),
}

/// Returns the server log path, beside the data directory rather than in
/// it, so the WAL directory contains only the server's own files.
fn log_path_for(data_dir: &Path) -> PathBuf {
    let name = data_dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".to_owned());
    data_dir.with_file_name(format!("{name}.server.log"))
}

fn spawn_server(address: SocketAddr, data_dir: &Path, log_path: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("open the server log file");
    let log_err = log.try_clone().expect("clone the server log handle");
    Command::new(ALMANAC)
        .arg("server")
        .arg("--listen")
        .arg(address.to_string())
        .arg("--data")
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .expect("spawn almanac server")
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Runs `almanac server` in the foreground on `address` and `data_dir`,
/// expecting it to stop by itself (a startup error) within `timeout`.
pub fn run_server_expecting_exit(
    address: SocketAddr,
    data_dir: &Path,
    timeout: Duration,
) -> Finished {
    let child = Command::new(ALMANAC)
        .arg("server")
        .arg("--listen")
        .arg(address.to_string())
        .arg("--data")
        .arg(data_dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn almanac server");
    finish(child, timeout, "almanac server")
}

/// A temporary directory with a `data` path inside for one server.
pub struct Scratch {
    pub dir: TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("almanac-test-")
                .tempdir()
                .expect("create a temporary directory"),
        }
    }

    /// Returns a path inside the scratch directory; the server creates it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// What a finished process printed and how it ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Returns the exit code, and panics if a signal ended the process.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("the process was killed by a signal: {self}"))
    }

    /// Parses each stdout line as JSON, as `--output json` prints them.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("stdout line {line:?} is not JSON: {error}"))
            })
            .collect()
    }

    /// Returns the command replies among the JSON lines, leaving out the
    /// lines the REPL prints between them: pushed notifications and
    /// `switched_node` when the client reconnects, which a slow reply can
    /// cause even with one node.
    pub fn replies(&self) -> Vec<Value> {
        self.json_lines()
            .into_iter()
            .filter(|line| line.get("command").is_some())
            .collect()
    }

    /// Panics with the whole output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Finished {
        assert_eq!(self.status.code(), Some(code), "unexpected exit: {self}");
        self
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Waits for `child` (with piped stdout and stderr) within `timeout`.
fn finish(mut child: Child, timeout: Duration, what: &str) -> Finished {
    let stdout = collect(child.stdout.take().expect("piped stdout"));
    let stderr = collect(child.stderr.take().expect("piped stderr"));
    let status = wait_with_deadline(&mut child, timeout);
    let finished = Finished {
        status: status.unwrap_or_else(|| child.wait().expect("reap")),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    if status.is_none() {
        panic!("{what} did not finish within {timeout:?}; it was killed: {finished}");
    }
    finished
}

/// Runs a scripted REPL against `cluster` with `script` on its stdin, the
/// fixed reference time [`NOW`], zone UTC, and `extra` flags.
pub fn repl(cluster: &str, script: &str, extra: &[&str]) -> Finished {
    run_with_stdin(repl_command(cluster, extra), script, "almanac repl")
}

/// Runs `almanac ARGS` with `stdin` piped in.
pub fn almanac(args: &[&str], stdin: &str) -> Finished {
    let mut command = Command::new(ALMANAC);
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("ALMANAC_CLUSTER");
    run_with_stdin(command, stdin, &format!("almanac {}", args.join(" ")))
}

/// Runs `command` with `stdin` piped in and waits for it within
/// [`SCRIPT_TIMEOUT`].
fn run_with_stdin(mut command: Command, stdin: &str, what: &str) -> Finished {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot spawn {what}: {error}"));
    let mut pipe = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_owned();
    // A thread writes the input, so a process that stops early (closing its
    // stdin) cannot block the test on a full pipe.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(stdin.as_bytes());
    });
    let finished = finish(child, SCRIPT_TIMEOUT, what);
    let _ = writer.join();
    finished
}

/// Like [`repl`] with `--output json`: panics unless it exits 0 and returns
/// the command replies.
pub fn repl_json(cluster: &str, script: &str) -> Vec<Value> {
    let finished = repl(cluster, script, &["--output", "json"]);
    finished.expect_code(0);
    finished.replies()
}

fn repl_command(cluster: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(ALMANAC);
    command
        .arg("repl")
        .arg("--cluster")
        .arg(cluster)
        .arg("--now")
        .arg(NOW)
        .arg("--tz")
        .arg("UTC")
        .args(extra)
        .env("NO_COLOR", "1")
        .env_remove("ALMANAC_CLUSTER");
    command
}

/// Returns the script lines that log `user` in with `password`.
pub fn login(user: &str, password: &str) -> String {
    format!("login {user}\n{password}\n")
}

/// Returns the script lines that register `user` with `password`.
/// Runs `commands` as `user` with `--keep-going --output json` and returns
/// the replies after the login's.
pub fn run_as<S: AsRef<str>>(
    server: &Server,
    user: &str,
    password: &str,
    commands: &[S],
) -> Vec<Value> {
    let lines: Vec<&str> = commands.iter().map(AsRef::as_ref).collect();
    let script = format!("{}{}\n", login(user, password), lines.join("\n"));
    let finished = repl(
        &server.cluster(),
        &script,
        &["--keep-going", "--output", "json"],
    );
    let mut replies = finished.replies();
    assert_eq!(
        replies.len(),
        commands.len() + 1,
        "one reply per command: {finished}"
    );
    assert_eq!(replies[0]["ok"], true, "login failed: {}", replies[0]);
    replies.remove(0);
    replies
}

pub fn register(user: &str, password: &str) -> String {
    format!("register {user}\n{password}\n")
}

/// A scripted REPL whose stdin stays open, so it keeps running and prints
/// live notifications as they arrive. Dropping it kills and reaps it.
pub struct LiveRepl {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line read so far, for failure messages.
    pub seen: Vec<String>,
}

impl LiveRepl {
    /// Starts a REPL against `cluster` with `extra` flags.
    pub fn start(cluster: &str, extra: &[&str]) -> LiveRepl {
        let mut child = repl_command(cluster, extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn almanac repl");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        LiveRepl {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Writes `text` (one or more lines) to the REPL's stdin.
    pub fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(text.as_bytes()).expect("write to the REPL");
        stdin.flush().expect("flush the REPL's stdin");
    }

    /// Reads stdout until a line satisfies `predicate` and returns it, or
    /// panics with everything read once `timeout` passes.
    pub fn expect_line(&mut self, timeout: Duration, predicate: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if predicate(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no matching line within {timeout:?}; the REPL printed:\n{}",
                        self.seen.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the REPL closed its stdout; it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Collects the lines that arrive within `window`, for checking that
    /// nothing more is printed.
    pub fn lines_within(&mut self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut lines = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line.clone());
            lines.push(line);
        }
        lines
    }

    /// Closes stdin and waits for the REPL to exit within `timeout`.
    pub fn finish(mut self, timeout: Duration) -> ExitStatus {
        drop(self.stdin.take());
        wait_with_deadline(&mut self.child, timeout).unwrap_or_else(|| {
            panic!("the REPL did not exit within {timeout:?} after end of input")
        })
    }
}

impl Drop for LiveRepl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
