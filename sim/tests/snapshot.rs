//! Snapshots in the simulation: nodes compact their logs every few ops, and
//! a node that lost its disk can only catch up by fetching a snapshot, also
//! when it or the primary restarts in the middle.

use std::time::Duration;

use almanac::node::config::SnapshotPolicy;
use almanac_sim::workload::add_writers;
use almanac_sim::{init_logging, sweep, Cluster, Options, Outcome};

const SECOND: Duration = Duration::from_secs(1);
const MILLISECOND: Duration = Duration::from_millis(1);

/// A snapshot every 20 committed ops, so that the writers below compact
/// every log many times per run.
const EVERY_OPS: u64 = 20;

fn cluster(seed: u64) -> Cluster {
    init_logging();
    let options = Options {
        snapshot: SnapshotPolicy {
            every_ops: EVERY_OPS,
            ..SnapshotPolicy::default()
        },
        ..Options::default()
    };
    Cluster::new(seed, options)
}

/// Rejects the run unless node `id` serves with a snapshot installed.
fn holds_snapshot(cluster: &Cluster, id: u8) -> Result<(), String> {
    let service = cluster
        .service(id)
        .ok_or_else(|| format!("n{id} is not serving at the end of the run"))?;
    let op_base = service.snapshot_op();
    if op_base == 0 {
        return Err(format!("n{id} never took or installed a snapshot"));
    }
    Ok(())
}

/// Wipes a backup after every node compacted, so it fetches the primary's
/// snapshot and then the log after it. The backup restarts once shortly
/// after the wipe and the primary crashes later, so a restart of each side
/// cuts the transfer or the catch-up that follows it.
fn wiped_backup_fetches_snapshot(seed: u64) -> Result<Outcome, String> {
    let mut cluster = cluster(seed);
    add_writers(&mut cluster, seed, 3, 8 * SECOND, 10 * SECOND);
    let primary = cluster.await_primary(5 * SECOND)?;
    let backup = (1..=3).find(|&id| id != primary).expect("three nodes");
    cluster.run_until(3 * SECOND)?;
    cluster.wipe_and_restart(backup);
    cluster.run_for(30 * MILLISECOND)?;
    cluster.crash(backup);
    cluster.restart(backup);
    cluster.run_for(SECOND)?;
    cluster.crash(primary);
    cluster.await_new_primary(primary, 10 * SECOND)?;
    cluster.restart(primary);
    cluster.healed();
    let outcome = cluster.finish(3 * SECOND)?;
    for id in 1..=3 {
        holds_snapshot(&cluster, id)?;
    }
    Ok(outcome)
}

#[test]
fn wiped_backup_fetches_snapshot_across_restarts() {
    sweep(
        module_path!(),
        "wiped_backup_fetches_snapshot_across_restarts",
        wiped_backup_fetches_snapshot,
    );
}
