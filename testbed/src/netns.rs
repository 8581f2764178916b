//! TCP across a network namespace's border, without touching the host's
//! network: a socket made inside the namespace stays there, whichever thread
//! uses it later, so the test process can listen and connect on both sides
//! and copy bytes between them.
//!
//! The test node (see [`crate::node`]) needs both directions: the tests and
//! kubectl reach its API server from the host's loopback, and its pods reach
//! the test's Prometheus, which listens on the host's loopback, through an
//! address of the node.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A network namespace, held open by a file descriptor.
#[derive(Debug, Clone)]
pub struct NetNs(Arc<File>);

impl NetNs {
    /// The namespace a process is in.
    pub fn of_process(pid: u32) -> io::Result<NetNs> {
        Ok(NetNs(Arc::new(File::open(format!("/proc/{pid}/ns/net"))?)))
    }

    /// Runs `f` on a thread of its own that has joined the namespace; the
    /// thread ends with `f`, so no other code ever runs inside by mistake.
    fn inside<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let ns = self.0.clone();
        std::thread::spawn(move || {
            // SAFETY: setns on a valid namespace descriptor changes only this
            // thread's network namespace.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            f()
        })
        .join()
        .map_err(|_| io::Error::other("the namespace thread panicked"))?
    }

    /// A connection to `addr` as seen from inside the namespace.
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let ns = self.clone();
        let stream = tokio::task::spawn_blocking(move || {
            ns.inside(move || {
                let s =
                    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))?;
                s.set_nonblocking(true)?;
                Ok(s)
            })
        })
        .await
        .map_err(io::Error::other)??;
        TcpStream::from_std(stream)
    }

    /// A listener on `addr` inside the namespace.
    pub fn listen(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let listener = self.inside(move || {
            let l = std::net::TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            Ok(l)
        })?;
        TcpListener::from_std(listener)
    }
}

/// Where a forward connects.
#[derive(Debug, Clone)]
pub enum Side {
    /// The test process' own namespace (the host's).
    Host(SocketAddr),
    /// An address inside a namespace.
    Inside(NetNs, SocketAddr),
}

impl Side {
    async fn connect(&self) -> io::Result<TcpStream> {
        match self {
            Side::Host(addr) => TcpStream::connect(addr).await,
            Side::Inside(ns, addr) => ns.connect(*addr).await,
        }
    }
}

/// A running TCP forward; stops accepting when dropped.
#[derive(Debug)]
pub struct Forward {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Forward {
    /// Forwards every connection to `listener` to `to`, byte for byte.
    pub fn start(listener: TcpListener, to: Side) -> io::Result<Forward> {
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                let to = to.clone();
                let token = token.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = to.connect().await else {
                        return; // the client sees its connection close
                    };
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Ok(Forward { addr, stop })
    }

    /// The address the forward listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
