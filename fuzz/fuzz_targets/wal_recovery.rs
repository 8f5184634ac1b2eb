//! A valid log written through the WAL, then damaged: recovery must never
//! return a record that was not written, never skip an op, and must open an
//! undamaged log in full.

#![no_main]

use std::path::Path;

use almanac::wal::{Wal, WalOptions};
use almanac_fuzz::MemoryDisk;
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Damage {
    Truncate { file: u8, at: u32 },
    FlipBits { file: u8, at: u32, mask: u8 },
    Append { file: u8, bytes: Vec<u8> },
    Remove { file: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    payloads: Vec<Vec<u8>>,
    segment_bytes: u16,
    damage: Vec<Damage>,
}

/// Most records and bytes per record written, which keeps one run fast.
const RECORDS_MAX: usize = 64;
const PAYLOAD_BYTES: usize = 512;

fn apply(disk: &MemoryDisk, damage: &Damage) {
    let paths = disk.paths();
    if paths.is_empty() {
        return;
    }
    let pick = |file: u8| paths[file as usize % paths.len()].clone();
    match damage {
        Damage::Truncate { file, at } => {
            let path = pick(*file);
            let mut bytes = disk.get(&path).unwrap_or_default();
            bytes.truncate(*at as usize % (bytes.len() + 1));
            disk.put(&path, bytes);
        }
        Damage::FlipBits { file, at, mask } => {
            let path = pick(*file);
            let mut bytes = disk.get(&path).unwrap_or_default();
            if !bytes.is_empty() {
                let index = *at as usize % bytes.len();
                bytes[index] ^= mask | 1;
            }
            disk.put(&path, bytes);
        }
        Damage::Append { file, bytes } => {
            let path = pick(*file);
            let mut contents = disk.get(&path).unwrap_or_default();
            contents.extend_from_slice(bytes);
            disk.put(&path, contents);
        }
        Damage::Remove { file } => {
            let path = pick(*file);
            let _ = almanac::wal::Disk::remove_file(disk, &path);
        }
    }
}

fuzz_target!(|input: Input| {
    let disk = MemoryDisk::default();
    let dir = Path::new("/wal");
    let options = WalOptions {
        segment_bytes: u64::from(input.segment_bytes.max(64)),
    };
    let payloads: Vec<&[u8]> = input
        .payloads
        .iter()
        .take(RECORDS_MAX)
        .map(|payload| &payload[..payload.len().min(PAYLOAD_BYTES)])
        .collect();
    {
        let (mut wal, _) = Wal::open(disk.clone(), dir, options.clone()).expect("open a new log");
        for (index, payload) in payloads.iter().enumerate() {
            wal.append(index as u64 + 1, payload).expect("append");
        }
        wal.sync().expect("sync");
    }
    for damage in &input.damage {
        apply(&disk, damage);
    }

    let recovery = match Wal::open(disk, dir, options) {
        Ok((_, recovery)) => recovery,
        Err(error) if input.damage.is_empty() => panic!("an undamaged log failed to open: {error}"),
        Err(_) => return,
    };
    if input.damage.is_empty() {
        assert_eq!(recovery.records.len(), payloads.len());
        assert!(recovery.repairs.is_empty());
    }
    for pair in recovery.records.windows(2) {
        assert_eq!(pair[1].op, pair[0].op + 1, "recovery skipped an op");
    }
    for record in &recovery.records {
        // Appended damage may frame a new valid record past the end; a
        // record inside the written range must be the one written.
        if let Some(written) = payloads.get(record.op as usize - 1) {
            assert_eq!(record.payload, *written, "op {} changed", record.op);
        }
    }
});
