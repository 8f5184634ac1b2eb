//! The physical floor of one replicated write on this machine: the median
//! `fdatasync` of a small append, and the median loopback round trip between
//! two processes.
//!
//! A replicated write needs at least one client round trip, one round trip
//! from the primary to a backup, and one fsync (the primary's and the
//! backups' run in parallel), so the floor is one fdatasync plus two round
//! trips.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::percentile;

/// Bytes appended before each timed fdatasync: one log record of a 256-byte
/// value with its framing.
const APPEND_BYTES: usize = 300;

/// Bytes sent each way in one timed round trip: a small RPC message.
const MESSAGE_BYTES: usize = 64;

/// How long the echo process serves before it stops by itself, in case the
/// process that started it dies without closing the connection.
const ECHO_LIFETIME: Duration = Duration::from_secs(120);

/// Measured floor, in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FloorReport {
    pub fdatasync_p50_us: u64,
    pub round_trip_p50_us: u64,
    /// One fdatasync plus two loopback round trips.
    pub floor_us: u64,
}

/// Times `samples` appends with an fdatasync each in a file under `dir`,
/// and `samples` round trips to an echo process it starts and stops.
pub fn measure(dir: &Path, samples: usize) -> Result<FloorReport, String> {
    if samples == 0 {
        return Err("--samples must be at least 1".into());
    }
    let fdatasync_p50_us = time_fdatasync(dir, samples)?;
    let round_trip_p50_us = time_round_trips(samples)?;
    Ok(FloorReport {
        fdatasync_p50_us,
        round_trip_p50_us,
        floor_us: fdatasync_p50_us + 2 * round_trip_p50_us,
    })
}

fn time_fdatasync(dir: &Path, samples: usize) -> Result<u64, String> {
    let path = dir.join("etcd-load-floor.tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|error| format!("creating {} failed: {error}", path.display()))?;
    let record = [b'r'; APPEND_BYTES];
    let mut timings = Vec::with_capacity(samples);
    for _ in 0..samples {
        let began = Instant::now();
        file.write_all(&record)
            .and_then(|()| file.sync_data())
            .map_err(|error| format!("appending to {} failed: {error}", path.display()))?;
        timings.push(began.elapsed().as_micros() as u64);
    }
    drop(file);
    std::fs::remove_file(&path)
        .map_err(|error| format!("removing {} failed: {error}", path.display()))?;
    timings.sort_unstable();
    Ok(percentile(&timings, 50.0))
}

fn time_round_trips(samples: usize) -> Result<u64, String> {
    let mut echo = EchoProcess::start()?;
    let result = echo.time(samples);
    echo.stop();
    result
}

/// A child process of this program that echoes what it reads.
struct EchoProcess {
    child: Child,
    port: u16,
}

impl EchoProcess {
    fn start() -> Result<EchoProcess, String> {
        let program = std::env::current_exe()
            .map_err(|error| format!("finding this program's path failed: {error}"))?;
        let mut child = Command::new(program)
            .arg("echo")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|error| format!("starting the echo process failed: {error}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|error| format!("reading the echo process's port failed: {error}"))?;
        let port = line.trim().parse().map_err(|_| {
            format!("the echo process printed {line:?} where its port number was expected")
        })?;
        Ok(EchoProcess { child, port })
    }

    fn time(&mut self, samples: usize) -> Result<u64, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .map_err(|error| format!("connecting to the echo process failed: {error}"))?;
        stream
            .set_nodelay(true)
            .map_err(|error| format!("setting TCP_NODELAY failed: {error}"))?;
        let message = [b'm'; MESSAGE_BYTES];
        let mut reply = [0u8; MESSAGE_BYTES];
        let mut timings = Vec::with_capacity(samples);
        for _ in 0..samples {
            let began = Instant::now();
            stream
                .write_all(&message)
                .and_then(|()| stream.read_exact(&mut reply))
                .map_err(|error| format!("a round trip to the echo process failed: {error}"))?;
            timings.push(began.elapsed().as_micros() as u64);
        }
        timings.sort_unstable();
        Ok(percentile(&timings, 50.0))
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves the echo side: listens on a free loopback port, prints it, and
/// echoes one connection until it closes or [`ECHO_LIFETIME`] passes.
pub fn serve_echo() -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|error| format!("listening on 127.0.0.1 failed: {error}"))?;
    let port = listener
        .local_addr()
        .map_err(|error| format!("reading the listening port failed: {error}"))?
        .port();
    println!("{port}");
    std::io::stdout()
        .flush()
        .map_err(|error| format!("printing the port failed: {error}"))?;
    let (mut stream, _) = listener
        .accept()
        .map_err(|error| format!("accepting the connection failed: {error}"))?;
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(ECHO_LIFETIME)))
        .map_err(|error| format!("configuring the connection failed: {error}"))?;
    let deadline = Instant::now() + ECHO_LIFETIME;
    let mut buffer = [0u8; MESSAGE_BYTES];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(count) => {
                if stream.write_all(&buffer[..count]).is_err() {
                    break;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdatasync_timing_removes_its_file() {
        let dir = std::env::temp_dir().join(format!("etcd-load-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        time_fdatasync(&dir, 5).unwrap();
        assert!(!dir.join("etcd-load-floor.tmp").exists());
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn fdatasync_in_missing_dir_fails() {
        let error = time_fdatasync(Path::new("/nonexistent/etcd-load"), 1).unwrap_err();
        assert!(error.contains("/nonexistent/etcd-load"), "{error}");
    }

    #[test]
    fn measure_rejects_zero_samples() {
        assert!(measure(Path::new("."), 0).is_err());
    }
}
