//! `almanac bench`: a load generator against a running cluster.
//!
//! Each simulated client registers its own user and schedules private
//! events one after another, each 30 minutes after the previous one, so that
//! no write is rejected as a conflict and every write does the full work: a
//! conflict check across the participant's events, replication to a quorum,
//! and an fsync on every node that acknowledges it. Latency is measured
//! from the call to the acknowledged reply, as the client sees it.
//!
//! All clients register before the warmup starts, a few at a time, because
//! each registration costs the primary an argon2 hash of tens of
//! milliseconds of CPU and is not what the benchmark measures. After the
//! measured phase each client deletes its account, which cancels its
//! events, unless the run keeps its data.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::calendar::{EventDraft, Timing, Visibility};
use crate::client::{Client, ClientError};

/// Settings of one benchmark run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub addresses: Vec<String>,
    /// Concurrent clients, each with its own connection and user.
    pub clients: usize,
    /// How long the measured phase lasts.
    pub duration: Duration,
    /// How long clients run before measuring starts, counted from the
    /// moment every client has registered.
    pub warmup: Duration,
    /// Whether the accounts the run registered, and their events, stay in
    /// the cluster; otherwise each client deletes its account at the end.
    pub keep_data: bool,
}

/// Registrations in flight at once: the primary hashes at most this many
/// passwords in parallel anyway, and more would only queue there.
const REGISTRATIONS_CONCURRENT: usize = crate::node::auth::CONCURRENT_HASHES_MAX;

/// Measurements of one run. Latencies are in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub clients: usize,
    pub seconds: f64,
    pub writes: u64,
    pub errors: u64,
    pub writes_per_second: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// The maximum time between two consecutive acknowledged writes of one
    /// client. With a primary killed mid-run, it is the pause clients saw.
    pub longest_pause_us: u64,
}

#[derive(Default)]
struct Samples {
    latencies_us: Vec<u64>,
    errors: u64,
    longest_pause_us: u64,
}

/// First event start: 2030-01-01T00:00Z in minutes, far from real data.
const FIRST_START_MINUTE: i64 = 31_561_920;

/// Runs the benchmark on the current thread and returns what it measured.
pub fn run(options: BenchOptions) -> Result<BenchReport, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start a runtime: {error}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run_clients(options))
}

async fn run_clients(options: BenchOptions) -> Result<BenchReport, String> {
    let clients = register_clients(&options).await?;
    let samples = Rc::new(RefCell::new(Samples::default()));
    let started = Instant::now();
    let measure_from = started + options.warmup;
    let stop_at = measure_from + options.duration;
    let mut tasks = Vec::new();
    for (client, username) in clients {
        let samples = samples.clone();
        tasks.push(tokio::task::spawn_local(async move {
            run_one_client(client, username, samples, measure_from, stop_at).await
        }));
    }
    let mut finished = Vec::with_capacity(tasks.len());
    for task in tasks {
        let client = task
            .await
            .map_err(|error| format!("a client task failed: {error}"))?;
        finished.push(client);
    }
    if !options.keep_data {
        delete_accounts(finished).await;
    }
    let seconds = options.duration.as_secs_f64();
    let mut samples = samples.take();
    samples.latencies_us.sort_unstable();
    let writes = samples.latencies_us.len() as u64;
    let percentile = |p: f64| -> u64 {
        if samples.latencies_us.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * (samples.latencies_us.len() - 1) as f64).round() as usize;
        samples.latencies_us[rank]
    };
    Ok(BenchReport {
        clients: options.clients,
        seconds,
        writes,
        errors: samples.errors,
        writes_per_second: writes as f64 / seconds,
        p50_us: percentile(50.0),
        p90_us: percentile(90.0),
        p99_us: percentile(99.0),
        max_us: samples.latencies_us.last().copied().unwrap_or(0),
        longest_pause_us: samples.longest_pause_us,
    })
}

/// Connects one client per benchmark client and registers its user, at
/// most [`REGISTRATIONS_CONCURRENT`] at a time.
async fn register_clients(options: &BenchOptions) -> Result<Vec<(Client, String)>, String> {
    let run_tag: u32 = rand::random();
    let permits = Rc::new(tokio::sync::Semaphore::new(REGISTRATIONS_CONCURRENT));
    let mut tasks = Vec::with_capacity(options.clients);
    for index in 0..options.clients {
        let username = format!("bench{run_tag:08x}c{index}");
        let addresses = options.addresses.clone();
        let permits = permits.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let _permit = permits
                .acquire()
                .await
                .expect("the semaphore is never closed");
            let (events, _ignored) = mpsc::unbounded_channel();
            let mut client = Client::new(addresses, events);
            client
                .register(&username, "bench-password")
                .await
                .map_err(|error| format!("registering {username} failed: {error}"))?;
            Ok::<_, String>((client, username))
        }));
    }
    let mut clients = Vec::with_capacity(options.clients);
    for task in tasks {
        let registered = task
            .await
            .map_err(|error| format!("a client task failed: {error}"))??;
        clients.push(registered);
    }
    Ok(clients)
}

/// Deletes each client's account, which also cancels every event it
/// hosts, after the measured phase. A failure leaves that account behind
/// and is reported, but does not fail the run.
async fn delete_accounts(clients: Vec<(Client, String)>) {
    let count = clients.len();
    let mut tasks = Vec::with_capacity(count);
    for (mut client, username) in clients {
        tasks.push(tokio::task::spawn_local(async move {
            match client.delete_account().await {
                Ok(()) => true,
                Err(error) => {
                    eprintln!(
                        "warning: the benchmark account {username} was not deleted: {error}; \
                         delete it by logging in with password bench-password"
                    );
                    false
                }
            }
        }));
    }
    let mut deleted = 0;
    for task in tasks {
        if matches!(task.await, Ok(true)) {
            deleted += 1;
        }
    }
    tracing::info!(
        deleted,
        count,
        "deleted the benchmark accounts and their events"
    );
}

/// Schedules events until `stop_at` and returns the client and its user.
async fn run_one_client(
    mut client: Client,
    username: String,
    samples: Rc<RefCell<Samples>>,
    measure_from: Instant,
    stop_at: Instant,
) -> (Client, String) {
    let mut start = FIRST_START_MINUTE;
    let mut last_ack: Option<Instant> = None;
    loop {
        let began = Instant::now();
        if began >= stop_at {
            return (client, username);
        }
        let draft = EventDraft {
            title: format!("bench {start}"),
            description: String::new(),
            start,
            zone: "UTC".into(),
            duration_minutes: 30,
            visibility: Visibility::Private { guests: Vec::new() },
            recurrence: None,
            timing: Timing::Zoned,
        };
        start += 30;
        let result = client.schedule(&draft).await;
        let finished = Instant::now();
        if began < measure_from || finished > stop_at {
            continue;
        }
        let mut samples = samples.borrow_mut();
        match result {
            Ok(_) => {
                samples
                    .latencies_us
                    .push((finished - began).as_micros() as u64);
                if let Some(previous) = last_ack {
                    let pause = (finished - previous).as_micros() as u64;
                    samples.longest_pause_us = samples.longest_pause_us.max(pause);
                }
                last_ack = Some(finished);
            }
            Err(ClientError::Rejected(rejection)) => {
                samples.errors += 1;
                tracing::warn!(%rejection, user = %username, "a benchmark write was rejected");
            }
            Err(error) => {
                samples.errors += 1;
                tracing::warn!(%error, user = %username, "a benchmark write failed");
            }
        }
    }
}

impl BenchReport {
    /// Formats the report as one line for people.
    pub fn summary(&self) -> String {
        format!(
            "{} clients, {:.1} s: {} writes ({:.0}/s), {} errors; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; longest pause {:.2} ms",
            self.clients,
            self.seconds,
            self.writes,
            self.writes_per_second,
            self.errors,
            self.p50_us as f64 / 1000.0,
            self.p90_us as f64 / 1000.0,
            self.p99_us as f64 / 1000.0,
            self.max_us as f64 / 1000.0,
            self.longest_pause_us as f64 / 1000.0,
        )
    }
}

/// Settings of an in-process benchmark of the calendar state machine.
#[derive(Clone, Debug)]
pub struct CalendarBenchOptions {
    pub users: usize,
    pub events: usize,
    /// Agenda queries to time after loading.
    pub queries: usize,
}

/// Measurements of the state machine alone: how fast the log applies (the
/// replay speed of a restart), how much memory the state takes, and how
/// long a one-week agenda query takes.
#[derive(Clone, Debug, Serialize)]
pub struct CalendarBenchReport {
    pub users: usize,
    pub events: usize,
    pub apply_ops_per_second: f64,
    pub resident_bytes_per_event: f64,
    pub agenda_p50_us: f64,
    pub agenda_p99_us: f64,
    pub agenda_max_us: f64,
    /// Time to clone the whole state: what a node's event loop would spend
    /// to hand a snapshot thread its own copy, which is why it shares the
    /// state instead.
    pub clone_ms: f64,
    /// Time to encode the state as a snapshot file, digest included.
    pub snapshot_encode_ms: f64,
    pub snapshot_bytes: usize,
}

impl CalendarBenchReport {
    /// Formats the report as one line for people.
    pub fn summary(&self) -> String {
        format!(
            "{} users, {} events: applied {:.0} ops/s, {:.0} resident bytes per event; \
             one-week agenda p50 {:.1} us, p99 {:.1} us, max {:.1} us; \
             clone {:.0} ms, snapshot encode {:.0} ms ({} bytes)",
            self.users,
            self.events,
            self.apply_ops_per_second,
            self.resident_bytes_per_event,
            self.agenda_p50_us,
            self.agenda_p99_us,
            self.agenda_max_us,
            self.clone_ms,
            self.snapshot_encode_ms,
            self.snapshot_bytes,
        )
    }
}

/// Resident memory of this process in bytes, from /proc (Linux only).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Loads a calendar with `users` users and `events` private events spread
/// evenly over them (each user's events an hour apart, so none conflict),
/// then times one-week agenda queries of random users.
pub fn run_calendar(options: CalendarBenchOptions) -> Result<CalendarBenchReport, String> {
    use crate::calendar::{Calendar, Command, Request};
    use rand::{Rng, SeedableRng};

    if options.users == 0 || options.events == 0 {
        return Err("--users and --events must be at least 1".into());
    }
    let mut calendar = Calendar::new();
    let before = resident_bytes().unwrap_or(0);
    let mut seq = 0;
    let mut next_request = |command: Command| {
        seq += 1;
        Request {
            client_id: 1,
            seq,
            now_ms: 0,
            command,
        }
    };
    let started = Instant::now();
    for user in 0..options.users {
        let command = Command::Register {
            username: format!("user{user}"),
            password_hash: "$argon2id$v=19$m=8,t=1,p=1$bench$bench".into(),
        };
        calendar.apply(&next_request(command));
    }
    for index in 0..options.events {
        let user = index % options.users;
        let slot = (index / options.users) as i64;
        let draft = EventDraft {
            title: format!("event {index}"),
            description: String::new(),
            start: FIRST_START_MINUTE + slot * 60,
            zone: "UTC".into(),
            duration_minutes: 30,
            visibility: Visibility::Private { guests: Vec::new() },
            recurrence: None,
            timing: Timing::Zoned,
        };
        let command = Command::Schedule {
            caller: format!("user{user}"),
            draft,
        };
        if let crate::calendar::Outcome::Rejected(rejection) =
            calendar.apply(&next_request(command))
        {
            return Err(format!("event {index} was rejected: {rejection}"));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = resident_bytes().unwrap_or(0);
    let ops = (options.users + options.events) as f64;

    let per_user = options.events.div_ceil(options.users) as i64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut timings_us = Vec::with_capacity(options.queries);
    for _ in 0..options.queries {
        let user = format!("user{}", rng.gen_range(0..options.users));
        let from = FIRST_START_MINUTE + rng.gen_range(0..per_user.max(1)) * 60;
        let began = Instant::now();
        let found = calendar.agenda(&user, from, from + 7 * 24 * 60);
        timings_us.push(began.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(found);
    }
    timings_us.sort_by(f64::total_cmp);

    let began = Instant::now();
    let copy = std::hint::black_box(calendar.clone());
    let clone_ms = began.elapsed().as_secs_f64() * 1e3;
    drop(copy);
    let began = Instant::now();
    let snapshot = crate::snapshot::Snapshot::encode(seq, &calendar);
    let snapshot_encode_ms = began.elapsed().as_secs_f64() * 1e3;

    let at = |p: f64| timings_us[((timings_us.len() - 1) as f64 * p).round() as usize];
    Ok(CalendarBenchReport {
        users: options.users,
        events: options.events,
        apply_ops_per_second: ops / elapsed,
        resident_bytes_per_event: after.saturating_sub(before) as f64 / options.events as f64,
        agenda_p50_us: at(0.5),
        agenda_p99_us: at(0.99),
        agenda_max_us: *timings_us.last().unwrap_or(&0.0),
        clone_ms,
        snapshot_encode_ms,
        snapshot_bytes: snapshot.len(),
    })
}
