//! Concurrent put clients against an etcd cluster.
//!
//! The client model matches `almanac bench`: every client has its own
//! connection and writes one request at a time, each to a new key, and a
//! latency is measured from the call to the acknowledged reply. A failed put
//! is counted and retried with the next key after a short pause, so a client
//! rides through a leader election like an Almanac client rides through a
//! view change.

use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};

use crate::stats::{LoadReport, Samples};

/// Settings of one load run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Client URLs of the members, such as `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    pub clients: usize,
    pub duration: Duration,
    /// How long clients run before measuring starts.
    pub warmup: Duration,
    pub value_bytes: usize,
}

/// Pause after a failed put. It stops a client from spinning on a dead
/// member, and it is shorter than the Almanac client's first retry pause
/// (10-20 ms), so etcd's failover is not measured with a slower client.
const RETRY_PAUSE: Duration = Duration::from_millis(5);

/// Timeout of one put. It is about as long as the slowest etcd election
/// measured on loopback here (1.0-2.6 s), so it cuts and retries only a put
/// that is stuck on a dead connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the clients on the current thread and returns what they measured.
pub async fn run(options: LoadOptions) -> Result<LoadReport, String> {
    if options.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let started = Instant::now();
    let measure_from = started + options.warmup;
    let stop_at = measure_from + options.duration;
    let run_tag = started.elapsed().as_nanos() as u32 ^ std::process::id();
    let local = tokio::task::LocalSet::new();
    let mut tasks = Vec::with_capacity(options.clients);
    for index in 0..options.clients {
        let client = ClientPlan {
            endpoints: options.endpoints.clone(),
            key_prefix: format!("bench/{run_tag:08x}/{index}/"),
            value: vec![b'v'; options.value_bytes],
            measure_from,
            stop_at,
        };
        tasks.push(local.spawn_local(run_one_client(client)));
    }
    let mut all = Samples::default();
    local
        .run_until(async {
            for task in tasks {
                let samples = task
                    .await
                    .map_err(|error| format!("a client task failed: {error}"))??;
                all.merge(samples);
            }
            Ok::<(), String>(())
        })
        .await?;
    Ok(all.into_report(options.clients, options.duration.as_secs_f64()))
}

struct ClientPlan {
    endpoints: Vec<String>,
    key_prefix: String,
    value: Vec<u8>,
    measure_from: Instant,
    stop_at: Instant,
}

async fn run_one_client(plan: ClientPlan) -> Result<Samples, String> {
    let connect = ConnectOptions::new()
        .with_timeout(REQUEST_TIMEOUT)
        .with_connect_timeout(CONNECT_TIMEOUT);
    let mut client = Client::connect(&plan.endpoints, Some(connect))
        .await
        .map_err(|error| {
            format!(
                "connecting to etcd at {} failed: {error}; check that the members are running",
                plan.endpoints.join(",")
            )
        })?;
    let mut samples = Samples::default();
    let mut last_ack: Option<Instant> = None;
    let mut key = plan.key_prefix.clone();
    // Failures are logged at the 1st, 2nd, 4th, 8th, ... so an election
    // does not flood the terminal.
    let mut failures: u64 = 0;
    for seq in 0u64.. {
        let began = Instant::now();
        if began >= plan.stop_at {
            break;
        }
        key.truncate(plan.key_prefix.len());
        key.push_str(&seq.to_string());
        let result = client
            .put(key.as_bytes(), plan.value.as_slice(), None)
            .await;
        let finished = Instant::now();
        let measured = began >= plan.measure_from && finished <= plan.stop_at;
        match result {
            Ok(_) if measured => {
                samples
                    .latencies_us
                    .push((finished - began).as_micros() as u64);
                if let Some(previous) = last_ack {
                    let pause = (finished - previous).as_micros() as u64;
                    samples.longest_pause_us = samples.longest_pause_us.max(pause);
                }
                last_ack = Some(finished);
            }
            Ok(_) => {}
            Err(error) => {
                if measured {
                    samples.errors += 1;
                }
                failures += 1;
                if failures.is_power_of_two() {
                    eprintln!("etcd-load: put of {key} failed ({failures} failures so far), retrying: {error}");
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
    Ok(samples)
}
