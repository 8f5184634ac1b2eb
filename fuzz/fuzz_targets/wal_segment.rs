//! Raw bytes as the only segment of a log: recovery must return an error
//! or a log of contiguous records, and a log it opened must reopen to the
//! same records and take appends.

#![no_main]

use std::path::Path;

use almanac::wal::{Wal, WalOptions};
use almanac_fuzz::MemoryDisk;
use libfuzzer_sys::fuzz_target;

const SEGMENT: &str = "/wal/00000000000000000001.wal";

fuzz_target!(|data: &[u8]| {
    let disk = MemoryDisk::default();
    let dir = Path::new("/wal");
    disk.put(Path::new(SEGMENT), data.to_vec());
    // Small segments keep each run's zero-fill short, and inputs longer
    // than one segment make the append start a new segment.
    let options = WalOptions {
        segment_bytes: 1 << 14,
    };
    let Ok((mut wal, recovery)) = Wal::open(disk.clone(), dir, options.clone()) else {
        return;
    };
    for (index, record) in recovery.records.iter().enumerate() {
        assert_eq!(
            record.op,
            index as u64 + 1,
            "records are not contiguous from op 1"
        );
    }
    let next = wal.last_op() + 1;
    wal.append(next, b"appended after recovery")
        .expect("append to a recovered log");
    wal.sync().expect("sync a recovered log");
    drop(wal);

    let (_, again) = Wal::open(disk, dir, options).expect("a recovered log reopens");
    assert!(
        again.repairs.is_empty(),
        "a second open repaired again: {:?}",
        again.repairs
    );
    assert_eq!(again.records.len(), recovery.records.len() + 1);
    assert_eq!(
        again.records[..recovery.records.len()],
        recovery.records[..]
    );
    let last = again.records.last().expect("the appended record");
    assert_eq!(last.op, next);
    assert_eq!(last.payload, b"appended after recovery");
});
