//! The replica's state, its constructor, the input dispatch and the helpers
//! shared by the protocol's parts (normal operation, view change, recovery
//! and reads live in sibling files as further `impl Replica` blocks).

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::message::{check_entries, Entry, Message, PrimaryState};
use super::{
    Config, ConfigError, Durable, Output, ReadRef, Redirect, ReplicaId, RequestRef, Status,
    ViewRecord,
};

/// A do-view-change vote as the new primary keeps it.
#[derive(Clone, Debug)]
pub(super) struct Vote {
    pub(super) log_view: u64,
    /// The op before the first entry of `log`: the voter's snapshot op.
    pub(super) base: u64,
    pub(super) log: Vec<Entry>,
    pub(super) commit: u64,
}

/// One replica of the cluster: the protocol state without any I/O.
///
/// Invariants, checked after every input: `commit <= op`, `log_view <= view`,
/// normal status implies `log_view == view`, and the view never decreases.
#[derive(Debug)]
pub struct Replica {
    pub(super) config: Config,
    pub(super) rng: StdRng,
    pub(super) status: Status,
    /// The highest view entered; persisted before any message of it is sent.
    pub(super) view: u64,
    /// The last view in which this replica was normal; the log belongs to it.
    pub(super) log_view: u64,
    /// The op of the newest snapshot the shell took or installed: ops up to
    /// it are committed, applied and no longer in `log`. Advanced by
    /// [`Replica::compact`] and [`Replica::install_snapshot`], never above
    /// `commit`.
    pub(super) op_base: u64,
    /// The log after `op_base`, `log[i].op == op_base + i + 1`, always equal
    /// to the log on disk after `op_base` once the shell has carried out the
    /// last output.
    pub(super) log: Vec<Entry>,
    /// The highest committed op; advances on quorum (primary) or on the
    /// primary's commit number (backup), never past `op`.
    pub(super) commit: u64,
    /// Logical ticks since this replica started, for rate limits.
    pub(super) now: u64,
    /// Ticks since the primary was last heard (backup), since the view change
    /// started (view-change status) or since recovery was last sent.
    pub(super) ticks_idle: u64,
    /// The current view-change timeout, drawn from the configured range.
    pub(super) timeout: u64,
    /// Ticks since the last heartbeat (primary) or resend (view change).
    pub(super) ticks_since_send: u64,
    /// The tick of the last get-state request, to send one per heartbeat.
    pub(super) state_requested_at: Option<u64>,
    /// Primary only: the highest op each backup acknowledged in this view.
    pub(super) acks: BTreeMap<ReplicaId, u64>,
    /// The op through which this replica's own log is durable, once the
    /// shell reports it with [`Replica::on_durable`]; `None` means the shell
    /// makes every output durable before it sends anything.
    pub(super) own_durable: Option<u64>,
    /// Primary only: the op number when this view started here. Reads wait
    /// until the commit number reaches it, because entries of earlier views
    /// may have committed there without this primary knowing.
    pub(super) op_view_start: u64,
    /// View change: replicas that sent start-view-change for `view`.
    pub(super) start_view_change_from: BTreeSet<ReplicaId>,
    /// View change: whether this replica sent its do-view-change for `view`.
    pub(super) do_view_change_sent: bool,
    /// New primary only: do-view-change votes for `view`, its own included.
    pub(super) votes: BTreeMap<ReplicaId, Vote>,
    /// Recovery: the nonce sent with recovery, drawn from the seeded source.
    pub(super) nonce: u64,
    /// Recovery: the latest response per replica, with its view.
    pub(super) recovery_responses: BTreeMap<ReplicaId, (u64, Option<PrimaryState>)>,
    /// Reads: the number of the latest read round sent.
    pub(super) read_round: u64,
    /// Reads: ticks since the current round was sent.
    pub(super) read_round_ticks: u64,
    /// Reads: waiting for the current round.
    pub(super) reads_in_round: Vec<ReadRef>,
    /// Reads: arrived after the current round was sent; go in the next one.
    pub(super) reads_waiting: Vec<ReadRef>,
    /// Reads: backups that replied to the current round in this view.
    pub(super) round_acks: BTreeSet<ReplicaId>,
    /// A primary restarted with its own view's log: the first tick moves
    /// it to the next view, where it waits without a timer of its own (see
    /// [`Replica::restore`]).
    pub(super) rejoining: bool,
}

impl Replica {
    /// Creates a replica from its configuration and what the shell found on
    /// disk. An intact disk rejoins in its persisted view; a lost disk starts
    /// recovery on the first tick.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration is invalid, when the durable
    /// state is inconsistent, or when a single-replica cluster lost its disk.
    pub fn new(config: Config, durable: Durable) -> Result<Replica, ConfigError> {
        config.validate()?;
        let rng = StdRng::seed_from_u64(config.seed);
        let mut replica = Replica {
            timeout: config.view_change_timeout_ticks.0,
            ticks_since_send: config.heartbeat_ticks,
            config,
            rng,
            status: Status::Normal,
            view: 0,
            log_view: 0,
            op_base: 0,
            log: Vec::new(),
            commit: 0,
            now: 0,
            ticks_idle: 0,
            state_requested_at: None,
            acks: BTreeMap::new(),
            own_durable: None,
            op_view_start: 0,
            start_view_change_from: BTreeSet::new(),
            do_view_change_sent: false,
            votes: BTreeMap::new(),
            nonce: 0,
            recovery_responses: BTreeMap::new(),
            read_round: 0,
            read_round_ticks: 0,
            reads_in_round: Vec::new(),
            reads_waiting: Vec::new(),
            round_acks: BTreeSet::new(),
            rejoining: false,
        };
        replica.draw_timeout();
        if durable.intact {
            replica.restore(durable)?;
        } else {
            if replica.config.replica_count == 1 {
                return Err(ConfigError::SingleReplicaLostDisk);
            }
            replica.status = Status::Recovering;
            // A snapshot that survived on the lost disk is committed state,
            // so recovery continues from it.
            replica.op_base = durable.op_base;
            replica.commit = durable.op_base;
            replica.nonce = replica.rng.gen();
            // The first tick sends recovery.
            replica.ticks_idle = replica.timeout;
        }
        replica.check_invariants();
        Ok(replica)
    }

    fn check_durable(durable: &Durable) -> Result<(), ConfigError> {
        if durable.log_view > durable.view {
            return Err(ConfigError::Durable(format!(
                "log_view {} is above view {}",
                durable.log_view, durable.view
            )));
        }
        check_entries(&durable.entries, durable.op_base + 1, u64::MAX)
            .map_err(ConfigError::Durable)?;
        let op = durable.op_base + durable.entries.len() as u64;
        if durable.commit > op {
            return Err(ConfigError::Durable(format!(
                "commit {} is above the last op {op}",
                durable.commit
            )));
        }
        if durable.commit < durable.op_base {
            return Err(ConfigError::Durable(format!(
                "commit {} is below the snapshot op {}",
                durable.commit, durable.op_base
            )));
        }
        Ok(())
    }

    fn restore(&mut self, durable: Durable) -> Result<(), ConfigError> {
        Replica::check_durable(&durable)?;
        let durable_restarted = durable.restarted;
        self.view = durable.view;
        self.log_view = durable.log_view;
        self.op_base = durable.op_base;
        self.log = durable.entries;
        self.commit = durable.commit;

        // An entry newer than log_view means the process stopped after
        // writing a later view's log but before storing the view record. The
        // log is then no prefix of the log_view primary's log, so the replica
        // must not acknowledge in that view, nor start it again as primary.
        let mixed = self
            .log
            .last()
            .is_some_and(|last| last.view > self.log_view);
        if mixed {
            tracing::debug!(
                replica = self.id(),
                view = self.view,
                log_view = self.log_view,
                op = self.op(),
                "log is newer than its view record, waiting for a view's log"
            );
            self.status = Status::ViewChange;
            return Ok(());
        }
        if durable_restarted
            && self.log_view == self.view
            && self.primary() == self.id()
            && self.config.replica_count > 1
        {
            // A primary sends each prepare before its own fdatasync, so its
            // earlier run may have sent ops that this disk lost and a backup
            // has. Leading this view again, it would give those op numbers
            // to new requests. So its first tick starts a view change to the
            // next view, whose new log is the longest in a quorum. Then it
            // waits without a timer of its own: a heartbeat of a later view
            // makes it a backup there, and the others' timers start any
            // further view change. Its own timer would fire while its links
            // to a later view's primary are still being dialled, and depose
            // that primary for nothing.
            tracing::info!(
                node = self.id() + 1,
                view = self.view,
                op = self.op(),
                "restarted as the primary of its view; moving to the next view"
            );
            self.status = Status::ViewChange;
            self.rejoining = true;
            self.ticks_idle = self.timeout;
            return Ok(());
        }
        if self.log_view == self.view {
            // Of restarted primaries, only a one-node cluster's resumes its
            // view. It cannot tell how far its earlier run committed, so
            // reads wait until its whole log commits.
            self.op_view_start = self.op();
            return Ok(());
        }
        // It may have voted in `view`: finish that view change, or learn the
        // view's log if it has started. The first tick resends.
        self.status = Status::ViewChange;
        if self.primary() == self.id() {
            self.record_own_vote();
        }
        Ok(())
    }

    /// Returns this replica's id.
    pub fn id(&self) -> ReplicaId {
        self.config.self_id
    }

    /// Returns the current status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Returns the current view (0 while recovering, until recovery ends).
    pub fn view(&self) -> u64 {
        self.view
    }

    /// Returns the last view in which this replica was in normal status.
    pub fn log_view(&self) -> u64 {
        self.log_view
    }

    /// Returns the op number: the op of the last log entry, or `op_base`
    /// when the log after the snapshot is empty.
    pub fn op(&self) -> u64 {
        self.op_base + self.log.len() as u64
    }

    /// Returns the op of the newest snapshot: the log starts after it.
    pub fn op_base(&self) -> u64 {
        self.op_base
    }

    /// Returns the commit number.
    pub fn commit(&self) -> u64 {
        self.commit
    }

    /// Returns the primary of the current view.
    pub fn primary(&self) -> ReplicaId {
        self.primary_of(self.view)
    }

    /// Returns true when this replica is the primary of its view and normal.
    pub fn is_primary(&self) -> bool {
        self.status == Status::Normal && self.primary() == self.id()
    }

    /// Returns the log after [`Replica::op_base`].
    pub fn log(&self) -> &[Entry] {
        &self.log
    }

    /// Returns the entry at `op`, or None when it is compacted into the
    /// snapshot or beyond the log.
    pub(super) fn entry_at(&self, op: u64) -> Option<&Entry> {
        let index = op.checked_sub(self.op_base + 1)?;
        self.log.get(index as usize)
    }

    /// Returns the entries from `op + 1` to the end of the log.
    ///
    /// # Panics
    ///
    /// If `op` is below `op_base`, because those entries are compacted.
    pub(super) fn log_after(&self, op: u64) -> &[Entry] {
        assert!(
            op >= self.op_base,
            "replica {} view {} op {}: entries after {op} are compacted up to {}",
            self.id(),
            self.view,
            self.op(),
            self.op_base
        );
        &self.log[(op - self.op_base) as usize..]
    }

    /// Handles one message from replica `from`. Messages from unknown
    /// replicas, stale views or the wrong status are logged and dropped.
    pub fn on_message(&mut self, from: ReplicaId, message: Message) -> Output {
        let mut out = Output::default();
        if usize::from(from) >= self.config.replica_count || from == self.id() {
            self.ignore(
                message.kind(),
                message.view(),
                "sender is not a peer replica",
            );
            return out;
        }
        match message {
            Message::Prepare {
                view,
                commit,
                entries,
            } => self.on_prepare(from, view, commit, entries, &mut out),
            Message::PrepareOk { view, op } => self.on_prepare_ok(from, view, op, &mut out),
            Message::Commit {
                view,
                commit,
                round,
            } => self.on_commit(from, view, commit, round, &mut out),
            Message::CommitOk { view, op, round } => {
                self.on_commit_ok(from, view, op, round, &mut out)
            }
            Message::StartViewChange { view } => self.on_start_view_change(from, view, &mut out),
            Message::DoViewChange {
                view,
                log_view,
                op,
                base,
                log,
                commit,
            } => {
                let vote = Vote {
                    log_view,
                    base,
                    log,
                    commit,
                };
                self.on_do_view_change(from, view, op, vote, &mut out)
            }
            Message::StartView {
                view,
                op,
                base,
                log,
                commit,
            } => self.on_start_view(from, view, op, base, log, commit, &mut out),
            Message::GetState { view, op } => self.on_get_state(from, view, op, &mut out),
            Message::NewState {
                view,
                op,
                entries,
                commit,
            } => self.on_new_state(from, view, op, entries, commit, &mut out),
            Message::NewSnapshot { view, op, commit } => {
                self.on_new_snapshot(from, view, op, commit, &mut out)
            }
            Message::SnapshotRead { view, .. } | Message::SnapshotChunk { view, .. } => self
                .ignore(
                    "snapshot_chunk",
                    view,
                    "snapshot chunks belong to the shell",
                ),
            Message::Recovery { nonce, .. } => self.on_recovery(from, nonce, &mut out),
            Message::RecoveryResponse {
                view,
                nonce,
                primary,
            } => self.on_recovery_response(from, view, nonce, primary, &mut out),
        }
        self.check_invariants();
        out
    }

    /// Records that this replica's own log is durable through `op`. A shell
    /// that fsyncs while its prepares are in flight calls this after every
    /// fsync. From the first call on, the primary counts itself towards a
    /// commit only through that op, so every committed op is on f + 1 disks.
    pub fn on_durable(&mut self, op: u64) -> Output {
        let mut out = Output::default();
        self.own_durable = Some(op.min(self.op()));
        if self.is_primary() && self.status == Status::Normal {
            self.advance_commit(&mut out);
        }
        self.check_invariants();
        out
    }

    /// Advances the replica by one logical tick: heartbeats on the primary,
    /// the view-change timeout on the others, resends while a view change or
    /// recovery is unfinished, and the read deadline.
    pub fn on_tick(&mut self) -> Output {
        let mut out = Output::default();
        self.now += 1;
        self.ticks_idle += 1;
        self.ticks_since_send = self.ticks_since_send.saturating_add(1);
        let heartbeat_due = self.ticks_since_send >= self.config.heartbeat_ticks;
        let timed_out = self.ticks_idle >= self.timeout;
        match self.status {
            Status::Normal if self.primary() == self.id() => {
                if heartbeat_due {
                    self.ticks_since_send = 0;
                    self.send_heartbeats(&mut out);
                }
                self.expire_reads(&mut out);
            }
            Status::Normal | Status::ViewChange if timed_out => {
                tracing::debug!(
                    replica = self.id(),
                    view = self.view,
                    status = ?self.status,
                    "view-change timeout expired, starting a view change"
                );
                let rejoining = self.rejoining;
                self.start_view_change(self.view + 1, &mut out);
                if rejoining {
                    // No timer until it enters another view, which draws a
                    // new timeout.
                    self.timeout = u64::MAX;
                }
            }
            Status::Normal => {}
            Status::ViewChange => {
                if heartbeat_due {
                    self.ticks_since_send = 0;
                    self.resend_view_change(&mut out);
                }
            }
            Status::Recovering => {
                if timed_out {
                    self.ticks_idle = 0;
                    self.draw_timeout();
                    self.send_recovery(&mut out);
                }
            }
        }
        self.check_invariants();
        out
    }

    /// Takes one client request: on the primary in normal status it gets the
    /// next op number; anywhere else it is rejected with a redirect.
    pub fn on_request(&mut self, request: RequestRef, payload: Vec<u8>) -> Output {
        self.on_requests(vec![(request, payload)])
    }

    pub(super) fn primary_of(&self, view: u64) -> ReplicaId {
        (view % self.config.replica_count as u64) as ReplicaId
    }

    pub(super) fn max_faulty(&self) -> usize {
        self.config.max_faulty()
    }

    pub(super) fn peers(&self) -> impl Iterator<Item = ReplicaId> {
        let id = self.id();
        (0..self.config.replica_count as ReplicaId).filter(move |&peer| peer != id)
    }

    pub(super) fn broadcast(&self, message: Message, out: &mut Output) {
        for peer in self.peers() {
            out.send.push((peer, message.clone()));
        }
    }

    pub(super) fn draw_timeout(&mut self) {
        let (min, max) = self.config.view_change_timeout_ticks;
        self.timeout = self.rng.gen_range(min..=max);
    }

    /// Returns where to send a request or read this replica cannot take.
    pub(super) fn redirect(&self) -> Redirect {
        match self.status {
            Status::Normal if self.primary() != self.id() => Redirect::NotPrimary {
                view: self.view,
                primary: self.primary(),
            },
            Status::Normal => Redirect::Unconfirmed { view: self.view },
            status => Redirect::NotNormal {
                view: self.view,
                status,
            },
        }
    }

    /// Moves to a higher view (or stays in the same one) with the given
    /// status, dropping the state kept for the previous view.
    pub(super) fn enter_view(&mut self, view: u64, status: Status, out: &mut Output) {
        assert!(
            view >= self.view,
            "replica {} view {} op {}: view would decrease to {view}",
            self.id(),
            self.view,
            self.op()
        );
        if view > self.view {
            self.start_view_change_from.clear();
            self.votes.clear();
            self.do_view_change_sent = false;
            self.state_requested_at = None;
        }
        self.view = view;
        self.status = status;
        self.rejoining = false;
        self.acks.clear();
        self.round_acks.clear();
        self.ticks_idle = 0;
        self.draw_timeout();
        if status == Status::Normal {
            self.log_view = view;
        }
        out.store_view = Some(ViewRecord {
            view: self.view,
            log_view: self.log_view,
        });
        self.fail_reads(out);
    }

    /// Replaces the log after `base` with `entries` (ops `base + 1`, ...),
    /// keeping the matching prefix. Returns false, changing nothing, when that
    /// would drop a committed entry, or when `base` is above the commit
    /// number: the sender compacted the entries up to `base`, so this
    /// replica cannot check that its own uncommitted ones match them.
    pub(super) fn replace_log_suffix(
        &mut self,
        base: u64,
        entries: &[Entry],
        out: &mut Output,
    ) -> bool {
        // Entries up to op_base are committed, so every valid log contains
        // the same ones there.
        let compacted = self.op_base.saturating_sub(base) as usize;
        let entries = &entries[compacted.min(entries.len())..];
        let base = base.max(self.op_base);
        if base > self.commit {
            self.ignore(
                "log suffix",
                self.view,
                "suffix starts after the commit number",
            );
            return false;
        }
        if base > self.op() {
            self.ignore(
                "log suffix",
                self.view,
                "suffix starts after the end of the log",
            );
            return false;
        }
        let mut keep = base;
        for entry in entries {
            match self.entry_at(entry.op) {
                Some(own) if own.view == entry.view => keep = entry.op,
                _ => break,
            }
        }
        if self.op() > keep && keep < self.commit {
            tracing::error!(
                replica = self.id(),
                view = self.view,
                op = self.op(),
                commit = self.commit,
                keep,
                "refusing a log that would drop committed entries"
            );
            return false;
        }
        if self.op() > keep {
            self.log.truncate((keep - self.op_base) as usize);
            out.truncate_log(keep);
            // The entries that replace the cut ones count as durable only
            // after the shell reports them.
            self.own_durable = self.own_durable.map(|durable| durable.min(keep));
        }
        let first_new = (keep - base) as usize;
        self.append(&entries[first_new..], out);
        true
    }

    /// Appends entries that continue the log, in memory and in the output.
    pub(super) fn append(&mut self, entries: &[Entry], out: &mut Output) {
        for entry in entries {
            assert_eq!(
                entry.op,
                self.op() + 1,
                "replica {} view {} op {}: appending a non-consecutive op",
                self.id(),
                self.view,
                self.op()
            );
            self.log.push(entry.clone());
            out.append.push(entry.clone());
        }
    }

    /// Commits every op up to `op`, emitting the entries in order.
    pub(super) fn commit_through(&mut self, op: u64, out: &mut Output) {
        let op = op.min(self.op());
        while self.commit < op {
            self.commit += 1;
            let entry = self
                .entry_at(self.commit)
                .expect("uncommitted ops are in the log");
            out.commit.push(entry.clone());
        }
    }

    /// Logs a dropped input at debug level with the reason.
    pub(super) fn ignore(&self, kind: &str, view: u64, reason: &str) {
        tracing::debug!(
            replica = self.id(),
            view = self.view,
            status = ?self.status,
            op = self.op(),
            commit = self.commit,
            message = kind,
            message_view = view,
            reason,
            "ignored"
        );
    }

    pub(super) fn check_invariants(&self) {
        let (id, view, op) = (self.id(), self.view, self.op());
        assert!(
            self.commit <= op,
            "replica {id} view {view} op {op}: commit {} exceeds op",
            self.commit
        );
        assert!(
            self.log_view <= view,
            "replica {id} view {view} op {op}: log_view {} exceeds view",
            self.log_view
        );
        assert!(
            self.op_base <= self.commit,
            "replica {id} view {view} op {op}: snapshot op {} exceeds commit {}",
            self.op_base,
            self.commit
        );
        assert!(
            self.status != Status::Normal || self.log_view == view,
            "replica {id} view {view} op {op}: normal status with log_view {}",
            self.log_view
        );
        if let Some(last) = self.log.last() {
            assert_eq!(
                last.op, op,
                "replica {id} view {view} op {op}: last entry has another op"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::harness::{config, entry, Cluster};
    use super::*;

    #[test]
    fn new_formatted_is_normal() {
        let replica = Replica::new(config(3, 1, 1), Durable::formatted()).unwrap();
        assert_eq!(replica.status(), Status::Normal);
        assert_eq!(replica.view(), 0);
        assert_eq!(replica.primary(), 0);
        assert!(!replica.is_primary());
    }

    #[test]
    fn new_lost_disk_recovers() {
        let replica = Replica::new(config(3, 1, 1), Durable::lost()).unwrap();
        assert_eq!(replica.status(), Status::Recovering);
    }

    #[test]
    fn new_single_lost_disk_fails() {
        let result = Replica::new(config(1, 0, 1), Durable::lost());
        assert_eq!(result.unwrap_err(), ConfigError::SingleReplicaLostDisk);
    }

    #[test]
    fn new_rejects_commit_beyond_log() {
        let durable = Durable {
            op_base: 0,
            commit: 2,
            entries: vec![entry(0, 1)],
            ..Durable::formatted()
        };
        let error = Replica::new(config(3, 0, 1), durable).unwrap_err();
        assert!(error.to_string().contains("commit 2"), "{error}");
    }

    #[test]
    fn new_rejects_gap_in_log() {
        let durable = Durable {
            op_base: 0,
            entries: vec![entry(0, 1), entry(0, 3)],
            ..Durable::formatted()
        };
        assert!(matches!(
            Replica::new(config(3, 0, 1), durable),
            Err(ConfigError::Durable(_))
        ));
    }

    #[test]
    fn new_mid_view_change_resumes_it() {
        let durable = Durable {
            op_base: 0,
            view: 4,
            log_view: 3,
            entries: vec![entry(3, 1)],
            commit: 0,
            intact: true,
            restarted: true,
        };
        let mut replica = Replica::new(config(3, 2, 1), durable).unwrap();
        assert_eq!(replica.status(), Status::ViewChange);
        assert_eq!(replica.view(), 4);
        let out = replica.on_tick();
        let resent = out
            .send
            .iter()
            .filter(|(_, message)| *message == Message::StartViewChange { view: 4 })
            .count();
        assert_eq!(resent, 2);
    }

    #[test]
    fn sender_out_of_range_ignored() {
        let mut replica = Replica::new(config(3, 1, 1), Durable::formatted()).unwrap();
        let message = Message::StartViewChange { view: 9 };
        assert!(replica.on_message(7, message.clone()).is_empty());
        assert!(replica.on_message(1, message).is_empty());
        assert_eq!(replica.view(), 0);
    }

    #[test]
    fn timeout_starts_view_change() {
        let mut replica = Replica::new(config(3, 1, 1), Durable::formatted()).unwrap();
        let mut started = None;
        for tick in 1..=20 {
            let out = replica.on_tick();
            if !out.send.is_empty() {
                started = Some((tick, out));
                break;
            }
        }
        let (tick, out) = started.expect("no view change within the maximum timeout");
        assert!(
            tick >= 10,
            "view change after {tick} ticks, before the minimum"
        );
        assert_eq!(replica.status(), Status::ViewChange);
        assert_eq!(replica.view(), 1);
        let record = ViewRecord {
            view: 1,
            log_view: 0,
        };
        assert_eq!(out.store_view, Some(record));
    }

    #[test]
    fn same_seed_same_timeouts() {
        let run = || {
            let mut replica = Replica::new(config(3, 1, 42), Durable::formatted()).unwrap();
            (0..200).map(|_| replica.on_tick()).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn restart_mid_log_write_waits() {
        // The process stopped after appending part of view 2's log and
        // before storing the view record {2, 2}: it must not acknowledge
        // prepares of view 0 on that log.
        let durable = Durable {
            op_base: 0,
            view: 0,
            log_view: 0,
            entries: vec![entry(0, 1), entry(1, 2)],
            commit: 1,
            intact: true,
            restarted: true,
        };
        let mut replica = Replica::new(config(3, 1, 1), durable).unwrap();
        assert_eq!(replica.status(), Status::ViewChange);
        let prepare = Message::Prepare {
            view: 0,
            commit: 1,
            entries: vec![entry(0, 3)],
        };
        let out = replica.on_message(0, prepare);
        assert!(out.append.is_empty());
        assert_eq!(out.send, vec![(0, Message::GetState { view: 0, op: 1 })]);

        let new_state = Message::NewState {
            view: 0,
            op: 1,
            entries: vec![entry(0, 2), entry(0, 3)],
            commit: 1,
        };
        let out = replica.on_message(0, new_state);
        assert_eq!(out.truncate_after, Some(1));
        assert_eq!(replica.status(), Status::Normal);
        assert_eq!(replica.log(), &[entry(0, 1), entry(0, 2), entry(0, 3)]);
    }

    #[test]
    fn restarted_primary_moves_to_next_view() {
        // Replica 0 was the primary of view 3. Its disk may have lost ops
        // whose prepares it sent, so it must never lead view 3 again.
        let durable = Durable {
            op_base: 0,
            view: 3,
            log_view: 3,
            entries: vec![entry(3, 1)],
            commit: 1,
            intact: true,
            restarted: true,
        };
        let mut replica = Replica::new(config(3, 0, 1), durable).unwrap();
        assert!(!replica.is_primary());
        assert_eq!(replica.status(), Status::ViewChange);
        let out = replica.on_request(1, b"after the restart".to_vec());
        assert!(out.append.is_empty(), "took a request in its old view");

        // Its first tick starts view 4 and stores that view.
        let out = replica.on_tick();
        assert_eq!(replica.view(), 4);
        let started = out
            .send
            .iter()
            .filter(|(_, message)| *message == Message::StartViewChange { view: 4 })
            .count();
        assert_eq!(started, 2);
        let record = ViewRecord {
            view: 4,
            log_view: 3,
        };
        assert_eq!(out.store_view, Some(record));

        // Then it starts no view change of its own, however long it waits.
        for _ in 0..100 {
            let out = replica.on_tick();
            let later = out.send.iter().any(
                |(_, message)| matches!(message, Message::StartViewChange { view } if *view > 4),
            );
            assert!(!later, "started a view change of its own: {:?}", out.send);
        }
        assert_eq!(replica.view(), 4);

        // A backup that times out in view 4 starts view 5, and it joins.
        let out = replica.on_message(1, Message::StartViewChange { view: 5 });
        assert_eq!(replica.view(), 5);
        let joined = out
            .send
            .iter()
            .filter(|(_, message)| *message == Message::StartViewChange { view: 5 })
            .count();
        assert_eq!(joined, 2);
    }

    #[test]
    fn restarted_primary_joins_later_view() {
        // While replica 0 was down, replica 1 became primary of view 4.
        // Its heartbeat makes the restarted replica 0 ask for view 4's log
        // instead of starting another view change.
        let durable = Durable {
            op_base: 0,
            view: 3,
            log_view: 3,
            entries: vec![entry(3, 1)],
            commit: 1,
            intact: true,
            restarted: true,
        };
        let mut replica = Replica::new(config(3, 0, 1), durable).unwrap();
        let heartbeat = Message::Commit {
            view: 4,
            commit: 2,
            round: 0,
        };
        let out = replica.on_message(1, heartbeat);
        assert_eq!(replica.view(), 4);
        assert!(!replica.is_primary());
        assert!(
            out.send
                .iter()
                .any(|(to, message)| *to == 1
                    && matches!(message, Message::GetState { view: 4, .. })),
            "did not ask the primary of view 4 for its log: {:?}",
            out.send
        );
        assert!(!replica.rejoining, "still set to move to the next view");
    }

    #[test]
    fn restart_intact_rejoins() {
        let mut cluster = Cluster::new(3, 1);
        cluster.request(0, b"a".to_vec());
        cluster.deliver_all();
        cluster.crash(2);
        cluster.request(0, b"b".to_vec());
        cluster.deliver_all();
        cluster.restart(2);
        let restarted = cluster.replica(2);
        assert_eq!(restarted.status(), Status::Normal);
        assert_eq!(restarted.op(), 1);
        cluster.run(10);
        assert_eq!(cluster.replica(2).op(), 2);
        assert_eq!(cluster.replica(2).commit(), 2);
        assert_eq!(cluster.applied(2), cluster.applied(0));
    }

    #[test]
    fn restart_commits_only_on_evidence() {
        // The disk contains ops 1-3 but the state machine applied only op 1: the
        // replica must not treat ops 2-3 as committed after the restart.
        let durable = Durable {
            op_base: 0,
            view: 0,
            log_view: 0,
            entries: vec![entry(0, 1), entry(0, 2), entry(0, 3)],
            commit: 1,
            intact: true,
            restarted: true,
        };
        let mut replica = Replica::new(config(3, 1, 1), durable).unwrap();
        assert_eq!(replica.commit(), 1);
        let heartbeat = Message::Commit {
            view: 0,
            commit: 2,
            round: 0,
        };
        let out = replica.on_message(0, heartbeat);
        assert_eq!(out.commit, vec![entry(0, 2)]);
        assert_eq!(replica.commit(), 2);
    }

    #[test]
    fn restart_keeps_voted_view() {
        // Replica 2 voted for view 1 and persisted it; after a restart it must
        // not go back to serving the primary of view 0.
        let mut cluster = Cluster::new(3, 1);
        cluster.isolate(0);
        cluster.start_view_change(2, 1);
        cluster.deliver_all();
        assert_eq!(cluster.replica(2).view(), 1);
        cluster.restart(2);
        cluster.heal();
        assert_eq!(cluster.replica(2).view(), 1);
        let old = Message::Prepare {
            view: 0,
            commit: 0,
            entries: vec![entry(0, 1)],
        };
        let out = cluster.deliver(0, 2, old);
        assert!(
            out.is_empty(),
            "answered the primary of an abandoned view: {out:?}"
        );
    }

    /// Builds a cluster before a power failure: replica 0 is primary of view 3 with ops 1-100
    /// committed everywhere, and op 101 only on its own disk.
    fn cluster_before_power_failure() -> Cluster {
        let mut cluster = Cluster::new(3, 30);
        cluster.elect(0);
        assert!(cluster.replica(0).is_primary());
        assert_eq!(cluster.replica(0).view(), 3);
        for i in 0..100u8 {
            cluster.request(0, vec![i]);
        }
        cluster.deliver_all();
        cluster.heartbeat();
        cluster.request(0, b"101".to_vec());
        cluster.drop_all();
        for id in 0..3 {
            assert_eq!(cluster.replica(id).commit(), 100, "replica {id}");
        }
        cluster
    }

    #[test]
    fn all_restart_at_once() {
        // Power fails on all three at the same tick. Replicas 2 and 1 come
        // back with intact disks while 0 stays down, so they must form a new
        // view on their own. Replica 0 must rejoin that view when it returns.
        let mut cluster = cluster_before_power_failure();
        for id in 0..3 {
            cluster.crash(id);
        }
        cluster.restart(2);
        cluster.run(5);
        cluster.restart(1);
        cluster.run(100);
        let primary = (1..3).find(|&id| cluster.replica(id).is_primary());
        let primary = primary.expect("replicas 1 and 2 formed no view");
        assert!(cluster.replica(primary).view() > 3);
        assert_eq!(cluster.replica(primary).op(), 100);
        cluster.request(primary, b"after".to_vec());
        cluster.run(5);
        assert_eq!(cluster.replica(1).commit(), 101);
        assert_eq!(cluster.replica(2).commit(), 101);

        cluster.restart(0);
        cluster.run(30);
        let returned = cluster.replica(0);
        assert_eq!(returned.status(), Status::Normal);
        assert_eq!(returned.log(), cluster.replica(primary).log());
        assert_eq!(returned.log()[100].payload, b"after".to_vec());
        assert_eq!(cluster.truncations(0), vec![100]);
        assert_eq!(cluster.applied(0), cluster.applied(1));
    }

    #[test]
    fn two_restart_one_gone() {
        // After the same power failure only 1 and 2 restart, and 0 never
        // returns.
        let mut cluster = cluster_before_power_failure();
        for id in 0..3 {
            cluster.crash(id);
        }
        cluster.restart(1);
        cluster.restart(2);
        cluster.run(100);
        let primary = (1..3).find(|&id| cluster.replica(id).is_primary());
        let primary = primary.expect("replicas 1 and 2 formed no view");
        cluster.request(primary, b"x".to_vec());
        cluster.run(5);
        for id in 1..3 {
            assert_eq!(cluster.replica(id).commit(), 101, "replica {id}");
            assert_eq!(cluster.applied(id).len(), 101, "replica {id}");
        }
    }
}
