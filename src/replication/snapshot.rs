//! Compaction and state transfer by snapshot.
//!
//! The shell owns the snapshot bytes. The replica only tracks the op a
//! snapshot covers (`op_base`), sends a lagging peer `NewSnapshot` when the
//! entries it requested are compacted, and moves its own log past a
//! snapshot the shell installed.

use super::message::Message;
use super::replica::Replica;
use super::{Output, ReplicaId, Status};

/// A snapshot the shell must fetch: the file of replica `from` that covers
/// the ops up to `op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotFetch {
    pub from: ReplicaId,
    pub op: u64,
}

impl Replica {
    /// Drops the log entries up to `op` from memory, after the shell has
    /// made a snapshot of the state machine at `op` durable. Does nothing
    /// when `op` is not above the current snapshot op.
    ///
    /// # Panics
    ///
    /// If `op` is above the commit number, because a snapshot may contain
    /// committed ops only.
    pub fn compact(&mut self, op: u64) {
        assert!(
            op <= self.commit,
            "replica {} view {} op {}: snapshot at {op} is above commit {}",
            self.id(),
            self.view,
            self.op(),
            self.commit
        );
        if op <= self.op_base {
            return;
        }
        self.log.drain(..(op - self.op_base) as usize);
        self.op_base = op;
        self.check_invariants();
    }

    /// Moves this replica past a snapshot at `op` that the shell fetched
    /// from a peer, made durable and loaded into its state machine. The shell
    /// has also emptied its log, so the replica drops its whole log and then
    /// requests the entries after `op` (in recovery, it sends recovery again
    /// to get the primary's state).
    ///
    /// The shell must check [`Replica::wants_snapshot`] first.
    ///
    /// # Panics
    ///
    /// If the replica does not want a snapshot at `op`, because installing
    /// it could drop entries this replica acknowledged.
    pub fn install_snapshot(&mut self, op: u64) -> Output {
        let mut out = Output::default();
        assert!(
            self.wants_snapshot(op),
            "replica {} view {} op {} commit {}: installing an unwanted snapshot at {op}",
            self.id(),
            self.view,
            self.op(),
            self.commit
        );
        tracing::info!(
            node = self.id() + 1,
            view = self.view,
            status = ?self.status,
            op_before = self.op(),
            op,
            "installed a snapshot from a peer"
        );
        self.log.clear();
        self.op_base = op;
        self.commit = op;
        self.own_durable = self.own_durable.map(|_| op);
        if self.status == Status::Recovering {
            self.recovery_responses.clear();
            self.send_recovery(&mut out);
        } else {
            self.state_requested_at = None;
            self.request_state(&mut out);
        }
        self.check_invariants();
        out
    }

    /// Returns true when a snapshot at `op` brings this replica forward: it
    /// is ahead of the commit number, and a normal replica's log does not
    /// already contain op. A normal backup may have acknowledged its entries,
    /// so it keeps them and lets the commit number catch up instead.
    pub fn wants_snapshot(&self, op: u64) -> bool {
        let in_log = self.status == Status::Normal && op <= self.op();
        op > self.commit && !in_log
    }

    /// Returns the reply to a peer whose missing entries are compacted here.
    pub(super) fn new_snapshot(&self) -> Message {
        Message::NewSnapshot {
            view: self.view,
            op: self.op_base,
            commit: self.commit,
        }
    }

    pub(super) fn on_new_snapshot(
        &mut self,
        from: ReplicaId,
        view: u64,
        op: u64,
        commit: u64,
        out: &mut Output,
    ) {
        if view != self.view {
            self.ignore("new_snapshot", view, "reply for another view");
            return;
        }
        if self.status == Status::Recovering || from != self.primary() || self.is_primary() {
            self.ignore("new_snapshot", view, "not a backup of the sender");
            return;
        }
        if op > commit {
            self.ignore("new_snapshot", view, "snapshot op above the commit number");
            return;
        }
        if !self.wants_snapshot(op) {
            self.ignore(
                "new_snapshot",
                view,
                "snapshot is not ahead of commit, or the log holds its ops",
            );
            return;
        }
        self.ticks_idle = 0;
        out.fetch_snapshot = Some(SnapshotFetch { from, op });
    }
}

#[cfg(test)]
mod tests {
    use super::super::harness::{entry, Cluster};
    use super::super::{Durable, Message, Replica, Status};
    use super::*;

    /// Commits `count` requests on every replica of a healthy cluster.
    fn commit_requests(cluster: &mut Cluster, primary: ReplicaId, count: u8) {
        for i in 0..count {
            cluster.request(primary, vec![i]);
        }
        cluster.deliver_all();
        cluster.heartbeat();
    }

    #[test]
    fn compact_drops_prefix() {
        let mut cluster = Cluster::new(3, 1);
        commit_requests(&mut cluster, 0, 5);
        cluster.compact(0, 3);
        let replica = cluster.replica(0);
        assert_eq!(replica.op_base(), 3);
        assert_eq!(replica.op(), 5);
        let ops: Vec<u64> = replica.log().iter().map(|entry| entry.op).collect();
        assert_eq!(ops, vec![4, 5]);
    }

    #[test]
    fn compact_boundary_at_commit() {
        let mut cluster = Cluster::new(3, 1);
        commit_requests(&mut cluster, 0, 4);
        cluster.compact(1, 4);
        assert_eq!(cluster.replica(1).op_base(), 4);
        assert!(cluster.replica(1).log().is_empty());
        // Compacting at or below the snapshot op changes nothing.
        cluster.compact(1, 2);
        assert_eq!(cluster.replica(1).op_base(), 4);
        // Prepares continue right after the snapshot.
        commit_requests(&mut cluster, 0, 1);
        assert_eq!(cluster.replica(1).op(), 5);
        assert_eq!(cluster.replica(1).log()[0].op, 5);
    }

    #[test]
    #[should_panic(expected = "above commit")]
    fn compact_above_commit_panics() {
        let mut cluster = Cluster::new(3, 1);
        cluster.request(0, b"a".to_vec());
        let mut replica = cluster.replicas[1].take().unwrap();
        replica.compact(1);
    }

    #[test]
    fn restart_from_snapshot_continues() {
        let durable = Durable {
            view: 2,
            log_view: 2,
            op_base: 10,
            entries: vec![entry(2, 11), entry(2, 12)],
            commit: 11,
            intact: true,
            restarted: true,
        };
        let mut replica = Replica::new(super::super::harness::config(3, 1, 1), durable).unwrap();
        assert_eq!(replica.op(), 12);
        let heartbeat = Message::Commit {
            view: 2,
            commit: 12,
            round: 0,
        };
        let out = replica.on_message(2, heartbeat);
        assert_eq!(out.commit, vec![entry(2, 12)]);
    }

    #[test]
    fn restart_rejects_commit_below_snapshot() {
        let durable = Durable {
            op_base: 10,
            commit: 9,
            ..Durable::formatted()
        };
        let error = Replica::new(super::super::harness::config(3, 1, 1), durable).unwrap_err();
        assert!(
            error.to_string().contains("below the snapshot op"),
            "{error}"
        );
    }

    #[test]
    fn lagging_backup_fetches_snapshot() {
        let mut cluster = Cluster::new(3, 1);
        cluster.isolate(2);
        commit_requests(&mut cluster, 0, 6);
        for id in 0..2 {
            cluster.compact(id, 6);
        }
        cluster.heal();
        cluster.request(0, vec![7]);
        cluster.run(20);
        let backup = cluster.replica(2);
        assert_eq!(backup.op_base(), 6, "backup never installed the snapshot");
        assert_eq!(backup.op(), 7);
        assert_eq!(backup.commit(), 7);
        assert_eq!(cluster.snapshot_installs(2), vec![6]);
        assert_eq!(cluster.applied(2).last(), cluster.applied(0).last());
    }

    #[test]
    fn wiped_backup_recovers_by_snapshot() {
        let mut cluster = Cluster::new(3, 1);
        commit_requests(&mut cluster, 0, 5);
        for id in 0..3 {
            cluster.compact(id, 5);
        }
        commit_requests(&mut cluster, 0, 2);
        cluster.restart_wiped(2);
        cluster.run(60);
        let recovered = cluster.replica(2);
        assert_eq!(recovered.status(), Status::Normal);
        assert_eq!(recovered.op_base(), 5);
        assert_eq!(recovered.op(), 7);
        assert_eq!(recovered.commit(), 7);
        assert_eq!(recovered.log(), cluster.replica(0).log());
    }

    #[test]
    fn view_change_after_compaction() {
        let mut cluster = Cluster::new(3, 1);
        commit_requests(&mut cluster, 0, 8);
        for id in 0..3 {
            cluster.compact(id, 6);
        }
        cluster.request(0, b"uncommitted".to_vec());
        cluster.deliver_all();
        cluster.crash(0);
        cluster.run(60);
        let primary = (1..3).find(|&id| cluster.replica(id).is_primary());
        let primary = primary.expect("no new primary after compaction");
        let replica = cluster.replica(primary);
        assert_eq!(replica.op_base(), 6);
        assert_eq!(replica.op(), 9);
        cluster.request(primary, b"after".to_vec());
        cluster.run(5);
        for id in 1..3 {
            assert_eq!(cluster.replica(id).commit(), 10, "replica {id}");
        }
    }

    #[test]
    fn start_view_past_log_requests_state() {
        let mut cluster = Cluster::new(3, 1);
        let start_view = Message::StartView {
            view: 1,
            op: 12,
            base: 10,
            log: vec![entry(1, 11), entry(1, 12)],
            commit: 11,
        };
        let out = cluster.deliver(1, 2, start_view);
        assert_eq!(cluster.replica(2).status(), Status::ViewChange);
        assert_eq!(cluster.replica(2).view(), 1);
        assert!(out
            .send
            .contains(&(1, Message::GetState { view: 1, op: 0 })));
    }

    #[test]
    fn new_snapshot_within_log_ignored() {
        // Backup 1 contains ops 1-4 but has commit 2, so installing the
        // snapshot at 3 would drop entries it acknowledged.
        let mut cluster = Cluster::new(3, 1);
        commit_requests(&mut cluster, 0, 2);
        for i in 0..2u8 {
            cluster.request(0, vec![i]);
        }
        cluster.step_to(1);
        assert_eq!(cluster.replica(1).op(), 4);
        assert_eq!(cluster.replica(1).commit(), 2);
        let offer = Message::NewSnapshot {
            view: 0,
            op: 3,
            commit: 4,
        };
        assert_eq!(cluster.deliver(0, 1, offer).fetch_snapshot, None);
        assert!(!cluster.replica(1).wants_snapshot(3));
        assert!(cluster.replica(1).wants_snapshot(5));
    }

    #[test]
    fn new_snapshot_behind_commit_ignored() {
        let mut cluster = Cluster::new(3, 1);
        commit_requests(&mut cluster, 0, 3);
        let offer = Message::NewSnapshot {
            view: 0,
            op: 2,
            commit: 3,
        };
        let out = cluster.deliver(0, 1, offer);
        assert_eq!(out.fetch_snapshot, None);
        let forged = Message::NewSnapshot {
            view: 0,
            op: 9,
            commit: 9,
        };
        assert_eq!(cluster.deliver(2, 1, forged).fetch_snapshot, None);
    }
}
