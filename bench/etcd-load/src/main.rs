//! `etcd-load`: the etcd side of `bench/compare-etcd.sh`.
//!
//! `etcd-load put` runs concurrent put clients against an etcd cluster and
//! prints the same report as `almanac bench`. `etcd-load floor` measures the
//! machine's floor for one replicated write (one fdatasync and two loopback
//! round trips). It is a crate of its own so that the almanac build needs
//! neither etcd-client nor protoc.

mod floor;
mod load;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    version,
    about = "Load generator for etcd, with the client model of `almanac bench`"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Runs concurrent clients that each put 256-byte values to new keys, one
    /// at a time, and prints writes/s and latency percentiles.
    Put {
        /// Comma-separated client URLs of the members, such as
        /// http://127.0.0.1:2379,http://127.0.0.1:2479
        #[arg(long, value_delimiter = ',', required = true)]
        endpoints: Vec<String>,
        /// Number of concurrent clients, each with its own connection.
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Length of the measured phase in seconds.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Seconds the clients run before measuring starts.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Size of each value in bytes.
        #[arg(long, default_value_t = 256)]
        value_bytes: usize,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Measures the median fdatasync of a small append in DIR and the median
    /// loopback round trip between two processes.
    Floor {
        /// Directory for the temporary file; use the disk the servers' data is on.
        #[arg(long)]
        dir: PathBuf,
        /// Timed fdatasyncs and timed round trips, each.
        #[arg(long, default_value_t = 2000)]
        samples: usize,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Serves the echo side of `floor` (started by `floor` itself).
    #[command(hide = true)]
    Echo,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("etcd-load: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Commands) -> Result<(), String> {
    match command {
        Commands::Put {
            endpoints,
            clients,
            seconds,
            warmup,
            value_bytes,
            output,
        } => {
            let options = load::LoadOptions {
                endpoints,
                clients,
                duration: seconds_arg("--seconds", seconds)?,
                warmup: seconds_arg("--warmup", warmup)?,
                value_bytes,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| format!("starting the runtime failed: {error}"))?;
            let report = runtime.block_on(load::run(options))?;
            print_report(output, &report, |report| report.summary())
        }
        Commands::Floor {
            dir,
            samples,
            output,
        } => {
            let report = floor::measure(&dir, samples)?;
            print_report(output, &report, |report| {
                format!(
                    "fdatasync p50 {} us, loopback round trip p50 {} us, floor {} us; \
                     fdatasync p50 with three writers on the disk {} us",
                    report.fdatasync_p50_us,
                    report.round_trip_p50_us,
                    report.floor_us,
                    report.shared_disk_fdatasync_p50_us
                )
            })
        }
        Commands::Echo => floor::serve_echo(),
    }
}

fn seconds_arg(name: &str, seconds: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{name} {seconds} is invalid: use a number of seconds of 0 or more"))
}

fn print_report<T: serde::Serialize>(
    output: Output,
    report: &T,
    summary: impl Fn(&T) -> String,
) -> Result<(), String> {
    match output {
        Output::Text => println!("{}", summary(report)),
        Output::Json => println!(
            "{}",
            serde_json::to_string(report)
                .map_err(|error| format!("encoding JSON failed: {error}"))?
        ),
    }
    Ok(())
}
