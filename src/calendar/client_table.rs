//! The client table: the last request number and its outcome per client, so a
//! retried request returns its first outcome instead of applying twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::types::{Outcome, Rejection, Request};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClientTable {
    /// Last applied request of each client id; replaced by each newer request.
    entries: BTreeMap<u64, ClientEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ClientEntry {
    seq: u64,
    outcome: Outcome,
}

impl ClientTable {
    /// Returns the outcome to send without applying: the stored outcome for a
    /// repeat of the last request, `StaleRequest` for an older one, and `None`
    /// for a new request, which the caller applies and then records.
    pub fn check(&self, request: &Request) -> Option<Outcome> {
        let entry = self.entries.get(&request.client_id)?;
        if request.seq == entry.seq {
            return Some(entry.outcome.clone());
        }
        if request.seq < entry.seq {
            return Some(Outcome::Rejected(Rejection::StaleRequest {
                client_id: request.client_id,
                seq: request.seq,
                last_seq: entry.seq,
            }));
        }
        None
    }

    pub fn record(&mut self, request: &Request, outcome: Outcome) {
        let entry = ClientEntry {
            seq: request.seq,
            outcome,
        };
        self.entries.insert(request.client_id, entry);
    }

    pub fn last(&self, client_id: u64) -> Option<(u64, &Outcome)> {
        let entry = self.entries.get(&client_id)?;
        Some((entry.seq, &entry.outcome))
    }
}
