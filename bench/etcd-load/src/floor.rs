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

/// Writers that sync at once in the shared-disk measurement: the nodes of
/// a three-node cluster on one machine.
const SHARED_DISK_WRITERS: usize = 3;

/// Measured floor, in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FloorReport {
    pub fdatasync_p50_us: u64,
    pub round_trip_p50_us: u64,
    /// One fdatasync plus two loopback round trips.
    pub floor_us: u64,
    /// The median fdatasync while three writers append and sync their own
    /// files in the same directory at once, as three nodes on one disk do.
    /// Not part of the floor; it shows what sharing the disk costs.
    pub shared_disk_fdatasync_p50_us: u64,
}

/// Times `samples` appends with an fdatasync each in a file under `dir`,
/// and `samples` round trips to an echo process it starts and stops.
pub fn measure(dir: &Path, samples: usize) -> Result<FloorReport, String> {
    if samples == 0 {
        return Err("--samples must be at least 1".into());
    }
    let fdatasync_p50_us = time_fdatasync(dir, samples)?;
    let round_trip_p50_us = time_round_trips(samples)?;
    let shared_disk_fdatasync_p50_us = time_shared_fdatasync(dir, samples)?;
    Ok(FloorReport {
        fdatasync_p50_us,
        round_trip_p50_us,
        floor_us: fdatasync_p50_us + 2 * round_trip_p50_us,
        shared_disk_fdatasync_p50_us,
    })
}

fn time_fdatasync(dir: &Path, samples: usize) -> Result<u64, String> {
    let mut timings = append_and_sync(dir, "etcd-load-floor.tmp", samples)?;
    timings.sort_unstable();
    Ok(percentile(&timings, 50.0))
}

/// Times `samples` appends with an fdatasync each on each of
/// [`SHARED_DISK_WRITERS`] threads at once, one file each, and returns the
/// median over all of them.
fn time_shared_fdatasync(dir: &Path, samples: usize) -> Result<u64, String> {
    let results: Vec<Result<Vec<u64>, String>> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..SHARED_DISK_WRITERS)
            .map(|writer| {
                let name = format!("etcd-load-floor-{writer}.tmp");
                scope.spawn(move || append_and_sync(dir, &name, samples))
            })
            .collect();
        writers
            .into_iter()
            .map(|writer| writer.join().expect("a timing thread panicked"))
            .collect()
    });
    let mut timings = Vec::with_capacity(samples * SHARED_DISK_WRITERS);
    for result in results {
        timings.extend(result?);
    }
    timings.sort_unstable();
    Ok(percentile(&timings, 50.0))
}

/// Appends a record and fdatasyncs it `samples` times in the file `name`
/// under `dir`, which it removes afterwards. Returns each sample's time.
fn append_and_sync(dir: &Path, name: &str, samples: usize) -> Result<Vec<u64>, String> {
    let path = dir.join(name);
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
    Ok(timings)
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
    fn shared_timing_removes_its_files() {
        let dir = std::env::temp_dir().join(format!("etcd-load-shared-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        time_shared_fdatasync(&dir, 5).unwrap();
        for writer in 0..SHARED_DISK_WRITERS {
            assert!(!dir.join(format!("etcd-load-floor-{writer}.tmp")).exists());
        }
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn shared_timing_in_missing_dir_fails() {
        let error = time_shared_fdatasync(Path::new("/nonexistent/etcd-load"), 1).unwrap_err();
        assert!(error.contains("/nonexistent/etcd-load"), "{error}");
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
