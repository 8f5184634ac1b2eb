//! The cluster-aware client library.
//!
//! A [`Client`] holds the nodes' client addresses and one connection at a
//! time. Every call has a deadline (Cap'n Proto has none). When a call times
//! out, the connection drops, or a node answers "not primary", the client
//! moves to the hinted or the next node, resumes its session with the
//! session token (no password), and retries with the same request id, which
//! the replicated client table makes exactly-once. Notifications are pushed
//! to a [`Listener`](crate::rpc::calendar_capnp::listener) capability and
//! resumed after the last sequence number seen, so none is lost or shown
//! twice across reconnects.
//!
//! The client is not `Send`: it runs on a current-thread runtime inside a
//! `LocalSet`, like the RPC system beneath it.

mod backup;
mod connection;
mod operations;
mod planning;

pub use backup::fetch_backup;
pub use operations::{node_status_of, NodeReport, SeriesReceipt};

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::calendar::Notification;
use crate::node::net::{Connector, TokioConnector};
use crate::rpc::calendar_capnp::{session, subscription};
use crate::rpc::convert::ApiRejection;
use connection::Connection;

/// Deadline for one call to one node.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Deadline for a whole operation, across retries and failovers.
pub const OPERATION_DEADLINE: Duration = Duration::from_secs(20);
/// First pause between retries; doubled per retry up to `BACKOFF_MAX`, with
/// jitter so that many clients do not retry in lockstep.
pub const BACKOFF_MIN: Duration = Duration::from_millis(20);
/// Kept short because the common reason to retry is a view change, which
/// ends within a few hundred milliseconds.
pub const BACKOFF_MAX: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Rejected(ApiRejection),
    #[error(
        "no node completed the request within {seconds} s (tried {addresses}); last error: {last_error}"
    )]
    Unreachable {
        seconds: u64,
        addresses: String,
        last_error: String,
    },
    #[error("not logged in: use `login USER` or `register USER` first")]
    NotLoggedIn,
    #[error(
        "no node is listening at {addresses}: start the cluster (`almanac local`, or \
         `almanac server` on each node), or check --cluster or --config"
    )]
    NoneListening { addresses: String },
}

/// Something the client learned without being asked.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    Notification(Box<Notification>),
    /// The client moved to another node, for example after a failover.
    SwitchedNode {
        address: String,
    },
}

/// The logged-in user's session, as far as the client keeps it.
struct SessionState {
    username: String,
    token: Vec<u8>,
    /// The session capability on the current connection; None until resumed
    /// there.
    capability: Option<session::Client>,
    /// Keeps the notification stream open on the current connection.
    subscription: Option<subscription::Client>,
    subscribed: bool,
}

pub struct Client<C: Connector = TokioConnector> {
    connector: C,
    /// Client id and retry jitter come from here; seeded in a simulation.
    rng: RefCell<StdRng>,
    /// The node last announced with [`ClientEvent::SwitchedNode`].
    announced: Option<String>,
    addresses: Vec<String>,
    /// Index into `addresses` of the node to try next.
    next_address: usize,
    connection: Option<Connection>,
    client_id: u64,
    /// Sequence number of the last mutating call this client made.
    last_seq: u64,
    session: Option<SessionState>,
    /// Connection attempts refused in a row, across every node.
    refused_in_a_row: usize,
    /// Whether a call gives up at once when every node refused twice,
    /// instead of retrying until `OPERATION_DEADLINE`.
    stop_when_none_listens: bool,
    /// The highest notification sequence number delivered to `events`.
    last_seen: Rc<Cell<u64>>,
    events: mpsc::UnboundedSender<ClientEvent>,
}

impl Client {
    /// Creates a client for the given node addresses over tokio's TCP, with
    /// TLS if the process set a client TLS configuration
    /// ([`set_client_tls`](crate::node::net::set_client_tls)). Nothing
    /// connects until the first call. Events (notifications, node
    /// switches) go to `events`. A call fails at once with
    /// [`ClientError::NoneListening`] when every node refused the
    /// connection twice in a row, as when the cluster was never started.
    pub fn new(addresses: Vec<String>, events: mpsc::UnboundedSender<ClientEvent>) -> Client {
        let mut client = Client::with_connector(TokioConnector, addresses, events, rand::random());
        client.stop_when_none_listens = true;
        client
    }
}

impl<C: Connector> Client<C> {
    /// Creates a client that dials with `connector` and draws its client id
    /// and retry jitter from `seed`.
    pub fn with_connector(
        connector: C,
        addresses: Vec<String>,
        events: mpsc::UnboundedSender<ClientEvent>,
        seed: u64,
    ) -> Client<C> {
        assert!(!addresses.is_empty(), "a client needs at least one address");
        let mut rng = StdRng::seed_from_u64(seed);
        let client_id = rng.gen_range(1..u64::MAX);
        Client {
            connector,
            rng: RefCell::new(rng),
            announced: None,
            addresses,
            next_address: 0,
            connection: None,
            client_id,
            last_seq: 0,
            session: None,
            refused_in_a_row: 0,
            stop_when_none_listens: false,
            last_seen: Rc::new(Cell::new(0)),
            events,
        }
    }

    pub fn username(&self) -> Option<&str> {
        self.session
            .as_ref()
            .map(|session| session.username.as_str())
    }

    pub fn current_address(&self) -> Option<&str> {
        self.connection.as_ref().map(|c| c.address.as_str())
    }

    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Makes the next mutating call reuse the request id of the previous one,
    /// as a client that lost a reply and resent the request would. The
    /// simulation uses it to check that the cluster returns the first
    /// outcome instead of applying the request again.
    #[cfg(feature = "sim")]
    pub fn reuse_last_request_id(&mut self) {
        self.last_seq = self.last_seq.saturating_sub(1);
    }

    fn next_request_id(&mut self) -> (u64, u64) {
        self.last_seq += 1;
        (self.client_id, self.last_seq)
    }

    /// Returns a live connection, dialling the next node if there is none.
    async fn connection(&mut self) -> Result<&Connection, String> {
        if self.connection.as_ref().is_some_and(|c| !c.is_alive()) {
            self.connection = None;
        }
        if self.connection.is_none() {
            let address = self.addresses[self.next_address % self.addresses.len()].clone();
            let opened = Connection::open(&self.connector, &address, CALL_TIMEOUT).await;
            let connection = match opened {
                Ok(connection) => connection,
                Err(error) => {
                    self.refused_in_a_row = if error.refused {
                        self.refused_in_a_row + 1
                    } else {
                        0
                    };
                    return Err(error.message);
                }
            };
            self.refused_in_a_row = 0;
            debug!(%address, "connected");
            self.connection = Some(connection);
            let moved = self.announced.as_ref().is_some_and(|last| *last != address);
            if moved {
                let _ = self.events.send(ClientEvent::SwitchedNode {
                    address: address.clone(),
                });
            }
            self.announced = Some(address);
            if let Some(session) = &mut self.session {
                session.capability = None;
                session.subscription = None;
            }
        }
        Ok(self.connection.as_ref().expect("connected above"))
    }

    /// Drops the current connection and moves on to `hint` if it is one of
    /// the configured nodes, else to the next node.
    fn move_on(&mut self, hint: Option<&str>) {
        if let Some(connection) = self.connection.take() {
            info!(address = %connection.address, "leaving node");
        }
        let hinted = hint.map(|hint| match self.addresses.iter().position(|a| a == hint) {
            Some(index) => index,
            None => {
                // A node named a primary the client was not told about, for
                // example when it was given one address: remember it.
                info!(address = %hint, "following a hint to an unlisted primary");
                self.addresses.push(hint.to_owned());
                self.addresses.len() - 1
            }
        });
        self.next_address = match hinted {
            Some(index) => index,
            None => (self.next_address + 1) % self.addresses.len(),
        };
    }
}

/// The result of one attempt of a call, before the retry policy judges it.
enum Attempt<T> {
    Done(T),
    Rejected(ApiRejection),
    /// Transport failure or timeout: try another node.
    Lost(String),
}

/// Returns the pause before retry number `retry`: exponential from
/// `BACKOFF_MIN` up to `BACKOFF_MAX`, with half of it random.
fn backoff(retry: u32, rng: &RefCell<StdRng>) -> Duration {
    let base = BACKOFF_MIN
        .saturating_mul(1 << retry.min(8))
        .min(BACKOFF_MAX);
    let jitter = rng.borrow_mut().gen_range(0..=base.as_millis() as u64 / 2);
    base / 2 + Duration::from_millis(jitter)
}
