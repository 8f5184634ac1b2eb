//! One server process: the write-ahead log, the calendar and the client port,
//! wired together on one thread.
//!
//! Everything of a node runs on a current-thread runtime inside a
//! `tokio::task::LocalSet`, because Cap'n Proto's RPC system is not `Send`.
//! The same code runs under turmoil in the simulation.

pub mod auth;
pub mod clock;
pub mod net;
pub mod service;

use std::net::SocketAddr;
use std::path::PathBuf;

use tracing::info;

use crate::rpc::calendar_capnp::gateway;
use crate::rpc::gateway::GatewayServer;
use crate::rpc::serve::accept_loop;
use crate::wal::StdDisk;
use clock::Clock;
use service::StartError;

/// Settings of one node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub id: u8,
    /// Where clients connect.
    pub client_address: SocketAddr,
    /// Directory of this node's write-ahead log; created if missing.
    pub data_dir: PathBuf,
}

/// Why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot listen on {address}: {source}{}", busy_hint(.source))]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the data directory {dir}: {source}")]
    Start { dir: String, source: StartError },
    #[error("cannot start the node's runtime: {source}")]
    Runtime { source: std::io::Error },
}

fn busy_hint(error: &std::io::Error) -> &'static str {
    if error.kind() == std::io::ErrorKind::AddrInUse {
        "; another process uses that port: stop it or choose another address"
    } else {
        ""
    }
}

/// A node that has bound its port and replayed its log, ready to serve.
pub struct BoundNode {
    pub address: SocketAddr,
    listener: tokio::net::TcpListener,
    service: std::rc::Rc<service::Service>,
    committer: service::Committer<StdDisk>,
}

/// Binds the client port and replays the data directory's log. Must run
/// inside a `LocalSet`.
pub async fn bind(options: NodeOptions) -> Result<BoundNode, NodeError> {
    let listen_error = |source| NodeError::Listen {
        address: options.client_address,
        source,
    };
    let listener = tokio::net::TcpListener::bind(options.client_address)
        .await
        .map_err(listen_error)?;
    let address = listener.local_addr().map_err(listen_error)?;
    let (service, committer) = service::open(
        options.id,
        address.to_string(),
        StdDisk,
        &options.data_dir,
        Clock::System,
    )
    .map_err(|source| NodeError::Start {
        dir: options.data_dir.display().to_string(),
        source,
    })?;
    info!(node = options.id, %address, data = %options.data_dir.display(), "serving clients");
    Ok(BoundNode {
        address,
        listener,
        service,
        committer,
    })
}

impl BoundNode {
    /// Serves clients until the task is dropped.
    pub async fn serve(self) {
        tokio::task::spawn_local(self.committer.run());
        let gateway: gateway::Client = capnp_rpc::new_client(GatewayServer::new(self.service));
        accept_loop(self.listener, gateway.client, "client").await;
    }
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
        bind(options).await?.serve().await;
        Ok(())
    })
}

/// Starts a node on a thread of its own and returns its client address once
/// it listens and has replayed its log.
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
                match bind(options).await {
                    Ok(node) => {
                        let _ = ready.send(Ok(node.address));
                        node.serve().await;
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
