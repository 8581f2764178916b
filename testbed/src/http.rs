//! The one tiny HTTP/1 server the stand-ins (collector, fake Prometheus, slow
//! proxy) are built on: a loopback listener, a connection per task, and a
//! stop token their `Drop` cancels.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_http_query::reqwest;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A response body: fixed or streamed.
pub type Body = BoxBody<Bytes, Infallible>;

/// A fixed body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A GET of `url` answered as the upstream answered it (status, content
/// type, body), or 502 when the upstream cannot be reached: what the
/// proxies in front of the real Prometheus send back.
pub async fn forward(client: &reqwest::Client, url: &str) -> Response<Body> {
    let answer = match client.get(url).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let content_type = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_owned();
            r.bytes().await.map(|b| (status, content_type, b))
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok((status, content_type, body)) => Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(full(body)),
        Err(e) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(full(e.to_string())),
    }
    .expect("valid response")
}

/// A plain-text answer with `status`.
pub fn text(status: StatusCode, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(full(body.to_owned()))
        .expect("valid response")
}

/// Serves `handler` on a free loopback port until the returned token is
/// cancelled.
pub async fn serve<F, Fut>(handler: F) -> std::io::Result<(SocketAddr, CancellationToken)>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((addr, serve_on(listener, handler)))
}

/// Serves `handler` on `listener` until the returned token is cancelled.
pub fn serve_on<F, Fut>(listener: TcpListener, handler: F) -> CancellationToken
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let response = handler(req);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    token
}
