//! Failover: the primary crashes or is cut off while clients write.

use std::time::Duration;

use almanac_sim::seed::mix;
use almanac_sim::workload::write_then_probe;
use almanac_sim::{init_logging, sweep, Cluster, Options, Outcome};

const SECOND: Duration = Duration::from_secs(1);

/// Starts `clients` writers that write until `until` and probe from
/// `probe_at`.
fn writers(cluster: &mut Cluster, seed: u64, clients: u64, until: Duration, probe_at: Duration) {
    for index in 1..=clients {
        let name = format!("q{index}");
        let client_seed = mix(seed, index);
        cluster.client(&name, &name, move |client| {
            write_then_probe(client, until, probe_at, 3, client_seed)
        });
    }
}

/// The primary crashes while three clients write; a new primary takes
/// over, the old one restarts and catches up.
fn primary_crash(seed: u64, nodes: usize) -> Result<Outcome, String> {
    init_logging();
    let mut cluster = Cluster::new(
        seed,
        Options {
            nodes,
            ..Options::default()
        },
    );
    writers(&mut cluster, seed, 3, 8 * SECOND, 12 * SECOND);
    let primary = cluster.await_primary(5 * SECOND)?;
    cluster.run_until(3 * SECOND)?;
    cluster.crash(primary);
    let next = cluster.await_primary(5 * SECOND)?;
    if next == primary {
        return Err(format!("n{primary} crashed but is still primary"));
    }
    cluster.run_until(6 * SECOND)?;
    cluster.restart(primary);
    cluster.healed();
    cluster.finish(3 * SECOND)
}

#[test]
fn primary_crashes_mid_workload() {
    sweep(module_path!(), "primary_crashes_mid_workload", |seed| {
        primary_crash(seed, 3)
    });
}
