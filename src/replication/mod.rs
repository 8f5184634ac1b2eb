//! Viewstamped Replication as a pure state machine.
//!
//! The protocol follows "Viewstamped Replication Revisited" (Liskov and
//! Cowling, MIT 2012): normal operation (prepare, prepare-ok, commit
//! heartbeats), view change (start-view-change, do-view-change, start-view),
//! state transfer (get-state, new-state) and recovery (recovery and
//! recovery-response with a nonce). A cluster has n = 2f + 1 replicas and the
//! primary of view v is replica `v mod n`.
//!
//! [`Replica`] owns no I/O, clock or thread. The shell feeds it messages,
//! logical ticks, client requests and read requests, and carries out each
//! returned [`Output`] in this order:
//!
//! 1. Persist: truncate the log after `truncate_after`, append `append`, then
//!    store `store_view`. All three must be durable before step 2.
//! 2. Apply the entries in `commit` to the state machine, in order.
//! 3. Send the messages in `send`, and reply to the clients named in
//!    `accepted`, `rejected`, `reads_ready` and `reads_failed` (a ready read is served from the state
//!    after step 2).
//!
//! One deviation from that paper: the log and the view number live on disk
//! (as in TigerBeetle), so a replica that restarts with an intact disk rejoins
//! in its persisted view without the recovery protocol. A replica whose disk
//! is empty or damaged runs recovery and neither acknowledges nor votes until
//! it is back in normal status.
//!
//! Compaction: the shell takes snapshots of its state machine and calls
//! [`Replica::compact`], after which the log starts after the snapshot's op
//! ([`Replica::op_base`]). View-change messages then carry only the log after
//! the sender's snapshot op. A backup whose log ends before the primary's
//! snapshot op gets `NewSnapshot` in place of `NewState`, and its replica
//! then sets [`Output::fetch_snapshot`]. The shell streams that snapshot in
//! chunks (`SnapshotRead`, `SnapshotChunk`, which the replica never
//! handles), installs it, and calls [`Replica::install_snapshot`]. The log
//! suffix then follows by the usual get-state.

mod message;
mod normal;
mod reads;
mod recovery;
mod replica;
mod snapshot;
mod view_change;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod simulation;

pub use message::{Entry, Message, PrimaryState};
pub use replica::Replica;
pub use snapshot::SnapshotFetch;

use serde::{Deserialize, Serialize};

/// The maximum payload bytes of the entries in one prepare or new-state
/// message: 16 MiB, a quarter of the peer port's 64 MiB traversal limit
/// (`rpc::serve::TRAVERSAL_LIMIT_WORDS`). Cap'n Proto adds a few words of
/// framing per entry, so a full batch of 1024 entries stays far below the
/// limit, and one request of the largest loggable size (8 MiB) always fits.
pub const PREPARE_BYTES_MAX: usize = 16 << 20;

/// Returns how many entries, taken in order, fit in one message: the
/// longest prefix of `payload_lengths` that adds up to at most
/// `bytes_max`, but at least one entry when there is any.
pub(crate) fn count_within_bytes(
    payload_lengths: impl IntoIterator<Item = usize>,
    bytes_max: usize,
) -> usize {
    let mut total = 0usize;
    let mut count = 0;
    for length in payload_lengths {
        total = total.saturating_add(length);
        if count > 0 && total > bytes_max {
            break;
        }
        count += 1;
    }
    count
}

/// Index of a replica in the cluster, from 0 to `replica_count - 1`.
pub type ReplicaId = u8;

/// Shell-chosen handle of one client request, echoed in [`Accepted`] and in
/// [`Output::rejected`] so the shell can find the waiting client.
pub type RequestRef = u64;

/// Shell-chosen handle of one linearizable read, echoed in
/// [`Output::reads_ready`] and [`Output::reads_failed`].
pub type ReadRef = u64;

/// Static settings of one replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Number of replicas n: odd and at least 1, at most 255.
    pub replica_count: usize,
    /// This replica's index, below `replica_count`.
    pub self_id: ReplicaId,
    /// Ticks between the primary's commit heartbeats (and the resends of
    /// view-change messages). At least 1.
    pub heartbeat_ticks: u64,
    /// Inclusive range from which each view-change timeout is drawn, in ticks.
    /// The minimum must exceed `heartbeat_ticks`, so that a backup does not
    /// suspect a primary that heartbeats on time.
    pub view_change_timeout_ticks: (u64, u64),
    /// Seed of the random source for timeouts and recovery nonces. The shell
    /// should vary it per start of the process (for example mix in a boot
    /// counter), because a recovering replica that reused the nonce of an
    /// earlier recovery could accept a stale recovery-response.
    pub seed: u64,
}

/// Configuration or disk contents with which a replica cannot start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("replica_count {0} is invalid: use an odd number from 1 to 255")]
    ReplicaCount(usize),
    #[error("self_id {self_id} is out of range: use a value below replica_count {replica_count}")]
    SelfId {
        self_id: ReplicaId,
        replica_count: usize,
    },
    #[error("heartbeat_ticks is 0: use at least 1")]
    HeartbeatTicks,
    #[error(
        "view_change_timeout_ticks ({min}, {max}) is invalid: use min <= max \
         and min greater than heartbeat_ticks {heartbeat_ticks}"
    )]
    ViewChangeTimeout {
        min: u64,
        max: u64,
        heartbeat_ticks: u64,
    },
    #[error(
        "a single-replica cluster cannot recover a lost disk, because no other \
         replica holds the log: restore the data directory from a backup"
    )]
    SingleReplicaLostDisk,
    #[error("durable state is invalid ({0}): start with intact = false to run recovery")]
    Durable(String),
}

/// The replica's status, with the names of Viewstamped Replication Revisited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Processing requests (primary) or prepares (backup) in the current view.
    Normal,
    /// Between views: either running a view change, or waiting for the log of
    /// a view that another replica has already started.
    ViewChange,
    /// Rebuilding a lost disk from the other replicas.
    Recovering,
}

/// The view numbers a replica keeps on disk beside its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewRecord {
    /// The highest view this replica has entered. Persisted before the
    /// replica sends any message of that view.
    pub view: u64,
    /// The last view in which this replica was in normal status; the log on
    /// disk is the log of that view. Never above `view`.
    pub log_view: u64,
}

/// The replica state the shell read from disk at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durable {
    /// The persisted [`ViewRecord::view`].
    pub view: u64,
    /// The persisted [`ViewRecord::log_view`].
    pub log_view: u64,
    /// The op of the snapshot the shell loaded into its state machine, 0
    /// without one. Kept on a lost disk too, because a snapshot is committed
    /// state.
    pub op_base: u64,
    /// The log after `op_base`: ops `op_base + 1`, ... without gaps.
    pub entries: Vec<Entry>,
    /// The op up to which the shell's state machine has applied; the
    /// replica does not emit those entries again. Entries after it may be
    /// uncommitted. At least `op_base`.
    pub commit: u64,
    /// False when the disk was empty or damaged, so recovery must run. A
    /// disk counts as intact only once it contains a view record: a brand-new
    /// cluster formats its disks as [`Durable::formatted`] with the record
    /// {0, 0}, and a replacement disk gets one only from the last step of
    /// recovery's output, so a crash during recovery runs it again.
    pub intact: bool,
    /// True when the disk contains the state of an earlier run of this
    /// replica, false on a new cluster's freshly formatted disk.
    pub restarted: bool,
}

impl Durable {
    /// Returns the state of a freshly formatted disk of a new cluster.
    pub fn formatted() -> Durable {
        Durable {
            view: 0,
            log_view: 0,
            op_base: 0,
            entries: Vec::new(),
            commit: 0,
            intact: true,
            restarted: false,
        }
    }

    /// Returns the state of an empty or damaged disk of an existing replica.
    pub fn lost() -> Durable {
        Durable {
            intact: false,
            restarted: true,
            ..Durable::formatted()
        }
    }
}

/// The reason this replica could not take a request or serve a read, with
/// the primary it believes in when it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Redirect {
    /// This replica is a backup of `view`; send to `primary` instead.
    NotPrimary { view: u64, primary: ReplicaId },
    /// This replica is not in normal status, so it cannot name a primary.
    NotNormal { view: u64, status: Status },
    /// This primary did not hear from f backups within the timeout after the
    /// read arrived, so it may have been replaced. Retry later or elsewhere.
    Unconfirmed { view: u64 },
}

/// A request the primary took, and the log position it was given. The request
/// succeeds when an entry with this view and op commits. If an entry of
/// another view commits at that op, a view change dropped the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub request: RequestRef,
    pub view: u64,
    pub op: u64,
}

/// Effects of one input, to carry out in the order described in the module
/// documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Drop every log entry after this op before appending.
    pub truncate_after: Option<u64>,
    /// Entries to append to the log, in op order.
    pub append: Vec<Entry>,
    /// View numbers to store after the log changes.
    pub store_view: Option<ViewRecord>,
    /// Messages to send once the three fields above are durable.
    pub send: Vec<(ReplicaId, Message)>,
    /// Newly committed entries, in op order, to apply to the state machine.
    pub commit: Vec<Entry>,
    /// Requests given an op number by this primary.
    pub accepted: Vec<Accepted>,
    /// Requests this replica cannot take, with the primary it believes in.
    pub rejected: Vec<(RequestRef, Redirect)>,
    /// Reads that may now be served from the state machine.
    pub reads_ready: Vec<ReadRef>,
    /// Reads this replica cannot serve.
    pub reads_failed: Vec<(ReadRef, Redirect)>,
    /// A snapshot the shell must fetch from a peer and then pass to
    /// [`Replica::install_snapshot`], because the log this replica lacks is
    /// compacted on the peer.
    pub fetch_snapshot: Option<SnapshotFetch>,
}

impl Output {
    /// Records a log truncation after `after`, dropping entries appended
    /// earlier in this output that it removes.
    fn truncate_log(&mut self, after: u64) {
        match self.append.first() {
            Some(first) if first.op <= after + 1 => self.append.retain(|entry| entry.op <= after),
            _ => {
                self.append.clear();
                let after = self
                    .truncate_after
                    .map_or(after, |earlier| earlier.min(after));
                self.truncate_after = Some(after);
            }
        }
    }

    /// Returns true when this output changes nothing and sends nothing.
    pub fn is_empty(&self) -> bool {
        *self == Output::default()
    }
}

impl Config {
    /// Returns f, the number of replicas that may fail: n = 2f + 1.
    pub fn max_faulty(&self) -> usize {
        (self.replica_count - 1) / 2
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let count = self.replica_count;
        if count == 0 || count.is_multiple_of(2) || count > usize::from(ReplicaId::MAX) {
            return Err(ConfigError::ReplicaCount(count));
        }
        if usize::from(self.self_id) >= count {
            return Err(ConfigError::SelfId {
                self_id: self.self_id,
                replica_count: count,
            });
        }
        if self.heartbeat_ticks == 0 {
            return Err(ConfigError::HeartbeatTicks);
        }
        let (min, max) = self.view_change_timeout_ticks;
        if min > max || min <= self.heartbeat_ticks {
            return Err(ConfigError::ViewChangeTimeout {
                min,
                max,
                heartbeat_ticks: self.heartbeat_ticks,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(op: u64) -> Entry {
        Entry {
            view: 0,
            op,
            payload: vec![op as u8],
        }
    }

    fn config() -> Config {
        Config {
            replica_count: 3,
            self_id: 0,
            heartbeat_ticks: 2,
            view_change_timeout_ticks: (10, 20),
            seed: 1,
        }
    }

    #[test]
    fn count_within_bytes_cases() {
        let cases: [(&[usize], usize, usize); 6] = [
            (&[], 10, 0),
            (&[4, 4, 4], 10, 2),
            (&[4, 6, 1], 10, 2),
            (&[11, 1], 10, 1),
            (&[0, 0, 10, 0], 10, 4),
            (&[usize::MAX, 1], 10, 1),
        ];
        for (lengths, bytes_max, expected) in cases {
            let count = count_within_bytes(lengths.iter().copied(), bytes_max);
            assert_eq!(count, expected, "lengths {lengths:?} within {bytes_max}");
        }
    }

    #[test]
    fn config_valid_accepted() {
        assert_eq!(config().validate(), Ok(()));
        assert_eq!(config().max_faulty(), 1);
    }

    #[test]
    fn config_even_count_rejected() {
        let config = Config {
            replica_count: 4,
            ..config()
        };
        assert_eq!(config.validate(), Err(ConfigError::ReplicaCount(4)));
    }

    #[test]
    fn config_self_id_out_of_range() {
        let config = Config {
            self_id: 3,
            ..config()
        };
        assert!(matches!(config.validate(), Err(ConfigError::SelfId { .. })));
    }

    #[test]
    fn config_timeout_below_heartbeat() {
        let config = Config {
            view_change_timeout_ticks: (2, 20),
            ..config()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::ViewChangeTimeout { .. })
        ));
        let config = Config {
            heartbeat_ticks: 0,
            ..config
        };
        assert_eq!(config.validate(), Err(ConfigError::HeartbeatTicks));
    }

    #[test]
    fn output_truncate_drops_appended() {
        let mut output = Output {
            append: vec![entry(4), entry(5), entry(6)],
            ..Output::default()
        };
        output.truncate_log(4);
        assert_eq!(output.append, vec![entry(4)]);
        assert_eq!(output.truncate_after, None);
    }

    #[test]
    fn output_truncate_below_appended() {
        let mut output = Output::default();
        output.truncate_log(5);
        output.append = vec![entry(6)];
        output.truncate_log(3);
        assert!(output.append.is_empty());
        assert_eq!(output.truncate_after, Some(3));
    }
}
