//! The snapshot files of one node, beside its log in the data directory.

use std::io;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::{read_header, FormatError, Snapshot};
use crate::wal::{Disk, DiskFile};

/// The number of snapshot files a node keeps: the newest, and one older to
/// fall back to when the newest is damaged. The log is kept from the older
/// one on, so that fallback can replay up to the newest state.
pub const SNAPSHOTS_KEPT: usize = 2;

/// The bytes of a snapshot written between two fdatasyncs: 1 MiB, an
/// estimated few milliseconds of the disk's time, so that a snapshot being
/// written adds little to the log's fdatasync.
const WRITE_PIECE_BYTES: usize = 1 << 20;
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".snap";

/// A failure to read or write a snapshot file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("snapshot file {} is invalid: {reason}", path.display())]
    Invalid { path: PathBuf, reason: FormatError },
}

/// The result of [`SnapshotStore::load_newest`].
#[derive(Debug)]
pub struct Loaded {
    /// The newest snapshot that passed every check, if any did.
    pub snapshot: Option<Snapshot>,
    /// The newer files that failed their checks and were skipped.
    pub rejected: Vec<SnapshotError>,
}

/// Reads and writes `snapshot-<op>.snap` files in one directory.
#[derive(Clone, Debug)]
pub struct SnapshotStore<D: Disk> {
    disk: D,
    dir: PathBuf,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.to_path_buf();
    move |source| SnapshotError::Io {
        action,
        path,
        source,
    }
}

impl<D: Disk> SnapshotStore<D> {
    pub fn new(disk: D, dir: impl Into<PathBuf>) -> SnapshotStore<D> {
        SnapshotStore {
            disk,
            dir: dir.into(),
        }
    }

    /// Returns the path of the snapshot file at `op`. The op is zero-padded
    /// so that names sort in op order.
    pub fn path(&self, op: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{op:020}{SUFFIX}"))
    }

    /// Returns the ops of the snapshot files present, oldest first.
    pub fn list(&self) -> Result<Vec<u64>, SnapshotError> {
        let paths = self
            .disk
            .list_dir(&self.dir)
            .map_err(io_error("list directory", &self.dir))?;
        let mut ops: Vec<u64> = paths
            .iter()
            .filter_map(|path| {
                let name = path.file_name()?.to_str()?;
                name.strip_prefix(PREFIX)?
                    .strip_suffix(SUFFIX)?
                    .parse()
                    .ok()
            })
            .collect();
        ops.sort_unstable();
        Ok(ops)
    }

    /// Stores the snapshot file `bytes` durably: writes a temporary file,
    /// syncs it, renames it into place and syncs the directory. Then removes
    /// all but the newest [`SNAPSHOTS_KEPT`] files. Returns the snapshot's
    /// op.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Invalid`] when `bytes` has no valid header, and
    /// [`SnapshotError::Io`] when the disk fails.
    pub fn write(&self, bytes: &[u8]) -> Result<u64, SnapshotError> {
        let op = self.put(bytes)?;
        self.prune()?;
        Ok(op)
    }

    /// Stores the snapshot file `bytes` durably like [`SnapshotStore::write`],
    /// but removes no older file: a node writing on another thread prunes
    /// on its own thread, which also serves the files to peers.
    pub fn put(&self, bytes: &[u8]) -> Result<u64, SnapshotError> {
        let path_unknown = self.dir.join("(new snapshot)");
        let header = read_header(bytes).map_err(|reason| SnapshotError::Invalid {
            path: path_unknown,
            reason,
        })?;
        let path = self.path(header.op);
        let temp = path.with_extension("snap.tmp");
        let file = self
            .disk
            .create_file(&temp)
            .map_err(io_error("create", &temp))?;
        // Synced a piece at a time, because in ext4's default ordered mode
        // a journal commit for the log's fdatasync first writes out the new
        // data of other files, a snapshot being written among them.
        let mut offset = 0;
        for piece in bytes.chunks(WRITE_PIECE_BYTES) {
            file.write_all_at(piece, offset as u64)
                .map_err(io_error("write to", &temp))?;
            file.sync_data().map_err(io_error("sync", &temp))?;
            offset += piece.len();
        }
        drop(file);
        self.disk
            .rename(&temp, &path)
            .map_err(io_error("rename into place", &temp))?;
        self.sync_dir()?;
        info!(path = %path.display(), op = header.op, bytes = bytes.len(), "wrote snapshot");
        Ok(header.op)
    }

    /// Removes every snapshot file but the newest [`SNAPSHOTS_KEPT`].
    pub fn prune(&self) -> Result<(), SnapshotError> {
        let ops = self.list()?;
        let excess = ops.len().saturating_sub(SNAPSHOTS_KEPT);
        if excess == 0 {
            return Ok(());
        }
        for &op in &ops[..excess] {
            let path = self.path(op);
            self.disk
                .remove_file(&path)
                .map_err(io_error("remove", &path))?;
        }
        self.sync_dir()
    }

    /// Removes the files that [`SnapshotStore::load_newest`] rejected.
    pub fn remove_rejected(&self, rejected: &[SnapshotError]) -> Result<(), SnapshotError> {
        let mut removed = false;
        for error in rejected {
            if let SnapshotError::Invalid { path, .. } = error {
                warn!(path = %path.display(), "removing a damaged snapshot");
                self.disk
                    .remove_file(path)
                    .map_err(io_error("remove", path))?;
                removed = true;
            }
        }
        if removed {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), SnapshotError> {
        self.disk
            .sync_dir(&self.dir)
            .map_err(io_error("sync directory", &self.dir))
    }

    /// Returns the bytes of the snapshot file at `op`, or None if there is
    /// none.
    pub fn read(&self, op: u64) -> Result<Option<Vec<u8>>, SnapshotError> {
        let path = self.path(op);
        match self.disk.read_file(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("read", &path)(error)),
        }
    }

    /// Loads the newest snapshot that passes its checks, skipping and
    /// reporting damaged newer ones.
    pub fn load_newest(&self) -> Result<Loaded, SnapshotError> {
        let mut rejected = Vec::new();
        for op in self.list()?.into_iter().rev() {
            let path = self.path(op);
            let Some(bytes) = self.read(op)? else {
                continue;
            };
            match Snapshot::decode(&bytes) {
                Ok(snapshot) if snapshot.op == op => {
                    return Ok(Loaded {
                        snapshot: Some(snapshot),
                        rejected,
                    })
                }
                Ok(snapshot) => {
                    let reason = FormatError::Body {
                        reason: format!(
                            "the header names op {}, not the op in the file name",
                            snapshot.op
                        ),
                    };
                    warn!(path = %path.display(), %reason, "skipping a damaged snapshot");
                    rejected.push(SnapshotError::Invalid { path, reason });
                }
                Err(reason) => {
                    warn!(path = %path.display(), %reason, "skipping a damaged snapshot");
                    rejected.push(SnapshotError::Invalid { path, reason });
                }
            }
        }
        Ok(Loaded {
            snapshot: None,
            rejected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::test_support::{Harness, RANDOM_USERS};
    use crate::calendar::Calendar;
    use crate::wal::StdDisk;

    fn store() -> (tempfile::TempDir, SnapshotStore<StdDisk>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(StdDisk, dir.path());
        (dir, store)
    }

    fn calendar() -> Calendar {
        Harness::with_users(&RANDOM_USERS).calendar
    }

    #[test]
    fn write_keeps_newest_two() {
        let (_dir, store) = store();
        for op in [10, 20, 30] {
            store.write(&Snapshot::encode(op, &calendar())).unwrap();
        }
        assert_eq!(store.list().unwrap(), vec![20, 30]);
        let loaded = store.load_newest().unwrap();
        assert_eq!(loaded.snapshot.unwrap().op, 30);
        assert!(loaded.rejected.is_empty());
    }

    #[test]
    fn damaged_newest_falls_back_to_older() {
        let (_dir, store) = store();
        store.write(&Snapshot::encode(10, &calendar())).unwrap();
        store
            .write(&Snapshot::encode(20, &Calendar::new()))
            .unwrap();
        let path = store.path(20);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();

        let loaded = store.load_newest().unwrap();
        let snapshot = loaded.snapshot.expect("the older snapshot is valid");
        assert_eq!(snapshot.op, 10);
        assert_eq!(snapshot.calendar, calendar());
        assert_eq!(loaded.rejected.len(), 1);
        let message = loaded.rejected[0].to_string();
        assert!(message.contains("body is damaged"), "{message}");

        store.remove_rejected(&loaded.rejected).unwrap();
        assert_eq!(store.list().unwrap(), vec![10]);
    }

    #[test]
    fn all_damaged_loads_none() {
        let (_dir, store) = store();
        store.write(&Snapshot::encode(5, &calendar())).unwrap();
        std::fs::write(store.path(5), b"ALSN short").unwrap();
        let loaded = store.load_newest().unwrap();
        assert!(loaded.snapshot.is_none());
        assert_eq!(loaded.rejected.len(), 1);
    }

    #[test]
    fn empty_dir_loads_none() {
        let (_dir, store) = store();
        assert!(store.load_newest().unwrap().snapshot.is_none());
        assert_eq!(store.read(3).unwrap(), None);
    }

    #[test]
    fn file_name_op_mismatch_rejected() {
        let (_dir, store) = store();
        std::fs::write(store.path(7), Snapshot::encode(8, &calendar())).unwrap();
        let loaded = store.load_newest().unwrap();
        assert!(loaded.snapshot.is_none());
        assert!(loaded.rejected[0].to_string().contains("names op 8"));
    }
}
