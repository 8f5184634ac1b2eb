//! View change: start-view-change, do-view-change and start-view.
//!
//! A replica that suspects the primary moves to the next view and persists it
//! before saying so, so that after a restart it never takes part in the view
//! it left. Once f other replicas have sent the same, each sends its log to
//! the new primary, which takes the log with the highest (log_view, op) of
//! f + 1 votes (its own included) and starts the view with it.

use super::message::{check_entries, Entry, Message};
use super::replica::{Replica, Vote};
use super::{Output, ReplicaId, Status};

/// Of the view changes started one after another without reaching normal
/// operation, every this many views one is logged at info level.
const VIEW_CHANGES_PER_INFO_LINE: u64 = 64;

impl Replica {
    /// Moves to view `view` in view-change status and announces it.
    pub(super) fn start_view_change(&mut self, view: u64, out: &mut Output) {
        assert!(
            view > self.view,
            "replica {} view {} op {}: view change to view {view} is not ahead",
            self.id(),
            self.view,
            self.op()
        );
        // Without a quorum a node starts a view change every timeout, several
        // times a second: the first after normal operation and every 64th
        // view are logged at info level, the others at debug level.
        if self.status == Status::Normal || view.is_multiple_of(VIEW_CHANGES_PER_INFO_LINE) {
            tracing::info!(
                node = self.id() + 1,
                view,
                from_view = self.view,
                op = self.op(),
                commit = self.commit,
                "starting a view change"
            );
        } else {
            tracing::debug!(
                node = self.id() + 1,
                view,
                from_view = self.view,
                "starting another view change"
            );
        }
        self.enter_view(view, Status::ViewChange, out);
        self.ticks_since_send = 0;
        self.broadcast(Message::StartViewChange { view }, out);
        if self.primary() == self.id() {
            self.record_own_vote();
        }
        self.send_do_view_change_on_quorum(out);
    }

    /// Resends this replica's part of an unfinished view change, because the
    /// earlier messages may have been lost.
    pub(super) fn resend_view_change(&mut self, out: &mut Output) {
        self.broadcast(Message::StartViewChange { view: self.view }, out);
        if self.do_view_change_sent && self.primary() != self.id() {
            out.send.push((self.primary(), self.do_view_change()));
        }
        if self.primary() != self.id() {
            // The view may have started without this replica.
            self.request_state(out);
        }
    }

    pub(super) fn record_own_vote(&mut self) {
        let vote = Vote {
            log_view: self.log_view,
            base: self.op_base,
            log: self.log.clone(),
            commit: self.commit,
        };
        self.votes.insert(self.id(), vote);
    }

    // DoViewChange and StartView carry the whole log after the sender's
    // snapshot, because the new primary must learn every op a quorum may
    // have acknowledged, so PREPARE_BYTES_MAX does not bound them. The
    // snapshot interval does: the node config caps `every_log_bytes` so that
    // this log stays below the peer port's traversal limit.
    fn do_view_change(&self) -> Message {
        Message::DoViewChange {
            view: self.view,
            log_view: self.log_view,
            op: self.op(),
            base: self.op_base,
            log: self.log.clone(),
            commit: self.commit,
        }
    }

    pub(super) fn on_start_view_change(&mut self, from: ReplicaId, view: u64, out: &mut Output) {
        if view < self.view {
            self.ignore("start_view_change", view, "stale view");
            return;
        }
        if self.status == Status::Recovering {
            self.ignore("start_view_change", view, "recovering replicas do not vote");
            return;
        }
        if view == self.view && self.status == Status::Normal {
            if self.primary() == self.id() {
                self.ignore(
                    "start_view_change",
                    view,
                    "view already started, resending it",
                );
                out.send.push((from, self.start_view()));
            } else {
                self.ignore("start_view_change", view, "view already started");
            }
            return;
        }
        if view > self.view {
            self.start_view_change(view, out);
        }
        self.start_view_change_from.insert(from);
        self.send_do_view_change_on_quorum(out);
    }

    /// Sends do-view-change once f other replicas announced the view change.
    fn send_do_view_change_on_quorum(&mut self, out: &mut Output) {
        if self.do_view_change_sent || self.start_view_change_from.len() < self.max_faulty() {
            return;
        }
        self.do_view_change_sent = true;
        if self.primary() == self.id() {
            self.start_view_on_quorum(out);
        } else {
            out.send.push((self.primary(), self.do_view_change()));
        }
    }

    pub(super) fn on_do_view_change(
        &mut self,
        from: ReplicaId,
        view: u64,
        op: u64,
        vote: Vote,
        out: &mut Output,
    ) {
        if view < self.view {
            self.ignore("do_view_change", view, "stale view");
            return;
        }
        if self.status == Status::Recovering {
            self.ignore("do_view_change", view, "recovering replicas do not vote");
            return;
        }
        if self.primary_of(view) != self.id() {
            self.ignore("do_view_change", view, "not the primary of that view");
            return;
        }
        let consistent = vote.log_view < view
            && Some(op) == vote.base.checked_add(vote.log.len() as u64)
            && vote.base <= vote.commit
            && vote.commit <= op;
        if !consistent {
            self.ignore(
                "do_view_change",
                view,
                "log_view, base, op or commit is inconsistent",
            );
            return;
        }
        if let Err(reason) = check_entries(&vote.log, vote.base + 1, vote.log_view) {
            self.ignore("do_view_change", view, &reason);
            return;
        }
        if view == self.view && self.status == Status::Normal {
            self.ignore("do_view_change", view, "view already started, resending it");
            out.send.push((from, self.start_view()));
            return;
        }
        if view > self.view {
            self.start_view_change(view, out);
        }
        self.votes.insert(from, vote);
        self.start_view_on_quorum(out);
    }

    /// New primary: starts the view once f + 1 votes, its own included, are in.
    fn start_view_on_quorum(&mut self, out: &mut Output) {
        if self.votes.len() <= self.max_faulty() || !self.votes.contains_key(&self.id()) {
            return;
        }
        let op_of = |vote: &Vote| vote.base + vote.log.len() as u64;
        let mut best = &self.votes[&self.id()];
        for vote in self.votes.values() {
            if (vote.log_view, op_of(vote)) > (best.log_view, op_of(best)) {
                best = vote;
            }
        }
        if best.base > self.commit {
            // NOTE: this replica would need the voter's snapshot first,
            // because its own entries up to best.base may be stale. It leaves
            // the view to time out, so the primary of a later view, which is
            // another replica, takes over.
            tracing::warn!(
                node = self.id() + 1,
                view = self.view,
                commit = self.commit,
                best_base = best.base,
                "cannot start the view: the best log starts after this replica's commit number"
            );
            return;
        }
        let votes = std::mem::take(&mut self.votes);
        let best = votes
            .values()
            .max_by_key(|vote| (vote.log_view, op_of(vote)))
            .expect("at least this replica's own vote");
        let commit = votes.values().map(|vote| vote.commit).max().unwrap_or(0);
        if !self.replace_log_suffix(best.base, &best.log, out) {
            return;
        }

        self.enter_view(self.view, Status::Normal, out);
        self.op_view_start = self.op();
        tracing::debug!(
            replica = self.id(),
            view = self.view,
            op = self.op(),
            commit,
            "starting the view as primary"
        );
        self.broadcast(self.start_view(), out);
        self.commit_through(commit, out);
        self.ticks_since_send = 0;
    }

    fn start_view(&self) -> Message {
        Message::StartView {
            view: self.view,
            op: self.op(),
            base: self.op_base,
            log: self.log.clone(),
            commit: self.commit,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_start_view(
        &mut self,
        from: ReplicaId,
        view: u64,
        op: u64,
        base: u64,
        log: Vec<Entry>,
        commit: u64,
        out: &mut Output,
    ) {
        if view < self.view {
            self.ignore("start_view", view, "stale view");
            return;
        }
        if self.status == Status::Recovering {
            self.ignore("start_view", view, "recovering");
            return;
        }
        if from != self.primary_of(view) {
            self.ignore("start_view", view, "sender is not the primary of the view");
            return;
        }
        if view == self.view && self.status == Status::Normal {
            self.ignore("start_view", view, "duplicate start_view");
            return;
        }
        if Some(op) != base.checked_add(log.len() as u64) || commit > op || base > commit {
            self.ignore(
                "start_view",
                view,
                "base, op or commit does not match the log",
            );
            return;
        }
        if let Err(reason) = check_entries(&log, base + 1, view) {
            self.ignore("start_view", view, &reason);
            return;
        }
        if base > self.commit {
            // The new primary compacted entries this replica has not
            // committed: join the view and catch up by state transfer.
            self.ignore(
                "start_view",
                view,
                "log starts after our commit, requesting state",
            );
            self.enter_view(view, Status::ViewChange, out);
            self.request_state(out);
            return;
        }

        if !self.replace_log_suffix(base, &log, out) {
            return;
        }
        self.enter_view(view, Status::Normal, out);
        let prepare_ok = Message::PrepareOk {
            view: self.view,
            op: self.op(),
        };
        out.send.push((from, prepare_ok));
        self.commit_through(commit, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::harness::{entry, Cluster};
    use super::super::{Message, Status, ViewRecord};

    #[test]
    fn primary_crash_elects_next() {
        let mut cluster = Cluster::new(3, 1);
        cluster.request(0, b"a".to_vec());
        cluster.deliver_all();
        cluster.crash(0);
        cluster.run(60);
        let primary = cluster.replica(1);
        assert!(primary.is_primary(), "replica 1 is not primary of view 1");
        assert_eq!(primary.view(), 1);
        assert_eq!(primary.commit(), 1);
        assert_eq!(cluster.replica(2).status(), Status::Normal);
        assert_eq!(cluster.replica(2).view(), 1);
        let out = cluster.request(1, b"b".to_vec());
        assert_eq!(out.accepted[0].op, 2);
        cluster.deliver_all();
        assert_eq!(cluster.replica(1).commit(), 2);
    }

    #[test]
    fn view_persisted_before_votes() {
        let mut cluster = Cluster::new(3, 1);
        let out = cluster.start_view_change(0, 1);
        let record = ViewRecord {
            view: 1,
            log_view: 0,
        };
        assert_eq!(out.store_view, Some(record));
        assert!(out
            .send
            .iter()
            .all(|(_, message)| *message == Message::StartViewChange { view: 1 }));
        let answer = cluster.step_to(2);
        assert_eq!(answer.store_view, Some(record));
        let do_view_change = answer
            .send
            .iter()
            .filter(|(to, message)| *to == 1 && matches!(message, Message::DoViewChange { .. }))
            .count();
        assert_eq!(do_view_change, 1);
    }

    #[test]
    fn new_primary_takes_best_log() {
        // Divergent logs: replica 1 contains ops 1-2 of view 0, and replica 2
        // only op 1. The new primary (1) must keep op 2.
        let mut cluster = Cluster::new(3, 1);
        cluster.request(0, b"a".to_vec());
        cluster.deliver_all();
        cluster.isolate(2);
        cluster.request(0, b"b".to_vec());
        cluster.deliver_all();
        cluster.crash(0);
        cluster.heal();
        cluster.elect(1);
        assert_eq!(cluster.replica(1).op(), 2);
        assert_eq!(cluster.replica(2).op(), 2);
        assert_eq!(cluster.replica(2).log(), cluster.replica(1).log());
        assert_eq!(cluster.replica(1).commit(), 2);
    }

    #[test]
    fn higher_log_view_wins() {
        // Replica 2 has a longer log of view 0; replica 1 has a shorter log of
        // view 1. (log_view, op) orders by log_view first, so view 1's log is
        // chosen and replica 2 truncates its divergent suffix.
        let mut cluster = Cluster::new(3, 1);
        cluster.set_disk(1, 2, 1, vec![entry(0, 1), entry(1, 2)]);
        cluster.set_disk(2, 2, 0, vec![entry(0, 1), entry(0, 2), entry(0, 3)]);
        cluster.set_disk(0, 2, 0, vec![entry(0, 1)]);
        cluster.crash(0);
        cluster.elect(1);
        let primary = cluster.replica(1);
        assert!(primary.is_primary());
        assert_eq!(primary.log(), &[entry(0, 1), entry(1, 2)]);
        let backup = cluster.replica(2);
        assert_eq!(backup.log(), primary.log());
        let truncations = cluster.truncations(2);
        assert_eq!(truncations, vec![1]);
    }

    #[test]
    fn view_change_in_five() {
        let mut cluster = Cluster::new(5, 2);
        for i in 0..3u8 {
            cluster.request(0, vec![i]);
        }
        cluster.deliver_all();
        cluster.crash(0);
        cluster.crash(1);
        cluster.run(200);
        let primary = (0..5)
            .filter(|&id| cluster.is_up(id) && cluster.replica(id).is_primary())
            .collect::<Vec<_>>();
        assert_eq!(
            primary.len(),
            1,
            "exactly one primary among the live replicas"
        );
        let primary = primary[0];
        assert_eq!(cluster.replica(primary).commit(), 3);
        cluster.request(primary, b"x".to_vec());
        cluster.run(10);
        for id in 2..5 {
            assert_eq!(cluster.replica(id).commit(), 4, "replica {id}");
        }
    }

    #[test]
    fn stale_start_view_change_ignored() {
        let mut cluster = Cluster::new(3, 1);
        cluster.elect(1);
        let out = cluster.deliver(2, 0, Message::StartViewChange { view: 1 });
        assert!(out.send.is_empty(), "backup 0 must not answer: {out:?}");
        let out = cluster.deliver(0, 1, Message::StartViewChange { view: 0 });
        assert!(out.is_empty());
    }

    #[test]
    fn missed_start_view_resent() {
        let mut cluster = Cluster::new(3, 1);
        cluster.isolate(0);
        cluster.elect(1);
        cluster.heal();
        let out = cluster.deliver(0, 1, Message::StartViewChange { view: 1 });
        assert!(
            out.send
                .iter()
                .any(|(to, message)| *to == 0
                    && matches!(message, Message::StartView { view: 1, .. }))
        );
        cluster.deliver_all();
        assert_eq!(cluster.replica(0).status(), Status::Normal);
        assert_eq!(cluster.replica(0).view(), 1);
    }

    #[test]
    fn inconsistent_do_view_change_ignored() {
        let mut cluster = Cluster::new(3, 1);
        let bad = Message::DoViewChange {
            view: 1,
            log_view: 0,
            op: 5,
            base: 0,
            log: vec![entry(0, 1)],
            commit: 0,
        };
        let out = cluster.deliver(2, 1, bad);
        assert!(out.is_empty());
        assert_eq!(cluster.replica(1).view(), 0);
    }

    #[test]
    fn deposed_primary_adopts_new_log() {
        // Primary 0 is cut off and takes op 2, which cannot commit. The
        // majority moves to view 1 and commits another op 2. After healing, 0
        // learns view 1, drops its op 2 and copies the new log.
        let mut cluster = Cluster::new(3, 1);
        cluster.request(0, b"u1".to_vec());
        cluster.deliver_all();
        cluster.heartbeat();
        cluster.isolate(0);
        cluster.request(0, b"u3".to_vec());
        cluster.run(40);
        assert_eq!(cluster.replica(0).commit(), 1, "minority side committed");
        assert!(cluster.replica(1).is_primary());
        cluster.request(1, b"u4".to_vec());
        cluster.deliver_all();
        assert_eq!(cluster.replica(1).commit(), 2);

        cluster.heal();
        cluster.run(20);
        let old = cluster.replica(0);
        assert_eq!(old.view(), 1);
        assert_eq!(old.status(), Status::Normal);
        assert_eq!(old.log(), cluster.replica(1).log());
        assert_eq!(old.log()[1].payload, b"u4".to_vec());
        assert_eq!(cluster.truncations(0), vec![1]);
        let applied: Vec<Vec<u8>> = cluster
            .applied(0)
            .iter()
            .map(|entry| entry.payload.clone())
            .collect();
        assert_eq!(applied, vec![b"u1".to_vec(), b"u4".to_vec()]);
    }

    #[test]
    fn minority_never_commits() {
        let mut cluster = Cluster::new(5, 1);
        cluster.partition(&[&[0, 1], &[2, 3, 4]]);
        cluster.request(0, b"a".to_vec());
        cluster.run(100);
        assert_eq!(cluster.replica(0).commit(), 0);
        assert_eq!(cluster.replica(1).commit(), 0);
        for id in 0..2 {
            assert!(cluster.applied(id).is_empty(), "replica {id} applied");
        }
        let majority_primary = (2..5)
            .filter(|&id| cluster.replica(id).is_primary())
            .count();
        assert_eq!(majority_primary, 1);
    }
}
