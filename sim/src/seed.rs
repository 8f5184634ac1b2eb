//! Seeds: which ones a test runs, how one seed is derived from another, and
//! how a failing seed is reported with the command that replays it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::cluster::Outcome;

/// Environment variable that runs a single seed, to replay a failure.
pub const SEED_VAR: &str = "ALMANAC_SIM_SEED";
/// Environment variable that sets how many seeds a sweep runs.
pub const SEEDS_VAR: &str = "ALMANAC_SIM_SEEDS";
/// Environment variable that makes a sweep print the trace of passing runs.
pub const TRACE_VAR: &str = "ALMANAC_SIM_TRACE";
/// Seeds per scenario when neither variable is set: small enough that every
/// scenario together stays well under three minutes on two cores in a
/// release build.
pub const DEFAULT_SEEDS: u64 = 8;

/// Mixes `value` into `seed` (the SplitMix64 finalizer), so that derived
/// seeds differ in every bit even for neighbouring inputs.
pub fn mix(seed: u64, value: u64) -> u64 {
    let mut z = seed ^ value.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Returns the seeds to run: the one in `ALMANAC_SIM_SEED`, else 1 to
/// `ALMANAC_SIM_SEEDS` (default [`DEFAULT_SEEDS`]).
///
/// # Panics
///
/// If a variable is set but is not a number.
pub fn seeds() -> Vec<u64> {
    seeds_from(
        std::env::var(SEED_VAR).ok().as_deref(),
        std::env::var(SEEDS_VAR).ok().as_deref(),
    )
}

fn seeds_from(seed: Option<&str>, count: Option<&str>) -> Vec<u64> {
    if let Some(seed) = seed {
        let seed = seed.trim().parse().unwrap_or_else(|_| {
            panic!("{SEED_VAR}={seed:?} is not a seed; set it to an unsigned integer")
        });
        return vec![seed];
    }
    let count = match count {
        Some(count) => count.trim().parse().unwrap_or_else(|_| {
            panic!("{SEEDS_VAR}={count:?} is not a count; set it to an unsigned integer")
        }),
        None => DEFAULT_SEEDS,
    };
    (1..=count).collect()
}

/// Returns the command that runs test `test` of the test file `file` for `seed`.
pub fn replay_command(file: &str, test: &str, seed: u64) -> String {
    format!("{SEED_VAR}={seed} cargo test -p almanac-sim --release --test {file} {test}")
}

/// Runs `scenario` for every seed of [`seeds`] and panics on the first
/// failure with the seed and the command that replays it. `file` is the
/// test file's crate name (`module_path!()` in an integration test) and
/// `test` the test function's name. With `ALMANAC_SIM_TRACE` set, prints
/// the trace of every passing run too.
pub fn sweep(file: &str, test: &str, scenario: impl Fn(u64) -> Result<Outcome, String>) {
    sweep_over(&seeds(), file, test, scenario);
}

fn sweep_over(
    seeds: &[u64],
    file: &str,
    test: &str,
    scenario: impl Fn(u64) -> Result<Outcome, String>,
) {
    let print_traces = std::env::var_os(TRACE_VAR).is_some();
    for &seed in seeds {
        let result = catch_unwind(AssertUnwindSafe(|| scenario(seed)));
        let failure = match result {
            Ok(Ok(outcome)) => {
                if print_traces {
                    eprintln!("{test}, seed {seed}:\n  {}", outcome.trace.join("\n  "));
                }
                continue;
            }
            Ok(Err(failure)) => failure,
            Err(panic) => panic_message(panic.as_ref()),
        };
        panic!(
            "{test} failed for seed {seed}: {failure}\n\nreplay it with:\n  {}",
            replay_command(file, test, seed)
        );
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        format!("panic: {text}")
    } else if let Some(text) = panic.downcast_ref::<String>() {
        format!("panic: {text}")
    } else {
        "panic with a value that is not text".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_variable_selects_one_seed() {
        assert_eq!(seeds_from(Some("1234"), Some("50")), vec![1234]);
    }

    #[test]
    fn count_variable_sets_sweep_size() {
        assert_eq!(seeds_from(None, Some("3")), vec![1, 2, 3]);
    }

    #[test]
    fn default_sweep_size() {
        assert_eq!(seeds_from(None, None).len() as u64, DEFAULT_SEEDS);
    }

    #[test]
    #[should_panic(expected = "is not a seed")]
    fn bad_seed_variable_panics() {
        seeds_from(Some("twelve"), None);
    }

    #[test]
    fn mix_differs_for_neighbours() {
        assert_ne!(mix(1, 0), mix(1, 1));
        assert_ne!(mix(1, 0), mix(2, 0));
        assert_eq!(mix(5, 6), mix(5, 6));
    }

    #[test]
    fn replay_command_names_seed_and_test() {
        assert_eq!(
            replay_command("failover", "primary_crash", 42),
            "ALMANAC_SIM_SEED=42 cargo test -p almanac-sim --release --test failover primary_crash"
        );
    }

    #[test]
    fn sweep_reports_seed_and_command() {
        let result = catch_unwind(|| {
            sweep_over(&[1, 2, 3], "file", "case", |seed| {
                if seed == 2 {
                    Err("broken".to_owned())
                } else {
                    Ok(Outcome::default())
                }
            })
        });
        let message = panic_message(result.unwrap_err().as_ref());
        assert!(message.contains("seed 2: broken"), "{message}");
        assert!(
            message.contains("ALMANAC_SIM_SEED=2 cargo test"),
            "{message}"
        );
    }
}
