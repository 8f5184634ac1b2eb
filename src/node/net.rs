//! The network seam: one `Listener` trait served by tokio's TCP in production
//! and by turmoil's simulated TCP (feature `sim`), so that the node's code is
//! the same in both.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::either::Either;

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

/// Dials with tokio's TCP, without TLS.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainConnector;

impl Connector for PlainConnector {
    type Stream = tokio::net::TcpStream;

    async fn connect(&self, address: String) -> io::Result<Self::Stream> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// Dials through another connector and then runs a TLS handshake, checking
/// the server's certificate against the configured CA.
#[derive(Clone)]
pub struct TlsConnector<C> {
    inner: C,
    tls: tokio_rustls::TlsConnector,
}

impl<C: Connector> TlsConnector<C> {
    pub fn new(inner: C, config: Arc<rustls::ClientConfig>) -> TlsConnector<C> {
        TlsConnector {
            inner,
            tls: tokio_rustls::TlsConnector::from(config),
        }
    }
}

/// Returns the name a server's certificate must carry for `address`
/// ("host:port" or "[v6]:port"): its IP address, or its DNS name.
fn server_name(address: &str) -> io::Result<ServerName<'static>> {
    let host = match address.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => address,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_owned()).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address} has no valid host name for TLS: {error}"),
        )
    })
}

impl<C: Connector> Connector for TlsConnector<C> {
    type Stream = tokio_rustls::client::TlsStream<C::Stream>;

    async fn connect(&self, address: String) -> io::Result<Self::Stream> {
        let name = server_name(&address)?;
        let stream = self.inner.connect(address.clone()).await?;
        self.tls.connect(name, stream).await.map_err(|error| {
            io::Error::new(
                error.kind(),
                format!(
                    "TLS handshake with {address} failed: {error}; check that the CA file \
                     names the CA that signed the node's certificate, and that the \
                     certificate lists this host"
                ),
            )
        })
    }
}

/// The client TLS configuration of this process, set once by the command
/// line before any client connects.
static CLIENT_TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// Makes every [`TokioConnector`] in this process dial with TLS from now
/// on, trusting the CA in `config`. Returns false, and changes nothing,
/// if a configuration was already set.
pub fn set_client_tls(config: Arc<rustls::ClientConfig>) -> bool {
    CLIENT_TLS.set(config).is_ok()
}

/// Dials with tokio's TCP, with TLS when the process set a client TLS
/// configuration with [`set_client_tls`]. Clients use it. A node dials its
/// peers with [`PlainConnector`], wrapped in its own [`TlsConnector`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioConnector;

impl Connector for TokioConnector {
    type Stream =
        Either<tokio::net::TcpStream, tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

    async fn connect(&self, address: String) -> io::Result<Self::Stream> {
        match CLIENT_TLS.get() {
            Some(config) => TlsConnector::new(PlainConnector, config.clone())
                .connect(address)
                .await
                .map(Either::Right),
            None => PlainConnector.connect(address).await.map(Either::Left),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_of_ipv4_address() {
        let name = server_name("127.0.0.1:7401").unwrap();
        assert_eq!(
            name,
            ServerName::IpAddress(IpAddr::from([127, 0, 0, 1]).into())
        );
    }

    #[test]
    fn server_name_of_ipv6_address() {
        let name = server_name("[::1]:7401").unwrap();
        let loopback: IpAddr = "::1".parse().unwrap();
        assert_eq!(name, ServerName::IpAddress(loopback.into()));
    }

    #[test]
    fn server_name_of_dns_host() {
        let name = server_name("calendar.example.org:7401").unwrap();
        assert_eq!(name.to_str(), "calendar.example.org");
    }

    #[test]
    fn server_name_rejects_invalid_host() {
        let error = server_name("bad host!:7401").unwrap_err();
        assert!(error.to_string().contains("bad host!:7401"), "{error}");
    }
}
