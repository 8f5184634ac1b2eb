//! Serving Cap'n Proto on accepted streams, with the limits every connection
//! gets at the RPC boundary: message size, nesting depth, connections per
//! remote address, the TLS handshake deadline, and shutdown.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use capnp::message::ReaderOptions;
use capnp_rpc::{rpc_twoparty_capnp::Side, twoparty, RpcSystem};
use tokio::io::{BufReader, BufWriter, ReadHalf};
use tokio::sync::watch;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use tracing::{debug, info, warn};

use crate::node::net::{Listener, Stream};

/// Largest message read on the peer port and by clients reading replies, in
/// 8-byte words (64 MiB). Cap'n Proto rejects a frame whose segment table
/// adds up to more before it allocates, so a hostile length prefix cannot
/// make the reader allocate without bound. The limit also caps how many
/// words one message may make the reader visit, which stops pointer tricks
/// that read the same words many times. It leaves room for a prepare batch
/// of 64 client requests of the largest size the client port reads, and
/// prepares and new-state replies stay below a quarter of it
/// (`replication::PREPARE_BYTES_MAX`).
///
/// NOTE: view-change messages carry the whole log after the last snapshot
/// and are not bounded below this limit.
pub const TRAVERSAL_LIMIT_WORDS: usize = 8 * 1024 * 1024;

/// Largest message the client port reads, in words (1 MiB). By our
/// estimate an event with a 4000-character description and 200 guests takes
/// under 32 KiB. Any client, logged in or not, can make the node allocate
/// this much per connection before anything checks the message.
///
/// NOTE: a series written in one call with hundreds of overrides that each
/// carry a long description can exceed it. Such a call fails as a dropped
/// connection, not as an invalid request.
pub const CLIENT_REQUEST_WORDS_MAX: usize = 128 * 1024;

// Decoded and postcard-encoded for the log, a message grows at most eightfold
// (a one-bit boolean becomes a byte), so a request read within the limit
// stays below the log's maximum record size.
const _: () = assert!(CLIENT_REQUEST_WORDS_MAX * 8 * 8 <= crate::wal::PAYLOAD_BYTES_MAX);
const _: () = assert!(CLIENT_REQUEST_WORDS_MAX * 64 <= TRAVERSAL_LIMIT_WORDS);

/// Deepest pointer nesting accepted. By our count the schemas nest structs
/// about ten levels deep (a call, its params, a draft, its recurrence, its
/// overrides, their texts), so 32 leaves room for growth, while a hostile
/// chain of nested pointers stops long before it can exhaust the stack.
pub const NESTING_LIMIT: i32 = 32;

/// The default number of connections one remote IP address may keep open
/// on one port at a time. The config's `client_connections_per_address`
/// sets another value for the client port. Every connection costs a task, buffers and a file
/// descriptor, so one host must not take them all. 64 still lets a few
/// dozen people behind one NAT address work at once, and a node dials each
/// peer over one connection.
pub const CONNECTIONS_PER_ADDRESS_DEFAULT: usize = 64;

/// Time a new connection has to finish its TLS handshake. A client that
/// opens a socket and stops sending would otherwise hold its connection
/// slot forever.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept`, which fails when the process runs out of
/// file descriptors: retrying at once would spin.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Rejected connections from one address between two warnings, so that a
/// flood does not flood the log too.
const REJECTIONS_PER_WARNING: u64 = 1000;

/// Returns the reader limits of the peer port and of clients reading
/// replies.
pub fn reader_options() -> ReaderOptions {
    reader_options_with(TRAVERSAL_LIMIT_WORDS)
}

/// Returns the reader limits of the client port.
pub fn client_port_reader_options() -> ReaderOptions {
    reader_options_with(CLIENT_REQUEST_WORDS_MAX)
}

/// Returns reader limits with the nesting limit of every port and a
/// traversal limit of `traversal_limit_words`.
pub fn reader_options_with(traversal_limit_words: usize) -> ReaderOptions {
    let mut options = ReaderOptions::new();
    options
        .traversal_limit_in_words(Some(traversal_limit_words))
        .nesting_limit(NESTING_LIMIT);
    options
}

/// The layer a port runs beneath Cap'n Proto on each accepted stream.
#[derive(Clone, Default)]
pub enum Transport {
    /// Cap'n Proto straight on TCP.
    #[default]
    Plain,
    /// TLS first, with this server configuration.
    Tls(tokio_rustls::TlsAcceptor),
}

impl Transport {
    pub fn tls(config: Arc<rustls::ServerConfig>) -> Transport {
        Transport::Tls(tokio_rustls::TlsAcceptor::from(config))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }
}

/// Settings of one port: its name in logs, its transport, and the signals
/// that stop it.
#[derive(Clone)]
pub struct PortOptions {
    /// "client" or "peer", for log lines.
    pub port: &'static str,
    pub transport: Transport,
    /// Limits on each message the port reads.
    pub reader: ReaderOptions,
    /// Connections one remote IP address may keep open at a time.
    pub connections_per_address: usize,
    /// Becomes true when the node shuts down: the port stops accepting, and
    /// open connections close once `close` becomes true.
    pub stop_accepting: watch::Receiver<bool>,
    pub close: watch::Receiver<bool>,
}

impl PortOptions {
    /// Plain TCP that is never stopped, for tests and tools.
    pub fn plain(port: &'static str) -> PortOptions {
        let (stop, receiver) = watch::channel(false);
        // The receivers only ever see `false` once the sender is gone.
        drop(stop);
        PortOptions {
            port,
            transport: Transport::Plain,
            reader: reader_options(),
            connections_per_address: CONNECTIONS_PER_ADDRESS_DEFAULT,
            stop_accepting: receiver.clone(),
            close: receiver,
        }
    }
}

/// A two-party RPC network on one connection.
pub type Network<S> = twoparty::VatNetwork<Compat<BufReader<ReadHalf<S>>>>;

/// Splits `stream` into buffered halves and makes a two-party RPC network
/// on them. Cap'n Proto writes a message's segment table and its segments
/// separately and flushes once per batch of queued messages. Buffered, a
/// batch leaves in one system call, and the reader takes what arrived in
/// one call instead of two per message.
pub fn network<S: Stream>(stream: S, side: Side, limits: ReaderOptions) -> Network<S> {
    let (reader, writer) = tokio::io::split(stream);
    twoparty::VatNetwork::new(
        BufReader::new(reader).compat(),
        BufWriter::new(writer).compat_write(),
        side,
        limits,
    )
}

/// Serves one accepted connection once its transport (TLS or none) is up:
/// a Cap'n Proto RPC bootstrap capability on the client port, the framed
/// peer protocol on the peer port.
pub trait Connection: 'static {
    /// Serves `stream`, which comes from `peer`, until it ends or `close`
    /// turns true, reading messages within `limits`.
    fn serve(
        self,
        stream: impl Stream,
        peer: SocketAddr,
        port: &'static str,
        limits: ReaderOptions,
        close: watch::Receiver<bool>,
    ) -> impl Future<Output = ()>;
}

impl Connection for capnp::capability::Client {
    fn serve(
        self,
        stream: impl Stream,
        peer: SocketAddr,
        port: &'static str,
        limits: ReaderOptions,
        close: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> {
        serve_connection(stream, peer, self, port, limits, close)
    }
}

/// Runs one two-party RPC connection on `stream`, bootstrapping `bootstrap`,
/// until the peer disconnects, sends something malformed, or `close` turns
/// true. Only this connection is closed on an error.
pub async fn serve_connection(
    stream: impl Stream,
    peer: SocketAddr,
    bootstrap: capnp::capability::Client,
    port: &'static str,
    limits: ReaderOptions,
    mut close: watch::Receiver<bool>,
) {
    let network = network(stream, Side::Server, limits);
    let mut system = RpcSystem::new(Box::new(network), Some(bootstrap));
    system.set_background_error_handler(move |error| {
        debug!(%peer, port, %error, "background RPC error");
    });
    tokio::select! {
        biased;
        result = system => match result {
            Ok(()) => debug!(%peer, port, "connection closed"),
            Err(error) => warn!(%peer, port, %error, "connection closed on an error"),
        },
        () = wait_until_true(&mut close) => {
            debug!(%peer, port, "connection closed by the shutdown");
        }
    }
}

/// Waits until the watched flag is true. Never returns if its sender is
/// dropped while the flag is false.
pub async fn wait_until_true(flag: &mut watch::Receiver<bool>) {
    if flag.wait_for(|value| *value).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Open connections per remote IP address on one port.
#[derive(Default)]
struct ConnectionCounts {
    open: BTreeMap<IpAddr, usize>,
    /// Connections rejected per address since the last warning about it.
    rejected: BTreeMap<IpAddr, u64>,
}

/// Holds one connection slot of an address; frees it when dropped.
struct ConnectionSlot {
    counts: Rc<RefCell<ConnectionCounts>>,
    address: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.borrow_mut();
        if let Some(open) = counts.open.get_mut(&self.address) {
            *open -= 1;
            if *open == 0 {
                counts.open.remove(&self.address);
                counts.rejected.remove(&self.address);
            }
        }
    }
}

/// Takes a connection slot for `address`, or returns None when the address
/// already has `limit` connections open.
fn take_slot(
    counts: &Rc<RefCell<ConnectionCounts>>,
    address: IpAddr,
    port: &'static str,
    limit: usize,
) -> Option<ConnectionSlot> {
    let mut all = counts.borrow_mut();
    let open = all.open.entry(address).or_insert(0);
    if *open >= limit {
        let rejected = all.rejected.entry(address).or_insert(0);
        if rejected.is_multiple_of(REJECTIONS_PER_WARNING) {
            warn!(%address, port, limit, rejected_before = *rejected,
                "rejected a connection: the address has the maximum number of connections open");
        }
        *rejected += 1;
        return None;
    }
    *open += 1;
    Some(ConnectionSlot {
        counts: counts.clone(),
        address,
    })
}

/// Accepts connections forever on plain TCP, serving each on the current
/// `LocalSet` with what `connection` makes for the remote address.
pub async fn accept_loop<L: Listener, C: Connection>(
    listener: L,
    port: &'static str,
    connection: impl FnMut(SocketAddr) -> C,
) {
    serve_port(listener, PortOptions::plain(port), connection).await
}

/// Accepts connections until `options.stop_accepting` turns true, serving
/// each on the current `LocalSet` with what `connection` makes for the
/// remote address (for RPC, a bootstrap capability). Drops the listener
/// before it returns, so new connections are refused from then on.
pub async fn serve_port<L: Listener, C: Connection>(
    mut listener: L,
    options: PortOptions,
    mut connection: impl FnMut(SocketAddr) -> C,
) {
    let port = options.port;
    let counts = Rc::new(RefCell::new(ConnectionCounts::default()));
    let mut stop = options.stop_accepting.clone();
    loop {
        let accepted = tokio::select! {
            biased;
            () = wait_until_true(&mut stop) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let limit = options.connections_per_address;
                let Some(slot) = take_slot(&counts, peer.ip(), port, limit) else {
                    continue;
                };
                debug!(%peer, port, "accepted a connection");
                let served = connection(peer);
                let settings = ConnectionOptions {
                    port,
                    transport: options.transport.clone(),
                    reader: options.reader,
                    close: options.close.clone(),
                };
                tokio::task::spawn_local(async move {
                    let _slot = slot;
                    serve_accepted(stream, peer, served, settings).await;
                });
            }
            Err(error) => {
                warn!(port, %error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
            }
        }
    }
    info!(port, "stopped accepting connections");
}

/// The port's settings one connection task takes along.
struct ConnectionOptions {
    port: &'static str,
    transport: Transport,
    reader: ReaderOptions,
    close: watch::Receiver<bool>,
}

/// Runs the TLS handshake if the port has TLS, then serves the connection.
async fn serve_accepted(
    stream: impl Stream,
    peer: SocketAddr,
    connection: impl Connection,
    options: ConnectionOptions,
) {
    let ConnectionOptions {
        port,
        transport,
        reader,
        close,
    } = options;
    match transport {
        Transport::Plain => connection.serve(stream, peer, port, reader, close).await,
        Transport::Tls(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => connection.serve(tls, peer, port, reader, close).await,
                Ok(Err(error)) => {
                    warn!(%peer, port, %error, "TLS handshake failed; connection closed");
                }
                Err(_) => warn!(
                    %peer, port, seconds = TLS_HANDSHAKE_TIMEOUT.as_secs(),
                    "TLS handshake timed out; connection closed"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the words of a message whose root pointer starts a chain of
    /// `depth` struct pointers: each struct has no data and one pointer to
    /// the next, and the last one's pointer is null.
    fn nested_chain(depth: usize) -> Vec<capnp::Word> {
        // Offset 0 (the struct starts at the next word), no data words, one
        // pointer word.
        let pointer: u64 = 1 << 48;
        let mut words = vec![capnp::word(0, 0, 0, 0, 0, 0, 1, 0); depth];
        assert_eq!(u64::from_le_bytes([0, 0, 0, 0, 0, 0, 1, 0]), pointer);
        words.push(capnp::word(0, 0, 0, 0, 0, 0, 0, 0));
        words
    }

    fn total_words(words: &[capnp::Word]) -> capnp::Result<u64> {
        let bytes = capnp::Word::words_to_bytes(words);
        let segments: &[&[u8]] = &[bytes];
        let message = capnp::message::Reader::new(
            capnp::message::SegmentArray::new(segments),
            reader_options(),
        );
        let root: capnp::any_pointer::Reader<'_> = message.get_root()?;
        Ok(root.target_size()?.word_count)
    }

    #[test]
    fn nesting_at_limit_is_read() {
        let words = nested_chain(NESTING_LIMIT as usize);
        assert_eq!(total_words(&words).unwrap(), NESTING_LIMIT as u64);
    }

    #[test]
    fn nesting_past_limit_is_rejected() {
        let words = nested_chain(NESTING_LIMIT as usize + 1);
        let error = total_words(&words).unwrap_err();
        assert!(error.to_string().contains("nested"), "{error}");
    }

    /// Returns a one-segment frame header announcing `words` words.
    fn frame_header(words: u32) -> Vec<u8> {
        let mut frame = Vec::new();
        frame.extend_from_slice(&0u32.to_le_bytes());
        frame.extend_from_slice(&words.to_le_bytes());
        frame
    }

    #[test]
    fn frame_over_traversal_limit_is_rejected() {
        let mut frame = frame_header(TRAVERSAL_LIMIT_WORDS as u32 + 1);
        frame.extend_from_slice(&[0u8; 64]);
        let error = capnp::serialize::read_message(&mut frame.as_slice(), reader_options())
            .err()
            .expect("a frame over the limit must be rejected");
        assert!(error.to_string().contains("too large"), "{error}");
    }

    #[test]
    fn frame_at_traversal_limit_is_read() {
        let words = TRAVERSAL_LIMIT_WORDS;
        let mut frame = frame_header(words as u32);
        frame.resize(frame.len() + words * 8, 0);
        let message = capnp::serialize::read_message(&mut frame.as_slice(), reader_options());
        assert!(message.is_ok(), "{:?}", message.err());
    }

    #[test]
    fn client_request_over_limit_is_rejected() {
        let mut frame = frame_header(CLIENT_REQUEST_WORDS_MAX as u32 + 1);
        frame.resize(frame.len() + (CLIENT_REQUEST_WORDS_MAX + 1) * 8, 0);
        let result =
            capnp::serialize::read_message(&mut frame.as_slice(), client_port_reader_options());
        let error = result
            .err()
            .expect("a request over the limit must be rejected");
        assert!(error.to_string().contains("too large"), "{error}");
    }

    #[test]
    fn client_request_at_limit_is_read() {
        let mut frame = frame_header(CLIENT_REQUEST_WORDS_MAX as u32);
        frame.resize(frame.len() + CLIENT_REQUEST_WORDS_MAX * 8, 0);
        let result =
            capnp::serialize::read_message(&mut frame.as_slice(), client_port_reader_options());
        assert!(result.is_ok(), "{:?}", result.err());
    }

    #[test]
    fn connection_slots_follow_configured_limit() {
        let counts = Rc::new(RefCell::new(ConnectionCounts::default()));
        let address: IpAddr = "192.0.2.9".parse().unwrap();
        let slots: Vec<ConnectionSlot> = (0..2)
            .map(|_| take_slot(&counts, address, "client", 2).expect("below the limit"))
            .collect();
        assert_eq!(slots.len(), 2);
        assert!(take_slot(&counts, address, "client", 2).is_none());
        assert!(
            take_slot(&counts, address, "client", 3).is_some(),
            "a higher limit admits one more"
        );
    }

    #[test]
    fn connection_slots_stop_at_maximum() {
        let counts = Rc::new(RefCell::new(ConnectionCounts::default()));
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let mut slots: Vec<ConnectionSlot> = (0..CONNECTIONS_PER_ADDRESS_DEFAULT)
            .map(|_| {
                take_slot(&counts, address, "client", CONNECTIONS_PER_ADDRESS_DEFAULT)
                    .expect("below the maximum")
            })
            .collect();
        assert!(take_slot(&counts, address, "client", CONNECTIONS_PER_ADDRESS_DEFAULT).is_none());
        assert!(
            take_slot(&counts, other, "client", CONNECTIONS_PER_ADDRESS_DEFAULT).is_some(),
            "another address is not limited by the first"
        );
        slots.pop();
        assert!(
            take_slot(&counts, address, "client", CONNECTIONS_PER_ADDRESS_DEFAULT).is_some(),
            "a closed connection frees its slot"
        );
        drop(slots);
        assert_eq!(counts.borrow().open.get(&address), None);
    }
}
