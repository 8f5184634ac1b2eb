//! Normal operation: requests, prepare, prepare-ok, commit heartbeats, and
//! state transfer (get-state, new-state) for backups that lag or missed the
//! start of a view.

use super::message::{check_entries, Entry, Message};
use super::replica::Replica;
use super::{
    count_within_bytes, Accepted, Output, ReplicaId, RequestRef, Status, PREPARE_BYTES_MAX,
};

/// The maximum number of entries resent to a lagging backup in one prepare, so that one
/// message stays small; the next heartbeat round resends the next batch.
const PREPARE_RESEND_ENTRIES_MAX: usize = 64;

impl Replica {
    /// Takes a batch of client requests as consecutive ops in one prepare.
    /// Only the primary in normal status takes them; elsewhere each one is
    /// rejected with a redirect.
    pub fn on_requests(&mut self, requests: Vec<(RequestRef, Vec<u8>)>) -> Output {
        let mut out = Output::default();
        if !self.is_primary() {
            let redirect = self.redirect();
            tracing::debug!(
                replica = self.id(),
                view = self.view,
                status = ?self.status,
                count = requests.len(),
                "rejected requests: not the primary in normal status"
            );
            out.rejected = requests
                .into_iter()
                .map(|(request, _)| (request, redirect))
                .collect();
            return out;
        }
        if requests.is_empty() {
            return out;
        }

        let mut entries = Vec::with_capacity(requests.len());
        for (request, payload) in requests {
            let op = self.op() + entries.len() as u64 + 1;
            out.accepted.push(Accepted {
                request,
                view: self.view,
                op,
            });
            entries.push(Entry {
                view: self.view,
                op,
                payload,
            });
        }
        self.append(&entries, &mut out);

        // The primary's own append is durable before these sends, so it counts
        // itself towards the quorum of every op it prepares.
        let prepare = Message::Prepare {
            view: self.view,
            commit: self.commit,
            entries,
        };
        self.broadcast(prepare, &mut out);
        self.advance_commit(&mut out);
        self.check_invariants();
        out
    }

    /// Sends a commit heartbeat to every backup.
    pub(super) fn send_heartbeats(&mut self, out: &mut Output) {
        let commit = Message::Commit {
            view: self.view,
            commit: self.commit,
            round: self.read_round,
        };
        self.broadcast(commit, out);
    }

    /// Resends the entries a backup reported missing in its commit-ok, at
    /// most one batch per reply, because the prepares may have been lost.
    fn resend_prepare(&self, to: ReplicaId, acked: u64, out: &mut Output) {
        if acked >= self.op() {
            return;
        }
        if acked < self.op_base {
            out.send.push((to, self.new_snapshot()));
            return;
        }
        let missing = self.log_after(acked);
        let lengths = missing.iter().map(|entry| entry.payload.len());
        let count = count_within_bytes(lengths, PREPARE_BYTES_MAX).min(PREPARE_RESEND_ENTRIES_MAX);
        let prepare = Message::Prepare {
            view: self.view,
            commit: self.commit,
            entries: missing[..count].to_vec(),
        };
        out.send.push((to, prepare));
    }

    pub(super) fn on_prepare(
        &mut self,
        from: ReplicaId,
        view: u64,
        commit: u64,
        entries: Vec<Entry>,
        out: &mut Output,
    ) {
        if !self.accept_from_primary(from, "prepare", view, out) {
            return;
        }
        let Some(first) = entries.first().map(|entry| entry.op) else {
            self.ignore("prepare", view, "prepare carries no entries");
            return;
        };
        if first == 0 {
            self.ignore("prepare", view, "prepare starts at op 0");
            return;
        }
        if let Err(reason) = check_entries(&entries, first, view) {
            self.ignore("prepare", view, &reason);
            return;
        }
        if first > self.op() + 1 {
            self.ignore(
                "prepare",
                view,
                "gap before the first entry, requesting state",
            );
            self.request_state(out);
            return;
        }
        // Compacted entries are committed, so they cannot conflict.
        if let Some(conflict) = entries.iter().find(|entry| {
            self.entry_at(entry.op)
                .is_some_and(|own| own.view != entry.view)
        }) {
            let reason = format!(
                "entry op {} conflicts with the log of this view",
                conflict.op
            );
            self.ignore("prepare", view, &reason);
            return;
        }

        let fresh = (self.op() + 1 - first) as usize;
        if fresh == entries.len() {
            self.ignore("prepare", view, "duplicate prepare, acknowledging again");
        }
        self.append(&entries[fresh.min(entries.len())..], out);
        let prepare_ok = Message::PrepareOk {
            view: self.view,
            op: self.op(),
        };
        out.send.push((from, prepare_ok));
        #[cfg(feature = "planted-bugs")]
        let commit = if crate::planted::active(crate::planted::Bug::ApplyUncommitted) {
            self.op()
        } else {
            commit
        };
        self.commit_through(commit, out);
    }

    pub(super) fn on_prepare_ok(&mut self, from: ReplicaId, view: u64, op: u64, out: &mut Output) {
        if !self.accept_from_backup("prepare_ok", view, op) {
            return;
        }
        self.record_ack(from, op);
        self.advance_commit(out);
    }

    pub(super) fn on_commit(
        &mut self,
        from: ReplicaId,
        view: u64,
        commit: u64,
        round: u64,
        out: &mut Output,
    ) {
        if !self.accept_from_primary(from, "commit", view, out) {
            return;
        }
        self.commit_through(commit, out);
        if commit > self.op() {
            self.request_state(out);
        }
        let commit_ok = Message::CommitOk {
            view: self.view,
            op: self.op(),
            round,
        };
        out.send.push((from, commit_ok));
    }

    pub(super) fn on_commit_ok(
        &mut self,
        from: ReplicaId,
        view: u64,
        op: u64,
        round: u64,
        out: &mut Output,
    ) {
        if !self.accept_from_backup("commit_ok", view, op) {
            return;
        }
        self.record_ack(from, op);
        self.resend_prepare(from, op, out);
        if round == self.read_round {
            self.round_acks.insert(from);
        }
        self.advance_commit(out);
    }

    pub(super) fn on_get_state(&mut self, from: ReplicaId, view: u64, op: u64, out: &mut Output) {
        if view != self.view {
            self.ignore("get_state", view, "request for another view");
            return;
        }
        if self.status != Status::Normal {
            self.ignore("get_state", view, "not in normal status");
            return;
        }
        if op > self.op() {
            self.ignore(
                "get_state",
                view,
                "requester holds more ops than this replica",
            );
            return;
        }
        if op < self.op_base {
            tracing::info!(
                node = self.id() + 1,
                view = self.view,
                peer = from + 1,
                requested = op,
                op_base = self.op_base,
                "the log a peer requested is compacted, offering the snapshot"
            );
            out.send.push((from, self.new_snapshot()));
            return;
        }
        // A reply bounded in bytes is a prefix of the log, and the backup
        // fetches the rest through the resends that its commit-ok replies
        // trigger.
        let entries = self.log_after(op);
        let lengths = entries.iter().map(|entry| entry.payload.len());
        let count = count_within_bytes(lengths, PREPARE_BYTES_MAX);
        let new_state = Message::NewState {
            view: self.view,
            op,
            entries: entries[..count].to_vec(),
            commit: self.commit,
        };
        out.send.push((from, new_state));
    }

    pub(super) fn on_new_state(
        &mut self,
        from: ReplicaId,
        view: u64,
        base: u64,
        entries: Vec<Entry>,
        commit: u64,
        out: &mut Output,
    ) {
        if view != self.view {
            self.ignore("new_state", view, "reply for another view");
            return;
        }
        if self.status == Status::Recovering || self.primary() == self.id() {
            self.ignore("new_state", view, "no state was requested");
            return;
        }
        if let Err(reason) = check_entries(&entries, base + 1, view) {
            self.ignore("new_state", view, &reason);
            return;
        }

        if self.status == Status::Normal {
            self.extend_from_new_state(base, &entries, out);
        } else if !self.adopt_new_state(base, &entries, out) {
            return;
        }
        self.ticks_idle = 0;
        let prepare_ok = Message::PrepareOk {
            view: self.view,
            op: self.op(),
        };
        out.send.push((from, prepare_ok));
        self.commit_through(commit, out);
    }

    /// Normal backup: append what continues the log. The log already is a
    /// prefix of the primary's, so nothing is truncated: a delayed reply with
    /// fewer entries must not remove acknowledged ones.
    fn extend_from_new_state(&mut self, base: u64, entries: &[Entry], out: &mut Output) {
        if base > self.op() {
            self.ignore(
                "new_state",
                self.view,
                "entries start after the end of the log",
            );
            return;
        }
        let fresh = entries.iter().position(|entry| entry.op > self.op());
        if let Some(fresh) = fresh {
            self.append(&entries[fresh..], out);
        }
    }

    /// Replica waiting for the log of a started view: everything up to its
    /// commit number matches, so it replaces the rest with the reply's entries
    /// and becomes a normal backup of the view.
    fn adopt_new_state(&mut self, base: u64, entries: &[Entry], out: &mut Output) -> bool {
        if base > self.commit {
            self.ignore(
                "new_state",
                self.view,
                "entries start after the commit number",
            );
            return false;
        }
        if !self.replace_log_suffix(base, entries, out) {
            return false;
        }
        tracing::debug!(
            replica = self.id(),
            view = self.view,
            op = self.op(),
            "adopted the log of the view from new_state"
        );
        self.enter_view(self.view, Status::Normal, out);
        true
    }

    /// Common guards of messages from the primary (prepare, commit). Returns
    /// true when the message is for this normal backup's view.
    fn accept_from_primary(
        &mut self,
        from: ReplicaId,
        kind: &str,
        view: u64,
        out: &mut Output,
    ) -> bool {
        #[cfg(feature = "planted-bugs")]
        if view < self.view && crate::planted::active(crate::planted::Bug::StaleView) {
            (self.view, self.log_view) = (view, view);
        }
        if view < self.view {
            self.ignore(kind, view, "stale view");
            return false;
        }
        if self.status == Status::Recovering {
            self.ignore(kind, view, "recovering");
            return false;
        }
        if from != self.primary_of(view) {
            self.ignore(kind, view, "sender is not the primary of the view");
            return false;
        }
        if view > self.view {
            self.ignore(kind, view, "higher view, requesting its log");
            self.enter_view(view, Status::ViewChange, out);
            self.request_state(out);
            return false;
        }
        self.ticks_idle = 0;
        if self.status == Status::ViewChange {
            self.ignore(kind, view, "view started without us, requesting its log");
            self.request_state(out);
            return false;
        }
        true
    }

    /// Common guards of messages to the primary (prepare-ok, commit-ok).
    fn accept_from_backup(&self, kind: &str, view: u64, op: u64) -> bool {
        if view != self.view {
            self.ignore(kind, view, "not the current view");
            return false;
        }
        if !self.is_primary() {
            self.ignore(kind, view, "not the primary in normal status");
            return false;
        }
        if op > self.op() {
            self.ignore(kind, view, "acknowledges an op beyond the primary's log");
            return false;
        }
        true
    }

    /// Asks the primary for the log after what this replica can keep: its
    /// whole log when it is a normal backup of the view, its committed prefix
    /// otherwise. Skips the request when one was sent less than a heartbeat
    /// interval ago.
    pub(super) fn request_state(&mut self, out: &mut Output) {
        if let Some(at) = self.state_requested_at {
            if self.now < at + self.config.heartbeat_ticks {
                return;
            }
        }
        // Only the first request of a catch-up is logged at info level: a
        // node whose primary is down asks again at every heartbeat.
        let first = self.state_requested_at.is_none();
        self.state_requested_at = Some(self.now);
        let op = if self.status == Status::Normal {
            self.op()
        } else {
            self.commit
        };
        if first {
            tracing::info!(
                node = self.id() + 1,
                view = self.view,
                op = self.op(),
                commit = self.commit,
                after = op,
                "catching up: asking the primary for the log"
            );
        } else {
            tracing::debug!(
                node = self.id() + 1,
                view = self.view,
                after = op,
                "catching up: asking the primary for the log again"
            );
        }
        let get_state = Message::GetState {
            view: self.view,
            op,
        };
        out.send.push((self.primary(), get_state));
    }

    fn record_ack(&mut self, from: ReplicaId, op: u64) {
        let acked = self.acks.entry(from).or_insert(0);
        *acked = (*acked).max(op);
    }

    /// Primary: commits the highest op that f + 1 replicas hold durably (its
    /// own log counts through its durable op), then releases the reads that
    /// became ready.
    pub(super) fn advance_commit(&mut self, out: &mut Output) {
        let f = self.max_faulty();
        let own = self.own_durable.unwrap_or(self.op()).min(self.op());
        let mut durable: Vec<u64> = self.acks.values().copied().collect();
        durable.push(own);
        durable.sort_unstable_by(|a, b| b.cmp(a));
        let quorum_op = durable.get(f).copied().unwrap_or(0);
        #[cfg(feature = "planted-bugs")]
        let quorum_op = if crate::planted::active(crate::planted::Bug::SkipQuorum) {
            self.op()
        } else {
            quorum_op
        };
        self.commit_through(quorum_op, out);
        self.release_reads(out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::harness::{entry, Cluster};
    use super::super::{Redirect, Status};
    use super::*;

    #[test]
    fn primary_commit_waits_own_fsync() {
        let mut cluster = Cluster::new(3, 1);
        cluster.isolate(2);
        cluster.drive(0, |replica| replica.on_durable(0));
        cluster.request(0, b"a".to_vec());
        cluster.deliver_all();
        assert_eq!(
            cluster.replica(0).commit(),
            0,
            "a backup's ack alone must not commit while the primary's copy is not on disk"
        );
        let out = cluster.drive(0, |replica| replica.on_durable(1));
        assert_eq!(out.commit.len(), 1);
        assert_eq!(cluster.replica(0).commit(), 1);
    }

    #[test]
    fn primary_commits_on_backup_quorum() {
        let mut cluster = Cluster::new(5, 1);
        cluster.drive(0, |replica| replica.on_durable(0));
        cluster.request(0, b"a".to_vec());
        cluster.deliver_all();
        assert_eq!(
            cluster.replica(0).commit(),
            1,
            "f + 1 backups hold the op durably, which is a quorum without the primary"
        );
        let mut cluster = Cluster::new(5, 1);
        cluster.isolate(3);
        cluster.isolate(4);
        cluster.drive(0, |replica| replica.on_durable(0));
        cluster.request(0, b"a".to_vec());
        cluster.deliver_all();
        assert_eq!(
            cluster.replica(0).commit(),
            0,
            "f backups are not enough alone"
        );
    }

    /// Returns the payload bytes of a prepare's or new-state's entries.
    fn entry_bytes(message: &Message) -> usize {
        let entries = match message {
            Message::Prepare { entries, .. } | Message::NewState { entries, .. } => entries,
            other => panic!("expected a prepare or new-state, got {other:?}"),
        };
        entries.iter().map(|entry| entry.payload.len()).sum()
    }

    #[test]
    fn lagging_backup_catch_up_bounded() {
        const OPS: u64 = 8;
        let mut cluster = Cluster::new(3, 1);
        cluster.isolate(2);
        for index in 0..OPS {
            cluster.request(0, vec![index as u8; 3 << 20]);
            cluster.deliver_all();
        }
        assert_eq!(cluster.replica(0).commit(), OPS);
        assert_eq!(cluster.replica(2).op(), 0);

        let view = cluster.replica(0).view();
        let out = cluster.drive(0, |replica| {
            let mut out = Output::default();
            replica.on_get_state(2, view, 0, &mut out);
            replica.resend_prepare(2, 0, &mut out);
            out
        });
        assert_eq!(out.send.len(), 2, "one new-state and one prepare");
        for (to, message) in &out.send {
            let bytes = entry_bytes(message);
            assert_eq!(*to, 2);
            assert!(bytes > 0, "{} carries no entries", message.kind());
            assert!(
                bytes <= PREPARE_BYTES_MAX,
                "{} carries {bytes} bytes",
                message.kind()
            );
        }

        cluster.heal();
        for _ in 0..OPS {
            cluster.heartbeat();
        }
        assert_eq!(cluster.replica(2).op(), OPS, "the backup caught up");
    }

    #[test]
    fn request_commits_on_all() {
        let mut cluster = Cluster::new(3, 1);
        let out = cluster.request(0, b"a".to_vec());
        assert_eq!(out.accepted.len(), 1);
        assert_eq!(out.accepted[0].op, 1);
        cluster.deliver_all();
        assert_eq!(cluster.replica(0).commit(), 1);
        cluster.heartbeat();
        for id in 0..3 {
            assert_eq!(cluster.replica(id).commit(), 1, "replica {id}");
            assert_eq!(cluster.applied(id).len(), 1, "replica {id}");
        }
    }

    #[test]
    fn primary_commits_with_f_backups() {
        let mut cluster = Cluster::new(3, 1);
        cluster.isolate(2);
        cluster.request(0, b"a".to_vec());
        cluster.deliver_all();
        assert_eq!(cluster.replica(0).commit(), 1);
        assert_eq!(cluster.replica(2).op(), 0);
    }

    #[test]
    fn primary_waits_for_quorum() {
        let mut cluster = Cluster::new(5, 1);
        cluster.isolate(3);
        cluster.isolate(4);
        cluster.isolate(2);
        cluster.request(0, b"a".to_vec());
        cluster.deliver_all();
        assert_eq!(cluster.replica(0).commit(), 0, "one backup is not f = 2");
        cluster.heal();
        cluster.heartbeat();
        assert_eq!(
            cluster.replica(0).commit(),
            1,
            "commit-ok must trigger the resend"
        );
    }

    #[test]
    fn backup_rejects_request() {
        let mut cluster = Cluster::new(3, 1);
        let out = cluster.request(1, b"a".to_vec());
        let redirect = Redirect::NotPrimary {
            view: 0,
            primary: 0,
        };
        assert_eq!(out.rejected, vec![(0, redirect)]);
        assert!(out.accepted.is_empty());
        assert!(out.send.is_empty());
    }

    #[test]
    fn batch_and_pipeline() {
        let mut cluster = Cluster::new(3, 1);
        let batch = (0..3).map(|i| (i, vec![i as u8])).collect();
        let out = cluster.requests(0, batch);
        let ops: Vec<u64> = out.accepted.iter().map(|accepted| accepted.op).collect();
        assert_eq!(ops, vec![1, 2, 3]);
        let prepares = out
            .send
            .iter()
            .filter(|(_, message)| matches!(message, Message::Prepare { entries, .. } if entries.len() == 3))
            .count();
        assert_eq!(prepares, 2, "one prepare with three entries per backup");
        // Two more prepares before any prepare-ok arrives.
        cluster.request(0, b"d".to_vec());
        cluster.request(0, b"e".to_vec());
        assert_eq!(cluster.replica(0).op(), 5);
        assert_eq!(cluster.replica(0).commit(), 0);
        cluster.deliver_all();
        assert_eq!(cluster.replica(0).commit(), 5);
    }

    #[test]
    fn commits_applied_in_order() {
        let mut cluster = Cluster::new(3, 1);
        for i in 0..10u8 {
            cluster.request(0, vec![i]);
        }
        cluster.deliver_reversed();
        cluster.heartbeat();
        for id in 0..3 {
            let ops: Vec<u64> = cluster.applied(id).iter().map(|entry| entry.op).collect();
            assert_eq!(ops, (1..=10).collect::<Vec<_>>(), "replica {id}");
        }
    }

    #[test]
    fn duplicate_prepare_ignored() {
        let mut cluster = Cluster::new(3, 1);
        let out = cluster.request(0, b"a".to_vec());
        let prepare = out.send[0].1.clone();
        cluster.deliver_all();
        let again = cluster.deliver(0, 1, prepare);
        assert!(again.append.is_empty(), "appended a duplicate entry");
        assert_eq!(cluster.replica(1).op(), 1);
        let acks: Vec<_> = again
            .send
            .iter()
            .map(|(_, message)| message.clone())
            .collect();
        assert_eq!(acks, vec![Message::PrepareOk { view: 0, op: 1 }]);
    }

    #[test]
    fn stale_view_prepare_ignored() {
        let mut cluster = Cluster::new(3, 1);
        cluster.elect(1);
        let stale = Message::Prepare {
            view: 0,
            commit: 0,
            entries: vec![entry(0, 1)],
        };
        let out = cluster.deliver(0, 2, stale);
        assert!(out.is_empty());
        assert_eq!(cluster.replica(2).op(), 0);
    }

    #[test]
    fn prepare_from_non_primary_ignored() {
        let mut cluster = Cluster::new(3, 1);
        let forged = Message::Prepare {
            view: 0,
            commit: 0,
            entries: vec![entry(0, 1)],
        };
        assert!(cluster.deliver(2, 1, forged).is_empty());
    }

    #[test]
    fn malformed_prepare_ignored() {
        let mut cluster = Cluster::new(3, 1);
        let gap = Message::Prepare {
            view: 0,
            commit: 0,
            entries: vec![entry(0, 1), entry(0, 3)],
        };
        assert!(cluster.deliver(0, 1, gap).is_empty());
        let future_view = Message::Prepare {
            view: 0,
            commit: 0,
            entries: vec![entry(5, 1)],
        };
        assert!(cluster.deliver(0, 1, future_view).is_empty());
        let empty = Message::Prepare {
            view: 0,
            commit: 9,
            entries: vec![],
        };
        assert!(cluster.deliver(0, 1, empty).is_empty());
        assert_eq!(cluster.replica(1).commit(), 0);
    }

    #[test]
    fn heartbeat_commits_backups() {
        let mut cluster = Cluster::new(3, 1);
        cluster.request(0, b"a".to_vec());
        cluster.deliver_all();
        assert_eq!(cluster.replica(1).commit(), 0);
        let heartbeats = cluster.tick_until_send(0);
        assert!(heartbeats
            .iter()
            .any(|(_, message)| matches!(message, Message::Commit { commit: 1, .. })));
        cluster.deliver_all();
        assert_eq!(cluster.replica(1).commit(), 1);
        assert_eq!(cluster.replica(2).commit(), 1);
    }

    #[test]
    fn lagging_backup_catches_up() {
        let mut cluster = Cluster::new(3, 1);
        cluster.isolate(2);
        for i in 0..5u8 {
            cluster.request(0, vec![i]);
        }
        cluster.deliver_all();
        cluster.heal();
        cluster.request(0, vec![5]);
        let out = cluster.step_to(2);
        assert!(
            out.send
                .iter()
                .any(|(to, message)| *to == 0 && *message == Message::GetState { view: 0, op: 0 }),
            "gap must trigger get_state: {out:?}"
        );
        cluster.deliver_all();
        cluster.heartbeat();
        assert_eq!(cluster.replica(2).op(), 6);
        assert_eq!(cluster.replica(2).commit(), 6);
        assert_eq!(cluster.applied(2), cluster.applied(0));
    }

    #[test]
    fn lost_last_prepare_resent() {
        let mut cluster = Cluster::new(3, 1);
        cluster.request(0, b"a".to_vec());
        cluster.deliver_all();
        cluster.request(0, b"b".to_vec());
        cluster.drop_all();
        cluster.heartbeat();
        cluster.heartbeat();
        assert_eq!(cluster.replica(0).commit(), 2);
        assert_eq!(cluster.replica(1).op(), 2);
    }

    #[test]
    fn backup_learns_commit_it_lacks() {
        let mut cluster = Cluster::new(3, 1);
        cluster.isolate(2);
        cluster.request(0, b"a".to_vec());
        cluster.deliver_all();
        cluster.heal();
        let commit = Message::Commit {
            view: 0,
            commit: 1,
            round: 0,
        };
        let out = cluster.deliver(0, 2, commit);
        assert!(out
            .send
            .contains(&(0, Message::GetState { view: 0, op: 0 })));
        cluster.deliver_all();
        assert_eq!(cluster.replica(2).commit(), 1);
    }

    #[test]
    fn single_replica_commits_alone() {
        let mut cluster = Cluster::new(1, 1);
        let out = cluster.request(0, b"a".to_vec());
        assert_eq!(out.commit.len(), 1);
        assert_eq!(cluster.replica(0).status(), Status::Normal);
    }

    #[test]
    fn prepare_ok_names_persisted_op() {
        // A backup acknowledges only ops whose entries (and every entry
        // before them) are in the same or an earlier output's append.
        let mut cluster = Cluster::new(3, 3);
        cluster.isolate(2);
        for i in 0..4u8 {
            cluster.request(0, vec![i]);
            cluster.deliver_all();
        }
        cluster.heal();
        cluster.request(0, vec![9]);
        cluster.run(40);
        assert!(cluster.acks_checked() > 0);
        assert_eq!(cluster.replica(2).op(), 5);
    }
}
