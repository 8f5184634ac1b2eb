//! Serving Cap'n Proto on accepted streams.

use std::net::SocketAddr;

use capnp::message::ReaderOptions;
use capnp_rpc::{rpc_twoparty_capnp::Side, twoparty, RpcSystem};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use tracing::{debug, warn};

use crate::node::net::{Listener, Stream};

/// Largest message a peer may send, in 8-byte words (64 MiB). Cap'n Proto
/// refuses to read past it, so a hostile length prefix cannot make the node
/// allocate without bound.
pub const TRAVERSAL_LIMIT_WORDS: usize = 8 * 1024 * 1024;

/// Deepest struct nesting accepted; the schemas nest at most a few levels.
pub const NESTING_LIMIT: i32 = 32;

pub fn reader_options() -> ReaderOptions {
    let mut options = ReaderOptions::new();
    options
        .traversal_limit_in_words(Some(TRAVERSAL_LIMIT_WORDS))
        .nesting_limit(NESTING_LIMIT);
    options
}

/// Runs one two-party RPC connection on `stream`, bootstrapping `bootstrap`,
/// until the peer disconnects or sends something malformed. Only this
/// connection is closed on an error.
pub async fn serve_connection(
    stream: impl Stream,
    peer: SocketAddr,
    bootstrap: capnp::capability::Client,
    port: &'static str,
) {
    let (reader, writer) = tokio::io::split(stream);
    let network = twoparty::VatNetwork::new(
        reader.compat(),
        writer.compat_write(),
        Side::Server,
        reader_options(),
    );
    let mut system = RpcSystem::new(Box::new(network), Some(bootstrap));
    system.set_background_error_handler(move |error| {
        debug!(%peer, port, %error, "background RPC error");
    });
    match system.await {
        Ok(()) => debug!(%peer, port, "connection closed"),
        Err(error) => warn!(%peer, port, %error, "connection closed on an error"),
    }
}

/// Accepts connections forever, serving each on the current `LocalSet` with
/// the bootstrap capability `bootstrap` makes for the remote address.
pub async fn accept_loop<L: Listener>(
    mut listener: L,
    port: &'static str,
    mut bootstrap: impl FnMut(SocketAddr) -> capnp::capability::Client,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                debug!(%peer, port, "accepted a connection");
                let capability = bootstrap(peer);
                tokio::task::spawn_local(serve_connection(stream, peer, capability, port));
            }
            Err(error) => {
                warn!(port, %error, "accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
