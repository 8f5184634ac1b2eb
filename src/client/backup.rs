//! Fetching a backup: a consistent snapshot of the committed state, from
//! whichever node is the primary.

use crate::node::net::Connector;
use crate::rpc::backup::backup_mac;
use crate::rpc::calendar_capnp::backup_result;
use crate::rpc::convert::{read_rejection, ApiRejection};

use super::connection::Connection;
use super::CALL_TIMEOUT;

/// Asks each node in turn for a backup, proving knowledge of `secret`, and
/// returns the first snapshot file served. Backups only come from the
/// primary, so a backup node's redirect moves on to the next address.
///
/// # Errors
///
/// One line per address with the reason it served no backup.
pub async fn fetch_backup<C: Connector>(
    connector: &C,
    addresses: &[String],
    secret: &[u8],
) -> Result<Vec<u8>, String> {
    let mut failures = Vec::new();
    for address in addresses {
        match fetch_from(connector, address, secret).await {
            Ok(bytes) => return Ok(bytes),
            Err(reason) => failures.push(format!("{address}: {reason}")),
        }
    }
    Err(format!(
        "no node served a backup:\n  {}",
        failures.join("\n  ")
    ))
}

async fn fetch_from<C: Connector>(
    connector: &C,
    address: &str,
    secret: &[u8],
) -> Result<Vec<u8>, String> {
    let connection = Connection::open(connector, address, CALL_TIMEOUT).await?;
    let call = async {
        let challenge = connection.gateway.backup_challenge_request().send();
        let response = challenge.promise.await?;
        let nonce = response.get()?.get_nonce()?.to_vec();
        let mut request = connection.gateway.backup_request();
        request.get().set_nonce(&nonce);
        request.get().set_mac(&backup_mac(secret, &nonce));
        let response = request.send().promise.await?;
        let result = response.get()?.get_result()?;
        let outcome: Result<Vec<u8>, ApiRejection> = match result.which()? {
            backup_result::Which::Snapshot(bytes) => Ok(bytes?.to_vec()),
            backup_result::Which::Rejected(rejection) => Err(read_rejection(rejection?)?),
        };
        Ok::<_, capnp::Error>(outcome)
    };
    // A large snapshot takes longer than one ordinary call.
    let deadline = CALL_TIMEOUT * 10;
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(Ok(bytes))) => Ok(bytes),
        Ok(Ok(Err(rejection))) => Err(rejection.to_string()),
        Ok(Err(error)) => Err(format!("the backup call failed: {error}")),
        Err(_) => Err(format!("the backup call timed out after {deadline:?}")),
    }
}
