//! The file system operations the log needs, and their implementation on
//! `std::fs`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// A synchronous file system: the only way the log touches storage.
///
/// Changes to a directory (a created, removed or renamed file) are durable
/// only after [`Disk::sync_dir`], and file contents only after
/// [`DiskFile::sync_data`].
pub trait Disk {
    /// An open file handle for reading and writing.
    type File: DiskFile;

    /// Creates `dir` and its missing ancestors, and syncs the parent of each
    /// directory it created so the new entries survive a crash.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// Creates the file at `path` for reading and writing, truncating it to
    /// zero bytes if it exists. The new entry is durable only after
    /// [`Disk::sync_dir`] on the parent directory.
    fn create_file(&self, path: &Path) -> io::Result<Self::File>;

    /// Opens the existing file at `path` for reading and writing.
    fn open_file(&self, path: &Path) -> io::Result<Self::File>;

    /// Reads the whole file at `path`.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Returns the length in bytes of the file at `path`.
    fn file_len(&self, path: &Path) -> io::Result<u64>;

    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file at `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Returns the paths of the entries in `dir`, sorted by name.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;

    /// Makes the entries of `dir` (creations, removals, renames) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Returns a handle to the same files that another thread may own, for
    /// work too long to run on the caller's thread, such as writing a
    /// snapshot. None keeps that work on the caller's thread, as a disk
    /// bound to one thread (the simulation's) needs.
    fn detached_disk(&self) -> Option<StdDisk> {
        None
    }
}

/// A `sync_data` of one file that owns what it needs, so that it can run on
/// another thread while the log goes on appending.
pub type DetachedSync = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// An open file of a [`Disk`], written at explicit offsets.
pub trait DiskFile {
    /// Writes all of `bytes` starting at byte `offset`.
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()>;

    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Makes the file's contents and length durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;

    /// Returns a [`DiskFile::sync_data`] of this file that may run on
    /// another thread. It covers at least every write that returned before
    /// this call. `None` means the file can only be synced on the calling
    /// thread, which is the default: the simulated disk must stay on the
    /// simulation's one thread.
    fn detached_sync(&self) -> io::Result<Option<DetachedSync>> {
        Ok(None)
    }
}

/// The real file system, through `std::fs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdDisk;

impl Disk for StdDisk {
    type File = File;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let created = missing_ancestors(dir, |path| path.is_dir());
        fs::create_dir_all(dir)?;
        sync_parents(self, &created)
    }

    fn create_file(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    fn open_file(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(path)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir)? {
            paths.push(entry?.path());
        }
        paths.sort();
        Ok(paths)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // On Linux a directory opened read-only can be fsynced like a file.
        File::open(dir)?.sync_all()
    }

    fn detached_disk(&self) -> Option<StdDisk> {
        Some(StdDisk)
    }
}

impl DiskFile for File {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, bytes, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn detached_sync(&self) -> io::Result<Option<DetachedSync>> {
        // A duplicated descriptor refers to the same open file, so its
        // fdatasync covers the writes made through this one.
        let file = self.try_clone()?;
        Ok(Some(Box::new(move || file.sync_data())))
    }
}

/// Returns `dir` and those of its ancestors for which `is_dir` is false,
/// deepest first.
pub(crate) fn missing_ancestors(dir: &Path, is_dir: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut missing = Vec::new();
    for ancestor in dir.ancestors() {
        if ancestor.as_os_str().is_empty() || is_dir(ancestor) {
            break;
        }
        missing.push(ancestor.to_path_buf());
    }
    missing
}

/// Syncs the parent directory of each of `created`, so their entries are
/// durable. A relative path without a parent component lives in `.`.
pub(crate) fn sync_parents(disk: &impl Disk, created: &[PathBuf]) -> io::Result<()> {
    for dir in created {
        let parent = match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        disk.sync_dir(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_disk_round_trip() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        let disk = StdDisk;

        disk.create_dir_all(&dir).unwrap();
        assert!(dir.is_dir());

        let path = dir.join("file");
        let file = disk.create_file(&path).unwrap();
        file.write_all_at(b"hello world", 0).unwrap();
        file.write_all_at(b"HELLO", 0).unwrap();
        file.sync_data().unwrap();
        disk.sync_dir(&dir).unwrap();
        assert_eq!(disk.read_file(&path).unwrap(), b"HELLO world");
        assert_eq!(disk.file_len(&path).unwrap(), 11);

        file.set_len(5).unwrap();
        assert_eq!(disk.read_file(&path).unwrap(), b"HELLO");

        let reopened = disk.open_file(&path).unwrap();
        reopened.write_all_at(b"!", 5).unwrap();
        assert_eq!(disk.read_file(&path).unwrap(), b"HELLO!");
    }

    #[test]
    fn std_disk_create_file_truncates() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("file");
        let disk = StdDisk;

        disk.create_file(&path)
            .unwrap()
            .write_all_at(b"old", 0)
            .unwrap();
        disk.create_file(&path).unwrap();
        assert_eq!(disk.file_len(&path).unwrap(), 0);
    }

    #[test]
    fn std_disk_rename_remove_list() {
        let root = tempfile::tempdir().unwrap();
        let disk = StdDisk;
        for name in ["c", "a", "b"] {
            disk.create_file(&root.path().join(name)).unwrap();
        }
        let names = |disk: &StdDisk| -> Vec<String> {
            disk.list_dir(root.path())
                .unwrap()
                .iter()
                .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(&disk), ["a", "b", "c"]);

        disk.rename(&root.path().join("a"), &root.path().join("d"))
            .unwrap();
        disk.remove_file(&root.path().join("b")).unwrap();
        disk.sync_dir(root.path()).unwrap();
        assert_eq!(names(&disk), ["c", "d"]);
    }

    #[test]
    fn std_disk_detached_sync_runs_elsewhere() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("file");
        let file = StdDisk.create_file(&path).unwrap();
        file.write_all_at(b"data", 0).unwrap();
        let sync = file
            .detached_sync()
            .unwrap()
            .expect("std files sync on any thread");
        std::thread::spawn(sync).join().unwrap().unwrap();
        file.write_all_at(b"more", 4).unwrap();
        assert_eq!(StdDisk.read_file(&path).unwrap(), b"datamore");
    }

    #[test]
    fn std_disk_open_missing_fails() {
        let root = tempfile::tempdir().unwrap();
        let error = StdDisk.open_file(&root.path().join("missing")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn missing_ancestors_stop_at_existing() {
        let existing = [Path::new("/"), Path::new("/data")];
        let missing =
            missing_ancestors(Path::new("/data/node/wal"), |path| existing.contains(&path));
        assert_eq!(
            missing,
            [PathBuf::from("/data/node/wal"), PathBuf::from("/data/node")]
        );
    }
}
