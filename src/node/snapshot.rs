//! The driver's snapshot work: taking a snapshot and compacting the log,
//! answering a peer's chunk reads, and fetching and installing a peer's
//! snapshot.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::driver::Driver;
use crate::node::config::SNAPSHOT_EVERY_LOG_BYTES_MAX;
use crate::replication::{Output, SnapshotFetch};
use crate::snapshot::{
    reply_to_read, ChunkRef, Incoming, Progress, Snapshot, SnapshotError, SnapshotStore,
};
use crate::wal::{Disk, StdDisk, WalError};

/// Converts a snapshot failure into the log failure that stops the node.
/// Only disk failures reach here: the driver writes files it encoded itself,
/// so an invalid one is a bug.
fn into_wal_error(error: SnapshotError) -> WalError {
    match error {
        SnapshotError::Io {
            action,
            path,
            source,
        } => WalError::Io {
            action,
            path,
            offset: None,
            source,
        },
        SnapshotError::Invalid { path, reason } => {
            panic!(
                "the node encoded an invalid snapshot {}: {reason}",
                path.display()
            )
        }
    }
}

fn io_failure(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> WalError {
    let path = path.to_path_buf();
    move |source| WalError::Io {
        action,
        path,
        offset: None,
        source,
    }
}

/// A snapshot the node started.
pub(super) struct SnapshotStart {
    /// The op the snapshot covers.
    op: u64,
    /// The log bytes counted towards the next snapshot when this one
    /// started, which the snapshot covers once it is durable.
    log_bytes: u64,
    /// When the node began encoding the state, for the log line.
    at: Instant,
}

/// The state being encoded on a blocking thread, from a reference to the
/// state machine of its own. The driver goes on applying to a copy that
/// shares every unchanged part of the state with it.
pub(super) struct SnapshotEncode {
    start: SnapshotStart,
    disk: StdDisk,
    task: tokio::task::JoinHandle<Vec<u8>>,
}

/// A snapshot file being written on a blocking thread.
pub(super) struct SnapshotWrite {
    start: SnapshotStart,
    task: tokio::task::JoinHandle<Result<Vec<u8>, SnapshotError>>,
}

/// Waits for the encoding in flight and returns it with the encoded state.
/// Pends forever when none runs, so it can sit in a `select!` beside others.
pub(super) async fn snapshot_encoded(
    in_flight: &mut Option<SnapshotEncode>,
) -> (SnapshotEncode, Vec<u8>) {
    let Some(encode) = in_flight.as_mut() else {
        return std::future::pending().await;
    };
    let body = match (&mut encode.task).await {
        Ok(body) => body,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("the task encoding a snapshot was cancelled: {error}"),
    };
    let encode = in_flight.take().expect("the encoding was in flight");
    (encode, body)
}

/// Waits for the snapshot write in flight and returns it with its result.
/// Pends forever when none runs, so it can sit in a `select!` beside others.
pub(super) async fn snapshot_written(
    in_flight: &mut Option<SnapshotWrite>,
) -> (SnapshotStart, Result<Vec<u8>, SnapshotError>) {
    let Some(write) = in_flight.as_mut() else {
        return std::future::pending().await;
    };
    let result = match (&mut write.task).await {
        Ok(result) => result,
        Err(error) => Err(SnapshotError::Io {
            action: "write",
            path: std::path::PathBuf::from("(snapshot)"),
            source: std::io::Error::other(format!("the snapshot task failed: {error}")),
        }),
    };
    let write = in_flight.take().expect("the snapshot write was in flight");
    (write.start, result)
}

/// Returns whether the ops after `last` up to `op` cross a snapshot point
/// of node `replica_id` of `replica_count`. The points are `every_ops`
/// apart, and each node's are shifted by its share of that interval, so
/// that the nodes of a cluster do not all encode their state at the same
/// op: the encoding takes a core for up to a second at a million events,
/// which the nodes of one machine would otherwise all need at once.
fn crosses_snapshot_point(
    last: u64,
    op: u64,
    every_ops: u64,
    replica_id: u64,
    replica_count: u64,
) -> bool {
    let every = every_ops.max(1);
    let shift = every / replica_count.max(1) * replica_id;
    (op + shift) / every > (last + shift) / every
}

/// Frames the encoded state `body` after op `op` as a snapshot file and
/// stores it durably, returning the file's bytes.
fn write_file<D: Disk>(
    store: &SnapshotStore<D>,
    op: u64,
    body: &[u8],
) -> Result<Vec<u8>, SnapshotError> {
    let bytes = Snapshot::frame(op, body);
    store.put(&bytes)?;
    Ok(bytes)
}

impl<D: Disk + Clone> Driver<D> {
    /// Starts a snapshot at the applied op when the policy makes one due.
    ///
    /// A blocking thread encodes the state from a reference of its own, and
    /// then digests and writes the file, while the node goes on serving and
    /// applying: the state's maps are persistent trees, so the first op
    /// applied meanwhile copies only the top of the state and then the
    /// paths it changes (see `Driver::apply_commit`). Once the file is durable,
    /// [`Driver::finish_snapshot`] compacts the log. A disk that cannot be
    /// used from another thread (the simulation's) does all of it here.
    pub(super) async fn take_snapshot_if_due(&mut self) -> Result<(), WalError> {
        if self.snapshot_encoding.is_some() || self.snapshot_in_flight.is_some() {
            // A view change sends the whole log after the last durable
            // snapshot in one message, so the log may not outgrow the bound
            // that message was sized for while a slow disk writes.
            if self.log_bytes_since_snapshot >= SNAPSHOT_EVERY_LOG_BYTES_MAX {
                self.wait_for_snapshot().await?;
            }
            return Ok(());
        }
        // The state machine holds the applied ops, which trail the commit
        // number while this node's own fdatasync runs.
        let op = self.applied_op;
        let op_count_due = crosses_snapshot_point(
            self.last_snapshot_op,
            op,
            self.policy.every_ops,
            u64::from(self.service.replica_id),
            self.replica_count,
        );
        let due = op_count_due
            || (op > self.last_snapshot_op
                && self.log_bytes_since_snapshot >= self.policy.every_log_bytes);
        if !due {
            return Ok(());
        }
        let start = SnapshotStart {
            op,
            log_bytes: self.log_bytes_since_snapshot,
            at: Instant::now(),
        };
        self.last_snapshot_op = op;
        match self.disk.detached_disk() {
            Some(disk) => {
                let calendar = Arc::clone(&self.service.calendar.borrow());
                let task = tokio::task::spawn_blocking(move || calendar.encode());
                self.snapshot_encoding = Some(SnapshotEncode { start, disk, task });
                Ok(())
            }
            None => {
                let body = self.service.calendar.borrow().encode();
                let written = write_file(&self.snapshots, op, &body);
                self.finish_snapshot(start, written)
            }
        }
    }

    /// Hands the encoded state to a blocking thread that digests and writes
    /// the file.
    pub(super) fn write_encoded(&mut self, encode: SnapshotEncode, body: Vec<u8>) {
        let SnapshotEncode { start, disk, .. } = encode;
        let store = SnapshotStore::new(disk, &self.dir);
        let op = start.op;
        let task = tokio::task::spawn_blocking(move || write_file(&store, op, &body));
        self.snapshot_in_flight = Some(SnapshotWrite { start, task });
    }

    /// Waits for the encoding in flight, if any, and starts its write.
    pub(super) async fn wait_for_encoding(&mut self) {
        if self.snapshot_encoding.is_some() {
            let (encode, body) = snapshot_encoded(&mut self.snapshot_encoding).await;
            self.write_encoded(encode, body);
        }
    }

    /// Waits for the snapshot in flight, if any, to be encoded and written,
    /// and finishes it.
    pub(super) async fn wait_for_snapshot(&mut self) -> Result<(), WalError> {
        self.wait_for_encoding().await;
        if self.snapshot_in_flight.is_none() {
            return Ok(());
        }
        let (start, result) = snapshot_written(&mut self.snapshot_in_flight).await;
        self.finish_snapshot(start, result)
    }

    /// Prunes the snapshot files once a new one is durable, compacts the
    /// replica's log up to it and deletes the log segments before the older
    /// of the two kept snapshots.
    ///
    /// NOTE: the replica keeps no log before its newest snapshot, so a
    /// backup whose commit number trails it fetches the whole snapshot
    /// even when it lacks a few ops. Keeping more would grow every view
    /// change, which carries the whole log after the snapshot: with two
    /// intervals kept, failover after 190,000 ops took 1.5 s instead of
    /// 0.25 s.
    pub(super) fn finish_snapshot(
        &mut self,
        start: SnapshotStart,
        written: Result<Vec<u8>, SnapshotError>,
    ) -> Result<(), WalError> {
        let bytes = written.map_err(into_wal_error)?;
        let op = start.op;
        self.snapshots.prune().map_err(into_wal_error)?;
        self.service.replica.borrow_mut().compact(op);
        self.log_bytes_since_snapshot = self
            .log_bytes_since_snapshot
            .saturating_sub(start.log_bytes);
        let size = bytes.len();
        self.serving = Some((op, Rc::new(bytes)));

        let kept = self.snapshots.list().map_err(into_wal_error)?;
        let oldest = kept.first().copied().unwrap_or(op);
        let removed = self.wal.remove_segments_before(oldest + 1)?;
        info!(
            node = self.service.replica_id + 1,
            op,
            bytes = size,
            millis = start.at.elapsed().as_millis() as u64,
            segments_removed = removed,
            log_first_op = self.wal.first_op(),
            "took a snapshot and compacted the log"
        );
        Ok(())
    }

    /// Sends a peer the chunk of the snapshot at `op` from `offset`, or an
    /// empty chunk when this node no longer has that snapshot.
    pub(super) fn reply_to_snapshot_read(
        &mut self,
        to: crate::replication::ReplicaId,
        op: u64,
        offset: u64,
    ) -> Result<(), WalError> {
        let cached = self
            .serving
            .as_ref()
            .filter(|(cached_op, _)| *cached_op == op)
            .map(|(_, bytes)| bytes.clone());
        let bytes = match cached {
            Some(bytes) => Some(bytes),
            None => {
                let read = self.snapshots.read(op).map_err(into_wal_error)?;
                let bytes = read.map(Rc::new);
                if let Some(bytes) = &bytes {
                    self.serving = Some((op, bytes.clone()));
                }
                bytes
            }
        };
        let view = self.service.replica.borrow().view();
        let chunk = reply_to_read(bytes.as_deref().map(Vec::as_slice), view, op, offset);
        self.send(vec![(to, chunk)]);
        Ok(())
    }

    /// Starts fetching the snapshot the replica asked for, unless that
    /// transfer already runs.
    pub(super) fn start_fetch(&mut self, fetch: SnapshotFetch) -> Result<(), WalError> {
        if let Some(incoming) = &mut self.incoming {
            if incoming.op == fetch.op {
                incoming.from = fetch.from;
                return Ok(());
            }
        }
        let view = self.service.replica.borrow().view();
        let (incoming, read) = Incoming::start(&self.disk, &self.dir, fetch.from, fetch.op, view)
            .map_err(io_failure("start a snapshot transfer in", &self.dir))?;
        self.incoming = Some(incoming);
        self.send(vec![(fetch.from, read)]);
        Ok(())
    }

    /// Resends the transfer's read when its answer is overdue.
    pub(super) fn tick_transfer(&mut self) {
        let view = self.service.replica.borrow().view();
        let Some(incoming) = &mut self.incoming else {
            return;
        };
        if let Some(read) = incoming.on_tick(view) {
            let from = incoming.from;
            self.send(vec![(from, read)]);
        }
    }

    /// Writes a received chunk; when the snapshot is complete, installs it
    /// and returns the replica's output.
    pub(super) fn on_snapshot_chunk(
        &mut self,
        chunk: ChunkRef<'_>,
    ) -> Result<Option<Output>, WalError> {
        let view = self.service.replica.borrow().view();
        let Some(incoming) = &mut self.incoming else {
            return Ok(None);
        };
        let progress = incoming
            .on_chunk(&self.disk, chunk, view)
            .map_err(io_failure("write a snapshot chunk in", &self.dir))?;
        match progress {
            Progress::Ignored => Ok(None),
            Progress::Read(read) => {
                self.send(vec![(chunk.from, read)]);
                Ok(None)
            }
            Progress::Abandoned(reason) => {
                warn!(node = self.service.replica_id + 1, peer = chunk.from + 1, op = chunk.op,
                    %reason, "abandoned a snapshot transfer; the next get-state retries");
                self.incoming = None;
                Ok(None)
            }
            Progress::Complete { bytes, snapshot } => {
                self.incoming = None;
                self.completed = Some((bytes, snapshot));
                Ok(None)
            }
        }
    }

    /// Installs a snapshot whose last chunk arrived this round, once the
    /// outputs before it are carried out and the log is durable with no
    /// work waiting on it, because installing replaces the log.
    pub(super) async fn install_completed_snapshot(&mut self) -> Result<(), WalError> {
        let Some((bytes, snapshot)) = self.completed.take() else {
            return Ok(());
        };
        // The node's own snapshot must not compact the log after the
        // install replaced it, nor prune files beside the install's write.
        self.wait_for_snapshot().await?;
        self.drain().await?;
        let output = self.install(&bytes, *snapshot)?;
        self.carry_out(vec![output]).await
    }

    /// Makes a fetched snapshot durable, empties the log after it, loads it
    /// into the state machine and tells the replica.
    fn install(&mut self, bytes: &[u8], snapshot: Snapshot) -> Result<Output, WalError> {
        let op = snapshot.op;
        if !self.service.replica.borrow().wants_snapshot(op) {
            info!(
                node = self.service.replica_id + 1,
                op, "the replica caught up while the snapshot arrived, dropping it"
            );
            return Ok(Output::default());
        }
        self.snapshots.write(bytes).map_err(into_wal_error)?;
        self.wal.restart_after(op)?;
        self.log_bytes_since_snapshot = 0;
        self.last_snapshot_op = op;
        *self.service.calendar.borrow_mut() = Arc::new(snapshot.calendar);
        self.applied_op = op;
        self.service
            .commit_seen
            .set(self.service.commit_seen.get().max(op));
        info!(
            node = self.service.replica_id + 1,
            op, "installed a snapshot fetched from a peer"
        );
        Ok(self.service.replica.borrow_mut().install_snapshot(op))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::driver::{
        self, store_meta, MetaRecord, ReplicaSettings, StartMode, META_FILE,
    };
    use crate::calendar::test_support::Harness;
    use crate::calendar::types::Command;
    use crate::calendar::{Calendar, Request};
    use crate::node::config::SnapshotPolicy;
    use crate::node::host::Host;
    use crate::node::service::LogEntry;
    use crate::replication::Status;
    use crate::snapshot::{Snapshot, SnapshotStore};
    use crate::wal::{StdDisk, Wal, WalOptions};

    /// Returns `count` registration requests and the calendar after each.
    fn requests(count: usize) -> (Vec<Request>, Vec<Calendar>) {
        let mut harness = Harness::new();
        let mut states = vec![harness.calendar.clone()];
        let mut log = Vec::new();
        for i in 0..count {
            let request = harness.request(Command::Register {
                username: format!("user{i:03}"),
                password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${i}"),
            });
            harness.calendar.apply(&request);
            states.push(harness.calendar.clone());
            log.push(request);
        }
        (log, states)
    }

    /// Writes ops `first..=last` of `log` to the WAL in `dir`, starting the
    /// log at `first`.
    fn write_log(dir: &Path, log: &[Request], first: u64, last: u64) {
        let (mut wal, _) = Wal::open(StdDisk, dir, WalOptions::default()).unwrap();
        if first > 1 {
            wal.restart_after(first - 1).unwrap();
        }
        for op in first..=last {
            let entry = LogEntry {
                view: 0,
                request: log[op as usize - 1].encode(),
            };
            wal.append(op, &entry.encode()).unwrap();
        }
        wal.sync().unwrap();
    }

    fn meta(dir: &Path, commit: u64) {
        let record = MetaRecord {
            view: 0,
            log_view: 0,
            commit,
        };
        store_meta(&StdDisk, &dir.join(META_FILE), record).unwrap();
    }

    fn open(dir: &Path) -> Result<driver::Opened<StdDisk>, driver::StartError> {
        let settings = ReplicaSettings {
            replica_count: 3,
            replica_id: 1,
            client_addresses: vec![String::new(); 3],
            snapshot: SnapshotPolicy::default(),
        };
        driver::open(
            settings,
            StdDisk,
            dir,
            StartMode::Rejoin,
            Host::simulated(1, 0),
        )
    }

    /// A one-node cluster writing through the real driver on the real
    /// file system, so that snapshots are encoded and written on blocking
    /// threads while writes go on: each write is applied and acknowledged, the
    /// log is compacted up to the newest of the two kept snapshots, and a
    /// restart on the directory comes back with the same state.
    #[test]
    fn snapshots_on_threads_keep_every_write() {
        const WRITES: u64 = 60;
        let dir = tempfile::tempdir().unwrap();
        let settings = ReplicaSettings {
            replica_count: 1,
            replica_id: 0,
            client_addresses: vec![String::new()],
            snapshot: SnapshotPolicy {
                every_ops: 7,
                every_log_bytes: SnapshotPolicy::default().every_log_bytes,
            },
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let digest = tokio::task::LocalSet::new().block_on(&runtime, async {
            let (service, mut driver, _inbound) = driver::open(
                settings.clone(),
                StdDisk,
                dir.path(),
                StartMode::Init,
                Host::simulated(3, 0),
            )
            .unwrap();
            driver.set_peers(vec![None]);
            let running = tokio::task::spawn_local(driver.run());
            // Six clients writing one at a time each, so that ops keep
            // arriving while a snapshot of the state is being encoded.
            let clients: Vec<_> = (0..6u64)
                .map(|client| {
                    let service = service.clone();
                    tokio::task::spawn_local(async move {
                        for seq in 1..=WRITES / 6 {
                            let command = Command::Register {
                                username: format!("user{client}-{seq:02}"),
                                password_hash: "$argon2id$v=19$m=8,t=1,p=1$test$test".into(),
                            };
                            let answer = service.submit(client + 1, seq, command).await;
                            assert!(answer.is_ok(), "{answer:?}");
                        }
                    })
                })
                .collect();
            for client in clients {
                let finished = tokio::time::timeout(std::time::Duration::from_secs(20), client);
                finished.await.expect("the writes stalled").unwrap();
            }
            assert!(!running.is_finished(), "the driver stopped");
            let store = SnapshotStore::new(StdDisk, dir.path());
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let kept = store.list().unwrap();
                let op_base = service.replica.borrow().op_base();
                if kept.len() == 2
                    && kept.last() >= Some(&(WRITES - 7))
                    && Some(&op_base) == kept.last()
                {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "snapshots {kept:?} with op base {op_base}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert_eq!(service.calendar().user_count(), WRITES as usize);
            running.abort();
            let digest = service.calendar().digest();
            digest
        });
        drop(runtime);

        let (service, _driver, _inbound) = driver::open(
            settings,
            StdDisk,
            dir.path(),
            StartMode::Rejoin,
            Host::simulated(3, 0),
        )
        .unwrap();
        assert_eq!(service.calendar().digest(), digest, "after a restart");
    }

    #[test]
    fn snapshot_points_spread_over_nodes() {
        let points = |replica_id| -> Vec<u64> {
            (1..=300)
                .filter(|&op| super::crosses_snapshot_point(op - 1, op, 100, replica_id, 3))
                .collect()
        };
        assert_eq!(points(0), vec![100, 200, 300]);
        assert_eq!(points(1), vec![67, 167, 267]);
        assert_eq!(points(2), vec![34, 134, 234]);
        // A jump over a point, as a burst of applies makes, counts once.
        assert!(super::crosses_snapshot_point(90, 150, 100, 0, 3));
        assert!(!super::crosses_snapshot_point(100, 199, 100, 0, 3));
        // A single node, and an interval below the node count.
        assert!(super::crosses_snapshot_point(0, 10, 10, 0, 1));
        assert!(super::crosses_snapshot_point(0, 1, 1, 2, 3));
    }

    #[test]
    fn restart_loads_snapshot_then_replays() {
        let dir = tempfile::tempdir().unwrap();
        let (log, states) = requests(30);
        let store = SnapshotStore::new(StdDisk, dir.path());
        store.write(&Snapshot::encode(20, &states[20])).unwrap();
        write_log(dir.path(), &log, 21, 30);
        meta(dir.path(), 28);

        let (service, _driver, _inbound) = open(dir.path()).unwrap();
        let replica = service.replica.borrow();
        assert_eq!(replica.op_base(), 20);
        assert_eq!(replica.op(), 30);
        assert_eq!(replica.commit(), 28);
        assert_eq!(service.calendar.borrow().digest(), states[28].digest());
    }

    #[test]
    fn damaged_snapshot_falls_back_to_older() {
        let dir = tempfile::tempdir().unwrap();
        let (log, states) = requests(30);
        let store = SnapshotStore::new(StdDisk, dir.path());
        store.write(&Snapshot::encode(10, &states[10])).unwrap();
        store.write(&Snapshot::encode(20, &states[20])).unwrap();
        write_log(dir.path(), &log, 11, 30);
        meta(dir.path(), 30);
        let newest = store.path(20);
        let mut bytes = std::fs::read(&newest).unwrap();
        bytes[100] ^= 0x01;
        std::fs::write(&newest, bytes).unwrap();

        let (service, _driver, _inbound) = open(dir.path()).unwrap();
        assert!(!newest.exists(), "the damaged snapshot was kept");
        let replica = service.replica.borrow();
        assert_eq!(
            replica.op_base(),
            10,
            "did not fall back to the older snapshot"
        );
        assert_eq!(replica.commit(), 30);
        assert_eq!(service.calendar.borrow().digest(), states[30].digest());
    }

    #[test]
    fn damaged_snapshot_without_log_recovers_from_peers() {
        let dir = tempfile::tempdir().unwrap();
        let (log, states) = requests(30);
        let store = SnapshotStore::new(StdDisk, dir.path());
        store.write(&Snapshot::encode(20, &states[20])).unwrap();
        write_log(dir.path(), &log, 21, 30);
        meta(dir.path(), 30);
        std::fs::write(store.path(20), b"damaged").unwrap();

        let (service, _driver, _inbound) = open(dir.path()).unwrap();
        let replica = service.replica.borrow();
        assert_eq!(replica.status(), Status::Recovering);
        assert_eq!(replica.op_base(), 0);
        assert!(
            !dir.path().join(META_FILE).exists(),
            "the meta file must go so a crash keeps recovering"
        );
    }

    #[test]
    fn restored_snapshot_without_log_starts() {
        let dir = tempfile::tempdir().unwrap();
        let (_, states) = requests(12);
        let store = SnapshotStore::new(StdDisk, dir.path());
        store.write(&Snapshot::encode(12, &states[12])).unwrap();
        meta(dir.path(), 12);

        let (service, _driver, _inbound) = open(dir.path()).unwrap();
        let replica = service.replica.borrow();
        assert_eq!(replica.status(), Status::Normal);
        assert_eq!(replica.op_base(), 12);
        assert_eq!(replica.op(), 12);
        assert_eq!(service.calendar.borrow().user_count(), 12);
        drop(replica);
        let (wal, _) = Wal::open(StdDisk, dir.path(), WalOptions::default()).unwrap();
        assert_eq!(
            wal.first_op(),
            13,
            "the log must continue after the snapshot"
        );
    }
}
