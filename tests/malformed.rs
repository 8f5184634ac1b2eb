//! Garbage and malformed Cap'n Proto frames sent to a real node: each one
//! closes only its own connection, the node keeps serving, and nothing
//! reaches the log.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, repl_json, wait_until, Scratch};

/// A one-node cluster from a config file, so that both ports are known.
struct Node {
    child: Child,
    client: String,
    peer: String,
}

impl Node {
    fn start(scratch: &Scratch) -> Node {
        let client = format!("127.0.0.1:{}", free_port());
        let peer = format!("127.0.0.1:{}", free_port());
        let config = scratch.path("cluster.toml");
        let text = format!(
            "cluster_secret = \"a-secret-for-the-malformed-tests\"\n\
             [[node]]\nid = 1\nclient = \"{client}\"\npeer = \"{peer}\"\n"
        );
        std::fs::write(&config, text).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_almanac"))
            .args(["server", "--config"])
            .arg(&config)
            .args(["--id", "1", "--init", "--data"])
            .arg(scratch.path("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let node = Node {
            child,
            client,
            peer,
        };
        let up = wait_until(Duration::from_secs(10), || {
            TcpStream::connect(&node.client).is_ok() && TcpStream::connect(&node.peer).is_ok()
        });
        assert!(up, "the node did not open its ports");
        node
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `bytes` and returns whether the node closed the connection (read
/// end of stream or a reset) within the deadline.
fn closed_after(address: &str, bytes: &[u8]) -> bool {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // The node may close before it read everything; a failed write counts.
    if stream.write_all(bytes).is_err() {
        return true;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => return true,
        }
    }
    false
}

/// Returns a frame header that announces one segment of 2^30 words (8 GiB), far
/// past the traversal limit.
fn oversized_frame() -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&0u32.to_le_bytes());
    frame.extend_from_slice(&(1u32 << 30).to_le_bytes());
    frame.extend_from_slice(&[0u8; 64]);
    frame
}

/// Returns a frame that announces one word more than the traversal limit
/// and sends the first megabyte of it, as a client that really sent an
/// oversized message would.
fn one_word_over_limit() -> Vec<u8> {
    let words = almanac::rpc::serve::TRAVERSAL_LIMIT_WORDS as u32 + 1;
    let mut frame = Vec::new();
    frame.extend_from_slice(&0u32.to_le_bytes());
    frame.extend_from_slice(&words.to_le_bytes());
    frame.resize(frame.len() + 1024 * 1024, 0);
    frame
}

/// Returns a whole message one word over the client port's request limit,
/// which is far below the peer port's.
fn client_request_over_limit() -> Vec<u8> {
    let words = almanac::rpc::serve::CLIENT_REQUEST_WORDS_MAX + 1;
    let mut frame = Vec::new();
    frame.extend_from_slice(&0u32.to_le_bytes());
    frame.extend_from_slice(&(words as u32).to_le_bytes());
    frame.resize(frame.len() + words * 8, 0);
    frame
}

/// Returns a frame that announces 100,000 segments, which the reader
/// rejects before it allocates them.
fn too_many_segments() -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&99_999u32.to_le_bytes());
    frame.extend_from_slice(&[1u8; 64]);
    frame
}

/// Returns a well-formed frame whose root pointer points far outside the segment.
fn wild_pointer() -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&0u32.to_le_bytes());
    frame.extend_from_slice(&2u32.to_le_bytes());
    // A struct pointer with offset 2^29 words and one data word.
    let pointer: u64 = (1u64 << 31) | (1u64 << 32);
    frame.extend_from_slice(&pointer.to_le_bytes());
    frame.extend_from_slice(&0u64.to_le_bytes());
    frame
}

fn garbage() -> Vec<u8> {
    (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn malformed_input_closes_only_that_connection() {
    let _serial = common::serial();
    let scratch = Scratch::new();
    let node = Node::start(&scratch);
    let inputs: [(&str, Vec<u8>); 5] = [
        ("garbage", garbage()),
        ("oversized frame", oversized_frame()),
        ("message one word over the limit", one_word_over_limit()),
        ("too many segments", too_many_segments()),
        ("wild pointer", wild_pointer()),
    ];
    for (port, address) in [("client", &node.client), ("peer", &node.peer)] {
        for (name, bytes) in &inputs {
            assert!(
                closed_after(address, bytes),
                "the {port} port kept the connection open after {name}"
            );
        }
    }

    assert!(
        closed_after(&node.client, &client_request_over_limit()),
        "the client port kept the connection open after a request over its limit"
    );

    // The node still serves, and the garbage wrote nothing: the log holds
    // exactly the register, its session and the schedule.
    let script = "register mallory\nmallory-password\n\
                  schedule \"After the garbage\" 2031-03-03 10:00 for 30m\n";
    let replies = repl_json(&node.client, script);
    assert!(
        replies.iter().all(|reply| reply["ok"] == true),
        "the node stopped serving after malformed input: {replies:?}"
    );
    let status = common::almanac(
        &["status", "--cluster", &node.client, "--output", "json"],
        "",
    );
    let nodes: serde_json::Value = serde_json::from_str(status.stdout.trim()).unwrap();
    assert_eq!(nodes[0]["op"], 3, "unexpected log length: {nodes}");
}
