//! The [`Disk`] on turmoil's simulated file system.
//!
//! Each simulated host has its own file system. In turmoil 0.7.2,
//! `Sim::crash` drops every write that was not synced, removes files and
//! directories whose parent directory was never synced after their creation,
//! and rolls back renames and removals that were not synced. Every function
//! of turmoil's file system shim panics when called outside a simulation, so
//! a `SimDisk` works only inside a turmoil host or client. turmoil reads
//! every path as absolute.

use std::io;
use std::path::{Path, PathBuf};

use turmoil::fs::shim::std::fs::{self as sim_fs, File, OpenOptions};

use super::disk::{missing_ancestors, sync_parents, Disk, DiskFile};

/// The simulated file system of the current turmoil host.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimDisk;

impl Disk for SimDisk {
    type File = File;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let created = missing_ancestors(dir, |path| {
            sim_fs::metadata(path).is_ok_and(|metadata| metadata.is_dir())
        });
        sim_fs::create_dir_all(dir)?;
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
        sim_fs::read(path)
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(sim_fs::metadata(path)?.len())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        sim_fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        sim_fs::remove_file(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        // turmoil collects the entries in a hash set, so the order must be
        // fixed here to keep a simulation deterministic.
        let mut paths = Vec::new();
        for entry in sim_fs::read_dir(dir)? {
            paths.push(entry?.path());
        }
        paths.sort();
        Ok(paths)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        sim_fs::sync_dir(dir)
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
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use tokio::sync::Notify;

    use super::*;
    use crate::wal::{MetaFile, Wal, WalOptions};

    const WAL_DIR: &str = "/data/node/wal";

    /// Runs `before` on a simulated host, crashes the host (dropping what was
    /// not synced), restarts it and runs `after` on the same file system.
    fn crash_between(before: fn(), after: fn()) {
        let sim = turmoil::Builder::new().build();
        run_boots(
            sim,
            2,
            move |boot| if boot == 0 { before() } else { after() },
        );
    }

    /// Boots a simulated host `boots` times, crashing it before each restart,
    /// and runs `boot` with the boot number (from 0) each time.
    fn run_boots(mut sim: turmoil::Sim<'_>, boots: u32, boot: impl Fn(u32) + 'static) {
        let boot = Rc::new(boot);
        let boot_number = Rc::new(Cell::new(0));
        let done = Rc::new(Notify::new());

        let host_number = boot_number.clone();
        let host_done = done.clone();
        sim.host("node", move || {
            let number = host_number.get();
            let boot = boot.clone();
            let done = host_done.clone();
            async move {
                boot(number);
                done.notify_one();
                std::future::pending::<()>().await;
                Ok(())
            }
        });

        for number in 0..boots {
            if number > 0 {
                sim.crash("node");
                boot_number.set(number);
                sim.bounce("node");
            }
            wait_for(&mut sim, &format!("boot-{number}"), &done);
        }
    }

    fn wait_for(sim: &mut turmoil::Sim, client: &str, done: &Rc<Notify>) {
        let done = done.clone();
        sim.client(client, async move {
            done.notified().await;
            Ok(())
        });
        sim.run().unwrap();
    }

    fn small_segments() -> WalOptions {
        WalOptions { segment_bytes: 64 }
    }

    fn payload(op: u64) -> Vec<u8> {
        format!("payload {op}").into_bytes()
    }

    #[test]
    fn sim_disk_round_trip() {
        crash_between(
            || {
                let disk = SimDisk;
                let dir = Path::new("/data/files");
                disk.create_dir_all(dir).unwrap();
                let path = dir.join("file");
                let file = disk.create_file(&path).unwrap();
                file.write_all_at(b"hello world", 0).unwrap();
                file.set_len(5).unwrap();
                file.sync_data().unwrap();
                disk.sync_dir(dir).unwrap();
                assert_eq!(disk.read_file(&path).unwrap(), b"hello");
                assert_eq!(disk.file_len(&path).unwrap(), 5);
                disk.create_file(&dir.join("b")).unwrap();
                disk.rename(&path, &dir.join("a")).unwrap();
                disk.sync_dir(dir).unwrap();
            },
            || {
                let disk = SimDisk;
                let dir = Path::new("/data/files");
                let listed = disk.list_dir(dir).unwrap();
                assert_eq!(listed, [dir.join("a"), dir.join("b")]);
                assert_eq!(disk.read_file(&dir.join("a")).unwrap(), b"hello");
                disk.remove_file(&dir.join("b")).unwrap();
                assert_eq!(disk.list_dir(dir).unwrap(), [dir.join("a")]);
            },
        );
    }

    #[test]
    fn sim_crash_drops_unsynced_file() {
        crash_between(
            || {
                let disk = SimDisk;
                let dir = Path::new("/data/files");
                disk.create_dir_all(dir).unwrap();
                let file = disk.create_file(&dir.join("unsynced")).unwrap();
                file.write_all_at(b"lost", 0).unwrap();
            },
            || {
                let disk = SimDisk;
                let listed = disk.list_dir(Path::new("/data/files")).unwrap();
                assert!(listed.is_empty(), "unsynced file survived: {listed:?}");
            },
        );
    }

    #[test]
    fn sim_wal_keeps_only_synced_records() {
        crash_between(
            || {
                let (mut wal, _) = Wal::open(SimDisk, WAL_DIR, WalOptions::default()).unwrap();
                for op in 1..=3 {
                    wal.append(op, &payload(op)).unwrap();
                }
                assert_eq!(wal.sync().unwrap(), 3);
                // These go over the zeros that the sync above made durable,
                // so the crash must bring those zeros back.
                for op in 4..=5 {
                    wal.append(op, &payload(op)).unwrap();
                }
                assert_eq!(wal.durable_op(), 3);
                assert_eq!(wal.last_op(), 5);
            },
            || {
                let (mut wal, recovery) =
                    Wal::open(SimDisk, WAL_DIR, WalOptions::default()).unwrap();
                let ops: Vec<u64> = recovery.records.iter().map(|r| r.op).collect();
                assert_eq!(ops, [1, 2, 3]);
                assert_eq!(recovery.records[2].payload, payload(3));
                assert!(recovery.repairs.is_empty());
                assert_eq!(wal.last_op(), 3);
                wal.append(4, &payload(4)).unwrap();
                assert_eq!(wal.sync().unwrap(), 4);
            },
        );
    }

    #[test]
    fn sim_wal_segments_survive_crash() {
        crash_between(
            || {
                let (mut wal, _) = Wal::open(SimDisk, WAL_DIR, small_segments()).unwrap();
                for op in 1..=20 {
                    wal.append(op, &payload(op)).unwrap();
                }
                wal.sync().unwrap();
                assert!(wal.segment_count() > 3, "{} segments", wal.segment_count());
            },
            || {
                let (wal, recovery) = Wal::open(SimDisk, WAL_DIR, small_segments()).unwrap();
                let ops: Vec<u64> = recovery.records.iter().map(|r| r.op).collect();
                assert_eq!(ops, (1..=20).collect::<Vec<_>>());
                assert_eq!(wal.last_op(), 20);
            },
        );
    }

    #[test]
    fn sim_wal_truncation_survives_crash() {
        crash_between(
            || {
                let (mut wal, _) = Wal::open(SimDisk, WAL_DIR, small_segments()).unwrap();
                for op in 1..=20 {
                    wal.append(op, &payload(op)).unwrap();
                }
                wal.sync().unwrap();
                wal.truncate_after(7).unwrap();
                wal.remove_segments_before(5).unwrap();
            },
            || {
                let (wal, recovery) = Wal::open(SimDisk, WAL_DIR, small_segments()).unwrap();
                let ops: Vec<u64> = recovery.records.iter().map(|r| r.op).collect();
                assert_eq!(ops.last(), Some(&7));
                assert!(ops[0] <= 5, "op 5 was removed: {ops:?}");
                assert!(ops[0] > 1, "no segment was removed: {ops:?}");
                assert_eq!(wal.first_op(), ops[0]);
            },
        );
    }

    #[test]
    fn sim_meta_file_survives_crash() {
        crash_between(
            || {
                let disk = SimDisk;
                let path = Path::new("/data/node/meta");
                disk.create_dir_all(Path::new("/data/node")).unwrap();
                MetaFile::store(&disk, path, b"view 1").unwrap();
                MetaFile::store(&disk, path, b"view 2").unwrap();
            },
            || {
                let loaded = MetaFile::load(&SimDisk, Path::new("/data/node/meta")).unwrap();
                assert_eq!(loaded.as_deref(), Some(&b"view 2"[..]));
            },
        );
    }

    #[test]
    fn sim_torn_write_is_repaired() {
        let mut repaired = 0;
        for seed in 0..6 {
            let mut builder = turmoil::Builder::new();
            builder.rng_seed(seed);
            builder.fs().block_size(4096);
            let repairs = Rc::new(Cell::new(0));
            let boot_repairs = repairs.clone();

            run_boots(builder.build(), 3, move |boot| {
                let (mut wal, recovery) =
                    Wal::open(SimDisk, WAL_DIR, WalOptions::default()).unwrap();
                let ops: Vec<u64> = recovery.records.iter().map(|r| r.op).collect();
                match boot {
                    0 => {
                        append_synced(&mut wal, 1..=3);
                        // A payload this large is written through without a
                        // sync, so the crash tears it at a block boundary.
                        wal.append(4, &vec![4; 1 << 20]).unwrap();
                        assert_eq!(wal.durable_op(), 3);
                    }
                    1 => {
                        assert!(
                            ops == [1, 2, 3] || ops == [1, 2, 3, 4],
                            "seed {seed}: {ops:?}"
                        );
                        for repair in &recovery.repairs {
                            assert_eq!(repair.offset, expected_end_of(3), "seed {seed}");
                        }
                        boot_repairs.set(recovery.repairs.len());
                        let next = wal.last_op() + 1;
                        append_synced(&mut wal, next..=next);
                    }
                    _ => {
                        assert!(recovery.repairs.is_empty(), "seed {seed}");
                        assert!(ops.len() >= 4, "seed {seed}: {ops:?}");
                    }
                }
            });
            repaired += repairs.get();
        }
        assert!(repaired > 0, "no seed tore the unsynced write");
    }

    #[test]
    fn sim_random_crashes_keep_durable_prefix() {
        for seed in 0..4 {
            let mut builder = turmoil::Builder::new();
            builder.rng_seed(seed);
            builder.fs().sync_probability(0.3);
            let durable = Rc::new(Cell::new(0));
            let boot_durable = durable.clone();

            run_boots(builder.build(), 8, move |boot| {
                let (mut wal, recovery) = Wal::open(SimDisk, WAL_DIR, small_segments()).unwrap();
                let ops: Vec<u64> = recovery.records.iter().map(|r| r.op).collect();
                assert_eq!(ops, (1..=wal.last_op()).collect::<Vec<_>>(), "seed {seed}");
                assert!(
                    wal.last_op() >= boot_durable.get(),
                    "seed {seed} boot {boot}: lost durable op {}, recovered up to {}",
                    boot_durable.get(),
                    wal.last_op()
                );
                for record in &recovery.records {
                    assert_eq!(record.payload, payload(record.op), "seed {seed}");
                }

                let start = wal.last_op() + 1;
                for op in start..start + 10 {
                    wal.append(op, &payload(op)).unwrap();
                    if op % 3 == 0 {
                        boot_durable.set(wal.sync().unwrap());
                    }
                }
            });
            assert!(
                durable.get() > 30,
                "seed {seed}: durable op {}",
                durable.get()
            );
        }
    }

    fn append_synced<D: Disk>(wal: &mut Wal<D>, ops: std::ops::RangeInclusive<u64>) {
        for op in ops {
            wal.append(op, &payload(op)).unwrap();
        }
        wal.sync().unwrap();
    }

    /// Returns the byte offset just past the records of ops 1 to `op`.
    fn expected_end_of(op: u64) -> u64 {
        (1..=op)
            .map(|op| crate::wal::record::framed_len(payload(op).len()) as u64)
            .sum()
    }
}
