//! A seeded run as data: the cluster's settings, the timed faults of the
//! safety phase and each client's script. [`Schedule::derive`] draws it all
//! from the seed. Shrinking removes faults and client steps from it, and
//! [`Schedule::to_text`] writes it as a file that [`Schedule::parse`] reads
//! back for replay.
//!
//! Derivation is "swarm" style: each seed turns some fault kinds and some
//! operation kinds on and leaves the others off, so that runs differ in
//! what they stress, not only in when.

use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::seed::mix;

/// First line of a schedule file; a change to the format changes it.
pub const FILE_HEADER: &str = "almanac-sim schedule 1";

/// Kinds of client operations a workload mixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpKind {
    /// A private event without guests in a slot of the client's own.
    SchedulePrivate,
    /// A public event (every user is invited) in a slot of the client's own.
    SchedulePublic,
    /// A public event in one of a few slots shared by every client, so that
    /// whether it conflicts depends on the order of the schedules.
    ScheduleShared,
    /// A new title for one of the client's events.
    Edit,
    /// A delete of one of the client's events.
    Delete,
    /// A read of one event by id.
    Read,
    Agenda,
    Search,
    /// A read of every notification of the user.
    Inbox,
}

impl OpKind {
    pub const ALL: [OpKind; 9] = [
        OpKind::SchedulePrivate,
        OpKind::SchedulePublic,
        OpKind::ScheduleShared,
        OpKind::Edit,
        OpKind::Delete,
        OpKind::Read,
        OpKind::Agenda,
        OpKind::Search,
        OpKind::Inbox,
    ];

    /// Returns the operation's name in a schedule file.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::SchedulePrivate => "private",
            OpKind::SchedulePublic => "public",
            OpKind::ScheduleShared => "shared",
            OpKind::Edit => "edit",
            OpKind::Delete => "delete",
            OpKind::Read => "read",
            OpKind::Agenda => "agenda",
            OpKind::Search => "search",
            OpKind::Inbox => "inbox",
        }
    }

    fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// One step of a client's script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Runs an operation. `pick` chooses its target (an event the client
    /// learned of, a shared slot) by index modulo the choices at run time.
    Op { kind: OpKind, pick: u32 },
    /// Waits this many milliseconds.
    Wait(u64),
}

/// Kinds of faults the safety phase may apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// Crash a node, restart it on its disk later.
    Crash,
    /// Make a node's syncs fail, crash it once it wrote unsynced data, and
    /// restart it later: a power loss in the middle of an append.
    PowerLoss,
    /// Crash a node and restart it with an empty disk.
    Wipe,
    /// Cut a group of nodes and clients off from the rest, repair later.
    Partition,
    /// Drop every message in one direction between two nodes, repair later.
    OneWay,
    /// Hold the messages between two hosts and release them later: delay
    /// and reordering without loss.
    Hold,
    /// Cut the connections between two hosts for one step.
    ConnectionLoss,
    /// Hold every message to and from a node for a while: the node looks
    /// paused to everyone else.
    Pause,
    /// Run the nodes' wall clocks at different rates.
    ClockDrift,
}

impl FaultKind {
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Crash,
        FaultKind::PowerLoss,
        FaultKind::Wipe,
        FaultKind::Partition,
        FaultKind::OneWay,
        FaultKind::Hold,
        FaultKind::ConnectionLoss,
        FaultKind::Pause,
        FaultKind::ClockDrift,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::PowerLoss => "power-loss",
            FaultKind::Wipe => "wipe",
            FaultKind::Partition => "partition",
            FaultKind::OneWay => "one-way",
            FaultKind::Hold => "hold",
            FaultKind::ConnectionLoss => "connection-loss",
            FaultKind::Pause => "pause",
            FaultKind::ClockDrift => "clock-drift",
        }
    }
}

/// One fault, applied at a time of the safety phase. Hosts are named as in
/// the simulation: nodes `n1..`, clients `q1..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    Crash(u8),
    PowerLoss(u8),
    Restart(u8),
    Wipe(u8),
    /// Cuts the hosts listed off from every other host.
    Partition(Vec<String>),
    /// Cuts the node that is primary when the fault strikes, with the
    /// clients listed, off from every other host.
    IsolatePrimary(Vec<String>),
    /// Repairs every partition, both ways.
    Repair,
    OneWay {
        from: u8,
        to: u8,
    },
    Hold(String, String),
    Release(String, String),
    ConnectionLoss(String, String),
    /// Holds every link of a node for this many milliseconds.
    Pause {
        node: u8,
        ms: u64,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Crash(node) => write!(f, "crash n{node}"),
            Fault::PowerLoss(node) => write!(f, "power-loss n{node}"),
            Fault::Restart(node) => write!(f, "restart n{node}"),
            Fault::Wipe(node) => write!(f, "wipe n{node}"),
            Fault::Partition(side) => write!(f, "partition {}", side.join(",")),
            Fault::IsolatePrimary(clients) if clients.is_empty() => write!(f, "isolate-primary"),
            Fault::IsolatePrimary(clients) => write!(f, "isolate-primary {}", clients.join(",")),
            Fault::Repair => write!(f, "repair"),
            Fault::OneWay { from, to } => write!(f, "one-way n{from} n{to}"),
            Fault::Hold(a, b) => write!(f, "hold {a} {b}"),
            Fault::Release(a, b) => write!(f, "release {a} {b}"),
            Fault::ConnectionLoss(a, b) => write!(f, "connection-loss {a} {b}"),
            Fault::Pause { node, ms } => write!(f, "pause n{node} {ms}"),
        }
    }
}

/// Everything one run does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Seeds turmoil's randomness (latencies), the nodes' timeouts and the
    /// clients' ids and jitter.
    pub seed: u64,
    pub nodes: usize,
    /// Upper bound of a message's latency in milliseconds.
    pub max_latency_ms: u64,
    /// Length of the safety phase in simulated milliseconds.
    pub safety_ms: u64,
    /// Wall-clock rate of each node in parts per million.
    pub clock_rates_ppm: Vec<u64>,
    /// The planted bug to activate, by name; None for the real code.
    pub bug: Option<String>,
    /// The fault kinds turned on, for the settings line.
    pub fault_kinds: Vec<FaultKind>,
    /// The operation kinds turned on, for the settings line.
    pub op_kinds: Vec<OpKind>,
    /// Faults by simulated millisecond, in time order.
    pub faults: Vec<(u64, Fault)>,
    /// Each client's script, clients `q1..` in order.
    pub clients: Vec<Vec<Step>>,
}

/// A small seeded generator: SplitMix64 over a counter.
struct Draw {
    seed: u64,
    count: u64,
}

impl Draw {
    fn new(seed: u64) -> Draw {
        Draw { seed, count: 0 }
    }

    fn next(&mut self) -> u64 {
        self.count += 1;
        mix(self.seed, self.count)
    }

    /// Returns a value in `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    /// Returns true with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Minimum and maximum safety phase in simulated milliseconds.
const SAFETY_MS: (u64, u64) = (6_000, 14_000);
/// Minimum and maximum operations per client: with at most 8 clients this
/// keeps a history under about 150 calls, which the linearizability check
/// handles in milliseconds.
const OPS_PER_CLIENT: (u64, u64) = (4, 16);
/// Chance that a client only reads, in percent.
const READERS_PERCENT: u64 = 30;
/// Maximum wait between two operations of a busy client.
const BUSY_WAIT_MS_MAX: u64 = 60;
/// How many times more operations a reader makes than a writer, so that
/// its reads follow each other closely.
const READER_OPS_FACTOR: u64 = 3;
/// Most faults of each enabled kind per safety phase.
const FAULTS_PER_KIND_MAX: u64 = 4;
/// Minimum and maximum node clock rate, in parts per million of simulated
/// time.
const CLOCK_RATE_PPM: (u64, u64) = (900_000, 1_100_000);

impl Schedule {
    /// Derives the run of `seed`, with planted bug `bug` if any.
    pub fn derive(seed: u64, bug: Option<&str>) -> Schedule {
        let mut draw = Draw::new(mix(seed, 0x5eed));
        let nodes = if draw.chance(70) { 3 } else { 5 };
        let client_count = draw.range(1, 8) as usize;
        let safety_ms = draw.range(SAFETY_MS.0, SAFETY_MS.1);
        let max_latency_ms = draw.range(2, 20);

        let fault_kinds: Vec<FaultKind> = FaultKind::ALL
            .into_iter()
            .filter(|_| draw.chance(50))
            .collect();
        let mut op_kinds: Vec<OpKind> = OpKind::ALL
            .into_iter()
            .filter(|_| draw.chance(60))
            .collect();
        if !op_kinds.iter().any(|kind| is_schedule(*kind)) {
            op_kinds.push(OpKind::SchedulePublic);
            op_kinds.sort();
        }

        let clock_rates_ppm = (0..nodes)
            .map(|_| {
                if fault_kinds.contains(&FaultKind::ClockDrift) {
                    draw.range(CLOCK_RATE_PPM.0, CLOCK_RATE_PPM.1)
                } else {
                    1_000_000
                }
            })
            .collect();
        // Some clients only read, so that a read can begin while another
        // client's write is outstanding or just acknowledged.
        let read_kinds: Vec<OpKind> = OpKind::ALL
            .into_iter()
            .filter(|kind| is_read(*kind))
            .collect();
        let clients = (0..client_count)
            .map(|_| {
                if draw.chance(READERS_PERCENT) {
                    client_script(&mut draw, &read_kinds, READER_OPS_FACTOR, safety_ms)
                } else {
                    client_script(&mut draw, &op_kinds, 1, safety_ms)
                }
            })
            .collect();
        let mut schedule = Schedule {
            seed,
            nodes,
            max_latency_ms,
            safety_ms,
            clock_rates_ppm,
            bug: bug.map(str::to_owned),
            fault_kinds: fault_kinds.clone(),
            op_kinds,
            faults: Vec::new(),
            clients,
        };
        for kind in fault_kinds {
            for _ in 0..draw.range(1, FAULTS_PER_KIND_MAX) {
                schedule.add_fault(&mut draw, kind);
            }
        }
        schedule.faults.sort_by_key(|(at, _)| *at);
        schedule
    }

    fn add_fault(&mut self, draw: &mut Draw, kind: FaultKind) {
        let at = draw.range(200, self.safety_ms - 200);
        let node = draw.range(1, self.nodes as u64) as u8;
        let later = |draw: &mut Draw, low, high| (at + draw.range(low, high)).min(self.safety_ms);
        match kind {
            FaultKind::Crash | FaultKind::PowerLoss => {
                let down = if kind == FaultKind::Crash {
                    Fault::Crash(node)
                } else {
                    Fault::PowerLoss(node)
                };
                let back = later(draw, 100, 3_000);
                self.faults.push((at, down));
                self.faults.push((back, Fault::Restart(node)));
            }
            FaultKind::Wipe => self.faults.push((at, Fault::Wipe(node))),
            FaultKind::Partition => {
                // Half the partitions cut off whichever node is primary, as
                // that is where a deposed primary can still serve clients.
                // Clients of the cut-off side fail over only after their call
                // times out (3 s), so an isolated primary stays cut off
                // longer than that for the other side to acknowledge writes
                // while it still serves the clients on its side.
                let (cut, back) = if draw.chance(50) {
                    let mut clients = self.some_clients(draw);
                    if clients.is_empty() && !self.clients.is_empty() {
                        clients.push(format!("q{}", draw.range(1, self.clients.len() as u64)));
                    }
                    (Fault::IsolatePrimary(clients), later(draw, 3_500, 8_000))
                } else {
                    (
                        Fault::Partition(self.partition_side(draw)),
                        later(draw, 100, 8_000),
                    )
                };
                self.faults.push((at, cut));
                self.faults.push((back, Fault::Repair));
            }
            FaultKind::OneWay => {
                let to = self.other_node(draw, node);
                let back = later(draw, 100, 4_000);
                self.faults.push((at, Fault::OneWay { from: node, to }));
                self.faults.push((back, Fault::Repair));
            }
            FaultKind::Hold => {
                let (a, b) = self.host_pair(draw, node);
                let back = later(draw, 10, 2_000);
                self.faults.push((at, Fault::Hold(a.clone(), b.clone())));
                self.faults.push((back, Fault::Release(a, b)));
            }
            FaultKind::ConnectionLoss => {
                let (a, b) = self.host_pair(draw, node);
                self.faults.push((at, Fault::ConnectionLoss(a, b)));
            }
            FaultKind::Pause => {
                let ms = draw.range(50, 1_500);
                self.faults.push((at, Fault::Pause { node, ms }));
            }
            FaultKind::ClockDrift => {}
        }
    }

    /// Draws a group of nodes (possibly the majority) with some clients.
    fn partition_side(&self, draw: &mut Draw) -> Vec<String> {
        let mut side: Vec<String> = (1..=self.nodes)
            .filter(|_| draw.chance(40))
            .map(|node| format!("n{node}"))
            .collect();
        if side.is_empty() {
            side.push(format!("n{}", draw.range(1, self.nodes as u64)));
        }
        side.extend(self.some_clients(draw));
        side
    }

    /// Draws each client with a chance of 40 %.
    fn some_clients(&self, draw: &mut Draw) -> Vec<String> {
        (1..=self.clients.len())
            .filter(|_| draw.chance(40))
            .map(|client| format!("q{client}"))
            .collect()
    }

    fn other_node(&self, draw: &mut Draw, node: u8) -> u8 {
        let offset = draw.range(1, self.nodes as u64 - 1) as u8;
        (node - 1 + offset) % self.nodes as u8 + 1
    }

    /// Draws a pair of `node` and another host: a node or a client.
    fn host_pair(&self, draw: &mut Draw, node: u8) -> (String, String) {
        let other = if !self.clients.is_empty() && draw.chance(30) {
            format!("q{}", draw.range(1, self.clients.len() as u64))
        } else {
            format!("n{}", self.other_node(draw, node))
        };
        (format!("n{node}"), other)
    }

    /// Returns the one-line summary of the derived settings.
    pub fn settings(&self) -> String {
        let faults: Vec<&str> = self.fault_kinds.iter().map(|kind| kind.name()).collect();
        let ops: Vec<&str> = self.op_kinds.iter().map(|kind| kind.name()).collect();
        let steps: usize = self.clients.iter().map(Vec::len).sum();
        let rates: Vec<String> = self
            .clock_rates_ppm
            .iter()
            .map(|rate| rate.to_string())
            .collect();
        format!(
            "seed {}: {} nodes, {} clients ({steps} steps), safety phase {} ms, \
             latency up to {} ms, clock ppm [{}], ops [{}], faults [{}] ({} scheduled), bug {}",
            self.seed,
            self.nodes,
            self.clients.len(),
            self.safety_ms,
            self.max_latency_ms,
            rates.join(" "),
            ops.join(" "),
            faults.join(" "),
            self.faults.len(),
            self.bug.as_deref().unwrap_or("none"),
        )
    }

    /// Returns the safety phase's length.
    pub fn safety(&self) -> Duration {
        Duration::from_millis(self.safety_ms)
    }

    /// Writes the schedule in the format [`Schedule::parse`] reads.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "{FILE_HEADER}");
        let _ = writeln!(text, "seed {}", self.seed);
        let _ = writeln!(text, "nodes {}", self.nodes);
        let _ = writeln!(text, "latency-ms {}", self.max_latency_ms);
        let _ = writeln!(text, "safety-ms {}", self.safety_ms);
        let rates: Vec<String> = self.clock_rates_ppm.iter().map(u64::to_string).collect();
        let _ = writeln!(text, "clock-ppm {}", rates.join(" "));
        if let Some(bug) = &self.bug {
            let _ = writeln!(text, "bug {bug}");
        }
        let kinds: Vec<&str> = self.fault_kinds.iter().map(|kind| kind.name()).collect();
        let _ = writeln!(text, "fault-kinds {}", kinds.join(" "));
        let kinds: Vec<&str> = self.op_kinds.iter().map(|kind| kind.name()).collect();
        let _ = writeln!(text, "op-kinds {}", kinds.join(" "));
        for (at, fault) in &self.faults {
            let _ = writeln!(text, "fault {at} {fault}");
        }
        for steps in &self.clients {
            let words: Vec<String> = steps.iter().map(step_word).collect();
            let _ = writeln!(text, "client {}", words.join(" "));
        }
        text
    }

    /// Reads a schedule written by [`Schedule::to_text`]. The error names
    /// the line that is invalid.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.trim() == FILE_HEADER => {}
            _ => {
                return Err(format!(
                    "the first line is not {FILE_HEADER:?}; this is not a schedule file"
                ))
            }
        }
        let mut schedule = Schedule {
            seed: 0,
            nodes: 3,
            max_latency_ms: 10,
            safety_ms: 10_000,
            clock_rates_ppm: Vec::new(),
            bug: None,
            fault_kinds: Vec::new(),
            op_kinds: Vec::new(),
            faults: Vec::new(),
            clients: Vec::new(),
        };
        for (index, line) in lines {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            schedule
                .parse_line(line)
                .map_err(|error| format!("line {}: {error}: {line:?}", index + 1))?;
        }
        if schedule.nodes.is_multiple_of(2) || schedule.nodes > 9 {
            return Err(format!(
                "nodes {} is invalid; use an odd number up to 9",
                schedule.nodes
            ));
        }
        Ok(schedule)
    }

    fn parse_line(&mut self, line: &str) -> Result<(), String> {
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        let words: Vec<&str> = rest.split_whitespace().collect();
        match key {
            "seed" => self.seed = number(rest)?,
            "nodes" => self.nodes = number(rest)? as usize,
            "latency-ms" => self.max_latency_ms = number(rest)?,
            "safety-ms" => self.safety_ms = number(rest)?,
            "clock-ppm" => {
                self.clock_rates_ppm = words
                    .iter()
                    .map(|word| number(word))
                    .collect::<Result<_, _>>()?
            }
            "bug" => self.bug = Some(rest.trim().to_owned()),
            "fault-kinds" => {
                self.fault_kinds = words
                    .iter()
                    .map(|word| {
                        FaultKind::ALL
                            .into_iter()
                            .find(|kind| kind.name() == *word)
                            .ok_or_else(|| format!("unknown fault kind {word:?}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "op-kinds" => {
                self.op_kinds = words
                    .iter()
                    .map(|word| {
                        OpKind::from_name(word).ok_or_else(|| format!("unknown operation {word:?}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "fault" => {
                let (at, fault) = words
                    .split_first()
                    .ok_or("a fault line needs a time and a fault")?;
                self.faults.push((number(at)?, parse_fault(fault)?));
            }
            "client" => {
                let steps = words
                    .iter()
                    .map(|word| parse_step(word))
                    .collect::<Result<_, _>>()?;
                self.clients.push(steps);
            }
            other => return Err(format!("unknown key {other:?}")),
        }
        Ok(())
    }
}

fn is_read(kind: OpKind) -> bool {
    matches!(
        kind,
        OpKind::Read | OpKind::Agenda | OpKind::Search | OpKind::Inbox
    )
}

fn is_schedule(kind: OpKind) -> bool {
    matches!(
        kind,
        OpKind::SchedulePrivate | OpKind::SchedulePublic | OpKind::ScheduleShared
    )
}

/// Draws a script of `factor` times the usual number of operations, each
/// of a kind from `kinds`. Half the clients are busy, with short waits, so
/// that many calls are in flight when a fault strikes. The others spread
/// their script over about the safety phase of `safety_ms`, so that faults
/// late in the phase still meet client calls.
fn client_script(draw: &mut Draw, kinds: &[OpKind], factor: u64, safety_ms: u64) -> Vec<Step> {
    let count = factor * draw.range(OPS_PER_CLIENT.0, OPS_PER_CLIENT.1);
    let wait_max = if draw.chance(50) {
        BUSY_WAIT_MS_MAX
    } else {
        (2 * safety_ms / count).max(1)
    };
    let mut steps = Vec::new();
    for _ in 0..count {
        let kind = kinds[draw.range(0, kinds.len() as u64 - 1) as usize];
        steps.push(Step::Op {
            kind,
            pick: draw.next() as u32,
        });
        steps.push(Step::Wait(draw.range(1, wait_max)));
    }
    steps
}

fn number(text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an unsigned integer"))
}

fn node_number(text: &str) -> Result<u8, String> {
    text.strip_prefix('n')
        .and_then(|id| id.parse().ok())
        .filter(|id| *id >= 1)
        .ok_or_else(|| format!("{text:?} is not a node name such as n1"))
}

fn step_word(step: &Step) -> String {
    match step {
        Step::Op { kind, pick } => format!("{}:{pick}", kind.name()),
        Step::Wait(ms) => format!("wait:{ms}"),
    }
}

fn parse_step(word: &str) -> Result<Step, String> {
    let (name, value) = word
        .split_once(':')
        .ok_or_else(|| format!("step {word:?} is not NAME:NUMBER"))?;
    if name == "wait" {
        return Ok(Step::Wait(number(value)?));
    }
    let kind = OpKind::from_name(name).ok_or_else(|| format!("unknown operation {name:?}"))?;
    Ok(Step::Op {
        kind,
        pick: number(value)? as u32,
    })
}

fn parse_fault(words: &[&str]) -> Result<Fault, String> {
    let pair = |words: &[&str]| match words {
        [a, b] => Ok((a.to_string(), b.to_string())),
        _ => Err("this fault needs two host names".to_owned()),
    };
    let node = |words: &[&str]| match words {
        [name] => node_number(name),
        _ => Err("this fault needs one node name".to_owned()),
    };
    let (kind, rest) = words.split_first().ok_or("the fault is missing")?;
    let fault = match *kind {
        "crash" => Fault::Crash(node(rest)?),
        "power-loss" => Fault::PowerLoss(node(rest)?),
        "restart" => Fault::Restart(node(rest)?),
        "wipe" => Fault::Wipe(node(rest)?),
        "partition" => match rest {
            [side] => Fault::Partition(side.split(',').map(str::to_owned).collect()),
            _ => return Err("partition needs one comma-separated list of hosts".to_owned()),
        },
        "isolate-primary" => match rest {
            [] => Fault::IsolatePrimary(Vec::new()),
            [clients] => Fault::IsolatePrimary(clients.split(',').map(str::to_owned).collect()),
            _ => return Err("isolate-primary takes one comma-separated list of clients".to_owned()),
        },
        "repair" => Fault::Repair,
        "one-way" => match rest {
            [from, to] => Fault::OneWay {
                from: node_number(from)?,
                to: node_number(to)?,
            },
            _ => return Err("one-way needs two node names".to_owned()),
        },
        "hold" => {
            let (a, b) = pair(rest)?;
            Fault::Hold(a, b)
        }
        "release" => {
            let (a, b) = pair(rest)?;
            Fault::Release(a, b)
        }
        "connection-loss" => {
            let (a, b) = pair(rest)?;
            Fault::ConnectionLoss(a, b)
        }
        "pause" => match rest {
            [name, ms] => Fault::Pause {
                node: node_number(name)?,
                ms: number(ms)?,
            },
            _ => return Err("pause needs a node name and milliseconds".to_owned()),
        },
        other => return Err(format!("unknown fault {other:?}")),
    };
    Ok(fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_is_deterministic() {
        assert_eq!(Schedule::derive(7, None), Schedule::derive(7, None));
        assert_ne!(Schedule::derive(7, None), Schedule::derive(8, None));
    }

    #[test]
    fn derived_settings_in_range() {
        for seed in 0..200 {
            let schedule = Schedule::derive(seed, None);
            assert!(matches!(schedule.nodes, 3 | 5), "seed {seed}");
            assert!((1..=8).contains(&schedule.clients.len()), "seed {seed}");
            assert!(
                schedule
                    .faults
                    .iter()
                    .all(|(at, _)| *at <= schedule.safety_ms),
                "seed {seed}: a fault after the safety phase"
            );
            assert!(
                schedule
                    .faults
                    .windows(2)
                    .all(|pair| pair[0].0 <= pair[1].0),
                "seed {seed}: faults out of order"
            );
        }
    }

    #[test]
    fn swarm_varies_fault_kinds() {
        let kinds: std::collections::BTreeSet<Vec<FaultKind>> = (0..50)
            .map(|seed| Schedule::derive(seed, None).fault_kinds)
            .collect();
        assert!(
            kinds.len() > 10,
            "only {} distinct fault mixes",
            kinds.len()
        );
    }

    #[test]
    fn text_round_trip() {
        for seed in 0..50 {
            let schedule = Schedule::derive(seed, Some("skip-quorum"));
            let parsed = Schedule::parse(&schedule.to_text()).unwrap();
            assert_eq!(parsed, schedule, "seed {seed}");
        }
    }

    #[test]
    fn parse_names_bad_line() {
        let text = format!("{FILE_HEADER}\nseed 1\nfault 10 explode n1\n");
        let error = Schedule::parse(&text).unwrap_err();
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("unknown fault"), "{error}");
    }

    #[test]
    fn parse_rejects_other_file() {
        let error = Schedule::parse("hello\n").unwrap_err();
        assert!(error.contains("not a schedule file"), "{error}");
    }
}
