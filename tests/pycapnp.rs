//! The schemas seen from an independent Cap'n Proto implementation.
//! tests/python/pycapnp_client.py loads schema/calendar.capnp with pycapnp
//! and talks to a real three-node cluster over TCP. It prints one JSON
//! object per step, and these tests check each step's output.
//! tests/python/schema_layout.py checks that both schemas keep the wire
//! layout recorded in tests/python/*.layout.json, so a renumbered, renamed
//! or removed field or method fails the suite.
//!
//! Needs `python3` with pycapnp (`python3 -m pip install pycapnp`, which
//! scripts/ci-python-deps.sh runs for CI).

// Only the cluster start and its addresses are used here.
#[allow(dead_code, unused_imports)]
mod cluster_support;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use cluster_support::Cluster;

/// The Python client, found from the package root so that the test runs
/// from any directory.
const CLIENT_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/pycapnp_client.py"
);

/// The layout check, then each schema with the layout recorded for it.
const LAYOUT_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/schema_layout.py");
const CALENDAR_SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/calendar.capnp");
const CALENDAR_LAYOUT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/calendar.layout.json"
);
const REPLICATION_SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/replication.capnp");
const REPLICATION_LAYOUT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/replication.layout.json"
);

/// Exit status of the layout check for a schema that breaks the record.
const EXIT_INCOMPATIBLE: i32 = 1;

/// The interpreter, unless `ALMANAC_PYTHON` names another, such as a
/// virtual environment's python.
const DEFAULT_PYTHON: &str = "python3";

/// Exit status of the client when `import capnp` fails.
const EXIT_MISSING_PYCAPNP: i32 = 3;

/// Seconds the client allows each call and the pushed notification. Each
/// register and login hashes a password with argon2id on the primary.
const CALL_TIMEOUT_SECONDS: u64 = 30;

/// Maximum run time of the whole client. Its dozen calls took about two
/// seconds on a healthy cluster in a debug build on 2 cores.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// How often a wait polls the client process.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The steps the client prints, in order.
const STEPS: [&str; 13] = [
    "primary",
    "register",
    "register",
    "subscribe",
    "login",
    "schedule",
    "conflict",
    "agenda",
    "agenda",
    "notification",
    "respond",
    "ack",
    "logout",
];

/// Start of the event the client schedules, 2031-01-07T10:00Z, in minutes
/// since the Unix epoch.
const MEETING_START_MINUTE: i64 = 32_092_440;

/// Length of the session tokens the server issues, in bytes.
const TOKEN_BYTES: u64 = 32;

fn python() -> String {
    std::env::var("ALMANAC_PYTHON").unwrap_or_else(|_| DEFAULT_PYTHON.to_owned())
}

/// What the client printed and how it ended.
struct ClientRun {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl ClientRun {
    fn describe(&self) -> String {
        format!(
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// Parses every stdout line as one JSON step.
    fn steps(&self) -> Vec<Value> {
        let parse = |line: &str| {
            serde_json::from_str(line).unwrap_or_else(|error| {
                panic!(
                    "client stdout line {line:?} is not JSON ({error}):\n{}",
                    self.describe()
                )
            })
        };
        self.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(parse)
            .collect()
    }
}

/// Runs `python` with `args` and no input for at most [`CLIENT_TIMEOUT`],
/// reading its output on threads so that a full pipe cannot block it.
///
/// # Panics
///
/// Panics naming the interpreter if it cannot start, and with the output
/// so far if it outlives the timeout.
fn run_python(python: &str, args: &[&str]) -> ClientRun {
    let mut child = Command::new(python)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "starting {python} failed: {error}; install CPython 3 with pip, \
                 or set ALMANAC_PYTHON to an interpreter"
            )
        });
    let stdout = read_on_thread(child.stdout.take().expect("stdout is piped"));
    let stderr = read_on_thread(child.stderr.take().expect("stderr is piped"));

    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("polling the client failed") {
            Some(status) => break Some(status),
            None if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stdout = stdout.join().expect("the stdout reader does not panic");
    let stderr = stderr.join().expect("the stderr reader does not panic");
    let Some(status) = status else {
        panic!(
            "{python} {args:?} did not exit within {CLIENT_TIMEOUT:?}; killed it.\n\
             --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        );
    };
    ClientRun {
        status,
        stdout,
        stderr,
    }
}

fn read_on_thread(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Panics naming `pip install pycapnp` when a script exited because the
/// module is missing.
fn check_pycapnp_installed(python: &str, run: &ClientRun) {
    if run.status.code() == Some(EXIT_MISSING_PYCAPNP) {
        panic!(
            "pycapnp is not installed for {python}: run `{python} -m pip install pycapnp` \
             (scripts/ci-python-deps.sh installs the version CI uses)\n{}",
            run.stderr
        );
    }
}

/// Runs the client against `cluster` and returns its steps.
///
/// # Panics
///
/// Panics naming `pip install pycapnp` when the module is missing, and with
/// the client's output when it fails.
fn run_client(cluster: &str) -> Vec<Value> {
    let python = python();
    let timeout = CALL_TIMEOUT_SECONDS.to_string();
    let args = [CLIENT_SCRIPT, "--cluster", cluster, "--timeout", &timeout];
    let run = run_python(&python, &args);
    check_pycapnp_installed(&python, &run);
    assert!(
        run.status.success(),
        "the pycapnp client failed: {}",
        run.describe()
    );
    run.steps()
}

/// Groups the steps by name, keeping their order within each name.
fn by_name(steps: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut named: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for step in steps {
        let name = step["step"]
            .as_str()
            .unwrap_or_else(|| panic!("a step without a name: {step}"));
        named.entry(name.to_owned()).or_default().push(step.clone());
    }
    named
}

/// Checks one agenda entry: the event alice scheduled with bob as guest.
fn check_meeting(event: &Value, event_id: u64) {
    assert_eq!(event["id"], event_id, "{event}");
    assert_eq!(event["title"], "Design review", "{event}");
    assert_eq!(event["host"], "alice", "{event}");
    assert_eq!(event["start"], MEETING_START_MINUTE, "{event}");
    assert_eq!(event["duration_minutes"], 45, "{event}");
    assert_eq!(event["zone"], "Europe/Paris", "{event}");
    assert_eq!(event["guests"], serde_json::json!(["bob"]), "{event}");
}

#[test]
fn meeting_start_minute_is_the_scheduled_time() {
    let start = chrono::DateTime::parse_from_rfc3339("2031-01-07T10:00:00Z").unwrap();
    assert_eq!(start.timestamp() / 60, MEETING_START_MINUTE);
}

/// Checks every step of a client run and returns the address the client
/// found as primary.
fn check_walkthrough(steps: &[Value]) -> String {
    let order: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(order, STEPS, "steps out of order: {steps:?}");
    let named = by_name(steps);

    let primary = named["primary"][0]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("the primary step has no address: {steps:?}"));

    let registered: Vec<&Value> = named["register"].iter().map(|s| &s["user"]).collect();
    assert_eq!(registered, ["alice", "bob"]);
    for step in named["register"].iter().chain(&named["login"]) {
        assert_eq!(step["token_bytes"], TOKEN_BYTES, "{step}");
    }
    assert_eq!(named["login"][0]["user"], "alice");
    assert_eq!(named["subscribe"][0]["user"], "bob");

    let schedule = &named["schedule"][0];
    let event_id = schedule["event_id"].as_u64().expect("an event id");
    assert_eq!(schedule["version"], 1, "{schedule}");
    let conflict = &named["conflict"][0];
    assert_eq!(
        conflict["blocking_event_ids"],
        serde_json::json!([event_id])
    );

    for (step, user) in named["agenda"].iter().zip(["alice", "bob"]) {
        assert_eq!(step["user"], user, "{step}");
        let events = step["events"].as_array().expect("an events array");
        assert_eq!(events.len(), 1, "{step}");
        check_meeting(&events[0], event_id);
        assert_eq!(events[0]["responses"], serde_json::json!({}), "{step}");
    }

    let notification = &named["notification"][0];
    assert_eq!(notification["user"], "bob", "{notification}");
    assert_eq!(notification["kind"], "invited", "{notification}");
    assert_eq!(notification["actor"], "alice", "{notification}");
    assert_eq!(notification["event_id"], event_id, "{notification}");
    assert_eq!(notification["title"], "Design review", "{notification}");
    assert_eq!(notification["seq"], 1, "{notification}");

    let responded = &named["respond"][0]["event"];
    check_meeting(responded, event_id);
    assert_eq!(
        responded["responses"],
        serde_json::json!({"bob": "accepted"})
    );

    let ack = &named["ack"][0];
    assert_eq!(ack["acked_seq"], notification["seq"], "{ack}");
    assert_eq!(ack["inbox"], 1, "{ack}");
    assert_eq!(named["logout"][0]["then"], "unauthenticated");
    primary.to_owned()
}

/// Runs the tests that start a cluster one at a time: two clusters at once
/// would share the 2 cores of a CI machine with twice the argon2 hashing.
fn one_cluster_at_a_time() -> MutexGuard<'static, ()> {
    static CLUSTER: Mutex<()> = Mutex::new(());
    CLUSTER.lock().unwrap_or_else(PoisonError::into_inner)
}

#[test]
fn pycapnp_client_drives_cluster() {
    let _cluster_lock = one_cluster_at_a_time();
    let cluster = Cluster::start();
    let steps = run_client(&cluster.addresses());
    let primary = check_walkthrough(&steps);
    let addresses: Vec<&str> = cluster.ids().map(|id| cluster.address(id)).collect();
    assert!(
        addresses.contains(&primary.as_str()),
        "{primary} is not in {addresses:?}"
    );
}

#[test]
fn pycapnp_client_skips_killed_primary() {
    let _cluster_lock = one_cluster_at_a_time();
    let mut cluster = Cluster::start();
    let old = cluster.wait_for_primary(None);
    cluster.kill(old);
    let new = cluster.wait_for_primary(Some(old));

    // The address list still names the killed node, which refuses
    // connections, and the client must pass over it.
    let steps = run_client(&cluster.addresses());
    let primary = check_walkthrough(&steps);
    assert_eq!(primary, cluster.address(new), "old primary was node {old}");
}

#[test]
fn missing_pycapnp_names_pip_install() {
    // Without the site directory (-S), where pip installs pycapnp, and
    // ignoring PYTHONPATH (-I), the import fails before any connection.
    let python = python();
    let args = ["-I", "-S", CLIENT_SCRIPT, "--cluster", "127.0.0.1:1"];
    let run = run_python(&python, &args);
    assert_eq!(
        run.status.code(),
        Some(EXIT_MISSING_PYCAPNP),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("pip install pycapnp"),
        "{}",
        run.describe()
    );
    assert!(run.stdout.is_empty(), "{}", run.describe());
}

/// Runs the layout check of `schema` against the layout recorded in
/// `layout`.
fn check_layout(schema: &str, layout: &str) -> ClientRun {
    let python = python();
    let args = [LAYOUT_SCRIPT, "--schema", schema, "--layout", layout];
    let run = run_python(&python, &args);
    check_pycapnp_installed(&python, &run);
    run
}

#[test]
fn schemas_keep_recorded_layout() {
    for (schema, layout) in [
        (CALENDAR_SCHEMA, CALENDAR_LAYOUT),
        (REPLICATION_SCHEMA, REPLICATION_LAYOUT),
    ] {
        let run = check_layout(schema, layout);
        assert!(
            run.status.success(),
            "{schema} no longer matches {layout}: {}",
            run.describe()
        );
    }
}

/// One edit of the client schema and the layout check's expected verdict.
struct SchemaEdit {
    description: &'static str,
    /// Pairs of (text, replacement). Each text occurs once in the schema.
    replacements: &'static [(&'static str, &'static str)],
    accepted: bool,
    /// Text the check's output must contain.
    expected: &'static str,
}

const SCHEMA_EDITS: [SchemaEdit; 5] = [
    SchemaEdit {
        description: "swapped field ordinals",
        replacements: &[(
            "  clientId @0 :UInt64;\n  seq @1 :UInt64;\n",
            "  clientId @1 :UInt64;\n  seq @0 :UInt64;\n",
        )],
        accepted: false,
        expected: "RequestId.clientId changed",
    },
    SchemaEdit {
        description: "renamed field",
        replacements: &[(
            "  title @2 :Text;\n  # Up to 4000",
            "  name @2 :Text;\n  # Up to 4000",
        )],
        accepted: false,
        expected: "Event.title (@2 text at slot 0) is missing",
    },
    SchemaEdit {
        description: "swapped method ordinals",
        replacements: &[
            ("  login @1 (requestId", "  login @2 (requestId"),
            ("  resume @2 (token", "  resume @1 (token"),
        ],
        accepted: false,
        expected: "Gateway.login changed",
    },
    SchemaEdit {
        description: "swapped enumerants",
        replacements: &[(
            "  needsAction @0;\n  accepted @1;\n",
            "  accepted @0;\n  needsAction @1;\n",
        )],
        accepted: false,
        expected: "Response.accepted changed",
    },
    SchemaEdit {
        description: "added field",
        replacements: &[(
            "  seq @1 :UInt64;\n}",
            "  seq @1 :UInt64;\n  label @2 :Text;\n}",
        )],
        accepted: true,
        expected: "new: RequestId.label",
    },
];

#[test]
fn layout_check_flags_breaking_edits() {
    let original = std::fs::read_to_string(CALENDAR_SCHEMA).expect("reading the schema failed");
    let dir = tempfile::tempdir().expect("creating a temporary directory failed");
    let path = dir.path().join("calendar.capnp");
    for edit in SCHEMA_EDITS {
        let description = edit.description;
        let mut edited = original.clone();
        for (text, replacement) in edit.replacements {
            assert_eq!(
                edited.matches(text).count(),
                1,
                "{description}: the schema no longer contains {text:?} once; update this test"
            );
            edited = edited.replacen(text, replacement, 1);
        }
        std::fs::write(&path, edited).expect("writing the edited schema failed");

        let run = check_layout(path.to_str().expect("a UTF-8 path"), CALENDAR_LAYOUT);
        let code = if edit.accepted { 0 } else { EXIT_INCOMPATIBLE };
        assert_eq!(
            run.status.code(),
            Some(code),
            "{description}: {}",
            run.describe()
        );
        let output = format!("{}{}", run.stdout, run.stderr);
        assert!(
            output.contains(edit.expected),
            "{description}: expected {:?} in {}",
            edit.expected,
            run.describe()
        );
    }
}
