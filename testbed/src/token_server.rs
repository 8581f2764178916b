//! An OAuth2 token endpoint for the client-credentials grant, for the tests
//! of alert-poller's OAuth2 mode: it checks the client's id and secret
//! (HTTP basic auth, form-encoded as RFC 6749 asks), grants numbered tokens
//! with a lifetime the test sets, and adds each to the tokens an
//! [`AuthGate`](super::auth_gate::AuthGate) accepts. A stand-in for an
//! identity provider; it implements this one grant and nothing else.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::StatusCode;
use tokio_util::sync::CancellationToken;

use super::auth_gate::base64;
use super::http;

/// What the endpoint holds: the client it knows and what it granted.
#[derive(Debug)]
struct State {
    client_id: String,
    secret: String,
    lifetime: Duration,
    granted: usize,
    /// Request bodies of the grants, for checking the scope.
    bodies: Vec<String>,
}

/// The running endpoint; stops when dropped.
#[derive(Debug)]
pub struct TokenServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

impl TokenServer {
    /// Grants tokens to `client_id` with `secret`, each valid for
    /// `lifetime`, and adds them to `accepted` (an `AuthGate`'s bearer list).
    pub async fn start(
        client_id: &str,
        secret: &str,
        lifetime: Duration,
        accepted: Arc<Mutex<Vec<String>>>,
    ) -> std::io::Result<TokenServer> {
        let state = Arc::new(Mutex::new(State {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
            lifetime,
            granted: 0,
            bodies: Vec::new(),
        }));
        let shared = state.clone();
        let (addr, stop) = http::serve(move |req: hyper::Request<hyper::body::Incoming>| {
            let (state, accepted) = (shared.clone(), accepted.clone());
            async move {
                let authorization = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let post = req.method() == hyper::Method::POST;
                let body = match req.into_body().collect().await {
                    Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                    Err(_) => String::new(),
                };
                if !post {
                    return http::text(StatusCode::METHOD_NOT_ALLOWED, "POST only");
                }
                grant(&mut state.lock().unwrap(), authorization, body, &accepted)
            }
        })
        .await?;
        Ok(TokenServer { addr, state, stop })
    }

    /// The token endpoint's URL.
    pub fn url(&self) -> String {
        format!("http://{}/oauth2/token", self.addr)
    }

    /// The client's secret from now on (a rotation at the provider).
    pub fn set_secret(&self, secret: &str) {
        self.state.lock().unwrap().secret = secret.to_owned();
    }

    /// How many tokens were granted so far.
    pub fn granted(&self) -> usize {
        self.state.lock().unwrap().granted
    }

    /// The request bodies of the grants so far.
    pub fn bodies(&self) -> Vec<String> {
        self.state.lock().unwrap().bodies.clone()
    }
}

/// One grant request: the client's credentials and the grant type checked,
/// then a numbered token that the gate accepts from now on.
fn grant(
    state: &mut State,
    authorization: Option<String>,
    body: String,
    accepted: &Mutex<Vec<String>>,
) -> hyper::Response<http::Body> {
    let expected = format!(
        "Basic {}",
        base64(&format!("{}:{}", state.client_id, state.secret))
    );
    if authorization.as_deref() != Some(expected.as_str()) {
        return json(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid_client","error_description":"client authentication failed"}"#
                .into(),
        );
    }
    if !body
        .split('&')
        .any(|p| p == "grant_type=client_credentials")
    {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"unsupported_grant_type"}"#.into(),
        );
    }
    state.granted += 1;
    state.bodies.push(body);
    let token = format!("granted-token-{}", state.granted);
    accepted.lock().unwrap().push(token.clone());
    json(
        StatusCode::OK,
        format!(
            r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{}}}"#,
            state.lifetime.as_secs()
        ),
    )
}

fn json(status: StatusCode, body: String) -> hyper::Response<http::Body> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(http::full(body))
        .expect("valid response")
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
