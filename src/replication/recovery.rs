//! Recovery of a replica whose disk was empty or damaged.
//!
//! The replica sends recovery with a fresh nonce to all and waits for f + 1
//! recovery-responses carrying that nonce, one of them from the primary of
//! the highest view among them, which brings its log. Until then the replica
//! sends no prepare-ok, no start-view-change and no do-view-change, because
//! it may have acknowledged or voted before its disk was lost.

use super::message::{check_entries, Message, PrimaryState};
use super::replica::Replica;
use super::{Output, ReplicaId, SnapshotFetch, Status};

impl Replica {
    pub(super) fn send_recovery(&mut self, out: &mut Output) {
        tracing::debug!(
            replica = self.id(),
            nonce = self.nonce,
            responses = self.recovery_responses.len(),
            "sending recovery"
        );
        let recovery = Message::Recovery {
            view: self.view,
            nonce: self.nonce,
        };
        self.broadcast(recovery, out);
    }

    pub(super) fn on_recovery(&mut self, from: ReplicaId, nonce: u64, out: &mut Output) {
        if self.status != Status::Normal {
            self.ignore(
                "recovery",
                self.view,
                "only normal replicas answer recovery",
            );
            return;
        }
        let primary = self.is_primary().then(|| PrimaryState {
            base: self.op_base,
            log: self.log.clone(),
            commit: self.commit,
        });
        let response = Message::RecoveryResponse {
            view: self.view,
            nonce,
            primary,
        };
        out.send.push((from, response));
    }

    pub(super) fn on_recovery_response(
        &mut self,
        from: ReplicaId,
        view: u64,
        nonce: u64,
        primary: Option<PrimaryState>,
        out: &mut Output,
    ) {
        if self.status != Status::Recovering {
            self.ignore("recovery_response", view, "not recovering");
            return;
        }
        if nonce != self.nonce {
            self.ignore("recovery_response", view, "nonce of another recovery");
            return;
        }
        if let Some(state) = &primary {
            if from != self.primary_of(view) {
                self.ignore("recovery_response", view, "log sent by a backup");
                return;
            }
            let op = state.base.checked_add(state.log.len() as u64);
            if op.is_none_or(|op| state.commit > op) || state.base > state.commit {
                self.ignore("recovery_response", view, "commit outside base..=op");
                return;
            }
            if let Err(reason) = check_entries(&state.log, state.base + 1, view) {
                self.ignore("recovery_response", view, &reason);
                return;
            }
        }
        let newer = match self.recovery_responses.get(&from) {
            Some((known, _)) => view >= *known,
            None => true,
        };
        if newer {
            self.recovery_responses.insert(from, (view, primary));
        }
        self.finish_recovery(out);
    }

    /// Adopts the log of the primary of the highest view once f + 1
    /// responses, that primary's among them, are in.
    fn finish_recovery(&mut self, out: &mut Output) {
        if self.recovery_responses.len() <= self.max_faulty() {
            return;
        }
        let Some(view) = self
            .recovery_responses
            .values()
            .map(|(view, _)| *view)
            .max()
        else {
            return;
        };
        let primary = self.primary_of(view);
        let Some((primary_view, Some(state))) = self.recovery_responses.get(&primary) else {
            return;
        };
        if *primary_view != view {
            return;
        }
        let state = state.clone();
        if state.base > self.op_base {
            // The primary's log starts after our snapshot: fetch the
            // primary's snapshot, then recover again on top of it.
            out.fetch_snapshot = Some(SnapshotFetch {
                from: primary,
                op: state.base,
            });
            return;
        }
        if state.base + (state.log.len() as u64) < self.op_base {
            self.ignore(
                "recovery_response",
                view,
                "primary log ends before our snapshot",
            );
            return;
        }
        self.recovery_responses.clear();

        // Whatever the damaged disk still contains after the snapshot is
        // discarded.
        self.log.clear();
        out.truncate_log(self.op_base);
        let skip = (self.op_base - state.base) as usize;
        self.append(&state.log[skip..], out);
        self.enter_view(view, Status::Normal, out);
        tracing::debug!(
            replica = self.id(),
            view = self.view,
            op = self.op(),
            commit = state.commit,
            "recovered from the primary's log"
        );
        let prepare_ok = Message::PrepareOk {
            view: self.view,
            op: self.op(),
        };
        out.send.push((primary, prepare_ok));
        self.commit_through(state.commit, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::harness::Cluster;
    use super::super::{Message, PrimaryState, Status};

    #[test]
    fn wiped_replica_recovers() {
        let mut cluster = Cluster::new(3, 1);
        for i in 0..3u8 {
            cluster.request(0, vec![i]);
        }
        cluster.deliver_all();
        cluster.heartbeat();
        cluster.restart_wiped(2);
        assert_eq!(cluster.replica(2).status(), Status::Recovering);
        cluster.run(40);
        let recovered = cluster.replica(2);
        assert_eq!(recovered.status(), Status::Normal);
        assert_eq!(recovered.log(), cluster.replica(0).log());
        assert_eq!(recovered.commit(), 3);
        assert_eq!(cluster.applied(2).len(), 3);
    }

    #[test]
    fn recovering_never_votes_or_acks() {
        let mut cluster = Cluster::new(3, 1);
        cluster.restart_wiped(1);
        let inputs = [
            Message::StartViewChange { view: 1 },
            Message::Prepare {
                view: 0,
                commit: 0,
                entries: vec![super::super::harness::entry(0, 1)],
            },
            Message::Commit {
                view: 0,
                commit: 0,
                round: 1,
            },
        ];
        for input in inputs {
            let out = cluster.deliver(0, 1, input.clone());
            assert!(out.send.is_empty(), "recovering replica answered {input:?}");
            assert!(out.append.is_empty());
        }
        let do_view_change = Message::DoViewChange {
            view: 4,
            log_view: 0,
            op: 0,
            base: 0,
            log: vec![],
            commit: 0,
        };
        assert!(cluster.deliver(2, 1, do_view_change).is_empty());
        assert_eq!(cluster.replica(1).status(), Status::Recovering);
    }

    #[test]
    fn recovery_needs_primary_response() {
        let mut cluster = Cluster::new(3, 1);
        cluster.request(0, b"a".to_vec());
        cluster.deliver_all();
        cluster.restart_wiped(2);
        cluster.isolate(0);
        cluster.run(5);
        assert_eq!(
            cluster.replica(2).status(),
            Status::Recovering,
            "one backup response is not enough without the primary"
        );
    }

    #[test]
    fn recovery_rejects_other_nonce() {
        let mut cluster = Cluster::new(3, 1);
        cluster.restart_wiped(2);
        let nonce = cluster.replica(2).nonce.wrapping_add(1);
        let state = PrimaryState {
            base: 0,
            log: vec![],
            commit: 0,
        };
        let stale = Message::RecoveryResponse {
            view: 0,
            nonce,
            primary: Some(state),
        };
        cluster.deliver(0, 2, stale);
        let backup = Message::RecoveryResponse {
            view: 0,
            nonce,
            primary: None,
        };
        cluster.deliver(1, 2, backup);
        assert_eq!(cluster.replica(2).status(), Status::Recovering);
    }

    #[test]
    fn recovery_waits_for_newest_primary() {
        // Replica 0 is still normal in view 0 (cut off), while 1 is primary
        // of view 1. A response from 0 as primary of view 0 must not satisfy
        // recovery because view 1 appears among the responses.
        let mut cluster = Cluster::new(5, 1);
        cluster.isolate(0);
        cluster.elect(1);
        cluster.heal();
        cluster.restart_wiped(4);
        let nonce = cluster.replica(4).nonce;
        let old_primary = Message::RecoveryResponse {
            view: 0,
            nonce,
            primary: Some(PrimaryState {
                base: 0,
                log: vec![],
                commit: 0,
            }),
        };
        cluster.deliver(0, 4, old_primary);
        let backup = Message::RecoveryResponse {
            view: 1,
            nonce,
            primary: None,
        };
        cluster.deliver(2, 4, backup.clone());
        cluster.deliver(3, 4, backup);
        assert_eq!(cluster.replica(4).status(), Status::Recovering);
        cluster.run(40);
        assert_eq!(cluster.replica(4).status(), Status::Normal);
        assert_eq!(cluster.replica(4).view(), 1);
    }
}
