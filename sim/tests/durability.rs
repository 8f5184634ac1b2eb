//! Durability: crashes that lose unsynced writes, torn and corrupt logs,
//! lost disks, and whole-cluster restarts.

use std::path::Path;
use std::time::Duration;

use almanac_sim::cluster::DATA_DIR;
use almanac_sim::disk::{first_segment, flip_byte, record_payload_middle};
use almanac_sim::workload::add_writers;
use almanac_sim::{init_logging, sweep, Cluster, Options, Outcome};

const SECOND: Duration = Duration::from_secs(1);

fn cluster(seed: u64) -> Cluster {
    init_logging();
    Cluster::new(seed, Options::default())
}

/// The ids of the nodes other than `primary`, in id order.
fn backups(primary: u8) -> (u8, u8) {
    let ids: Vec<u8> = (1..=3).filter(|&id| id != primary).collect();
    (ids[0], ids[1])
}

/// Rejects the run unless every node of `ids` is serving.
fn serving(cluster: &Cluster, ids: &[u8]) -> Result<(), String> {
    for &id in ids {
        if let Some(error) = cluster.start_error(id) {
            return Err(format!("n{id} did not start: {error}"));
        }
        if cluster.service(id).is_none() {
            return Err(format!("n{id} is not serving at the end of the run"));
        }
    }
    Ok(())
}

/// A backup and later the primary lose power in the middle of an append;
/// what they never synced is gone, and they acknowledged none of it.
fn unsynced_writes_lost(seed: u64) -> Result<Outcome, String> {
    let mut cluster = cluster(seed);
    add_writers(&mut cluster, seed, 3, 9 * SECOND, 11 * SECOND);
    let primary = cluster.await_primary(5 * SECOND)?;
    let (backup, _) = backups(primary);
    cluster.run_until(2 * SECOND)?;
    cluster.crash_before_fsync(backup)?;
    cluster.run_for(SECOND)?;
    cluster.restart(backup);
    cluster.run_until(5 * SECOND)?;
    cluster.crash_before_fsync(primary)?;
    cluster.await_new_primary(primary, 5 * SECOND)?;
    cluster.restart(primary);
    cluster.healed();
    let outcome = cluster.finish(3 * SECOND)?;
    serving(&cluster, &[1, 2, 3])?;
    Ok(outcome)
}

#[test]
fn crash_loses_unsynced_writes_only() {
    sweep(
        module_path!(),
        "crash_loses_unsynced_writes_only",
        unsynced_writes_lost,
    );
}

/// A backup cannot make a prepare durable while the primary cannot reach
/// the other backup, so the primary must not commit it. Then the backup
/// loses power, the primary is lost for a while and comes back with an
/// empty disk: no acknowledged write may be missing.
fn backup_fsync_lag_then_primary_loss(seed: u64) -> Result<Outcome, String> {
    let mut cluster = cluster(seed);
    add_writers(&mut cluster, seed, 2, 10 * SECOND, 14 * SECOND);
    let primary = cluster.await_primary(5 * SECOND)?;
    let (lagging, cut_off) = backups(primary);
    let primary_name = format!("n{primary}");
    let cut_off_name = format!("n{cut_off}");
    cluster.run_until(2 * SECOND)?;
    cluster.partition_oneway(&[&primary_name], &[&cut_off_name]);
    cluster.crash_before_fsync(lagging)?;
    cluster.run_for(Duration::from_millis(200))?;
    cluster.crash(primary);
    cluster.restart(lagging);
    cluster.repair_oneway(&[&primary_name], &[&cut_off_name]);
    cluster.await_new_primary(primary, 10 * SECOND)?;
    cluster.healed();
    cluster.run_until(7 * SECOND)?;
    cluster.wipe_and_restart(primary);
    let outcome = cluster.finish(5 * SECOND)?;
    serving(&cluster, &[1, 2, 3])?;
    Ok(outcome)
}

#[test]
fn backup_fsync_lag_loses_no_acknowledged_write() {
    sweep(
        module_path!(),
        "backup_fsync_lag_loses_no_acknowledged_write",
        backup_fsync_lag_then_primary_loss,
    );
}

/// A backup crashes in the middle of an append and restarts on a torn
/// tail, catches up, crashes cleanly and restarts again; then both backups
/// tear their tails at once. Every restart must succeed and the cluster
/// must go on.
fn torn_tail(seed: u64) -> Result<Outcome, String> {
    let mut cluster = cluster(seed);
    add_writers(&mut cluster, seed, 3, 10 * SECOND, 12 * SECOND);
    let primary = cluster.await_primary(5 * SECOND)?;
    let (first, second) = backups(primary);
    cluster.run_until(2 * SECOND)?;
    cluster.crash_before_fsync(first)?;
    cluster.run_for(Duration::from_millis(300))?;
    cluster.restart(first);
    cluster.run_until(4 * SECOND)?;
    cluster.crash(first);
    cluster.restart(first);
    cluster.run_until(6 * SECOND)?;
    cluster.power_fail(&[first, second], &[first, second])?;
    cluster.run_for(Duration::from_millis(300))?;
    cluster.restart(first);
    cluster.restart(second);
    cluster.await_primary(10 * SECOND)?;
    cluster.healed();
    let outcome = cluster.finish(3 * SECOND)?;
    serving(&cluster, &[1, 2, 3])?;
    Ok(outcome)
}

#[test]
fn torn_tail_is_repaired_and_caught_up() {
    sweep(
        module_path!(),
        "torn_tail_is_repaired_and_caught_up",
        torn_tail,
    );
}

/// A bit flips inside the third record of a backup's log while it is down.
/// The node must not skip that record as if the log ended there: it
/// refuses to start and names the damage, and the other two go on.
fn corrupt_record(seed: u64) -> Result<Outcome, String> {
    let mut cluster = cluster(seed);
    add_writers(&mut cluster, seed, 2, 6 * SECOND, 8 * SECOND);
    let primary = cluster.await_primary(5 * SECOND)?;
    let (_, damaged) = backups(primary);
    cluster.run_until(3 * SECOND)?;
    cluster.edit_disk_and_restart(damaged, "flip a bit inside record 3", || {
        let segment = first_segment(Path::new(DATA_DIR))?;
        let offset = record_payload_middle(&segment, 3)?;
        flip_byte(&segment, offset)
    });
    cluster.run_for(SECOND)?;
    let error = cluster.start_error(damaged);
    let named = error
        .as_deref()
        .is_some_and(|error| error.contains(".wal") && error.contains("offset"));
    if !named {
        return Err(format!(
            "n{damaged} started on a log with a corrupt record; start error: {error:?}"
        ));
    }
    cluster.healed();
    let outcome = cluster.finish(3 * SECOND)?;
    serving(&cluster, &[primary])?;
    Ok(outcome)
}

#[test]
fn corrupt_record_stops_node_and_names_it() {
    sweep(
        module_path!(),
        "corrupt_record_stops_node_and_names_it",
        corrupt_record,
    );
}

/// A backup loses its disk and restarts empty: it recovers from the others
/// and takes part only once its log holds everything committed before.
fn empty_disk(seed: u64) -> Result<Outcome, String> {
    let mut cluster = cluster(seed);
    add_writers(&mut cluster, seed, 3, 8 * SECOND, 10 * SECOND);
    let primary = cluster.await_primary(5 * SECOND)?;
    let (backup, _) = backups(primary);
    cluster.run_until(3 * SECOND)?;
    cluster.wipe_and_restart(backup);
    cluster.run_until(5 * SECOND)?;
    cluster.crash(primary);
    cluster.await_new_primary(primary, 10 * SECOND)?;
    cluster.restart(primary);
    cluster.healed();
    let outcome = cluster.finish(3 * SECOND)?;
    serving(&cluster, &[1, 2, 3])?;
    Ok(outcome)
}

#[test]
fn empty_disk_recovers_before_taking_part() {
    sweep(
        module_path!(),
        "empty_disk_recovers_before_taking_part",
        empty_disk,
    );
}

/// A backup loses its disk while the primary is down: the one intact node
/// and the recovering one must not form a view, because the recovering
/// node may not vote. Once the primary returns, all three converge with
/// every acknowledged write.
fn empty_disk_without_primary(seed: u64) -> Result<Outcome, String> {
    let mut cluster = cluster(seed);
    add_writers(&mut cluster, seed, 2, 8 * SECOND, 10 * SECOND);
    let primary = cluster.await_primary(5 * SECOND)?;
    let (wiped, intact) = backups(primary);
    cluster.run_until(3 * SECOND)?;
    cluster.crash(primary);
    cluster.wipe_and_restart(wiped);
    cluster.run_for(3 * SECOND)?;
    if let Some(view) = normal_view(&cluster, intact) {
        return Err(format!(
            "n{intact} is normal in view {view} with only a recovering node beside it"
        ));
    }
    cluster.restart(primary);
    cluster.await_primary(10 * SECOND)?;
    cluster.healed();
    let outcome = cluster.finish(3 * SECOND)?;
    serving(&cluster, &[1, 2, 3])?;
    Ok(outcome)
}

/// The view node `id` is normal in, if it is normal. Seconds after the
/// primary failed, a normal node means a new view formed.
fn normal_view(cluster: &Cluster, id: u8) -> Option<u64> {
    use almanac::rpc::calendar_capnp::node_status::Role;
    let status = cluster.service(id)?.status();
    matches!(status.role, Role::Primary | Role::Backup).then_some(status.view)
}

#[test]
fn recovering_node_does_not_vote() {
    sweep(
        module_path!(),
        "recovering_node_does_not_vote",
        empty_disk_without_primary,
    );
}

/// All three nodes lose power at once, one of them in the middle of an
/// append. They restart one by one, the last after a long pause; the
/// first two must form a view on their own.
fn all_restart(seed: u64, last_stays_down: bool) -> Result<Outcome, String> {
    let mut cluster = cluster(seed);
    add_writers(&mut cluster, seed, 3, 9 * SECOND, 12 * SECOND);
    let primary = cluster.await_primary(5 * SECOND)?;
    let (lagging, empty) = backups(primary);
    cluster.run_until(3 * SECOND)?;
    cluster.power_fail(&[1, 2, 3], &[lagging])?;
    cluster.run_for(Duration::from_millis(200))?;
    cluster.restart(empty);
    cluster.run_for(Duration::from_millis(200))?;
    cluster.restart(lagging);
    cluster.await_primary(10 * SECOND)?;
    cluster.healed();
    if !last_stays_down {
        cluster.run_for(2 * SECOND)?;
        cluster.restart(primary);
    }
    let outcome = cluster.finish(3 * SECOND)?;
    let up: Vec<u8> = if last_stays_down {
        vec![lagging, empty]
    } else {
        vec![1, 2, 3]
    };
    serving(&cluster, &up)?;
    Ok(outcome)
}

#[test]
fn all_nodes_restart_at_once() {
    sweep(module_path!(), "all_nodes_restart_at_once", |seed| {
        all_restart(seed, false)
    });
}

#[test]
fn all_restart_with_one_down_for_good() {
    sweep(
        module_path!(),
        "all_restart_with_one_down_for_good",
        |seed| all_restart(seed, true),
    );
}
