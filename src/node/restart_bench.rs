//! The restart benchmark behind `almanac bench --restart`. It builds a data
//! directory with many committed ops the way a node does (log appends,
//! snapshots by the policy, compaction). Then it times the node's real
//! startup path on it and reports the disk use along the way.
//!
//! The ops are appended in this process, not sent over the network, because
//! the benchmark measures restart time and disk use, not write throughput.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::config::SnapshotPolicy;
use super::driver::{self, store_meta, MetaRecord, ReplicaSettings, StartMode, META_FILE};
use super::host::Host;
use super::service::LogEntry;
use crate::calendar::{Calendar, Command, EventDraft, Request, Visibility};
use crate::snapshot::{Snapshot, SnapshotStore};
use crate::wal::{Disk, StdDisk, Wal, WalOptions};

/// Users that take turns scheduling events.
const USERS: u64 = 100;

/// Events alive at once: each schedule after the first this many also
/// deletes the oldest event, so the state stays the size of a busy
/// community calendar instead of growing with the op count.
const LIVE_EVENTS: u64 = 5_000;

/// Ops between two log syncs, standing in for the node's group commit.
const SYNC_EVERY_OPS: u64 = 1_000;

/// 2027-01-04 00:00 UTC in minutes, the first event's start.
const FIRST_START_MINUTE: i64 = 29_983_680;

/// Settings of one run.
#[derive(Clone, Debug)]
pub struct RestartBenchOptions {
    /// Committed ops to write before the restart.
    pub ops: u64,
    /// An empty or missing directory for the node's data.
    pub dir: PathBuf,
    pub policy: SnapshotPolicy,
}

/// The measurements of one run.
#[derive(Clone, Debug, Serialize)]
pub struct RestartBenchReport {
    pub ops: u64,
    pub write_seconds: f64,
    /// Time of the node's startup on the directory: load the newest
    /// snapshot and replay the log after it.
    pub restart_seconds: f64,
    pub snapshot_op: u64,
    pub replayed_ops: u64,
    pub snapshot_bytes: u64,
    /// The largest total size of the directory, checked after each snapshot.
    pub disk_bytes_max: u64,
    pub disk_bytes_end: u64,
    pub segments_end: usize,
    /// Events in the state at the end, to show the workload was applied.
    pub events_end: usize,
}

impl RestartBenchReport {
    /// Formats the report as one line for people.
    pub fn summary(&self) -> String {
        format!(
            "{} ops: restart {:.2} s (snapshot at op {}, {} bytes, then {} ops replayed); \
             disk max {} MiB, at the end {} MiB in {} segments; writing took {:.1} s",
            self.ops,
            self.restart_seconds,
            self.snapshot_op,
            self.snapshot_bytes,
            self.replayed_ops,
            self.disk_bytes_max >> 20,
            self.disk_bytes_end >> 20,
            self.segments_end,
            self.write_seconds
        )
    }
}

fn host_of(event: u64) -> String {
    format!("user{}", (event - 1) % USERS)
}

fn schedule(event: u64) -> Command {
    Command::Schedule {
        caller: host_of(event),
        draft: EventDraft {
            title: format!("event {event}"),
            description: "weekly planning of the garden group".into(),
            // Live events never overlap, and the slots repeat far below the
            // latest allowed start.
            start: FIRST_START_MINUTE + ((event % 100_000) as i64) * 60,
            zone: "Europe/Paris".into(),
            duration_minutes: 45,
            visibility: Visibility::Private { guests: Vec::new() },
            recurrence: None,
            timing: crate::calendar::types::Timing::Zoned,
        },
    }
}

/// Returns the request of the `index`-th op (0-based).
fn request(index: u64) -> Request {
    let command = if index < USERS {
        Command::Register {
            username: format!("user{index}"),
            password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$benchsalt${index}"),
        }
    } else {
        // First LIVE_EVENTS schedules, then a schedule and a delete of the
        // oldest event in turn. Event ids count schedules from 1.
        let step = index - USERS;
        if step < LIVE_EVENTS {
            schedule(step + 1)
        } else if (step - LIVE_EVENTS).is_multiple_of(2) {
            schedule(LIVE_EVENTS + (step - LIVE_EVENTS) / 2 + 1)
        } else {
            let old = (step - LIVE_EVENTS) / 2 + 1;
            Command::Delete {
                caller: host_of(old),
                event_id: old,
            }
        }
    };
    Request {
        client_id: 1,
        seq: index + 1,
        now_ms: 1_800_000_000_000 + index as i64 * 1000,
        command,
    }
}

fn disk_bytes(dir: &Path) -> Result<u64, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|error| format!("listing {}: {error}", dir.display()))?;
    let mut total = 0;
    for entry in entries {
        let entry = entry.map_err(|error| format!("listing {}: {error}", dir.display()))?;
        total += entry.metadata().map(|meta| meta.len()).unwrap_or(0);
    }
    Ok(total)
}

/// Writes the ops, restarts the node on the directory and reports.
pub fn run(options: RestartBenchOptions) -> Result<RestartBenchReport, String> {
    let dir = &options.dir;
    StdDisk
        .create_dir_all(dir)
        .map_err(|error| format!("creating {}: {error}", dir.display()))?;
    if std::fs::read_dir(dir)
        .map_err(|error| error.to_string())?
        .next()
        .is_some()
    {
        return Err(format!(
            "{} is not empty; give a new directory",
            dir.display()
        ));
    }
    let text = |error: &dyn std::fmt::Display| error.to_string();
    let started = Instant::now();
    let (mut wal, _) = Wal::open(StdDisk, dir, WalOptions::default()).map_err(|e| text(&e))?;
    let store = SnapshotStore::new(StdDisk, dir);
    let mut calendar = Calendar::new();
    let mut snapshot_op = 0;
    let mut disk_bytes_max = 0;
    for op in 1..=options.ops {
        let request = request(op - 1);
        let entry = LogEntry {
            view: 0,
            request: request.encode(),
        };
        wal.append(op, &entry.encode()).map_err(|e| text(&e))?;
        calendar.apply(&request);
        if op % SYNC_EVERY_OPS == 0 {
            wal.sync().map_err(|e| text(&e))?;
        }
        if op - snapshot_op >= options.policy.every_ops {
            wal.sync().map_err(|e| text(&e))?;
            store
                .write(&Snapshot::encode(op, &calendar))
                .map_err(|e| text(&e))?;
            snapshot_op = op;
            let oldest = store.list().map_err(|e| text(&e))?[0];
            wal.remove_segments_before(oldest + 1)
                .map_err(|e| text(&e))?;
            disk_bytes_max = disk_bytes_max.max(disk_bytes(dir)?);
        }
    }
    wal.sync().map_err(|e| text(&e))?;
    let segments_end = wal.segment_count();
    drop(wal);
    let meta = MetaRecord {
        view: 0,
        log_view: 0,
        commit: options.ops,
    };
    store_meta(&StdDisk, &dir.join(META_FILE), meta).map_err(|e| text(&e))?;
    let write_seconds = started.elapsed().as_secs_f64();
    let disk_bytes_end = disk_bytes(dir)?;

    let settings = ReplicaSettings {
        replica_count: 1,
        replica_id: 0,
        client_addresses: vec![String::new()],
        snapshot: options.policy,
    };
    let restart = Instant::now();
    let (service, _driver, _inbound) = driver::open(
        settings,
        StdDisk,
        dir,
        StartMode::Rejoin,
        Host::simulated(1, 0),
    )
    .map_err(|e| text(&e))?;
    let restart_seconds = restart.elapsed().as_secs_f64();
    if service.calendar().digest() != calendar.digest() {
        return Err("the restarted node's state differs from the state written".into());
    }
    let events_end = service.calendar().event_count();
    let snapshot_bytes = std::fs::metadata(store.path(snapshot_op)).map_or(0, |meta| meta.len());
    Ok(RestartBenchReport {
        ops: options.ops,
        write_seconds,
        restart_seconds,
        snapshot_op: service.snapshot_op(),
        replayed_ops: options.ops - service.snapshot_op(),
        snapshot_bytes,
        disk_bytes_max: disk_bytes_max.max(disk_bytes_end),
        disk_bytes_end,
        segments_end,
        events_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_bench_small_run() {
        let dir = tempfile::tempdir().unwrap();
        let options = RestartBenchOptions {
            ops: 2_500,
            dir: dir.path().join("node"),
            policy: SnapshotPolicy {
                every_ops: 1_000,
                ..SnapshotPolicy::default()
            },
        };
        let report = run(options).unwrap();
        assert_eq!(report.snapshot_op, 2_000);
        assert_eq!(report.replayed_ops, 500);
        assert!(report.snapshot_bytes > 0);
        assert_eq!(report.events_end, 2_400, "schedules were rejected");
        assert!(
            report.summary().contains("2500 ops"),
            "{}",
            report.summary()
        );
    }

    #[test]
    fn workload_deletes_oldest_events() {
        let first_delete = USERS + LIVE_EVENTS + 1;
        assert!(matches!(
            request(first_delete).command,
            Command::Delete { event_id: 1, .. }
        ));
        assert!(matches!(
            request(first_delete - 1).command,
            Command::Schedule { .. }
        ));
    }
}
