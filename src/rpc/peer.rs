//! The peer port: authenticating other nodes, and carrying protocol
//! messages between them.
//!
//! Each node dials every other node's peer port and keeps one outgoing link
//! per peer, over which it sends its own messages; what it receives comes in
//! over the links other nodes dialled. A link carries framed Cap'n Proto
//! `PeerFrame`s (schema/replication.capnp), not RPC calls: a protocol
//! message is one-way, and an RPC call would add a return and a finish
//! message to each. Before a dialling node may send anything else, it proves
//! with HMAC-SHA256 over a fresh challenge that it has the cluster secret.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use capnp::message::ReaderOptions;
use capnp::serialize::OwnedSegments;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};
use tracing::{debug, info, warn};

use crate::node::net::{Connector, Stream};
use crate::replication::{Entry, Message, PrimaryState, ReplicaId};
use crate::rpc::replication_capnp::{entry, message, peer_frame};
use crate::rpc::serve::{reader_options_with, wait_until_true, Connection};

/// Length of an authentication challenge in bytes.
const CHALLENGE_BYTES: usize = 32;

/// Largest frame a peer port reads before the dialler is authenticated, and
/// a dialler reads after its hello, in words: challenges, hellos and pongs
/// take a few words.
const HELLO_WORDS_MAX: usize = 1024;

/// Bytes of frames a link writes before it flushes, when many messages
/// queued up at once.
const FLUSH_BYTES_MAX: usize = 1 << 20;

/// Deadline for connecting, authenticating, and for each write on a link.
/// A peer slower than this is treated as gone and dialled again.
pub const PEER_CALL_TIMEOUT: Duration = Duration::from_millis(1000);
/// Time between two pings on an outgoing peer link: a few a second cost
/// nothing next to the heartbeats and find a dead connection quickly.
const PEER_PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// Messages queued for one peer before new ones are dropped. The protocol
/// resends what matters (heartbeats, prepares), so dropping under back
/// pressure loses nothing but time.
pub const PEER_QUEUE_MAX: usize = 4096;

/// First and largest pause between dial attempts to a peer.
const REDIAL_MIN: Duration = Duration::from_millis(20);
const REDIAL_MAX: Duration = Duration::from_millis(500);

type HmacSha256 = Hmac<Sha256>;

/// A message received from an authenticated peer.
pub type Inbound = (ReplicaId, Message);

/// Computes the proof a node sends for `nonce`: HMAC-SHA256(secret, nonce || id).
pub fn challenge_mac(secret: &[u8], nonce: &[u8], replica: ReplicaId) -> Vec<u8> {
    keyed_mac(secret, nonce, replica)
        .finalize()
        .into_bytes()
        .to_vec()
}

fn verify_mac(secret: &[u8], nonce: &[u8], replica: ReplicaId, proof: &[u8]) -> bool {
    // Constant-time comparison, so a wrong proof reveals nothing about the
    // right one.
    keyed_mac(secret, nonce, replica)
        .verify_slice(proof)
        .is_ok()
}

/// Starts HMAC-SHA256 under `secret` over `nonce || replica`.
fn keyed_mac(secret: &[u8], nonce: &[u8], replica: ReplicaId) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(nonce);
    mac.update(&[replica]);
    mac
}

fn write_entries(mut builder: capnp::struct_list::Builder<'_, entry::Owned>, entries: &[Entry]) {
    for (index, value) in entries.iter().enumerate() {
        let mut item = builder.reborrow().get(index as u32);
        item.set_view(value.view);
        item.set_op(value.op);
        item.set_payload(&value.payload);
    }
}

fn read_entries(reader: capnp::struct_list::Reader<'_, entry::Owned>) -> capnp::Result<Vec<Entry>> {
    reader
        .iter()
        .map(|item| {
            Ok(Entry {
                view: item.get_view(),
                op: item.get_op(),
                payload: item.get_payload()?.to_vec(),
            })
        })
        .collect()
}

/// Writes a protocol message, stamped with the sender's replica id.
pub fn write_message(mut builder: message::Builder<'_>, sender: ReplicaId, value: &Message) {
    builder.set_view(value.view());
    builder.set_replica(sender);
    match value {
        Message::Prepare {
            commit, entries, ..
        } => {
            let mut group = builder.init_prepare();
            group.set_commit(*commit);
            write_entries(group.init_entries(entries.len() as u32), entries);
        }
        Message::PrepareOk { op, .. } => builder.init_prepare_ok().set_op(*op),
        Message::Commit { commit, round, .. } => {
            let mut group = builder.init_commit();
            group.set_commit(*commit);
            group.set_round(*round);
        }
        Message::CommitOk { op, round, .. } => {
            let mut group = builder.init_commit_ok();
            group.set_op(*op);
            group.set_round(*round);
        }
        Message::StartViewChange { .. } => builder.set_start_view_change(()),
        Message::DoViewChange {
            log_view,
            op,
            base,
            log,
            commit,
            ..
        } => {
            let mut group = builder.init_do_view_change();
            group.set_log_view(*log_view);
            group.set_op(*op);
            group.set_base(*base);
            group.set_commit(*commit);
            write_entries(group.init_log(log.len() as u32), log);
        }
        Message::StartView {
            op,
            base,
            log,
            commit,
            ..
        } => {
            let mut group = builder.init_start_view();
            group.set_op(*op);
            group.set_base(*base);
            group.set_commit(*commit);
            write_entries(group.init_log(log.len() as u32), log);
        }
        Message::GetState { op, .. } => builder.init_get_state().set_op(*op),
        Message::NewState {
            op,
            entries,
            commit,
            ..
        } => {
            let mut group = builder.init_new_state();
            group.set_op(*op);
            group.set_commit(*commit);
            write_entries(group.init_entries(entries.len() as u32), entries);
        }
        Message::NewSnapshot { op, commit, .. } => {
            let mut group = builder.init_new_snapshot();
            group.set_op(*op);
            group.set_commit(*commit);
        }
        Message::SnapshotRead { op, offset, .. } => {
            let mut group = builder.init_snapshot_read();
            group.set_op(*op);
            group.set_offset(*offset);
        }
        Message::SnapshotChunk {
            op,
            size,
            offset,
            data,
            ..
        } => {
            let mut group = builder.init_snapshot_chunk();
            group.set_op(*op);
            group.set_size(*size);
            group.set_offset(*offset);
            group.set_data(data);
        }
        Message::Recovery { nonce, .. } => builder.init_recovery().set_nonce(*nonce),
        Message::RecoveryResponse { nonce, primary, .. } => {
            let mut group = builder.init_recovery_response();
            group.set_nonce(*nonce);
            group.set_has_primary_state(primary.is_some());
            if let Some(state) = primary {
                group.set_commit(state.commit);
                group.set_base(state.base);
                write_entries(group.init_log(state.log.len() as u32), &state.log);
            }
        }
    }
}

/// Reads a protocol message and the sender id it names.
pub fn read_message(reader: message::Reader<'_>) -> capnp::Result<(ReplicaId, Message)> {
    use message::Which;
    let view = reader.get_view();
    let message = match reader.which()? {
        Which::Prepare(group) => Message::Prepare {
            view,
            commit: group.get_commit(),
            entries: read_entries(group.get_entries()?)?,
        },
        Which::PrepareOk(group) => Message::PrepareOk {
            view,
            op: group.get_op(),
        },
        Which::Commit(group) => Message::Commit {
            view,
            commit: group.get_commit(),
            round: group.get_round(),
        },
        Which::CommitOk(group) => Message::CommitOk {
            view,
            op: group.get_op(),
            round: group.get_round(),
        },
        Which::StartViewChange(()) => Message::StartViewChange { view },
        Which::DoViewChange(group) => Message::DoViewChange {
            view,
            log_view: group.get_log_view(),
            op: group.get_op(),
            base: group.get_base(),
            log: read_entries(group.get_log()?)?,
            commit: group.get_commit(),
        },
        Which::StartView(group) => Message::StartView {
            view,
            op: group.get_op(),
            base: group.get_base(),
            log: read_entries(group.get_log()?)?,
            commit: group.get_commit(),
        },
        Which::GetState(group) => Message::GetState {
            view,
            op: group.get_op(),
        },
        Which::NewState(group) => Message::NewState {
            view,
            op: group.get_op(),
            entries: read_entries(group.get_entries()?)?,
            commit: group.get_commit(),
        },
        Which::NewSnapshot(group) => Message::NewSnapshot {
            view,
            op: group.get_op(),
            commit: group.get_commit(),
        },
        Which::SnapshotRead(group) => Message::SnapshotRead {
            view,
            op: group.get_op(),
            offset: group.get_offset(),
        },
        Which::SnapshotChunk(group) => Message::SnapshotChunk {
            view,
            op: group.get_op(),
            size: group.get_size(),
            offset: group.get_offset(),
            data: group.get_data()?.to_vec(),
        },
        Which::Recovery(group) => Message::Recovery {
            view,
            nonce: group.get_nonce(),
        },
        Which::RecoveryResponse(group) => Message::RecoveryResponse {
            view,
            nonce: group.get_nonce(),
            primary: if group.get_has_primary_state() {
                Some(PrimaryState {
                    base: group.get_base(),
                    log: read_entries(group.get_log()?)?,
                    commit: group.get_commit(),
                })
            } else {
                None
            },
        },
    };
    Ok((reader.get_replica(), message))
}

/// Serves one connection on the peer port: the handshake, then the
/// authenticated peer's messages, until the peer disconnects, breaks the
/// protocol or the node shuts down. Each connection draws its own
/// challenge, so a proof is good only on the connection that asked for it.
#[derive(Clone)]
pub struct PeerAcceptor {
    service: Rc<crate::node::service::Service>,
    secret: Rc<Vec<u8>>,
    replica_count: usize,
    inbound: mpsc::UnboundedSender<Inbound>,
    /// Handshakes that failed authentication, shared by every connection,
    /// so that a peer with the wrong secret, which redials twice a second,
    /// is logged once and then every [`AUTH_FAILURES_PER_WARNING`].
    auth_failures: Rc<std::cell::Cell<u64>>,
}

/// Failed peer authentications between two warnings after the first.
const AUTH_FAILURES_PER_WARNING: u64 = 120;

impl PeerAcceptor {
    pub fn new(
        service: Rc<crate::node::service::Service>,
        secret: Rc<Vec<u8>>,
        replica_count: usize,
        inbound: mpsc::UnboundedSender<Inbound>,
    ) -> Self {
        PeerAcceptor {
            service,
            secret,
            replica_count,
            inbound,
            auth_failures: Rc::default(),
        }
    }

    /// Sends a challenge and checks the hello sent back. Returns the
    /// authenticated replica, or the reason the dialler was rejected.
    async fn handshake<S: Stream>(
        &self,
        reader: &mut FrameReader<S>,
        writer: &mut FrameWriter<S>,
    ) -> Result<ReplicaId, Rejection> {
        let mut nonce = vec![0u8; CHALLENGE_BYTES];
        self.service.host.entropy.fill(&mut nonce);
        send_frame(writer, |mut frame| frame.set_challenge(&nonce)).await?;
        let frame = read_frame(reader, hello_limits())
            .await?
            .ok_or_else(|| Rejection::Gone("closed the connection before its hello".into()))?;
        let hello = match frame_kind(&frame)? {
            peer_frame::Hello(hello) => hello,
            _ => {
                return Err(Rejection::Malformed(
                    "the first frame is not a hello".into(),
                ))
            }
        };
        let replica = hello.get_replica();
        let self_id = self.service.replica_id;
        let valid = (replica as usize) < self.replica_count
            && replica != self_id
            && verify_mac(&self.secret, &nonce, replica, hello.get_mac()?);
        if !valid {
            let reason = "wrong cluster secret or replica id";
            send_frame(writer, |mut frame| frame.set_rejected(reason)).await?;
            return Err(Rejection::Unauthenticated { claimed: replica });
        }
        send_frame(writer, |mut frame| frame.set_welcome(())).await?;
        Ok(replica)
    }

    /// Handles one frame from the authenticated `peer`.
    async fn receive<S: Stream>(
        &self,
        peer: ReplicaId,
        frame: &capnp::message::Reader<OwnedSegments>,
        writer: &mut FrameWriter<S>,
    ) -> Result<(), String> {
        match frame_kind(frame).map_err(|error| error.to_string())? {
            peer_frame::Message(message) => {
                let (claimed, message) = message
                    .and_then(read_message)
                    .map_err(|error| format!("malformed message: {error}"))?;
                if claimed != peer {
                    return Err(format!(
                        "a message names replica {} but the connection belongs to replica {}",
                        claimed as usize + 1,
                        peer as usize + 1
                    ));
                }
                self.inbound
                    .send((peer, message))
                    .map_err(|_| "the node is shutting down".to_owned())
            }
            peer_frame::Ping(number) => {
                let pong = send_frame(writer, |mut frame| frame.set_pong(number));
                match tokio::time::timeout(PEER_CALL_TIMEOUT, pong).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => Err(format!("writing a pong failed: {error}")),
                    Err(_) => Err("writing a pong timed out".into()),
                }
            }
            _ => Err("an unexpected frame after the handshake".into()),
        }
    }
}

impl Connection for PeerAcceptor {
    async fn serve(
        self,
        stream: impl Stream,
        remote: SocketAddr,
        _port: &'static str,
        limits: ReaderOptions,
        mut close: watch::Receiver<bool>,
    ) {
        let node = self.service.replica_id + 1;
        let (mut reader, mut writer) = frames(stream);
        let handshake = self.handshake(&mut reader, &mut writer);
        let peer = match tokio::time::timeout(PEER_CALL_TIMEOUT, handshake).await {
            Ok(Ok(peer)) => peer,
            Ok(Err(Rejection::Unauthenticated { claimed })) => {
                let failures = self.auth_failures.get() + 1;
                self.auth_failures.set(failures);
                if failures == 1 || failures.is_multiple_of(AUTH_FAILURES_PER_WARNING) {
                    warn!(node, %remote, claimed = claimed as usize + 1, failures,
                        "rejected a peer that failed authentication; check that every node's \
                         config has the same cluster_secret");
                }
                return;
            }
            Ok(Err(Rejection::Malformed(reason))) => {
                warn!(node, %remote, %reason, "closed a peer connection during its handshake");
                return;
            }
            Ok(Err(Rejection::Gone(reason))) => {
                debug!(node, %remote, %reason, "a peer connection ended during its handshake");
                return;
            }
            Err(_) => {
                debug!(node, %remote, "a peer connection sent no hello in time; closed it");
                return;
            }
        };
        info!(node, peer = peer + 1, %remote, "peer authenticated");
        loop {
            let frame = tokio::select! {
                biased;
                () = wait_until_true(&mut close) => {
                    debug!(node, peer = peer + 1, "peer connection closed by the shutdown");
                    return;
                }
                frame = read_frame(&mut reader, limits) => frame,
            };
            let frame = match frame {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    debug!(node, peer = peer + 1, %remote, "peer connection closed");
                    return;
                }
                Err(error) => {
                    warn!(node, peer = peer + 1, %remote, %error,
                        "closed a peer connection on an unreadable frame");
                    return;
                }
            };
            if let Err(reason) = self.receive(peer, &frame, &mut writer).await {
                warn!(node, peer = peer + 1, %remote, %reason, "closed a peer connection");
                return;
            }
        }
    }
}

/// The reason the accepting side ended a handshake.
#[derive(Debug)]
enum Rejection {
    /// The hello named a replica the secret does not prove.
    Unauthenticated { claimed: ReplicaId },
    /// The dialler sent something that is not the protocol.
    Malformed(String),
    /// The connection ended or failed.
    Gone(String),
}

impl From<capnp::Error> for Rejection {
    fn from(error: capnp::Error) -> Self {
        Rejection::Malformed(error.to_string())
    }
}

impl From<std::io::Error> for Rejection {
    fn from(error: std::io::Error) -> Self {
        Rejection::Gone(error.to_string())
    }
}

/// The reading half of a peer connection, buffered: a burst of frames
/// arrives in one system call.
type FrameReader<S> = Compat<BufReader<ReadHalf<S>>>;
/// The writing half, buffered: a batch of frames leaves in one system call
/// at the flush.
type FrameWriter<S> = BufWriter<WriteHalf<S>>;

fn frames<S: Stream>(stream: S) -> (FrameReader<S>, FrameWriter<S>) {
    let (reader, writer) = tokio::io::split(stream);
    (BufReader::new(reader).compat(), BufWriter::new(writer))
}

/// Reads one frame within `limits`; None at a clean end of the stream.
async fn read_frame<S: Stream>(
    reader: &mut FrameReader<S>,
    limits: ReaderOptions,
) -> capnp::Result<Option<capnp::message::Reader<OwnedSegments>>> {
    capnp_futures::serialize::try_read_message(reader, limits).await
}

/// Encodes the frame `fill` builds into `writer`'s buffer, which writes it
/// out once full or flushed. Returns the frame's length in bytes.
async fn write_frame<S: Stream>(
    writer: &mut FrameWriter<S>,
    fill: impl FnOnce(peer_frame::Builder<'_>),
) -> std::io::Result<usize> {
    let mut message = capnp::message::Builder::new_default();
    fill(message.init_root());
    let bytes = capnp::serialize::write_message_to_words(&message);
    writer.write_all(&bytes).await?;
    Ok(bytes.len())
}

/// Writes the frame `fill` builds and flushes the writer.
async fn send_frame<S: Stream>(
    writer: &mut FrameWriter<S>,
    fill: impl FnOnce(peer_frame::Builder<'_>),
) -> std::io::Result<()> {
    write_frame(writer, fill).await?;
    writer.flush().await
}

/// Returns which kind of `PeerFrame` `frame` is, with its content.
fn frame_kind(
    frame: &capnp::message::Reader<OwnedSegments>,
) -> capnp::Result<peer_frame::WhichReader<'_>> {
    Ok(frame.get_root::<peer_frame::Reader<'_>>()?.which()?)
}

/// Limits on what a dialler may send before it is authenticated, and on
/// what a dialler reads from the acceptor: hellos, challenges and pongs
/// are a few words each.
fn hello_limits() -> ReaderOptions {
    reader_options_with(HELLO_WORDS_MAX)
}

/// Keeps an authenticated link to one peer and sends it this node's
/// messages, dialling again after any failure. Messages queued while the
/// link is down are dropped.
pub async fn run_outgoing_link<C: Connector>(
    connector: C,
    self_id: ReplicaId,
    peer: ReplicaId,
    address: String,
    secret: Rc<Vec<u8>>,
    mut outgoing: mpsc::Receiver<Message>,
) {
    let mut pause = REDIAL_MIN;
    loop {
        match dial(&connector, self_id, &address, &secret).await {
            Ok(link) => {
                info!(node = self_id + 1, peer = peer + 1, %address, "link to peer up");
                pause = REDIAL_MIN;
                match forward(link, self_id, &mut outgoing).await {
                    None => return,
                    Some(reason) => {
                        info!(node = self_id + 1, peer = peer + 1, %address, %reason, "link to peer down")
                    }
                }
            }
            Err(error) => {
                debug!(node = self_id + 1, peer = peer + 1, %address, %error, "dialling peer failed")
            }
        }
        // Drop what queued up while the peer was unreachable.
        while outgoing.try_recv().is_ok() {}
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(REDIAL_MAX);
    }
}

/// Sends queued messages until the link fails (Some(reason)) or the queue
/// closes (None). Whatever queued up meanwhile leaves with the message that
/// woke the link, in one flush of at most [`FLUSH_BYTES_MAX`] and a bit.
/// A ping every [`PEER_PROBE_INTERVAL`] without a pong within
/// [`PEER_CALL_TIMEOUT`] fails the link, so a connection that silently lost
/// bytes is dialled again within about a second.
async fn forward<S: Stream>(
    (mut reader, mut writer): (FrameReader<S>, FrameWriter<S>),
    self_id: ReplicaId,
    outgoing: &mut mpsc::Receiver<Message>,
) -> Option<String> {
    // The number of the ping that has no pong yet, and when it left.
    let unanswered: Cell<Option<(u64, Instant)>> = Cell::new(None);
    let pongs = async {
        loop {
            let frame = match read_frame(&mut reader, hello_limits()).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return "the peer closed the connection".to_owned(),
                Err(error) => return format!("reading from the peer failed: {error}"),
            };
            match frame_kind(&frame) {
                Ok(peer_frame::Pong(number)) => {
                    if unanswered.get().is_some_and(|(sent, _)| sent == number) {
                        unanswered.set(None);
                    }
                }
                Ok(_) => return "the peer sent an unexpected frame".to_owned(),
                Err(error) => return format!("the peer sent a malformed frame: {error}"),
            }
        }
    };
    tokio::pin!(pongs);
    let mut probe = tokio::time::interval(PEER_PROBE_INTERVAL);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pings = 0u64;
    loop {
        tokio::select! {
            reason = &mut pongs => return Some(reason),
            message = outgoing.recv() => {
                let first = message?;
                let batch = async {
                    let mut written = 0;
                    let mut next = Some(first);
                    while let Some(message) = next.take() {
                        written += write_frame(&mut writer, |frame| {
                            write_message(frame.init_message(), self_id, &message)
                        })
                        .await?;
                        if written < FLUSH_BYTES_MAX {
                            next = outgoing.try_recv().ok();
                        }
                    }
                    writer.flush().await
                };
                match tokio::time::timeout(PEER_CALL_TIMEOUT, batch).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return Some(format!("writing to the peer failed: {error}")),
                    Err(_) => return Some("writing to the peer timed out".into()),
                }
            }
            _ = probe.tick() => {
                match unanswered.get() {
                    Some((_, sent)) if sent.elapsed() >= PEER_CALL_TIMEOUT => {
                        return Some("the peer stopped answering pings".into());
                    }
                    Some(_) => {}
                    None => {
                        pings += 1;
                        unanswered.set(Some((pings, Instant::now())));
                        let ping = send_frame(&mut writer, |mut frame| frame.set_ping(pings));
                        match tokio::time::timeout(PEER_CALL_TIMEOUT, ping).await {
                            Ok(Ok(())) => {}
                            Ok(Err(error)) => return Some(format!("writing a ping failed: {error}")),
                            Err(_) => return Some("writing a ping timed out".into()),
                        }
                    }
                }
            }
        }
    }
}

/// Connects to a peer's port and authenticates as `self_id`.
async fn dial<C: Connector>(
    connector: &C,
    self_id: ReplicaId,
    address: &str,
    secret: &[u8],
) -> Result<(FrameReader<C::Stream>, FrameWriter<C::Stream>), String> {
    let stream = tokio::time::timeout(PEER_CALL_TIMEOUT, connector.connect(address.to_owned()))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|error| format!("connect failed: {error}"))?;
    let (mut reader, mut writer) = frames(stream);
    let authenticate = async {
        let frame = read_frame(&mut reader, hello_limits())
            .await
            .map_err(|error| error.to_string())?
            .ok_or("the peer closed the connection before its challenge")?;
        let nonce = match frame_kind(&frame) {
            Ok(peer_frame::Challenge(Ok(nonce))) => nonce.to_vec(),
            _ => return Err("the first frame is not a challenge; is this a peer port?".to_owned()),
        };
        let proof = challenge_mac(secret, &nonce, self_id);
        let hello = send_frame(&mut writer, |frame| {
            let mut hello = frame.init_hello();
            hello.set_replica(self_id);
            hello.set_mac(&proof);
        });
        hello.await.map_err(|error| error.to_string())?;
        let frame = read_frame(&mut reader, hello_limits())
            .await
            .map_err(|error| error.to_string())?
            .ok_or("the peer closed the connection after the hello")?;
        match frame_kind(&frame) {
            Ok(peer_frame::Welcome(())) => Ok(()),
            Ok(peer_frame::Rejected(reason)) => Err(format!(
                "rejected: {}",
                reason
                    .ok()
                    .and_then(|text| text.to_str().ok())
                    .unwrap_or("no reason given")
            )),
            _ => Err("the peer sent an unexpected frame after the hello".to_owned()),
        }
    };
    match tokio::time::timeout(PEER_CALL_TIMEOUT, authenticate).await {
        Ok(Ok(())) => Ok((reader, writer)),
        Ok(Err(error)) => Err(format!("authentication failed: {error}")),
        Err(_) => Err("authentication timed out".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::serve::reader_options;
    use capnp_rpc::{rpc_twoparty_capnp::Side, RpcSystem};

    fn sample_entries() -> Vec<Entry> {
        vec![
            Entry {
                view: 2,
                op: 7,
                payload: b"one".to_vec(),
            },
            Entry {
                view: 3,
                op: 8,
                payload: Vec::new(),
            },
        ]
    }

    fn round_trip(value: &Message) -> (ReplicaId, Message) {
        let mut builder = capnp::message::Builder::new_default();
        write_message(builder.init_root(), 2, value);
        let reader = builder.get_root_as_reader::<message::Reader<'_>>().unwrap();
        read_message(reader).unwrap()
    }

    #[test]
    fn every_message_kind_round_trips() {
        let messages = vec![
            Message::Prepare {
                view: 4,
                commit: 6,
                entries: sample_entries(),
            },
            Message::PrepareOk { view: 4, op: 8 },
            Message::Commit {
                view: 4,
                commit: 8,
                round: 3,
            },
            Message::CommitOk {
                view: 4,
                op: 8,
                round: 3,
            },
            Message::StartViewChange { view: 5 },
            Message::DoViewChange {
                view: 5,
                log_view: 4,
                op: 8,
                base: 6,
                log: sample_entries(),
                commit: 6,
            },
            Message::StartView {
                view: 5,
                op: 8,
                base: 6,
                log: sample_entries(),
                commit: 6,
            },
            Message::GetState { view: 5, op: 6 },
            Message::NewState {
                view: 5,
                op: 6,
                entries: sample_entries(),
                commit: 8,
            },
            Message::NewSnapshot {
                view: 5,
                op: 6,
                commit: 8,
            },
            Message::SnapshotRead {
                view: 5,
                op: 6,
                offset: 4096,
            },
            Message::SnapshotChunk {
                view: 5,
                op: 6,
                size: 9000,
                offset: 4096,
                data: b"chunk".to_vec(),
            },
            Message::Recovery { view: 0, nonce: 99 },
            Message::RecoveryResponse {
                view: 5,
                nonce: 99,
                primary: None,
            },
            Message::RecoveryResponse {
                view: 5,
                nonce: 99,
                primary: Some(PrimaryState {
                    base: 6,
                    log: sample_entries(),
                    commit: 8,
                }),
            },
        ];
        for message in messages {
            assert_eq!(
                round_trip(&message),
                (2, message.clone()),
                "{}",
                message.kind()
            );
        }
    }

    /// Serves one node's peer port on a free loopback port, returning the
    /// address and what the port receives; the node's data lives in `dir`.
    async fn serve_peer_port(dir: &std::path::Path) -> (String, mpsc::UnboundedReceiver<Inbound>) {
        use crate::node::driver::{self, ReplicaSettings, StartMode};
        let settings = ReplicaSettings {
            replica_count: 3,
            replica_id: 0,
            client_addresses: vec![String::new(); 3],
            snapshot: Default::default(),
        };
        let host = crate::node::host::Host::simulated(1, 0);
        let (service, _driver, _inbound) =
            driver::open(settings, crate::wal::StdDisk, dir, StartMode::Init, host).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let secret = Rc::new(b"the right cluster secret".to_vec());
        let (inbound, received) = mpsc::unbounded_channel();
        let acceptor = PeerAcceptor::new(service, secret, 3, inbound);
        tokio::task::spawn_local(crate::rpc::serve::accept_loop(
            listener,
            "peer",
            move |_| acceptor.clone(),
        ));
        (address, received)
    }

    /// Writes one message frame that names `sender` as its replica.
    async fn send_as<S: Stream>(writer: &mut FrameWriter<S>, sender: ReplicaId, value: &Message) {
        send_frame(writer, |frame| {
            write_message(frame.init_message(), sender, value)
        })
        .await
        .unwrap();
    }

    /// Serves a peer port on data in `dir` and dials it as replica 1 with
    /// the right secret. Returns what the port receives and the link.
    async fn authenticated_link(
        dir: &std::path::Path,
    ) -> (
        mpsc::UnboundedReceiver<Inbound>,
        FrameReader<tokio::net::TcpStream>,
        FrameWriter<tokio::net::TcpStream>,
    ) {
        let (address, received) = serve_peer_port(dir).await;
        let connector = crate::node::net::PlainConnector;
        let (reader, writer) = dial(&connector, 1, &address, b"the right cluster secret")
            .await
            .unwrap();
        (received, reader, writer)
    }

    #[test]
    fn link_delivers_messages_and_pongs() {
        let dir = tempfile::tempdir().unwrap();
        run_local(async {
            let (mut received, mut reader, mut writer) = authenticated_link(dir.path()).await;
            let sent = Message::Commit {
                view: 4,
                commit: 17,
                round: 2,
            };
            send_as(&mut writer, 1, &sent).await;
            assert_eq!(received.recv().await, Some((1, sent)));

            send_frame(&mut writer, |mut frame| frame.set_ping(41))
                .await
                .unwrap();
            let pong = read_frame(&mut reader, hello_limits())
                .await
                .unwrap()
                .expect("a pong");
            assert!(matches!(frame_kind(&pong), Ok(peer_frame::Pong(41))));
        });
    }

    #[test]
    fn forged_sender_closes_link() {
        let dir = tempfile::tempdir().unwrap();
        run_local(async {
            let (mut received, mut reader, mut writer) = authenticated_link(dir.path()).await;
            let forged = Message::StartViewChange { view: 9 };
            send_as(&mut writer, 2, &forged).await;
            let end = tokio::time::timeout(
                Duration::from_secs(5),
                read_frame(&mut reader, hello_limits()),
            )
            .await
            .expect("the port must close the connection");
            assert!(
                matches!(end, Ok(None) | Err(_)),
                "the connection stayed open"
            );
            assert!(received.try_recv().is_err(), "a forged message got through");
        });
    }

    fn run_local<F: std::future::Future>(future: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&runtime, future)
    }

    #[test]
    fn peer_port_rejects_wrong_secret() {
        let dir = tempfile::tempdir().unwrap();
        run_local(async {
            let (address, _received) = serve_peer_port(dir.path()).await;
            let connector = crate::node::net::TokioConnector;
            let wrong = dial(&connector, 1, &address, b"a wrong cluster secret").await;
            let Err(error) = wrong else {
                panic!("a wrong secret must not get a link");
            };
            assert!(
                error.contains("authentication failed: rejected: wrong cluster secret"),
                "{error}"
            );
            let right = dial(&connector, 1, &address, b"the right cluster secret").await;
            assert!(right.is_ok(), "the right secret must get a link");
        });
    }

    #[test]
    fn peer_port_rejects_own_id_and_unknown_id() {
        let dir = tempfile::tempdir().unwrap();
        run_local(async {
            let (address, _received) = serve_peer_port(dir.path()).await;
            let connector = crate::node::net::TokioConnector;
            for claimed in [0, 3, 200] {
                let result = dial(&connector, claimed, &address, b"the right cluster secret").await;
                assert!(result.is_err(), "replica id {claimed} must be rejected");
            }
        });
    }

    #[test]
    fn peer_port_exposes_no_client_api() {
        let dir = tempfile::tempdir().unwrap();
        run_local(async {
            let (address, _received) = serve_peer_port(dir.path()).await;
            let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            let network = crate::rpc::serve::network(stream, Side::Client, reader_options());
            let mut system = RpcSystem::new(Box::new(network), None);
            let gateway: crate::rpc::calendar_capnp::gateway::Client =
                system.bootstrap(Side::Server);
            tokio::task::spawn_local(system);
            let mut request = gateway.login_request();
            request.get().set_username("alice");
            request.get().set_password("password1");
            let result = request.send().promise.await;
            assert!(result.is_err(), "the peer port answered a client call");
        });
    }

    #[test]
    fn client_port_exposes_no_peer_api() {
        use crate::node::driver::{self, ReplicaSettings, StartMode};
        let dir = tempfile::tempdir().unwrap();
        run_local(async {
            let settings = ReplicaSettings {
                replica_count: 1,
                replica_id: 0,
                client_addresses: vec![String::new()],
                snapshot: Default::default(),
            };
            let host = crate::node::host::Host::simulated(1, 0);
            let (service, _driver, _inbound) = driver::open(
                settings,
                crate::wal::StdDisk,
                dir.path(),
                StartMode::Init,
                host,
            )
            .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap().to_string();
            let gateway: crate::rpc::calendar_capnp::gateway::Client =
                capnp_rpc::new_client(crate::rpc::gateway::GatewayServer::new(service));
            tokio::task::spawn_local(crate::rpc::serve::accept_loop(
                listener,
                "client",
                move |_| gateway.client.clone(),
            ));
            let connector = crate::node::net::TokioConnector;
            let result = dial(&connector, 1, &address, b"any secret").await;
            assert!(result.is_err(), "the client port took a peer's hello");
        });
    }

    #[test]
    fn mac_binds_secret_nonce_and_replica() {
        let proof = challenge_mac(b"secret", b"nonce", 1);
        assert!(verify_mac(b"secret", b"nonce", 1, &proof));
        assert!(!verify_mac(b"other", b"nonce", 1, &proof));
        assert!(!verify_mac(b"secret", b"other", 1, &proof));
        assert!(!verify_mac(b"secret", b"nonce", 2, &proof));
    }
}
