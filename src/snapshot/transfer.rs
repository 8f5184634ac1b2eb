//! The receiving side of a snapshot transfer.
//!
//! The receiver pulls the file one chunk at a time: each `SnapshotRead` gets
//! one `SnapshotChunk` in reply, and the receiver writes and syncs a chunk
//! before it reads the next. That is the flow control, because apart from a
//! read resent after a timeout only one chunk is in flight per transfer, so
//! a slow receiver never has chunks queued for it. The bytes received so far live in a partial file in the
//! data directory, so a restarted receiver resumes where it stopped. Every
//! node that took a snapshot at the same op wrote the same bytes, because the
//! state and its encoding are deterministic, so a transfer may also resume
//! from another sender.

use std::io;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::{FormatError, Snapshot};
use crate::replication::{Message, ReplicaId};
use crate::wal::{Disk, DiskFile};

/// The maximum bytes of snapshot data in one chunk: 256 KiB, small against
/// the peer port's message size limit and large enough that a 100 MiB
/// snapshot takes 400 round trips.
pub const CHUNK_BYTES: usize = 256 << 10;

/// Ticks without a reply after which the receiver sends its read again,
/// because the read or its reply may have been lost on a broken link.
pub const READ_RETRY_TICKS: u64 = 50;

/// The next step after a received chunk.
#[derive(Debug)]
pub enum Progress {
    /// Send this read next.
    Read(Message),
    /// The whole file arrived and passed its checks.
    Complete {
        bytes: Vec<u8>,
        snapshot: Box<Snapshot>,
    },
    /// The transfer cannot go on: the sender lacks the snapshot or the file
    /// failed its checks. The partial file is removed.
    Abandoned(String),
    /// The chunk did not belong to this transfer or was a duplicate.
    Ignored,
}

/// A snapshot this node is receiving.
#[derive(Debug)]
pub struct Incoming {
    /// The peer the chunks are read from.
    pub from: ReplicaId,
    /// The op of the snapshot.
    pub op: u64,
    partial: PathBuf,
    /// The number of bytes received and synced to the partial file.
    offset: u64,
    /// Ticks since the last read was sent.
    ticks_waiting: u64,
}

fn partial_name(op: u64) -> String {
    format!("transfer-{op:020}.partial")
}

impl Incoming {
    /// Starts or resumes the transfer of the snapshot at `op` from `from`
    /// into `dir`, removing partial files of other snapshots. Returns the
    /// transfer and its first read.
    pub fn start(
        disk: &impl Disk,
        dir: &Path,
        from: ReplicaId,
        op: u64,
        view: u64,
    ) -> io::Result<(Incoming, Message)> {
        let partial = dir.join(partial_name(op));
        for path in disk.list_dir(dir)? {
            let name = path.file_name().and_then(|name| name.to_str());
            let is_partial = name
                .is_some_and(|name| name.starts_with("transfer-") && name.ends_with(".partial"));
            if is_partial && path != partial {
                disk.remove_file(&path)?;
            }
        }
        let offset = match disk.file_len(&partial) {
            Ok(len) => len,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                disk.create_file(&partial)?;
                disk.sync_dir(dir)?;
                0
            }
            Err(error) => return Err(error),
        };
        info!(
            peer = from + 1,
            op,
            resume_at = offset,
            "fetching a snapshot"
        );
        let incoming = Incoming {
            from,
            op,
            partial,
            offset,
            ticks_waiting: 0,
        };
        let read = incoming.read(view);
        Ok((incoming, read))
    }

    /// Returns the read of the next chunk.
    fn read(&self, view: u64) -> Message {
        Message::SnapshotRead {
            view,
            op: self.op,
            offset: self.offset,
        }
    }

    /// Counts one tick, and returns the read to send again when its reply is
    /// overdue.
    pub fn on_tick(&mut self, view: u64) -> Option<Message> {
        self.ticks_waiting += 1;
        if self.ticks_waiting < READ_RETRY_TICKS {
            return None;
        }
        self.ticks_waiting = 0;
        Some(self.read(view))
    }

    /// Writes one chunk from `from` and returns what to do next.
    pub fn on_chunk(
        &mut self,
        disk: &impl Disk,
        chunk: ChunkRef<'_>,
        view: u64,
    ) -> io::Result<Progress> {
        if chunk.from != self.from || chunk.op != self.op || chunk.offset != self.offset {
            return Ok(Progress::Ignored);
        }
        if chunk.size == 0 {
            self.abandon(disk)?;
            return Ok(Progress::Abandoned(format!(
                "peer {} no longer has the snapshot at op {}",
                chunk.from + 1,
                self.op
            )));
        }
        let end = self.offset + chunk.data.len() as u64;
        if end > chunk.size || (chunk.data.is_empty() && end < chunk.size) {
            self.abandon(disk)?;
            return Ok(Progress::Abandoned(format!(
                "chunk at {} of {} bytes does not fit a file of {} bytes",
                self.offset,
                chunk.data.len(),
                chunk.size
            )));
        }
        let file = disk.open_file(&self.partial)?;
        file.write_all_at(chunk.data, self.offset)?;
        file.sync_data()?;
        self.offset = end;
        self.ticks_waiting = 0;
        if end < chunk.size {
            return Ok(Progress::Read(self.read(view)));
        }

        let bytes = disk.read_file(&self.partial)?;
        let checked = Snapshot::decode(&bytes).and_then(|snapshot| {
            if snapshot.op == self.op {
                Ok(snapshot)
            } else {
                Err(FormatError::Body {
                    reason: format!("the header names op {}, not {}", snapshot.op, self.op),
                })
            }
        });
        match checked {
            Ok(snapshot) => {
                disk.remove_file(&self.partial)?;
                Ok(Progress::Complete {
                    bytes,
                    snapshot: Box::new(snapshot),
                })
            }
            Err(reason) => {
                warn!(peer = self.from + 1, op = self.op, %reason, "received snapshot is invalid");
                self.abandon(disk)?;
                Ok(Progress::Abandoned(format!(
                    "the received snapshot is invalid: {reason}"
                )))
            }
        }
    }

    fn abandon(&self, disk: &impl Disk) -> io::Result<()> {
        match disk.remove_file(&self.partial) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

/// The fields of a received `SnapshotChunk`.
#[derive(Clone, Copy, Debug)]
pub struct ChunkRef<'a> {
    pub from: ReplicaId,
    pub op: u64,
    pub size: u64,
    pub offset: u64,
    pub data: &'a [u8],
}

/// Returns the reply to a `SnapshotRead` of the snapshot `file` at `op`
/// (None when this node has no snapshot at `op`).
pub fn reply_to_read(file: Option<&[u8]>, view: u64, op: u64, offset: u64) -> Message {
    let Some(bytes) = file else {
        return Message::SnapshotChunk {
            view,
            op,
            size: 0,
            offset,
            data: Vec::new(),
        };
    };
    let start = (offset as usize).min(bytes.len());
    let end = (start + CHUNK_BYTES).min(bytes.len());
    Message::SnapshotChunk {
        view,
        op,
        size: bytes.len() as u64,
        offset,
        data: bytes[start..end].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::test_support::{Harness, RANDOM_USERS};
    use crate::wal::StdDisk;

    /// Delivers every chunk of `file` to `incoming` through `reply_to_read`,
    /// stopping after `chunks_max` chunks.
    fn pump(
        incoming: &mut Incoming,
        first: Message,
        file: &[u8],
        chunks_max: usize,
    ) -> Option<Progress> {
        let mut read = first;
        for _ in 0..chunks_max {
            let Message::SnapshotRead { op, offset, .. } = read else {
                panic!("expected a read, got {read:?}");
            };
            let Message::SnapshotChunk {
                size, offset, data, ..
            } = reply_to_read(Some(file), 0, op, offset)
            else {
                unreachable!()
            };
            let chunk = ChunkRef {
                from: 1,
                op,
                size,
                offset,
                data: &data,
            };
            match incoming.on_chunk(&StdDisk, chunk, 0).unwrap() {
                Progress::Read(next) => read = next,
                other => return Some(other),
            }
        }
        None
    }

    /// Returns a snapshot file that spans several chunks.
    fn large_snapshot() -> Vec<u8> {
        let mut harness = Harness::with_users(&RANDOM_USERS);
        for i in 0..8000 {
            harness.register(&format!("padding{i:05}"));
        }
        Snapshot::encode(77, &harness.calendar)
    }

    #[test]
    fn transfer_in_chunks_completes() {
        let dir = tempfile::tempdir().unwrap();
        let file = large_snapshot();
        assert!(file.len() > 2 * CHUNK_BYTES, "file of {} bytes", file.len());
        let (mut incoming, first) = Incoming::start(&StdDisk, dir.path(), 1, 77, 0).unwrap();
        let progress = pump(&mut incoming, first, &file, 1000);
        let Some(Progress::Complete { bytes, snapshot }) = progress else {
            panic!("transfer did not complete: {progress:?}");
        };
        assert_eq!(bytes, file);
        assert_eq!(snapshot.op, 77);
        assert!(!dir.path().join(partial_name(77)).exists());
    }

    #[test]
    fn transfer_resumes_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = large_snapshot();
        let (mut incoming, first) = Incoming::start(&StdDisk, dir.path(), 1, 77, 0).unwrap();
        assert!(pump(&mut incoming, first, &file, 2).is_none());
        drop(incoming);

        let (mut resumed, read) = Incoming::start(&StdDisk, dir.path(), 2, 77, 0).unwrap();
        let Message::SnapshotRead { offset, .. } = read else {
            panic!("expected a read");
        };
        assert_eq!(
            offset,
            2 * CHUNK_BYTES as u64,
            "resumed at the wrong offset"
        );
        resumed.from = 1;
        let progress = pump(&mut resumed, read, &file, 1000);
        assert!(matches!(progress, Some(Progress::Complete { .. })));
    }

    #[test]
    fn damaged_transfer_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = large_snapshot();
        let middle = file.len() / 2;
        file[middle] ^= 0x40;
        let (mut incoming, first) = Incoming::start(&StdDisk, dir.path(), 1, 77, 0).unwrap();
        let progress = pump(&mut incoming, first, &file, 1000);
        let Some(Progress::Abandoned(reason)) = progress else {
            panic!("damaged transfer was not abandoned: {progress:?}");
        };
        assert!(reason.contains("body is damaged"), "{reason}");
        assert!(!dir.path().join(partial_name(77)).exists());
    }

    #[test]
    fn missing_snapshot_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let (mut incoming, _) = Incoming::start(&StdDisk, dir.path(), 1, 5, 0).unwrap();
        let Message::SnapshotChunk {
            size, offset, data, ..
        } = reply_to_read(None, 0, 5, 0)
        else {
            unreachable!()
        };
        let chunk = ChunkRef {
            from: 1,
            op: 5,
            size,
            offset,
            data: &data,
        };
        let progress = incoming.on_chunk(&StdDisk, chunk, 0).unwrap();
        assert!(matches!(progress, Progress::Abandoned(_)), "{progress:?}");
    }

    #[test]
    fn chunk_from_other_peer_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut incoming, _) = Incoming::start(&StdDisk, dir.path(), 1, 5, 0).unwrap();
        let chunk = ChunkRef {
            from: 2,
            op: 5,
            size: 10,
            offset: 0,
            data: b"0123456789",
        };
        let progress = incoming.on_chunk(&StdDisk, chunk, 0).unwrap();
        assert!(matches!(progress, Progress::Ignored));
    }

    #[test]
    fn read_resent_when_overdue() {
        let dir = tempfile::tempdir().unwrap();
        let (mut incoming, first) = Incoming::start(&StdDisk, dir.path(), 1, 5, 3).unwrap();
        let resent = (0..READ_RETRY_TICKS).find_map(|_| incoming.on_tick(3));
        assert_eq!(resent, Some(first));
    }
}
