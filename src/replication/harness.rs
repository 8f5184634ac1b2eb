//! In-memory test cluster: replicas, their disks and state machines, and a
//! network that tests drive by hand (deliver, drop, partition, crash,
//! restart).
//!
//! The shell is modelled as persisting each output completely before any of
//! its messages leave, so a disk always equals the log of its replica. Every
//! output is checked as it is carried out:
//!
//! - a prepare-ok or commit-ok never names an op beyond the sender's disk;
//! - entries are applied in op order, and no two replicas ever apply
//!   different entries at the same op (across restarts too);
//! - no view has two replicas acting as its primary.
//!
//! A snapshot is modelled as the prefix of the applied entries: compaction
//! moves `op_base` and drops the log before it, and a fetched snapshot copies
//! the peer's applied prefix if the peer's snapshot op still matches.

use std::collections::{BTreeMap, BTreeSet};

use super::message::{Entry, Message};
use super::replica::Replica;
use super::{Config, Durable, Output, ReadRef, Redirect, ReplicaId, RequestRef, Status};

/// Upper bound of messages one `deliver_all` call carries, so that a
/// protocol bug that loops forever fails the test instead of hanging it.
const DELIVER_MAX: usize = 100_000;

pub fn config(replica_count: usize, self_id: ReplicaId, seed: u64) -> Config {
    Config {
        replica_count,
        self_id,
        heartbeat_ticks: 2,
        view_change_timeout_ticks: (10, 20),
        seed,
    }
}

pub fn entry(view: u64, op: u64) -> Entry {
    Entry {
        view,
        op,
        payload: vec![view as u8, op as u8],
    }
}

/// One replica's disk and the shell's state machine beside it.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub view: u64,
    pub log_view: u64,
    /// The op of the snapshot on this disk; `entries` start after it.
    pub op_base: u64,
    pub entries: Vec<Entry>,
    pub intact: bool,
    /// Every `truncate_after` carried out, in order.
    pub truncations: Vec<u64>,
    /// The entries applied to the state machine.
    pub applied: Vec<Entry>,
    /// The op of every snapshot installed from a peer, in order.
    pub installs: Vec<u64>,
}

pub struct Cluster {
    pub seed: u64,
    pub replicas: Vec<Option<Replica>>,
    pub disks: Vec<Disk>,
    /// Messages in flight as (from, to, message).
    pub network: Vec<(ReplicaId, ReplicaId, Message)>,
    /// Directed links that drop everything.
    pub blocked: BTreeSet<(ReplicaId, ReplicaId)>,
    /// Restarts per replica, mixed into the seed of the next start.
    pub incarnations: Vec<u64>,
    /// The entry applied at each op by any replica so far.
    pub chosen: BTreeMap<u64, Entry>,
    /// The replicas seen acting as primary of each view.
    pub primaries: BTreeMap<u64, BTreeSet<ReplicaId>>,
    pub ready: Vec<Vec<ReadRef>>,
    pub failed: Vec<Vec<(ReadRef, Redirect)>>,
    pub next_request: RequestRef,
    pub acks_checked: usize,
}

impl Cluster {
    pub fn new(replica_count: usize, seed: u64) -> Cluster {
        let mut cluster = Cluster {
            seed,
            replicas: Vec::new(),
            disks: vec![Disk::default(); replica_count],
            network: Vec::new(),
            blocked: BTreeSet::new(),
            incarnations: vec![0; replica_count],
            chosen: BTreeMap::new(),
            primaries: BTreeMap::new(),
            ready: vec![Vec::new(); replica_count],
            failed: vec![Vec::new(); replica_count],
            next_request: 0,
            acks_checked: 0,
        };
        for id in 0..replica_count {
            cluster.disks[id].intact = true;
            let replica = cluster.start(id as ReplicaId);
            cluster.replicas.push(Some(replica));
        }
        cluster
    }

    pub fn size(&self) -> usize {
        self.disks.len()
    }

    pub fn replica(&self, id: ReplicaId) -> &Replica {
        self.replicas[usize::from(id)]
            .as_ref()
            .unwrap_or_else(|| panic!("replica {id} is down"))
    }

    pub fn is_up(&self, id: ReplicaId) -> bool {
        self.replicas[usize::from(id)].is_some()
    }

    pub fn applied(&self, id: ReplicaId) -> &[Entry] {
        &self.disks[usize::from(id)].applied
    }

    pub fn truncations(&self, id: ReplicaId) -> Vec<u64> {
        self.disks[usize::from(id)].truncations.clone()
    }

    pub fn reads_ready(&self, id: ReplicaId) -> Vec<ReadRef> {
        self.ready[usize::from(id)].clone()
    }

    pub fn reads_failed(&self, id: ReplicaId) -> Vec<(ReadRef, Redirect)> {
        self.failed[usize::from(id)].clone()
    }

    pub fn acks_checked(&self) -> usize {
        self.acks_checked
    }

    fn start(&mut self, id: ReplicaId) -> Replica {
        let index = usize::from(id);
        if !self.disks[index].intact {
            // A disk without a view record is reformatted before recovery.
            self.disks[index].entries.clear();
        }
        let disk = &self.disks[index];
        let durable = Durable {
            view: disk.view,
            log_view: disk.log_view,
            op_base: disk.op_base,
            entries: disk.entries.clone(),
            commit: disk.applied.len() as u64,
            intact: disk.intact,
            restarted: self.incarnations[index] > 0,
        };
        let seed = self
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(u64::from(id) << 32)
            .wrapping_add(self.incarnations[index]);
        self.incarnations[index] += 1;
        Replica::new(config(self.size(), id, seed), durable)
            .unwrap_or_else(|error| panic!("replica {id} failed to start: {error}"))
    }

    /// Runs `input` on replica `id` and carries out its output.
    pub fn drive(&mut self, id: ReplicaId, input: impl FnOnce(&mut Replica) -> Output) -> Output {
        let index = usize::from(id);
        let Some(replica) = self.replicas[index].as_mut() else {
            return Output::default();
        };
        let mut out = input(replica);
        self.carry_out(id, &out);
        // A fetch completes at once; bounded because each install moves the
        // snapshot op forward.
        for _ in 0..DELIVER_MAX {
            let Some(fetch) = out.fetch_snapshot else {
                break;
            };
            let Some(installed) = self.fetch_snapshot(id, fetch.from, fetch.op) else {
                break;
            };
            self.carry_out(id, &installed);
            out = installed;
        }
        out
    }

    /// Copies the snapshot at `op` of replica `from` to replica `id` and
    /// installs it. Returns None, installing nothing, when `from` is down or
    /// no longer has a snapshot at `op`.
    fn fetch_snapshot(&mut self, id: ReplicaId, from: ReplicaId, op: u64) -> Option<Output> {
        if !self.is_up(from) || self.blocked.contains(&(from, id)) {
            return None;
        }
        let source = &self.disks[usize::from(from)];
        if source.op_base != op {
            return None;
        }
        let applied = source.applied[..op as usize].to_vec();
        let disk = &mut self.disks[usize::from(id)];
        disk.op_base = op;
        disk.entries.clear();
        disk.applied = applied;
        disk.installs.push(op);
        let replica = self.replicas[usize::from(id)].as_mut()?;
        Some(replica.install_snapshot(op))
    }

    /// Takes a snapshot of replica `id` at `op` and compacts its log.
    pub fn compact(&mut self, id: ReplicaId, op: u64) {
        let disk = &mut self.disks[usize::from(id)];
        assert!(op <= disk.applied.len() as u64, "snapshot of unapplied ops");
        if op > disk.op_base {
            disk.entries.drain(..(op - disk.op_base) as usize);
            disk.op_base = op;
        }
        let replica = self.replicas[usize::from(id)]
            .as_mut()
            .expect("live replica");
        replica.compact(op);
    }

    pub fn snapshot_installs(&self, id: ReplicaId) -> Vec<u64> {
        self.disks[usize::from(id)].installs.clone()
    }

    /// Persists, applies and sends one output, checking it on the way.
    fn carry_out(&mut self, id: ReplicaId, out: &Output) {
        let index = usize::from(id);
        let disk = &mut self.disks[index];
        if let Some(after) = out.truncate_after {
            disk.entries.truncate((after - disk.op_base) as usize);
            disk.truncations.push(after);
        }
        for entry in &out.append {
            assert_eq!(
                entry.op,
                disk.op_base + disk.entries.len() as u64 + 1,
                "replica {id} appended a gap"
            );
            disk.entries.push(entry.clone());
        }
        if let Some(record) = out.store_view {
            disk.view = record.view;
            disk.log_view = record.log_view;
        }

        let replica = self.replicas[index]
            .as_ref()
            .expect("output of a live replica");
        assert_eq!(
            disk.entries.as_slice(),
            replica.log(),
            "replica {id}: disk differs from log"
        );
        if replica.status() != Status::Recovering {
            disk.intact = true;
            assert_eq!(
                disk.view,
                replica.view(),
                "replica {id}: view not persisted"
            );
            assert_eq!(
                disk.log_view,
                replica.log_view(),
                "replica {id}: log_view not persisted"
            );
        }
        if replica.is_primary() {
            let primaries = self.primaries.entry(replica.view()).or_default();
            primaries.insert(id);
            assert_eq!(
                primaries.len(),
                1,
                "two primaries in view {}: {primaries:?}",
                replica.view()
            );
        }

        for entry in &out.commit {
            assert_eq!(
                entry.op,
                disk.applied.len() as u64 + 1,
                "replica {id} applied out of order"
            );
            let chosen = self.chosen.entry(entry.op).or_insert_with(|| entry.clone());
            assert_eq!(
                chosen, entry,
                "replica {id} applied a different entry at op {}",
                entry.op
            );
            disk.applied.push(entry.clone());
        }

        for (to, message) in &out.send {
            if let Message::PrepareOk { op, .. } | Message::CommitOk { op, .. } = message {
                assert!(
                    *op <= disk.op_base + disk.entries.len() as u64,
                    "replica {id} acknowledged op {op} with {} entries on disk",
                    disk.entries.len()
                );
                self.acks_checked += 1;
            }
            self.network.push((id, *to, message.clone()));
        }
        self.ready[index].extend(out.reads_ready.iter().copied());
        self.failed[index].extend(out.reads_failed.iter().copied());
    }

    pub fn request(&mut self, id: ReplicaId, payload: Vec<u8>) -> Output {
        let request = self.next_request;
        self.next_request += 1;
        self.drive(id, |replica| replica.on_request(request, payload))
    }

    pub fn requests(&mut self, id: ReplicaId, batch: Vec<(RequestRef, Vec<u8>)>) -> Output {
        self.drive(id, |replica| replica.on_requests(batch))
    }

    pub fn read(&mut self, id: ReplicaId, read: ReadRef) -> Output {
        self.drive(id, |replica| replica.on_read(read))
    }

    pub fn tick(&mut self, id: ReplicaId) -> Output {
        self.drive(id, |replica| replica.on_tick())
    }

    pub fn start_view_change(&mut self, id: ReplicaId, view: u64) -> Output {
        self.drive(id, |replica| {
            let mut out = Output::default();
            replica.start_view_change(view, &mut out);
            out
        })
    }

    /// Delivers one message now, unless its link is blocked or its receiver
    /// is down.
    pub fn deliver(&mut self, from: ReplicaId, to: ReplicaId, message: Message) -> Output {
        if self.blocked.contains(&(from, to)) {
            return Output::default();
        }
        self.drive(to, |replica| replica.on_message(from, message))
    }

    /// Delivers one message, then crashes the receiver while it persists
    /// the output: the truncation and the first `appended` entries reach the
    /// disk, the view record and everything after it do not.
    pub fn deliver_torn(
        &mut self,
        from: ReplicaId,
        to: ReplicaId,
        message: Message,
        appended: usize,
    ) {
        let index = usize::from(to);
        let Some(replica) = self.replicas[index].as_mut() else {
            return;
        };
        if self.blocked.contains(&(from, to)) {
            return;
        }
        let out = replica.on_message(from, message);
        self.crash(to);
        let disk = &mut self.disks[index];
        if let Some(after) = out.truncate_after {
            disk.entries.truncate((after - disk.op_base) as usize);
            disk.truncations.push(after);
        }
        for entry in out.append.iter().take(appended) {
            assert_eq!(
                entry.op,
                disk.op_base + disk.entries.len() as u64 + 1,
                "replica {to} appended a gap"
            );
            disk.entries.push(entry.clone());
        }
    }

    pub fn deliver_list(&mut self, messages: Vec<(ReplicaId, ReplicaId, Message)>) {
        for (from, to, message) in messages {
            self.deliver(from, to, message);
        }
    }

    /// Delivers messages in the order sent until none is left.
    pub fn deliver_all(&mut self) {
        for _ in 0..DELIVER_MAX {
            if self.network.is_empty() {
                return;
            }
            let (from, to, message) = self.network.remove(0);
            self.deliver(from, to, message);
        }
        panic!("messages still in flight after {DELIVER_MAX} deliveries");
    }

    /// Delivers messages newest first until none is left.
    pub fn deliver_reversed(&mut self) {
        for _ in 0..DELIVER_MAX {
            let Some((from, to, message)) = self.network.pop() else {
                return;
            };
            self.deliver(from, to, message);
        }
        panic!("messages still in flight after {DELIVER_MAX} deliveries");
    }

    /// Removes and returns the messages in flight to `to`.
    pub fn take_sent_to(&mut self, to: ReplicaId) -> Vec<(ReplicaId, ReplicaId, Message)> {
        let (taken, kept) = std::mem::take(&mut self.network)
            .into_iter()
            .partition(|(_, receiver, _)| *receiver == to);
        self.network = kept;
        taken
    }

    /// Delivers the messages now in flight to `to` and returns its outputs
    /// merged (the messages it sends stay in flight).
    pub fn step_to(&mut self, to: ReplicaId) -> Output {
        let mut merged = Output::default();
        for (from, to, message) in self.take_sent_to(to) {
            let out = self.deliver(from, to, message);
            merged.send.extend(out.send);
            merged.append.extend(out.append);
            merged.commit.extend(out.commit);
            merged.truncate_after = merged.truncate_after.or(out.truncate_after);
            merged.store_view = out.store_view.or(merged.store_view);
        }
        merged
    }

    pub fn drop_all(&mut self) {
        self.network.clear();
    }

    /// Ticks replica `id` until it sends something (at most the maximum
    /// view-change timeout), and returns what it sent.
    pub fn tick_until_send(&mut self, id: ReplicaId) -> Vec<(ReplicaId, Message)> {
        for _ in 0..20 {
            let out = self.tick(id);
            if !out.send.is_empty() {
                return out.send;
            }
        }
        Vec::new()
    }

    /// Makes every live primary send its heartbeats, then delivers everything.
    pub fn heartbeat(&mut self) {
        for id in 0..self.size() as ReplicaId {
            if self.is_up(id) && self.replica(id).is_primary() {
                self.tick_until_send(id);
            }
        }
        self.deliver_all();
    }

    /// Ticks every live replica `ticks` times, delivering everything after
    /// each tick.
    pub fn run(&mut self, ticks: usize) {
        for _ in 0..ticks {
            for id in 0..self.size() as ReplicaId {
                self.tick(id);
            }
            self.deliver_all();
        }
    }

    /// Makes `target` start a view change to the next view it is primary of,
    /// and delivers everything.
    pub fn elect(&mut self, target: ReplicaId) {
        let n = self.size() as u64;
        let highest = (0..self.size() as ReplicaId)
            .filter(|&id| self.is_up(id))
            .map(|id| self.replica(id).view())
            .max()
            .unwrap_or(0);
        let mut view = highest + 1;
        while view % n != u64::from(target) {
            view += 1;
        }
        self.start_view_change(target, view);
        self.deliver_all();
    }

    pub fn isolate(&mut self, id: ReplicaId) {
        for other in 0..self.size() as ReplicaId {
            if other != id {
                self.blocked.insert((id, other));
                self.blocked.insert((other, id));
            }
        }
    }

    /// Blocks every link between different groups.
    pub fn partition(&mut self, groups: &[&[ReplicaId]]) {
        for (index, group) in groups.iter().enumerate() {
            for (other_index, other) in groups.iter().enumerate() {
                if index == other_index {
                    continue;
                }
                for &from in group.iter() {
                    for &to in other.iter() {
                        self.blocked.insert((from, to));
                    }
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Stops replica `id`; its disk (everything persisted) survives.
    pub fn crash(&mut self, id: ReplicaId) {
        self.replicas[usize::from(id)] = None;
    }

    /// Starts replica `id` again from its disk, crashing it first if it is up.
    pub fn restart(&mut self, id: ReplicaId) {
        self.crash(id);
        let replica = self.start(id);
        self.replicas[usize::from(id)] = Some(replica);
    }

    /// Starts replica `id` again with an empty disk and state machine.
    pub fn restart_wiped(&mut self, id: ReplicaId) {
        self.crash(id);
        let disk = &mut self.disks[usize::from(id)];
        disk.view = 0;
        disk.log_view = 0;
        disk.op_base = 0;
        disk.entries.clear();
        disk.applied.clear();
        disk.intact = false;
        self.restart(id);
    }

    /// Replaces the disk of replica `id` and restarts it from that disk.
    pub fn set_disk(&mut self, id: ReplicaId, view: u64, log_view: u64, entries: Vec<Entry>) {
        self.crash(id);
        let disk = &mut self.disks[usize::from(id)];
        disk.view = view;
        disk.log_view = log_view;
        disk.op_base = 0;
        disk.entries = entries;
        disk.applied.clear();
        disk.intact = true;
        self.restart(id);
    }
}
