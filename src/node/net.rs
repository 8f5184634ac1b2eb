//! The network seam: one `Listener` trait served by tokio's TCP in production
//! and by turmoil's simulated TCP (feature `sim`), so that the node's code is
//! the same in both.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

/// An accepted or dialled byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + 'static> Stream for T {}

pub trait Listener: 'static {
    type Stream: Stream;
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>>;
}

pub trait Connector: Clone + 'static {
    type Stream: Stream;
    fn connect(&self, address: String) -> impl Future<Output = io::Result<Self::Stream>>;
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        // Small request and reply messages: do not wait to coalesce them.
        stream.set_nodelay(true)?;
        Ok((stream, peer))
    }
}

/// Dials with tokio's TCP.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioConnector;

impl Connector for TokioConnector {
    type Stream = tokio::net::TcpStream;

    async fn connect(&self, address: String) -> io::Result<Self::Stream> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

#[cfg(feature = "sim")]
mod simulated {
    use super::*;

    impl Listener for turmoil::net::TcpListener {
        type Stream = turmoil::net::TcpStream;

        async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
            turmoil::net::TcpListener::accept(self).await
        }
    }

    /// Dials with turmoil's simulated TCP.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct TurmoilConnector;

    impl Connector for TurmoilConnector {
        type Stream = turmoil::net::TcpStream;

        async fn connect(&self, address: String) -> io::Result<Self::Stream> {
            turmoil::net::TcpStream::connect(address).await
        }
    }
}

#[cfg(feature = "sim")]
pub use simulated::TurmoilConnector;
