//! Backup files on the operator's side: writing one, verifying one, and
//! seeding a node's data directory from one. A backup file is a snapshot
//! file, so the node's own checks apply to it unchanged.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{hex, verify, Header, Snapshot, SnapshotStore};
use crate::node::driver::{store_meta, MetaRecord, META_FILE};
use crate::wal::{StdDisk, Wal, WalOptions};

/// A failure of `backup`, `verify` or `restore`, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("failed to {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("backup {} is invalid: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("data directory {} is not empty; restore into a new or empty directory", path.display())]
    NotEmpty { path: PathBuf },
    #[error("restoring into {} failed: {reason}", path.display())]
    Restore { path: PathBuf, reason: String },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::Io {
        action,
        path,
        source,
    }
}

/// Returns a one-line description of a checked backup.
pub fn describe(header: &Header, bytes: usize) -> String {
    format!(
        "backup of op {}, {bytes} bytes, state digest {}",
        header.op,
        hex(&header.digest)
    )
}

/// Checks `bytes` as a backup and writes them to `out` durably, through a
/// temporary file that is synced and renamed.
pub fn write_backup(bytes: &[u8], out: &Path) -> Result<Header, BackupError> {
    let header = verify(bytes).map_err(|reason| BackupError::Invalid {
        path: out.to_path_buf(),
        reason: format!("the node sent an invalid snapshot: {reason}"),
    })?;
    let mut temp_name = out.file_name().unwrap_or_default().to_os_string();
    temp_name.push(".tmp");
    let temp = out.with_file_name(temp_name);
    let mut file = fs::File::create(&temp).map_err(io("create", &temp))?;
    file.write_all(bytes).map_err(io("write to", &temp))?;
    file.sync_all().map_err(io("sync", &temp))?;
    drop(file);
    fs::rename(&temp, out).map_err(io("rename into place", &temp))?;
    let dir = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io("sync directory", dir))?;
    Ok(header)
}

/// Reads `path` and checks its header, digest and state.
pub fn verify_file(path: &Path) -> Result<(Header, usize), BackupError> {
    let bytes = fs::read(path).map_err(io("read", path))?;
    let invalid = |reason: String| BackupError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let header = verify(&bytes).map_err(|reason| invalid(reason.to_string()))?;
    Snapshot::decode(&bytes).map_err(|reason| invalid(reason.to_string()))?;
    Ok((header, bytes.len()))
}

/// Seeds the empty data directory `data` from the backup `file`: the
/// snapshot, an empty log that continues after it, and a view record of
/// view 0. Every node of a new cluster is restored from the same file and
/// started without `--init`.
pub fn restore(file: &Path, data: &Path) -> Result<Header, BackupError> {
    let (header, _) = verify_file(file)?;
    let bytes = fs::read(file).map_err(io("read", file))?;
    fs::create_dir_all(data).map_err(io("create", data))?;
    let mut entries = fs::read_dir(data).map_err(io("list", data))?;
    if entries.next().is_some() {
        return Err(BackupError::NotEmpty {
            path: data.to_path_buf(),
        });
    }
    let failed = |reason: String| BackupError::Restore {
        path: data.to_path_buf(),
        reason,
    };
    SnapshotStore::new(StdDisk, data)
        .write(&bytes)
        .map_err(|error| failed(error.to_string()))?;
    let (mut wal, _) = Wal::open(StdDisk, data, WalOptions::default())
        .map_err(|error| failed(error.to_string()))?;
    wal.restart_after(header.op)
        .map_err(|error| failed(error.to_string()))?;
    let record = MetaRecord {
        view: 0,
        log_view: 0,
        commit: header.op,
    };
    store_meta(&StdDisk, &data.join(META_FILE), record)
        .map_err(|error| failed(error.to_string()))?;
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::test_support::{Harness, RANDOM_USERS};

    fn backup_file(dir: &Path) -> (PathBuf, Vec<u8>) {
        let calendar = Harness::with_users(&RANDOM_USERS).calendar;
        let bytes = Snapshot::encode(9, &calendar);
        let path = dir.join("cluster.backup");
        write_backup(&bytes, &path).unwrap();
        (path, bytes)
    }

    #[test]
    fn verify_accepts_written_backup() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes) = backup_file(dir.path());
        let (header, len) = verify_file(&path).unwrap();
        assert_eq!(header.op, 9);
        assert_eq!(len, bytes.len());
        assert!(describe(&header, len).contains("op 9"));
    }

    #[test]
    fn verify_names_damaged_byte_problem() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut bytes) = backup_file(dir.path());
        let middle = bytes.len() - 5;
        bytes[middle] ^= 0x04;
        fs::write(&path, &bytes).unwrap();
        let error = verify_file(&path).unwrap_err().to_string();
        assert!(error.contains("cluster.backup is invalid"), "{error}");
        assert!(error.contains("body is damaged"), "{error}");
    }

    #[test]
    fn restore_rejects_non_empty_dir() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = backup_file(dir.path());
        let error = restore(&path, dir.path()).unwrap_err();
        assert!(matches!(error, BackupError::NotEmpty { .. }), "{error}");
    }

    #[test]
    fn restore_seeds_snapshot_log_and_meta() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = backup_file(dir.path());
        let data = dir.path().join("node-1");
        let header = restore(&path, &data).unwrap();
        assert_eq!(header.op, 9);
        assert!(data.join(META_FILE).exists());
        let store = SnapshotStore::new(StdDisk, &data);
        assert_eq!(store.list().unwrap(), vec![9]);
        let (wal, _) = Wal::open(StdDisk, &data, WalOptions::default()).unwrap();
        assert_eq!(wal.first_op(), 10);
    }
}
