//! Who the poller says it is: extra headers (a Mimir or Cortex tenant), and at
//! most one of a bearer token, basic auth or OAuth2 client credentials.
//!
//! Secrets come only from files and are read when a request needs them, so a
//! rotated Kubernetes Secret takes effect at the next poll without a restart.
//! Nothing here formats a secret: errors name the file, never its contents,
//! and the types holding a secret print it as `***`.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_http_query::reqwest::{
    self, RequestBuilder, StatusCode,
    header::{self},
};
use serde::Deserialize;

use super::error::PollError;
use crate::config::{Auth, Headers, OAuth2, Username, redact};

/// A secret read from a file, which never prints.
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Secret {
    /// The file's contents without surrounding whitespace (a Secret written
    /// with `echo` ends in a newline that is not part of the secret).
    fn read(what: &'static str, path: &Path) -> Result<Secret, PollError> {
        let text = std::fs::read_to_string(path).map_err(|source| PollError::CredentialFile {
            what,
            path: path.to_owned(),
            source,
        })?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(PollError::CredentialFile {
                what,
                path: path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"),
            });
        }
        Ok(Secret(trimmed.to_owned()))
    }

    /// A digest to notice a rotation by, without keeping a second copy.
    fn digest(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.0.hash(&mut hasher);
        hasher.finish()
    }
}

/// An access token and what it was obtained with.
struct Token {
    value: Secret,
    /// Digest of the client secret the token was granted for: a new secret
    /// in the file means a new token, even before this one expires.
    secret_digest: u64,
    /// When to fetch a new one; `None` when the endpoint gave no lifetime
    /// (kept until Prometheus refuses it).
    renew_at: Option<Instant>,
}

/// Adds the credentials to requests; one per client, shared by its clones.
#[derive(Debug)]
pub struct Authenticator {
    auth: Auth,
    headers: Headers,
    token: Mutex<Option<Token>>,
    /// Held while a token is fetched, so that requests sent together (a
    /// poll's query and its timing read) wait for one grant, not ask for
    /// one each.
    fetching: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("renew_at", &self.renew_at)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(auth: Auth, headers: Headers) -> Self {
        Self {
            auth,
            headers,
            token: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// `request` with the headers and credentials, reading the files now.
    /// `http` fetches an OAuth2 token when none is held or it is due.
    pub async fn apply(
        &self,
        http: &reqwest::Client,
        mut request: RequestBuilder,
    ) -> Result<RequestBuilder, PollError> {
        for (name, value) in &self.headers.0 {
            request = request.header(name, value);
        }
        Ok(match &self.auth {
            Auth::None => request,
            Auth::Bearer { token_file } => {
                request.bearer_auth(&Secret::read("bearer token", token_file)?.0)
            }
            Auth::Basic {
                username,
                password_file,
            } => {
                let username = match username {
                    Username::Plain(name) => name.clone(),
                    Username::File(path) => Secret::read("basic-auth user name", path)?.0,
                };
                let password = Secret::read("basic-auth password", password_file)?;
                request.basic_auth(username, Some(&password.0))
            }
            Auth::OAuth2(oauth2) => request.bearer_auth(self.oauth2_token(http, oauth2).await?),
        })
    }

    /// Prometheus refused the credentials: an OAuth2 token is dropped so that
    /// the next request fetches a new one. Returns whether trying again at
    /// once can help: with OAuth2 it can, even when no token is held any
    /// more, since a request sent beside this one (a poll's query and its
    /// timing read go together) may have dropped the same refused token
    /// first, and is fetching the next.
    pub fn refused(&self, status: StatusCode) -> bool {
        if status != StatusCode::UNAUTHORIZED || !matches!(self.auth, Auth::OAuth2(_)) {
            return false;
        }
        self.token.lock().expect("not poisoned").take();
        true
    }

    /// The token held, if it is fresh and was granted for this secret.
    fn held(&self, digest: u64) -> Option<String> {
        let token = self.token.lock().expect("not poisoned");
        let token = token.as_ref()?;
        let fresh = token.renew_at.is_none_or(|at| Instant::now() < at);
        (fresh && token.secret_digest == digest).then(|| token.value.0.clone())
    }

    async fn oauth2_token(
        &self,
        http: &reqwest::Client,
        oauth2: &OAuth2,
    ) -> Result<String, PollError> {
        let secret = Secret::read("OAuth2 client secret", &oauth2.client_secret_file)?;
        let digest = secret.digest();
        if let Some(value) = self.held(digest) {
            return Ok(value);
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have fetched one while this one waited.
        if let Some(value) = self.held(digest) {
            return Ok(value);
        }
        let granted = fetch_token(http, oauth2, &secret).await?;
        let value = granted.access_token.clone();
        *self.token.lock().expect("not poisoned") = Some(Token {
            value: Secret(granted.access_token),
            secret_digest: digest,
            renew_at: granted
                .expires_in
                .map(|life| Instant::now() + renew_after(life)),
        });
        Ok(value)
    }
}

/// When to renew a token that lives `life`: a fifth of its life early, at
/// most a minute, so a poll never goes out with a token about to expire.
pub fn renew_after(life: Duration) -> Duration {
    life - (life / 5).min(Duration::from_secs(60))
}

/// The token endpoint's answer (RFC 6749, 5.1 and 5.2).
#[derive(Deserialize)]
struct Granted {
    access_token: String,
    #[serde(default, deserialize_with = "seconds")]
    expires_in: Option<Duration>,
}

#[derive(Deserialize)]
struct Refused {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// `expires_in` as a number of seconds; some servers send it as a string.
fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Int(u64),
        Float(f64),
        Text(String),
    }
    Ok(match Option::<Number>::deserialize(d)? {
        Some(Number::Int(s)) => Some(Duration::from_secs(s)),
        Some(Number::Float(s)) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(Number::Text(s)) => s.trim().parse().ok().map(Duration::from_secs),
        _ => None,
    })
}

/// The request body of the grant: form-encoded, scopes space-separated.
pub fn grant_body(scopes: &[String]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if !scopes.is_empty() {
        form.append_pair("scope", &scopes.join(" "));
    }
    form.finish()
}

/// One client-credentials grant. The client authenticates with HTTP basic
/// auth, which every token endpoint must accept; id and secret are
/// form-encoded first, as RFC 6749, 2.3.1 asks.
async fn fetch_token(
    http: &reqwest::Client,
    oauth2: &OAuth2,
    secret: &Secret,
) -> Result<Granted, PollError> {
    let endpoint = redact(&oauth2.token_url);
    let failed = |detail: String| PollError::OAuth2 {
        endpoint: endpoint.clone(),
        detail,
    };
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let response = http
        .post(oauth2.token_url.clone())
        .basic_auth(encode(&oauth2.client_id), Some(encode(&secret.0)))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(grant_body(&oauth2.scopes))
        .send()
        .await
        .map_err(|e| {
            failed(format!(
                "request failed: {}",
                super::response::root_cause(&e)
            ))
        })?;
    let status = response.status();
    // A token answer is small; anything larger is not one.
    let body = response.bytes().await.map_err(|e| {
        failed(format!(
            "reading the answer failed: {}",
            super::response::root_cause(&e)
        ))
    })?;
    if body.len() > 64 * 1024 {
        return Err(failed("the answer is larger than 64 KiB".into()));
    }
    if !status.is_success() {
        // The error code and description only: the body is the server's,
        // and some echo the request back.
        let why = serde_json::from_slice::<Refused>(&body).map_or_else(
            |_| "no OAuth2 error in the answer".to_owned(),
            |r| match r.error_description {
                Some(description) => format!("{} ({description})", r.error),
                None => r.error,
            },
        );
        return Err(failed(format!("answered {status}: {why}")));
    }
    let granted: Granted = serde_json::from_slice(&body)
        .map_err(|_| failed("the answer holds no access_token".into()))?;
    if granted.access_token.is_empty() {
        return Err(failed("the access_token is empty".into()));
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(renew_after(Duration::from_secs(10)), Duration::from_secs(8));
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
        assert_eq!(renew_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn token_answers_decode_with_any_lifetime_form() {
        for (body, life) in [
            (r#"{"access_token":"a","expires_in":60}"#, Some(60.0)),
            (r#"{"access_token":"a","expires_in":"60"}"#, Some(60.0)),
            (r#"{"access_token":"a","expires_in":1.5}"#, Some(1.5)),
            (r#"{"access_token":"a","token_type":"Bearer"}"#, None),
        ] {
            let granted: Granted = serde_json::from_str(body).unwrap();
            assert_eq!(granted.expires_in.map(|d| d.as_secs_f64()), life, "{body}");
        }
    }

    #[test]
    fn the_grant_asks_for_client_credentials_and_the_scopes() {
        assert_eq!(grant_body(&[]), "grant_type=client_credentials");
        assert_eq!(
            grant_body(&["read:alerts".into(), "openid".into()]),
            "grant_type=client_credentials&scope=read%3Aalerts+openid"
        );
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", Secret("s3cret".into())), "***");
        let token = Token {
            value: Secret("s3cret".into()),
            secret_digest: 1,
            renew_at: None,
        };
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
