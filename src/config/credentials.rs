//! Credentials towards Prometheus as the settings give them: at most one
//! mode (a bearer token, basic auth, OAuth2 client credentials), complete.
//! One parser both validates the settings and builds what the client uses,
//! so the two cannot disagree.

use std::path::PathBuf;

use prometheus_http_query::reqwest::Url;

use super::Tuning;

/// How the basic-auth user name is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Username {
    Plain(String),
    File(PathBuf),
}

/// The OAuth2 client-credentials grant (RFC 6749, 4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuth2 {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret_file: PathBuf,
    pub scopes: Vec<String>,
}

/// The one way of authenticating that the settings name: at most one, and
/// complete, or the settings are refused ([`Auth::try_from`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    Bearer {
        token_file: PathBuf,
    },
    Basic {
        username: Username,
        password_file: PathBuf,
    },
    OAuth2(OAuth2),
}

impl Auth {
    /// The mode's name, for the log line that says how the poller connects.
    pub fn mode(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Bearer { .. } => "bearer",
            Auth::Basic { .. } => "basic",
            Auth::OAuth2(_) => "oauth2",
        }
    }
}

/// Settings that keep the credentials from naming one complete mode, each
/// as (key, reason).
pub type Gaps = Vec<(&'static str, &'static str)>;

/// The mode the settings name, or every key that keeps them from naming
/// exactly one complete mode. A half-set mode would otherwise send no
/// credentials and fail every poll with a puzzling 401.
impl TryFrom<&Tuning> for Auth {
    type Error = Gaps;

    fn try_from(t: &Tuning) -> Result<Auth, Gaps> {
        let (basic, oauth2) = (uses_basic_auth(t), uses_oauth2(t));
        let mut gaps = Vec::new();
        if [t.bearer_token_file.is_some(), basic, oauth2]
            .iter()
            .filter(|m| **m)
            .count()
            > 1
        {
            let key = if oauth2 {
                "oauth2TokenUrl"
            } else {
                "basicAuthPasswordFile"
            };
            gaps.push((
                key,
                "use one of bearerTokenFile, basic auth and OAuth2, not several",
            ));
        }
        if basic {
            gaps.extend(basic_auth_gaps(t));
        }
        if oauth2 {
            gaps.extend(oauth2_gaps(t));
        }
        if !gaps.is_empty() {
            return Err(gaps);
        }
        Ok(mode_of(t))
    }
}

/// The mode of settings known to name at most one, complete.
fn mode_of(t: &Tuning) -> Auth {
    if let Some(token_file) = &t.bearer_token_file {
        return Auth::Bearer {
            token_file: token_file.clone(),
        };
    }
    if let Some(password_file) = &t.basic_auth_password_file {
        let username = match (&t.basic_auth_username, &t.basic_auth_username_file) {
            (Some(name), _) => Username::Plain(name.clone()),
            (None, Some(file)) => Username::File(file.clone()),
            (None, None) => Username::Plain(String::new()),
        };
        return Auth::Basic {
            username,
            password_file: password_file.clone(),
        };
    }
    match (
        &t.oauth2_token_url,
        &t.oauth2_client_id,
        &t.oauth2_client_secret_file,
    ) {
        (Some(token_url), Some(client_id), Some(client_secret_file)) => Auth::OAuth2(OAuth2 {
            token_url: token_url.clone(),
            client_id: client_id.clone(),
            client_secret_file: client_secret_file.clone(),
            scopes: t.oauth2_scopes.0.clone(),
        }),
        _ => Auth::None,
    }
}

/// Whether any basic auth setting is given: then all it needs must be.
fn uses_basic_auth(t: &Tuning) -> bool {
    t.basic_auth_username.is_some()
        || t.basic_auth_username_file.is_some()
        || t.basic_auth_password_file.is_some()
}

/// Whether any OAuth2 setting is given: then all it needs must be.
fn uses_oauth2(t: &Tuning) -> bool {
    t.oauth2_token_url.is_some()
        || t.oauth2_client_id.is_some()
        || t.oauth2_client_secret_file.is_some()
        || !t.oauth2_scopes.0.is_empty()
}

/// What basic auth lacks: exactly one source of the username, and the
/// password file.
fn basic_auth_gaps(t: &Tuning) -> Vec<(&'static str, &'static str)> {
    let mut gaps = Vec::new();
    match (
        t.basic_auth_username.is_some(),
        t.basic_auth_username_file.is_some(),
    ) {
        (true, true) => gaps.push((
            "basicAuthUsernameFile",
            "give basicAuthUsername or basicAuthUsernameFile, not both",
        )),
        (false, false) => gaps.push((
            "basicAuthUsername",
            "basic auth needs basicAuthUsername or basicAuthUsernameFile",
        )),
        _ => {}
    }
    if t.basic_auth_password_file.is_none() {
        gaps.push(("basicAuthPasswordFile", "basic auth needs a password file"));
    }
    gaps
}

/// What OAuth2 lacks of the token URL, client id and secret file.
fn oauth2_gaps(t: &Tuning) -> Vec<(&'static str, &'static str)> {
    [
        (
            t.oauth2_token_url.is_none(),
            "oauth2TokenUrl",
            "OAuth2 needs the token endpoint's URL",
        ),
        (
            t.oauth2_client_id.is_none(),
            "oauth2ClientId",
            "OAuth2 needs a client id",
        ),
        (
            t.oauth2_client_secret_file.is_none(),
            "oauth2ClientSecretFile",
            "OAuth2 needs a client secret file",
        ),
    ]
    .into_iter()
    .filter(|(missing, _, _)| *missing)
    .map(|(_, key, reason)| (key, reason))
    .collect()
}
