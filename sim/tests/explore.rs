//! The seed explorer on the real code: runs are deterministic, and a
//! bounded sweep passes every check: safety, liveness and no panic.

use almanac_sim::run::run;
use almanac_sim::schedule::Schedule;
use almanac_sim::seed::SEEDS_VAR;

/// Seeds of the sweep when `ALMANAC_SIM_SEEDS` is unset: about 15 s on two
/// cores in a release build.
const SWEEP_SEEDS: u64 = 150;

#[test]
fn same_seed_same_trace() {
    for seed in [1, 2, 5, 9, 14] {
        let schedule = Schedule::derive(seed, None);
        let first = run(&schedule);
        let second = run(&schedule);
        assert!(
            !first.trace.is_empty(),
            "seed {seed}: the run left no trace"
        );
        assert_eq!(
            first.trace_digest, second.trace_digest,
            "seed {seed}: two runs gave different traces; replay it twice with \
             `cargo run -p almanac-sim --release -- replay --seed {seed} --trace` and diff them"
        );
    }
}

#[test]
fn schedule_file_replays_like_seed() {
    let schedule = Schedule::derive(4, None);
    let parsed = Schedule::parse(&schedule.to_text()).expect("a written schedule parses");
    assert_eq!(run(&schedule).trace_digest, run(&parsed).trace_digest);
}

#[test]
fn sweep_passes_every_check() {
    let seeds = match std::env::var(SEEDS_VAR) {
        Ok(count) => count
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEEDS_VAR}={count:?} is not a count of seeds")),
        Err(_) => SWEEP_SEEDS,
    };
    for seed in 1..=seeds {
        let report = run(&Schedule::derive(seed, None));
        let Some(failure) = report.failure else {
            continue;
        };
        let first = failure.violations[0]
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        panic!(
            "seed {seed} failed ({}): {first}\n{}\nreplay it with: \
             cargo run -p almanac-sim --release -- replay --seed {seed} --trace",
            failure.class.name(),
            report.settings
        );
    }
}
