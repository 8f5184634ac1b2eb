//! The harness: a turmoil simulation of real Almanac nodes and clients, the
//! faults a scenario applies to it, and the samples the checkers need.
//!
//! Each node is a turmoil host `n1..nN` that runs the production node code
//! (`node::prepare` and `BoundNode::serve`): Cap'n Proto over turmoil's TCP
//! on ports 7401 (clients) and 7501 (peers), and its log on turmoil's file
//! system under `/data`. The first boot formats the disk with
//! `StartMode::Init`; every later boot uses `StartMode::Rejoin`. The boot
//! number is mixed into the node's host seed, so that a restarted node draws
//! fresh nonces.
//!
//! The simulation runs on one thread, so the harness keeps an `Rc<Service>`
//! per running node and reads it between steps: every step samples each
//! node's status for the election-safety check.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use almanac::calendar::{EventView, SearchQuery};
use almanac::node::clock::Clock;
use almanac::node::config::{NodeAddresses, SnapshotPolicy};
use almanac::node::host::Host;
use almanac::node::net::TurmoilConnector;
use almanac::node::service::Service;
use almanac::node::{prepare, ClusterConfig, NodeOptions, StartMode};
use almanac::rpc::calendar_capnp::node_status::Role;

use crate::check::{self, NodeState};
use crate::disk::{wipe_dir, DiskFaults, FaultDisk};
use crate::history::{summarize_notifications, Deliveries, History, Operation, SimClient};
use crate::seed::mix;

/// Wall-clock time at which every simulation starts: 2026-01-01T00:00Z.
pub const EPOCH_MS: u64 = 1_767_225_600_000;
/// Directory of each node's log and meta file.
pub const DATA_DIR: &str = "/data";
pub const CLIENT_PORT: u16 = 7401;
pub const PEER_PORT: u16 = 7501;
/// Length of one simulation step. Finer than the node's 10 ms protocol
/// tick, so message order within a tick still varies with the seed.
pub const STEP: Duration = Duration::from_millis(1);
/// Unit in which turmoil tears a write that was not synced at a crash: a
/// record of a few hundred bytes can then survive in part.
pub const TORN_BLOCK_BYTES: u64 = 64;
/// How long a write may take once a majority is up and connected: a view
/// change (at most 0.5 s), a client's call timeout (3 s) and its backoff,
/// with room for two of each.
pub const LIVE_BOUND: Duration = Duration::from_secs(10);
/// How long the harness waits for an armed disk to receive a write before
/// it crashes the node anyway.
const UNSYNCED_WAIT_MAX: Duration = Duration::from_secs(2);
/// First event start of the first client, in minutes since the Unix epoch
/// (2030-01-01T00:00Z). Each further client starts `CLIENT_START_SPACING`
/// later, so that no two clients' events overlap.
pub const FIRST_START_MINUTE: i64 = 31_557_600;
pub const CLIENT_START_SPACING: i64 = 1_000_000;
const CLUSTER_SECRET: &[u8] = b"simulated cluster secret, 32 bytes";

/// Settings of one simulated cluster.
#[derive(Clone, Debug)]
pub struct Options {
    /// Number of nodes, odd.
    pub nodes: usize,
    /// Most simulated time the run may take before it fails.
    pub duration: Duration,
    /// Upper bound of each message's latency; turmoil draws each latency
    /// from an exponential distribution between 1 ms and this bound.
    pub max_latency: Duration,
    /// When the nodes take snapshots and compact their logs.
    pub snapshot: SnapshotPolicy,
    /// Speed of each node's wall clock in parts per million of simulated
    /// time, by node index; nodes past the end run at 1,000,000.
    pub clock_rates_ppm: Vec<u64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            nodes: 3,
            duration: Duration::from_secs(120),
            max_latency: Duration::from_millis(10),
            snapshot: SnapshotPolicy::default(),
            clock_rates_ppm: Vec::new(),
        }
    }
}

/// The state of one node that outlives its boots.
struct NodeSlot {
    id: u8,
    name: String,
    boots: Cell<u32>,
    wipe_next_boot: Cell<bool>,
    /// A change to the disk made at the start of the next boot, before the
    /// node opens its data directory.
    disk_edit: RefCell<Option<DiskEdit>>,
    faults: Rc<DiskFaults>,
    /// Speed of the node's wall clock in parts per million.
    clock_rate_ppm: u64,
    /// The service of the current boot; None while the node is down or
    /// before it opened its data directory.
    service: RefCell<Option<Rc<Service>>>,
    /// The error with which the last boot failed to open the data directory.
    start_error: RefCell<Option<String>>,
}

type DiskEdit = Box<dyn FnOnce() -> io::Result<()>>;

/// A simulated cluster and its clients, driven step by step by a scenario.
pub struct Cluster {
    seed: u64,
    sim: turmoil::Sim<'static>,
    nodes: Vec<Rc<NodeSlot>>,
    up: Vec<bool>,
    addresses: Vec<String>,
    history: History,
    deliveries: Deliveries,
    users: Rc<RefCell<BTreeSet<String>>>,
    client_count: u64,
    client_names: Vec<String>,
    /// Faults and first sightings of primaries, with simulated times; part
    /// of the trace the determinism check compares.
    trace: Vec<String>,
    /// Every (view, node id) seen in the primary role.
    primaries: BTreeMap<u64, BTreeSet<u8>>,
    /// The highest view each node reported since its disk was last wiped.
    views: Vec<u64>,
    /// For a node restarted with an empty disk: the commit number that was
    /// reached before, which its log must hold before it takes part.
    catch_up: Vec<Option<u64>>,
    /// The first entry any node applied at each op, as (view, payload
    /// fingerprint, node id), for the APPLY check.
    applied: BTreeMap<u64, (u64, u64, u8)>,
    violations: Vec<String>,
    /// Simulated time from which every new write must complete in
    /// `LIVE_BOUND`. A crash or partition clears it until the scenario calls
    /// [`Cluster::healed`].
    healed_at: Option<Duration>,
}

impl Cluster {
    /// Builds the simulation for `seed` and boots every node.
    pub fn new(seed: u64, options: Options) -> Cluster {
        assert!(
            options.nodes % 2 == 1 && options.nodes <= 9,
            "the simulation needs an odd number of nodes up to 9, not {}",
            options.nodes
        );
        let mut builder = turmoil::Builder::new();
        builder
            .rng_seed(seed)
            .epoch(UNIX_EPOCH + Duration::from_millis(EPOCH_MS))
            .simulation_duration(options.duration)
            .tick_duration(STEP)
            .min_message_latency(Duration::from_millis(1))
            .max_message_latency(options.max_latency)
            .tcp_capacity(4096);
        builder.fs().block_size(TORN_BLOCK_BYTES);
        let sim = builder.build();

        let config = cluster_config(options.nodes, options.snapshot);
        let mut cluster = Cluster {
            seed,
            sim,
            nodes: Vec::new(),
            up: vec![true; options.nodes],
            addresses: config.client_addresses(),
            history: History::default(),
            deliveries: Deliveries::default(),
            users: Rc::default(),
            client_count: 0,
            client_names: Vec::new(),
            trace: vec![format!("seed {seed}, {} nodes", options.nodes)],
            primaries: BTreeMap::new(),
            views: vec![0; options.nodes],
            catch_up: vec![None; options.nodes],
            applied: BTreeMap::new(),
            violations: Vec::new(),
            healed_at: Some(Duration::ZERO),
        };
        for node in &config.nodes {
            let slot = Rc::new(NodeSlot {
                id: node.id,
                name: format!("n{}", node.id),
                boots: Cell::new(0),
                wipe_next_boot: Cell::new(false),
                disk_edit: RefCell::new(None),
                faults: Rc::default(),
                clock_rate_ppm: options
                    .clock_rates_ppm
                    .get(usize::from(node.id) - 1)
                    .copied()
                    .unwrap_or(1_000_000),
                service: RefCell::new(None),
                start_error: RefCell::new(None),
            });
            let boot_slot = slot.clone();
            let boot_config = config.clone();
            cluster.sim.host(slot.name.as_str(), move || {
                boot_node(boot_slot.clone(), boot_config.clone(), seed)
            });
            cluster.nodes.push(slot);
        }
        cluster
    }

    /// Adds a client host `name` that runs `script` with a [`SimClient`]
    /// for `user`. Clients that share a user log in as the same person.
    pub fn client<F, Fut>(&mut self, name: &str, user: &str, script: F)
    where
        F: FnOnce(SimClient) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let index = self.client_count;
        self.client_count += 1;
        self.client_names.push(name.to_owned());
        self.users.borrow_mut().insert(user.to_owned());
        let client = SimClient::new(
            name,
            user,
            self.addresses.clone(),
            mix(self.seed, 1000 + index),
            self.history.clone(),
            self.deliveries.clone(),
            FIRST_START_MINUTE + CLIENT_START_SPACING * index as i64,
        );
        self.sim.client(name, async move {
            script(client).await;
            Ok(())
        });
    }

    /// Returns the shared history of every client.
    pub fn history(&self) -> History {
        self.history.clone()
    }

    /// Returns the notifications each client's stream delivered.
    pub fn deliveries(&self) -> Deliveries {
        self.deliveries.clone()
    }

    /// Returns the number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Returns whether node `id` runs (it may still be opening its disk).
    pub fn is_up(&self, id: u8) -> bool {
        self.up[usize::from(id) - 1]
    }

    /// Returns how many nodes restarted with an empty disk and have not yet
    /// taken part in a view since.
    pub fn nodes_without_state(&self) -> usize {
        self.catch_up
            .iter()
            .filter(|pending| pending.is_some())
            .count()
    }

    /// Returns the names of every host: nodes `n1..`, then clients.
    pub fn host_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.nodes.iter().map(|slot| slot.name.clone()).collect();
        names.extend(self.client_names.iter().cloned());
        names
    }

    /// Returns the simulated time since the run began.
    pub fn now(&self) -> Duration {
        self.sim.elapsed()
    }

    /// Runs one step and samples the nodes. Returns whether every client
    /// finished its script.
    pub fn step(&mut self) -> Result<bool, String> {
        let finished = self
            .sim
            .step()
            .map_err(|error| format!("the simulation failed at {:?}: {error}", self.now()))?;
        self.observe();
        Ok(finished)
    }

    /// Runs until simulated time `at`.
    pub fn run_until(&mut self, at: Duration) -> Result<(), String> {
        while self.now() < at {
            self.step()?;
        }
        Ok(())
    }

    /// Runs for `span` of simulated time.
    pub fn run_for(&mut self, span: Duration) -> Result<(), String> {
        self.run_until(self.now() + span)
    }

    /// Runs until `condition` is true or `limit` passed, and returns whether
    /// it became true.
    pub fn run_until_true(
        &mut self,
        limit: Duration,
        mut condition: impl FnMut(&Cluster) -> bool,
    ) -> Result<bool, String> {
        let end = self.now() + limit;
        while self.now() < end {
            if condition(self) {
                return Ok(true);
            }
            self.step()?;
        }
        Ok(condition(self))
    }

    /// Adds a line to the trace, with the simulated time.
    pub fn log(&mut self, what: String) {
        tracing::info!(at = ?self.now(), "{what}");
        self.trace.push(format!("{:?} {what}", self.now()));
    }

    fn slot(&self, id: u8) -> &Rc<NodeSlot> {
        &self.nodes[usize::from(id) - 1]
    }

    /// Returns the service of node `id` if it is up and opened its disk.
    pub fn service(&self, id: u8) -> Option<Rc<Service>> {
        if !self.up[usize::from(id) - 1] {
            return None;
        }
        self.slot(id).service.borrow().clone()
    }

    /// Returns the error with which node `id`'s last boot failed to open its
    /// data directory.
    pub fn start_error(&self, id: u8) -> Option<String> {
        self.slot(id).start_error.borrow().clone()
    }

    /// Ids of the nodes that are up and serving.
    pub fn live_nodes(&self) -> Vec<u8> {
        self.nodes
            .iter()
            .map(|slot| slot.id)
            .filter(|&id| self.service(id).is_some())
            .collect()
    }

    /// Returns the node that is primary in the highest view in which any
    /// live node is normal.
    pub fn primary(&self) -> Option<u8> {
        self.live_nodes()
            .into_iter()
            .filter_map(|id| {
                let status = self.service(id)?.status();
                (status.role == Role::Primary).then_some((status.view, id))
            })
            .max()
            .map(|(_, id)| id)
    }

    /// Runs until some node is primary and a majority is normal in its
    /// view, and returns the primary's id.
    pub fn await_primary(&mut self, limit: Duration) -> Result<u8, String> {
        self.await_primary_other_than(None, limit)
    }

    /// Runs until a node other than `old` is primary with a normal majority
    /// in its view, and returns its id: the end of a failover.
    pub fn await_new_primary(&mut self, old: u8, limit: Duration) -> Result<u8, String> {
        self.await_primary_other_than(Some(old), limit)
    }

    fn await_primary_other_than(&mut self, old: Option<u8>, limit: Duration) -> Result<u8, String> {
        let majority = self.nodes.len() / 2 + 1;
        let settled = |cluster: &Cluster| {
            cluster.primary().filter(|&primary| {
                Some(primary) != old && cluster.normal_in_view_of(primary) >= majority
            })
        };
        self.run_until_true(limit, |cluster| settled(cluster).is_some())?;
        settled(self).ok_or_else(|| {
            format!(
                "no primary other than {old:?} with a normal majority within {limit:?} \
                 (at {:?})",
                self.now()
            )
        })
    }

    fn normal_in_view_of(&self, primary: u8) -> usize {
        let Some(view) = self.service(primary).map(|s| s.status().view) else {
            return 0;
        };
        self.live_nodes()
            .into_iter()
            .filter_map(|id| self.service(id))
            .map(|service| service.status())
            .filter(|status| {
                status.view == view && matches!(status.role, Role::Primary | Role::Backup)
            })
            .count()
    }

    /// Stops node `id` at once; its unsynced writes are lost.
    pub fn crash(&mut self, id: u8) {
        let index = usize::from(id) - 1;
        let slot = self.nodes[index].clone();
        self.sim.crash(slot.name.as_str());
        *slot.service.borrow_mut() = None;
        self.up[index] = false;
        self.healed_at = None;
        self.log(format!("crash n{id}"));
    }

    /// Boots a crashed node again on what its disk kept.
    pub fn restart(&mut self, id: u8) {
        let index = usize::from(id) - 1;
        assert!(
            !self.up[index],
            "n{id} is running; crash it before a restart"
        );
        let slot = self.nodes[index].clone();
        self.sim.bounce(slot.name.as_str());
        self.up[index] = true;
        self.log(format!("restart n{id}"));
    }

    /// Makes every sync of node `id` fail, runs until the node wrote
    /// something it could not sync (or `UNSYNCED_WAIT_MAX` passed), then
    /// crashes it: a power loss in the middle of an append. turmoil drops
    /// the unsynced writes or keeps a torn prefix of them.
    pub fn crash_before_fsync(&mut self, id: u8) -> Result<(), String> {
        self.power_fail(&[id], &[id])
    }

    /// Crashes every node of `ids` in the same step, after each node of
    /// `unsynced` wrote something it could not sync (or `UNSYNCED_WAIT_MAX`
    /// passed). Nodes of `ids` that are not in `unsynced` lose nothing.
    pub fn power_fail(&mut self, ids: &[u8], unsynced: &[u8]) -> Result<(), String> {
        let faults: Vec<Rc<DiskFaults>> = unsynced
            .iter()
            .map(|&id| self.slot(id).faults.clone())
            .collect();
        // Views a node enters from now on may never reach its disk, and a
        // node that failed to store a view stops before it sends anything
        // in that view, so after the crash only the views seen so far count.
        let durable_views: Vec<u64> = unsynced
            .iter()
            .map(|&id| self.views[usize::from(id) - 1])
            .collect();
        for (id, faults) in unsynced.iter().zip(&faults) {
            faults.fail_syncs.set(true);
            self.log(format!("fail every sync on n{id}"));
        }
        self.run_until_true(UNSYNCED_WAIT_MAX, |_| {
            faults.iter().all(|faults| faults.unsynced_writes.get() > 0)
        })?;
        for (id, faults) in unsynced.iter().zip(&faults) {
            let count = faults.unsynced_writes.get();
            self.log(format!("n{id} has {count} unsynced writes"));
        }
        for &id in ids {
            self.crash(id);
        }
        for (&id, view) in unsynced.iter().zip(durable_views) {
            self.views[usize::from(id) - 1] = view;
        }
        Ok(())
    }

    /// Crashes node `id` if it runs, erases its disk and boots it again with
    /// `StartMode::Rejoin`, so it must recover from the others.
    pub fn wipe_and_restart(&mut self, id: u8) {
        let index = usize::from(id) - 1;
        if self.up[index] {
            self.crash(id);
        }
        let reached = self
            .live_nodes()
            .into_iter()
            .filter_map(|node| self.service(node))
            .map(|service| service.status().commit)
            .max()
            .unwrap_or(0);
        self.catch_up[index] = Some(reached);
        self.views[index] = 0;
        self.slot(id).wipe_next_boot.set(true);
        self.log(format!("wipe the disk of n{id} (cluster commit {reached})"));
        self.restart(id);
    }

    /// Crashes node `id` if it runs, applies `edit` to its disk and boots
    /// it again. `edit` runs inside the node's host, before the node opens
    /// its data directory.
    pub fn edit_disk_and_restart(
        &mut self,
        id: u8,
        what: &str,
        edit: impl FnOnce() -> io::Result<()> + 'static,
    ) {
        if self.up[usize::from(id) - 1] {
            self.crash(id);
        }
        *self.slot(id).disk_edit.borrow_mut() = Some(Box::new(edit));
        self.log(format!("{what} on n{id}"));
        self.restart(id);
    }

    /// Drops every message between each host of `a` and each host of `b`.
    pub fn partition(&mut self, a: &[&str], b: &[&str]) {
        self.for_pairs(a, b, |sim, x, y| sim.partition(x, y));
        self.log(format!("partition {a:?} from {b:?}"));
        self.healed_at = None;
    }

    /// Drops every message from each host of `from` to each host of `to`.
    pub fn partition_oneway(&mut self, from: &[&str], to: &[&str]) {
        self.for_pairs(from, to, |sim, x, y| sim.partition_oneway(x, y));
        self.log(format!("partition {from:?} -> {to:?}"));
        self.healed_at = None;
    }

    /// Undoes [`Cluster::partition`].
    pub fn repair(&mut self, a: &[&str], b: &[&str]) {
        self.for_pairs(a, b, |sim, x, y| sim.repair(x, y));
        self.log(format!("repair {a:?} with {b:?}"));
    }

    /// Undoes [`Cluster::partition_oneway`].
    pub fn repair_oneway(&mut self, from: &[&str], to: &[&str]) {
        self.for_pairs(from, to, |sim, x, y| sim.repair_oneway(x, y));
        self.log(format!("repair {from:?} -> {to:?}"));
    }

    /// Holds every message between the hosts of `a` and `b` until
    /// [`Cluster::release`]: a delay without loss.
    pub fn hold(&mut self, a: &[&str], b: &[&str]) {
        self.for_pairs(a, b, |sim, x, y| sim.hold(x, y));
        self.log(format!("hold {a:?} with {b:?}"));
    }

    /// Delivers what [`Cluster::hold`] kept back.
    pub fn release(&mut self, a: &[&str], b: &[&str]) {
        self.for_pairs(a, b, |sim, x, y| sim.release(x, y));
        self.log(format!("release {a:?} with {b:?}"));
    }

    /// Repairs every partition between any two hosts, in both directions,
    /// and delivers every held message.
    pub fn repair_all(&mut self) {
        let hosts = self.host_names();
        for a in &hosts {
            for b in &hosts {
                if a != b {
                    self.sim.repair_oneway(a.as_str(), b.as_str());
                    self.sim.release(a.as_str(), b.as_str());
                }
            }
        }
        self.log("repair and release every link".to_owned());
    }

    /// Sets the latency of every link between the hosts of `a` and `b`.
    pub fn delay(&mut self, a: &[&str], b: &[&str], latency: Duration) {
        self.for_pairs(a, b, |sim, x, y| sim.set_link_latency(x, y, latency));
        self.log(format!("delay {a:?} with {b:?} by {latency:?}"));
    }

    fn for_pairs(
        &mut self,
        a: &[&str],
        b: &[&str],
        mut apply: impl FnMut(&turmoil::Sim<'static>, &str, &str),
    ) {
        for x in a {
            for y in b {
                apply(&self.sim, x, y);
            }
        }
    }

    /// Declares that from now on a majority is up and connected: every
    /// write invoked later must complete within [`LIVE_BOUND`].
    pub fn healed(&mut self) {
        self.healed_at = Some(self.now());
        self.log("healed".to_owned());
    }

    /// APPLY: every node applies the same entry at each op. A node may only
    /// apply a committed entry, and a committed entry never changes, so two
    /// different entries applied at one op mean that one was not committed.
    /// CONV catches that only if the diverged state lasts to the end of the
    /// run.
    fn check_applied(&mut self, id: u8, service: &Service) {
        for entry in service.take_applied() {
            let applied = (entry.view, check::fingerprint(&entry.payload));
            match self.applied.get(&entry.op) {
                None => {
                    self.applied.insert(entry.op, (applied.0, applied.1, id));
                }
                Some(&(view, fingerprint, first)) if (view, fingerprint) != applied => {
                    self.violations.push(format!(
                        "APPLY: n{id} applied op {} as (view, entry) {applied:?}, but n{first} \
                         applied {:?} (at {:?})",
                        entry.op,
                        (view, fingerprint),
                        self.now()
                    ));
                }
                Some(_) => {}
            }
        }
    }

    /// Samples every running node: the primary of each view, views that go
    /// backwards, and recovered nodes that take part before they caught up.
    fn observe(&mut self) {
        for index in 0..self.nodes.len() {
            let id = self.nodes[index].id;
            let Some(service) = self.service(id) else {
                continue;
            };
            self.check_applied(id, &service);
            // A node whose log failed has stopped, and the role its replica
            // last had in memory does not reflect its disk.
            if service.log_failed() {
                continue;
            }
            let status = service.status();
            if status.role == Role::Primary {
                let ids = self.primaries.entry(status.view).or_default();
                if ids.insert(status.id) {
                    let line = format!("n{} is primary of view {}", status.id, status.view);
                    if ids.len() > 1 {
                        self.violations.push(format!(
                            "ONE: view {} has primaries {ids:?} (at {:?})",
                            status.view,
                            self.sim.elapsed()
                        ));
                    }
                    self.log(line);
                }
            }
            if status.role == Role::Recovering {
                continue;
            }
            if status.view < self.views[index] {
                self.violations.push(format!(
                    "VIEW: the view of n{id} went back from {} to {} (at {:?})",
                    self.views[index],
                    status.view,
                    self.now()
                ));
                // Report each decrease once, not on every later step.
                self.views[index] = status.view;
            }
            self.views[index] = self.views[index].max(status.view);
            if let Some(required) = self.catch_up[index] {
                if matches!(status.role, Role::Primary | Role::Backup) {
                    if status.op < required {
                        self.violations.push(format!(
                            "CATCHUP: n{id} took part in view {} with op {} before it caught \
                             up to commit {required} (at {:?})",
                            status.view,
                            status.op,
                            self.now()
                        ));
                    }
                    self.catch_up[index] = None;
                }
            }
        }
    }

    /// Lets every client finish, runs `quiet` more simulated time without
    /// new faults, and checks the run. On success returns what the run
    /// produced; on failure, every violation with the history.
    pub fn finish(&mut self, quiet: Duration) -> Result<Outcome, String> {
        while !self.step()? {}
        self.run_for(quiet)?;
        let (violations, outcome) = self.check();
        if violations.is_empty() {
            return Ok(outcome);
        }
        Err(format!(
            "{} violations:\n  {}\ntrace:\n  {}",
            violations.len(),
            violations.join("\n  "),
            outcome.trace.join("\n  ")
        ))
    }

    /// Applies every check to the run so far: the violations sampled on
    /// each step, then the checks of [`check`] over the history and the
    /// live nodes. Returns the violations, each starting with its check's
    /// name, and the run's trace, history and node states.
    pub fn check(&mut self) -> (Vec<String>, Outcome) {
        let nodes = self.node_states();
        let history = self.history.borrow().clone();
        let mut violations = std::mem::take(&mut self.violations);
        violations.extend(check::convergence(&nodes));
        // A node that is still recovering, changing views or behind fails
        // the liveness check LAG, so the state checks read only the normal
        // nodes at the highest commit number.
        let is_normal = |node: &&NodeState| node.role == "Primary" || node.role == "Backup";
        let commit_max = nodes.iter().filter(is_normal).map(|node| node.commit).max();
        let normal: Vec<NodeState> = nodes
            .iter()
            .filter(is_normal)
            .filter(|node| Some(node.commit) == commit_max)
            .cloned()
            .collect();
        violations.extend(check::durability(&history, &normal));
        violations.extend(check::exactly_once(&history, &normal));
        violations.extend(check::linearizable_reads(&history));
        violations.extend(crate::freshness::fresh_reads(&history));
        violations.extend(check::notifications(&self.deliveries.borrow(), &normal));
        if let Some(healed) = self.healed_at {
            violations.extend(check::liveness(&history, healed, LIVE_BOUND));
        }
        let mut trace = self.trace.clone();
        trace.extend(nodes.iter().map(NodeState::summary));
        trace.extend(history.iter().map(Operation::to_string));
        let outcome = Outcome {
            trace,
            history,
            nodes,
        };
        (violations, outcome)
    }

    fn node_states(&self) -> Vec<NodeState> {
        let users = self.users.borrow();
        self.live_nodes()
            .into_iter()
            .filter_map(|id| self.service(id))
            .map(|service| {
                let status = service.status();
                let calendar = service.calendar();
                let mut events = BTreeMap::new();
                let mut inboxes = BTreeMap::new();
                for user in users.iter() {
                    let query = SearchQuery {
                        host: Some(user.clone()),
                        ..SearchQuery::default()
                    };
                    let found: Vec<EventView> = calendar.search(user, &query).unwrap_or_default();
                    events.extend(found.into_iter().map(|event| (event.id, event)));
                    let inbox = summarize_notifications(&calendar.notifications(user, 0));
                    inboxes.insert(user.clone(), inbox);
                }
                let committed = service.committed_log();
                let log_base = committed
                    .first()
                    .map_or(status.commit, |entry| entry.op - 1);
                let log = committed
                    .iter()
                    .map(|entry| (entry.view, check::fingerprint(&entry.payload)))
                    .collect();
                NodeState {
                    id: status.id,
                    role: format!("{:?}", status.role),
                    view: status.view,
                    op: status.op,
                    commit: status.commit,
                    digest: calendar.digest(),
                    events,
                    inboxes,
                    log,
                    log_base,
                }
            })
            .collect()
    }
}

/// The results of a run that passed every check.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Faults, primaries, final node states and the history, as text; equal
    /// for two runs of one seed.
    pub trace: Vec<String>,
    pub history: Vec<Operation>,
    /// The final state of each live node.
    pub nodes: Vec<NodeState>,
}

fn cluster_config(nodes: usize, snapshot: SnapshotPolicy) -> ClusterConfig {
    let nodes = (1..=nodes as u8)
        .map(|id| NodeAddresses {
            id,
            client: format!("n{id}:{CLIENT_PORT}"),
            peer: format!("n{id}:{PEER_PORT}"),
        })
        .collect();
    ClusterConfig {
        nodes,
        secret: CLUSTER_SECRET.to_vec(),
        snapshot,
        client_connections_per_address: almanac::rpc::serve::CONNECTIONS_PER_ADDRESS_DEFAULT,
    }
}

/// Boots a node once: applies the pending disk changes, binds both ports
/// and serves until the host crashes.
async fn boot_node(slot: Rc<NodeSlot>, config: ClusterConfig, seed: u64) -> turmoil::Result {
    let boot = slot.boots.get();
    slot.boots.set(boot + 1);
    slot.faults.reset();
    *slot.start_error.borrow_mut() = None;
    if slot.wipe_next_boot.replace(false) {
        wipe_dir(Path::new(DATA_DIR))?;
    }
    let edit = slot.disk_edit.borrow_mut().take();
    if let Some(edit) = edit {
        edit()?;
    }
    let client = turmoil::net::TcpListener::bind(("0.0.0.0", CLIENT_PORT)).await?;
    let peer = turmoil::net::TcpListener::bind(("0.0.0.0", PEER_PORT)).await?;
    let since_epoch = turmoil::since_epoch().expect("a booting node runs inside the simulation");
    let mut host = Host::simulated(
        mix(seed, u64::from(slot.id) << 32 | u64::from(boot)),
        since_epoch.as_millis() as i64,
    );
    host.clock = Clock::simulated_at_rate(since_epoch.as_millis() as i64, slot.clock_rate_ppm);
    let options = NodeOptions {
        cluster: config,
        id: slot.id,
        data_dir: DATA_DIR.into(),
        mode: if boot == 0 {
            StartMode::Init
        } else {
            StartMode::Rejoin
        },
    };
    let disk = FaultDisk::new(slot.faults.clone());
    match prepare(options, disk, (client, peer), TurmoilConnector, host) {
        Ok(node) => {
            *slot.service.borrow_mut() = Some(node.service());
            node.serve().await;
            Ok(())
        }
        Err(error) => {
            tracing::warn!(node = slot.id, boot, %error, "the node did not start");
            *slot.start_error.borrow_mut() = Some(error.to_string());
            std::future::pending().await
        }
    }
}
