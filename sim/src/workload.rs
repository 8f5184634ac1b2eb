//! Client scripts shared by the scenarios.

use std::time::Duration;

use crate::history::{now, SimClient};
use crate::seed::mix;

/// Maximum pause between two writes of [`write_until`].
const PAUSE_MAX_MS: u64 = 40;

/// Registers the client's user, then schedules events with unique titles
/// (`<client>-<n>`) one after another until simulated time `until`, with a
/// seeded pause between writes. Returns the number of writes made.
pub async fn write_until(client: &mut SimClient, until: Duration, seed: u64) -> u64 {
    if !client.register().await {
        return 0;
    }
    let mut count = 0;
    while now() < until {
        count += 1;
        let title = format!("{}-{count}", client.name);
        client.schedule(&title).await;
        let pause = mix(seed, count) % (PAUSE_MAX_MS + 1);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    count
}

/// Writes like [`write_until`], then, from simulated time `probe_at`,
/// schedules `probes` more events: the writes that the liveness check
/// times once the scenario healed the cluster.
pub async fn write_then_probe(
    mut client: SimClient,
    until: Duration,
    probe_at: Duration,
    probes: u64,
    seed: u64,
) {
    write_until(&mut client, until, seed).await;
    crate::history::sleep_until(probe_at).await;
    for probe in 1..=probes {
        let title = format!("{}-probe-{probe}", client.name);
        client.schedule(&title).await;
    }
}

/// Adds `count` clients `q1..qN`, each its own user, that run
/// [`write_then_probe`] with three probes.
pub fn add_writers(
    cluster: &mut crate::Cluster,
    seed: u64,
    count: u64,
    until: Duration,
    probe_at: Duration,
) {
    for index in 1..=count {
        let name = format!("q{index}");
        let client_seed = mix(seed, index);
        cluster.client(&name, &name, move |client| {
            write_then_probe(client, until, probe_at, 3, client_seed)
        });
    }
}
