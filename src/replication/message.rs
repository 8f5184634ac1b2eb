//! Log entries and the messages replicas exchange.

use serde::{Deserialize, Serialize};

/// One log entry: the view it was prepared in, its op number, and opaque
/// bytes (an encoded client request; the replica never looks inside).
///
/// Within one view the primary gives each op number to one entry only, so two
/// logs that hold an entry with the same op and view hold the same entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub view: u64,
    pub op: u64,
    pub payload: Vec<u8>,
}

/// The state a primary adds to its recovery-response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimaryState {
    /// The primary's snapshot op: `log` starts after it.
    pub base: u64,
    /// The primary's log after `base`.
    pub log: Vec<Entry>,
    /// The primary's commit number.
    pub commit: u64,
}

/// A message between replicas. Every message names the sender's view.
///
/// Do-view-change, start-view and recovery-response carry the sender's log
/// after its snapshot op (`base`), which stays short because the shell takes a
/// snapshot every few thousand committed ops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Primary to backups: append these consecutive entries.
    Prepare {
        view: u64,
        commit: u64,
        entries: Vec<Entry>,
    },
    /// Backup to primary: my log contains every op up to `op`, durably, and
    /// matches yours.
    PrepareOk { view: u64, op: u64 },
    /// Primary to backups: heartbeat with the commit number. `round` numbers
    /// the read barrier this heartbeat belongs to.
    Commit { view: u64, commit: u64, round: u64 },
    /// Backup to primary: reply to a commit heartbeat, with the backup's op
    /// number.
    CommitOk { view: u64, op: u64, round: u64 },
    /// Any replica to all: I suspect the primary of the previous view.
    StartViewChange { view: u64 },
    /// To the new primary: my log after `base`, the view it belongs to and
    /// my commit.
    DoViewChange {
        view: u64,
        log_view: u64,
        op: u64,
        base: u64,
        log: Vec<Entry>,
        commit: u64,
    },
    /// New primary to all: the log of the new view after `base`.
    StartView {
        view: u64,
        op: u64,
        base: u64,
        log: Vec<Entry>,
        commit: u64,
    },
    /// To a replica in normal status: send me your log after `op`.
    GetState { view: u64, op: u64 },
    /// Reply to get-state: the entries after `op`.
    NewState {
        view: u64,
        op: u64,
        entries: Vec<Entry>,
        commit: u64,
    },
    /// Reply to get-state when the entries after the requested op are
    /// compacted: fetch my snapshot at `op`, then ask for the log after it.
    NewSnapshot { view: u64, op: u64, commit: u64 },
    /// Shell to shell: send the bytes of your snapshot file at `op` from
    /// byte `offset`. The receiver pulls one chunk per read, which is the
    /// transfer's flow control.
    SnapshotRead { view: u64, op: u64, offset: u64 },
    /// Shell to shell: bytes of the snapshot file at `op` from `offset`, of a
    /// file `size` bytes long. Empty `data` with `size` 0 means the sender no
    /// longer has that snapshot.
    SnapshotChunk {
        view: u64,
        op: u64,
        size: u64,
        offset: u64,
        data: Vec<u8>,
    },
    /// Recovering replica to all. `view` is 0 because the replica lost it.
    Recovery { view: u64, nonce: u64 },
    /// Reply to recovery from a replica in normal status; the primary adds
    /// its log.
    RecoveryResponse {
        view: u64,
        nonce: u64,
        primary: Option<PrimaryState>,
    },
}

impl Message {
    /// Returns the view named in the message.
    pub fn view(&self) -> u64 {
        match self {
            Message::Prepare { view, .. }
            | Message::PrepareOk { view, .. }
            | Message::Commit { view, .. }
            | Message::CommitOk { view, .. }
            | Message::StartViewChange { view }
            | Message::DoViewChange { view, .. }
            | Message::StartView { view, .. }
            | Message::GetState { view, .. }
            | Message::NewState { view, .. }
            | Message::NewSnapshot { view, .. }
            | Message::SnapshotRead { view, .. }
            | Message::SnapshotChunk { view, .. }
            | Message::Recovery { view, .. }
            | Message::RecoveryResponse { view, .. } => *view,
        }
    }

    /// Returns the message's name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Prepare { .. } => "prepare",
            Message::PrepareOk { .. } => "prepare_ok",
            Message::Commit { .. } => "commit",
            Message::CommitOk { .. } => "commit_ok",
            Message::StartViewChange { .. } => "start_view_change",
            Message::DoViewChange { .. } => "do_view_change",
            Message::StartView { .. } => "start_view",
            Message::GetState { .. } => "get_state",
            Message::NewState { .. } => "new_state",
            Message::NewSnapshot { .. } => "new_snapshot",
            Message::SnapshotRead { .. } => "snapshot_read",
            Message::SnapshotChunk { .. } => "snapshot_chunk",
            Message::Recovery { .. } => "recovery",
            Message::RecoveryResponse { .. } => "recovery_response",
        }
    }
}

/// Checks entries a peer sent: ops consecutive from `first_op`, views never
/// decreasing and none above `view_max`. Returns the reason when they are not.
pub(super) fn check_entries(entries: &[Entry], first_op: u64, view_max: u64) -> Result<(), String> {
    let mut view_previous = 0;
    for (offset, entry) in entries.iter().enumerate() {
        let expected = first_op + offset as u64;
        if entry.op != expected {
            return Err(format!("entry op {} where op {expected} belongs", entry.op));
        }
        if entry.view < view_previous || entry.view > view_max {
            return Err(format!(
                "entry op {} has view {} outside {view_previous}..={view_max}",
                entry.op, entry.view
            ));
        }
        view_previous = entry.view;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(view: u64, op: u64) -> Entry {
        Entry {
            view,
            op,
            payload: Vec::new(),
        }
    }

    #[test]
    fn check_entries_accepts_consecutive() {
        let entries = [entry(0, 3), entry(1, 4), entry(1, 5)];
        assert_eq!(check_entries(&entries, 3, 1), Ok(()));
        assert_eq!(check_entries(&[], 9, 0), Ok(()));
    }

    #[test]
    fn check_entries_rejects_gap() {
        let entries = [entry(0, 3), entry(0, 5)];
        let error = check_entries(&entries, 3, 0).unwrap_err();
        assert!(error.contains("op 5 where op 4"), "{error}");
    }

    #[test]
    fn check_entries_rejects_view() {
        let decreasing = [entry(2, 1), entry(1, 2)];
        assert!(check_entries(&decreasing, 1, 2).is_err());
        let too_high = [entry(3, 1)];
        assert!(check_entries(&too_high, 1, 2).is_err());
    }

    #[test]
    fn message_view_and_kind() {
        let message = Message::StartViewChange { view: 7 };
        assert_eq!(message.view(), 7);
        assert_eq!(message.kind(), "start_view_change");
    }
}
