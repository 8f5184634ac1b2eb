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

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;

use tokio::sync::mpsc;
use tracing::info;

use crate::replication::Message;
use crate::rpc::calendar_capnp::gateway;
use crate::rpc::gateway::GatewayServer;
use crate::rpc::peer::{self, PeerGatewayServer, PEER_QUEUE_MAX};
use crate::rpc::replication_capnp::peer_gateway;
use crate::rpc::serve::accept_loop;
use crate::wal::{Disk, StdDisk};
pub use config::ClusterConfig;
pub use driver::StartMode;
use driver::{ReplicaSettings, StartError};
use net::{Connector, Listener, TokioConnector};

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
    })
}

impl<D: Disk + Clone + 'static, L: Listener, C: Connector> BoundNode<D, L, C> {
    pub fn service(&self) -> Rc<service::Service> {
        self.service.clone()
    }

    /// Serves clients and peers until the task is dropped, or until the log
    /// fails to write, which is returned.
    pub async fn serve(mut self) -> NodeError {
        let id = self.options.id;
        let secret = Rc::new(self.options.cluster.secret.clone());
        let mut queues = Vec::new();
        for node in &self.options.cluster.nodes {
            if node.id == id {
                queues.push(None);
                continue;
            }
            let (sender, receiver) = mpsc::channel::<Message>(PEER_QUEUE_MAX);
            queues.push(Some(sender));
            tokio::task::spawn_local(peer::run_outgoing_link(
                self.connector.clone(),
                id - 1,
                node.id - 1,
                node.peer.clone(),
                secret.clone(),
                receiver,
            ));
        }
        self.driver.set_peers(queues);
        let driver = self.driver.run();

        let replica_count = self.options.cluster.nodes.len();
        let inbound = self.inbound;
        let peer_secret = secret.clone();
        let peer_service = self.service.clone();
        tokio::task::spawn_local(accept_loop(self.peer_listener, "peer", move |remote| {
            let server = PeerGatewayServer::new(
                peer_service.clone(),
                peer_secret.clone(),
                replica_count,
                inbound.clone(),
                remote,
            );
            let client: peer_gateway::Client = capnp_rpc::new_client(server);
            client.client
        }));
        let gateway: gateway::Client = capnp_rpc::new_client(
            GatewayServer::new(self.service.clone()).with_backup_secret(secret),
        );
        info!(node = id, client = %self.client_address, "serving");
        let clients = accept_loop(self.client_listener, "client", move |_| {
            gateway.client.clone()
        });
        tokio::select! {
            error = driver => NodeError::Log { source: error },
            () = clients => unreachable!("the accept loop never ends"),
        }
    }
}

/// Binds a node's two ports on tokio's TCP and opens its data directory.
async fn bind_tcp(
    options: NodeOptions,
) -> Result<BoundNode<StdDisk, tokio::net::TcpListener, TokioConnector>, NodeError> {
    let me = options.own_addresses()?;
    let client = bind_one(&me.client).await?;
    let peers = bind_one(&me.peer).await?;
    prepare(
        options,
        StdDisk,
        (client, peers),
        TokioConnector,
        host::Host::production(),
    )
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

/// Runs a node on the calling thread until the process ends.
pub fn run_blocking(options: NodeOptions) -> Result<(), NodeError> {
    let runtime = node_runtime().map_err(|source| NodeError::Runtime { source })?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        Err(bind_tcp(options).await?.serve().await)
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
                match bind_tcp(options).await {
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
