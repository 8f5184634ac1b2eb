//! One server process: the write-ahead log, the replica, the calendar, and
//! the client and peer ports, wired together on one thread.
//!
//! Everything of a node runs on a current-thread runtime inside a
//! `tokio::task::LocalSet`, because Cap'n Proto's RPC system is not `Send`.
//! The same code runs under turmoil in the simulation, through the
//! [`net`] and [`Disk`](crate::wal::Disk) seams.

pub mod auth;
pub mod clock;
pub mod config;
pub mod driver;
pub mod host;
pub mod net;
pub mod restart_bench;
pub mod service;
mod snapshot;
pub mod tls;

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::replication::Message;
use crate::rpc::calendar_capnp::gateway;
use crate::rpc::gateway::login_limit::LoginLimiter;
use crate::rpc::gateway::GatewayServer;
use crate::rpc::peer::{self, PeerAcceptor, PEER_QUEUE_MAX};
use crate::rpc::serve::{
    client_port_reader_options, reader_options, serve_port, PortOptions, Transport,
    CONNECTIONS_PER_ADDRESS_DEFAULT,
};
use crate::wal::{Disk, MetaFile, StdDisk};
pub use config::ClusterConfig;
pub use driver::StartMode;
use driver::{ReplicaSettings, StartError};
use net::{Connector, Listener, PlainConnector, TlsConnector};
use tls::NodeTls;

/// How long a shutdown waits for writes already submitted to commit and get
/// their replies before it closes the connections. It is long enough for a
/// view change (under half a second) and a few commits. A node whose peers
/// are gone cannot commit at all, so it fails those writes after this wait.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often a shutdown checks whether the submitted writes got replies.
const SHUTDOWN_POLL: Duration = Duration::from_millis(10);

/// Settings of one node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub cluster: ClusterConfig,
    /// This node's id in `cluster` (1-based).
    pub id: u8,
    /// Directory of this node's log and meta file; created if missing.
    pub data_dir: PathBuf,
    pub mode: StartMode,
}

impl NodeOptions {
    /// Returns this node's addresses from the cluster config.
    fn own_addresses(&self) -> Result<config::NodeAddresses, NodeError> {
        let me = self.cluster.node(self.id).ok_or(NodeError::UnknownId {
            id: self.id,
            count: self.cluster.nodes.len(),
        })?;
        Ok(me.clone())
    }
}

/// Errors that stop a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot listen on {address}: {source}{}", busy_hint(.source))]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot open the data directory {dir}: {source}")]
    Start { dir: String, source: StartError },
    #[error("the write-ahead log failed, so the node stopped: {source}")]
    Log { source: crate::wal::WalError },
    #[error("cannot start the node's runtime: {source}")]
    Runtime { source: std::io::Error },
    #[error("node id {id} is not in the cluster config, which lists ids 1 to {count}")]
    UnknownId { id: u8, count: usize },
    #[error("cannot set up TLS: {source}")]
    Tls { source: tls::TlsError },
    #[error("cannot listen for the shutdown signals: {source}")]
    Signals { source: std::io::Error },
    #[error(
        "the data directory {dir} is in use by another almanac process; stop that process \
         first, or give this node a data directory of its own"
    )]
    DataDirInUse { dir: String },
    #[error(
        "the data directory {dir} belongs to node {owner}, not node {id}: start node {owner} \
         with it, or give node {id} a data directory of its own"
    )]
    DataDirOfOtherNode { dir: String, owner: u8, id: u8 },
    #[error(
        "the data directory {dir} belongs to a cluster of {owner} nodes, not of {nodes}: start \
         it with that cluster's config, or give this node a data directory of its own"
    )]
    DataDirOfOtherSize {
        dir: String,
        owner: usize,
        nodes: usize,
    },
    #[error(
        "the data directory {dir} belongs to a cluster with another cluster_secret: start it \
         with that cluster's config; after changing the secret on purpose, delete \
         {dir}/node.id and start the node again"
    )]
    DataDirOfOtherCluster { dir: String },
    #[error(
        "the node id file {path} is not in the form 'node ID of COUNT in cluster HEX'; \
         delete it and start the node with the id and config it had"
    )]
    NodeIdInvalid { path: String },
    #[error("cannot read or record the node id in the data directory {dir}: {source}")]
    NodeIdFile {
        dir: String,
        source: crate::wal::WalError,
    },
    #[error("cannot open the data directory {dir}: {source}")]
    DataDirOpen { dir: String, source: std::io::Error },
}

fn busy_hint(error: &std::io::Error) -> &'static str {
    if error.kind() == std::io::ErrorKind::AddrInUse {
        "; another process uses that port: stop it or choose another address"
    } else {
        ""
    }
}

/// A node that has opened its data directory and bound its ports, ready to
/// serve.
pub struct BoundNode<D: Disk + Clone, L: Listener, C: Connector> {
    pub client_address: String,
    client_listener: L,
    peer_listener: L,
    connector: C,
    options: NodeOptions,
    service: Rc<service::Service>,
    driver: driver::Driver<D>,
    inbound: mpsc::UnboundedSender<peer::Inbound>,
    /// TLS of both ports and of the links to peers; None for plain TCP.
    tls: Option<NodeTls>,
    /// The open data directory, locked for as long as the node runs; None
    /// on disks that are not the real file system.
    data_dir_lock: Option<std::fs::File>,
}

/// Opens the data directory and prepares a node on the given listeners.
/// Must run inside a `LocalSet`.
pub fn prepare<D: Disk + Clone + 'static, L: Listener, C: Connector>(
    options: NodeOptions,
    disk: D,
    listeners: (L, L),
    connector: C,
    host: host::Host,
) -> Result<BoundNode<D, L, C>, NodeError> {
    let me = options.own_addresses()?;
    let settings = ReplicaSettings {
        replica_count: options.cluster.nodes.len(),
        replica_id: options.id - 1,
        client_addresses: options.cluster.client_addresses(),
        snapshot: options.cluster.snapshot,
    };
    let (service, driver, inbound) =
        driver::open(settings, disk, &options.data_dir, options.mode, host).map_err(|source| {
            NodeError::Start {
                dir: options.data_dir.display().to_string(),
                source,
            }
        })?;
    Ok(BoundNode {
        client_address: me.client,
        client_listener: listeners.0,
        peer_listener: listeners.1,
        connector,
        options,
        service,
        driver,
        inbound,
        tls: None,
        data_dir_lock: None,
    })
}

impl<D: Disk + Clone + 'static, L: Listener, C: Connector> BoundNode<D, L, C> {
    pub fn service(&self) -> Rc<service::Service> {
        self.service.clone()
    }

    /// Serves both ports, and dials the peers, with TLS.
    pub fn with_tls(mut self, tls: NodeTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Serves clients and peers until the task is dropped, or until the log
    /// fails to write, which is returned.
    pub async fn serve(self) -> NodeError {
        match self.serve_until(std::future::pending()).await {
            Ok(()) => unreachable!("a pending shutdown signal never fires"),
            Err(error) => error,
        }
    }

    /// Serves clients and peers until `shutdown` completes, then shuts down
    /// gracefully: stops accepting, waits up to `SHUTDOWN_GRACE` for the
    /// writes already submitted to get replies, and closes every connection.
    /// Every appended record was fsynced before it was acknowledged, so
    /// nothing is left to flush. Returns the log's error if it fails first.
    pub async fn serve_until(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), NodeError> {
        // Held until this returns: the node writes its directory until then.
        let _data_dir_lock = self.data_dir_lock.take();
        let id = self.options.id;
        let (stop_accepting, stop_receiver) = watch::channel(false);
        let (close, close_receiver) = watch::channel(false);
        let transport = match &self.tls {
            Some(tls) => Transport::tls(tls.server.clone()),
            None => Transport::Plain,
        };
        let port_options = |port, reader, connections_per_address| PortOptions {
            port,
            transport: transport.clone(),
            reader,
            connections_per_address,
            stop_accepting: stop_receiver.clone(),
            close: close_receiver.clone(),
        };
        self.warn_if_exposed(&transport);
        let secret = Rc::new(self.options.cluster.secret.clone());
        let queues = self.dial_peers(&secret);
        let mut driver = self.driver;
        driver.set_peers(queues);
        let driver = driver.run();
        tokio::pin!(driver);

        let replica_count = self.options.cluster.nodes.len();
        let client_connections_per_address = self.options.cluster.client_connections_per_address;
        let backup_secret = secret.clone();
        let acceptor = PeerAcceptor::new(self.service.clone(), secret, replica_count, self.inbound);
        let peers = serve_port(
            self.peer_listener,
            port_options("peer", reader_options(), CONNECTIONS_PER_ADDRESS_DEFAULT),
            move |_| acceptor.clone(),
        );
        tokio::task::spawn_local(peers);
        let logins = Rc::new(RefCell::new(LoginLimiter::default()));
        let client_service = self.service.clone();
        let clients = serve_port(
            self.client_listener,
            port_options(
                "client",
                client_port_reader_options(),
                client_connections_per_address,
            ),
            move |remote| {
                let server = GatewayServer::for_connection(
                    client_service.clone(),
                    remote.ip(),
                    logins.clone(),
                )
                .with_backup_secret(backup_secret.clone());
                let client: gateway::Client = capnp_rpc::new_client(server);
                client.client
            },
        );
        tokio::task::spawn_local(clients);
        info!(node = id, client = %self.client_address, tls = transport.is_tls(), "serving");

        tokio::select! {
            biased;
            error = &mut driver => return Err(NodeError::Log { source: error }),
            () = shutdown => {}
        }
        info!(node = id, "shutting down: no longer accepting connections");
        let _ = stop_accepting.send(true);
        let service = self.service.clone();
        tokio::select! {
            biased;
            error = &mut driver => return Err(NodeError::Log { source: error }),
            answered = tokio::time::timeout(SHUTDOWN_GRACE, writes_answered(&service)) => {
                if answered.is_err() {
                    let waiting = service.writes.borrow().len();
                    warn!(node = id, waiting, seconds = SHUTDOWN_GRACE.as_secs(),
                        "shutting down with writes still waiting to commit; they fail");
                }
            }
        }
        let _ = close.send(true);
        // Lets the connection tasks see the close and send their last replies.
        tokio::task::yield_now().await;
        info!(node = id, "stopped");
        Ok(())
    }

    /// Starts one outgoing link per peer and returns the queues that feed
    /// them, indexed by replica id.
    fn dial_peers(&self, secret: &Rc<Vec<u8>>) -> Vec<Option<mpsc::Sender<Message>>> {
        let id = self.options.id;
        let mut queues = Vec::new();
        for node in &self.options.cluster.nodes {
            if node.id == id {
                queues.push(None);
                continue;
            }
            let (sender, receiver) = mpsc::channel::<Message>(PEER_QUEUE_MAX);
            queues.push(Some(sender));
            let (from, to, address) = (id - 1, node.id - 1, node.peer.clone());
            match &self.tls {
                Some(tls) => {
                    let connector = TlsConnector::new(self.connector.clone(), tls.client.clone());
                    let link = peer::run_outgoing_link(
                        connector,
                        from,
                        to,
                        address,
                        secret.clone(),
                        receiver,
                    );
                    tokio::task::spawn_local(link);
                }
                None => {
                    let link = peer::run_outgoing_link(
                        self.connector.clone(),
                        from,
                        to,
                        address,
                        secret.clone(),
                        receiver,
                    );
                    tokio::task::spawn_local(link);
                }
            }
        }
        queues
    }

    /// Warns when a port listens beyond loopback without TLS, where anyone on
    /// the network could read passwords and calendars.
    fn warn_if_exposed(&self, transport: &Transport) {
        if transport.is_tls() {
            return;
        }
        let Some(me) = self.options.cluster.node(self.options.id) else {
            return;
        };
        for (port, address) in [("client", &me.client), ("peer", &me.peer)] {
            if !is_loopback(address) {
                warn!(node = self.options.id, port, %address,
                    "listening beyond loopback without TLS: passwords and calendars cross \
                     the network in plain text; set tls_ca_file, tls_cert_file and \
                     tls_key_file in the config");
            }
        }
    }
}

/// Returns whether a listen address ("host:port") is on loopback. A host
/// name other than localhost counts as not loopback.
fn is_loopback(address: &str) -> bool {
    if let Ok(socket) = address.parse::<SocketAddr>() {
        return socket.ip().is_loopback();
    }
    matches!(address.rsplit_once(':'), Some(("localhost", _)))
}

/// Waits until no submitted write waits for its commit.
async fn writes_answered(service: &service::Service) {
    while !service.writes.borrow().is_empty() {
        tokio::time::sleep(SHUTDOWN_POLL).await;
    }
}

/// Binds a node's two ports on tokio's TCP and opens its data directory.
async fn bind_tcp(
    options: NodeOptions,
    tls: Option<NodeTls>,
) -> Result<BoundNode<StdDisk, tokio::net::TcpListener, PlainConnector>, NodeError> {
    let me = options.own_addresses()?;
    // Locked before the ports are bound, so that a second process on the
    // directory reports the directory in use rather than the ports.
    let lock = lock_data_dir(&options.data_dir)?;
    let client = bind_one(&me.client).await?;
    let peers = bind_one(&me.peer).await?;
    let data_dir = options.data_dir.clone();
    let identity = DirIdentity::of(&options);
    let recorded = check_identity(&data_dir, &identity)?;
    let mut node = prepare(
        options,
        StdDisk,
        (client, peers),
        PlainConnector,
        host::Host::production(),
    )?;
    if !recorded {
        // After the directory opened, so that a refused --init leaves no
        // file behind.
        let text = identity.to_text();
        MetaFile::store(&StdDisk, &data_dir.join(NODE_ID_FILE), text.as_bytes()).map_err(
            |source| NodeError::NodeIdFile {
                dir: data_dir.display().to_string(),
                source,
            },
        )?;
    }
    node.data_dir_lock = Some(lock);
    Ok(match tls {
        Some(tls) => node.with_tls(tls),
        None => node,
    })
}

/// The file in a data directory that names the node and the cluster it
/// belongs to. A directory copied or mistyped into another node's place,
/// or started as a cluster of its own, then cannot vote with a log that
/// node never acknowledged.
pub const NODE_ID_FILE: &str = "node.id";

/// The owner of a data directory: `node 1 of 3 in cluster 5f0c...`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DirIdentity {
    id: u8,
    nodes: usize,
    /// The first 8 bytes of a SHA-256 of the cluster secret, in hex: every
    /// node of a cluster shares the secret, and the file does not reveal it.
    cluster: String,
}

impl DirIdentity {
    fn of(options: &NodeOptions) -> DirIdentity {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(b"almanac cluster identity\0");
        hasher.update(&options.cluster.secret);
        let digest = hasher.finalize();
        DirIdentity {
            id: options.id,
            nodes: options.cluster.nodes.len(),
            cluster: crate::snapshot::hex(&digest[..8]),
        }
    }

    fn to_text(&self) -> String {
        format!(
            "node {} of {} in cluster {}\n",
            self.id, self.nodes, self.cluster
        )
    }

    fn parse(text: &str) -> Option<DirIdentity> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["node", id, "of", nodes, "in", "cluster", cluster] => Some(DirIdentity {
                id: id.parse().ok()?,
                nodes: nodes.parse().ok()?,
                cluster: (*cluster).to_owned(),
            }),
            _ => None,
        }
    }
}

/// Returns whether the data directory already records `expected` as its
/// owner (false when it records nothing yet), and an error when it
/// records another node, cluster size or cluster.
fn check_identity(dir: &Path, expected: &DirIdentity) -> Result<bool, NodeError> {
    let path = dir.join(NODE_ID_FILE);
    let stored = MetaFile::load(&StdDisk, &path).map_err(|source| NodeError::NodeIdFile {
        dir: dir.display().to_string(),
        source,
    })?;
    let Some(stored) = stored else {
        return Ok(false);
    };
    let dir_name = dir.display().to_string();
    let owner = std::str::from_utf8(&stored)
        .ok()
        .and_then(DirIdentity::parse)
        .ok_or_else(|| NodeError::NodeIdInvalid {
            path: path.display().to_string(),
        })?;
    if owner.id != expected.id {
        return Err(NodeError::DataDirOfOtherNode {
            dir: dir_name,
            owner: owner.id,
            id: expected.id,
        });
    }
    if owner.nodes != expected.nodes {
        return Err(NodeError::DataDirOfOtherSize {
            dir: dir_name,
            owner: owner.nodes,
            nodes: expected.nodes,
        });
    }
    if owner.cluster != expected.cluster {
        return Err(NodeError::DataDirOfOtherCluster { dir: dir_name });
    }
    Ok(true)
}

/// Creates the data directory if it is missing and takes an exclusive lock
/// on it, so that a second process cannot write the same log. The kernel
/// drops the lock when the process ends, even by `kill -9`.
fn lock_data_dir(dir: &Path) -> Result<std::fs::File, NodeError> {
    let dir_name = || dir.display().to_string();
    let lock_error = |source| NodeError::DataDirOpen {
        dir: dir_name(),
        source,
    };
    StdDisk.create_dir_all(dir).map_err(lock_error)?;
    // On Linux a directory opened read-only can carry a flock, so no lock
    // file is needed, and an empty directory stays empty for --init.
    let handle = std::fs::File::open(dir).map_err(lock_error)?;
    match handle.try_lock() {
        Ok(()) => Ok(handle),
        Err(std::fs::TryLockError::WouldBlock) => Err(NodeError::DataDirInUse { dir: dir_name() }),
        Err(std::fs::TryLockError::Error(source)) => Err(lock_error(source)),
    }
}

async fn bind_one(address: &str) -> Result<tokio::net::TcpListener, NodeError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| NodeError::Listen {
            address: address.to_owned(),
            source,
        })
}

fn node_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs a node on the calling thread, with TLS when `tls` names its files,
/// until SIGTERM or Ctrl-C (SIGINT) shuts it down gracefully (returns Ok)
/// or the log fails.
pub fn run_blocking(options: NodeOptions, tls: Option<tls::TlsFiles>) -> Result<(), NodeError> {
    let tls = tls
        .map(|files| NodeTls::load(&files))
        .transpose()
        .map_err(|source| NodeError::Tls { source })?;
    let runtime = node_runtime().map_err(|source| NodeError::Runtime { source })?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        // Installed before binding, so that a signal during start-up also
        // shuts down gracefully instead of killing the process.
        let shutdown = shutdown_signal().map_err(|source| NodeError::Signals { source })?;
        bind_tcp(options, tls).await?.serve_until(shutdown).await
    })
}

/// Returns a future that completes on the first SIGTERM or SIGINT.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        info!(signal = name, "received a shutdown signal");
    })
}

/// Starts a node on a thread of its own and returns its client address once
/// it listens and has opened its data directory.
pub fn spawn_background(options: NodeOptions) -> Result<SocketAddr, NodeError> {
    let (ready, bound) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("node-{}", options.id))
        .spawn(move || {
            let runtime = match node_runtime() {
                Ok(runtime) => runtime,
                Err(source) => {
                    let _ = ready.send(Err(NodeError::Runtime { source }));
                    return;
                }
            };
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async move {
                match bind_tcp(options, None).await {
                    Ok(node) => {
                        let address = node.client_listener.local_addr();
                        let _ = ready.send(address.map_err(|source| NodeError::Listen {
                            address: node.client_address.clone(),
                            source,
                        }));
                        let error = node.serve().await;
                        tracing::error!(%error, "node stopped");
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error));
                    }
                }
            });
        })
        .map_err(|source| NodeError::Runtime { source })?;
    bound.recv().unwrap_or_else(|_| {
        Err(NodeError::Runtime {
            source: std::io::Error::other("the node thread stopped before it listened"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_detected() {
        assert!(is_loopback("127.0.0.1:7401"));
        assert!(is_loopback("[::1]:7401"));
        assert!(is_loopback("localhost:7401"));
    }

    #[test]
    fn other_addresses_not_loopback() {
        assert!(!is_loopback("0.0.0.0:7401"));
        assert!(!is_loopback("192.0.2.1:7401"));
        assert!(!is_loopback("calendar.example.org:7401"));
    }

    fn identity(id: u8, nodes: usize, cluster: &str) -> DirIdentity {
        DirIdentity {
            id,
            nodes,
            cluster: cluster.to_owned(),
        }
    }

    #[test]
    fn identity_text_round_trip() {
        let owner = identity(2, 3, "0011223344556677");
        assert_eq!(owner.to_text(), "node 2 of 3 in cluster 0011223344556677\n");
        assert_eq!(DirIdentity::parse(&owner.to_text()), Some(owner));
        assert_eq!(DirIdentity::parse("node 2 of 3"), None);
        assert_eq!(DirIdentity::parse("node x of 3 in cluster 00"), None);
    }

    #[test]
    fn identity_mismatch_refused() {
        let dir = tempfile::tempdir().unwrap();
        let owner = identity(1, 3, "aaaaaaaaaaaaaaaa");
        assert!(!check_identity(dir.path(), &owner).unwrap());
        let path = dir.path().join(NODE_ID_FILE);
        MetaFile::store(&StdDisk, &path, owner.to_text().as_bytes()).unwrap();
        assert!(check_identity(dir.path(), &owner).unwrap());

        let other_node = check_identity(dir.path(), &identity(2, 3, "aaaaaaaaaaaaaaaa"));
        let message = other_node.unwrap_err().to_string();
        assert!(
            message.contains("belongs to node 1, not node 2"),
            "{message}"
        );
        let one_node = check_identity(dir.path(), &identity(1, 1, "bbbbbbbbbbbbbbbb"));
        let message = one_node.unwrap_err().to_string();
        assert!(
            message.contains("a cluster of 3 nodes, not of 1"),
            "{message}"
        );
        let other_secret = check_identity(dir.path(), &identity(1, 3, "bbbbbbbbbbbbbbbb"));
        let message = other_secret.unwrap_err().to_string();
        assert!(message.contains("another cluster_secret"), "{message}");

        MetaFile::store(&StdDisk, &path, b"node one").unwrap();
        let garbled = check_identity(dir.path(), &owner).unwrap_err().to_string();
        assert!(garbled.contains("is not in the form"), "{garbled}");
    }
}
