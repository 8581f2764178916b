//! A misbehaving stand-in for Prometheus' HTTP API, for fault tests: it
//! answers every request with whatever the test sets (errors, garbage, huge
//! or slow bodies), or with "no alerts" in the shape of the endpoint asked,
//! and records what it was asked, so tests can check paths and headers such
//! as the bearer token. Anything the real Prometheus can do, the tests use the
//! real Prometheus for; this is only for what it cannot be made to do.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use tokio_util::sync::CancellationToken;

use super::http::{self, Body, full};

/// How the next requests are answered.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A healthy Prometheus with no alerts at all, in the shape of the
    /// endpoint asked: an empty alert list (`/api/v1/alerts`), an empty
    /// vector (`/api/v1/query`) or no rule groups (`/api/v1/rules`), so that
    /// a poller with either alert source sees a good answer.
    NoAlerts,
    /// 200 with this body and `application/json`.
    Json(String),
    /// Any status, content type, body and optional `Retry-After` seconds.
    Raw {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
        retry_after: Option<u64>,
    },
    /// 200 JSON that streams `bytes` of filler without ever ending validly,
    /// in 64 KiB chunks, so the server itself needs no memory for it.
    Huge { bytes: usize },
    /// Waits this long, then answers like `Json`.
    Slow(Duration, String),
    /// 200 JSON with whatever the function gives for the path asked, when
    /// it is asked: a server whose answers follow a script in time.
    Scripted(Script),
}

/// The function behind [`Answer::Scripted`]: the path asked, to the body.
#[derive(Clone)]
pub struct Script(pub Arc<dyn Fn(&str) -> String + Send + Sync>);

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Script(..)")
    }
}

impl Answer {
    /// A success body of `/api/v1/alerts` with the given alerts array (JSON
    /// text), whichever endpoint is asked.
    pub fn alerts(alerts: &str) -> Answer {
        Answer::Json(format!(
            r#"{{"status":"success","data":{{"alerts":[{alerts}]}}}}"#
        ))
    }
}

/// What one request looked like.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
    pub accept_encoding: Option<String>,
}

/// The running server; stops when dropped.
#[derive(Debug)]
pub struct FakePrometheus {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
}

impl FakePrometheus {
    pub async fn start(answer: Answer) -> std::io::Result<FakePrometheus> {
        let answer = Arc::new(Mutex::new(answer));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (to_answer, to_record) = (answer.clone(), seen.clone());
        let (addr, stop) = http::serve(move |req: hyper::Request<_>| {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            to_record.lock().expect("seen lock").push(Seen {
                path: req.uri().path().to_owned(),
                authorization: header("authorization"),
                accept_encoding: header("accept-encoding"),
            });
            let path = req.uri().path().to_owned();
            respond(to_answer.lock().expect("answer lock").clone(), path)
        })
        .await?;
        Ok(FakePrometheus {
            addr,
            answer,
            seen,
            stop,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:40123/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn set(&self, answer: Answer) {
        *self.answer.lock().expect("answer lock") = answer;
    }

    /// Requests so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }
}

impl Drop for FakePrometheus {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The success body of an endpoint with nothing in it.
fn empty_answer(path: &str) -> &'static str {
    if path.ends_with("/api/v1/query") {
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
    } else if path.ends_with("/api/v1/rules") {
        r#"{"status":"success","data":{"groups":[]}}"#
    } else {
        r#"{"status":"success","data":{"alerts":[]}}"#
    }
}

async fn respond(answer: Answer, path: String) -> Response<Body> {
    let json = |body: String| {
        Response::builder()
            .header("content-type", "application/json")
            .body(full(body))
            .expect("valid response")
    };
    match answer {
        Answer::NoAlerts => json(empty_answer(&path).to_owned()),
        Answer::Json(body) => json(body),
        Answer::Scripted(Script(script)) => json(script(&path)),
        Answer::Slow(delay, body) => {
            tokio::time::sleep(delay).await;
            json(body)
        }
        Answer::Raw {
            status,
            content_type,
            body,
            retry_after,
        } => {
            let mut builder = Response::builder()
                .status(StatusCode::from_u16(status).expect("a valid status"))
                .header("content-type", content_type);
            if let Some(seconds) = retry_after {
                builder = builder.header("retry-after", seconds.to_string());
            }
            builder.body(full(body)).expect("valid response")
        }
        Answer::Huge { bytes } => {
            const CHUNK: usize = 64 * 1024;
            let head =
                Bytes::from_static(br#"{"status":"success","data":{"alerts":[{"labels":{"x":""#);
            let filler = Bytes::from(vec![b'a'; CHUNK]);
            let chunks = std::iter::once(head)
                .chain(std::iter::repeat_n(filler, bytes / CHUNK))
                .map(|b| Ok::<_, Infallible>(Frame::data(b)));
            let body = StreamBody::new(stream::iter(chunks)).boxed();
            Response::builder()
                .header("content-type", "application/json")
                .body(body)
                .expect("valid response")
        }
    }
}
