//! A gate in front of the real Prometheus that lets a request through only
//! with the credentials the test asks for, and remembers what each request
//! carried so a test can watch a rotation take effect.
//!
//! It stands in for what sits in front of a Prometheus in production (an
//! authenticating proxy such as kube-rbac-proxy, an ingress with basic auth)
//! and, with a path prefix and [`Require::Tenant`], for the front of Mimir or
//! Cortex: their Prometheus API lives under `/prometheus` and refuses a
//! request without `X-Scope-OrgID`. It is not Mimir: it checks the header and
//! the prefix and forwards to one Prometheus; it keeps no tenants apart.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper::StatusCode;
use prometheus_http_query::reqwest;
use tokio_util::sync::CancellationToken;

use super::http;

/// What a request must carry to pass.
#[derive(Clone, Debug)]
pub enum Require {
    Nothing,
    /// `Authorization: Bearer <one of these>`; shared, so that a token
    /// server can add the tokens it grants.
    Bearer(Arc<Mutex<Vec<String>>>),
    /// `Authorization: Basic` with this user and password.
    Basic {
        user: String,
        password: String,
    },
    /// `X-Scope-OrgID: <tenant>`, as Mimir and Cortex ask.
    Tenant(String),
}

impl Require {
    /// A bearer token, alone.
    pub fn bearer(token: &str) -> Require {
        Require::Bearer(Arc::new(Mutex::new(vec![token.to_owned()])))
    }
}

/// What one request carried, and whether it passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
    pub tenant: Option<String>,
    pub passed: bool,
}

/// The running gate; stops when dropped.
#[derive(Debug)]
pub struct AuthGate {
    addr: SocketAddr,
    prefix: String,
    require: Arc<Mutex<Require>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: CancellationToken,
}

impl AuthGate {
    /// Forwards the requests under `prefix` (`""` or `/prometheus`) that
    /// carry what `require` asks to `upstream` (a base URL), prefix removed.
    pub async fn start(
        upstream: &str,
        prefix: &str,
        require: Require,
    ) -> std::io::Result<AuthGate> {
        alert_poller::prometheus::install_crypto_provider();
        let client = reqwest::Client::new();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let prefix = prefix.trim_end_matches('/').to_owned();
        let require = Arc::new(Mutex::new(require));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (gate_prefix, gate_require, gate_seen) =
            (prefix.clone(), require.clone(), seen.clone());
        let (addr, stop) = http::serve(move |req: hyper::Request<_>| {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let path_and_query = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let mut seen = Seen {
                path: req.uri().path().to_owned(),
                authorization: header("authorization"),
                tenant: header("x-scope-orgid"),
                passed: false,
            };
            let refusal = refusal(&gate_require.lock().unwrap(), &seen);
            let rest = path_and_query
                .strip_prefix(gate_prefix.as_str())
                .map(str::to_owned);
            seen.passed = refusal.is_none() && rest.is_some();
            gate_seen.lock().unwrap().push(seen);
            let (client, upstream) = (client.clone(), upstream.clone());
            async move {
                match (refusal, rest) {
                    (_, None) => http::text(StatusCode::NOT_FOUND, "404 page not found"),
                    (Some((status, why)), _) => http::text(status, why),
                    (None, Some(rest)) => {
                        http::forward(&client, &format!("{upstream}{rest}")).await
                    }
                }
            }
        })
        .await?;
        Ok(AuthGate {
            addr,
            prefix,
            require,
            seen,
            stop,
        })
    }

    /// The URL to configure as `prometheusUrl`, prefix included.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.prefix)
    }

    /// From now on, requests must carry this.
    pub fn require(&self, require: Require) {
        *self.require.lock().unwrap() = require;
    }

    /// Every request so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Why a request does not pass, with the status to answer; `None` if it does.
fn refusal(require: &Require, seen: &Seen) -> Option<(StatusCode, &'static str)> {
    let auth = seen.authorization.as_deref();
    let ok = match require {
        Require::Nothing => true,
        Require::Bearer(tokens) => auth
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| tokens.lock().unwrap().iter().any(|known| known == t)),
        Require::Basic { user, password } => {
            auth == Some(format!("Basic {}", base64(&format!("{user}:{password}"))).as_str())
        }
        Require::Tenant(tenant) => {
            return match seen.tenant.as_deref() {
                None => Some((StatusCode::UNAUTHORIZED, "no org id")),
                Some(t) if t == tenant => None,
                Some(_) => Some((StatusCode::UNAUTHORIZED, "unknown tenant")),
            };
        }
    };
    (!ok).then_some((StatusCode::UNAUTHORIZED, "Unauthorized"))
}

/// The value of a basic-auth header's credentials.
pub fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

impl Drop for AuthGate {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
