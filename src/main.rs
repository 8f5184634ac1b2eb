//! The `almanac` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use almanac::node::{self, NodeOptions};
use almanac::repl::{self, OutputFormat, ReplOptions};

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
    /// Runs a local node on loopback with its data under --data, and attaches
    /// the terminal client to it.
    Local(LocalArgs),
    /// Prints the status of every node of the cluster.
    Status(StatusArgs),
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

#[derive(Args, Debug, Clone)]
struct ReplArgs {
    /// Client addresses of the nodes, comma-separated.
    #[arg(
        long,
        value_name = "ADDR[,ADDR...]",
        value_delimiter = ',',
        default_value = "127.0.0.1:7401",
        env = "ALMANAC_CLUSTER"
    )]
    cluster: Vec<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// This node's id.
    #[arg(long, default_value_t = 1)]
    id: u8,
    /// Address to accept clients on.
    #[arg(long, value_name = "ADDR", default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_CLIENT_PORT)))]
    listen: SocketAddr,
    /// Directory of this node's write-ahead log; created if missing.
    #[arg(long, value_name = "DIR", default_value = "almanac-data")]
    data: PathBuf,
}

#[derive(Args, Debug)]
struct LocalArgs {
    /// Directory for the node's data; created if missing.
    #[arg(long, value_name = "DIR", default_value = "almanac-data")]
    data: PathBuf,
    /// Client port of the local node on 127.0.0.1; 0 picks a free port.
    #[arg(long, default_value_t = DEFAULT_CLIENT_PORT)]
    port: u16,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
struct StatusArgs {
    /// Client addresses of the nodes, comma-separated.
    #[arg(
        long,
        value_name = "ADDR[,ADDR...]",
        value_delimiter = ',',
        default_value = "127.0.0.1:7401",
        env = "ALMANAC_CLUSTER"
    )]
    cluster: Vec<String>,
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
        Some(Command::Status(args)) => {
            init_logging("warn", None);
            repl::print_status(args.cluster, args.output)
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
            builder.with_writer(std::io::stderr).init();
            tracing::warn!(path = %path.display(), %error, "cannot open the log file; logging to stderr");
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
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
    match repl_options(args.client) {
        Ok(options) => repl::run(args.cluster, options),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run_server(args: ServerArgs) -> ExitCode {
    init_logging("info", None);
    let options = NodeOptions {
        id: args.id,
        client_address: args.listen,
        data_dir: args.data,
    };
    match node::run_blocking(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_ENVIRONMENT)
        }
    }
}

fn run_local(args: LocalArgs) -> ExitCode {
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
    let node_options = NodeOptions {
        id: 1,
        client_address: SocketAddr::from(([127, 0, 0, 1], args.port)),
        data_dir: args.data.join("node-1"),
    };
    let address = match node::spawn_background(node_options) {
        Ok(address) => address,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_ENVIRONMENT);
        }
    };
    repl::run(vec![address.to_string()], options)
}
