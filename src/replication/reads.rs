//! Linearizable reads: a read is ready once a heartbeat round sent after it
//! arrived gets replies from f backups of the same view, and once every entry
//! this primary found in its log at the start of the view has committed.
//!
//! Concurrent reads share rounds. A read that arrives while a round is out
//! waits for the next one, because the round already out may have been
//! answered before the read arrived.

use super::message::Message;
use super::replica::Replica;
use super::{Output, ReadRef, Redirect};

impl Replica {
    /// Registers a read barrier. The read appears in `reads_ready` (serve it
    /// from the state machine after applying that output's commits) or in
    /// `reads_failed` with a redirect.
    pub fn on_read(&mut self, read: ReadRef) -> Output {
        let mut out = Output::default();
        if !self.is_primary() {
            let redirect = self.redirect();
            self.ignore("read", self.view, "not the primary in normal status");
            out.reads_failed.push((read, redirect));
            return out;
        }
        #[cfg(feature = "planted-bugs")]
        if crate::planted::active(crate::planted::Bug::UnconfirmedRead) {
            out.reads_ready.push(read);
            return out;
        }
        self.reads_waiting.push(read);
        if self.reads_in_round.is_empty() {
            self.start_read_round(&mut out);
        }
        self.check_invariants();
        out
    }

    fn start_read_round(&mut self, out: &mut Output) {
        self.read_round += 1;
        self.read_round_ticks = 0;
        self.round_acks.clear();
        self.reads_in_round = std::mem::take(&mut self.reads_waiting);
        let commit = Message::Commit {
            view: self.view,
            commit: self.commit,
            round: self.read_round,
        };
        self.broadcast(commit, out);
        self.release_reads(out);
    }

    /// Releases the current round's reads when the round has its quorum and
    /// the commit number has reached the op at the start of the view.
    pub(super) fn release_reads(&mut self, out: &mut Output) {
        if self.reads_in_round.is_empty() {
            return;
        }
        if self.round_acks.len() < self.max_faulty() || self.commit < self.op_view_start {
            return;
        }
        out.reads_ready.append(&mut self.reads_in_round);
        if !self.reads_waiting.is_empty() {
            self.start_read_round(out);
        }
    }

    /// Fails the reads of a round without replies from f backups within the minimum
    /// view-change timeout: by then the backups may have elected a new primary.
    pub(super) fn expire_reads(&mut self, out: &mut Output) {
        if self.reads_in_round.is_empty() {
            return;
        }
        self.read_round_ticks += 1;
        if self.read_round_ticks < self.config.view_change_timeout_ticks.0 {
            return;
        }
        tracing::debug!(
            replica = self.id(),
            view = self.view,
            round = self.read_round,
            "read round unconfirmed within the timeout, failing its reads"
        );
        let redirect = Redirect::Unconfirmed { view: self.view };
        for read in self.reads_in_round.drain(..) {
            out.reads_failed.push((read, redirect));
        }
        if !self.reads_waiting.is_empty() {
            self.start_read_round(out);
        }
    }

    /// Fails every pending read with the current redirect; called when this
    /// replica leaves its view.
    pub(super) fn fail_reads(&mut self, out: &mut Output) {
        let redirect = self.redirect();
        for read in self.reads_in_round.drain(..) {
            out.reads_failed.push((read, redirect));
        }
        for read in self.reads_waiting.drain(..) {
            out.reads_failed.push((read, redirect));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::harness::{config, entry, Cluster};
    use super::super::{Durable, Message, Redirect, Replica, Status};

    #[test]
    fn read_ready_after_round() {
        let mut cluster = Cluster::new(3, 1);
        let out = cluster.read(0, 7);
        assert!(
            out.reads_ready.is_empty(),
            "ready before any backup answered"
        );
        let rounds = out
            .send
            .iter()
            .filter(|(_, message)| matches!(message, Message::Commit { round: 1, .. }))
            .count();
        assert_eq!(rounds, 2);
        cluster.deliver_all();
        assert_eq!(cluster.reads_ready(0), vec![7]);
    }

    #[test]
    fn reads_batch_into_rounds() {
        let mut cluster = Cluster::new(3, 1);
        cluster.read(0, 1);
        let second = cluster.read(0, 2);
        let third = cluster.read(0, 3);
        assert!(
            second.send.is_empty(),
            "a second read must wait, not start a round"
        );
        assert!(third.send.is_empty());
        cluster.deliver_all();
        assert_eq!(cluster.reads_ready(0), vec![1, 2, 3]);
        assert_eq!(
            cluster.replica(0).read_round,
            2,
            "reads 2 and 3 share round 2"
        );
    }

    #[test]
    fn read_ignores_earlier_round() {
        let mut cluster = Cluster::new(3, 1);
        cluster.read(0, 1);
        // Backups reply to round 1 before read 2 arrives; those replies must
        // not release read 2.
        let answers = cluster.take_sent_to(1);
        cluster.deliver_list(answers);
        let answers = cluster.take_sent_to(0);
        cluster.read(0, 2);
        cluster.deliver_list(answers);
        assert_eq!(cluster.reads_ready(0), vec![1]);
        cluster.deliver_all();
        assert_eq!(cluster.reads_ready(0), vec![1, 2]);
    }

    #[test]
    fn read_on_backup_redirects() {
        let mut cluster = Cluster::new(3, 1);
        let out = cluster.read(2, 5);
        let redirect = Redirect::NotPrimary {
            view: 0,
            primary: 0,
        };
        assert_eq!(out.reads_failed, vec![(5, redirect)]);
    }

    #[test]
    fn read_waits_for_view_start_commit() {
        // Replica 1 has op 1 of view 0 in its log, not known to be
        // committed, and becomes primary of view 1. The old primary may have committed
        // op 1, so a read waits until op 1 commits, even after its round
        // has its quorum.
        let durable = Durable {
            op_base: 0,
            view: 0,
            log_view: 0,
            entries: vec![entry(0, 1)],
            commit: 0,
            intact: true,
            restarted: true,
        };
        let mut primary = Replica::new(config(3, 1, 1), durable).unwrap();
        primary.on_message(2, Message::StartViewChange { view: 1 });
        let vote = Message::DoViewChange {
            view: 1,
            log_view: 0,
            op: 0,
            base: 0,
            log: Vec::new(),
            commit: 0,
        };
        primary.on_message(2, vote);
        assert!(
            primary.is_primary(),
            "replica 1 did not become primary of view 1"
        );
        assert_eq!((primary.view(), primary.op(), primary.commit()), (1, 1, 0));
        primary.on_read(9);
        let answer = Message::CommitOk {
            view: 1,
            op: 0,
            round: 1,
        };
        let out = primary.on_message(2, answer);
        assert!(out.reads_ready.is_empty(), "ready before op 1 committed");
        let out = primary.on_message(2, Message::PrepareOk { view: 1, op: 1 });
        assert_eq!(out.commit.len(), 1);
        assert_eq!(out.reads_ready, vec![9]);
    }

    #[test]
    fn deposed_primary_read_fails() {
        // Primary 0 is cut off; 1 and 2 move to view 1 and commit a
        // write. A read on 0 must not succeed: it fails when its round times
        // out, and again with a redirect once 0 learns view 1.
        let mut cluster = Cluster::new(3, 1);
        cluster.request(0, b"room 1".to_vec());
        cluster.deliver_all();
        cluster.isolate(0);
        cluster.elect(1);
        cluster.request(1, b"room 7".to_vec());
        cluster.deliver_all();
        assert_eq!(cluster.replica(1).commit(), 2);

        cluster.read(0, 1);
        cluster.run(30);
        assert!(cluster.reads_ready(0).is_empty());
        let failed = cluster.reads_failed(0);
        assert_eq!(failed, vec![(1, Redirect::Unconfirmed { view: 0 })]);

        cluster.read(0, 2);
        cluster.heal();
        cluster.run(10);
        assert!(cluster.reads_ready(0).is_empty());
        let failed = cluster.reads_failed(0);
        assert_eq!(failed.len(), 2);
        assert_eq!(failed[1].0, 2);
        assert!(
            matches!(
                failed[1].1,
                Redirect::NotNormal {
                    view: 1,
                    status: Status::ViewChange
                }
            ),
            "{failed:?}"
        );
        assert_eq!(cluster.replica(0).view(), 1);
    }

    #[test]
    fn single_replica_read_immediate() {
        let mut cluster = Cluster::new(1, 1);
        let out = cluster.read(0, 3);
        assert_eq!(out.reads_ready, vec![3]);
    }
}
