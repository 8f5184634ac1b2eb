//! The `almanac` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use almanac::node::config::NodeAddresses;
use almanac::node::tls::TlsFiles;
use almanac::node::{self, ClusterConfig, NodeOptions, StartMode};
use almanac::repl::{self, OutputFormat, ReplOptions};
use almanac::snapshot::backup;

/// mimalloc returns freed memory to the system; glibc's allocator kept
/// hundreds of MiB of argon2's 19 MiB work areas mapped after a burst of
/// logins (measured with 64 concurrent registrations).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status when the environment stops a command: a busy port, an
/// unreadable data directory, a damaged log.
const EXIT_ENVIRONMENT: u8 = 3;

/// The client port `local` and `server` use when none is given.
const DEFAULT_CLIENT_PORT: u16 = 7401;

#[derive(Parser, Debug)]
#[command(
    name = "almanac",
    version,
    about = "A replicated calendar for a small community",
    long_about = "A replicated calendar for a small community.\n\n\
        With no subcommand, runs the terminal client (`almanac repl`).",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    repl: ReplArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The terminal client (the default).
    Repl(ReplArgs),
    /// Runs one server node.
    Server(ServerArgs),
    /// Runs a local cluster (three nodes by default) on loopback in this
    /// process, with its data under --data, and attaches the terminal client.
    Local(LocalArgs),
    /// Prints the status of every node of the cluster.
    Status(StatusArgs),
    /// Measures acknowledged, replicated write throughput and latency
    /// against a running cluster. It registers one account per client
    /// (named bench..., password bench-password) and writes real events,
    /// and deletes those accounts with their events at the end unless
    /// --keep-data is given or the run is killed, so point it at a cluster
    /// made for measuring.
    Bench(BenchArgs),
    /// Imports an iCalendar (.ics) file as one user and reports each event
    /// imported or skipped. The password comes from $ALMANAC_PASSWORD, the
    /// terminal, or the first line of standard input.
    Import(ImportArgs),
    /// Writes a consistent snapshot of the cluster's committed state, with
    /// its integrity digest, to OUT.
    Backup(BackupArgs),
    /// Checks a backup file and prints its op and state digest; exits 1 if
    /// it is damaged.
    Verify(VerifyArgs),
    /// Seeds an empty data directory from a backup. Restore every node of a
    /// new cluster from the same file, then start them without --init.
    Restore(RestoreArgs),
}

#[derive(Args, Debug)]
struct ImportArgs {
    #[command(flatten)]
    nodes: ClusterArgs,
    /// The user who becomes the host of every imported event.
    #[arg(long)]
    user: String,
    /// Your time zone (IANA name): floating times and all-day dates are read
    /// in it; default: $TZ, then the system's zone.
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// Accepts events with both DTEND and DURATION, which RFC 5545 forbids,
    /// using DTEND; without it they are skipped.
    #[arg(long)]
    lenient: bool,
    /// The .ics file to import.
    file: PathBuf,
}

#[derive(Args, Debug)]
struct BackupArgs {
    /// Cluster config file: the node addresses and the cluster secret.
    #[arg(long, value_name = "FILE", required_unless_present = "cluster")]
    config: Option<PathBuf>,
    /// Client addresses of the nodes, comma-separated; needs --secret-file.
    #[arg(
        long,
        value_name = "ADDR[,ADDR...]",
        value_delimiter = ',',
        conflicts_with = "config",
        requires = "secret_file"
    )]
    cluster: Option<Vec<String>>,
    /// File that contains the cluster secret, with --cluster.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    secret_file: Option<PathBuf>,
    /// Connects with TLS and accepts only node certificates signed by the CA
    /// in this PEM file; with --config, its tls_ca_file is used unless this
    /// is given.
    #[arg(long, value_name = "FILE", env = "ALMANAC_CA")]
    ca: Option<PathBuf>,
    /// The path of the backup file to write.
    #[arg(value_name = "OUT")]
    out: PathBuf,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// The backup file to check.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    /// The backup file to restore.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The node's data directory; must be new or empty.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
}

#[derive(Args, Debug)]
struct BenchArgs {
    #[command(flatten)]
    nodes: ClusterArgs,
    /// Concurrent clients, each with its own connection and user.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Seconds to measure.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds to run before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Output format: a summary line, or one JSON object.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    /// Keeps the benchmark's accounts and events in the cluster instead of
    /// deleting them at the end.
    #[arg(long)]
    keep_data: bool,
    /// Benchmarks the calendar state machine in this process instead of a
    /// cluster: replay speed, memory per event and agenda query time.
    #[arg(long)]
    calendar: bool,
    /// With --calendar: number of users.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// With --calendar: number of events.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Measures a node's restart instead: writes --ops committed ops into
    /// the new directory --data with snapshots and compaction, then times
    /// the node's startup on it.
    #[arg(long, requires = "data")]
    restart: bool,
    /// With --restart: committed ops to write.
    #[arg(long, default_value_t = 1_000_000)]
    ops: u64,
    /// With --restart: committed ops between snapshots.
    #[arg(long, default_value_t = almanac::node::config::SNAPSHOT_EVERY_OPS_DEFAULT)]
    snapshot_every_ops: u64,
    /// With --restart: a new directory for the node's data.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
struct ClientArgs {
    /// Your time zone (IANA name such as Europe/Paris); default: $TZ, then
    /// the system's zone.
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// In scripted mode, run every command even after one fails.
    #[arg(long)]
    keep_going: bool,
    /// Output format: text for people, json for one JSON object per command.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    /// Fixes "now" for date expressions (RFC 3339, e.g. 2027-01-04T09:00:00Z),
    /// for tests.
    #[arg(long, hide = true, value_name = "TIMESTAMP")]
    now: Option<String>,
    /// Where the REPL keeps its history; default: ~/.almanac_history.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

/// Where the client finds the nodes.
#[derive(Args, Debug, Clone)]
struct ClusterArgs {
    /// Client addresses of the nodes, comma-separated.
    #[arg(
        long,
        value_name = "ADDR[,ADDR...]",
        value_delimiter = ',',
        default_value = "127.0.0.1:7401",
        env = "ALMANAC_CLUSTER"
    )]
    cluster: Vec<String>,
    /// Takes the nodes' client addresses from a cluster config file instead,
    /// and its tls_ca_file unless --ca is given.
    #[arg(long, value_name = "FILE", conflicts_with = "cluster")]
    config: Option<PathBuf>,
    /// Connects with TLS and accepts only node certificates signed by the CA
    /// in this PEM file.
    #[arg(long, value_name = "FILE", env = "ALMANAC_CA")]
    ca: Option<PathBuf>,
}

impl ClusterArgs {
    /// Returns the nodes' client addresses, and sets up TLS for every client
    /// of this process when a CA is given.
    fn addresses(&self) -> Result<Vec<String>, String> {
        let (addresses, config_ca) = match &self.config {
            Some(path) => {
                let (cluster, tls) =
                    ClusterConfig::load_with_tls(path).map_err(|error| error.to_string())?;
                (cluster.client_addresses(), tls.map(|tls| tls.ca))
            }
            None => {
                for address in &self.cluster {
                    check_node_address(address)?;
                }
                (self.cluster.clone(), None)
            }
        };
        if let Some(ca) = self.ca.clone().or(config_ca) {
            let config = node::tls::client_config(&ca).map_err(|error| error.to_string())?;
            node::net::set_client_tls(config);
        }
        Ok(addresses)
    }
}

/// Checks that `address` has the HOST:PORT form a node's client address
/// takes; whether the host resolves is left to the first connection.
fn check_node_address(address: &str) -> Result<(), String> {
    let valid = match address.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port > 0),
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid node address {address:?} in --cluster: use HOST:PORT, such as 127.0.0.1:7401"
        ))
    }
}

#[derive(Args, Debug, Clone)]
struct ReplArgs {
    #[command(flatten)]
    nodes: ClusterArgs,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// Cluster config file (TOML) listing every node; see the README.
    #[arg(long, value_name = "FILE", conflicts_with = "listen")]
    config: Option<PathBuf>,
    /// This node's id in the config.
    #[arg(long, default_value_t = 1)]
    id: u8,
    /// Runs a one-node cluster that accepts clients at this address, without
    /// a config file.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory of this node's log; created if missing.
    #[arg(long, value_name = "DIR", default_value = "almanac-data")]
    data: PathBuf,
    /// Formats an empty data directory as a member of a new cluster. Without
    /// it, a node with an empty directory recovers its state from the others.
    #[arg(long)]
    init: bool,
    /// With --listen: serves TLS with this certificate chain (PEM). With
    /// --config, set tls_cert_file in the config instead.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "config"
    )]
    tls_cert: Option<PathBuf>,
    /// With --listen: the private key (PEM) of --tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        conflicts_with = "config"
    )]
    tls_key: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct LocalArgs {
    /// Directory for the nodes' data, one subdirectory each; created if
    /// missing.
    #[arg(long, value_name = "DIR", default_value = "almanac-data")]
    data: PathBuf,
    /// Client port of node 1 on 127.0.0.1; node i uses PORT + i - 1, and its
    /// peer port is 100 above that.
    #[arg(long, default_value_t = DEFAULT_CLIENT_PORT)]
    port: u16,
    /// Number of nodes (odd).
    #[arg(long, default_value_t = 3)]
    nodes: u8,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
struct StatusArgs {
    #[command(flatten)]
    nodes: ClusterArgs,
    /// Output format: a table, or a JSON array of objects.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => run_repl(cli.repl),
        Some(Command::Repl(args)) => run_repl(args),
        Some(Command::Server(args)) => run_server(args),
        Some(Command::Local(args)) => run_local(args),
        Some(Command::Bench(args)) => run_bench(args),
        Some(Command::Import(args)) => run_import(args),
        Some(Command::Backup(args)) => run_backup(args),
        Some(Command::Verify(args)) => run_verify(args),
        Some(Command::Restore(args)) => run_restore(args),
        Some(Command::Status(args)) => {
            init_logging("warn", None);
            match args.nodes.addresses() {
                Ok(addresses) => repl::print_status(addresses, args.output),
                Err(message) => {
                    eprintln!("error: {message}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// Logs to stderr, or to `file` when given, filtered by RUST_LOG (default
/// `default_filter`).
fn init_logging(default_filter: &str, file: Option<PathBuf>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let opened = file.map(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| (path, error))
    });
    match opened {
        Some(Ok(file)) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init(),
        Some(Err((path, error))) => {
            builder
                .with_ansi(stderr_wants_color())
                .with_writer(std::io::stderr)
                .init();
            tracing::warn!(path = %path.display(), %error, "cannot open the log file; logging to stderr");
        }
        None => builder
            .with_ansi(stderr_wants_color())
            .with_writer(std::io::stderr)
            .init(),
    }
}

/// Decides whether logs on stderr get colours: only on a terminal, so that
/// a log redirected to a file or a pipe has no escape codes, and not when
/// `NO_COLOR` asks for none.
fn stderr_wants_color() -> bool {
    use std::io::IsTerminal;
    let no_color = repl::shell::no_color_requested(std::env::var_os("NO_COLOR"));
    std::io::stderr().is_terminal() && !no_color
}

fn repl_options(args: ClientArgs) -> Result<ReplOptions, String> {
    ReplOptions::from_flags(
        args.tz.as_deref(),
        args.keep_going,
        args.output,
        args.now.as_deref(),
        args.history,
    )
}

fn run_repl(args: ReplArgs) -> ExitCode {
    init_logging("warn", None);
    let setup = args
        .nodes
        .addresses()
        .and_then(|addresses| Ok((addresses, repl_options(args.client)?)));
    match setup {
        Ok((addresses, options)) => repl::run(addresses, options),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Reads the password for `import`: $ALMANAC_PASSWORD, else a hidden prompt
/// on a terminal, else the first line of standard input.
fn import_password(user: &str) -> Result<String, String> {
    use std::io::IsTerminal;
    if let Ok(password) = std::env::var("ALMANAC_PASSWORD") {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("Password for {user}: "))
            .map_err(|error| format!("cannot read the password: {error}"));
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|error| format!("cannot read the password from standard input: {error}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn run_import(args: ImportArgs) -> ExitCode {
    init_logging("warn", None);
    let setup = args.nodes.addresses().and_then(|addresses| {
        let options =
            ReplOptions::from_flags(args.tz.as_deref(), false, OutputFormat::Text, None, None)?;
        Ok((addresses, options.zone, import_password(&args.user)?))
    });
    let (addresses, zone, password) = match setup {
        Ok(setup) => setup,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the client runtime: {error}");
            return ExitCode::from(EXIT_ENVIRONMENT);
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let (events, _unused) = tokio::sync::mpsc::unbounded_channel();
        let mut client = almanac::client::Client::new(addresses, events);
        if let Err(error) = client.login(&args.user, &password).await {
            eprintln!("error: cannot log in as {}: {error}", args.user);
            return ExitCode::FAILURE;
        }
        let progress = |line: String| eprintln!("{line}");
        let report =
            match almanac::ical::import_file(&mut client, &args.file, zone, args.lenient, progress)
                .await
            {
                Ok(report) => report,
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::FAILURE;
                }
            };
        for event in &report.events {
            for line in event.lines() {
                println!("{line}");
            }
        }
        println!("{}", report.summary());
        match &report.stopped {
            Some(error) => {
                eprintln!("error: the import stopped: {error}");
                ExitCode::FAILURE
            }
            None => ExitCode::SUCCESS,
        }
    })
}

fn run_bench(args: BenchArgs) -> ExitCode {
    init_logging("warn", None);
    if args.calendar {
        let options = almanac::bench::CalendarBenchOptions {
            users: args.users,
            events: args.events,
            queries: 10_000,
        };
        let result = almanac::bench::run_calendar(options);
        return print_report(result.map(|r| (r.summary(), r)), args.output);
    }
    if args.restart {
        let options = almanac::node::restart_bench::RestartBenchOptions {
            ops: args.ops,
            dir: args.data.clone().unwrap_or_default(),
            policy: almanac::node::config::SnapshotPolicy {
                every_ops: args.snapshot_every_ops.max(1),
                ..Default::default()
            },
        };
        let result = almanac::node::restart_bench::run(options);
        return print_report(result.map(|r| (r.summary(), r)), args.output);
    }
    if args.clients == 0
        || args.seconds.is_nan()
        || args.seconds <= 0.0
        || args.warmup.is_nan()
        || args.warmup < 0.0
    {
        eprintln!("error: --clients must be at least 1, --seconds above 0 and --warmup at least 0");
        return ExitCode::from(2);
    }
    let addresses = match args.nodes.addresses() {
        Ok(addresses) => addresses,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let options = almanac::bench::BenchOptions {
        addresses,
        clients: args.clients,
        duration: std::time::Duration::from_secs_f64(args.seconds),
        warmup: std::time::Duration::from_secs_f64(args.warmup),
        keep_data: args.keep_data,
    };
    let result = almanac::bench::run(options);
    print_report(result.map(|r| (r.summary(), r)), args.output)
}

/// Prints a benchmark's summary line or its JSON, or the error that stopped
/// it.
fn print_report<T: serde::Serialize>(
    result: Result<(String, T), String>,
    output: OutputFormat,
) -> ExitCode {
    match result {
        Ok((summary, report)) => {
            match output {
                OutputFormat::Text => println!("{summary}"),
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string(&report).expect("a report always serializes")
                ),
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_server(args: ServerArgs) -> ExitCode {
    init_logging("info", None);
    let (cluster, id, tls) = match (&args.config, args.listen) {
        (Some(path), _) => match ClusterConfig::load_with_tls(path) {
            Ok((cluster, tls)) => {
                let files = tls.and_then(|tls| tls.files(args.id));
                (cluster, args.id, files)
            }
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        },
        (None, Some(listen)) => {
            // A single node dials no peers, so its own certificate serves as
            // the CA.
            let files = args.tls_cert.zip(args.tls_key).map(|(cert, key)| TlsFiles {
                ca: cert.clone(),
                cert,
                key,
            });
            (single_node_cluster(listen.to_string()), 1, files)
        }
        (None, None) => {
            eprintln!("error: give --config FILE --id N for a cluster node, or --listen ADDR for a single node");
            return ExitCode::from(2);
        }
    };
    let options = NodeOptions {
        cluster,
        id,
        data_dir: args.data,
        mode: if args.init {
            StartMode::Init
        } else {
            StartMode::Rejoin
        },
    };
    match node::run_blocking(options, tls) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_ENVIRONMENT)
        }
    }
}

/// A one-node cluster: its peer port is never dialled, so it takes any free
/// port, and its secret guards nothing.
fn single_node_cluster(client: String) -> ClusterConfig {
    ClusterConfig {
        nodes: vec![NodeAddresses {
            id: 1,
            client,
            peer: "127.0.0.1:0".into(),
        }],
        secret: b"single-node-cluster-secret".to_vec(),
        snapshot: Default::default(),
        client_connections_per_address: almanac::rpc::serve::CONNECTIONS_PER_ADDRESS_DEFAULT,
    }
}

/// The secret of a local cluster, created with its data directory. Its
/// existence also marks that the cluster was initialised, so that a node
/// directory that is missing later is recovered rather than formatted anew.
fn local_secret(dir: &std::path::Path) -> std::io::Result<(Vec<u8>, bool)> {
    let path = dir.join("cluster-secret");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((text.trim().as_bytes().to_vec(), false)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let secret: String = (0..32)
                .map(|_| char::from(b"0123456789abcdef"[rand::random::<usize>() % 16]))
                .collect();
            std::fs::write(&path, &secret)?;
            Ok((secret.into_bytes(), true))
        }
        Err(error) => Err(error),
    }
}

fn run_local(args: LocalArgs) -> ExitCode {
    if args.nodes == 0 || args.nodes.is_multiple_of(2) {
        eprintln!(
            "error: --nodes {} is invalid: use an odd number such as 1, 3 or 5",
            args.nodes
        );
        return ExitCode::from(2);
    }
    if let Err(error) = std::fs::create_dir_all(&args.data) {
        eprintln!(
            "error: cannot create the data directory {}: {error}",
            args.data.display()
        );
        return ExitCode::from(EXIT_ENVIRONMENT);
    }
    init_logging("info", Some(args.data.join("almanac.log")));
    let options = match repl_options(args.client) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let (secret, first_start) = match local_secret(&args.data) {
        Ok(found) => found,
        Err(error) => {
            eprintln!(
                "error: cannot read or create {}: {error}",
                args.data.join("cluster-secret").display()
            );
            return ExitCode::from(EXIT_ENVIRONMENT);
        }
    };
    let nodes = (1..=args.nodes)
        .map(|id| {
            let port = u32::from(args.port) + u32::from(id) - 1;
            NodeAddresses {
                id,
                client: format!("127.0.0.1:{port}"),
                peer: format!("127.0.0.1:{}", port + 100),
            }
        })
        .collect();
    let cluster = ClusterConfig {
        nodes,
        secret,
        snapshot: Default::default(),
        client_connections_per_address: almanac::rpc::serve::CONNECTIONS_PER_ADDRESS_DEFAULT,
    };
    let mut addresses = Vec::new();
    for id in 1..=args.nodes {
        let node_options = NodeOptions {
            cluster: cluster.clone(),
            id,
            data_dir: args.data.join(format!("node-{id}")),
            mode: if first_start {
                StartMode::Init
            } else {
                StartMode::Rejoin
            },
        };
        match node::spawn_background(node_options) {
            Ok(address) => addresses.push(address.to_string()),
            Err(error) => {
                eprintln!("error: node {id}: {error}");
                return ExitCode::from(EXIT_ENVIRONMENT);
            }
        }
    }
    repl::run(addresses, options)
}

/// Returns the node addresses and the cluster secret a backup uses.
/// Returns the nodes' client addresses and the cluster secret, and sets up
/// TLS for the connection when a CA is given or the config names one.
fn backup_source(args: &BackupArgs) -> Result<(Vec<String>, Vec<u8>), String> {
    let use_ca = |ca: Option<PathBuf>| -> Result<(), String> {
        if let Some(ca) = ca {
            let config = node::tls::client_config(&ca).map_err(|error| error.to_string())?;
            node::net::set_client_tls(config);
        }
        Ok(())
    };
    if let Some(path) = &args.config {
        let (cluster, tls) =
            ClusterConfig::load_with_tls(path).map_err(|error| error.to_string())?;
        use_ca(args.ca.clone().or(tls.map(|tls| tls.ca)))?;
        return Ok((cluster.client_addresses(), cluster.secret));
    }
    use_ca(args.ca.clone())?;
    let addresses = args.cluster.clone().unwrap_or_default();
    let secret_path = args
        .secret_file
        .as_ref()
        .ok_or("--cluster needs --secret-file with the cluster secret")?;
    let secret = std::fs::read_to_string(secret_path).map_err(|error| {
        format!(
            "cannot read the secret file {}: {error}",
            secret_path.display()
        )
    })?;
    Ok((addresses, secret.trim().as_bytes().to_vec()))
}

fn run_backup(args: BackupArgs) -> ExitCode {
    init_logging("warn", None);
    let (addresses, secret) = match backup_source(&args) {
        Ok(source) => source,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start a runtime: {error}");
            return ExitCode::from(EXIT_ENVIRONMENT);
        }
    };
    let local = tokio::task::LocalSet::new();
    let fetched = local.block_on(&runtime, async {
        almanac::client::fetch_backup(&almanac::node::net::TokioConnector, &addresses, &secret)
            .await
    });
    let bytes = match fetched {
        Ok(bytes) => bytes,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    match backup::write_backup(&bytes, &args.out) {
        Ok(header) => {
            println!(
                "wrote {} to {}",
                backup::describe(&header, bytes.len()),
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_ENVIRONMENT)
        }
    }
}

fn run_verify(args: VerifyArgs) -> ExitCode {
    match backup::verify_file(&args.file) {
        Ok((header, bytes)) => {
            println!(
                "{}: valid {}",
                args.file.display(),
                backup::describe(&header, bytes)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_restore(args: RestoreArgs) -> ExitCode {
    init_logging("warn", None);
    match backup::restore(&args.file, &args.data) {
        Ok(header) => {
            println!(
                "restored the backup of op {} into {}; start the node there without --init",
                header.op,
                args.data.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
