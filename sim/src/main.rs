//! `almanac-sim`: explores seeds, replays one, and shrinks a failing one.
//!
//! Exit status: 0 when every run passed, 10 for a safety failure, 11 for a
//! liveness failure, 12 for a panic, 1 for a bad input file, 2 for bad flags.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use almanac_sim::run::{run, Class, Report, INCONCLUSIVE};
use almanac_sim::schedule::Schedule;
use almanac_sim::shrink::{shrink, RUNS_MAX};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "almanac-sim",
    about = "Deterministic simulation of an Almanac cluster: explore seeds, replay and shrink failures"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs seeds FROM to FROM + SEEDS - 1 and stops at the first failure.
    Explore {
        /// Number of seeds to run.
        #[arg(long)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Planted bug to activate (needs --features planted-bugs).
        #[arg(long)]
        bug: Option<String>,
        /// Print each seed's settings line before it runs.
        #[arg(long)]
        verbose: bool,
        /// Run every seed even after failures; print one line per failing
        /// seed and exit with the status of the most severe class found.
        #[arg(long)]
        keep_going: bool,
    },
    /// Runs one seed, or a schedule file written by `shrink`.
    Replay {
        /// Seed to replay.
        #[arg(
            long,
            required_unless_present = "schedule",
            conflicts_with = "schedule"
        )]
        seed: Option<u64>,
        /// Schedule file to replay instead of a seed.
        #[arg(long)]
        schedule: Option<PathBuf>,
        /// Planted bug to activate (needs --features planted-bugs).
        #[arg(long, conflicts_with = "schedule")]
        bug: Option<String>,
        /// Print the run's trace: faults, primaries, node states, history.
        #[arg(long)]
        trace: bool,
        /// Print the schedule (the format of a schedule file) before the run.
        #[arg(long)]
        print_schedule: bool,
    },
    /// Shrinks a failing seed to a small schedule and writes it to a file.
    Shrink {
        /// Failing seed to shrink.
        #[arg(long)]
        seed: u64,
        /// Planted bug to activate (needs --features planted-bugs).
        #[arg(long)]
        bug: Option<String>,
        /// File to write the shrunk schedule to.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Maximum number of runs the shrink may take.
        #[arg(long, default_value_t = RUNS_MAX)]
        runs_max: usize,
    },
}

fn main() -> ExitCode {
    almanac_sim::init_logging();
    let cli = Cli::parse();
    match cli.command {
        Command::Explore {
            seeds,
            from,
            bug,
            verbose,
            keep_going,
        } => explore(seeds, from, bug.as_deref(), verbose, keep_going),
        Command::Replay {
            seed,
            schedule,
            bug,
            trace,
            print_schedule,
        } => {
            let (schedule, file) = match (seed, schedule) {
                (Some(seed), _) => (Schedule::derive(seed, bug.as_deref()), None),
                (None, Some(path)) => match load(&path) {
                    Ok(schedule) => (schedule, Some(path)),
                    Err(error) => {
                        eprintln!("error: {error}");
                        return ExitCode::from(1);
                    }
                },
                (None, None) => unreachable!("clap requires --seed or --schedule"),
            };
            if print_schedule {
                print!("{}", schedule.to_text());
            }
            replay(&schedule, file.as_deref(), trace)
        }
        Command::Shrink {
            seed,
            bug,
            output,
            runs_max,
        } => shrink_seed(seed, bug.as_deref(), output, runs_max),
    }
}

fn load(path: &PathBuf) -> Result<Schedule, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read schedule file {}: {error}", path.display()))?;
    Schedule::parse(&text)
        .map_err(|error| format!("schedule file {} is invalid: {error}", path.display()))
}

/// Returns the command that replays `seed`.
fn replay_command(seed: u64, bug: Option<&str>) -> String {
    match bug {
        Some(bug) => format!(
            "cargo run -p almanac-sim --release --features planted-bugs -- replay --seed {seed} --bug {bug}"
        ),
        None => format!("cargo run -p almanac-sim --release -- replay --seed {seed}"),
    }
}

fn shrink_command(seed: u64, bug: Option<&str>) -> String {
    replay_command(seed, bug).replacen("replay", "shrink", 1)
}

/// Returns the cargo flag that a run with planted bug `bug` needs, if any.
fn features_flag(bug: Option<&str>) -> &'static str {
    if bug.is_some() {
        " --features planted-bugs"
    } else {
        ""
    }
}

/// Prints a failed run and returns its exit status.
fn report_failure(report: &Report, seed: u64, bug: Option<&str>) -> ExitCode {
    let failure = report
        .failure
        .as_ref()
        .expect("report_failure is called for failed runs");
    println!(
        "FAILED ({}): seed {seed}, first violated check {}",
        failure.class.name(),
        failure.check
    );
    println!("settings: {}", report.settings);
    println!("{}", failure.violations[0]);
    if failure.violations.len() > 1 {
        println!(
            "({} more violations; replay with --trace to see the run)",
            failure.violations.len() - 1
        );
        for violation in failure.violations.iter().skip(1).take(5) {
            println!("  {}", violation.lines().next().unwrap_or_default());
        }
    }
    println!("replay: {}", replay_command(seed, bug));
    println!("shrink: {}", shrink_command(seed, bug));
    ExitCode::from(failure.class.exit_code() as u8)
}

fn explore(seeds: u64, from: u64, bug: Option<&str>, verbose: bool, keep_going: bool) -> ExitCode {
    let started = Instant::now();
    let mut operations = 0;
    let mut failures: Vec<(u64, Class)> = Vec::new();
    let mut inconclusive: Vec<u64> = Vec::new();
    for seed in from..from.saturating_add(seeds) {
        let schedule = Schedule::derive(seed, bug);
        if verbose {
            println!("{}", schedule.settings());
        }
        let report = run(&schedule);
        operations += report.operations;
        if report.linearizability.starts_with(INCONCLUSIVE) {
            inconclusive.push(seed);
        }
        if let Some(failure) = &report.failure {
            if !keep_going {
                return report_failure(&report, seed, bug);
            }
            let first = failure.violations[0].lines().next().unwrap_or_default();
            println!("seed {seed} FAILED ({}): {first}", failure.class.name());
            failures.push((seed, failure.class));
        }
        let done = seed - from + 1;
        if done.is_multiple_of(100) {
            eprintln!(
                "{done} seeds run, {} failed ({:.1} s)",
                failures.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = seeds as f64 / seconds.max(1e-9);
    if !inconclusive.is_empty() {
        let listed: Vec<String> = inconclusive.iter().map(u64::to_string).collect();
        println!(
            "the linearizability search was inconclusive on {} of {seeds} seeds (the other \
             checks, the per-read STALE check among them, ran on every seed): {}",
            inconclusive.len(),
            listed.join(" ")
        );
    }
    if let Some(worst) = failures.iter().map(|(_, class)| *class).min() {
        let listed: Vec<String> = failures.iter().map(|(seed, _)| seed.to_string()).collect();
        println!(
            "{} of {seeds} seeds from {from} failed in {seconds:.1} s ({rate:.2} seeds/s): {}",
            failures.len(),
            listed.join(" ")
        );
        return ExitCode::from(worst.exit_code() as u8);
    }
    println!(
        "all {seeds} seeds from {from} passed in {seconds:.1} s ({rate:.2} seeds/s, {operations} client calls checked)"
    );
    ExitCode::SUCCESS
}

/// Runs `schedule`, derived from its seed or read from `file`.
fn replay(schedule: &Schedule, file: Option<&Path>, trace: bool) -> ExitCode {
    println!("{}", schedule.settings());
    let report = run(schedule);
    if trace {
        for line in &report.trace {
            println!("  {line}");
        }
    }
    println!("trace digest {:016x}", report.trace_digest);
    println!("linearizability: {}", report.linearizability);
    if report.failure.is_some() {
        let code = report_failure(&report, schedule.seed, schedule.bug.as_deref());
        if let Some(file) = file {
            println!(
                "this run replayed the schedule file {0}; replay it again with: cargo run -p \
                 almanac-sim --release{1} -- replay --schedule {0}",
                file.display(),
                features_flag(schedule.bug.as_deref())
            );
        }
        return code;
    }
    println!("passed: {} client calls", report.operations);
    ExitCode::SUCCESS
}

fn shrink_seed(seed: u64, bug: Option<&str>, output: Option<PathBuf>, runs_max: usize) -> ExitCode {
    let schedule = Schedule::derive(seed, bug);
    println!("{}", schedule.settings());
    let shrunk = match shrink(&schedule, runs_max, &mut |line| eprintln!("shrink: {line}")) {
        Ok(shrunk) => shrunk,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    let path = output.unwrap_or_else(|| PathBuf::from(format!("almanac-sim-{seed}.schedule")));
    if let Err(error) = std::fs::write(&path, shrunk.schedule.to_text()) {
        eprintln!("error: cannot write {}: {error}", path.display());
        return ExitCode::from(1);
    }
    let steps: usize = shrunk.schedule.clients.iter().map(Vec::len).sum();
    println!(
        "shrunk in {} runs to {} faults, {} clients, {steps} steps; still fails {} ({})",
        shrunk.runs,
        shrunk.schedule.faults.len(),
        shrunk.schedule.clients.len(),
        shrunk.failure.check,
        shrunk.failure.class.name()
    );
    println!("{}", shrunk.failure.violations[0]);
    println!(
        "wrote {}; replay it with: cargo run -p almanac-sim --release{} -- replay --schedule {}",
        path.display(),
        features_flag(bug),
        path.display()
    );
    ExitCode::from(shrunk.failure.class.exit_code() as u8)
}
