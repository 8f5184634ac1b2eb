//! A node's disk in the simulation: [`SimDisk`] with a power-loss switch,
//! and the file operations a scenario applies to a stopped node's disk.
//!
//! The node's log syncs right after it appends, inside one synchronous call,
//! so a crash between two simulation steps never finds an unsynced write.
//! [`FaultDisk`] makes that window visible: once a scenario arms
//! [`DiskFaults::fail_syncs`], every write still reaches turmoil's page cache
//! but every sync fails, as if power went out before the fsync finished. The
//! node stops writing its log, and a crash then loses or tears the unsynced
//! writes.
//!
//! Not modelled: fsync latency. turmoil's synchronous file calls return
//! at once, because sync code cannot wait in simulated time.

use std::cell::Cell;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use almanac::wal::{Disk, DiskFile, SimDisk};
use turmoil::fs::shim::std::fs as sim_fs;

/// The switches a scenario flips on one node's disk. They outlive the
/// node's boots, so a scenario can arm them while the node runs.
#[derive(Debug, Default)]
pub struct DiskFaults {
    /// When set, every sync fails and leaves the written data unsynced.
    pub fail_syncs: Cell<bool>,
    /// Writes made while `fail_syncs` was set; none of them is durable.
    pub unsynced_writes: Cell<u64>,
}

impl DiskFaults {
    /// Clears the switches, as a repaired machine would boot.
    pub fn reset(&self) {
        self.fail_syncs.set(false);
        self.unsynced_writes.set(0);
    }

    fn check_sync(&self, what: &str) -> io::Result<()> {
        if self.fail_syncs.get() {
            return Err(io::Error::other(format!(
                "simulated power loss: the {what} did not reach the disk"
            )));
        }
        Ok(())
    }
}

/// [`SimDisk`] with the switches of [`DiskFaults`].
#[derive(Clone, Debug)]
pub struct FaultDisk {
    faults: Rc<DiskFaults>,
}

impl FaultDisk {
    pub fn new(faults: Rc<DiskFaults>) -> FaultDisk {
        FaultDisk { faults }
    }
}

/// A file of a [`FaultDisk`].
pub struct FaultFile {
    inner: <SimDisk as Disk>::File,
    faults: Rc<DiskFaults>,
}

impl FaultFile {
    fn wrap(&self, result: io::Result<()>) -> io::Result<()> {
        if result.is_ok() && self.faults.fail_syncs.get() {
            let count = self.faults.unsynced_writes.get();
            self.faults.unsynced_writes.set(count + 1);
        }
        result
    }
}

impl Disk for FaultDisk {
    type File = FaultFile;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.faults.check_sync("directory sync")?;
        SimDisk.create_dir_all(dir)
    }

    fn create_file(&self, path: &Path) -> io::Result<FaultFile> {
        Ok(FaultFile {
            inner: SimDisk.create_file(path)?,
            faults: self.faults.clone(),
        })
    }

    fn open_file(&self, path: &Path) -> io::Result<FaultFile> {
        Ok(FaultFile {
            inner: SimDisk.open_file(path)?,
            faults: self.faults.clone(),
        })
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        SimDisk.read_file(path)
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        SimDisk.file_len(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        SimDisk.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        SimDisk.remove_file(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        SimDisk.list_dir(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.faults.check_sync("directory sync")?;
        SimDisk.sync_dir(dir)
    }
}

impl DiskFile for FaultFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.wrap(self.inner.write_all_at(bytes, offset))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.wrap(self.inner.set_len(len))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.faults.check_sync("fsync")?;
        self.inner.sync_data()
    }
}

/// Removes `dir` and everything in it from the current host's simulated
/// disk, and syncs the parent so that the removal survives a later crash.
/// Must run inside a turmoil host.
pub fn wipe_dir(dir: &Path) -> io::Result<()> {
    if !sim_fs::exists(dir) {
        return Ok(());
    }
    remove_tree(dir)?;
    let parent = dir.parent().unwrap_or(Path::new("/"));
    sim_fs::sync_dir(parent)
}

fn remove_tree(dir: &Path) -> io::Result<()> {
    for path in SimDisk.list_dir(dir)? {
        if sim_fs::metadata(&path)?.is_dir() {
            remove_tree(&path)?;
        } else {
            sim_fs::remove_file(&path)?;
        }
    }
    sim_fs::remove_dir(dir)
}

/// Flips one bit of the byte at `offset` of `path` and syncs the file, as
/// silent corruption on the medium would. Must run inside a turmoil host.
pub fn flip_byte(path: &Path, offset: u64) -> io::Result<()> {
    let bytes = sim_fs::read(path)?;
    let index = usize::try_from(offset).unwrap_or(usize::MAX);
    let Some(byte) = bytes.get(index) else {
        return Err(io::Error::other(format!(
            "cannot flip byte {offset} of {}: the file has {} bytes",
            path.display(),
            bytes.len()
        )));
    };
    let file = SimDisk.open_file(path)?;
    file.write_all_at(&[byte ^ 0x01], offset)?;
    file.sync_data()
}

/// Size of a log record's header: magic, length, CRC32C and op number.
const RECORD_HEADER_BYTES: u64 = 20;

/// Returns the byte offset of the middle of the payload of record number
/// `record` (from 1) in the segment at `path`, walking the record framing
/// (a little-endian payload length at bytes 4..8 of each header). Must run
/// inside a turmoil host.
pub fn record_payload_middle(path: &Path, record: u64) -> io::Result<u64> {
    let bytes = sim_fs::read(path)?;
    let mut offset = 0u64;
    for number in 1..=record {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let Some(length) = bytes.get(start + 4..start + 8) else {
            return Err(io::Error::other(format!(
                "{} ends at byte {} before record {number}",
                path.display(),
                bytes.len()
            )));
        };
        let length = u64::from(u32::from_le_bytes(length.try_into().expect("4 bytes")));
        if number == record {
            return Ok(offset + RECORD_HEADER_BYTES + length / 2);
        }
        offset += RECORD_HEADER_BYTES + length;
    }
    Err(io::Error::other("records are numbered from 1"))
}

/// Returns the first segment file (`*.wal`) in `dir`, in name order.
pub fn first_segment(dir: &Path) -> io::Result<PathBuf> {
    SimDisk
        .list_dir(dir)?
        .into_iter()
        .find(|path| path.extension().is_some_and(|extension| extension == "wal"))
        .ok_or_else(|| io::Error::other(format!("{} holds no segment file", dir.display())))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Boots one host twice, crashing it in between, and returns what the
    /// two boots observed.
    fn two_boots(first: fn(&FaultDisk), second: fn(&FaultDisk) -> String) -> String {
        let mut sim = turmoil::Builder::new()
            .epoch(std::time::UNIX_EPOCH)
            .rng_seed(7)
            .build();
        let faults = Rc::new(DiskFaults::default());
        let boots = Rc::new(Cell::new(0));
        let seen = Rc::new(RefCell::new(String::new()));
        let host_faults = faults.clone();
        let host_seen = seen.clone();
        sim.host("disk", move || {
            let disk = FaultDisk::new(host_faults.clone());
            let boot = boots.get();
            boots.set(boot + 1);
            let seen = host_seen.clone();
            async move {
                if boot == 0 {
                    first(&disk);
                } else {
                    *seen.borrow_mut() = second(&disk);
                }
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        sim.step().unwrap();
        sim.crash("disk");
        faults.reset();
        sim.bounce("disk");
        sim.step().unwrap();
        let observed = seen.borrow().clone();
        observed
    }

    fn write_synced_then_unsynced(disk: &FaultDisk) {
        disk.create_dir_all(Path::new("/data")).unwrap();
        let file = disk.create_file(Path::new("/data/log")).unwrap();
        disk.sync_dir(Path::new("/data")).unwrap();
        file.write_all_at(b"kept", 0).unwrap();
        file.sync_data().unwrap();
        disk.faults.fail_syncs.set(true);
        file.write_all_at(b"lost", 4).unwrap();
        let error = file.sync_data().unwrap_err();
        assert!(error.to_string().contains("power loss"), "{error}");
        assert_eq!(disk.faults.unsynced_writes.get(), 1);
    }

    fn read_log(disk: &FaultDisk) -> String {
        String::from_utf8(disk.read_file(Path::new("/data/log")).unwrap()).unwrap()
    }

    #[test]
    fn failed_sync_loses_write_on_crash() {
        assert_eq!(two_boots(write_synced_then_unsynced, read_log), "kept");
    }

    fn write_dir_with_file(disk: &FaultDisk) {
        disk.create_dir_all(Path::new("/data/wal")).unwrap();
        let file = disk.create_file(Path::new("/data/wal/log")).unwrap();
        file.write_all_at(b"x", 0).unwrap();
        file.sync_data().unwrap();
        disk.sync_dir(Path::new("/data/wal")).unwrap();
        wipe_dir(Path::new("/data")).unwrap();
    }

    fn data_exists(_: &FaultDisk) -> String {
        sim_fs::exists("/data").to_string()
    }

    #[test]
    fn wipe_survives_crash() {
        assert_eq!(two_boots(write_dir_with_file, data_exists), "false");
    }

    fn write_and_flip(disk: &FaultDisk) {
        disk.create_dir_all(Path::new("/data")).unwrap();
        let file = disk.create_file(Path::new("/data/log")).unwrap();
        disk.sync_dir(Path::new("/data")).unwrap();
        file.write_all_at(b"abc", 0).unwrap();
        file.sync_data().unwrap();
        flip_byte(Path::new("/data/log"), 1).unwrap();
        let error = flip_byte(Path::new("/data/log"), 3).unwrap_err();
        assert!(error.to_string().contains("has 3 bytes"), "{error}");
    }

    fn write_two_records(disk: &FaultDisk) {
        disk.create_dir_all(Path::new("/data")).unwrap();
        let file = disk.create_file(Path::new("/data/1.wal")).unwrap();
        disk.sync_dir(Path::new("/data")).unwrap();
        let mut bytes = Vec::new();
        for payload in [&b"abcd"[..], &b"0123456789"[..]] {
            bytes.extend_from_slice(b"AWAL");
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&[0; 12]);
            bytes.extend_from_slice(payload);
        }
        file.write_all_at(&bytes, 0).unwrap();
        file.sync_data().unwrap();
    }

    fn locate_second_payload(_: &FaultDisk) -> String {
        let segment = first_segment(Path::new("/data")).unwrap();
        let first = record_payload_middle(&segment, 1).unwrap();
        let second = record_payload_middle(&segment, 2).unwrap();
        let missing = record_payload_middle(&segment, 3).unwrap_err();
        format!("{} {first} {second} {missing}", segment.display())
    }

    #[test]
    fn record_offsets_follow_framing() {
        let found = two_boots(write_two_records, locate_second_payload);
        assert_eq!(
            found,
            "/data/1.wal 22 49 /data/1.wal ends at byte 54 before record 3"
        );
    }

    #[test]
    fn flipped_byte_is_durable() {
        assert_eq!(two_boots(write_and_flip, read_log), "acc");
    }
}
