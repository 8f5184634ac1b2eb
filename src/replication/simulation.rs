//! Seeded randomized runs of the harness cluster: messages are dropped,
//! duplicated and reordered, links are cut, and replicas crash, restart and
//! lose their disks. The harness checks every output: committed entries
//! agree, each view has one primary, and acknowledgements name only persisted
//! ops. Each run also checks that ready reads reflect every write committed
//! before the read arrived. Once the faults stop, the cluster must converge
//! and commit a new request.
//!
//! A receiver may also crash while persisting an output, keeping the log
//! truncation and a prefix of the appended entries but not the view record.
//! Replicas take snapshots at random, so lagging and wiped replicas often
//! catch up by snapshot transfer.
//!
//! Not modelled: a disk that loses writes the shell reported durable, and
//! more than one replica without its disk at a time, which can lose
//! committed entries under any protocol that tolerates f failures.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::harness::Cluster;
use super::{ReadRef, ReplicaId, Status};

/// Fault probabilities in percent, and the length of the faulty phase.
#[derive(Clone)]
struct Faults {
    steps: usize,
    drop_percent: u32,
    duplicate_percent: u32,
    /// Chance that the receiver crashes while persisting the output of a
    /// delivered message, keeping only part of its log writes.
    torn_write_percent: u32,
}

/// Ticks allowed for convergence after the faults stop: several maximum
/// view-change timeouts, because a few view changes may collide first.
const CONVERGE_TICKS: usize = 600;

struct Run {
    cluster: Cluster,
    rng: StdRng,
    faults: Faults,
    next_payload: u64,
    next_read: ReadRef,
    /// For each pending read, the highest op committed anywhere when it was
    /// issued: the read must see at least that.
    read_floor: BTreeMap<(ReplicaId, ReadRef), u64>,
    reads_checked: usize,
}

impl Run {
    fn new(replica_count: usize, seed: u64, faults: Faults) -> Run {
        Run {
            cluster: Cluster::new(replica_count, seed),
            rng: StdRng::seed_from_u64(seed ^ 0x5EED),
            faults,
            next_payload: 0,
            next_read: 0,
            read_floor: BTreeMap::new(),
            reads_checked: 0,
        }
    }

    fn random_replica(&mut self) -> ReplicaId {
        self.rng.gen_range(0..self.cluster.size()) as ReplicaId
    }

    fn step(&mut self) {
        match self.rng.gen_range(0..100) {
            0..=44 => self.deliver_random(),
            45..=69 => {
                let id = self.random_replica();
                self.cluster.tick(id);
            }
            70..=79 => self.request_random(),
            80..=84 => self.read_random(),
            85..=86 => self.crash_random(),
            87..=89 => self.restart_random(),
            90 => self.wipe_random(),
            91..=92 => {
                let id = self.random_replica();
                self.cluster.isolate(id);
            }
            93..=94 => self.cluster.heal(),
            95 => self.compact_random(),
            _ => {
                for id in 0..self.cluster.size() as ReplicaId {
                    self.cluster.tick(id);
                }
            }
        }
        self.check_reads();
    }

    fn deliver_random(&mut self) {
        if self.cluster.network.is_empty() {
            return;
        }
        let index = self.rng.gen_range(0..self.cluster.network.len());
        let (from, to, message) = self.cluster.network.swap_remove(index);
        if self.rng.gen_range(0..100) < self.faults.drop_percent {
            return;
        }
        if self.rng.gen_range(0..100) < self.faults.duplicate_percent {
            self.cluster.network.push((from, to, message.clone()));
        }
        if self.rng.gen_range(0..100) < self.faults.torn_write_percent {
            let appended = self.rng.gen_range(0..4);
            self.cluster.deliver_torn(from, to, message, appended);
            return;
        }
        self.cluster.deliver(from, to, message);
    }

    fn request_random(&mut self) {
        let id = self.random_replica();
        let count = self.rng.gen_range(1..=3);
        let batch = (0..count)
            .map(|_| {
                self.next_payload += 1;
                (self.next_payload, self.next_payload.to_le_bytes().to_vec())
            })
            .collect();
        self.cluster.requests(id, batch);
    }

    fn read_random(&mut self) {
        let id = self.random_replica();
        self.next_read += 1;
        let floor = self.cluster.chosen.len() as u64;
        self.read_floor.insert((id, self.next_read), floor);
        self.cluster.read(id, self.next_read);
    }

    fn crash_random(&mut self) {
        let id = self.random_replica();
        self.cluster.crash(id);
    }

    fn restart_random(&mut self) {
        let id = self.random_replica();
        if !self.cluster.is_up(id) {
            self.cluster.restart(id);
        }
    }

    /// Takes a snapshot of one live replica at its commit number.
    fn compact_random(&mut self) {
        let id = self.random_replica();
        if self.cluster.is_up(id) {
            let commit = self.cluster.replica(id).commit();
            self.cluster.compact(id, commit);
        }
    }

    /// Wipes one replica's disk, but only while every other disk is intact.
    fn wipe_random(&mut self) {
        if self.cluster.disks.iter().any(|disk| !disk.intact) {
            return;
        }
        let id = self.random_replica();
        self.cluster.restart_wiped(id);
    }

    fn check_reads(&mut self) {
        for id in 0..self.cluster.size() as ReplicaId {
            let ready = std::mem::take(&mut self.cluster.ready[usize::from(id)]);
            for read in ready {
                let floor = self
                    .read_floor
                    .remove(&(id, read))
                    .unwrap_or_else(|| panic!("replica {id} released unknown read {read}"));
                let applied = self.cluster.applied(id).len() as u64;
                assert!(
                    applied >= floor,
                    "replica {id} served read {read} at op {applied}, \
                     but op {floor} had committed before the read arrived"
                );
                self.reads_checked += 1;
            }
        }
    }

    /// Stops the faults and runs until every replica is normal in one view
    /// with the same fully committed log.
    fn converge(&mut self) {
        self.cluster.heal();
        for id in 0..self.cluster.size() as ReplicaId {
            if !self.cluster.is_up(id) {
                self.cluster.restart(id);
            }
        }
        for _ in 0..CONVERGE_TICKS {
            self.cluster.run(1);
            self.check_reads();
            if self.converged() {
                return;
            }
        }
        let states: Vec<String> = (0..self.cluster.size() as ReplicaId)
            .map(|id| {
                let replica = self.cluster.replica(id);
                format!(
                    "replica {id}: {:?} view {} op {} commit {}",
                    replica.status(),
                    replica.view(),
                    replica.op(),
                    replica.commit()
                )
            })
            .collect();
        panic!("no convergence after {CONVERGE_TICKS} ticks: {states:#?}");
    }

    fn converged(&self) -> bool {
        let first = self.cluster.replica(0);
        (0..self.cluster.size() as ReplicaId).all(|id| {
            let replica = self.cluster.replica(id);
            replica.status() == Status::Normal
                && replica.view() == first.view()
                && replica.op() == first.op()
                && self.cluster.applied(id) == self.cluster.applied(0)
                && replica.commit() == replica.op()
                && self.cluster.applied(id).len() as u64 == replica.op()
        })
    }

    /// After convergence a new request commits on every replica.
    fn check_live(&mut self) {
        let primary = self.cluster.replica(0).primary();
        let out = self.cluster.request(primary, b"final".to_vec());
        assert_eq!(
            out.accepted.len(),
            1,
            "converged primary rejected a request"
        );
        let op = out.accepted[0].op;
        self.cluster.run(10);
        for id in 0..self.cluster.size() as ReplicaId {
            let applied = self.cluster.applied(id);
            assert_eq!(applied.len() as u64, op, "replica {id}");
            assert_eq!(applied[op as usize - 1].payload, b"final".to_vec());
        }
    }
}

fn simulate(replica_count: usize, seed: u64, faults: Faults) -> Run {
    let mut run = Run::new(replica_count, seed, faults);
    for _ in 0..run.faults.steps {
        run.step();
    }
    run.converge();
    run.check_live();
    run
}

fn faults() -> Faults {
    Faults {
        steps: 3_000,
        drop_percent: 10,
        duplicate_percent: 5,
        torn_write_percent: 1,
    }
}

#[test]
fn random_faults_three() {
    let mut committed = 0;
    let mut view_max = 0;
    let mut installs = 0;
    for seed in 0..40 {
        let run = simulate(3, seed, faults());
        committed += run.cluster.chosen.len();
        view_max = view_max.max(run.cluster.replica(0).view());
        installs += (0..3)
            .map(|id| run.cluster.snapshot_installs(id).len())
            .sum::<usize>();
    }
    assert!(installs > 0, "no run caught up by snapshot transfer");
    // The faults must leave room for progress, or the run checks little.
    assert!(
        committed > 40 * 20,
        "only {committed} ops committed in 40 runs"
    );
    assert!(view_max > 0, "no run changed view");
}

#[test]
fn random_faults_five() {
    let mut reads = 0;
    for seed in 100..120 {
        let run = simulate(5, seed, faults());
        reads += run.reads_checked;
    }
    assert!(reads > 0, "no read became ready in any run");
}

#[test]
fn random_faults_heavy_loss() {
    let heavy = Faults {
        steps: 2_000,
        drop_percent: 40,
        duplicate_percent: 20,
        torn_write_percent: 2,
    };
    for seed in 200..215 {
        simulate(3, seed, heavy.clone());
    }
}

#[test]
fn same_seed_same_run() {
    let first = simulate(3, 7, faults());
    let second = simulate(3, 7, faults());
    assert_eq!(first.cluster.chosen, second.cluster.chosen);
    assert_eq!(first.cluster.network, second.cluster.network);
}
