//! Password hashing and session tokens, done on the primary before anything
//! is logged: the log carries only argon2id hashes and token digests.

use std::cell::RefCell;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// Length of a session token in bytes.
pub const TOKEN_BYTES: usize = 32;

/// Password hashes computed at once per process. Each argon2 hash with the
/// default parameters takes 19 MiB for tens of milliseconds, so a burst of
/// logins must queue rather than take memory without bound.
pub const CONCURRENT_HASHES_MAX: usize = 2;

static HASH_PERMITS: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(CONCURRENT_HASHES_MAX);

/// The source of a node's salts, tokens and challenges: the operating
/// system in production, a seeded generator in a simulation so that a seed
/// replays the same run.
pub enum Entropy {
    Os,
    Seeded(Box<RefCell<rand::rngs::StdRng>>),
}

impl Entropy {
    pub fn seeded(seed: u64) -> Entropy {
        Entropy::Seeded(Box::new(RefCell::new(rand::rngs::StdRng::seed_from_u64(
            seed,
        ))))
    }

    pub fn fill(&self, bytes: &mut [u8]) {
        match self {
            Entropy::Os => rand::rngs::OsRng.fill_bytes(bytes),
            Entropy::Seeded(rng) => rng.borrow_mut().fill_bytes(bytes),
        }
    }

    /// Draws a fresh random session token.
    pub fn new_token(&self) -> Vec<u8> {
        let mut token = vec![0u8; TOKEN_BYTES];
        self.fill(&mut token);
        token
    }

    fn salt(&self) -> SaltString {
        let mut bytes = [0u8; 16];
        self.fill(&mut bytes);
        SaltString::encode_b64(&bytes).expect("16 bytes always make a valid salt")
    }
}

/// The argon2 parameters and thread a node uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hashing {
    /// The crate's default argon2id parameters (19 MiB, 2 passes), on a
    /// blocking thread so the node's thread serves others meanwhile.
    Production,
    /// Minimal parameters on the calling thread, for simulations, which
    /// allow no threads and need runs to stay fast.
    Simulation,
}

impl Hashing {
    fn argon2(self) -> Argon2<'static> {
        match self {
            Hashing::Production => Argon2::default(),
            Hashing::Simulation => Argon2::new(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                argon2::Params::new(8, 1, 1, None).expect("minimal argon2 parameters are valid"),
            ),
        }
    }

    /// Hashes a password with argon2id and a random salt, returning the PHC
    /// string.
    pub async fn hash(self, password: String, entropy: &Entropy) -> Result<String, String> {
        let salt = entropy.salt();
        let work = move || {
            self.argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|error| format!("hashing the password failed: {error}"))
        };
        self.run(work).await?
    }

    /// Checks a password against a stored PHC string. A malformed stored
    /// hash counts as a mismatch.
    pub async fn verify(self, password: String, stored_hash: String) -> bool {
        let work = move || verify_password(&password, &stored_hash);
        self.run(work).await.unwrap_or(false)
    }

    /// Runs argon2 work: queued behind the permits and on a blocking thread
    /// in production, inline in a simulation.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        match self {
            Hashing::Production => {
                let _permit = HASH_PERMITS
                    .acquire()
                    .await
                    .map_err(|error| format!("the hashing queue closed: {error}"))?;
                tokio::task::spawn_blocking(work)
                    .await
                    .map_err(|error| format!("the hashing thread failed: {error}"))
            }
            Hashing::Simulation => Ok(work()),
        }
    }
}

/// Checks a password against a stored PHC string, with the parameters the
/// string records.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// SHA-256 of a token: what the replicated state stores to recognise it.
pub fn token_digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn password_verifies_against_own_hash() {
        for hashing in [Hashing::Production, Hashing::Simulation] {
            let hash = block_on(hashing.hash("correct horse".into(), &Entropy::Os)).unwrap();
            assert!(hash.starts_with("$argon2id$"), "{hash}");
            assert!(block_on(
                hashing.verify("correct horse".into(), hash.clone())
            ));
            assert!(!block_on(hashing.verify("wrong horse".into(), hash)));
        }
    }

    #[test]
    fn same_password_hashes_differ_by_salt() {
        let first = block_on(Hashing::Simulation.hash("password1".into(), &Entropy::Os)).unwrap();
        let second = block_on(Hashing::Simulation.hash("password1".into(), &Entropy::Os)).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn seeded_entropy_replays() {
        let first = Entropy::seeded(7).new_token();
        let second = Entropy::seeded(7).new_token();
        assert_eq!(first, second);
        assert_ne!(first, Entropy::seeded(8).new_token());
        assert_eq!(first.len(), TOKEN_BYTES);
    }

    #[test]
    fn malformed_hash_never_verifies() {
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn token_digest_is_stable() {
        let token = Entropy::Os.new_token();
        assert_eq!(token_digest(&token), token_digest(&token));
    }
}
