//! The segmented log: append, group commit, truncation, compaction and
//! recovery.

use std::path::{Path, PathBuf};

use tracing::{debug, info, warn};

use super::disk::{DetachedSync, Disk, DiskFile};
use super::error::{io_error, CorruptReason, WalError};
use super::record::{self, DecodedRecord};
use super::segment::{self, Segment};

/// The default size after which the log starts a new segment: 64 MiB. Larger
/// segments mean fewer files and directory syncs; smaller ones let
/// compaction free space sooner.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;

/// The number of buffered bytes after which `append` writes them to the
/// segment file without waiting for `sync`: 1 MiB. It bounds the memory of a
/// long run of appends without a sync.
const WRITE_BUFFER_BYTES_MAX: usize = 1 << 20;

/// How far ahead of the records the head segment is filled with zeros: 1 MiB.
/// A record written over zeros changes neither the file's length nor its
/// block map, so on ext4 its `fdatasync` needs no journal commit. Measured
/// here, that cut a lone sync from 170 to 112 us (docs/BENCHMARKS.md).
/// Recovery reads the zeros after the last record as the end of the log.
const ZERO_AHEAD_BYTES: u64 = 1 << 20;

/// The alignment of the zero-filled end of the head segment: 4 KiB, the
/// usual page size and ext4 block size.
const ZERO_ALIGN_BYTES: u64 = 4096;

/// Settings of a [`Wal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// The segment size in bytes after which the next append starts a new
    /// segment. A segment exceeds it by up to one record.
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
        }
    }
}

/// A record read back by [`Wal::open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub op: u64,
    pub payload: Vec<u8>,
}

/// A torn tail that [`Wal::open`] cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    /// The segment file that was truncated.
    pub path: PathBuf,
    /// The byte offset the file was truncated to: the start of the damaged record.
    pub offset: u64,
    /// The number of bytes removed.
    pub bytes_removed: u64,
    /// The defect found in the record at `offset`.
    pub reason: CorruptReason,
}

/// The records and repairs found by [`Wal::open`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Every stored record, in op order. All of them are durable.
    pub records: Vec<Record>,
    /// The torn tails that were truncated, at most one per open.
    pub repairs: Vec<Repair>,
}

/// The result of [`Wal::start_sync`].
pub enum SyncStart {
    /// Every record appended so far is durable (there was nothing to sync,
    /// or the disk synced on the calling thread). Holds the durable op.
    Durable(u64),
    /// The records up to `ticket.through_op` are written and become durable
    /// once `sync` has run, on any thread, and its result has been passed to
    /// [`Wal::finish_sync`] with the ticket.
    Detached {
        ticket: SyncTicket,
        sync: DetachedSync,
    },
}

/// The part of a detached sync that comes back to [`Wal::finish_sync`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncTicket {
    /// The newest op that the sync makes durable.
    pub through_op: u64,
    /// The segment file being synced, for the error message.
    path: PathBuf,
    /// [`Wal::truncations`] when the sync started: a truncation since then
    /// may have reused the op numbers, so the sync proves nothing about them.
    truncations: u64,
}

/// The write-ahead log of one node: opaque payloads keyed by contiguous op
/// numbers, in segment files of one directory.
///
/// Invariants: `first_op() <= last_op() + 1`, `durable_op() <= last_op()`,
/// and every segment but the last is durable in full.
///
/// After any method returns an error, the in-memory state may not match the
/// disk, because after a failed `fdatasync` the kernel may have dropped the
/// data. So every later call returns [`WalError::Poisoned`]. Drop the `Wal` and
/// open it again, which recovers from what the disk holds.
pub struct Wal<D: Disk> {
    disk: D,
    dir: PathBuf,
    options: WalOptions,
    /// The segments, oldest first, never empty. The last one is the head,
    /// which appends go to. `truncate_after` and `remove_segments_before`
    /// remove entries; a new head is pushed when the head is full.
    segments: Vec<Segment>,
    /// The open file of the head segment.
    head: D::File,
    /// The number of record bytes written to the head file (not counting
    /// `buffer`): the offset of the next write.
    head_written: u64,
    /// The length of the head file. The bytes from `head_written` to it are
    /// zeros written ahead of the records (see [`ZERO_AHEAD_BYTES`]).
    head_len: u64,
    /// Records appended but not yet written to the head file.
    buffer: Vec<u8>,
    /// The op number of the newest record, or `first_op - 1` if there is none.
    /// Advanced by `append`, lowered by `truncate_after`.
    last_op: u64,
    /// The newest op known to be on stable storage. Advanced by `sync`.
    durable_op: u64,
    /// Set when a method fails; see the type documentation.
    poisoned: bool,
    /// The number of truncations that removed records, so that a detached
    /// sync started before one cannot mark the new records durable.
    truncations: u64,
}

impl<D: Disk> Wal<D> {
    /// Opens the log in `dir`, creating the directory and a first segment if
    /// they are missing, and replays every segment in op order.
    ///
    /// A damaged record at the tail of the last segment, with nothing valid
    /// after it, is the normal result of a crash during a write: the file is
    /// truncated there and the repair is logged and returned in
    /// [`Recovery::repairs`]. Any other damage, and a gap between segments,
    /// returns [`WalError::Corrupt`].
    ///
    /// # Panics
    ///
    /// If `options.segment_bytes` is zero.
    pub fn open(
        disk: D,
        dir: impl Into<PathBuf>,
        options: WalOptions,
    ) -> Result<(Wal<D>, Recovery), WalError> {
        assert!(
            options.segment_bytes > 0,
            "WAL segment_bytes must be positive"
        );
        let dir = dir.into();
        disk.create_dir_all(&dir)
            .map_err(io_error("create directory", &dir, None))?;

        let mut segments = list_segments(&disk, &dir)?;
        if segments.is_empty() {
            let segment = Segment::new(&dir, 1);
            create_segment(&disk, &dir, &segment)?;
            segments.push(segment);
        }
        let (recovery, next_op, records_end) = replay(&disk, &segments)?;

        let head_segment = segments.last().expect("at least one segment");
        let head = disk.open_file(&head_segment.path).map_err(io_error(
            "open",
            &head_segment.path,
            None,
        ))?;
        let head_len = disk.file_len(&head_segment.path).map_err(io_error(
            "read the length of",
            &head_segment.path,
            None,
        ))?;
        // The records just read may still sit only in the page cache, left by
        // a process that crashed before its sync. They are returned as durable.
        head.sync_data()
            .map_err(io_error("sync", &head_segment.path, None))?;

        let last_op = next_op - 1;
        info!(
            dir = %dir.display(),
            segments = segments.len(),
            first_op = segments[0].first_op,
            last_op,
            repairs = recovery.repairs.len(),
            "opened WAL"
        );
        let wal = Wal {
            disk,
            dir,
            options,
            segments,
            head,
            head_written: records_end,
            head_len,
            buffer: Vec::new(),
            last_op,
            durable_op: last_op,
            poisoned: false,
            truncations: 0,
        };
        Ok((wal, recovery))
    }

    /// Appends the record of `op` without syncing it. When the head segment
    /// is full this first syncs it and starts a new segment.
    ///
    /// # Panics
    ///
    /// If `op` is not `last_op() + 1`, or the payload is longer than
    /// [`PAYLOAD_BYTES_MAX`](super::PAYLOAD_BYTES_MAX).
    pub fn append(&mut self, op: u64, payload: &[u8]) -> Result<(), WalError> {
        assert!(
            op == self.last_op + 1,
            "WAL append of op {op} out of order: the last op is {}",
            self.last_op
        );
        self.guard(|wal| wal.append_record(op, payload))
    }

    /// Makes every record appended so far durable with one `fdatasync`, and
    /// returns the newest durable op.
    pub fn sync(&mut self) -> Result<u64, WalError> {
        self.guard(Self::sync_head)
    }

    /// Writes every appended record to the head file and returns a sync that
    /// makes them durable, to run on another thread (group commit without
    /// blocking the caller). Appends may go on meanwhile: they are covered by
    /// the next sync. A disk that cannot sync on another thread syncs here and
    /// returns [`SyncStart::Durable`].
    pub fn start_sync(&mut self) -> Result<SyncStart, WalError> {
        self.guard(Self::detach_head_sync)
    }

    /// Records the result of a detached sync and returns the newest durable
    /// op. A failed sync poisons the log, because the kernel may have dropped
    /// the data. A sync that started before a truncation which removed
    /// records changes nothing: that truncation synced what it kept.
    pub fn finish_sync(
        &mut self,
        ticket: SyncTicket,
        result: std::io::Result<()>,
    ) -> Result<u64, WalError> {
        self.guard(|wal| {
            result.map_err(io_error("sync", &ticket.path, None))?;
            if ticket.truncations == wal.truncations {
                assert!(
                    ticket.through_op <= wal.last_op,
                    "WAL sync through op {} finished, but the log holds up to {}",
                    ticket.through_op,
                    wal.last_op
                );
                wal.durable_op = wal.durable_op.max(ticket.through_op);
            }
            Ok(wal.durable_op)
        })
    }

    /// Removes every record after `op` and makes the removal durable. The
    /// records up to `op` are durable when it returns. Does nothing but sync
    /// if `op >= last_op()`.
    ///
    /// # Panics
    ///
    /// If `op + 1 < first_op()`: the records before `first_op` were removed
    /// after a snapshot, so they are committed and must not be truncated.
    pub fn truncate_after(&mut self, op: u64) -> Result<(), WalError> {
        assert!(
            op + 1 >= self.first_op(),
            "WAL truncate_after({op}) reaches below the first stored op {}",
            self.first_op()
        );
        self.guard(|wal| wal.truncate_records_after(op))
    }

    /// Deletes every segment whose records all come before `op`, and syncs
    /// the directory. The head segment always stays. Returns the number of
    /// segments deleted.
    pub fn remove_segments_before(&mut self, op: u64) -> Result<usize, WalError> {
        self.guard(|wal| wal.remove_old_segments(op))
    }

    /// Deletes every record and makes the log continue at `op + 1`, for a
    /// node that installed a snapshot at `op` from a peer. The snapshot must
    /// be durable first. Removes the segments oldest first and then creates
    /// the new one, so a crash part way leaves no gap. A log left empty by
    /// such a crash opens at op 1, and the caller restarts it again.
    pub fn restart_after(&mut self, op: u64) -> Result<(), WalError> {
        self.guard(|wal| wal.replace_all_segments(op))
    }

    /// Returns the op number of the newest record, or `first_op() - 1` if the
    /// log contains none.
    pub fn last_op(&self) -> u64 {
        self.last_op
    }

    /// Returns the newest op known to be on stable storage.
    pub fn durable_op(&self) -> u64 {
        self.durable_op
    }

    /// Returns the op number of the oldest stored record, or of the next
    /// append if the log contains none.
    pub fn first_op(&self) -> u64 {
        self.segments[0].first_op
    }

    /// Returns the number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Returns the directory of the segment files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the disk the log is stored on.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Runs `step` unless the log is poisoned, and poisons it if `step` fails.
    fn guard<T>(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<T, WalError>,
    ) -> Result<T, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned {
                dir: self.dir.clone(),
            });
        }
        let result = step(self);
        if let Err(error) = &result {
            warn!(dir = %self.dir.display(), %error, "WAL operation failed, log poisoned");
            self.poisoned = true;
        }
        result
    }

    fn append_record(&mut self, op: u64, payload: &[u8]) -> Result<(), WalError> {
        let head_bytes = self.head_written + self.buffer.len() as u64;
        let head_has_records = self.last_op >= self.head_segment().first_op;
        if head_bytes >= self.options.segment_bytes && head_has_records {
            self.start_segment()?;
        }

        let start = self.buffer.len();
        record::encode(op, payload, &mut self.buffer);
        debug_assert_eq!(
            record::decode(&self.buffer[start..]),
            Ok(DecodedRecord { op, payload })
        );
        self.last_op = op;

        if self.buffer.len() >= WRITE_BUFFER_BYTES_MAX {
            self.write_buffer()?;
        }
        Ok(())
    }

    /// Cuts the zeros off the full head segment, syncs it and makes a new,
    /// empty one the head. The sync comes first so that a crash can never
    /// leave a torn or zero-filled segment followed by a newer one, which
    /// recovery would report as corrupt.
    fn start_segment(&mut self) -> Result<(), WalError> {
        self.write_buffer()?;
        if self.head_len > self.head_written {
            let path = &self.head_segment().path;
            self.head
                .set_len(self.head_written)
                .and_then(|()| self.head.sync_data())
                .map_err(io_error("cut the zeros off", path, Some(self.head_written)))?;
            self.head_len = self.head_written;
        }
        self.sync_head()?;
        let segment = Segment::new(&self.dir, self.last_op + 1);
        let head = create_segment(&self.disk, &self.dir, &segment)?;
        self.head = head;
        self.head_written = 0;
        self.head_len = 0;
        self.segments.push(segment);
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<(), WalError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let path = &self.segments.last().expect("head segment").path;
        let end = self.head_written + self.buffer.len() as u64;
        self.head
            .write_all_at(&self.buffer, self.head_written)
            .map_err(io_error("write to", path, Some(self.head_written)))?;
        self.head_written = end;
        self.buffer.clear();

        if end > self.head_len {
            self.head_len = end;
            let zeroed_end = (end + ZERO_AHEAD_BYTES)
                .min(self.options.segment_bytes)
                .next_multiple_of(ZERO_ALIGN_BYTES);
            if zeroed_end > end {
                let zeros = vec![0; (zeroed_end - end) as usize];
                self.head.write_all_at(&zeros, end).map_err(io_error(
                    "write zeros to",
                    path,
                    Some(end),
                ))?;
                self.head_len = zeroed_end;
            }
        }
        Ok(())
    }

    fn sync_head(&mut self) -> Result<u64, WalError> {
        self.write_buffer()?;
        if self.durable_op < self.last_op {
            #[cfg(feature = "planted-bugs")]
            let skip = crate::planted::active(crate::planted::Bug::AckBeforeFsync);
            #[cfg(not(feature = "planted-bugs"))]
            let skip = false;
            if !skip {
                let path = &self.head_segment().path;
                self.head
                    .sync_data()
                    .map_err(io_error("sync", path, None))?;
            }
            self.durable_op = self.last_op;
        }
        Ok(self.durable_op)
    }

    fn detach_head_sync(&mut self) -> Result<SyncStart, WalError> {
        self.write_buffer()?;
        if self.durable_op >= self.last_op {
            return Ok(SyncStart::Durable(self.durable_op));
        }
        let path = self.head_segment().path.clone();
        let detached =
            self.head
                .detached_sync()
                .map_err(io_error("prepare a sync of", &path, None))?;
        match detached {
            None => self.sync_head().map(SyncStart::Durable),
            Some(sync) => Ok(SyncStart::Detached {
                ticket: SyncTicket {
                    through_op: self.last_op,
                    path,
                    truncations: self.truncations,
                },
                sync,
            }),
        }
    }

    fn truncate_records_after(&mut self, op: u64) -> Result<(), WalError> {
        if op >= self.last_op {
            self.sync_head()?;
            return Ok(());
        }
        self.write_buffer()?;

        // The segment that contains op + 1, which exists because op < last_op.
        let keep = self
            .segments
            .iter()
            .rposition(|segment| segment.first_op <= op + 1)
            .expect("the first segment starts at or before op + 1");
        let target = self.segments[keep].clone();
        let offset = record_offset(&self.disk, &target, op + 1)?;
        let target_file =
            self.disk
                .open_file(&target.path)
                .map_err(io_error("open", &target.path, None))?;

        // Newest first, so a crash part way leaves a log without a gap.
        let removing = self.segments.len() > keep + 1;
        while self.segments.len() > keep + 1 {
            let removed = self.segments.last().expect("segment after the target");
            self.disk.remove_file(&removed.path).map_err(io_error(
                "remove",
                &removed.path,
                None,
            ))?;
            debug!(path = %removed.path.display(), "removed WAL segment after truncation");
            self.segments.pop();
        }
        if removing {
            self.disk
                .sync_dir(&self.dir)
                .map_err(io_error("sync directory", &self.dir, None))?;
        }
        self.head = target_file;

        self.head
            .set_len(offset)
            .map_err(io_error("truncate", &target.path, Some(offset)))?;
        self.head
            .sync_data()
            .map_err(io_error("sync", &target.path, None))?;
        info!(
            path = %target.path.display(),
            offset,
            from_op = op + 1,
            to_op = self.last_op,
            "truncated WAL"
        );
        self.head_written = offset;
        self.head_len = offset;
        self.last_op = op;
        self.durable_op = op;
        self.truncations += 1;
        Ok(())
    }

    fn remove_old_segments(&mut self, op: u64) -> Result<usize, WalError> {
        // A segment's records all come before `op` when the next segment
        // starts at or before `op`; the head has no next segment.
        let count = self
            .segments
            .windows(2)
            .take_while(|pair| pair[1].first_op <= op)
            .count();
        if count == 0 {
            return Ok(0);
        }

        // Oldest first, so a crash part way leaves a log without a gap.
        for segment in &self.segments[..count] {
            self.disk.remove_file(&segment.path).map_err(io_error(
                "remove",
                &segment.path,
                None,
            ))?;
        }
        self.segments.drain(..count);
        self.disk
            .sync_dir(&self.dir)
            .map_err(io_error("sync directory", &self.dir, None))?;
        info!(
            dir = %self.dir.display(),
            removed = count,
            first_op = self.first_op(),
            "removed WAL segments before op {op}"
        );
        Ok(count)
    }

    fn replace_all_segments(&mut self, op: u64) -> Result<(), WalError> {
        self.buffer.clear();
        for segment in &self.segments {
            self.disk.remove_file(&segment.path).map_err(io_error(
                "remove",
                &segment.path,
                None,
            ))?;
        }
        self.disk
            .sync_dir(&self.dir)
            .map_err(io_error("sync directory", &self.dir, None))?;
        let segment = Segment::new(&self.dir, op + 1);
        self.head = create_segment(&self.disk, &self.dir, &segment)?;
        self.segments = vec![segment];
        self.head_written = 0;
        self.head_len = 0;
        self.last_op = op;
        self.durable_op = op;
        info!(dir = %self.dir.display(), next_op = op + 1, "restarted WAL after a snapshot");
        Ok(())
    }

    fn head_segment(&self) -> &Segment {
        self.segments.last().expect("head segment")
    }
}

/// Returns the segments in `dir`, in op order. Files with other names are
/// skipped; a `.wal` file with a malformed name is logged.
fn list_segments(disk: &impl Disk, dir: &Path) -> Result<Vec<Segment>, WalError> {
    let paths = disk
        .list_dir(dir)
        .map_err(io_error("list directory", dir, None))?;
    let mut segments = Vec::new();
    for path in paths {
        let name = path.file_name().map(|name| name.to_string_lossy());
        match name.as_deref().and_then(segment::parse_file_name) {
            Some(first_op) => segments.push(Segment { first_op, path }),
            None if name.is_some_and(|name| name.ends_with(".wal")) => {
                warn!(path = %path.display(), "skipping WAL file with a malformed name");
            }
            None => {}
        }
    }
    segments.sort_by_key(|segment| segment.first_op);
    Ok(segments)
}

/// Creates the empty file of `segment` and syncs the directory.
fn create_segment<D: Disk>(disk: &D, dir: &Path, segment: &Segment) -> Result<D::File, WalError> {
    let file = disk
        .create_file(&segment.path)
        .map_err(io_error("create", &segment.path, None))?;
    disk.sync_dir(dir)
        .map_err(io_error("sync directory", dir, None))?;
    debug!(path = %segment.path.display(), first_op = segment.first_op, "created WAL segment");
    Ok(file)
}

/// Reads every segment, checks that they continue each other, and repairs a
/// torn tail of the last one. Returns the records, the next op number and
/// the byte offset where the last segment's records end.
fn replay(disk: &impl Disk, segments: &[Segment]) -> Result<(Recovery, u64, u64), WalError> {
    let mut recovery = Recovery::default();
    if segments[0].first_op == 0 {
        return Err(WalError::Corrupt {
            path: segments[0].path.clone(),
            offset: 0,
            reason: CorruptReason::OpGap {
                expected: 1,
                found: 0,
            },
        });
    }

    let mut next_op = segments[0].first_op;
    let mut records_end = 0;
    for (index, segment) in segments.iter().enumerate() {
        if segment.first_op != next_op {
            return Err(WalError::Corrupt {
                path: segment.path.clone(),
                offset: 0,
                reason: CorruptReason::OpGap {
                    expected: next_op,
                    found: segment.first_op,
                },
            });
        }
        let is_last = index + 1 == segments.len();
        let (count, end) = replay_segment(disk, segment, is_last, &mut recovery)?;
        next_op += count;
        records_end = end;
    }
    Ok((recovery, next_op, records_end))
}

/// Reads one segment's records into `recovery`. Returns how many there were
/// and the byte offset where they end.
///
/// Zeros after the records of the last segment are the space written ahead
/// of them ([`ZERO_AHEAD_BYTES`]) and stay. Any other damaged tail is cut off.
fn replay_segment(
    disk: &impl Disk,
    segment: &Segment,
    is_last: bool,
    recovery: &mut Recovery,
) -> Result<(u64, u64), WalError> {
    let bytes = disk
        .read_file(&segment.path)
        .map_err(io_error("read", &segment.path, None))?;
    let corrupt = |(offset, reason)| WalError::Corrupt {
        path: segment.path.clone(),
        offset,
        reason,
    };
    let scan = segment::scan(&bytes, segment.first_op).map_err(corrupt)?;

    let count = scan.records.len() as u64;
    recovery
        .records
        .extend(scan.records.iter().map(|(_, record)| Record {
            op: record.op,
            payload: record.payload.to_vec(),
        }));

    let Some((offset, reason)) = scan.torn else {
        return Ok((count, bytes.len() as u64));
    };
    if !is_last {
        return Err(corrupt((offset, reason)));
    }
    if !matches!(reason, CorruptReason::ZeroFilled { .. }) {
        let repair = Repair {
            path: segment.path.clone(),
            offset,
            bytes_removed: bytes.len() as u64 - offset,
            reason,
        };
        repair_tail(disk, &repair)?;
        recovery.repairs.push(repair);
    }
    Ok((count, offset))
}

/// Truncates a torn tail away and syncs the file.
fn repair_tail(disk: &impl Disk, repair: &Repair) -> Result<(), WalError> {
    warn!(
        file = %repair.path.display(),
        offset = repair.offset,
        bytes_removed = repair.bytes_removed,
        reason = %repair.reason,
        "truncating torn WAL tail"
    );
    let file = disk
        .open_file(&repair.path)
        .map_err(io_error("open", &repair.path, None))?;
    file.set_len(repair.offset)
        .map_err(io_error("truncate", &repair.path, Some(repair.offset)))?;
    file.sync_data()
        .map_err(io_error("sync", &repair.path, None))
}

/// Returns the byte offset of record `op` in `segment`, which must hold it.
fn record_offset(disk: &impl Disk, segment: &Segment, op: u64) -> Result<u64, WalError> {
    if op == segment.first_op {
        return Ok(0);
    }
    let bytes = disk
        .read_file(&segment.path)
        .map_err(io_error("read", &segment.path, None))?;
    let corrupt = |(offset, reason)| WalError::Corrupt {
        path: segment.path.clone(),
        offset,
        reason,
    };
    let scan = segment::scan(&bytes, segment.first_op).map_err(corrupt)?;
    let found = scan
        .records
        .iter()
        .find(|(_, record)| record.op == op)
        .map(|(offset, _)| *offset);
    match (found, scan.torn) {
        (Some(offset), _) => Ok(offset),
        (None, Some(torn)) => Err(corrupt(torn)),
        (None, None) => panic!(
            "WAL segment {} is missing op {op}, which the log contains",
            segment.path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::fs::File;
    use std::io;
    use std::rc::Rc;

    use super::*;
    use crate::wal::record::{framed_len, HEADER_BYTES};
    use crate::wal::StdDisk;

    fn small_segments() -> WalOptions {
        WalOptions { segment_bytes: 100 }
    }

    fn payload(op: u64) -> Vec<u8> {
        format!("payload of op {op}").into_bytes()
    }

    fn open(dir: &Path, options: WalOptions) -> (Wal<StdDisk>, Recovery) {
        Wal::open(StdDisk, dir, options).unwrap()
    }

    fn ops(recovery: &Recovery) -> Vec<u64> {
        recovery.records.iter().map(|record| record.op).collect()
    }

    fn append_all(wal: &mut Wal<impl Disk>, ops: std::ops::RangeInclusive<u64>) {
        for op in ops {
            wal.append(op, &payload(op)).unwrap();
        }
    }

    fn segment_paths(dir: &Path) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
            .collect();
        paths.sort();
        paths
    }

    /// Returns the length in bytes of the records of `ops` written by
    /// `append_all`.
    fn records_len(ops: std::ops::RangeInclusive<u64>) -> usize {
        ops.map(|op| framed_len(payload(op).len())).sum()
    }

    /// Returns the length of a head segment whose records end at
    /// `records_end`, with the zeros written ahead of them.
    fn zero_filled_len(records_end: usize) -> u64 {
        (records_end as u64 + ZERO_AHEAD_BYTES).next_multiple_of(ZERO_ALIGN_BYTES)
    }

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    /// Writes a log of ops 1 to 3 and returns its only segment's path, the
    /// bytes of its records (without the zeros written ahead) and the offset
    /// of the last record.
    fn three_record_segment(dir: &Path) -> (PathBuf, Vec<u8>, u64) {
        let (mut wal, _) = open(dir, WalOptions::default());
        append_all(&mut wal, 1..=3);
        wal.sync().unwrap();
        let path = segment_paths(dir).pop().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(records_len(1..=3));
        let last = records_len(1..=2) as u64;
        (path, bytes, last)
    }

    #[test]
    fn open_empty_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("node/wal");
        let (wal, recovery) = open(&dir, WalOptions::default());

        assert_eq!(recovery, Recovery::default());
        assert_eq!(wal.first_op(), 1);
        assert_eq!(wal.last_op(), 0);
        assert_eq!(wal.durable_op(), 0);
        assert_eq!(segment_paths(&dir), [dir.join("00000000000000000001.wal")]);
    }

    #[test]
    fn open_clean_reopen() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        append_all(&mut wal, 1..=10);
        assert_eq!(wal.sync().unwrap(), 10);
        drop(wal);

        let (mut wal, recovery) = open(root.path(), WalOptions::default());
        assert_eq!(ops(&recovery), (1..=10).collect::<Vec<_>>());
        assert_eq!(recovery.records[6].payload, payload(7));
        assert!(recovery.repairs.is_empty());
        assert_eq!(wal.last_op(), 10);
        assert_eq!(wal.durable_op(), 10);

        wal.append(11, b"").unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, recovery) = open(root.path(), WalOptions::default());
        assert_eq!(recovery.records.last().unwrap().op, 11);
        assert_eq!(recovery.records.last().unwrap().payload, b"");
    }

    #[test]
    fn open_skips_unrelated_files() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        append_all(&mut wal, 1..=2);
        wal.sync().unwrap();
        drop(wal);
        std::fs::write(root.path().join("meta"), b"not a segment").unwrap();
        std::fs::write(root.path().join("1.wal"), b"not a segment").unwrap();

        let (_, recovery) = open(root.path(), WalOptions::default());
        assert_eq!(ops(&recovery), [1, 2]);
    }

    #[test]
    fn append_without_sync_is_not_durable() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        append_all(&mut wal, 1..=3);
        assert_eq!(wal.last_op(), 3);
        assert_eq!(wal.durable_op(), 0);
        assert_eq!(wal.sync().unwrap(), 3);
        assert_eq!(wal.durable_op(), 3);
        assert_eq!(wal.sync().unwrap(), 3);
    }

    #[test]
    #[should_panic(expected = "WAL append of op 3 out of order: the last op is 1")]
    fn append_out_of_order_panics() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        wal.append(1, b"one").unwrap();
        wal.append(3, b"three").unwrap();
    }

    #[test]
    #[should_panic(expected = "WAL append of op 1 out of order: the last op is 1")]
    fn append_duplicate_panics() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        wal.append(1, b"one").unwrap();
        wal.append(1, b"one").unwrap();
    }

    #[test]
    fn append_large_buffer_writes_through() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        let big = vec![7; WRITE_BUFFER_BYTES_MAX];
        wal.append(1, &big).unwrap();
        let path = segment_paths(root.path()).pop().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let decoded = record::decode(&bytes[..framed_len(big.len())]).unwrap();
        assert_eq!((decoded.op, decoded.payload), (1, &big[..]));
        assert_eq!(wal.durable_op(), 0);
    }

    #[test]
    fn tail_truncated_at_every_offset() {
        let template = tempfile::tempdir().unwrap();
        let (_, bytes, last) = three_record_segment(template.path());

        for cut in last..bytes.len() as u64 {
            let root = tempfile::tempdir().unwrap();
            let path = root.path().join(segment::file_name(1));
            std::fs::write(&path, &bytes[..cut as usize]).unwrap();

            let (mut wal, recovery) = open(root.path(), WalOptions::default());
            assert_eq!(ops(&recovery), [1, 2], "cut at {cut}");
            assert_eq!(wal.last_op(), 2, "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), last);
            if cut == last {
                assert!(recovery.repairs.is_empty(), "cut at {cut}");
            } else {
                assert_eq!(recovery.repairs.len(), 1, "cut at {cut}");
                let repair = &recovery.repairs[0];
                assert_eq!(repair.path, path);
                assert_eq!(repair.offset, last);
                assert_eq!(repair.bytes_removed, cut - last);
            }

            // The repaired log takes appends that a later open reads back.
            wal.append(3, b"rewritten").unwrap();
            wal.sync().unwrap();
            drop(wal);
            let (_, recovery) = open(root.path(), WalOptions::default());
            assert_eq!(ops(&recovery), [1, 2, 3], "cut at {cut}");
            assert_eq!(recovery.records[2].payload, b"rewritten");
            assert!(recovery.repairs.is_empty(), "cut at {cut}");
        }
    }

    #[test]
    fn tail_torn_header_reason() {
        let root = tempfile::tempdir().unwrap();
        let (path, bytes, last) = three_record_segment(root.path());
        std::fs::write(&path, &bytes[..last as usize + 5]).unwrap();
        let (_, recovery) = open(root.path(), WalOptions::default());
        assert_eq!(
            recovery.repairs[0].reason,
            CorruptReason::ShortHeader { len: 5 }
        );
    }

    #[test]
    fn tail_zeros_after_partial_record() {
        let root = tempfile::tempdir().unwrap();
        let (path, bytes, last) = three_record_segment(root.path());
        let mut torn = bytes[..last as usize + 10].to_vec();
        torn.extend([0; 4096]);
        std::fs::write(&path, &torn).unwrap();

        let (wal, recovery) = open(root.path(), WalOptions::default());
        assert_eq!(ops(&recovery), [1, 2]);
        assert_eq!(wal.last_op(), 2);
        assert_eq!(recovery.repairs.len(), 1);
        assert_eq!(recovery.repairs[0].offset, last);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), last);
    }

    #[test]
    fn records_go_over_zeros_written_ahead() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        append_all(&mut wal, 1..=2);
        wal.sync().unwrap();
        let path = segment_paths(root.path()).pop().unwrap();
        let zeroed_len = zero_filled_len(records_len(1..=2));
        assert_eq!(file_len(&path), zeroed_len);

        // A later record fits in the zeros: the file keeps its length.
        wal.append(3, &payload(3)).unwrap();
        wal.sync().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, zeroed_len);
        assert!(bytes[records_len(1..=3)..].iter().all(|&byte| byte == 0));
        drop(wal);
        let (_, recovery) = open(root.path(), WalOptions::default());
        assert_eq!(ops(&recovery), [1, 2, 3]);
        assert!(recovery.repairs.is_empty());
    }

    #[test]
    fn truncation_then_zeros_written_ahead() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        append_all(&mut wal, 1..=3);
        wal.sync().unwrap();
        wal.truncate_after(1).unwrap();
        let path = segment_paths(root.path()).pop().unwrap();
        assert_eq!(file_len(&path), records_len(1..=1) as u64);

        wal.append(2, b"other").unwrap();
        wal.sync().unwrap();
        let end = records_len(1..=1) + framed_len(b"other".len());
        assert_eq!(file_len(&path), zero_filled_len(end));
        drop(wal);
        let (_, recovery) = open(root.path(), WalOptions::default());
        assert_eq!(ops(&recovery), [1, 2]);
        assert_eq!(recovery.records[1].payload, b"other");
    }

    #[test]
    fn restart_after_snapshot_zero_fills() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        append_all(&mut wal, 1..=3);
        wal.sync().unwrap();
        wal.restart_after(10).unwrap();
        wal.append(11, &payload(11)).unwrap();
        wal.sync().unwrap();
        let path = segment_paths(root.path()).pop().unwrap();
        assert_eq!(file_len(&path), zero_filled_len(records_len(11..=11)));
    }

    #[test]
    fn full_segment_loses_its_zeros() {
        let root = tempfile::tempdir().unwrap();
        let options = WalOptions {
            segment_bytes: 8192,
        };
        let (mut wal, _) = open(root.path(), options.clone());
        let mut op = 0;
        while wal.segment_count() == 1 {
            op += 1;
            wal.append(op, &payload(op)).unwrap();
        }
        // The append of `op` started the second segment.
        let per_segment = op - 1;
        wal.append(op + 1, &payload(op + 1)).unwrap();
        wal.sync().unwrap();
        let paths = segment_paths(root.path());
        assert_eq!(paths.len(), 2);
        // The full segment ends at its last record. The head's zeros stop at
        // the segment size.
        assert_eq!(file_len(&paths[0]), records_len(1..=per_segment) as u64);
        assert_eq!(file_len(&paths[1]), options.segment_bytes);
        drop(wal);
        let (wal, recovery) = open(root.path(), options);
        assert_eq!(ops(&recovery), (1..=op + 1).collect::<Vec<_>>());
        assert!(recovery.repairs.is_empty());
        assert_eq!(wal.last_op(), op + 1);
    }

    #[test]
    fn tail_zero_filled_after_records_is_kept() {
        let root = tempfile::tempdir().unwrap();
        let (path, mut bytes, _) = three_record_segment(root.path());
        let end = bytes.len();
        bytes.extend([0; 512]);
        std::fs::write(&path, &bytes).unwrap();

        let (mut wal, recovery) = open(root.path(), WalOptions::default());
        assert_eq!(ops(&recovery), [1, 2, 3]);
        assert!(recovery.repairs.is_empty());
        assert_eq!(file_len(&path), end as u64 + 512);

        // The next record goes over the zeros, right after op 3.
        wal.append(4, &payload(4)).unwrap();
        wal.sync().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let decoded = record::decode(&bytes[end..end + framed_len(payload(4).len())]).unwrap();
        assert_eq!(decoded.op, 4);
        drop(wal);
        let (_, recovery) = open(root.path(), WalOptions::default());
        assert_eq!(ops(&recovery), [1, 2, 3, 4]);
        assert!(recovery.repairs.is_empty());
    }

    #[test]
    fn flipped_byte_in_last_record_truncated() {
        let root = tempfile::tempdir().unwrap();
        let (path, mut bytes, last) = three_record_segment(root.path());
        let index = bytes.len() - 2;
        bytes[index] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();

        let (wal, recovery) = open(root.path(), WalOptions::default());
        assert_eq!(ops(&recovery), [1, 2]);
        assert_eq!(wal.last_op(), 2);
        assert_eq!(recovery.repairs[0].offset, last);
        assert!(matches!(
            recovery.repairs[0].reason,
            CorruptReason::BadChecksum { .. }
        ));
    }

    #[test]
    fn flipped_byte_in_middle_record_corrupt() {
        let root = tempfile::tempdir().unwrap();
        let (path, bytes, _) = three_record_segment(root.path());
        let second = framed_len(payload(1).len());

        for index in second..second + framed_len(payload(2).len()) {
            let mut damaged = bytes.clone();
            damaged[index] ^= 0x01;
            std::fs::write(&path, &damaged).unwrap();

            let error = Wal::open(StdDisk, root.path(), WalOptions::default())
                .err()
                .unwrap_or_else(|| panic!("flip at byte {index} was accepted"));
            let WalError::Corrupt {
                path: error_path,
                offset,
                reason,
            } = &error
            else {
                panic!("flip at byte {index}: unexpected error {error}");
            };
            assert_eq!(error_path, &path, "flip at byte {index}");
            assert_eq!(*offset, second as u64, "flip at byte {index}");
            assert!(
                matches!(reason, CorruptReason::DataAfterDamage { .. }),
                "flip at byte {index}: {reason}"
            );
            let message = error.to_string();
            assert!(
                message.contains(&format!("at byte offset {second}")),
                "{message}"
            );
        }
        // The file is left as it was found.
        assert_eq!(std::fs::read(&path).unwrap().len(), bytes.len());
    }

    #[test]
    fn wrong_op_number_corrupt() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        append_all(&mut wal, 1..=2);
        wal.sync().unwrap();
        drop(wal);
        // A valid record of op 9 where op 3 belongs.
        let path = segment_paths(root.path()).pop().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(records_len(1..=2));
        let end = bytes.len() as u64;
        record::encode(9, b"stray", &mut bytes);
        std::fs::write(&path, &bytes).unwrap();

        let error = Wal::open(StdDisk, root.path(), WalOptions::default())
            .err()
            .unwrap();
        assert!(
            matches!(
                error,
                WalError::Corrupt {
                    offset,
                    reason: CorruptReason::OpMismatch { expected: 3, found: 9 },
                    ..
                } if offset == end
            ),
            "{error}"
        );
    }

    #[test]
    fn multi_segment_reopen() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), small_segments());
        append_all(&mut wal, 1..=40);
        wal.sync().unwrap();
        let count = wal.segment_count();
        assert!(count > 5, "only {count} segments");
        assert_eq!(segment_paths(root.path()).len(), count);
        drop(wal);

        let (mut wal, recovery) = open(root.path(), small_segments());
        assert_eq!(ops(&recovery), (1..=40).collect::<Vec<_>>());
        assert_eq!(recovery.records[39].payload, payload(40));
        assert_eq!(wal.segment_count(), count);

        append_all(&mut wal, 41..=45);
        wal.sync().unwrap();
        drop(wal);
        let (_, recovery) = open(root.path(), small_segments());
        assert_eq!(ops(&recovery), (1..=45).collect::<Vec<_>>());
    }

    #[test]
    fn segment_names_carry_first_op() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), small_segments());
        append_all(&mut wal, 1..=20);
        wal.sync().unwrap();
        drop(wal);

        let mut expected_first = 1;
        for path in segment_paths(root.path()) {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(segment::parse_file_name(name), Some(expected_first));
            let bytes = std::fs::read(&path).unwrap();
            let scan = segment::scan(&bytes, expected_first).unwrap();
            assert!(!scan.records.is_empty(), "{name} is empty");
            // Each segment but the last passes the size only by its last record.
            let before_last = scan.records.last().unwrap().0;
            assert!(before_last < 100, "{name} grew past the segment size");
            expected_first += scan.records.len() as u64;
        }
        assert_eq!(expected_first, 21);
    }

    #[test]
    fn torn_tail_in_middle_segment_corrupt() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), small_segments());
        append_all(&mut wal, 1..=20);
        wal.sync().unwrap();
        drop(wal);
        let first = segment_paths(root.path()).remove(0);
        let len = std::fs::metadata(&first).unwrap().len();
        File::options()
            .write(true)
            .open(&first)
            .unwrap()
            .set_len(len - 3)
            .unwrap();

        let error = Wal::open(StdDisk, root.path(), small_segments())
            .err()
            .unwrap();
        assert!(
            matches!(&error, WalError::Corrupt { path, .. } if *path == first),
            "{error}"
        );
    }

    #[test]
    fn missing_segment_is_gap() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), small_segments());
        append_all(&mut wal, 1..=20);
        wal.sync().unwrap();
        drop(wal);
        let paths = segment_paths(root.path());
        std::fs::remove_file(&paths[1]).unwrap();

        let error = Wal::open(StdDisk, root.path(), small_segments())
            .err()
            .unwrap();
        let WalError::Corrupt {
            path,
            offset,
            reason: CorruptReason::OpGap { expected, found },
        } = error
        else {
            panic!("unexpected error {error}");
        };
        assert_eq!(path, paths[2]);
        assert_eq!(offset, 0);
        assert!(expected < found, "expected {expected}, found {found}");
    }

    #[test]
    fn truncate_after_across_segments() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), small_segments());
        append_all(&mut wal, 1..=30);
        wal.sync().unwrap();
        let before = wal.segment_count();

        wal.truncate_after(5).unwrap();
        assert_eq!(wal.last_op(), 5);
        assert_eq!(wal.durable_op(), 5);
        assert!(wal.segment_count() < before);
        assert_eq!(segment_paths(root.path()).len(), wal.segment_count());

        wal.append(6, b"new six").unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (wal, recovery) = open(root.path(), small_segments());
        assert_eq!(ops(&recovery), [1, 2, 3, 4, 5, 6]);
        assert_eq!(recovery.records[5].payload, b"new six");
        assert!(recovery.repairs.is_empty());
        assert_eq!(wal.last_op(), 6);
    }

    #[test]
    fn truncate_after_every_op() {
        let reference = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(reference.path(), small_segments());
        append_all(&mut wal, 1..=12);
        wal.sync().unwrap();
        drop(wal);

        for op in 0..=12 {
            let root = tempfile::tempdir().unwrap();
            for path in segment_paths(reference.path()) {
                std::fs::copy(&path, root.path().join(path.file_name().unwrap())).unwrap();
            }
            let (mut wal, _) = open(root.path(), small_segments());
            wal.truncate_after(op).unwrap();
            assert_eq!(wal.last_op(), op);
            drop(wal);

            let (mut wal, recovery) = open(root.path(), small_segments());
            assert_eq!(
                ops(&recovery),
                (1..=op).collect::<Vec<_>>(),
                "truncate after {op}"
            );
            assert!(recovery.repairs.is_empty(), "truncate after {op}");
            append_all(&mut wal, op + 1..=op + 1);
            wal.sync().unwrap();
        }
    }

    #[test]
    fn truncate_after_unsynced_records() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), small_segments());
        append_all(&mut wal, 1..=3);
        wal.sync().unwrap();
        append_all(&mut wal, 4..=8);
        wal.truncate_after(6).unwrap();
        assert_eq!(wal.durable_op(), 6);
        drop(wal);

        let (_, recovery) = open(root.path(), small_segments());
        assert_eq!(ops(&recovery), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn truncate_after_last_op_syncs() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        append_all(&mut wal, 1..=3);
        wal.truncate_after(7).unwrap();
        assert_eq!(wal.last_op(), 3);
        assert_eq!(wal.durable_op(), 3);
    }

    #[test]
    #[should_panic(expected = "WAL truncate_after(2) reaches below the first stored op")]
    fn truncate_below_first_op_panics() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), small_segments());
        append_all(&mut wal, 1..=20);
        wal.sync().unwrap();
        wal.remove_segments_before(10).unwrap();
        assert!(wal.first_op() > 3);
        wal.truncate_after(2).unwrap();
    }

    #[test]
    fn remove_segments_before_op() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), small_segments());
        append_all(&mut wal, 1..=30);
        wal.sync().unwrap();
        let before = wal.segment_count();

        let removed = wal.remove_segments_before(10).unwrap();
        assert!(removed > 0);
        assert_eq!(wal.segment_count(), before - removed);
        assert_eq!(segment_paths(root.path()).len(), wal.segment_count());
        let first_op = wal.first_op();
        assert!(first_op <= 10, "op 10 was removed: first op {first_op}");
        assert!(first_op > 1);
        assert_eq!(wal.remove_segments_before(10).unwrap(), 0);

        append_all(&mut wal, 31..=31);
        wal.sync().unwrap();
        drop(wal);
        let (wal, recovery) = open(root.path(), small_segments());
        assert_eq!(ops(&recovery), (first_op..=31).collect::<Vec<_>>());
        assert_eq!(wal.first_op(), first_op);
    }

    #[test]
    fn remove_segments_keeps_head() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), small_segments());
        append_all(&mut wal, 1..=30);
        wal.sync().unwrap();
        wal.remove_segments_before(u64::MAX).unwrap();
        assert_eq!(wal.segment_count(), 1);
        assert_eq!(wal.last_op(), 30);
        let first_op = wal.first_op();
        drop(wal);

        let (wal, recovery) = open(root.path(), small_segments());
        assert_eq!(ops(&recovery), (first_op..=30).collect::<Vec<_>>());
        assert_eq!(wal.last_op(), 30);
    }

    #[test]
    fn restart_after_continues_at_op() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(dir.path(), small_segments());
        append_all(&mut wal, 1..=20);
        wal.sync().unwrap();
        wal.restart_after(100).unwrap();
        assert_eq!(wal.first_op(), 101);
        assert_eq!(wal.last_op(), 100);
        assert_eq!(wal.segment_count(), 1);
        append_all(&mut wal, 101..=103);
        wal.sync().unwrap();
        drop(wal);

        let (wal, recovery) = open(dir.path(), small_segments());
        assert_eq!(ops(&recovery), vec![101, 102, 103]);
        assert_eq!(wal.first_op(), 101);
        assert_eq!(segment_paths(dir.path()).len(), 1);
    }

    #[test]
    fn remove_segments_then_truncate_all() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), small_segments());
        append_all(&mut wal, 1..=30);
        wal.sync().unwrap();
        wal.remove_segments_before(20).unwrap();
        let first_op = wal.first_op();
        wal.truncate_after(first_op - 1).unwrap();
        assert_eq!(wal.last_op(), first_op - 1);
        drop(wal);

        let (wal, recovery) = open(root.path(), small_segments());
        assert!(recovery.records.is_empty());
        assert_eq!(wal.first_op(), first_op);
        assert_eq!(wal.last_op(), first_op - 1);
    }

    /// A [`StdDisk`] that counts `sync_data` calls and can make them fail.
    #[derive(Clone, Default)]
    struct CountingDisk {
        syncs: Rc<Cell<u32>>,
        fail_syncs: Rc<Cell<bool>>,
    }

    struct CountingFile {
        file: File,
        disk: CountingDisk,
    }

    impl Disk for CountingDisk {
        type File = CountingFile;

        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            StdDisk.create_dir_all(dir)
        }
        fn create_file(&self, path: &Path) -> io::Result<CountingFile> {
            let file = StdDisk.create_file(path)?;
            Ok(CountingFile {
                file,
                disk: self.clone(),
            })
        }
        fn open_file(&self, path: &Path) -> io::Result<CountingFile> {
            let file = StdDisk.open_file(path)?;
            Ok(CountingFile {
                file,
                disk: self.clone(),
            })
        }
        fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
            StdDisk.read_file(path)
        }
        fn file_len(&self, path: &Path) -> io::Result<u64> {
            StdDisk.file_len(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            StdDisk.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            StdDisk.remove_file(path)
        }
        fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
            StdDisk.list_dir(dir)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            StdDisk.sync_dir(dir)
        }
    }

    impl DiskFile for CountingFile {
        fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
            DiskFile::write_all_at(&self.file, bytes, offset)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            DiskFile::set_len(&self.file, len)
        }
        fn sync_data(&self) -> io::Result<()> {
            if self.disk.fail_syncs.get() {
                return Err(io::Error::other("injected fdatasync failure"));
            }
            self.disk.syncs.set(self.disk.syncs.get() + 1);
            DiskFile::sync_data(&self.file)
        }
    }

    #[test]
    fn sync_is_one_fdatasync() {
        let root = tempfile::tempdir().unwrap();
        let disk = CountingDisk::default();
        let (mut wal, _) = Wal::open(disk.clone(), root.path(), WalOptions::default()).unwrap();
        let at_open = disk.syncs.get();

        append_all(&mut wal, 1..=50);
        assert_eq!(disk.syncs.get(), at_open, "append synced");
        assert_eq!(wal.sync().unwrap(), 50);
        assert_eq!(disk.syncs.get(), at_open + 1);

        // Nothing new appended: no second fdatasync.
        wal.sync().unwrap();
        assert_eq!(disk.syncs.get(), at_open + 1);
    }

    #[test]
    fn failed_sync_poisons_log() {
        let root = tempfile::tempdir().unwrap();
        let disk = CountingDisk::default();
        let (mut wal, _) = Wal::open(disk.clone(), root.path(), WalOptions::default()).unwrap();
        append_all(&mut wal, 1..=2);

        disk.fail_syncs.set(true);
        let error = wal.sync().unwrap_err();
        assert!(
            matches!(error, WalError::Io { action: "sync", .. }),
            "{error}"
        );
        assert_eq!(wal.durable_op(), 0);

        disk.fail_syncs.set(false);
        let error = wal.append(3, b"three").unwrap_err();
        assert!(matches!(error, WalError::Poisoned { .. }), "{error}");
        assert!(matches!(wal.sync(), Err(WalError::Poisoned { .. })));
        drop(wal);

        // Reopening reads back what reached the file.
        let (wal, recovery) = Wal::open(disk, root.path(), WalOptions::default()).unwrap();
        assert_eq!(ops(&recovery), [1, 2]);
        assert_eq!(wal.durable_op(), 2);
    }

    /// Starts a sync that must be detached, and returns its ticket and job.
    fn detach(wal: &mut Wal<StdDisk>) -> (SyncTicket, DetachedSync) {
        match wal.start_sync().unwrap() {
            SyncStart::Detached { ticket, sync } => (ticket, sync),
            SyncStart::Durable(op) => panic!("expected a detached sync, got durable op {op}"),
        }
    }

    #[test]
    fn detached_sync_marks_durable_when_finished() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        append_all(&mut wal, 1..=3);
        let (ticket, sync) = detach(&mut wal);
        assert_eq!(ticket.through_op, 3);
        assert_eq!(wal.durable_op(), 0, "durable before the sync ran");

        // Appends go on while the sync runs, and the next sync covers them.
        append_all(&mut wal, 4..=5);
        let result = std::thread::spawn(sync).join().unwrap();
        assert_eq!(wal.finish_sync(ticket, result).unwrap(), 3);
        let (ticket, sync) = detach(&mut wal);
        assert_eq!(ticket.through_op, 5);
        assert_eq!(wal.finish_sync(ticket, sync()).unwrap(), 5);
        drop(wal);

        let (_, recovery) = open(root.path(), WalOptions::default());
        assert_eq!(ops(&recovery), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn detached_sync_nothing_to_sync() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        assert!(matches!(wal.start_sync().unwrap(), SyncStart::Durable(0)));
        append_all(&mut wal, 1..=2);
        wal.sync().unwrap();
        assert!(matches!(wal.start_sync().unwrap(), SyncStart::Durable(2)));
    }

    #[test]
    fn detached_sync_finished_out_of_order() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        append_all(&mut wal, 1..=2);
        let (first, first_sync) = detach(&mut wal);
        append_all(&mut wal, 3..=4);
        let (second, second_sync) = detach(&mut wal);
        assert_eq!(wal.finish_sync(second, second_sync()).unwrap(), 4);
        assert_eq!(
            wal.finish_sync(first, first_sync()).unwrap(),
            4,
            "an older sync lowered the durable op"
        );
    }

    #[test]
    fn detached_sync_before_truncation_ignored() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        append_all(&mut wal, 1..=4);
        let (ticket, sync) = detach(&mut wal);
        let result = sync();
        wal.truncate_after(2).unwrap();
        append_all(&mut wal, 3..=5);
        // The old sync covered ops 3 and 4 of the removed records, not the
        // new ones with the same numbers.
        assert_eq!(wal.finish_sync(ticket, result).unwrap(), 2);
        assert_eq!(wal.durable_op(), 2);
    }

    #[test]
    fn detached_sync_failure_poisons_log() {
        let root = tempfile::tempdir().unwrap();
        let (mut wal, _) = open(root.path(), WalOptions::default());
        append_all(&mut wal, 1..=2);
        let (ticket, _sync) = detach(&mut wal);
        let error = wal
            .finish_sync(ticket, Err(io::Error::other("injected fdatasync failure")))
            .unwrap_err();
        assert!(
            matches!(error, WalError::Io { action: "sync", .. }),
            "{error}"
        );
        assert_eq!(wal.durable_op(), 0);
        assert!(matches!(wal.start_sync(), Err(WalError::Poisoned { .. })));
    }

    #[test]
    fn detached_sync_inline_on_other_disks() {
        let root = tempfile::tempdir().unwrap();
        let disk = CountingDisk::default();
        let (mut wal, _) = Wal::open(disk.clone(), root.path(), WalOptions::default()).unwrap();
        let at_open = disk.syncs.get();
        append_all(&mut wal, 1..=3);
        assert!(matches!(wal.start_sync().unwrap(), SyncStart::Durable(3)));
        assert_eq!(disk.syncs.get(), at_open + 1);
        assert_eq!(wal.durable_op(), 3);
    }

    #[test]
    fn header_size_matches_layout() {
        assert_eq!(HEADER_BYTES, 20);
        assert_eq!(framed_len(0), HEADER_BYTES);
    }
}
