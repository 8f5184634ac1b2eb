//! One Cap'n Proto connection to one node's client port.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use capnp_rpc::{rpc_twoparty_capnp::Side, RpcSystem};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::node::net::Connector;
use crate::rpc::calendar_capnp::gateway;
use crate::rpc::serve::reader_options;

/// The failure of a connection attempt to one node.
pub(crate) struct DialError {
    pub message: String,
    /// The connection was refused, so nothing listens at the address.
    pub refused: bool,
}

impl From<DialError> for String {
    fn from(error: DialError) -> String {
        error.message
    }
}

pub(crate) struct Connection {
    pub address: String,
    pub gateway: gateway::Client,
    alive: Rc<Cell<bool>>,
    task: JoinHandle<()>,
}

impl Connection {
    /// Dials `address` within `timeout` and bootstraps its gateway.
    pub async fn open<C: Connector>(
        connector: &C,
        address: &str,
        timeout: Duration,
    ) -> Result<Connection, DialError> {
        let stream = tokio::time::timeout(timeout, connector.connect(address.to_owned()))
            .await
            .map_err(|_| DialError {
                message: format!("connecting to {address} timed out"),
                refused: false,
            })?
            .map_err(|error| DialError {
                message: format!("connecting to {address} failed: {error}"),
                refused: error.kind() == std::io::ErrorKind::ConnectionRefused,
            })?;
        let network = crate::rpc::serve::network(stream, Side::Client, reader_options());
        let mut system = RpcSystem::new(Box::new(network), None);
        let gateway: gateway::Client = system.bootstrap(Side::Server);
        let peer = address.to_owned();
        system.set_background_error_handler(move |error| {
            debug!(address = %peer, %error, "background RPC error");
        });
        let alive = Rc::new(Cell::new(true));
        let flag = alive.clone();
        let peer = address.to_owned();
        let task = tokio::task::spawn_local(async move {
            if let Err(error) = system.await {
                debug!(address = %peer, %error, "connection ended");
            }
            flag.set(false);
        });
        Ok(Connection {
            address: address.to_owned(),
            gateway,
            alive,
            task,
        })
    }

    pub fn is_alive(&self) -> bool {
        self.alive.get() && !self.task.is_finished()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}
