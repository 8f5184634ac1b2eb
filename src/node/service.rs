//! The state one node serves: the calendar, the queue of requests waiting to
//! be logged, and the committer that logs, syncs and applies them.
//!
//! Writes take one path: `submit` queues a command, the committer appends
//! every queued command to the write-ahead log, makes them durable with one
//! fsync (group commit), applies them in log order and only then resolves
//! each caller. Nothing is answered before it is durable.

use std::cell::{Cell, Ref, RefCell};
use std::path::Path;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch, Notify};
use tracing::{error, info, warn};

use crate::calendar::{Calendar, Command, Outcome, Request};
use crate::node::clock::Clock;
use crate::rpc::calendar_capnp::node_status::Role;
use crate::rpc::convert::ApiRejection;
use crate::wal::{Disk, Wal, WalError, WalOptions};

/// One record of the write-ahead log: the view in which it was prepared and
/// the encoded calendar request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub view: u64,
    pub request: Vec<u8>,
}

impl LogEntry {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a LogEntry always serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// A request waiting for the committer.
struct Pending {
    request: Request,
    reply: oneshot::Sender<Outcome>,
}

/// Why a node could not start on its data directory.
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
}

/// What `Gateway.status` reports about a node.
#[derive(Clone, Debug)]
pub struct StatusInfo {
    pub id: u8,
    pub role: Role,
    pub view: u64,
    pub op: u64,
    pub commit: u64,
    pub primary_address: String,
    pub lag: u64,
    pub users: u64,
    pub events: u64,
}

/// The node's shared state, used by every connection on the node's thread.
pub struct Service {
    pub id: u8,
    /// The address clients reach this node at, reported in status and in
    /// not-primary hints.
    pub client_address: String,
    calendar: RefCell<Calendar>,
    pending: RefCell<Vec<Pending>>,
    wake_committer: Notify,
    /// The op number of the last applied entry; subscribers wait on it.
    applied: watch::Sender<u64>,
    /// Set when the log can no longer be written; every later write fails.
    failed: Cell<bool>,
    clock: Clock,
}

impl Service {
    pub fn status(&self) -> StatusInfo {
        let calendar = self.calendar();
        let applied = self.applied_op();
        StatusInfo {
            id: self.id,
            role: Role::Primary,
            view: 0,
            op: applied,
            commit: applied,
            primary_address: self.client_address.clone(),
            lag: 0,
            users: calendar.user_count() as u64,
            events: calendar.event_count() as u64,
        }
    }

    pub fn calendar(&self) -> Ref<'_, Calendar> {
        self.calendar.borrow()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn applied_op(&self) -> u64 {
        *self.applied.borrow()
    }

    /// A receiver that changes whenever new entries have been applied.
    pub fn watch_applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Logs, syncs and applies one command, returning its outcome once it is
    /// durable.
    pub async fn submit(
        &self,
        client_id: u64,
        seq: u64,
        command: Command,
    ) -> Result<Outcome, ApiRejection> {
        if self.failed.get() {
            return Err(ApiRejection::Unavailable(
                "this node's log failed to write; see its log".into(),
            ));
        }
        let request = Request {
            client_id,
            seq,
            now_ms: self.clock.now_ms(),
            command,
        };
        let (reply, outcome) = oneshot::channel();
        self.pending.borrow_mut().push(Pending { request, reply });
        self.wake_committer.notify_one();
        outcome.await.map_err(|_| {
            ApiRejection::Unavailable("the node stopped before the write was durable".into())
        })
    }

    /// Waits until every write acknowledged before the call is visible. A
    /// single node applies before it acknowledges, so there is nothing to
    /// wait for.
    pub async fn read_barrier(&self) -> Result<(), ApiRejection> {
        Ok(())
    }
}

/// Opens the log in `dir`, replays it into a fresh calendar and returns the
/// service with the committer that must be spawned next to it.
pub fn open<D: Disk>(
    id: u8,
    client_address: String,
    disk: D,
    dir: &Path,
    clock: Clock,
) -> Result<(Rc<Service>, Committer<D>), StartError> {
    let (wal, recovery) = Wal::open(disk, dir, WalOptions::default())?;
    let mut calendar = Calendar::new();
    let mut last_op = 0;
    for record in &recovery.records {
        let bad_entry = |reason: String| StartError::BadEntry {
            dir: dir.display().to_string(),
            op: record.op,
            reason,
        };
        let entry = LogEntry::decode(&record.payload).map_err(|e| bad_entry(e.to_string()))?;
        let request = Request::decode(&entry.request).map_err(|e| bad_entry(e.to_string()))?;
        calendar.apply(&request);
        last_op = record.op;
    }
    info!(
        node = id,
        op = last_op,
        users = calendar.user_count(),
        events = calendar.event_count(),
        "replayed the write-ahead log"
    );
    let service = Rc::new(Service {
        id,
        client_address,
        calendar: RefCell::new(calendar),
        pending: RefCell::new(Vec::new()),
        wake_committer: Notify::new(),
        applied: watch::Sender::new(last_op),
        failed: Cell::new(false),
        clock,
    });
    let committer = Committer {
        service: service.clone(),
        wal,
        last_op,
    };
    Ok((service, committer))
}

/// Owns the write-ahead log and turns queued requests into applied ones.
pub struct Committer<D: Disk> {
    service: Rc<Service>,
    wal: Wal<D>,
    last_op: u64,
}

impl<D: Disk> Committer<D> {
    /// Runs until the log fails to write.
    pub async fn run(mut self) {
        loop {
            self.service.wake_committer.notified().await;
            let batch: Vec<Pending> = std::mem::take(&mut *self.service.pending.borrow_mut());
            if batch.is_empty() {
                continue;
            }
            if let Err(error) = self.commit(batch) {
                error!(node = self.service.id, op = self.last_op, %error,
                    "writing the log failed; this node accepts no more writes");
                self.service.failed.set(true);
                return;
            }
        }
    }

    /// Appends a batch, makes it durable with one sync, applies it and
    /// answers every caller in log order.
    fn commit(&mut self, batch: Vec<Pending>) -> Result<(), WalError> {
        let first_op = self.last_op + 1;
        for (index, pending) in batch.iter().enumerate() {
            let entry = LogEntry {
                view: 0,
                request: pending.request.encode(),
            };
            self.wal.append(first_op + index as u64, &entry.encode())?;
        }
        let durable = self.wal.sync()?;
        self.last_op = first_op + batch.len() as u64 - 1;
        assert_eq!(
            durable, self.last_op,
            "node {}: the log reports op {durable} durable after appending up to {}",
            self.service.id, self.last_op
        );
        for pending in batch {
            let outcome = self.service.calendar.borrow_mut().apply(&pending.request);
            if pending.reply.send(outcome).is_err() {
                warn!(
                    node = self.service.id,
                    client = pending.request.client_id,
                    seq = pending.request.seq,
                    "the caller left before its write committed"
                );
            }
        }
        self.service.applied.send_replace(self.last_op);
        Ok(())
    }
}
