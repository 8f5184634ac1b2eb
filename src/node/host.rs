//! The parts of the machine a node depends on: time, randomness and the
//! way it hashes passwords. Production and simulation differ only here and
//! in the network and disk seams.

use crate::node::auth::{Entropy, Hashing};
use crate::node::clock::Clock;

pub struct Host {
    pub clock: Clock,
    pub entropy: Entropy,
    pub hashing: Hashing,
    /// Seed of the replica's timeouts and nonces.
    pub seed: u64,
}

impl Host {
    /// Returns the real machine: system clock, operating-system randomness,
    /// full argon2 parameters.
    pub fn production() -> Host {
        Host {
            clock: Clock::System,
            entropy: Entropy::Os,
            hashing: Hashing::Production,
            seed: rand::random(),
        }
    }

    /// Returns a simulated machine whose every random choice follows from
    /// `seed`.
    pub fn simulated(seed: u64, epoch_ms: i64) -> Host {
        Host {
            clock: Clock::simulated(epoch_ms),
            entropy: Entropy::seeded(seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15),
            hashing: Hashing::Simulation,
            seed,
        }
    }
}
