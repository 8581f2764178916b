//! The one port alert-poller listens on: `/metrics`, `/healthz`, `/readyz`.
//! Nothing else is served; in particular there is no webhook.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::operations::metrics;
use crate::operations::watchdog::Watchdog;

/// Readiness inputs: the leader is ready once its first poll has finished
/// and the pipeline cache has synced. A standby has nothing to load, but it is
/// only worth keeping in a rollout while it could take over: it is ready while
/// its last lease read reached the API server.
#[derive(Clone)]
pub struct Readiness {
    pub polled: watch::Receiver<bool>,
    pub synced: watch::Receiver<bool>,
    pub leading: watch::Receiver<bool>,
    /// Whether the last lease round trip reached the API server (always true
    /// without leader election, where there is no standby).
    pub api_reachable: watch::Receiver<bool>,
    /// Liveness: the loops that promised progress (see [`crate::operations::watchdog`]).
    pub watchdog: Arc<Watchdog>,
}

impl Readiness {
    /// `Ok` when ready, otherwise what is missing, for the probe's body.
    fn missing(&self) -> Result<(), String> {
        if !*self.leading.borrow() {
            return if *self.api_reachable.borrow() {
                Ok(())
            } else {
                Err("standby cannot reach the API server".into())
            };
        }
        let (polled, synced) = (*self.polled.borrow(), *self.synced.borrow());
        if polled && synced {
            Ok(())
        } else {
            Err(format!(
                "first poll done={polled}, pipeline cache synced={synced}"
            ))
        }
    }
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, _peer): (_, SocketAddr) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
        };
        let registry = registry.clone();
        let readiness = readiness.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let response = route(&req, &registry, &readiness);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
            }
        });
    }
}

fn route(
    req: &Request<Incoming>,
    registry: &Registry,
    readiness: &Readiness,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let body = metrics::render(registry);
            Response::builder()
                .header(
                    CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .body(Full::new(Bytes::from(body)))
                .expect("static headers are valid")
        }
        "/healthz" => match liveness(&readiness.watchdog) {
            Ok(()) => text(StatusCode::OK, "ok\n"),
            Err(stuck) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("stuck: {stuck}\n"),
            ),
        },
        "/readyz" => match readiness.missing() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(missing) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not ready: {missing}\n"),
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// `Err` naming every overdue loop. Logged at each failing probe: the
/// kubelet restarts the replica after a few, and the log should say why.
fn liveness(watchdog: &Watchdog) -> Result<(), String> {
    let overdue = watchdog.overdue();
    if overdue.is_empty() {
        return Ok(());
    }
    let stuck = overdue
        .iter()
        .map(|o| {
            format!(
                "{} ({:.1}s past its deadline)",
                o.task,
                o.late.as_secs_f64()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    tracing::error!(%stuck, "liveness fails: a loop makes no progress");
    Err(stuck)
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn readiness(leading: bool, reachable: bool, polled: bool, synced: bool) -> Readiness {
        Readiness {
            polled: watch::channel(polled).1,
            synced: watch::channel(synced).1,
            leading: watch::channel(leading).1,
            api_reachable: watch::channel(reachable).1,
            watchdog: Watchdog::new(Duration::ZERO),
        }
    }

    #[test]
    fn liveness_names_every_overdue_loop() {
        let watchdog = Watchdog::new(Duration::ZERO);
        assert_eq!(liveness(&watchdog), Ok(()));
        watchdog.expect("poller", Duration::ZERO);
        watchdog.expect("reconcile metric/backend", Duration::ZERO);
        watchdog.expect("reconcile trace/traces", Duration::from_secs(3600));
        std::thread::sleep(Duration::from_millis(5));
        let stuck = liveness(&watchdog).unwrap_err();
        assert!(
            stuck.contains("poller (") && stuck.contains("reconcile metric/backend ("),
            "{stuck}"
        );
        assert!(!stuck.contains("traces"), "{stuck}");
    }

    #[test]
    fn a_standby_is_ready_only_while_it_reaches_the_api_server() {
        assert_eq!(readiness(false, true, false, false).missing(), Ok(()));
        let err = readiness(false, false, false, false).missing().unwrap_err();
        assert!(err.contains("cannot reach the API server"), "{err}");
    }

    #[test]
    fn the_leader_is_ready_after_its_first_poll_and_cache_sync() {
        assert_eq!(readiness(true, true, true, true).missing(), Ok(()));
        for (polled, synced) in [(false, true), (true, false), (false, false)] {
            let err = readiness(true, true, polled, synced).missing().unwrap_err();
            assert!(err.contains(&format!("first poll done={polled}")), "{err}");
        }
    }
}
