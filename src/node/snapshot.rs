//! The driver's snapshot work: taking a snapshot and compacting the log,
//! answering a peer's chunk reads, and fetching and installing a peer's
//! snapshot.

use std::rc::Rc;

use tracing::{info, warn};

use super::driver::Driver;
use crate::replication::{Output, SnapshotFetch};
use crate::snapshot::{reply_to_read, ChunkRef, Incoming, Progress, Snapshot, SnapshotError};
use crate::wal::{Disk, WalError};

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

impl<D: Disk + Clone> Driver<D> {
    /// Takes a snapshot at the commit number when the policy says one is
    /// due, then compacts the replica's log and deletes the segments before
    /// the older kept snapshot.
    ///
    /// NOTE: the snapshot is encoded and written inside the driver loop, so
    /// the node pauses for that time (measured on the benchmark page).
    pub(super) fn take_snapshot_if_due(&mut self) -> Result<(), WalError> {
        // The state machine holds the applied ops, which trail the commit
        // number while this node's own fdatasync runs.
        let commit = self.applied_op;
        let op_base = self.service.replica.borrow().op_base();
        let ops = commit - op_base;
        let due = ops >= self.policy.every_ops
            || (ops > 0 && self.log_bytes_since_snapshot >= self.policy.every_log_bytes);
        if !due {
            return Ok(());
        }
        let bytes = Snapshot::encode(commit, &self.service.calendar.borrow());
        self.snapshots.write(&bytes).map_err(into_wal_error)?;
        self.service.replica.borrow_mut().compact(commit);
        self.log_bytes_since_snapshot = 0;
        self.serving = Some((commit, Rc::new(bytes)));

        let kept = self.snapshots.list().map_err(into_wal_error)?;
        let oldest = kept.first().copied().unwrap_or(commit);
        let removed = self.wal.remove_segments_before(oldest + 1)?;
        info!(
            node = self.service.replica_id + 1,
            op = commit,
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
        *self.service.calendar.borrow_mut() = snapshot.calendar;
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
