//! The peer port: authenticating other nodes, and carrying protocol
//! messages between them.
//!
//! Each node dials every other node's peer port and keeps one outgoing link
//! per peer, over which it sends its own messages; what it receives comes in
//! over the links other nodes dialled. A dialling node proves that it knows
//! the cluster secret with HMAC-SHA256 over a fresh challenge before it gets
//! a `PeerLink`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

use capnp::capability::Rc as CapRc;
use capnp_rpc::{rpc_twoparty_capnp::Side, RpcSystem};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::node::net::{Connector, Stream};
use crate::replication::{Entry, Message, PrimaryState, ReplicaId};
use crate::rpc::replication_capnp::{entry, message, peer_gateway, peer_link};
use crate::rpc::serve::reader_options;

/// Length of an authentication challenge in bytes.
const CHALLENGE_BYTES: usize = 32;

/// Deadline for connecting, authenticating, and for each send on a link.
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

/// The peer port's bootstrap object, one per accepted connection, so that a
/// challenge is only good on the connection that asked for it.
pub struct PeerGatewayServer {
    service: std::rc::Rc<crate::node::service::Service>,
    secret: std::rc::Rc<Vec<u8>>,
    replica_count: usize,
    self_id: ReplicaId,
    challenge: RefCell<Option<Vec<u8>>>,
    inbound: mpsc::UnboundedSender<Inbound>,
    remote: SocketAddr,
}

impl PeerGatewayServer {
    pub fn new(
        service: std::rc::Rc<crate::node::service::Service>,
        secret: std::rc::Rc<Vec<u8>>,
        replica_count: usize,
        inbound: mpsc::UnboundedSender<Inbound>,
        remote: SocketAddr,
    ) -> Self {
        let self_id = service.replica_id;
        PeerGatewayServer {
            service,
            secret,
            replica_count,
            self_id,
            challenge: RefCell::new(None),
            inbound,
            remote,
        }
    }
}

impl peer_gateway::Server for PeerGatewayServer {
    async fn challenge(
        self: CapRc<Self>,
        _params: peer_gateway::ChallengeParams,
        mut results: peer_gateway::ChallengeResults,
    ) -> Result<(), capnp::Error> {
        let mut nonce = vec![0u8; CHALLENGE_BYTES];
        self.service.host.entropy.fill(&mut nonce);
        results.get().set_nonce(&nonce);
        *self.challenge.borrow_mut() = Some(nonce);
        Ok(())
    }

    async fn authenticate(
        self: CapRc<Self>,
        params: peer_gateway::AuthenticateParams,
        mut results: peer_gateway::AuthenticateResults,
    ) -> Result<(), capnp::Error> {
        let params = params.get()?;
        let replica = params.get_replica();
        let nonce = params.get_nonce()?;
        let proof = params.get_mac()?;
        // A challenge is good for one attempt.
        let issued = self.challenge.borrow_mut().take();
        let valid = issued.as_deref() == Some(nonce)
            && (replica as usize) < self.replica_count
            && replica != self.self_id
            && verify_mac(&self.secret, nonce, replica, proof);
        if !valid {
            warn!(node = self.self_id + 1, remote = %self.remote, claimed = replica + 1,
                "rejected a peer that failed authentication");
            return Err(capnp::Error::failed(
                "authentication failed: wrong cluster secret, replica id or challenge".into(),
            ));
        }
        info!(node = self.self_id + 1, peer = replica + 1, remote = %self.remote, "peer authenticated");
        let link = PeerLinkServer {
            peer: replica,
            inbound: self.inbound.clone(),
        };
        results.get().set_link(capnp_rpc::new_client(link));
        Ok(())
    }
}

/// Receives one authenticated peer's messages.
struct PeerLinkServer {
    peer: ReplicaId,
    inbound: mpsc::UnboundedSender<Inbound>,
}

impl peer_link::Server for PeerLinkServer {
    async fn ping(
        self: CapRc<Self>,
        _: peer_link::PingParams,
        _: peer_link::PingResults,
    ) -> Result<(), capnp::Error> {
        Ok(())
    }

    async fn send(self: CapRc<Self>, params: peer_link::SendParams) -> Result<(), capnp::Error> {
        let (claimed, message) = read_message(params.get()?.get_message()?)?;
        if claimed != self.peer {
            return Err(capnp::Error::failed(format!(
                "message names replica {claimed} but the link belongs to replica {}",
                self.peer
            )));
        }
        self.inbound
            .send((self.peer, message))
            .map_err(|_| capnp::Error::disconnected("the node is shutting down".into()))
    }
}

/// Keeps an authenticated link to one peer and sends it this node's
/// messages, dialling again after any failure. Messages queued while the
/// link is down are dropped.
pub async fn run_outgoing_link<C: Connector>(
    connector: C,
    self_id: ReplicaId,
    peer: ReplicaId,
    address: String,
    secret: std::rc::Rc<Vec<u8>>,
    mut outgoing: mpsc::Receiver<Message>,
) {
    let mut pause = REDIAL_MIN;
    loop {
        match dial(&connector, self_id, &address, &secret).await {
            Ok((link, system)) => {
                info!(node = self_id + 1, peer = peer + 1, %address, "link to peer up");
                pause = REDIAL_MIN;
                let reason = forward(&link, self_id, &mut outgoing).await;
                drop(link);
                system.abort();
                match reason {
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
/// closes (None). A ping every [`PEER_PROBE_INTERVAL`] without a reply
/// within [`PEER_CALL_TIMEOUT`] fails the link, so a connection that
/// silently lost bytes is dialled again within about a second.
async fn forward(
    link: &peer_link::Client,
    self_id: ReplicaId,
    outgoing: &mut mpsc::Receiver<Message>,
) -> Option<String> {
    let mut probe = tokio::time::interval(PEER_PROBE_INTERVAL);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ping = None;
    loop {
        tokio::select! {
            message = outgoing.recv() => {
                let message = message?;
                let mut request = link.send_request();
                write_message(request.get().init_message(), self_id, &message);
                match tokio::time::timeout(PEER_CALL_TIMEOUT, request.send()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => return Some(error.to_string()),
                    Err(_) => return Some("send timed out".into()),
                }
            }
            _ = probe.tick(), if ping.is_none() => {
                let answer = link.ping_request().send().promise;
                ping = Some(Box::pin(tokio::time::timeout(PEER_CALL_TIMEOUT, answer)));
            }
            answer = async { ping.as_mut().expect("guarded by is_some").await }, if ping.is_some() => {
                ping = None;
                match answer {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Some(format!("ping failed: {error}")),
                    Err(_) => return Some("the peer stopped answering pings".into()),
                }
            }
        }
    }
}

async fn dial<C: Connector>(
    connector: &C,
    self_id: ReplicaId,
    address: &str,
    secret: &[u8],
) -> Result<(peer_link::Client, tokio::task::JoinHandle<()>), String> {
    let stream = tokio::time::timeout(PEER_CALL_TIMEOUT, connector.connect(address.to_owned()))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|error| format!("connect failed: {error}"))?;
    let (gateway, system) = start_client_rpc(stream);
    let authenticate = async {
        let response = gateway.challenge_request().send().promise.await?;
        let nonce = response.get()?.get_nonce()?.to_vec();
        let mut request = gateway.authenticate_request();
        request.get().set_replica(self_id);
        request.get().set_nonce(&nonce);
        request
            .get()
            .set_mac(&challenge_mac(secret, &nonce, self_id));
        let response = request.send().promise.await?;
        response.get()?.get_link()
    };
    match tokio::time::timeout(PEER_CALL_TIMEOUT, authenticate).await {
        Ok(Ok(link)) => Ok((link, system)),
        Ok(Err(error)) => {
            system.abort();
            Err(format!("authentication failed: {error}"))
        }
        Err(_) => {
            system.abort();
            Err("authentication timed out".into())
        }
    }
}

fn start_client_rpc(stream: impl Stream) -> (peer_gateway::Client, tokio::task::JoinHandle<()>) {
    let network = crate::rpc::serve::network(stream, Side::Client, reader_options());
    let mut system = RpcSystem::new(Box::new(network), None);
    let gateway: peer_gateway::Client = system.bootstrap(Side::Server);
    system.set_background_error_handler(
        |error| debug!(%error, "background RPC error on a peer link"),
    );
    let task = tokio::task::spawn_local(async move {
        let _ = system.await;
    });
    (gateway, task)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    /// address; the node's data lives in `dir`.
    async fn serve_peer_port(dir: &std::path::Path) -> String {
        use crate::node::driver::{self, ReplicaSettings, StartMode};
        let settings = ReplicaSettings {
            replica_count: 3,
            replica_id: 0,
            client_addresses: vec![String::new(); 3],
            snapshot: Default::default(),
        };
        let host = crate::node::host::Host::simulated(1, 0);
        let (service, _driver, inbound) =
            driver::open(settings, crate::wal::StdDisk, dir, StartMode::Init, host).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let secret = std::rc::Rc::new(b"the right cluster secret".to_vec());
        tokio::task::spawn_local(crate::rpc::serve::accept_loop(
            listener,
            "peer",
            move |remote| {
                let server = PeerGatewayServer::new(
                    service.clone(),
                    secret.clone(),
                    3,
                    inbound.clone(),
                    remote,
                );
                let client: peer_gateway::Client = capnp_rpc::new_client(server);
                client.client
            },
        ));
        address
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
            let address = serve_peer_port(dir.path()).await;
            let connector = crate::node::net::TokioConnector;
            let wrong = dial(&connector, 1, &address, b"a wrong cluster secret").await;
            let error = wrong.err().expect("a wrong secret must not get a link");
            assert!(error.contains("authentication failed"), "{error}");
            let right = dial(&connector, 1, &address, b"the right cluster secret").await;
            assert!(right.is_ok(), "the right secret must get a link");
        });
    }

    #[test]
    fn peer_port_rejects_own_id_and_unknown_id() {
        let dir = tempfile::tempdir().unwrap();
        run_local(async {
            let address = serve_peer_port(dir.path()).await;
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
            let address = serve_peer_port(dir.path()).await;
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
            let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            let (peer, system) = start_client_rpc(stream);
            let result = peer.challenge_request().send().promise.await;
            assert!(result.is_err(), "the client port answered a peer call");
            system.abort();
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
