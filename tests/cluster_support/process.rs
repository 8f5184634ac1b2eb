//! Bounded waits on child processes.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often a wait polls a child or the cluster.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Returns a command that runs the `almanac` binary cargo built for these
/// tests.
pub fn almanac() -> Command {
    Command::new(env!("CARGO_BIN_EXE_almanac"))
}

/// Waits up to `timeout` for `child` to exit. On a timeout the child is
/// killed and reaped, and None is returned.
pub fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Err(error) => panic!("waiting for child {} failed: {error}", child.id()),
        }
    }
}

/// The result of a command run to its end.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` with no input and waits up to `timeout` for it, reading
/// its output on threads so that a full pipe cannot block it.
///
/// # Panics
///
/// Panics if the command cannot start or outlives `timeout`.
pub fn run_to_end(mut command: Command, timeout: Duration) -> Finished {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {description} failed: {error}"));
    let stdout = read_on_thread(child.stdout.take().expect("stdout is piped"));
    let stderr = read_on_thread(child.stderr.take().expect("stderr is piped"));
    let status = wait_with_deadline(&mut child, timeout);
    let stdout = stdout.join().expect("the stdout reader does not panic");
    let stderr = stderr.join().expect("the stderr reader does not panic");
    let Some(status) = status else {
        panic!("{description} did not exit within {timeout:?}; killed it. stderr:\n{stderr}");
    };
    Finished {
        status,
        stdout,
        stderr,
    }
}

fn read_on_thread(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}
