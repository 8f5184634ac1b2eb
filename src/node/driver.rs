//! The shell around the replica: it feeds the replica messages, ticks,
//! client requests and reads, and carries out each output: persist (log
//! truncation, appends, the view record), then apply commits and answer
//! their callers, then send messages. Nothing leaves the node before the
//! state it depends on is durable.
//!
//! One fdatasync covers every record appended before it started (group
//! commit). A primary syncing a batch runs the fdatasync on a blocking
//! thread and goes on serving meanwhile. A backup, or a primary syncing a
//! single write, runs it on the event loop, which saves two thread switches
//! on the write's path (see [`Driver::start_sync`]). Work that depends on
//! the log waits in a queue until the log is durable through the op it needs: applying a committed entry (so a client
//! is answered only once its write is on this node's disk as well as on f
//! backups'), and every message but the primary's prepares and commit
//! heartbeats. Those two claim nothing about the primary's disk, so the
//! primary sends a prepare before its own fdatasync and the backups sync in
//! parallel with it. Truncations and view records are rare and run
//! synchronously once everything before them is durable.
//!
//! At start the node loads its newest valid snapshot and replays the log
//! after it. Every `every_ops` committed ops (or `every_log_bytes` of log)
//! it takes a new snapshot on blocking threads, applying no op while the
//! state is encoded, then compacts the log up to it and deletes the
//! segments that lie wholly before the older of the two snapshots it keeps
//! (`node::snapshot`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::calendar::{Calendar, Request};
use crate::node::config::SnapshotPolicy;
use crate::node::host::Host;
use crate::node::service::{LogEntry, Service};
use crate::node::snapshot::{snapshot_encoded, snapshot_written, SnapshotEncode, SnapshotWrite};
use crate::replication::{
    self, count_within_bytes, Durable, Entry, Message, Output, ReadRef, Replica, ReplicaId,
    RequestRef, ViewRecord, PREPARE_BYTES_MAX,
};
use crate::rpc::convert::ApiRejection;
use crate::rpc::peer::Inbound;
use crate::snapshot::{Incoming, SnapshotError, SnapshotStore};
use crate::wal::{Disk, MetaFile, SyncStart, SyncTicket, Wal, WalError, WalOptions};

/// Length of one protocol tick.
pub const TICK: Duration = Duration::from_millis(10);
/// Ticks between the primary's heartbeats (40 ms).
pub const HEARTBEAT_TICKS: u64 = 4;
/// Range of the view-change timeout in ticks (120-240 ms): three or more
/// heartbeats must go missing before a backup suspects the primary. The
/// client retries at most 100 ms apart, so a dead primary costs clients
/// about 350 ms at worst: the longest timeout, the view change and one retry
/// pause.
pub const VIEW_CHANGE_TIMEOUT_TICKS: (u64, u64) = (12, 24);
/// Most inbound messages handled in one round before the round's output is
/// persisted and sent, so that one busy peer cannot delay the rest forever.
const ROUND_MESSAGES_MAX: usize = 1024;
/// Queued requests that go out in a prepare at once even while this node's
/// fdatasync runs, so that a burst cannot grow one prepare without bound.
const PREPARE_REQUESTS_MAX: usize = 1024;

/// Returns whether the queued requests fill one prepare, by count or by
/// bytes, so that waiting for more would not grow the batch.
fn prepare_is_full(queued: &[(RequestRef, Vec<u8>)]) -> bool {
    let bytes: usize = queued.iter().map(|(_, payload)| payload.len()).sum();
    queued.len() >= PREPARE_REQUESTS_MAX || bytes >= PREPARE_BYTES_MAX
}

/// Removes the next prepare's requests from the front of `queued`: in
/// order, at most [`PREPARE_REQUESTS_MAX`] of them and at most
/// [`PREPARE_BYTES_MAX`] bytes of payload, but always at least one. The
/// rest stay queued for the next round.
fn take_prepare_batch(queued: &mut Vec<(RequestRef, Vec<u8>)>) -> Vec<(RequestRef, Vec<u8>)> {
    let lengths = queued.iter().map(|(_, payload)| payload.len());
    let count = count_within_bytes(lengths, PREPARE_BYTES_MAX).min(PREPARE_REQUESTS_MAX);
    let rest = queued.split_off(count);
    std::mem::replace(queued, rest)
}

/// How often the commit number is written to the meta file when it moved,
/// so that a restart re-applies committed ops without waiting for a peer.
const COMMIT_RECORD_INTERVAL: Duration = Duration::from_secs(1);

/// Name of the file that contains the view record, beside the log.
pub const META_FILE: &str = "replica.meta";

/// The view record on disk, plus the commit number as last written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MetaRecord {
    pub(crate) view: u64,
    pub(crate) log_view: u64,
    /// A lower bound of the commit number: every op up to it is committed.
    pub(crate) commit: u64,
}

/// Errors that keep a node from starting on its data directory.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(
        "log record {op} in {dir} is not a valid entry: {reason}; the data directory is damaged"
    )]
    BadEntry {
        dir: String,
        op: u64,
        reason: String,
    },
    #[error("the meta file {path} is not a valid record: {reason}")]
    BadMeta { path: String, reason: String },
    #[error(transparent)]
    Replica(#[from] replication::ConfigError),
    #[error("{dir} is not empty, so it cannot be initialised for a new cluster; remove --init to rejoin with it")]
    InitNotEmpty { dir: String },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(
        "the log in {dir} starts at op {first_op} but the newest valid snapshot covers ops up to \
         {op_base}, so ops in between are lost; restore the data directory from a backup"
    )]
    LogGap {
        dir: String,
        first_op: u64,
        op_base: u64,
    },
}

/// The way a node starts on its data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// Use what is on disk. An empty directory means a lost disk: the node
    /// recovers its state from the other nodes before it takes part.
    Rejoin,
    /// Format an empty directory as a member of a brand-new cluster.
    Init,
}

/// Static settings of the replica inside a node.
#[derive(Clone, Debug)]
pub struct ReplicaSettings {
    pub replica_count: usize,
    pub replica_id: ReplicaId,
    pub client_addresses: Vec<String>,
    pub snapshot: SnapshotPolicy,
}

/// The result of [`open`]: the service, its driver, and the sender on which
/// peer links deliver inbound messages.
pub type Opened<D> = (Rc<Service>, Driver<D>, mpsc::UnboundedSender<Inbound>);

/// Opens the data directory, rebuilds the state up to the last known commit
/// and returns the service with the driver that must be spawned next to it.
pub fn open<D: Disk + Clone>(
    settings: ReplicaSettings,
    disk: D,
    dir: &Path,
    mode: StartMode,
    host: Host,
) -> Result<Opened<D>, StartError> {
    let meta_path = dir.join(META_FILE);
    let snapshots = SnapshotStore::new(disk.clone(), dir);
    let (mut wal, recovery) = Wal::open(disk.clone(), dir, WalOptions::default())?;
    let loaded = snapshots.load_newest()?;
    // A damaged file would count as one of the snapshots kept and hold back
    // compaction, and it can never be loaded, so it goes.
    snapshots.remove_rejected(&loaded.rejected)?;
    let (op_base, mut calendar) = match loaded.snapshot {
        Some(snapshot) => (snapshot.op, snapshot.calendar),
        None => (0, Calendar::new()),
    };
    let mut meta = load_meta(&disk, &meta_path)?;
    if wal.first_op() > op_base + 1 {
        // The log after the usable snapshot is gone, typically because the
        // newest snapshot is damaged and the log before it was compacted.
        if settings.replica_count == 1 || mode == StartMode::Init {
            return Err(StartError::LogGap {
                dir: dir.display().to_string(),
                first_op: wal.first_op(),
                op_base,
            });
        }
        warn!(node = settings.replica_id + 1, dir = %dir.display(), first_op = wal.first_op(),
            op_base, "the log does not continue the newest valid snapshot: recovering from the other nodes");
        forget_replica_state(&disk, &meta_path)?;
        meta = None;
        wal.restart_after(op_base)?;
    } else if wal.last_op() < op_base {
        // A snapshot installed from a peer or restored from a backup, whose
        // log restart did not happen yet.
        wal.restart_after(op_base)?;
    }
    let records: Vec<_> = recovery
        .records
        .into_iter()
        .filter(|record| record.op > op_base && record.op <= wal.last_op())
        .collect();
    let entries = decode_entries(dir, &records)?;
    let is_empty = meta.is_none() && entries.is_empty() && op_base == 0;
    let op = op_base + entries.len() as u64;
    let durable = match (mode, meta) {
        (StartMode::Init, _) if !is_empty => {
            return Err(StartError::InitNotEmpty {
                dir: dir.display().to_string(),
            })
        }
        (StartMode::Init, _) => {
            store_meta(
                &disk,
                &meta_path,
                MetaRecord {
                    view: 0,
                    log_view: 0,
                    commit: 0,
                },
            )?;
            info!(node = settings.replica_id + 1, dir = %dir.display(), "initialised an empty data directory for a new cluster");
            Durable::formatted()
        }
        (StartMode::Rejoin, Some(meta)) => {
            // A single node commits each entry once its own copy is durable,
            // so everything in its log is committed.
            let commit = if settings.replica_count == 1 {
                op
            } else {
                meta.commit.clamp(op_base, op)
            };
            Durable {
                view: meta.view,
                log_view: meta.log_view,
                op_base,
                commit,
                entries,
                intact: true,
                restarted: true,
            }
        }
        (StartMode::Rejoin, None) if settings.replica_count == 1 => {
            // A single node has no peer to recover from, so its empty
            // directory can only mean a new cluster.
            store_meta(
                &disk,
                &meta_path,
                MetaRecord {
                    view: 0,
                    log_view: 0,
                    commit: op,
                },
            )?;
            Durable {
                op_base,
                commit: op,
                entries,
                ..Durable::formatted()
            }
        }
        (StartMode::Rejoin, None) => {
            warn!(node = settings.replica_id + 1, dir = %dir.display(), op_base,
                "no replica state on disk: recovering from the other nodes before taking part");
            Durable {
                op_base,
                commit: op_base,
                ..Durable::lost()
            }
        }
    };
    let replay = (durable.commit - durable.op_base) as usize;
    for entry in &durable.entries[..replay] {
        apply_entry(&mut calendar, entry);
    }
    info!(
        node = settings.replica_id + 1,
        view = durable.view,
        op_base = durable.op_base,
        op = durable.op_base + durable.entries.len() as u64,
        commit = durable.commit,
        intact = durable.intact,
        "opened the data directory"
    );
    let last_commit_record = durable.commit;
    let applied_op = durable.commit;
    let config = replication::Config {
        replica_count: settings.replica_count,
        self_id: settings.replica_id,
        heartbeat_ticks: HEARTBEAT_TICKS,
        view_change_timeout_ticks: VIEW_CHANGE_TIMEOUT_TICKS,
        seed: host.seed,
    };
    let replica = Replica::new(config, durable)?;
    let service = Rc::new(Service::new(
        settings.replica_id,
        settings.client_addresses,
        calendar,
        replica,
        host,
    ));
    let (inbound_sender, inbound) = mpsc::unbounded_channel();
    let driver = Driver {
        service: service.clone(),
        disk,
        wal,
        meta_path,
        dir: dir.to_path_buf(),
        snapshots,
        policy: settings.snapshot,
        log_bytes_since_snapshot: 0,
        last_snapshot_op: op_base,
        replica_count: settings.replica_count as u64,
        serving: None,
        incoming: None,
        completed: None,
        inbound,
        peers: Vec::new(),
        last_commit_record,
        last_role: None,
        sync_in_flight: None,
        snapshot_encoding: None,
        snapshot_in_flight: None,
        deferred: VecDeque::new(),
        applied_op,
        reported_durable: 0,
        encoded: Vec::new(),
    };
    Ok((service, driver, inbound_sender))
}

fn load_meta<D: Disk>(disk: &D, path: &Path) -> Result<Option<MetaRecord>, StartError> {
    match MetaFile::load(disk, path)? {
        None => Ok(None),
        Some(bytes) => {
            postcard::from_bytes(&bytes)
                .map(Some)
                .map_err(|error| StartError::BadMeta {
                    path: path.display().to_string(),
                    reason: error.to_string(),
                })
        }
    }
}

/// Removes the meta file, so that a crash before recovery ends still
/// counts as a lost disk at the next start.
fn forget_replica_state<D: Disk>(disk: &D, path: &Path) -> Result<(), WalError> {
    match disk.remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(WalError::Io {
            action: "remove",
            path: path.to_path_buf(),
            offset: None,
            source: error,
        }),
        _ => Ok(()),
    }
}

pub(crate) fn store_meta<D: Disk>(
    disk: &D,
    path: &Path,
    record: MetaRecord,
) -> Result<(), WalError> {
    let bytes = postcard::to_stdvec(&record).expect("a MetaRecord always serializes");
    MetaFile::store(disk, path, &bytes)
}

fn decode_entries(dir: &Path, records: &[crate::wal::Record]) -> Result<Vec<Entry>, StartError> {
    records
        .iter()
        .map(|record| {
            let entry =
                LogEntry::decode(&record.payload).map_err(|error| StartError::BadEntry {
                    dir: dir.display().to_string(),
                    op: record.op,
                    reason: error.to_string(),
                })?;
            Ok(Entry {
                view: entry.view,
                op: record.op,
                payload: entry.request,
            })
        })
        .collect()
}

/// Applies one committed entry. A payload that does not decode was written
/// by this program's primary, so it is a bug, not bad input.
pub(super) fn apply_entry(calendar: &mut Calendar, entry: &Entry) -> crate::calendar::Outcome {
    let request = Request::decode(&entry.payload).unwrap_or_else(|error| {
        panic!(
            "committed op {} of view {} is not a valid request: {error}",
            entry.op, entry.view
        )
    });
    #[cfg(feature = "planted-bugs")]
    let request = crate::planted::forget_client_table(calendar, entry.view, request);
    calendar.apply(&request)
}

/// Owns the log and the meta file, and runs the replica.
pub struct Driver<D: Disk + Clone> {
    pub(super) service: Rc<Service>,
    pub(super) disk: D,
    pub(super) wal: Wal<D>,
    meta_path: PathBuf,
    /// The data directory: log segments, meta file and snapshots.
    pub(super) dir: PathBuf,
    pub(super) snapshots: SnapshotStore<D>,
    pub(super) policy: SnapshotPolicy,
    /// Payload bytes appended to the log since the last snapshot.
    pub(super) log_bytes_since_snapshot: u64,
    /// The op of the newest snapshot, written or being written. The next
    /// is due at this node's next snapshot point after it.
    pub(super) last_snapshot_op: u64,
    /// Nodes in the cluster, which spreads their snapshot points.
    pub(super) replica_count: u64,
    /// The snapshot file last read to serve a peer's chunk reads, by op.
    pub(super) serving: Option<(u64, Rc<Vec<u8>>)>,
    /// The snapshot being fetched from a peer, if any.
    pub(super) incoming: Option<Incoming>,
    /// A fetched snapshot whose last chunk arrived, installed at the end of
    /// the round.
    pub(super) completed: Option<(Vec<u8>, Box<crate::snapshot::Snapshot>)>,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    /// Outgoing queue per peer by replica id; None for this node itself.
    peers: Vec<Option<mpsc::Sender<Message>>>,
    last_commit_record: u64,
    /// The (view, status, is primary) last logged.
    last_role: Option<(u64, replication::Status, bool)>,
    /// The fdatasync running on a blocking thread, if any. At most one runs
    /// at a time; records appended meanwhile wait for the next one.
    sync_in_flight: Option<InFlightSync>,
    /// The snapshot being written on a blocking thread, if any. The log is
    /// compacted once it is durable.
    pub(super) snapshot_in_flight: Option<SnapshotWrite>,
    /// The state being encoded for a snapshot on a blocking thread, if any.
    /// No op applies meanwhile.
    pub(super) snapshot_encoding: Option<SnapshotEncode>,
    /// Work that waits for the log to be durable, in the order it was
    /// produced. It is carried out in that order, so commits apply in op
    /// order and a read is served after the commits before it.
    deferred: VecDeque<Deferred>,
    /// The op of the last entry applied to the calendar. Never above the
    /// log's durable op.
    pub(super) applied_op: u64,
    /// The durable op last reported to the replica.
    reported_durable: u64,
    /// Reused buffer for encoding log records.
    encoded: Vec<u8>,
}

/// The round length of the event loop from which a warning is logged. The
/// node replies to nothing during a round, and at the shortest view-change
/// timeout (120 ms) its backups would depose it.
const ROUND_WARN: Duration = Duration::from_millis(50);

/// Times the phases of one round of the event loop, so that a stall names
/// the phase that caused it.
struct RoundTimer {
    arm: &'static str,
    began: Instant,
    last: Instant,
    longest: (&'static str, Duration),
}

impl RoundTimer {
    /// Starts timing after the select arm `arm` ran. The arms that do I/O
    /// pass `arm_began`, the moment they began.
    fn new(arm: &'static str, arm_began: Option<Instant>) -> RoundTimer {
        let now = Instant::now();
        let began = arm_began.unwrap_or(now);
        RoundTimer {
            arm,
            began,
            last: now,
            longest: (arm, now - began),
        }
    }

    fn lap(&mut self, phase: &'static str) {
        let now = Instant::now();
        let took = now - self.last;
        if took > self.longest.1 {
            self.longest = (phase, took);
        }
        self.last = now;
    }

    fn warn_if_long(&self, replica_id: ReplicaId) {
        let took = self.began.elapsed();
        if took >= ROUND_WARN {
            warn!(
                node = replica_id + 1,
                millis = took.as_millis() as u64,
                woken_by = self.arm,
                slowest = self.longest.0,
                slowest_millis = self.longest.1.as_millis() as u64,
                "the event loop stalled, and no request or message was handled meanwhile"
            );
        }
    }
}

struct InFlightSync {
    ticket: SyncTicket,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// One piece of work that may start once the log is durable through
/// `needs_op`.
struct Deferred {
    needs_op: u64,
    action: Action,
}

enum Action {
    Apply(Entry),
    Send(ReplicaId, Message),
    ReadsReady(Vec<ReadRef>),
}

/// A log record as [`LogEntry`] encodes it, borrowing the request so that
/// appending copies it only into the log's buffer.
#[derive(Serialize)]
struct LogEntryRef<'a> {
    view: u64,
    request: &'a [u8],
}

/// Returns true for the messages that may leave before this node's log is
/// durable: the primary's prepares and commit heartbeats. Neither claims
/// anything about the sender's disk, because the primary applies and
/// answers an op only after its own fdatasync. Every other message reports
/// or hands over this node's log, so it waits.
fn sends_before_sync(message: &Message) -> bool {
    matches!(message, Message::Prepare { .. } | Message::Commit { .. })
}

/// Waits for the in-flight sync to finish and returns its ticket and result.
/// Pends forever when none runs, so it can sit in a `select!` beside others.
async fn sync_finished(in_flight: &mut Option<InFlightSync>) -> (SyncTicket, std::io::Result<()>) {
    let Some(sync) = in_flight.as_mut() else {
        return std::future::pending().await;
    };
    let result = match (&mut sync.task).await {
        Ok(result) => result,
        Err(error) => Err(std::io::Error::other(format!(
            "the fdatasync task failed: {error}"
        ))),
    };
    let sync = in_flight.take().expect("the sync was in flight");
    (sync.ticket, result)
}

impl<D: Disk + Clone> Driver<D> {
    /// Sets the outgoing queues, one per replica id (None for this node).
    pub fn set_peers(&mut self, peers: Vec<Option<mpsc::Sender<Message>>>) {
        self.peers = peers;
    }

    /// Runs until the log fails to write, and returns that error.
    pub async fn run(mut self) -> WalError {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut commit_timer = tokio::time::interval(COMMIT_RECORD_INTERVAL);
        loop {
            let mut outputs = Vec::new();
            let arm;
            let mut arm_began = None;
            // Ticks come first: under a steady stream of requests the other
            // arms are always ready, and a primary that stops ticking stops
            // sending heartbeats and gets deposed.
            tokio::select! {
                biased;
                _ = ticker.tick() => {
                    arm = "tick";
                    outputs.push(self.service.replica.borrow_mut().on_tick());
                    self.tick_transfer();
                }
                (ticket, result) = sync_finished(&mut self.sync_in_flight) => {
                    arm = "fdatasync";
                    if let Err(error) = self.wal.finish_sync(ticket, result) {
                        return self.fail(error);
                    }
                }
                (encode, body) = snapshot_encoded(&mut self.snapshot_encoding) => {
                    arm = "snapshot encoded";
                    self.write_encoded(encode, body);
                }
                (start, result) = snapshot_written(&mut self.snapshot_in_flight) => {
                    arm = "snapshot written";
                    arm_began = Some(Instant::now());
                    if let Err(error) = self.finish_snapshot(start, result) {
                        return self.fail(error);
                    }
                }
                Some((from, message)) = self.inbound.recv() => {
                    arm = "peer message";
                    match self.on_inbound(from, message) {
                        Ok(output) => outputs.extend(output),
                        Err(error) => return self.fail(error),
                    }
                }
                _ = self.service.wake_driver.notified() => {
                    arm = "client request";
                }
                _ = commit_timer.tick() => {
                    arm = "commit record";
                    arm_began = Some(Instant::now());
                    if let Err(error) = self.record_commit() {
                        return self.fail(error);
                    }
                }
            }
            let mut round = RoundTimer::new(arm, arm_began);
            if let Err(error) = self.gather(&mut outputs) {
                return self.fail(error);
            }
            round.lap("gather");
            if let Err(error) = self.carry_out(outputs).await {
                return self.fail(error);
            }
            round.lap("carry out");
            if let Err(error) = self.install_completed_snapshot().await {
                return self.fail(error);
            }
            round.lap("install");
            if let Err(error) = self.take_snapshot_if_due().await {
                return self.fail(error);
            }
            round.lap("snapshot");
            round.warn_if_long(self.service.replica_id);
        }
    }

    /// Hands a peer's message to the replica, or to the snapshot transfer
    /// for chunk reads and chunks.
    fn on_inbound(
        &mut self,
        from: ReplicaId,
        message: Message,
    ) -> Result<Option<Output>, WalError> {
        match message {
            Message::SnapshotRead { op, offset, .. } => {
                self.reply_to_snapshot_read(from, op, offset)?;
                Ok(None)
            }
            Message::SnapshotChunk {
                op,
                size,
                offset,
                data,
                ..
            } => {
                let chunk = crate::snapshot::ChunkRef {
                    from,
                    op,
                    size,
                    offset,
                    data: &data,
                };
                self.on_snapshot_chunk(chunk)
            }
            message => Ok(Some(
                self.service.replica.borrow_mut().on_message(from, message),
            )),
        }
    }

    pub(super) fn fail(&self, error: WalError) -> WalError {
        let replica = self.service.replica.borrow();
        error!(node = self.service.replica_id + 1, view = replica.view(), op = replica.op(),
            commit = replica.commit(), %error,
            "writing the log failed; this node stops");
        self.service.failed.set(true);
        error
    }

    /// Adds every input that is ready now, so one fsync covers them all.
    fn gather(&mut self, outputs: &mut Vec<Output>) -> Result<(), WalError> {
        for _ in 0..ROUND_MESSAGES_MAX {
            match self.inbound.try_recv() {
                Ok((from, message)) => outputs.extend(self.on_inbound(from, message)?),
                Err(_) => break,
            }
        }
        let mut replica = self.service.replica.borrow_mut();
        let mut queue = self.service.queue.borrow_mut();
        let reads = std::mem::take(&mut queue.reads);
        // While this node's fdatasync runs, requests wait for it to finish
        // and then go out together in one prepare. Records appended now
        // would wait for the next fdatasync anyway, and one prepare per
        // fdatasync costs the node and its backups far fewer messages.
        let hold = self.sync_in_flight.is_some() && !prepare_is_full(&queue.requests);
        let requests = if hold {
            Vec::new()
        } else {
            take_prepare_batch(&mut queue.requests)
        };
        if !hold && !queue.requests.is_empty() {
            // The rest did not fit in this prepare: the next round takes
            // it at once instead of waiting for the next tick.
            self.service.wake_driver.notify_one();
        }
        drop(queue);
        if !requests.is_empty() {
            outputs.push(replica.on_requests(requests));
        }
        for read in reads {
            outputs.push(replica.on_read(read));
        }
        Ok(())
    }

    /// Logs a change of view, status or role once per round.
    fn log_transition(&mut self) {
        let replica = self.service.replica.borrow();
        let now = (replica.view(), replica.status(), replica.is_primary());
        if self.last_role == Some(now) {
            return;
        }
        self.last_role = Some(now);
        let role = match (now.1, now.2) {
            (replication::Status::Normal, true) => "primary",
            (replication::Status::Normal, false) => "backup",
            (replication::Status::ViewChange, _) => "view change",
            (replication::Status::Recovering, _) => "recovering",
        };
        info!(
            node = self.service.replica_id + 1,
            view = replica.view(),
            op = replica.op(),
            commit = replica.commit(),
            primary = replica.primary() + 1,
            role,
            "role changed"
        );
    }

    /// Carries out outputs in the order the protocol needs: persist, then
    /// apply and answer, then send. What needs the log durable is queued
    /// until the fdatasync that covers it has finished.
    pub(super) async fn carry_out(&mut self, outputs: Vec<Output>) -> Result<(), WalError> {
        let rewrites_log = outputs
            .iter()
            .any(|output| output.truncate_after.is_some() || output.store_view.is_some());
        if rewrites_log {
            self.drain().await?;
        }
        self.persist(&outputs)?;
        let needs_op = self.wal.last_op();
        for output in outputs {
            self.answer_accepted(&output);
            for entry in output.commit {
                let op = entry.op;
                self.defer(op, Action::Apply(entry));
            }
            for (to, message) in output.send {
                if sends_before_sync(&message) {
                    self.send_one(to, message);
                } else {
                    self.defer(needs_op, Action::Send(to, message));
                }
            }
            if let Some(fetch) = output.fetch_snapshot {
                self.start_fetch(fetch)?;
            }
            for (request, redirect) in output.rejected {
                let rejection = self.service.redirect_rejection(redirect);
                self.reply_write(request, Err(rejection));
            }
            if !output.reads_ready.is_empty() {
                self.defer(0, Action::ReadsReady(output.reads_ready));
            }
            self.answer_failed_reads(output.reads_failed);
        }
        self.start_sync().await?;
        self.report_durable();
        self.release();
        self.log_transition();
        Ok(())
    }

    fn defer(&mut self, needs_op: u64, action: Action) {
        self.deferred.push_back(Deferred { needs_op, action });
    }

    /// Starts an fdatasync of everything appended, unless one is running
    /// (its completion starts the next) or nothing is waiting.
    ///
    /// Where it runs trades latency for throughput. Handing it to a blocking
    /// thread and back costs two thread switches, about 0.03 ms of a
    /// write's latency per node on a 2-core machine (docs/BENCHMARKS.md).
    /// Running it here blocks the event loop, so a primary under load could
    /// not take in or reply to requests meanwhile, which cost it about a
    /// fifth of its writes per second. So a primary syncs a batch on the
    /// thread, and a lone op here after yielding once, so that the links
    /// send the op's prepares first. A backup always syncs here, because
    /// the prepares that arrive meanwhile wait in the socket for the next
    /// sync, as they would wait in the log.
    ///
    /// NOTE: the simulation's disk always syncs on the calling thread, so
    /// only the driver tests on real files reach the blocking-thread path.
    async fn start_sync(&mut self) -> Result<(), WalError> {
        if self.sync_in_flight.is_some() || self.wal.durable_op() == self.wal.last_op() {
            return Ok(());
        }
        let is_primary = self.service.replica.borrow().is_primary();
        if !is_primary || self.wal.last_op() - self.wal.durable_op() == 1 {
            if is_primary {
                tokio::task::yield_now().await;
            }
            self.wal.sync()?;
            return Ok(());
        }
        match self.wal.start_sync()? {
            SyncStart::Durable(_) => {}
            SyncStart::Detached { ticket, sync } => {
                let task = tokio::task::spawn_blocking(sync);
                self.sync_in_flight = Some(InFlightSync { ticket, task });
            }
        }
        Ok(())
    }

    /// Tells the replica how far its own log is durable; the primary counts
    /// its own copy towards a commit only once it is on disk. Runs after
    /// the round's outputs are queued, so the commits it adds come after
    /// theirs.
    fn report_durable(&mut self) {
        let durable = self.wal.durable_op();
        if durable == self.reported_durable {
            return;
        }
        self.reported_durable = durable;
        let output = self.service.replica.borrow_mut().on_durable(durable);
        for entry in output.commit {
            self.defer(entry.op, Action::Apply(entry));
        }
        if !output.reads_ready.is_empty() {
            self.defer(0, Action::ReadsReady(output.reads_ready));
        }
        self.answer_failed_reads(output.reads_failed);
    }

    /// Carries out the queued work that the durable log now allows, in order.
    fn release(&mut self) {
        let durable = self.wal.durable_op();
        while self
            .deferred
            .front()
            .is_some_and(|deferred| deferred.needs_op <= durable)
        {
            let deferred = self.deferred.pop_front().expect("front exists");
            match deferred.action {
                Action::Apply(entry) => self.apply_commit(entry),
                Action::Send(to, message) if self.next_acknowledges_more(to, &message, durable) => {
                }
                Action::Send(to, message) => self.send_one(to, message),
                Action::ReadsReady(reads) => self.answer_ready_reads(reads),
            }
        }
        let applied_op = self.applied_op;
        self.service.applied.send_if_modified(|applied| {
            let moved = *applied != applied_op;
            *applied = applied_op;
            moved
        });
    }

    /// Returns true when `message` is a prepare-ok that the next released
    /// message to the same peer supersedes: a prepare-ok acknowledges every
    /// op up to its own, so of several released at once only the last needs
    /// to go out.
    fn next_acknowledges_more(&self, to: ReplicaId, message: &Message, durable: u64) -> bool {
        let Message::PrepareOk { view, .. } = message else {
            return false;
        };
        match self.deferred.front() {
            Some(Deferred {
                needs_op,
                action:
                    Action::Send(
                        next_to,
                        Message::PrepareOk {
                            view: next_view, ..
                        },
                    ),
            }) => *needs_op <= durable && *next_to == to && next_view == view,
            _ => false,
        }
    }

    /// Waits for the running fdatasync, syncs the rest of the log here and
    /// carries out all queued work, so that a truncation or a view record
    /// starts from a durable log and an empty queue.
    pub(super) async fn drain(&mut self) -> Result<(), WalError> {
        self.wait_for_encoding().await;
        if self.sync_in_flight.is_some() {
            let (ticket, result) = sync_finished(&mut self.sync_in_flight).await;
            self.wal.finish_sync(ticket, result)?;
        }
        let durable = self.wal.sync()?;
        assert_eq!(
            durable,
            self.wal.last_op(),
            "node {}: the log reports op {durable} durable, but holds up to {}",
            self.service.replica_id + 1,
            self.wal.last_op()
        );
        self.release();
        assert!(
            self.deferred.is_empty(),
            "node {}: work waits for op {:?} although the log is durable through {durable}",
            self.service.replica_id + 1,
            self.deferred.front().map(|deferred| deferred.needs_op)
        );
        Ok(())
    }

    /// Writes the outputs' truncations and appends to the log (an fdatasync
    /// follows in [`Driver::start_sync`]) and stores a new view record after
    /// syncing the log it describes.
    fn persist(&mut self, outputs: &[Output]) -> Result<(), WalError> {
        let mut view_record = None;
        for output in outputs {
            if let Some(after) = output.truncate_after {
                self.wal.truncate_after(after)?;
                self.drop_writes_after(after);
            }
            for entry in &output.append {
                let record = LogEntryRef {
                    view: entry.view,
                    request: &entry.payload,
                };
                self.encoded.clear();
                self.encoded = postcard::to_extend(&record, std::mem::take(&mut self.encoded))
                    .expect("a log entry always serializes");
                self.wal.append(entry.op, &self.encoded)?;
                self.log_bytes_since_snapshot += self.encoded.len() as u64;
            }
            if let Some(record) = output.store_view {
                view_record = Some(record);
            }
        }
        if let Some(record) = view_record {
            self.wal.sync()?;
            self.store_view(record)?;
        }
        Ok(())
    }

    fn store_view(&mut self, record: ViewRecord) -> Result<(), WalError> {
        let commit = self.service.replica.borrow().commit();
        let meta = MetaRecord {
            view: record.view,
            log_view: record.log_view,
            commit,
        };
        store_meta(&self.disk, &self.meta_path, meta)?;
        self.last_commit_record = commit;
        Ok(())
    }

    fn record_commit(&mut self) -> Result<(), WalError> {
        let (view, log_view, commit) = {
            let replica = self.service.replica.borrow();
            (replica.view(), replica.log_view(), replica.commit())
        };
        if commit == self.last_commit_record
            || self.service.replica.borrow().status() != replication::Status::Normal
        {
            return Ok(());
        }
        store_meta(
            &self.disk,
            &self.meta_path,
            MetaRecord {
                view,
                log_view,
                commit,
            },
        )?;
        self.last_commit_record = commit;
        Ok(())
    }

    /// Writes whose op was cut from the log will never commit as they were.
    fn drop_writes_after(&mut self, after: u64) {
        let cut: Vec<u64> = self
            .service
            .writes_by_op
            .borrow_mut()
            .split_off(&(after + 1))
            .into_values()
            .collect();
        for request in cut {
            self.reply_write(
                request,
                Err(ApiRejection::Unavailable(
                    "a view change dropped this write before it committed; retry".into(),
                )),
            );
        }
    }

    fn answer_accepted(&mut self, output: &Output) {
        for accepted in &output.accepted {
            let mut writes = self.service.writes.borrow_mut();
            if let Some(waiting) = writes.get_mut(&accepted.request) {
                waiting.accepted = Some((accepted.view, accepted.op));
            }
            drop(writes);
            let replaced = self
                .service
                .writes_by_op
                .borrow_mut()
                .insert(accepted.op, accepted.request);
            if let Some(older) = replaced {
                self.reply_write(
                    older,
                    Err(ApiRejection::Unavailable(
                        "a view change replaced this write before it committed; retry".into(),
                    )),
                );
            }
        }
    }

    fn apply_commit(&mut self, entry: Entry) {
        assert_eq!(
            entry.op,
            self.applied_op + 1,
            "node {}: applying op {} out of order after op {}",
            self.service.replica_id + 1,
            entry.op,
            self.applied_op
        );
        #[cfg(feature = "sim")]
        self.service
            .applied_entries
            .borrow_mut()
            .push(entry.clone());
        let outcome = {
            // While a thread encodes a snapshot from its own reference, the
            // first op after it copies the state. Every map in it is a
            // persistent tree, so the copy shares all but the paths the op
            // changes.
            let mut calendar = self.service.calendar.borrow_mut();
            apply_entry(Arc::make_mut(&mut calendar), &entry)
        };
        self.applied_op = entry.op;
        self.service
            .commit_seen
            .set(self.service.commit_seen.get().max(entry.op));
        let waiting = self.service.writes_by_op.borrow_mut().remove(&entry.op);
        let Some(request) = waiting else { return };
        let accepted = self
            .service
            .writes
            .borrow()
            .get(&request)
            .and_then(|w| w.accepted);
        let result = if accepted == Some((entry.view, entry.op)) {
            Ok(outcome)
        } else {
            Err(ApiRejection::Unavailable(
                "a view change replaced this write before it committed; retry".into(),
            ))
        };
        self.reply_write(request, result);
    }

    fn reply_write(&self, request: u64, result: Result<crate::calendar::Outcome, ApiRejection>) {
        if let Some(waiting) = self.service.writes.borrow_mut().remove(&request) {
            let _ = waiting.reply.send(result);
        }
    }

    fn answer_ready_reads(&self, ready: Vec<ReadRef>) {
        let mut reads = self.service.reads.borrow_mut();
        for read in ready {
            if let Some(reply) = reads.remove(&read) {
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn answer_failed_reads(&self, failed: Vec<(ReadRef, replication::Redirect)>) {
        let mut reads = self.service.reads.borrow_mut();
        for (read, redirect) in failed {
            if let Some(reply) = reads.remove(&read) {
                let _ = reply.send(Err(self.service.redirect_rejection(redirect)));
            }
        }
    }

    /// Sends each message to its peer at once.
    pub(super) fn send(&self, messages: Vec<(ReplicaId, Message)>) {
        for (to, message) in messages {
            self.send_one(to, message);
        }
    }

    fn send_one(&self, to: ReplicaId, message: Message) {
        let Some(Some(queue)) = self.peers.get(to as usize) else {
            return;
        };
        if queue.try_send(message).is_err() {
            tracing::debug!(
                node = self.service.replica_id + 1,
                peer = to + 1,
                "dropped a message: the peer's queue is full or closed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io;
    use std::sync::{Arc, Condvar, Mutex};

    use super::*;
    use crate::calendar::Command;
    use crate::wal::{DetachedSync, DiskFile, StdDisk};

    /// Queued requests of `lengths` payload bytes, numbered from 0.
    fn queued_of(lengths: &[usize]) -> Vec<(RequestRef, Vec<u8>)> {
        let requests = lengths.iter().enumerate();
        requests
            .map(|(index, &length)| (index as RequestRef, vec![0xa5; length]))
            .collect()
    }

    #[test]
    fn prepare_batch_bounded_in_bytes() {
        let large = crate::rpc::session::LOGGED_COMMAND_BYTES_MAX - 100;
        let mut queued = queued_of(&[large; 9]);
        let mut taken = Vec::new();
        for _ in 0..9 {
            if queued.is_empty() {
                break;
            }
            let batch = take_prepare_batch(&mut queued);
            let bytes: usize = batch.iter().map(|(_, payload)| payload.len()).sum();
            assert!(!batch.is_empty(), "a prepare takes at least one request");
            assert!(bytes <= PREPARE_BYTES_MAX, "a prepare of {bytes} bytes");
            taken.extend(batch.into_iter().map(|(request, _)| request));
        }
        assert!(queued.is_empty(), "{} requests left queued", queued.len());
        assert_eq!(
            taken,
            (0..9).collect::<Vec<RequestRef>>(),
            "requests keep their order"
        );
    }

    #[test]
    fn prepare_batch_leaves_rest_queued() {
        let half = PREPARE_BYTES_MAX / 2;
        let mut queued = queued_of(&[half, half, 1, half]);
        let batch = take_prepare_batch(&mut queued);
        let first: Vec<RequestRef> = batch.iter().map(|(request, _)| *request).collect();
        assert_eq!(first, vec![0, 1]);
        let rest: Vec<RequestRef> = queued.iter().map(|(request, _)| *request).collect();
        assert_eq!(rest, vec![2, 3]);
    }

    #[test]
    fn prepare_batch_takes_one_oversized() {
        let mut queued = queued_of(&[PREPARE_BYTES_MAX + 1, 10]);
        let batch = take_prepare_batch(&mut queued);
        assert_eq!(batch.len(), 1);
        assert_eq!(queued.len(), 1);
    }

    #[test]
    fn prepare_batch_bounded_in_count() {
        let mut queued = queued_of(&[8; PREPARE_REQUESTS_MAX + 5]);
        assert!(prepare_is_full(&queued));
        let batch = take_prepare_batch(&mut queued);
        assert_eq!(batch.len(), PREPARE_REQUESTS_MAX);
        assert_eq!(queued.len(), 5);
        assert!(!prepare_is_full(&queued));
    }

    #[test]
    fn prepare_full_by_bytes() {
        let queued = queued_of(&[PREPARE_BYTES_MAX / 2, PREPARE_BYTES_MAX / 2]);
        assert!(prepare_is_full(&queued));
        let queued = queued_of(&[PREPARE_BYTES_MAX / 2]);
        assert!(!prepare_is_full(&queued));
    }

    /// How long a test waits for something that must happen.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// Holds detached syncs until the test opens it, and fails every sync
    /// once the test breaks it.
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        opened: Condvar,
        broken: std::sync::atomic::AtomicBool,
    }

    impl Gate {
        fn break_syncs(&self) {
            self.broken.store(true, std::sync::atomic::Ordering::SeqCst);
        }

        /// Fails if the test broke the disk's syncs.
        fn check(&self) -> io::Result<()> {
            if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(io::Error::other("the test broke this disk's fdatasync"));
            }
            Ok(())
        }

        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }

        /// Waits until the gate opens, or [`PATIENCE`] passes so that a
        /// failing test cannot hang.
        fn pass(&self) {
            let open = self.open.lock().unwrap();
            let _ = self
                .opened
                .wait_timeout_while(open, PATIENCE, |open| !*open)
                .unwrap();
        }
    }

    /// A [`StdDisk`] whose detached syncs wait for the gate.
    #[derive(Clone, Default)]
    struct GatedDisk {
        gate: Arc<Gate>,
    }

    struct GatedFile {
        file: File,
        gate: Arc<Gate>,
    }

    impl Disk for GatedDisk {
        type File = GatedFile;

        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            StdDisk.create_dir_all(dir)
        }
        fn create_file(&self, path: &Path) -> io::Result<GatedFile> {
            let file = StdDisk.create_file(path)?;
            let gate = self.gate.clone();
            Ok(GatedFile { file, gate })
        }
        fn open_file(&self, path: &Path) -> io::Result<GatedFile> {
            let file = StdDisk.open_file(path)?;
            let gate = self.gate.clone();
            Ok(GatedFile { file, gate })
        }
        fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
            StdDisk.read_file(path)
        }
        fn file_len(&self, path: &Path) -> io::Result<u64> {
            StdDisk.file_len(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            StdDisk.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            StdDisk.remove_file(path)
        }
        fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
            StdDisk.list_dir(dir)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            StdDisk.sync_dir(dir)
        }
    }

    impl DiskFile for GatedFile {
        fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
            DiskFile::write_all_at(&self.file, bytes, offset)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            DiskFile::set_len(&self.file, len)
        }
        fn sync_data(&self) -> io::Result<()> {
            self.gate.check()?;
            DiskFile::sync_data(&self.file)
        }
        fn detached_sync(&self) -> io::Result<Option<DetachedSync>> {
            let file = self.file.try_clone()?;
            let gate = self.gate.clone();
            Ok(Some(Box::new(move || {
                gate.pass();
                gate.check()?;
                file.sync_data()
            })))
        }
    }

    struct TestNode {
        service: Rc<Service>,
        inbound: mpsc::UnboundedSender<Inbound>,
        /// Messages the node sent, by peer id; None for the node itself.
        sent: Vec<Option<mpsc::Receiver<Message>>>,
        gate: Arc<Gate>,
        _dir: tempfile::TempDir,
    }

    /// Opens replica `replica_id` of a new three-node cluster on a gated
    /// disk and spawns its driver. Must run inside a `LocalSet`.
    fn start_node(replica_id: ReplicaId) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let disk = GatedDisk::default();
        let gate = disk.gate.clone();
        let settings = ReplicaSettings {
            replica_count: 3,
            replica_id,
            client_addresses: (1..=3).map(|id| format!("127.0.0.1:{id}")).collect(),
            snapshot: crate::node::config::SnapshotPolicy::default(),
        };
        let host = Host::simulated(7, 0);
        let (service, mut driver, inbound) =
            open(settings, disk, dir.path(), StartMode::Init, host).unwrap();
        let mut queues = Vec::new();
        let mut sent = Vec::new();
        for id in 0..3 {
            if id == replica_id {
                queues.push(None);
                sent.push(None);
            } else {
                let (sender, receiver) = mpsc::channel(1024);
                queues.push(Some(sender));
                sent.push(Some(receiver));
            }
        }
        driver.set_peers(queues);
        tokio::task::spawn_local(driver.run());
        TestNode {
            service,
            inbound,
            sent,
            gate,
            _dir: dir,
        }
    }

    /// Waits until `condition` holds, checking every millisecond.
    async fn wait_until(what: &str, condition: impl Fn() -> bool) {
        let waited = tokio::time::timeout(PATIENCE, async {
            while !condition() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "timed out waiting until {what}");
    }

    /// Receives messages sent to `peer` until one matches `wanted`.
    async fn receive_from(
        node: &mut TestNode,
        peer: usize,
        wanted: fn(&Message) -> bool,
    ) -> Message {
        let queue = node.sent[peer]
            .as_mut()
            .expect("a peer, not the node itself");
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                let message = queue.recv().await.expect("the driver is running");
                if wanted(&message) {
                    return message;
                }
            }
        })
        .await;
        found.expect("timed out waiting for a message")
    }

    fn run_local(test: impl std::future::Future<Output = ()>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&runtime, test);
    }

    fn register(username: &str) -> Command {
        Command::Register {
            username: username.into(),
            password_hash: "$argon2id$v=19$m=8,t=1,p=1$test$test".into(),
        }
    }

    #[test]
    fn batch_prepare_precedes_own_sync() {
        run_local(async {
            let mut node = start_node(0);
            // Both requests are queued before the driver runs, so one
            // prepare carries both, and the fdatasync of a batch runs on a
            // blocking thread, where the gate holds it.
            let writes: Vec<_> = [(1, "ann"), (2, "bob")]
                .into_iter()
                .map(|(client, name)| {
                    let service = node.service.clone();
                    tokio::task::spawn_local(async move {
                        service.submit(client, 1, register(name)).await
                    })
                })
                .collect();

            // The prepare goes out while the primary's own fdatasync waits.
            let prepare =
                receive_from(&mut node, 1, |m| matches!(m, Message::Prepare { .. })).await;
            let Message::Prepare {
                view: 0, entries, ..
            } = &prepare
            else {
                panic!("not a prepare of view 0: {prepare:?}");
            };
            assert_eq!(entries.len(), 2, "{prepare:?}");

            // A backup's prepare-ok makes the ops committed for the
            // replica, but the primary must not apply them or reply before
            // its own sync.
            let prepare_ok = Message::PrepareOk { view: 0, op: 2 };
            node.inbound.send((1, prepare_ok)).unwrap();
            let service = node.service.clone();
            wait_until("the replica commits op 2", || {
                service.replica.borrow().commit() == 2
            })
            .await;
            assert_eq!(*node.service.applied.borrow(), 0, "applied before own sync");
            assert!(
                writes.iter().all(|write| !write.is_finished()),
                "answered before own sync"
            );

            node.gate.open();
            for write in writes {
                let outcome = tokio::time::timeout(PATIENCE, write).await;
                let outcome = outcome.expect("timed out waiting for the reply").unwrap();
                assert!(outcome.is_ok(), "{outcome:?}");
            }
            assert_eq!(*node.service.applied.borrow(), 2);
        });
    }

    #[test]
    fn lone_prepare_leaves_before_sync() {
        run_local(async {
            let mut node = start_node(0);
            // A lone write is synced on the event loop. Its fdatasync fails,
            // so any message or reply that went out went out before it.
            node.gate.break_syncs();
            let service = node.service.clone();
            let write =
                tokio::task::spawn_local(
                    async move { service.submit(1, 1, register("ann")).await },
                );
            let service = node.service.clone();
            wait_until("the node stops on the failed sync", || service.failed.get()).await;

            let prepare =
                receive_from(&mut node, 1, |m| matches!(m, Message::Prepare { .. })).await;
            assert!(
                matches!(prepare, Message::Prepare { view: 0, .. }),
                "{prepare:?}"
            );
            assert_eq!(
                *node.service.applied.borrow(),
                0,
                "applied an op it never synced"
            );
            if write.is_finished() {
                let outcome = write.await.unwrap();
                assert!(
                    outcome.is_err(),
                    "answered an op it never synced: {outcome:?}"
                );
            }
        });
    }

    #[test]
    fn backup_acks_after_own_sync() {
        run_local(async {
            let mut node = start_node(1);
            // The backup's fdatasync fails, so an acknowledgement sent before
            // it would be in the queue.
            node.gate.break_syncs();
            let entry = Entry {
                view: 0,
                op: 1,
                payload: b"request".to_vec(),
            };
            let prepare = Message::Prepare {
                view: 0,
                commit: 0,
                entries: vec![entry],
            };
            node.inbound.send((0, prepare)).unwrap();
            let service = node.service.clone();
            wait_until("the node stops on the failed sync", || service.failed.get()).await;
            assert_eq!(
                node.service.replica.borrow().op(),
                1,
                "the prepare was not appended"
            );
            let queue = node.sent[0].as_mut().unwrap();
            while let Ok(message) = queue.try_recv() {
                assert!(
                    !matches!(message, Message::PrepareOk { .. }),
                    "acknowledged an op it never synced: {message:?}"
                );
            }
        });
    }

    #[test]
    fn backup_coalesces_released_acks() {
        run_local(async {
            let mut node = start_node(1);
            // All three reach the driver before it first runs, so it appends
            // them in one round and one fdatasync covers them.
            for op in 1..=3 {
                let prepare = Message::Prepare {
                    view: 0,
                    commit: 0,
                    entries: vec![Entry {
                        view: 0,
                        op,
                        payload: vec![op as u8],
                    }],
                };
                node.inbound.send((0, prepare)).unwrap();
            }
            node.gate.open();
            let ack = receive_from(&mut node, 0, |m| matches!(m, Message::PrepareOk { .. })).await;
            assert_eq!(
                ack,
                Message::PrepareOk { view: 0, op: 3 },
                "an older ack went out"
            );
        });
    }

    #[test]
    fn only_prepare_and_commit_skip_sync() {
        let early = [
            Message::Prepare {
                view: 0,
                commit: 0,
                entries: Vec::new(),
            },
            Message::Commit {
                view: 0,
                commit: 0,
                round: 0,
            },
        ];
        for message in &early {
            assert!(sends_before_sync(message), "{message:?}");
        }
        let waiting = [
            Message::PrepareOk { view: 0, op: 1 },
            Message::CommitOk {
                view: 0,
                op: 1,
                round: 0,
            },
            Message::StartViewChange { view: 1 },
            Message::GetState { view: 0, op: 0 },
        ];
        for message in &waiting {
            assert!(!sends_before_sync(message), "{message:?}");
        }
    }

    #[test]
    fn log_entry_ref_encodes_like_log_entry() {
        let entry = LogEntry {
            view: 3,
            request: b"some request".to_vec(),
        };
        let borrowed = LogEntryRef {
            view: 3,
            request: &entry.request,
        };
        assert_eq!(postcard::to_stdvec(&borrowed).unwrap(), entry.encode());
    }
}
