//! Raw bytes as a meta file: loading returns an error or a payload, and a
//! loaded payload survives a store and load unchanged.

#![no_main]

use std::path::Path;

use almanac::wal::MetaFile;
use almanac_fuzz::MemoryDisk;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let disk = MemoryDisk::default();
    let path = Path::new("/data/replica.meta");
    disk.put(path, data.to_vec());
    let Ok(Some(payload)) = MetaFile::load(&disk, path) else {
        return;
    };
    let copy = Path::new("/data/copy.meta");
    MetaFile::store(&disk, copy, &payload).expect("store a loaded payload");
    let reloaded = MetaFile::load(&disk, copy).expect("load a stored payload");
    assert_eq!(reloaded, Some(payload));
});
