//! The state one node serves to its client connections: the calendar, the
//! replica's view of the cluster, and the queues that connect client calls
//! to the [`driver`](crate::node::driver).
//!
//! A write is queued with [`Service::submit`]; the driver hands it to the
//! replica, persists and replicates it, applies it once committed and only
//! then resolves the caller. A read first passes [`Service::read_barrier`],
//! which the primary releases only after confirming its role with a quorum.

use std::cell::{Cell, Ref, RefCell};
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch, Notify};

use crate::calendar::{Calendar, Command, Outcome, Request};
use crate::node::host::Host;
use crate::replication::{ReadRef, Redirect, Replica, RequestRef, Status};
use crate::rpc::calendar_capnp::node_status::Role;
use crate::rpc::convert::ApiRejection;

/// One record of the write-ahead log: the view in which the primary
/// prepared it and the encoded calendar request.
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

/// The node status that `Gateway.status` reports.
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

/// A client write waiting for its op to commit.
pub(crate) struct WaitingWrite {
    pub reply: oneshot::Sender<Result<Outcome, ApiRejection>>,
    /// The (view, op) the primary gave it, once accepted.
    pub accepted: Option<(u64, u64)>,
}

/// Work queued for the driver's next round.
#[derive(Default)]
pub(crate) struct Queue {
    pub requests: Vec<(RequestRef, Vec<u8>)>,
    pub reads: Vec<ReadRef>,
}

/// The node's shared state, used by every connection on the node's thread.
pub struct Service {
    /// This node's replica id (0-based).
    pub replica_id: u8,
    /// Client addresses of all nodes by replica id, for not-primary hints.
    pub client_addresses: Vec<String>,
    /// Shared with a thread that encodes it for a snapshot; the driver then
    /// applies to a copy that shares its unchanged parts (see
    /// `node::snapshot`).
    pub(crate) calendar: RefCell<Arc<Calendar>>,
    pub(crate) replica: RefCell<Replica>,
    pub(crate) queue: RefCell<Queue>,
    pub(crate) writes: RefCell<BTreeMap<RequestRef, WaitingWrite>>,
    /// Accepted writes by op number, to find the caller when the op commits.
    pub(crate) writes_by_op: RefCell<BTreeMap<u64, RequestRef>>,
    pub(crate) reads: RefCell<BTreeMap<ReadRef, oneshot::Sender<Result<(), ApiRejection>>>>,
    next_ref: Cell<u64>,
    pub(crate) wake_driver: Notify,
    /// The op number of the last applied entry; subscribers wait on it.
    pub(crate) applied: watch::Sender<u64>,
    /// The highest commit number this node has heard of from a primary.
    pub(crate) commit_seen: Cell<u64>,
    /// Set when the log can no longer be written; every later call fails.
    pub(crate) failed: Cell<bool>,
    /// Entries applied since the simulation last took them, for its check
    /// that every node applies the same entry at each op.
    #[cfg(feature = "sim")]
    pub(crate) applied_entries: RefCell<Vec<crate::replication::Entry>>,
    pub host: Host,
}

impl Service {
    pub(crate) fn new(
        replica_id: u8,
        client_addresses: Vec<String>,
        calendar: Calendar,
        replica: Replica,
        host: Host,
    ) -> Service {
        let applied = replica.commit();
        Service {
            replica_id,
            client_addresses,
            calendar: RefCell::new(Arc::new(calendar)),
            replica: RefCell::new(replica),
            queue: RefCell::new(Queue::default()),
            writes: RefCell::new(BTreeMap::new()),
            writes_by_op: RefCell::new(BTreeMap::new()),
            reads: RefCell::new(BTreeMap::new()),
            next_ref: Cell::new(1),
            wake_driver: Notify::new(),
            applied: watch::Sender::new(applied),
            commit_seen: Cell::new(applied),
            failed: Cell::new(false),
            #[cfg(feature = "sim")]
            applied_entries: RefCell::new(Vec::new()),
            host,
        }
    }

    pub fn calendar(&self) -> Ref<'_, Calendar> {
        Ref::map(self.calendar.borrow(), |calendar| &**calendar)
    }

    /// Returns the committed entries of this node's log after its newest
    /// snapshot, for the simulation's check that the nodes' logs agree op
    /// for op.
    #[cfg(feature = "sim")]
    pub fn committed_log(&self) -> Vec<crate::replication::Entry> {
        let replica = self.replica.borrow();
        replica.log()[..(replica.commit() - replica.op_base()) as usize].to_vec()
    }

    /// Returns the entries applied since the last call, in op order.
    #[cfg(feature = "sim")]
    pub fn take_applied(&self) -> Vec<crate::replication::Entry> {
        std::mem::take(&mut *self.applied_entries.borrow_mut())
    }

    /// Returns a receiver that changes whenever new entries have been applied.
    pub fn watch_applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    fn next_ref(&self) -> u64 {
        let value = self.next_ref.get();
        self.next_ref.set(value + 1);
        value
    }

    /// Returns the op of the newest snapshot the replica's log starts
    /// after, 0 before the first snapshot.
    pub fn snapshot_op(&self) -> u64 {
        self.replica.borrow().op_base()
    }

    pub fn status(&self) -> StatusInfo {
        let replica = self.replica.borrow();
        let calendar = self.calendar();
        let role = match replica.status() {
            Status::Normal if replica.is_primary() => Role::Primary,
            Status::Normal => Role::Backup,
            Status::ViewChange => Role::ViewChange,
            Status::Recovering => Role::Recovering,
        };
        let primary_address = match replica.status() {
            Status::Normal => self.address_of(replica.primary()),
            _ => String::new(),
        };
        StatusInfo {
            id: self.replica_id + 1,
            role,
            view: replica.view(),
            op: replica.op(),
            commit: replica.commit(),
            primary_address,
            lag: self.commit_seen.get().saturating_sub(replica.commit()),
            users: calendar.user_count() as u64,
            events: calendar.event_count() as u64,
        }
    }

    fn address_of(&self, replica: u8) -> String {
        self.client_addresses
            .get(replica as usize)
            .cloned()
            .unwrap_or_default()
    }

    /// Turns the replica's reason for rejecting a call into a rejection a
    /// client can act on.
    pub(crate) fn redirect_rejection(&self, redirect: Redirect) -> ApiRejection {
        match redirect {
            Redirect::NotPrimary { view, primary } => ApiRejection::NotPrimary {
                primary_address: self.address_of(primary),
                view,
            },
            Redirect::NotNormal { view, status } => ApiRejection::Unavailable(format!(
                "node {} knows no primary yet ({} in view {view}); a majority of the {} nodes must be up",
                self.replica_id + 1,
                match status {
                    Status::Recovering => "recovering its log",
                    _ => "electing a primary",
                },
                self.client_addresses.len()
            )),
            Redirect::Unconfirmed { view } => ApiRejection::Unavailable(format!(
                "node {} could not confirm with a quorum that it is still primary of view {view}",
                self.replica_id + 1
            )),
        }
    }

    /// Fails with a redirect unless this node is the primary in normal
    /// status.
    pub fn ensure_primary(&self) -> Result<(), ApiRejection> {
        let replica = self.replica.borrow();
        match replica.status() {
            Status::Normal if replica.is_primary() => Ok(()),
            Status::Normal => Err(self.redirect_rejection(Redirect::NotPrimary {
                view: replica.view(),
                primary: replica.primary(),
            })),
            status => Err(self.redirect_rejection(Redirect::NotNormal {
                view: replica.view(),
                status,
            })),
        }
    }

    /// Returns true once writing the log failed and the node stopped.
    pub fn log_failed(&self) -> bool {
        self.failed.get()
    }

    fn check_failed(&self) -> Result<(), ApiRejection> {
        if self.failed.get() {
            return Err(ApiRejection::Unavailable(format!(
                "node {} stopped writing its log after an I/O error; see its log",
                self.replica_id + 1
            )));
        }
        Ok(())
    }

    /// Replicates, commits and applies one command, returning its outcome.
    pub async fn submit(
        &self,
        client_id: u64,
        seq: u64,
        command: Command,
    ) -> Result<Outcome, ApiRejection> {
        self.check_failed()?;
        let request = Request {
            client_id,
            seq,
            now_ms: self.host.clock.now_ms(),
            command,
        };
        let reference = self.next_ref();
        let (reply, outcome) = oneshot::channel();
        let waiting = WaitingWrite {
            reply,
            accepted: None,
        };
        self.writes.borrow_mut().insert(reference, waiting);
        self.queue
            .borrow_mut()
            .requests
            .push((reference, request.encode()));
        self.wake_driver.notify_one();
        outcome.await.unwrap_or_else(|_| {
            Err(ApiRejection::Unavailable(
                "the node stopped before the write committed".into(),
            ))
        })
    }

    /// Waits until this node may serve a linearizable read: it is the
    /// primary, a quorum confirmed that after the call began, and every op
    /// of earlier views is applied.
    pub async fn read_barrier(&self) -> Result<(), ApiRejection> {
        self.check_failed()?;
        let reference = self.next_ref();
        let (reply, ready) = oneshot::channel();
        self.reads.borrow_mut().insert(reference, reply);
        self.queue.borrow_mut().reads.push(reference);
        self.wake_driver.notify_one();
        ready.await.unwrap_or_else(|_| {
            Err(ApiRejection::Unavailable(
                "the node stopped before the read was confirmed".into(),
            ))
        })
    }
}
