//! A proxy in front of the real Prometheus that holds every answer back for
//! a delay the test sets: a slow Prometheus (or a congested network path)
//! with real answers, which neither a stopped process nor a fake can give.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_http_query::reqwest;
use tokio_util::sync::CancellationToken;

use super::http;

/// The running proxy; stops when dropped.
#[derive(Debug)]
pub struct SlowProxy {
    addr: std::net::SocketAddr,
    delay_ms: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl SlowProxy {
    /// Proxies GET requests to `upstream` (a base URL ending in `/`).
    pub async fn start(upstream: &str) -> std::io::Result<SlowProxy> {
        alert_poller::prometheus::install_crypto_provider();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let client = reqwest::Client::new();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let delay = delay_ms.clone();
        let (addr, stop) = http::serve(move |req: hyper::Request<_>| {
            let (client, delay) = (client.clone(), delay.load(Ordering::Relaxed));
            let url = format!(
                "{upstream}{}",
                req.uri().path_and_query().map_or("/", |p| p.as_str())
            );
            async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                http::forward(&client, &url).await
            }
        })
        .await?;
        Ok(SlowProxy {
            addr,
            delay_ms,
            stop,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:40123/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// How long each answer is held back from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
