//! A snapshot transfer fed honest chunks of a file, forged chunks and
//! restarts of the receiver, in an order the fuzzer picks. The receiver
//! must not panic, and a transfer that completes must hand over a file that
//! decodes to a state at the requested op.

#![no_main]

use std::path::Path;

use almanac::replication::{Message, ReplicaId};
use almanac::snapshot::{reply_to_read, ChunkRef, Incoming, Progress, Snapshot};
use almanac_fuzz::MemoryDisk;
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// The op of the snapshot being fetched.
const OP: u64 = 40;
/// The peer the chunks are read from.
const SENDER: ReplicaId = 1;
/// The maximum steps of one input, so that one run stays short.
const STEPS_MAX: usize = 64;

#[derive(Arbitrary, Debug)]
enum Step {
    /// The sender replies to the last read with its file.
    Honest,
    /// The sender replies that it no longer has the snapshot.
    Missing,
    /// A chunk with arbitrary fields, as a faulty or hostile peer may send.
    Forged {
        from_sender: bool,
        matching_op: bool,
        size: u64,
        offset: u64,
        data: Vec<u8>,
    },
    /// The receiver restarts and resumes from its partial file.
    Restart,
    /// Ticks pass without a reply.
    Ticks(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// The file the sender serves, usually not a valid snapshot.
    file: Vec<u8>,
    steps: Vec<Step>,
}

/// Returns the offset asked for by a `SnapshotRead`.
fn read_offset(read: &Message) -> u64 {
    match read {
        Message::SnapshotRead { op, offset, .. } => {
            assert_eq!(*op, OP, "a read asks for the snapshot being fetched");
            *offset
        }
        other => panic!("expected a snapshot read, got {other:?}"),
    }
}

fuzz_target!(|input: Input| {
    let disk = MemoryDisk::default();
    let dir = Path::new("/data");
    let view = 3;
    let (mut incoming, read) =
        Incoming::start(&disk, dir, SENDER, OP, view).expect("start a transfer");
    let mut offset = read_offset(&read);

    for step in input.steps.into_iter().take(STEPS_MAX) {
        let (from, reply) = match step {
            Step::Honest => (SENDER, reply_to_read(Some(&input.file), view, OP, offset)),
            Step::Missing => (SENDER, reply_to_read(None, view, OP, offset)),
            Step::Forged {
                from_sender,
                matching_op,
                size,
                offset,
                data,
            } => {
                let from = if from_sender { SENDER } else { 0 };
                let op = if matching_op { OP } else { OP + 1 };
                let chunk = Message::SnapshotChunk {
                    view,
                    op,
                    size,
                    offset,
                    data,
                };
                (from, chunk)
            }
            Step::Restart => {
                let (resumed, read) =
                    Incoming::start(&disk, dir, SENDER, OP, view).expect("resume a transfer");
                incoming = resumed;
                offset = read_offset(&read);
                continue;
            }
            Step::Ticks(count) => {
                for _ in 0..count {
                    if let Some(read) = incoming.on_tick(view) {
                        assert_eq!(read_offset(&read), offset, "a resent read repeats the last");
                    }
                }
                continue;
            }
        };
        let Message::SnapshotChunk {
            op,
            size,
            offset: chunk_offset,
            data,
            ..
        } = &reply
        else {
            unreachable!("every reply above is a chunk");
        };
        let chunk = ChunkRef {
            from,
            op: *op,
            size: *size,
            offset: *chunk_offset,
            data,
        };
        match incoming.on_chunk(&disk, chunk, view).expect("handle a chunk") {
            Progress::Read(read) => offset = read_offset(&read),
            Progress::Complete { bytes, snapshot } => {
                assert_eq!(snapshot.op, OP);
                let decoded = Snapshot::decode(&bytes).expect("a completed file decodes");
                assert_eq!(decoded, *snapshot);
                return;
            }
            Progress::Abandoned(_) => return,
            Progress::Ignored => {}
        }
    }
});
