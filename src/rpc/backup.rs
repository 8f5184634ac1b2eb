//! The client port's backup call: a consistent snapshot of the committed
//! state for a caller that proves knowledge of the cluster secret.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tracing::{info, warn};

use crate::calendar::Rejection;
use crate::node::service::Service;
use crate::rpc::convert::ApiRejection;
use crate::snapshot::Snapshot;

type HmacSha256 = Hmac<Sha256>;

/// The bytes the backup MAC covers before the nonce, so that a MAC of the
/// peer port's challenge can never pass as a backup proof.
const BACKUP_MAC_CONTEXT: &[u8] = b"almanac backup";

/// Bytes of a backup challenge.
const CHALLENGE_BYTES: usize = 32;

/// Challenges kept for a later `backup` call. The gateway serves every
/// connection, so a few backups may run at once; an older challenge is
/// dropped when more are issued.
const CHALLENGES_MAX: usize = 16;

/// Returns HMAC-SHA256 keyed with `secret` over the backup context and
/// `nonce`.
pub fn backup_mac(secret: &[u8], nonce: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(BACKUP_MAC_CONTEXT);
    mac.update(nonce);
    mac.finalize().into_bytes().to_vec()
}

/// The cluster secret and the challenges issued for backups.
#[derive(Default)]
pub struct BackupAuth {
    /// None on a gateway that serves no backups.
    secret: Option<Rc<Vec<u8>>>,
    challenges: RefCell<VecDeque<Vec<u8>>>,
}

impl BackupAuth {
    pub fn new(secret: Rc<Vec<u8>>) -> BackupAuth {
        BackupAuth {
            secret: Some(secret),
            challenges: RefCell::default(),
        }
    }

    /// Issues a fresh challenge.
    pub fn challenge(&self, service: &Service) -> Vec<u8> {
        let mut nonce = vec![0u8; CHALLENGE_BYTES];
        service.host.entropy.fill(&mut nonce);
        let mut challenges = self.challenges.borrow_mut();
        if challenges.len() == CHALLENGES_MAX {
            challenges.pop_front();
        }
        challenges.push_back(nonce.clone());
        nonce
    }

    /// Checks a proof and uses up its challenge.
    fn check(&self, nonce: &[u8], proof: &[u8]) -> Result<(), ApiRejection> {
        let forbidden = |reason: &str| {
            ApiRejection::Calendar(Rejection::Forbidden {
                reason: reason.to_owned(),
            })
        };
        let Some(secret) = &self.secret else {
            return Err(forbidden("this node serves no backups"));
        };
        let mut challenges = self.challenges.borrow_mut();
        let Some(position) = challenges.iter().position(|issued| issued == nonce) else {
            return Err(forbidden(
                "the backup challenge is unknown or used; ask for a new one",
            ));
        };
        challenges.remove(position);
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(BACKUP_MAC_CONTEXT);
        mac.update(nonce);
        mac.verify_slice(proof)
            .map_err(|_| forbidden("the backup proof does not match the cluster secret"))
    }
}

/// Returns the snapshot file of the committed state after checking the
/// proof and confirming that this node is still the primary.
///
/// NOTE: the file travels in one reply, so a state larger than the RPC
/// traversal limit (`rpc::serve::TRAVERSAL_LIMIT_WORDS`, 64 MiB) cannot be
/// backed up this way; that would need the chunked transfer peers use.
pub async fn serve_backup(
    service: &Service,
    auth: &BackupAuth,
    nonce: &[u8],
    proof: &[u8],
) -> Result<Vec<u8>, ApiRejection> {
    if let Err(rejection) = auth.check(nonce, proof) {
        warn!(node = service.replica_id + 1, %rejection, "rejected a backup request");
        return Err(rejection);
    }
    service.read_barrier().await?;
    // The driver applies each round's commits before it yields, so between
    // awaits the calendar is exactly the state after the commit number.
    let commit = service.status().commit;
    let bytes = Snapshot::encode(commit, &service.calendar());
    info!(
        node = service.replica_id + 1,
        op = commit,
        bytes = bytes.len(),
        "served a backup"
    );
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_mac_binds_secret_and_nonce() {
        let mac = backup_mac(b"secret one", b"nonce");
        assert_eq!(mac.len(), 32);
        assert_ne!(mac, backup_mac(b"secret two", b"nonce"));
        assert_ne!(mac, backup_mac(b"secret one", b"other"));
    }

    #[test]
    fn check_accepts_once_and_rejects_forgery() {
        let auth = BackupAuth::new(Rc::new(b"the cluster secret".to_vec()));
        auth.challenges.borrow_mut().push_back(b"n1".to_vec());
        auth.challenges.borrow_mut().push_back(b"n2".to_vec());
        let forged = backup_mac(b"a guessed secret", b"n1");
        let error = auth.check(b"n1", &forged).unwrap_err();
        assert!(error.to_string().contains("does not match"), "{error}");

        let proof = backup_mac(b"the cluster secret", b"n2");
        assert_eq!(auth.check(b"n2", &proof), Ok(()));
        let reused = auth.check(b"n2", &proof).unwrap_err();
        assert!(reused.to_string().contains("unknown or used"), "{reused}");
    }

    #[test]
    fn check_without_secret_rejects() {
        let auth = BackupAuth::default();
        let error = auth.check(b"n", b"m").unwrap_err();
        assert!(error.to_string().contains("serves no backups"), "{error}");
    }
}
