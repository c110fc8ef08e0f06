//! The listening socket: poem's TCP acceptor, with Nagle's algorithm turned off on every accepted
//! connection. Small answers and websocket frames then leave at once instead of waiting for the
//! peer's delayed ACK (up to 40 ms on Linux), which dominated the latency of live frames.

use poem::http::uri::Scheme;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::net::TcpStream;

/// A [`TcpAcceptor`] whose connections have `TCP_NODELAY` set.
pub struct NoDelay(pub TcpAcceptor);

impl Acceptor for NoDelay {
    type Io = TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> std::io::Result<(TcpStream, LocalAddr, RemoteAddr, Scheme)> {
        let accepted = self.0.accept().await?;
        if let Err(e) = accepted.0.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        Ok(accepted)
    }
}
