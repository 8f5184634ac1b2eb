//! The shell around the replica: it feeds the replica messages, ticks,
//! client requests and reads, and carries out each output in a fixed order:
//! persist (log truncation, appends, one fsync, the view record), then apply
//! commits and answer their callers, then send messages. Nothing leaves the
//! node before the state it depends on is durable.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::calendar::{Calendar, Request};
use crate::node::host::Host;
use crate::node::service::{LogEntry, Service};
use crate::replication::{self, Durable, Entry, Message, Output, Replica, ReplicaId, ViewRecord};
use crate::rpc::convert::ApiRejection;
use crate::rpc::peer::Inbound;
use crate::wal::{Disk, MetaFile, Wal, WalError, WalOptions};

/// Length of one protocol tick.
pub const TICK: Duration = Duration::from_millis(10);
/// Ticks between the primary's heartbeats (40 ms).
pub const HEARTBEAT_TICKS: u64 = 4;
/// Range of the view-change timeout in ticks (160-320 ms): four or more
/// heartbeats must go missing before a backup suspects the primary, and a
/// dead primary costs clients well under half a second.
pub const VIEW_CHANGE_TIMEOUT_TICKS: (u64, u64) = (16, 32);
/// Most inbound messages handled in one round before the round's output is
/// persisted and sent, so that one busy peer cannot delay the rest forever.
const ROUND_MESSAGES_MAX: usize = 1024;
/// How often the commit number is written to the meta file when it moved,
/// so that a restart re-applies committed ops without waiting for a peer.
const COMMIT_RECORD_INTERVAL: Duration = Duration::from_secs(1);

/// Name of the file that contains the view record, beside the log.
const META_FILE: &str = "replica.meta";

/// The view record on disk, plus the commit number as last written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct MetaRecord {
    view: u64,
    log_view: u64,
    /// A lower bound of the commit number: every op up to it is committed.
    commit: u64,
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
    let (wal, recovery) = Wal::open(disk.clone(), dir, WalOptions::default())?;
    let meta = load_meta(&disk, &meta_path)?;
    let entries = decode_entries(dir, &recovery.records)?;
    let is_empty = meta.is_none() && entries.is_empty();
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
                entries.len() as u64
            } else {
                meta.commit.min(entries.len() as u64)
            };
            Durable {
                view: meta.view,
                log_view: meta.log_view,
                commit,
                entries,
                intact: true,
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
                    commit: 0,
                },
            )?;
            let mut durable = Durable::formatted();
            durable.commit = entries.len() as u64;
            durable.entries = entries;
            durable
        }
        (StartMode::Rejoin, None) => {
            warn!(node = settings.replica_id + 1, dir = %dir.display(),
                "no replica state on disk: recovering from the other nodes before taking part");
            Durable::lost()
        }
    };
    let mut calendar = Calendar::new();
    for entry in &durable.entries[..durable.commit as usize] {
        apply_entry(&mut calendar, entry);
    }
    info!(
        node = settings.replica_id + 1,
        view = durable.view,
        op = durable.entries.len(),
        commit = durable.commit,
        intact = durable.intact,
        "opened the data directory"
    );
    let last_commit_record = durable.commit;
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
        inbound,
        peers: Vec::new(),
        last_commit_record,
        last_role: None,
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

fn store_meta<D: Disk>(disk: &D, path: &Path, record: MetaRecord) -> Result<(), WalError> {
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
fn apply_entry(calendar: &mut Calendar, entry: &Entry) -> crate::calendar::Outcome {
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
    service: Rc<Service>,
    disk: D,
    wal: Wal<D>,
    meta_path: PathBuf,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    /// Outgoing queue per peer by replica id; None for this node itself.
    peers: Vec<Option<mpsc::Sender<Message>>>,
    last_commit_record: u64,
    /// The (view, status, is primary) last logged.
    last_role: Option<(u64, replication::Status, bool)>,
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
            // Ticks come first: under a steady stream of requests the other
            // arms are always ready, and a primary that stops ticking stops
            // sending heartbeats and gets deposed.
            tokio::select! {
                biased;
                _ = ticker.tick() => {
                    outputs.push(self.service.replica.borrow_mut().on_tick());
                }
                Some((from, message)) = self.inbound.recv() => {
                    outputs.push(self.service.replica.borrow_mut().on_message(from, message));
                }
                _ = self.service.wake_driver.notified() => {}
                _ = commit_timer.tick() => {
                    if let Err(error) = self.record_commit() {
                        return self.fail(error);
                    }
                }
            }
            self.gather(&mut outputs);
            if let Err(error) = self.carry_out(outputs) {
                return self.fail(error);
            }
        }
    }

    fn fail(&self, error: WalError) -> WalError {
        let replica = self.service.replica.borrow();
        error!(node = self.service.replica_id + 1, view = replica.view(), op = replica.op(),
            commit = replica.commit(), %error,
            "writing the log failed; this node stops");
        self.service.failed.set(true);
        error
    }

    /// Adds every input that is ready now, so one fsync covers them all.
    fn gather(&mut self, outputs: &mut Vec<Output>) {
        let mut replica = self.service.replica.borrow_mut();
        for _ in 0..ROUND_MESSAGES_MAX {
            match self.inbound.try_recv() {
                Ok((from, message)) => outputs.push(replica.on_message(from, message)),
                Err(_) => break,
            }
        }
        let queue = std::mem::take(&mut *self.service.queue.borrow_mut());
        if !queue.requests.is_empty() {
            outputs.push(replica.on_requests(queue.requests));
        }
        for read in queue.reads {
            outputs.push(replica.on_read(read));
        }
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
    /// apply and answer, then send.
    fn carry_out(&mut self, outputs: Vec<Output>) -> Result<(), WalError> {
        self.persist(&outputs)?;
        for output in outputs {
            self.answer_accepted(&output);
            self.apply_commits(&output);
            self.send(output.send);
            for (request, redirect) in output.rejected {
                let rejection = self.service.redirect_rejection(redirect);
                self.reply_write(request, Err(rejection));
            }
            self.answer_reads(output.reads_ready, output.reads_failed);
        }
        self.log_transition();
        let commit = self.service.replica.borrow().commit();
        self.service.applied.send_if_modified(|applied| {
            let moved = *applied != commit;
            *applied = commit;
            moved
        });
        Ok(())
    }

    fn persist(&mut self, outputs: &[Output]) -> Result<(), WalError> {
        let mut appended = false;
        let mut view_record = None;
        for output in outputs {
            if let Some(after) = output.truncate_after {
                self.wal.truncate_after(after)?;
                self.drop_writes_after(after);
            }
            for entry in &output.append {
                let record = LogEntry {
                    view: entry.view,
                    request: entry.payload.clone(),
                };
                self.wal.append(entry.op, &record.encode())?;
                appended = true;
            }
            if let Some(record) = output.store_view {
                view_record = Some(record);
            }
        }
        #[cfg(feature = "planted-bugs")]
        let appended = appended && !crate::planted::active(crate::planted::Bug::AckBeforeFsync);
        if appended {
            let durable = self.wal.sync()?;
            assert_eq!(
                durable,
                self.wal.last_op(),
                "node {}: the log reports op {durable} durable, but holds up to {}",
                self.service.replica_id + 1,
                self.wal.last_op()
            );
        }
        if let Some(record) = view_record {
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

    fn apply_commits(&mut self, output: &Output) {
        for entry in &output.commit {
            let outcome = apply_entry(&mut self.service.calendar.borrow_mut(), entry);
            self.service
                .commit_seen
                .set(self.service.commit_seen.get().max(entry.op));
            let waiting = self.service.writes_by_op.borrow_mut().remove(&entry.op);
            let Some(request) = waiting else { continue };
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
    }

    fn reply_write(&self, request: u64, result: Result<crate::calendar::Outcome, ApiRejection>) {
        if let Some(waiting) = self.service.writes.borrow_mut().remove(&request) {
            let _ = waiting.reply.send(result);
        }
    }

    fn answer_reads(&self, ready: Vec<u64>, failed: Vec<(u64, replication::Redirect)>) {
        let mut reads = self.service.reads.borrow_mut();
        for read in ready {
            if let Some(reply) = reads.remove(&read) {
                let _ = reply.send(Ok(()));
            }
        }
        for (read, redirect) in failed {
            if let Some(reply) = reads.remove(&read) {
                let _ = reply.send(Err(self.service.redirect_rejection(redirect)));
            }
        }
    }

    fn send(&self, messages: Vec<(ReplicaId, Message)>) {
        for (to, message) in messages {
            let Some(Some(queue)) = self.peers.get(to as usize) else {
                continue;
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
}
