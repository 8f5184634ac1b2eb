//! A small durable blob, replaced atomically, for replication state such as
//! the view number and status.
//!
//! The file contains a 12-byte header (magic number, payload length, CRC32C over
//! magic, length and payload, all little-endian) and the payload.

use std::io;
use std::path::{Path, PathBuf};

use super::disk::{Disk, DiskFile};
use super::error::{io_error, CorruptReason, WalError};

/// The bytes "AMET" read as a little-endian integer.
const META_MAGIC: u32 = u32::from_le_bytes(*b"AMET");

const META_HEADER_BYTES: usize = 12;

/// Stores and loads a checksummed blob at one path. A store replaces the old
/// contents atomically: after a crash the file contains either the old or the
/// new bytes.
#[derive(Clone, Copy, Debug)]
pub struct MetaFile;

impl MetaFile {
    /// Reads the blob stored at `path`. Returns `None` if the file does not
    /// exist, and [`WalError::MetaCorrupt`] if it fails its checks.
    pub fn load(disk: &impl Disk, path: &Path) -> Result<Option<Vec<u8>>, WalError> {
        let bytes = match disk.read_file(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("read", path, None)(error)),
        };
        decode(&bytes)
            .map(|payload| Some(payload.to_vec()))
            .map_err(|reason| WalError::MetaCorrupt {
                path: path.to_path_buf(),
                reason,
            })
    }

    /// Replaces the blob at `path` with `bytes` durably: writes a temporary
    /// file beside it, syncs it, renames it over `path` and syncs the
    /// directory.
    ///
    /// # Panics
    ///
    /// If `bytes` is longer than `u32::MAX`.
    pub fn store(disk: &impl Disk, path: &Path, bytes: &[u8]) -> Result<(), WalError> {
        let temp = temp_path(path);
        let file = disk
            .create_file(&temp)
            .map_err(io_error("create", &temp, None))?;
        file.write_all_at(&encode(bytes), 0)
            .map_err(io_error("write to", &temp, Some(0)))?;
        file.sync_data().map_err(io_error("sync", &temp, None))?;
        drop(file);

        disk.rename(&temp, path)
            .map_err(io_error("rename to its final name", &temp, None))?;
        let dir = parent_dir(path);
        disk.sync_dir(dir)
            .map_err(io_error("sync directory", dir, None))
    }
}

/// Returns the path of the temporary file for `path`: the same name with
/// `.tmp` appended.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn encode(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("meta payload length fits in u32");
    let mut bytes = Vec::with_capacity(META_HEADER_BYTES + payload.len());
    bytes.extend_from_slice(&META_MAGIC.to_le_bytes());
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(&checksum(&bytes[..8], payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn decode(bytes: &[u8]) -> Result<&[u8], CorruptReason> {
    let Some(header) = bytes.get(..META_HEADER_BYTES) else {
        return Err(CorruptReason::ShortHeader {
            len: bytes.len() as u64,
        });
    };
    let magic = read_u32(header, 0);
    if magic != META_MAGIC {
        return Err(CorruptReason::BadMagic { found: magic });
    }

    let len = read_u32(header, 4) as usize;
    let payload = &bytes[META_HEADER_BYTES..];
    if payload.len() < len {
        return Err(CorruptReason::ShortPayload {
            expected: len as u64,
            found: payload.len() as u64,
        });
    }
    if payload.len() > len {
        return Err(CorruptReason::TrailingBytes {
            len: (payload.len() - len) as u64,
        });
    }

    let stored = read_u32(header, 8);
    let computed = checksum(&header[..8], payload);
    if stored != computed {
        return Err(CorruptReason::BadChecksum {
            expected: stored,
            found: computed,
        });
    }
    Ok(payload)
}

fn checksum(magic_and_len: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(magic_and_len), payload)
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::StdDisk;

    #[test]
    fn meta_missing_is_none() {
        let root = tempfile::tempdir().unwrap();
        let loaded = MetaFile::load(&StdDisk, &root.path().join("meta")).unwrap();
        assert_eq!(loaded, None);
    }

    #[test]
    fn meta_store_load_replace() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("meta");
        MetaFile::store(&StdDisk, &path, b"view 3 normal").unwrap();
        assert_eq!(
            MetaFile::load(&StdDisk, &path).unwrap().as_deref(),
            Some(&b"view 3 normal"[..])
        );

        MetaFile::store(&StdDisk, &path, b"view 4").unwrap();
        assert_eq!(
            MetaFile::load(&StdDisk, &path).unwrap().as_deref(),
            Some(&b"view 4"[..])
        );
        assert!(!temp_path(&path).exists(), "temporary file left behind");
    }

    #[test]
    fn meta_empty_payload() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("meta");
        MetaFile::store(&StdDisk, &path, b"").unwrap();
        assert_eq!(MetaFile::load(&StdDisk, &path).unwrap(), Some(Vec::new()));
    }

    #[test]
    fn meta_leftover_temp_is_replaced() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("meta");
        std::fs::write(temp_path(&path), b"half-written garbage that is longer").unwrap();
        MetaFile::store(&StdDisk, &path, b"new").unwrap();
        assert_eq!(
            MetaFile::load(&StdDisk, &path).unwrap().as_deref(),
            Some(&b"new"[..])
        );
    }

    #[test]
    fn meta_every_flipped_byte_detected() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("meta");
        MetaFile::store(&StdDisk, &path, b"view 9").unwrap();
        let stored = std::fs::read(&path).unwrap();

        for index in 0..stored.len() {
            let mut damaged = stored.clone();
            damaged[index] ^= 0x04;
            std::fs::write(&path, &damaged).unwrap();
            let error = MetaFile::load(&StdDisk, &path).unwrap_err();
            assert!(
                matches!(error, WalError::MetaCorrupt { .. }),
                "byte {index}: {error}"
            );
        }
    }

    #[test]
    fn meta_truncated_and_extended_detected() {
        let stored = encode(b"view 9");
        assert_eq!(
            decode(&stored[..5]),
            Err(CorruptReason::ShortHeader { len: 5 })
        );
        assert_eq!(
            decode(&stored[..stored.len() - 1]),
            Err(CorruptReason::ShortPayload {
                expected: 6,
                found: 5
            })
        );
        let mut extended = stored.clone();
        extended.push(0);
        assert_eq!(
            decode(&extended),
            Err(CorruptReason::TrailingBytes { len: 1 })
        );
    }

    #[test]
    fn meta_corrupt_error_names_path() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("meta");
        std::fs::write(&path, b"garbage!!!!!!!!").unwrap();
        let message = MetaFile::load(&StdDisk, &path).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("bad magic number"), "{message}");
    }

    #[test]
    fn meta_temp_path_appends_suffix() {
        assert_eq!(
            temp_path(Path::new("/data/replica.meta")),
            PathBuf::from("/data/replica.meta.tmp")
        );
    }
}
