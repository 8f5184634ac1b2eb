//! Password hashing and session tokens, done on the primary before anything
//! is logged: the log carries only argon2id hashes and token digests.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Length of a session token in bytes.
pub const TOKEN_BYTES: usize = 32;

/// Hashes a password with argon2id (the crate's default parameters) and a
/// random salt, returning the PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| format!("hashing the password failed: {error}"))
}

/// Checks a password against a stored PHC string. A malformed stored hash
/// counts as a mismatch.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// Draws a fresh random session token.
pub fn new_token() -> Vec<u8> {
    let mut token = vec![0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut token);
    token
}

/// SHA-256 of a token: what the replicated state stores to recognise it.
pub fn token_digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_verifies_against_own_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
    }

    #[test]
    fn same_password_hashes_differ_by_salt() {
        let first = hash_password("password1").unwrap();
        let second = hash_password("password1").unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn malformed_hash_never_verifies() {
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn tokens_are_random_and_digests_stable() {
        let token = new_token();
        assert_eq!(token.len(), TOKEN_BYTES);
        assert_ne!(token, new_token());
        assert_eq!(token_digest(&token), token_digest(&token));
    }
}
