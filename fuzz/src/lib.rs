//! Helpers shared by the fuzz targets: an in-memory [`Disk`] so that WAL
//! targets run without touching the file system.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use almanac::wal::{Disk, DiskFile};

/// Files by path; directories exist implicitly. Every write is durable at
/// once, because the targets check decoding, not crash behaviour.
#[derive(Clone, Default)]
pub struct MemoryDisk {
    files: Rc<RefCell<BTreeMap<PathBuf, Vec<u8>>>>,
}

impl MemoryDisk {
    /// Replaces the contents of the file at `path`.
    pub fn put(&self, path: &Path, bytes: Vec<u8>) {
        self.files.borrow_mut().insert(path.to_owned(), bytes);
    }

    /// Returns the paths of all files, sorted.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.borrow().keys().cloned().collect()
    }

    /// Returns the contents of the file at `path`, if it exists.
    pub fn get(&self, path: &Path) -> Option<Vec<u8>> {
        self.files.borrow().get(path).cloned()
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", path.display()),
    )
}

/// An open file of a [`MemoryDisk`].
pub struct MemoryFile {
    disk: MemoryDisk,
    path: PathBuf,
}

impl DiskFile for MemoryFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut files = self.disk.files.borrow_mut();
        let contents = files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        let start = offset as usize;
        let end = start + bytes.len();
        if contents.len() < end {
            contents.resize(end, 0);
        }
        contents[start..end].copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut files = self.disk.files.borrow_mut();
        let contents = files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        contents.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}

impl Disk for MemoryDisk {
    type File = MemoryFile;

    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn create_file(&self, path: &Path) -> io::Result<MemoryFile> {
        self.put(path, Vec::new());
        Ok(MemoryFile {
            disk: self.clone(),
            path: path.to_owned(),
        })
    }

    fn open_file(&self, path: &Path) -> io::Result<MemoryFile> {
        if !self.files.borrow().contains_key(path) {
            return Err(not_found(path));
        }
        Ok(MemoryFile {
            disk: self.clone(),
            path: path.to_owned(),
        })
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.get(path).ok_or_else(|| not_found(path))
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.files
            .borrow()
            .get(path)
            .map(|contents| contents.len() as u64)
            .ok_or_else(|| not_found(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut files = self.files.borrow_mut();
        let contents = files.remove(from).ok_or_else(|| not_found(from))?;
        files.insert(to.to_owned(), contents);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.files
            .borrow_mut()
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(self
            .files
            .borrow()
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .cloned()
            .collect())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}
