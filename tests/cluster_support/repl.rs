//! A scripted `almanac repl` process: the test writes one command per line
//! to its stdin and reads its `--output json` replies line by line.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::process::{almanac, wait_with_deadline};

/// The password of every test user; the server requires at least 8
/// characters.
pub const PASSWORD: &str = "correct-horse-battery";

/// Maximum wait for one reply. The client gives up on an operation after
/// 20 s across retries, and the margin covers a loaded machine.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(35);

/// Maximum wait for the REPL to exit once its input is closed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// "Now" for date expressions, so that every run schedules the same instants.
const NOW: &str = "2027-01-04T09:00:00Z";

/// One REPL process with its stdin held open by the test.
pub struct Repl {
    child: Child,
    /// None once the input is closed.
    stdin: Option<ChildStdin>,
    /// stdout lines, read on a thread. The channel disconnects when the
    /// output ends.
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// Pushed notifications (the `notification` object of each line), in
    /// the order printed.
    pub notifications: Vec<Value>,
    /// Nodes the client announced switching to.
    pub switches: Vec<String>,
}

impl Repl {
    /// Starts `almanac repl --cluster ADDRESSES --output json` in UTC with a
    /// fixed "now", plus `extra` flags such as `--keep-going`.
    pub fn spawn(addresses: &str, extra: &[&str]) -> Repl {
        let mut child = almanac()
            .args(["repl", "--output", "json", "--tz", "UTC", "--now", NOW])
            .args(["--cluster", addresses])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting the REPL failed: {error}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(count) = pipe.read(&mut buffer) {
                if count == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buffer[..count]);
                sink.lock().expect("stderr buffer").push_str(&text);
            }
        });
        Repl {
            child,
            stdin,
            lines,
            stderr,
            notifications: Vec::new(),
            switches: Vec::new(),
        }
    }

    /// Everything the REPL wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Writes one line to the REPL's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the REPL input is still open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|error| {
                panic!(
                    "writing {line:?} to the REPL failed: {error}; stderr:\n{}",
                    self.stderr()
                )
            });
    }

    /// Sends `line` and returns its reply with the time it took.
    pub fn timed(&mut self, line: &str) -> (Value, Duration) {
        let started = Instant::now();
        self.send(line);
        let reply = self.reply(REPLY_TIMEOUT);
        (reply, started.elapsed())
    }

    /// Sends `line` and returns its reply.
    pub fn command(&mut self, line: &str) -> Value {
        self.timed(line).0
    }

    /// Sends `line` and returns its reply, which must be ok.
    pub fn ok(&mut self, line: &str) -> Value {
        let reply = self.command(line);
        assert_eq!(
            reply["ok"],
            true,
            "{line:?} failed: {reply}; stderr:\n{}",
            self.stderr()
        );
        reply
    }

    /// Registers `user` with [`PASSWORD`], which also logs in.
    pub fn register(&mut self, user: &str) -> Value {
        self.send(&format!("register {user}"));
        self.ok(PASSWORD)
    }

    /// Logs in as `user` with [`PASSWORD`].
    pub fn login(&mut self, user: &str) -> Value {
        self.send(&format!("login {user}"));
        self.ok(PASSWORD)
    }

    /// Reads up to the next command reply, setting notification and
    /// node-switch lines aside.
    ///
    /// # Panics
    ///
    /// Panics if none arrives within `timeout` or the output ends.
    pub fn reply(&mut self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(reply) = self.sort_line(&line) {
                        return reply;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no reply from the REPL within {timeout:?}; stderr:\n{}",
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the REPL output ended before a reply; stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    /// Reads output until at least `count` notifications have arrived or
    /// `timeout` passes, and then for `settle` more, so that a notification
    /// printed twice shows up. Returns the notifications seen.
    pub fn wait_notifications(
        &mut self,
        count: usize,
        timeout: Duration,
        settle: Duration,
    ) -> &[Value] {
        let deadline = Instant::now() + timeout;
        while self.notifications.len() < count && self.read_until(deadline) {}
        let settled = Instant::now() + settle;
        while self.read_until(settled) {}
        &self.notifications
    }

    /// Reads one line if it comes before `deadline`. Returns false when
    /// none did.
    fn read_until(&mut self, deadline: Instant) -> bool {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(remaining) {
            Ok(line) => {
                if let Some(reply) = self.sort_line(&line) {
                    panic!("unexpected command reply while waiting for notifications: {reply}");
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Records a notification or node switch, and returns any other line
    /// as a reply.
    fn sort_line(&mut self, line: &str) -> Option<Value> {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|error| {
            panic!("the REPL printed a line that is not JSON ({error}): {line}")
        });
        if let Some(notification) = value.get("notification") {
            self.notifications.push(notification.clone());
            return None;
        }
        if let Some(address) = value.get("switched_node") {
            self.switches
                .push(address.as_str().unwrap_or_default().to_owned());
            return None;
        }
        Some(value)
    }

    /// Closes the REPL's input and waits for it to exit.
    ///
    /// # Panics
    ///
    /// Panics if it does not exit within 10 s (it is then killed).
    pub fn finish(mut self) -> ExitStatus {
        self.stdin = None;
        match wait_with_deadline(&mut self.child, EXIT_TIMEOUT) {
            Some(status) => status,
            None => panic!(
                "the REPL did not exit within {EXIT_TIMEOUT:?} of closing its input; stderr:\n{}",
                self.stderr()
            ),
        }
    }
}

impl Drop for Repl {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
