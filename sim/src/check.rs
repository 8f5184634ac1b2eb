//! The checks run after every simulation, over the clients' history and the
//! final state of each live node. Each returns one line per violation.
//!
//! - [`convergence`] (CONV): live nodes' committed logs agree op for op,
//!   and nodes at the same commit number have equal calendar digests.
//!   (LAG) Every live node reached the same commit number.
//! - [`durability`] (DUR): every acknowledged write is in every live node's
//!   final state.
//! - [`exactly_once`] (ONCE): no request took effect twice, a rejected one
//!   took none, and a resent request got the first outcome back.
//! - [`linearizable_reads`] (LIN): no read returned a version older than a
//!   write acknowledged before the read began.
//! - [`crate::freshness::fresh_reads`] (STALE): every read, agenda, search
//!   and inbox shows the schedules, edits and deletes acknowledged before
//!   it began.
//! - [`liveness`] (LIVE): writes invoked after healing completed in time.
//! - [`notifications`] (NOTIFY): each client's stream delivered its user's
//!   notifications in order, each once, as the committed state has them.
//!
//! Election safety (ONE), views that go back (VIEW), nodes that take part
//! before they caught up (CATCHUP) and entries applied differently at one
//! op (APPLY) are sampled on every step by the harness instead.
//! Every written title is unique within a run, which lets a title stand for
//! the request that wrote it.

use std::collections::BTreeMap;
use std::time::Duration;

use almanac::calendar::EventView;

use crate::history::{Call, Delivery, NotificationSummary, Operation, Response};

/// The final state of one live node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    pub id: u8,
    pub role: String,
    pub view: u64,
    pub op: u64,
    pub commit: u64,
    /// SHA-256 of the node's whole calendar.
    pub digest: [u8; 32],
    /// Every event hosted by a simulated user, by id.
    pub events: BTreeMap<u64, EventView>,
    /// Every notification of each simulated user, by username.
    pub inboxes: BTreeMap<String, Vec<NotificationSummary>>,
    /// The committed log after the node's newest snapshot: (view,
    /// [`fingerprint`] of the payload) of op `log_base + 1 + index`. The ops
    /// up to `log_base` are compacted; the digest covers them.
    pub log: Vec<(u64, u64)>,
    pub log_base: u64,
}

/// FNV-1a hash of `bytes`: a short, stable stand-in for a log entry or a
/// trace in comparisons.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl NodeState {
    /// Formats the node's state as one line of the trace.
    pub fn summary(&self) -> String {
        let digest: String = self.digest[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!(
            "n{} {} view {} op {} commit {} events {} digest {digest}",
            self.id,
            self.role,
            self.view,
            self.op,
            self.commit,
            self.events.len()
        )
    }
}

/// CONV and LAG: all live nodes hold the same committed log, calendar and
/// commit number.
pub fn convergence(nodes: &[NodeState]) -> Vec<String> {
    let Some(first) = nodes.first() else {
        return vec!["LAG: no node is live at the end of the run".to_owned()];
    };
    let mut violations = Vec::new();
    for node in &nodes[1..] {
        let at = |state: &NodeState, op: u64| state.log[(op - state.log_base - 1) as usize];
        let from = first.log_base.max(node.log_base) + 1;
        let through =
            (first.log_base + first.log.len() as u64).min(node.log_base + node.log.len() as u64);
        let differing = (from..=through).find(|&op| at(first, op) != at(node, op));
        if let Some(op) = differing {
            violations.push(format!(
                "CONV: committed op {op} differs: n{} has (view, entry) {:?}, n{} has {:?}",
                first.id,
                at(first, op),
                node.id,
                at(node, op)
            ));
        }
        if node.commit != first.commit {
            violations.push(format!(
                "LAG: {} has another commit number than {}",
                node.summary(),
                first.summary()
            ));
        } else if node.digest != first.digest {
            violations.push(format!(
                "CONV: {} has another calendar than {}",
                node.summary(),
                first.summary()
            ));
        }
    }
    violations
}

/// Ids of the events that a delete may have removed: every delete that was
/// not rejected.
fn maybe_deleted(history: &[Operation]) -> std::collections::BTreeSet<u64> {
    history
        .iter()
        .filter_map(|operation| match operation.call {
            Call::Delete { event_id } if !operation.failed() => Some(event_id),
            _ => None,
        })
        .collect()
}

/// DUR: each acknowledged schedule or edit is present on every live node,
/// at its version or a later one, hosted by its user.
pub fn durability(history: &[Operation], nodes: &[NodeState]) -> Vec<String> {
    let deleted = maybe_deleted(history);
    let mut violations = Vec::new();
    for operation in history {
        let Some((event_id, version)) = operation.written() else {
            continue;
        };
        if deleted.contains(&event_id) {
            continue;
        }
        let title = match &operation.call {
            Call::Schedule { title, .. } | Call::Resend { title } | Call::Edit { title, .. } => {
                title
            }
            _ => continue,
        };
        for node in nodes {
            let Some(event) = node.events.get(&event_id) else {
                violations.push(format!(
                    "DUR: event {event_id} is missing on n{}; acknowledged by {operation}",
                    node.id
                ));
                continue;
            };
            if !event.host.eq_ignore_ascii_case(&operation.user) || event.version < version {
                violations.push(format!(
                    "DUR: n{} has event {event_id} at version {} hosted by {}; \
                     acknowledged by {operation}",
                    node.id, event.version, event.host
                ));
            } else if event.version == version && event.title != *title {
                violations.push(format!(
                    "DUR: n{} has event {event_id} version {version} titled {:?}; \
                     acknowledged by {operation}",
                    node.id, event.title
                ));
            }
        }
    }
    violations
}

/// ONCE: no title appears twice on a node, a rejected schedule left no
/// event, and a resent schedule returned the outcome of the first send.
pub fn exactly_once(history: &[Operation], nodes: &[NodeState]) -> Vec<String> {
    let mut violations = Vec::new();
    for node in nodes {
        let mut by_title: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for event in node.events.values() {
            by_title.entry(&event.title).or_default().push(event.id);
        }
        for (title, ids) in by_title.iter().filter(|(_, ids)| ids.len() > 1) {
            violations.push(format!(
                "ONCE: n{} has {} events titled {title:?}: {ids:?}",
                node.id,
                ids.len()
            ));
        }
        for operation in history.iter().filter(|operation| operation.failed()) {
            let Call::Schedule { title, .. } = &operation.call else {
                continue;
            };
            if by_title.contains_key(title.as_str()) {
                violations.push(format!(
                    "ONCE: n{} has an event titled {title:?} although {operation}",
                    node.id
                ));
            }
        }
    }
    violations.extend(resent_outcomes(history));
    violations
}

/// A resend must get the response of the send it repeats.
fn resent_outcomes(history: &[Operation]) -> Vec<String> {
    let mut first: BTreeMap<(&str, &str), &Operation> = BTreeMap::new();
    let mut violations = Vec::new();
    for operation in history {
        match &operation.call {
            Call::Schedule { title, .. } => {
                first.insert((&operation.client, title), operation);
            }
            Call::Resend { title } => {
                let Some(original) = first.get(&(operation.client.as_str(), title.as_str())) else {
                    violations.push(format!("ONCE: {operation} repeats no earlier schedule"));
                    continue;
                };
                let (Some(sent), Some(resent)) = (original.written(), operation.written()) else {
                    continue;
                };
                if sent != resent {
                    violations.push(format!(
                        "ONCE: {operation} got another outcome than the first send: {original}"
                    ));
                }
            }
            _ => {}
        }
    }
    violations
}

/// LIN: a read of an event returns at least the version of every write to
/// it acknowledged before the read began, with that version's title.
pub fn linearizable_reads(history: &[Operation]) -> Vec<String> {
    // Acknowledged writes per event: (completed, version, title).
    let mut writes: BTreeMap<u64, Vec<(Duration, u64, &str)>> = BTreeMap::new();
    for operation in history {
        let (Some((event_id, version)), Some(completed)) =
            (operation.written(), operation.completed)
        else {
            continue;
        };
        let title = match &operation.call {
            Call::Schedule { title, .. } | Call::Resend { title } | Call::Edit { title, .. } => {
                title
            }
            _ => continue,
        };
        writes
            .entry(event_id)
            .or_default()
            .push((completed, version, title));
    }
    let mut violations = Vec::new();
    for operation in history {
        let (Call::Read { event_id }, Some(Response::Read { version, title })) =
            (&operation.call, &operation.response)
        else {
            continue;
        };
        let known = writes.get(event_id).map(Vec::as_slice).unwrap_or_default();
        for (completed, written, written_title) in known {
            if *completed < operation.invoked && *written > *version {
                violations.push(format!(
                    "LIN: {operation} is older than version {written}, acknowledged at \
                     {completed:?}"
                ));
            }
            if *written == *version && *written_title != title.as_str() {
                violations.push(format!(
                    "LIN: {operation} differs from version {written} as written \
                     ({written_title:?})"
                ));
            }
        }
    }
    violations
}

/// LIVE: every write invoked at or after `healed` got a domain outcome (it
/// took effect, or the calendar rejected it) within `bound` of its
/// invocation.
pub fn liveness(history: &[Operation], healed: Duration, bound: Duration) -> Vec<String> {
    let mut violations = Vec::new();
    for operation in history {
        let is_write = matches!(
            operation.call,
            Call::Schedule { .. } | Call::Resend { .. } | Call::Edit { .. } | Call::Delete { .. }
        );
        if !is_write || operation.invoked < healed {
            continue;
        }
        let in_time = operation
            .completed
            .is_some_and(|completed| completed - operation.invoked <= bound);
        let answered = matches!(
            operation.response,
            Some(Response::Written { .. } | Response::Deleted | Response::Rejected(_))
        );
        if !answered || !in_time {
            violations.push(format!(
                "LIVE: {operation} did not complete within {bound:?} after healing at \
                 {healed:?}"
            ));
        }
    }
    violations
}

/// NOTIFY: each client's stream delivered notifications with consecutive
/// sequence numbers (in order, none twice, none skipped), each equal in kind
/// and event to the committed notification of that number on the first
/// live node.
// NOTE: completeness is not checked: a stream may still be catching up
// when the run ends, so a client may have received fewer notifications than
// its user has.
pub fn notifications(
    deliveries: &BTreeMap<String, Vec<Delivery>>,
    nodes: &[NodeState],
) -> Vec<String> {
    let mut violations = Vec::new();
    for (client, received) in deliveries {
        for pair in received.windows(2) {
            if pair[1].seq != pair[0].seq + 1 {
                violations.push(format!(
                    "NOTIFY: {client} received notification {} of {} at {:?} after {} at {:?}",
                    pair[1].seq, pair[1].user, pair[1].at, pair[0].seq, pair[0].at
                ));
            }
        }
        let Some(node) = nodes.first() else {
            continue;
        };
        for delivery in received {
            let committed = node
                .inboxes
                .get(&delivery.user)
                .and_then(|inbox| inbox.iter().find(|(seq, _, _)| *seq == delivery.seq));
            let expected = (delivery.seq, delivery.kind, delivery.event_id);
            if committed != Some(&expected) {
                violations.push(format!(
                    "NOTIFY: {client} received {expected:?} for {} at {:?}, but n{} has {committed:?}",
                    delivery.user, delivery.at, node.id
                ));
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use almanac::calendar::{NotificationKind, Rejection, Timing, Visibility};

    use super::*;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn operation(call: Call, invoked: u64, completed: u64, response: Response) -> Operation {
        Operation {
            client: "q1".into(),
            user: "alice".into(),
            call,
            invoked: at(invoked),
            completed: Some(at(completed)),
            response: Some(response),
        }
    }

    fn schedule(title: &str, event_id: u64) -> Operation {
        operation(
            Call::Schedule {
                title: title.into(),
                start: 0,
                public: false,
            },
            0,
            10,
            Response::Written {
                event_id,
                version: 1,
            },
        )
    }

    fn event(id: u64, version: u64, title: &str) -> EventView {
        EventView {
            id,
            version,
            title: title.into(),
            description: String::new(),
            start: 0,
            duration_minutes: 30,
            zone: "UTC".into(),
            host: "alice".into(),
            visibility: Visibility::Private { guests: Vec::new() },
            recurrence: None,
            responses: Vec::new(),
            timing: Timing::Zoned,
        }
    }

    fn node(id: u8, events: &[EventView]) -> NodeState {
        NodeState {
            id,
            role: "Backup".into(),
            view: 1,
            op: 5,
            commit: 5,
            digest: [id; 32],
            events: events.iter().map(|e| (e.id, e.clone())).collect(),
            inboxes: BTreeMap::new(),
            log: Vec::new(),
            log_base: 0,
        }
    }

    #[test]
    fn convergence_flags_other_digest() {
        let a = node(1, &[]);
        let mut b = node(2, &[]);
        assert_eq!(convergence(&[a.clone(), b.clone()]).len(), 1);
        b.digest = a.digest;
        assert!(convergence(&[a.clone(), b.clone()]).is_empty());
        b.commit = 4;
        assert_eq!(convergence(&[a, b]).len(), 1);
    }

    #[test]
    fn convergence_needs_a_live_node() {
        assert_eq!(convergence(&[]).len(), 1);
    }

    #[test]
    fn durability_flags_missing_event() {
        let history = [schedule("t1", 1), schedule("t2", 2)];
        let nodes = [
            node(1, &[event(1, 1, "t1"), event(2, 1, "t2")]),
            node(2, &[event(1, 1, "t1")]),
        ];
        let violations = durability(&history, &nodes);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(
            violations[0].contains("event 2 is missing on n2"),
            "{violations:?}"
        );
    }

    #[test]
    fn durability_flags_wrong_title() {
        let nodes = [node(1, &[event(1, 1, "other")])];
        assert_eq!(durability(&[schedule("t1", 1)], &nodes).len(), 1);
    }

    #[test]
    fn durability_accepts_later_version() {
        let nodes = [node(1, &[event(1, 2, "edited")])];
        assert!(durability(&[schedule("t1", 1)], &nodes).is_empty());
    }

    #[test]
    fn durability_ignores_unknown_outcome() {
        let mut lost = schedule("t1", 1);
        lost.response = Some(Response::Unknown("timed out".into()));
        assert!(durability(&[lost], &[node(1, &[])]).is_empty());
    }

    #[test]
    fn exactly_once_flags_duplicate_title() {
        let nodes = [node(1, &[event(1, 1, "t1"), event(2, 1, "t1")])];
        let violations = exactly_once(&[], &nodes);
        assert_eq!(violations.len(), 1, "{violations:?}");
    }

    #[test]
    fn exactly_once_flags_rejected_but_present() {
        let mut rejected = schedule("t1", 1);
        rejected.response = Some(Response::Rejected(Rejection::Conflict {
            slots: Vec::new(),
        }));
        let nodes = [node(1, &[event(1, 1, "t1")])];
        assert_eq!(exactly_once(&[rejected], &nodes).len(), 1);
    }

    #[test]
    fn exactly_once_flags_other_resend_outcome() {
        let resend = |event_id| {
            operation(
                Call::Resend { title: "t1".into() },
                20,
                30,
                Response::Written {
                    event_id,
                    version: 1,
                },
            )
        };
        let nodes = [node(1, &[event(1, 1, "t1")])];
        assert!(exactly_once(&[schedule("t1", 1), resend(1)], &nodes).is_empty());
        assert_eq!(
            exactly_once(&[schedule("t1", 1), resend(2)], &nodes).len(),
            1
        );
        assert_eq!(exactly_once(&[resend(1)], &nodes).len(), 1);
    }

    fn read(invoked: u64, version: u64, title: &str) -> Operation {
        operation(
            Call::Read { event_id: 1 },
            invoked,
            invoked + 5,
            Response::Read {
                version,
                title: title.into(),
            },
        )
    }

    fn edit(completed: u64, version: u64, title: &str) -> Operation {
        operation(
            Call::Edit {
                event_id: 1,
                version: version - 1,
                title: title.into(),
            },
            completed - 5,
            completed,
            Response::Written {
                event_id: 1,
                version,
            },
        )
    }

    #[test]
    fn linearizable_reads_flag_stale_read() {
        let history = [
            schedule("Room 1", 1),
            edit(50, 2, "Room 7"),
            read(60, 1, "Room 1"),
        ];
        let violations = linearizable_reads(&history);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(
            violations[0].contains("older than version 2"),
            "{violations:?}"
        );
    }

    #[test]
    fn linearizable_reads_allow_concurrent_read() {
        let history = [
            schedule("Room 1", 1),
            edit(50, 2, "Room 7"),
            read(40, 1, "Room 1"),
        ];
        assert!(linearizable_reads(&history).is_empty());
    }

    #[test]
    fn linearizable_reads_flag_wrong_title() {
        let history = [schedule("Room 1", 1), read(60, 1, "Room 9")];
        assert_eq!(linearizable_reads(&history).len(), 1);
    }

    #[test]
    fn liveness_flags_slow_write() {
        let slow = operation(
            Call::Schedule {
                title: "t".into(),
                start: 0,
                public: false,
            },
            1_000,
            20_000,
            Response::Written {
                event_id: 1,
                version: 1,
            },
        );
        let history = [slow];
        assert_eq!(liveness(&history, at(500), at(5_000)).len(), 1);
        assert!(liveness(&history, at(2_000), at(5_000)).is_empty());
        assert!(liveness(&history, at(500), at(30_000)).is_empty());
    }

    #[test]
    fn liveness_flags_unanswered_write() {
        let mut lost = schedule("t", 1);
        lost.response = None;
        lost.completed = None;
        assert_eq!(liveness(&[lost], at(0), at(5_000)).len(), 1);
    }

    #[test]
    fn convergence_flags_differing_log_entry() {
        let mut a = node(1, &[]);
        let mut b = node(2, &[]);
        b.digest = a.digest;
        a.log = vec![(0, 7), (0, 8)];
        b.log = vec![(0, 7), (1, 9)];
        let violations = convergence(&[a.clone(), b.clone()]);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(
            violations[0].starts_with("CONV: committed op 2"),
            "{violations:?}"
        );
        b.log.truncate(1);
        assert!(
            convergence(&[a.clone(), b.clone()]).is_empty(),
            "a shorter prefix agrees"
        );
        b.log = vec![(1, 9)];
        b.log_base = 1;
        let violations = convergence(&[a.clone(), b.clone()]);
        assert!(
            violations[0].starts_with("CONV: committed op 2"),
            "ops line up after a compacted prefix: {violations:?}"
        );
        b.log = vec![(0, 8)];
        assert!(convergence(&[a, b]).is_empty(), "{violations:?}");
    }

    #[test]
    fn convergence_reports_lag_apart() {
        let a = node(1, &[]);
        let mut b = node(2, &[]);
        b.commit = 3;
        let violations = convergence(&[a, b]);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].starts_with("LAG:"), "{violations:?}");
    }

    #[test]
    fn durability_skips_deleted_event() {
        let delete = operation(Call::Delete { event_id: 1 }, 20, 30, Response::Deleted);
        assert!(durability(&[schedule("t1", 1), delete], &[node(1, &[])]).is_empty());
    }

    #[test]
    fn liveness_accepts_domain_rejection() {
        let mut rejected = schedule("t", 1);
        rejected.response = Some(Response::Rejected(Rejection::Conflict {
            slots: Vec::new(),
        }));
        assert!(liveness(&[rejected], at(0), at(5_000)).is_empty());
    }

    fn delivery(seq: u64, event_id: u64) -> Delivery {
        Delivery {
            user: "alice".into(),
            seq,
            kind: NotificationKind::Invited,
            event_id,
            at: at(seq),
        }
    }

    fn inbox_node(notifications: &[(u64, u64)]) -> NodeState {
        let mut state = node(1, &[]);
        let inbox = notifications
            .iter()
            .map(|&(seq, event_id)| (seq, NotificationKind::Invited, event_id))
            .collect();
        state.inboxes.insert("alice".into(), inbox);
        state
    }

    #[test]
    fn notifications_accept_consecutive() {
        let deliveries = BTreeMap::from([("q1".to_owned(), vec![delivery(2, 5), delivery(3, 6)])]);
        let nodes = [inbox_node(&[(1, 4), (2, 5), (3, 6)])];
        assert!(notifications(&deliveries, &nodes).is_empty());
    }

    #[test]
    fn notifications_flag_repeat_and_gap() {
        let repeat = BTreeMap::from([("q1".to_owned(), vec![delivery(1, 4), delivery(1, 4)])]);
        let nodes = [inbox_node(&[(1, 4), (2, 5), (3, 6)])];
        assert_eq!(notifications(&repeat, &nodes).len(), 1);
        let gap = BTreeMap::from([("q1".to_owned(), vec![delivery(1, 4), delivery(3, 6)])]);
        assert_eq!(notifications(&gap, &nodes).len(), 1);
    }

    #[test]
    fn notifications_flag_uncommitted() {
        let deliveries = BTreeMap::from([("q1".to_owned(), vec![delivery(1, 9)])]);
        let violations = notifications(&deliveries, &[inbox_node(&[(1, 4)])]);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("n1 has Some"), "{violations:?}");
    }
}
