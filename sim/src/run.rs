//! One run of a [`Schedule`]. In the safety phase the clients run their
//! scripts while the schedule's faults strike. In the liveness phase every
//! fault is undone and every node runs, and each client must finish and
//! complete a probe write and read in bounded simulated time. Then every
//! check runs, and the run ends as a [`Report`].

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::check::fingerprint;
use crate::cluster::{Cluster, Options, CLIENT_START_SPACING, FIRST_START_MINUTE};
use crate::history::{now, sleep_until, Operation, Response, SimClient};
use crate::linearizability::{self, Verdict};
use crate::schedule::{Fault, OpKind, Schedule, Step};
use almanac::node::config::SnapshotPolicy;

/// How long after the safety phase every client must have finished: its
/// last call may retry for the client's whole operation deadline (20 s),
/// then its probes must complete within [`crate::cluster::LIVE_BOUND`] each.
pub const LIVENESS_LIMIT: Duration = Duration::from_secs(45);
/// Quiet time after every client finished, so that backups learn the last
/// commit number before the convergence check.
const QUIET: Duration = Duration::from_secs(5);
/// Slots shared by every client for [`OpKind::ScheduleShared`]: hour slots
/// just before the first client's own range.
const SHARED_SLOTS: i64 = 3;

/// First word of [`Report::linearizability`] when the search ran out of
/// steps or the history was too long to check.
pub const INCONCLUSIVE: &str = "inconclusive";

/// First word of [`Report::linearizability`] when another safety check
/// had already failed, so the search did not run.
pub const SKIPPED: &str = "skipped";

/// Exit status of `almanac-sim` for each class of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// A safety check failed: something wrong was observed.
    Safety,
    /// The cluster did not recover after the faults stopped.
    Liveness,
    /// The node code, the client or the harness panicked.
    Panic,
}

impl Class {
    /// Returns the process exit status that stands for this class.
    pub fn exit_code(self) -> i32 {
        match self {
            Class::Safety => 10,
            Class::Liveness => 11,
            Class::Panic => 12,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Safety => "safety",
            Class::Liveness => "liveness",
            Class::Panic => "panic",
        }
    }
}

/// A failed run.
#[derive(Clone, Debug)]
pub struct Failure {
    pub class: Class,
    /// Name of the first violated check, such as `DUR` or `LIN-MODEL`.
    pub check: String,
    /// Every violation, the first one first.
    pub violations: Vec<String>,
}

/// The results of one run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The settings line of the schedule.
    pub settings: String,
    /// Faults, primaries, node states and the history, as text.
    pub trace: Vec<String>,
    /// [`fingerprint`] of the trace: equal for two runs of one schedule.
    pub trace_digest: u64,
    /// Number of operations in the history.
    pub operations: usize,
    /// The linearizability check's verdict, as text.
    pub linearizability: String,
    pub failure: Option<Failure>,
}

/// Returns the class of a violation from its check name: the text before
/// the first colon.
pub fn classify(violation: &str) -> (Class, String) {
    let check = violation
        .split_once(':')
        .map_or(violation, |(name, _)| name)
        .to_owned();
    let class = match check.as_str() {
        "LIVE" | "LAG" | "STUCK" => Class::Liveness,
        "PANIC" => Class::Panic,
        _ => Class::Safety,
    };
    (class, check)
}

/// Runs `schedule` and checks it. Panics in the node code or the harness
/// are caught and reported as [`Class::Panic`].
pub fn run(schedule: &Schedule) -> Report {
    set_bug(schedule.bug.as_deref());
    let result = catch_unwind(AssertUnwindSafe(|| run_checked(schedule)));
    set_bug(None);
    match result {
        Ok(report) => report,
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            Report {
                settings: schedule.settings(),
                trace: Vec::new(),
                trace_digest: fingerprint(message.as_bytes()),
                operations: 0,
                linearizability: "not checked".to_owned(),
                failure: Some(Failure {
                    class: Class::Panic,
                    check: "PANIC".to_owned(),
                    violations: vec![format!("PANIC: {message}")],
                }),
            }
        }
    }
}

#[cfg(feature = "planted-bugs")]
fn set_bug(bug: Option<&str>) {
    let bug = bug.map(|name| {
        almanac::planted::Bug::from_name(name).unwrap_or_else(|error| panic!("{error}"))
    });
    almanac::planted::set_active(bug);
}

#[cfg(not(feature = "planted-bugs"))]
fn set_bug(bug: Option<&str>) {
    if let Some(bug) = bug {
        panic!(
            "the schedule plants bug {bug:?}, but almanac-sim was built without the \
             planted-bugs feature; add --features planted-bugs"
        );
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a value that is not text".to_owned()
    }
}

/// Fewest committed ops between two snapshots in a run.
const SNAPSHOT_EVERY_OPS_MIN: u64 = 16;
/// Spread of the snapshot interval over seeds, above the minimum.
const SNAPSHOT_EVERY_OPS_SPREAD: u64 = 48;

fn run_checked(schedule: &Schedule) -> Report {
    let safety_end = schedule.safety();
    let options = Options {
        nodes: schedule.nodes,
        duration: safety_end + LIVENESS_LIMIT + QUIET + Duration::from_secs(5),
        max_latency: Duration::from_millis(schedule.max_latency_ms.max(1)),
        clock_rates_ppm: schedule.clock_rates_ppm.clone(),
        // A run commits tens to hundreds of ops, so snapshots every few
        // dozen ops make compaction and snapshot transfer part of every run.
        snapshot: SnapshotPolicy {
            every_ops: SNAPSHOT_EVERY_OPS_MIN + schedule.seed % SNAPSHOT_EVERY_OPS_SPREAD,
            ..SnapshotPolicy::default()
        },
    };
    let mut cluster = Cluster::new(schedule.seed, options);
    let client_count = schedule.clients.len();
    for (index, steps) in schedule.clients.iter().enumerate() {
        let name = format!("q{}", index + 1);
        let steps = steps.clone();
        cluster.client(&name, &name, move |client| {
            run_client(client, steps, safety_end, client_count)
        });
    }
    cluster.log(schedule.settings());

    let mut violations = match drive(&mut cluster, schedule) {
        Ok(stuck) => stuck,
        Err(error) => vec![format!("PANIC: {error}")],
    };
    let (found, outcome) = cluster.check();
    violations.extend(found);
    let history = outcome.history;
    // The search is the slowest check, and on a violating history it
    // usually runs out of steps, so a run that already failed a safety
    // check skips it. Shrinking reruns failing schedules many times.
    let failed_safety = violations
        .iter()
        .map(|violation| classify(violation))
        .find(|(class, _)| *class == Class::Safety);
    let linearizability = match failed_safety {
        Some((_, check)) => format!("{SKIPPED}: the {check} check failed first"),
        None => match linearizability::check(&history) {
            Verdict::Linearizable(count) => format!("linearizable ({count} operations checked)"),
            Verdict::Violated => {
                violations.push(model_violation(&history));
                "violated".to_owned()
            }
            Verdict::Inconclusive(reason) => format!("{INCONCLUSIVE}: {reason}"),
        },
    };
    let mut trace = outcome.trace;
    trace.push(format!("linearizability: {linearizability}"));
    let failure = first_failure(violations);
    Report {
        settings: schedule.settings(),
        trace_digest: fingerprint(trace.join("\n").as_bytes()),
        trace,
        operations: history.len(),
        linearizability,
        failure,
    }
}

/// Orders the violations by class (safety first) and keeps their order
/// within a class.
fn first_failure(mut violations: Vec<String>) -> Option<Failure> {
    if violations.is_empty() {
        return None;
    }
    violations.sort_by_key(|violation| classify(violation).0);
    let (class, check) = classify(&violations[0]);
    Some(Failure {
        class,
        check,
        violations,
    })
}

fn model_violation(history: &[Operation]) -> String {
    let operations: Vec<String> = history.iter().map(Operation::to_string).collect();
    format!(
        "LIN-MODEL: the history has no linearization against the calendar state machine; \
         its {} operations:\n    {}",
        operations.len(),
        operations.join("\n    ")
    )
}

/// Runs the safety phase with the schedule's faults, heals the cluster,
/// and runs the liveness phase until every client finished. Returns the
/// liveness violation if some client did not finish, and an error if the
/// simulation itself failed.
fn drive(cluster: &mut Cluster, schedule: &Schedule) -> Result<Vec<String>, String> {
    let safety_end = schedule.safety();
    let mut pending: Vec<(u64, Fault)> = schedule.faults.clone();
    pending.sort_by_key(|(at, _)| *at);
    let mut pending = std::collections::VecDeque::from(pending);
    // Pauses end by releasing every link of the node: (end ms, node).
    let mut pauses: Vec<(u64, u8)> = Vec::new();
    while cluster.now() < safety_end {
        let now_ms = cluster.now().as_millis() as u64;
        while pending.front().is_some_and(|(at, _)| *at <= now_ms) {
            let (_, fault) = pending.pop_front().expect("front was checked");
            apply(cluster, &fault, &mut pauses)?;
        }
        let ended: Vec<u8> = pauses
            .iter()
            .filter(|(end, _)| *end <= now_ms)
            .map(|(_, node)| *node)
            .collect();
        pauses.retain(|(end, _)| *end > now_ms);
        for node in ended {
            let (name, others) = node_and_others(cluster, node);
            cluster.release(&[name.as_str()], &names(&others));
        }
        cluster.step()?;
    }

    cluster.repair_all();
    for id in 1..=cluster.node_count() as u8 {
        if !cluster.is_up(id) {
            cluster.restart(id);
        }
    }
    cluster.healed();
    let deadline = cluster.now() + LIVENESS_LIMIT;
    let mut finished = false;
    while !finished && cluster.now() < deadline {
        finished = cluster.step()?;
    }
    if !finished {
        return Ok(vec![stuck(cluster)]);
    }
    cluster.run_for(QUIET)?;
    Ok(Vec::new())
}

/// Describes the calls still running when the liveness phase ended.
fn stuck(cluster: &Cluster) -> String {
    let history = cluster.history();
    let running: Vec<String> = history
        .borrow()
        .iter()
        .filter(|operation| operation.completed.is_none())
        .map(Operation::to_string)
        .collect();
    format!(
        "STUCK: some client did not finish within {LIVENESS_LIMIT:?} after healing; \
         calls still running:\n    {}",
        running.join("\n    ")
    )
}

fn names(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

fn node_and_others(cluster: &Cluster, node: u8) -> (String, Vec<String>) {
    let name = format!("n{node}");
    let others = cluster
        .host_names()
        .into_iter()
        .filter(|host| *host != name)
        .collect();
    (name, others)
}

/// Applies one fault, or skips it where it does not apply (a crash of a
/// node that is down, a host that a shrunk schedule no longer has).
fn apply(cluster: &mut Cluster, fault: &Fault, pauses: &mut Vec<(u64, u8)>) -> Result<(), String> {
    let hosts: BTreeSet<String> = cluster.host_names().into_iter().collect();
    let node_exists =
        |node: &u8| usize::from(*node) >= 1 && usize::from(*node) <= cluster.node_count();
    let host_exists = |host: &String| hosts.contains(host);
    match fault {
        Fault::Crash(node) if node_exists(node) && cluster.is_up(*node) => cluster.crash(*node),
        Fault::PowerLoss(node) if node_exists(node) && cluster.is_up(*node) => {
            cluster.crash_before_fsync(*node)?
        }
        Fault::Restart(node) if node_exists(node) && !cluster.is_up(*node) => {
            cluster.restart(*node)
        }
        // The protocol tolerates at most f nodes without their state at
        // once; a wipe beyond that destroys data no protocol could keep.
        Fault::Wipe(node)
            if node_exists(node) && cluster.nodes_without_state() < cluster.node_count() / 2 =>
        {
            cluster.wipe_and_restart(*node)
        }
        Fault::Partition(side) => {
            let side: Vec<String> = side
                .iter()
                .filter(|host| host_exists(host))
                .cloned()
                .collect();
            let rest: Vec<String> = hosts
                .iter()
                .filter(|host| !side.contains(host))
                .cloned()
                .collect();
            if !side.is_empty() && !rest.is_empty() {
                cluster.partition(&names(&side), &names(&rest));
            }
        }
        Fault::IsolatePrimary(clients) => match cluster.primary() {
            Some(primary) => {
                let mut side = vec![format!("n{primary}")];
                side.extend(clients.iter().filter(|host| host_exists(host)).cloned());
                let rest: Vec<String> = hosts
                    .iter()
                    .filter(|host| !side.contains(host))
                    .cloned()
                    .collect();
                cluster.partition(&names(&side), &names(&rest));
            }
            None => cluster.log(format!("skip {fault}: no node is primary now")),
        },
        Fault::Repair => cluster.repair_all(),
        Fault::OneWay { from, to } if node_exists(from) && node_exists(to) && from != to => {
            let (from, to) = (format!("n{from}"), format!("n{to}"));
            cluster.partition_oneway(&[from.as_str()], &[to.as_str()]);
        }
        Fault::Hold(a, b) if host_exists(a) && host_exists(b) && a != b => {
            cluster.hold(&[a.as_str()], &[b.as_str()])
        }
        Fault::Release(a, b) if host_exists(a) && host_exists(b) && a != b => {
            cluster.release(&[a.as_str()], &[b.as_str()])
        }
        Fault::ConnectionLoss(a, b) if host_exists(a) && host_exists(b) && a != b => {
            cluster.partition(&[a.as_str()], &[b.as_str()]);
            cluster.step()?;
            cluster.repair(&[a.as_str()], &[b.as_str()]);
        }
        Fault::Pause { node, ms } if node_exists(node) => {
            let (name, others) = node_and_others(cluster, *node);
            cluster.hold(&[name.as_str()], &names(&others));
            let end = cluster.now().as_millis() as u64 + ms;
            pauses.push((end, *node));
        }
        _ => cluster.log(format!("skip {fault}: it does not apply now")),
    }
    Ok(())
}

/// The events a client learned of while it runs its script.
#[derive(Default)]
struct Known {
    /// The client's own events that it may edit or delete, with the last
    /// version it saw.
    own: Vec<(u64, u64)>,
    /// Every event id the client saw in a response.
    seen: BTreeSet<u64>,
}

impl Known {
    fn learn(&mut self, response: &Response) {
        match response {
            Response::Written { event_id, .. } => {
                self.seen.insert(*event_id);
            }
            Response::Events(events) => self.seen.extend(events.iter().map(|event| event.0)),
            Response::Inbox(notifications) => self
                .seen
                .extend(notifications.iter().map(|notification| notification.2)),
            _ => {}
        }
    }
}

/// Runs one client's script until the safety phase ends, then its probes.
async fn run_client(mut client: SimClient, steps: Vec<Step>, safety_end: Duration, clients: usize) {
    let mut known = Known::default();
    let mut count = 0;
    let mut registered = false;
    for step in steps {
        if now() >= safety_end {
            break;
        }
        if !registered {
            registered = client.register().await;
            if registered {
                client.start_notifications().await;
            }
            continue;
        }
        match step {
            Step::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Step::Op { kind, pick } => {
                count += 1;
                run_op(&mut client, &mut known, kind, pick, count, clients).await;
            }
        }
    }
    sleep_until(safety_end).await;
    if !registered {
        registered = client.register().await;
    }
    if registered {
        let title = format!("{}-probe", client.name);
        if let Response::Written { event_id, .. } = client.schedule(&title).await {
            client.read(event_id).await;
        }
    }
    client.drain_notifications();
}

async fn run_op(
    client: &mut SimClient,
    known: &mut Known,
    kind: OpKind,
    pick: u32,
    count: u64,
    clients: usize,
) {
    let pick = pick as usize;
    let title = format!("{}-{count}", client.name);
    let response = match kind {
        OpKind::SchedulePrivate | OpKind::SchedulePublic => {
            let start = client.next_slot();
            let response = client
                .schedule_at(&title, start, kind == OpKind::SchedulePublic)
                .await;
            if let Response::Written { event_id, version } = response {
                known.own.push((event_id, version));
            }
            response
        }
        OpKind::ScheduleShared => {
            let slot = (pick as i64 % SHARED_SLOTS) + 1;
            let start = FIRST_START_MINUTE - 60 * slot;
            let response = client.schedule_at(&title, start, true).await;
            if let Response::Written { event_id, version } = response {
                known.own.push((event_id, version));
            }
            response
        }
        OpKind::Edit => {
            let Some(index) = choose(known.own.len(), pick) else {
                return;
            };
            let (event_id, version) = known.own[index];
            let response = client
                .edit_title(event_id, version, &format!("{title}-edit"))
                .await;
            match response {
                Response::Written { version, .. } => known.own[index].1 = version,
                _ => {
                    known.own.remove(index);
                }
            }
            response
        }
        OpKind::Delete => {
            let Some(index) = choose(known.own.len(), pick) else {
                return;
            };
            let (event_id, _) = known.own.remove(index);
            client.delete(event_id).await
        }
        OpKind::Read => {
            let candidates: Vec<u64> = known.seen.iter().copied().collect();
            let event_id = match choose(candidates.len(), pick) {
                Some(index) => candidates[index],
                None => (pick % 4) as u64 + 1,
            };
            client.read(event_id).await
        }
        OpKind::Agenda => {
            let from = FIRST_START_MINUTE - 60 * (SHARED_SLOTS + 1);
            let to = FIRST_START_MINUTE + CLIENT_START_SPACING * clients as i64;
            client.agenda(from, to).await
        }
        OpKind::Search => {
            let text = format!("q{}-", pick % clients + 1);
            client.search(&text).await
        }
        OpKind::Inbox => client.inbox().await,
    };
    known.learn(&response);
}

fn choose(len: usize, pick: usize) -> Option<usize> {
    (len > 0).then(|| pick % len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_check_name() {
        assert_eq!(classify("DUR: event 3 is missing").0, Class::Safety);
        assert_eq!(classify("LIVE: q1 did not complete").0, Class::Liveness);
        assert_eq!(classify("LAG: n2 behind").0, Class::Liveness);
        assert_eq!(classify("PANIC: boom").0, Class::Panic);
        assert_eq!(classify("LIN-MODEL: none").1, "LIN-MODEL");
    }

    #[test]
    fn safety_reported_before_liveness() {
        let failure = first_failure(vec!["LIVE: slow".into(), "ONCE: twice".into()]).unwrap();
        assert_eq!(failure.class, Class::Safety);
        assert_eq!(failure.check, "ONCE");
        assert_eq!(failure.violations.len(), 2);
    }

    #[test]
    fn exit_codes_distinct() {
        let codes: BTreeSet<i32> = [Class::Safety, Class::Liveness, Class::Panic]
            .into_iter()
            .map(Class::exit_code)
            .collect();
        assert_eq!(codes.len(), 3);
        for reserved in [0, 1, 2] {
            assert!(
                !codes.contains(&reserved),
                "exit status {reserved} is taken"
            );
        }
    }
}
