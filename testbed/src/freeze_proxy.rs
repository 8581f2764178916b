//! A TCP proxy that can freeze: while frozen, bytes already sent stay in
//! flight and nothing new crosses, in either direction, on old and new
//! connections alike. It is the API server that accepts a request and never
//! answers, which neither a stopped process (connection refused) nor a
//! killed one (connection reset) can show: the client waits.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The running proxy; stops when dropped.
#[derive(Debug)]
pub struct FreezeProxy {
    addr: SocketAddr,
    frozen: watch::Sender<bool>,
    stop: CancellationToken,
}

impl FreezeProxy {
    /// Proxies a loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FreezeProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (frozen, frozen_rx) = watch::channel(false);
        let stop = CancellationToken::new();
        let task_stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = task_stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                let (frozen, stop) = (frozen_rx.clone(), task_stop.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = stop.cancelled() => {}
                        _ = relay(client, upstream, frozen) => {}
                    }
                });
            }
        });
        Ok(FreezeProxy { addr, frozen, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops every byte until [`thaw`](Self::thaw).
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

impl Drop for FreezeProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    frozen: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut thawed = frozen.clone();
    let _ = thawed.wait_for(|f| !*f).await;
    let server = TcpStream::connect(upstream).await?;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        r = pump(client_read, server_write, frozen.clone()) => r,
        r = pump(server_read, client_write, frozen) => r,
    }
}

/// Copies one direction, holding each chunk while frozen.
async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut frozen: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        if frozen.wait_for(|f| !*f).await.is_err() {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn bytes_cross_only_while_thawed() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 16];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
        let proxy = FreezeProxy::start(echo_addr).await.unwrap();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut buf = [0u8; 4];
        c.write_all(b"ping").await.unwrap();
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        proxy.freeze();
        c.write_all(b"held").await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(300), c.read_exact(&mut buf)).await;
        assert!(waited.is_err(), "nothing crosses while frozen");
        proxy.thaw();
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"held", "held bytes arrive after the thaw");
    }
}
