//! A three-node cluster of `almanac server` processes on loopback.

use std::fs::{self, File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::process::{almanac, run_to_end, wait_with_deadline, Finished, POLL_INTERVAL};

/// Nodes per cluster: the smallest one that survives a crash (f = 1).
pub const NODE_COUNT: u8 = 3;

/// The cluster secret of every test cluster. Any 16 or more bytes will do.
const SECRET: &str = "cluster-test-secret-0123456789abcdef";

/// Fresh sets of ports tried before giving up, because another process may
/// take a port between the probe and the server's bind.
const START_ATTEMPTS: usize = 3;

/// Maximum wait for the nodes to agree after a start, restart or recovery.
/// A view change takes 250 to 500 ms of ticks; the rest covers recovery by
/// log transfer and 2 loaded cores.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Maximum run time of one `almanac status`, which queries the nodes one
/// after another with a 3 s deadline each.
const STATUS_TIMEOUT: Duration = Duration::from_secs(15);

/// Log lines printed per node when a test fails.
const LOG_TAIL_LINES: usize = 25;

/// One node's row of `almanac status --output json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub address: String,
    /// Some for a node that responded.
    pub report: Option<NodeReport>,
    /// The reason a node did not respond.
    pub error: Option<String>,
}

/// What a responding node reported about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeReport {
    pub id: u8,
    pub role: String,
    pub view: u64,
    pub op: u64,
    pub commit: u64,
    pub lag: u64,
}

impl NodeStatus {
    fn from_json(value: &Value) -> Result<NodeStatus, String> {
        let address = value["address"]
            .as_str()
            .ok_or_else(|| format!("status row without an address: {value}"))?
            .to_owned();
        if let Some(error) = value.get("error") {
            return Ok(NodeStatus {
                address,
                report: None,
                error: Some(error.as_str().unwrap_or_default().to_owned()),
            });
        }
        let number = |key: &str| {
            value[key]
                .as_u64()
                .ok_or_else(|| format!("status row without a numeric {key}: {value}"))
        };
        let role = value["role"]
            .as_str()
            .ok_or_else(|| format!("status row without a role: {value}"))?;
        let report = NodeReport {
            id: u8::try_from(number("id")?)
                .map_err(|_| format!("status id out of range: {value}"))?,
            role: role.to_owned(),
            view: number("view")?,
            op: number("op")?,
            commit: number("commit")?,
            lag: number("lag")?,
        };
        Ok(NodeStatus {
            address,
            report: Some(report),
            error: None,
        })
    }
}

struct Node {
    id: u8,
    client: String,
    data: PathBuf,
    /// stdout and stderr of every run of this node, appended.
    log: PathBuf,
    /// The running server, or None while the node is down.
    child: Option<Child>,
}

/// Three server processes sharing one config file in a temporary directory.
/// Dropping the cluster kills and reaps every node.
pub struct Cluster {
    /// Keeps the config, the data directories and the logs alive.
    _dir: TempDir,
    config: PathBuf,
    nodes: Vec<Node>,
}

impl Cluster {
    /// Starts a new cluster (`--init` on every node) on free ports and waits
    /// until it has a primary and every node agrees on the commit number.
    ///
    /// # Panics
    ///
    /// Panics if the cluster does not come up within [`CONVERGE_TIMEOUT`]
    /// after [`START_ATTEMPTS`] sets of ports.
    pub fn start() -> Cluster {
        Cluster::start_with_config("")
    }

    /// Like [`Cluster::start`], with `extra` TOML appended to the config.
    pub fn start_with_config(extra: &str) -> Cluster {
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let mut cluster = Cluster::configure(extra);
            for id in 1..=NODE_COUNT {
                cluster.spawn(id, true);
            }
            match cluster.wait_converged(CONVERGE_TIMEOUT) {
                Ok(_) => return cluster,
                Err(error) if cluster.port_was_busy() => {
                    failures.push(format!("attempt {attempt}: {error}"));
                }
                Err(error) => {
                    cluster.print_logs();
                    panic!("the new cluster did not come up: {error}");
                }
            }
        }
        panic!(
            "the new cluster did not come up on {START_ATTEMPTS} sets of ports:\n{}",
            failures.join("\n")
        );
    }

    /// Starts a cluster on free ports whose every node was seeded with
    /// `almanac restore BACKUP` and starts without `--init`, and waits until
    /// it converges.
    ///
    /// # Panics
    ///
    /// Panics if a restore fails or the cluster does not converge.
    #[allow(dead_code)] // Not every test binary calls it.
    pub fn start_restored(backup: &Path) -> Cluster {
        let mut cluster = Cluster::configure("");
        for id in 1..=NODE_COUNT {
            let data = cluster.node(id).data.clone();
            let args = [
                "restore".as_ref(),
                backup.as_os_str(),
                "--data".as_ref(),
                data.as_os_str(),
            ];
            let finished = cluster.run(&args);
            assert!(
                finished.status.success(),
                "restoring node {id} failed: {}",
                finished.stderr
            );
        }
        for id in 1..=NODE_COUNT {
            cluster.spawn(id, false);
        }
        cluster.converge();
        cluster
    }

    /// Runs `almanac ARGS` to its end and returns its status and output.
    #[allow(dead_code)] // Not every test binary calls it.
    pub fn run(&self, args: &[&std::ffi::OsStr]) -> Finished {
        let mut command = almanac();
        command.args(args);
        run_to_end(command, STATUS_TIMEOUT)
    }

    /// Writes a config with six free loopback ports into a new directory.
    fn configure(extra: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("creating a temporary directory failed");
        let mut text = format!("cluster_secret = \"{SECRET}\"\n");
        let mut nodes = Vec::new();
        let mut chosen = Vec::new();
        for id in 1..=NODE_COUNT {
            let client = free_address(&mut chosen);
            let peer = free_address(&mut chosen);
            text.push_str(&format!(
                "\n[[node]]\nid = {id}\nclient = \"{client}\"\npeer = \"{peer}\"\n"
            ));
            nodes.push(Node {
                id,
                client,
                data: dir.path().join(format!("data-{id}")),
                log: dir.path().join(format!("node-{id}.log")),
                child: None,
            });
        }
        text.push_str(extra);
        let config = dir.path().join("cluster.toml");
        fs::write(&config, text).expect("writing the cluster config failed");
        Cluster {
            _dir: dir,
            config,
            nodes,
        }
    }

    fn node(&self, id: u8) -> &Node {
        &self.nodes[usize::from(id) - 1]
    }

    fn node_mut(&mut self, id: u8) -> &mut Node {
        &mut self.nodes[usize::from(id) - 1]
    }

    fn spawn(&mut self, id: u8, init: bool) {
        let config = self.config.clone();
        let node = self.node_mut(id);
        assert!(node.child.is_none(), "node {id} is already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("opening the node log failed");
        let mut command = almanac();
        command
            .arg("server")
            .arg("--config")
            .arg(&config)
            .arg("--id")
            .arg(id.to_string())
            .arg("--data")
            .arg(&node.data)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle failed"))
            .stderr(log);
        if init {
            command.arg("--init");
        }
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("starting node {id} failed: {error}"));
        node.child = Some(child);
    }

    /// Client addresses of all nodes, comma-separated, for `--cluster`.
    pub fn addresses(&self) -> String {
        let addresses: Vec<&str> = self.nodes.iter().map(|n| n.client.as_str()).collect();
        addresses.join(",")
    }

    /// Returns the client address of node `id`.
    pub fn address(&self, id: u8) -> &str {
        &self.node(id).client
    }

    /// Returns the data directory of node `id`.
    #[allow(dead_code)] // Not every test binary calls it.
    pub fn data_dir(&self, id: u8) -> &Path {
        &self.node(id).data
    }

    /// Returns the config file every node was started with.
    #[allow(dead_code)] // Not every test binary calls it.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Ids of all nodes, 1 to [`NODE_COUNT`].
    pub fn ids(&self) -> impl Iterator<Item = u8> {
        1..=NODE_COUNT
    }

    /// Kills node `id` with SIGKILL and reaps it, so that it can have done
    /// nothing more once this returns.
    pub fn kill(&mut self, id: u8) {
        let node = self.node_mut(id);
        let mut child = node
            .child
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        let _ = child.kill();
        child.wait().expect("reaping a killed node failed");
    }

    /// Starts node `id` again on its data directory, without `--init`.
    pub fn restart(&mut self, id: u8) {
        self.spawn(id, false);
    }

    /// Deletes the data directory of node `id`, which must be down.
    pub fn wipe(&mut self, id: u8) {
        let node = self.node(id);
        assert!(
            node.child.is_none(),
            "stop node {id} before wiping its data"
        );
        fs::remove_dir_all(&node.data).unwrap_or_else(|error| {
            panic!(
                "deleting the data directory {} failed: {error}",
                node.data.display()
            )
        });
    }

    /// Runs `almanac status --output FORMAT` (text or json) against every
    /// node and returns its exit status and stdout.
    pub fn status_output(&self, format: &str) -> (ExitStatus, String) {
        let finished = self.run_status(format);
        (finished.status, finished.stdout)
    }

    fn run_status(&self, format: &str) -> Finished {
        let mut command = almanac();
        command
            .args(["status", "--output", format, "--cluster"])
            .arg(self.addresses());
        run_to_end(command, STATUS_TIMEOUT)
    }

    /// Runs `almanac status --output json` against every node.
    pub fn status(&self) -> Vec<NodeStatus> {
        let finished = self.run_status("json");
        let rows: Value = serde_json::from_str(finished.stdout.trim()).unwrap_or_else(|error| {
            panic!(
                "status printed no JSON array ({error}); stdout:\n{}\nstderr:\n{}",
                finished.stdout, finished.stderr
            )
        });
        let rows = rows.as_array().expect("status prints a JSON array");
        rows.iter()
            .map(|row| NodeStatus::from_json(row).unwrap_or_else(|error| panic!("{error}")))
            .collect()
    }

    /// Returns the id of the node that reports itself primary, if one does.
    pub fn primary(&self) -> Option<u8> {
        self.status()
            .iter()
            .filter_map(|row| row.report.as_ref())
            .find(|report| report.role == "primary")
            .map(|report| report.id)
    }

    /// Waits until some node other than `not` reports itself primary.
    ///
    /// # Panics
    ///
    /// Panics after [`CONVERGE_TIMEOUT`] without such a primary.
    pub fn wait_for_primary(&self, not: Option<u8>) -> u8 {
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            match self.primary() {
                Some(id) if Some(id) != not => return id,
                _ if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
                found => {
                    self.print_logs();
                    panic!(
                        "no new primary within {CONVERGE_TIMEOUT:?} (not {not:?}, found {found:?}); \
                         status: {:?}",
                        self.status()
                    );
                }
            }
        }
    }

    /// Waits until every node responds, one is primary, the others are
    /// backups, and all report the same view and commit number. Returns the
    /// last status, or the reason it never converged.
    pub fn wait_converged(&mut self, timeout: Duration) -> Result<Vec<NodeStatus>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exited) = self.exited_node() {
                return Err(exited);
            }
            let status = self.status();
            match converged(&status) {
                Ok(()) => return Ok(status),
                Err(_) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
                Err(reason) => {
                    return Err(format!(
                        "not converged within {timeout:?}: {reason}; status: {status:?}"
                    ))
                }
            }
        }
    }

    /// Like [`Cluster::wait_converged`] with [`CONVERGE_TIMEOUT`], but
    /// panics with the node logs when the cluster does not converge.
    pub fn converge(&mut self) -> Vec<NodeStatus> {
        match self.wait_converged(CONVERGE_TIMEOUT) {
            Ok(status) => status,
            Err(error) => {
                self.print_logs();
                panic!("{error}");
            }
        }
    }

    /// Describes the first node that was started and has exited by itself.
    fn exited_node(&mut self) -> Option<String> {
        for node in &mut self.nodes {
            let Some(child) = node.child.as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                node.child = None;
                return Some(format!(
                    "node {} exited with {status}; log:\n{}",
                    node.id,
                    log_tail(&node.log)
                ));
            }
        }
        None
    }

    fn port_was_busy(&self) -> bool {
        self.nodes.iter().any(|node| {
            fs::read_to_string(&node.log).is_ok_and(|text| text.contains("Address already in use"))
        })
    }

    /// Prints the end of every node's log to stderr, for a failing test.
    pub fn print_logs(&self) {
        for node in &self.nodes {
            eprintln!(
                "--- last {LOG_TAIL_LINES} lines of node {} ({}):\n{}",
                node.id,
                node.client,
                log_tail(&node.log)
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if thread::panicking() {
            self.print_logs();
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = wait_with_deadline(&mut child, Duration::from_secs(5));
            }
        }
    }
}

/// Checks that `status` shows a converged cluster, or returns why not.
fn converged(status: &[NodeStatus]) -> Result<(), String> {
    let mut reports = Vec::new();
    for row in status {
        match &row.report {
            Some(report) => reports.push(report),
            None => return Err(format!("node {} does not respond", row.address)),
        }
    }
    if reports.len() != usize::from(NODE_COUNT) {
        return Err(format!("{} nodes answered", reports.len()));
    }
    let primaries = reports.iter().filter(|r| r.role == "primary").count();
    let backups = reports.iter().filter(|r| r.role == "backup").count();
    if primaries != 1 || backups != reports.len() - 1 {
        return Err(format!("{primaries} primaries and {backups} backups"));
    }
    let first = reports[0];
    let agree = reports
        .iter()
        .all(|r| r.view == first.view && r.commit == first.commit && r.op == first.op);
    if !agree {
        return Err("views, op or commit numbers differ".into());
    }
    Ok(())
}

/// Returns a loopback address that was free a moment ago.
/// Returns a loopback address that was free a moment ago and is not in
/// `chosen`, and adds it there. Each probe's port is released at once, so
/// the kernel may hand out the same port to the next probe, and a config
/// that names one address twice is refused.
fn free_address(chosen: &mut Vec<String>) -> String {
    for _ in 0..PROBES_PER_ADDRESS {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a probe port failed");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address")
            .to_string();
        if !chosen.contains(&address) {
            chosen.push(address.clone());
            return address;
        }
    }
    panic!("{PROBES_PER_ADDRESS} probes found no port apart from {chosen:?}");
}

/// Probes for one address before giving up; two in a row are rarely equal.
const PROBES_PER_ADDRESS: usize = 100;

fn log_tail(path: &Path) -> String {
    let Ok(mut file) = File::open(path) else {
        return "(no log)".into();
    };
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut file, &mut text);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u8, role: &str, commit: u64) -> Value {
        serde_json::json!({ "id": id, "address": format!("127.0.0.1:{}", 7400 + u16::from(id)),
                            "role": role, "view": 1, "op": commit, "commit": commit, "lag": 0 })
    }

    fn parse(rows: &[Value]) -> Vec<NodeStatus> {
        rows.iter()
            .map(|row| NodeStatus::from_json(row).unwrap())
            .collect()
    }

    #[test]
    fn status_row_parses_report_and_error() {
        let up = NodeStatus::from_json(&row(2, "backup", 9)).unwrap();
        let report = up.report.expect("a row with a role has a report");
        assert_eq!(report.id, 2);
        assert_eq!(report.role, "backup");
        assert_eq!(report.commit, 9);

        let down = serde_json::json!({ "address": "127.0.0.1:1", "error": "refused" });
        let down = NodeStatus::from_json(&down).unwrap();
        assert_eq!(down.report, None);
        assert_eq!(down.error.as_deref(), Some("refused"));

        let broken = serde_json::json!({ "address": "127.0.0.1:1", "role": "backup" });
        assert!(NodeStatus::from_json(&broken).is_err());
    }

    #[test]
    fn converged_needs_one_primary_and_equal_commit() {
        let good = parse(&[
            row(1, "backup", 5),
            row(2, "primary", 5),
            row(3, "backup", 5),
        ]);
        assert_eq!(converged(&good), Ok(()));

        let behind = parse(&[
            row(1, "backup", 4),
            row(2, "primary", 5),
            row(3, "backup", 5),
        ]);
        assert!(converged(&behind).is_err());

        let recovering = parse(&[
            row(1, "recovering", 5),
            row(2, "primary", 5),
            row(3, "backup", 5),
        ]);
        assert!(converged(&recovering).is_err());

        let mut down = good.clone();
        down[0].report = None;
        assert!(converged(&down).is_err());
    }
}
