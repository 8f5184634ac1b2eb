//! The client table: the last request number and its outcome per client, so a
//! retried request returns its first outcome instead of applying twice.

use imbl::OrdMap;

use serde::{Deserialize, Serialize};

use super::types::{Outcome, Rejection, Request};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClientTable {
    /// Last applied request of each client id; replaced by each newer request.
    // NOTE: entries are never removed, so the table grows by one entry per
    // client id ever seen; expiring idle clients needs a time-based rule.
    entries: OrdMap<u64, ClientEntry>,
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

#[cfg(test)]
mod tests {
    use super::super::state::Calendar;
    use super::super::test_support::{public, schedule, Harness, MONDAY};
    use super::super::types::{Effect, Outcome, Rejection, Request};

    fn request(harness: &Harness, client_id: u64, seq: u64, title: &str) -> Request {
        Request {
            client_id,
            seq,
            now_ms: harness.now_ms,
            command: schedule("alice", public(title, MONDAY + seq as i64 * 60, 30)),
        }
    }

    #[test]
    fn repeat_returns_stored_outcome() {
        let mut harness = Harness::with_users(&["alice"]);
        let first = request(&harness, 7, 1, "Once");
        let outcome = harness.calendar.apply(&first);
        assert_eq!(
            outcome,
            Outcome::Done(Effect::Scheduled {
                event_id: 1,
                version: 1
            })
        );
        let state = harness.calendar.clone();
        assert_eq!(harness.calendar.apply(&first), outcome);
        assert_eq!(harness.calendar, state, "the repeat changed the state");
        assert_eq!(harness.calendar.event_count(), 1);
        assert_eq!(harness.calendar.last_request(7), Some((1, &outcome)));
    }

    #[test]
    fn repeated_rejection_is_stored() {
        let mut harness = Harness::with_users(&["alice"]);
        let mut bad = request(&harness, 7, 1, "Bad");
        bad.command = schedule("ghost", public("x", MONDAY, 30));
        let outcome = harness.calendar.apply(&bad);
        assert!(matches!(
            outcome,
            Outcome::Rejected(Rejection::NotFound { .. })
        ));
        assert_eq!(harness.calendar.last_request(7), Some((1, &outcome)));
        assert_eq!(harness.calendar.apply(&bad), outcome);
    }

    #[test]
    fn older_seq_is_stale() {
        let mut harness = Harness::with_users(&["alice"]);
        harness.calendar.apply(&request(&harness, 7, 5, "Five"));
        let state = harness.calendar.clone();
        let outcome = harness.calendar.apply(&request(&harness, 7, 4, "Four"));
        let expected = Rejection::StaleRequest {
            client_id: 7,
            seq: 4,
            last_seq: 5,
        };
        assert_eq!(outcome, Outcome::Rejected(expected));
        assert_eq!(harness.calendar, state, "a stale request changed the state");
        assert_eq!(harness.calendar.last_request(7).unwrap().0, 5);
    }

    #[test]
    fn clients_are_independent() {
        let mut harness = Harness::with_users(&["alice"]);
        harness.calendar.apply(&request(&harness, 7, 5, "Five"));
        let other = harness.calendar.apply(&request(&harness, 8, 1, "One"));
        assert!(matches!(other, Outcome::Done(_)));
        assert_eq!(harness.calendar.last_request(9), None);
    }

    #[test]
    fn table_survives_snapshot() {
        let mut harness = Harness::with_users(&["alice"]);
        let first = request(&harness, 7, 1, "Once");
        let outcome = harness.calendar.apply(&first);
        let mut restored = Calendar::decode(&harness.calendar.encode()).unwrap();
        assert_eq!(restored.last_request(7), Some((1, &outcome)));
        assert_eq!(restored.apply(&first), outcome);
        assert_eq!(restored.event_count(), 1);
    }
}
