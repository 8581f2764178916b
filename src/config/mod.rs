//! Tuning: every setting the controller reads at run time, defined once.
//!
//! Each tunable is one line of the `tunables!` table below: the ConfigMap key,
//! the command-line flag, the environment variable, the default and the doc
//! line. The struct, the flags, the ConfigMap parser and the generated docs all
//! come from that table, so they cannot drift apart.
//!
//! Layering: defaults < flags/environment < ConfigMap. A ConfigMap is applied on
//! top of the flags, not on top of the previous ConfigMap, so removing a key goes
//! back to the flag's value. Parsing is pure; the watch lives in `config_watch`.

mod checks;
mod credentials;
mod values;

pub use credentials::{Auth, OAuth2, Username};
pub use values::{AlertSource, Bytes, Headers, Mode, Setting, Urls, Words, redact};

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use prometheus_http_query::reqwest::Url;

use crate::domain::alerts::Matcher;
use crate::domain::kind::Kind;

/// One entry of the generated documentation.
#[derive(Clone, Copy, Debug)]
pub struct SettingDoc {
    pub key: &'static str,
    pub flag: &'static str,
    pub env: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

macro_rules! tunables {
    ($(
        $(#[doc = $doc:literal])+
        $field:ident : $ty:ty = ($key:literal, $flag:literal, $env:literal, $default:expr);
    )+) => {
        /// The controller's run-time settings, validated.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Tuning {
            $( $(#[doc = $doc])+ pub $field: $ty, )+
        }

        /// The same settings as flags with environment twins, kept as raw
        /// strings so one parser serves flags and ConfigMap alike.
        #[derive(clap::Args, Clone, Debug, Default)]
        pub struct TuningArgs {
            $(
                $(#[doc = $doc])+
                #[arg(long = $flag, env = $env, value_name = $key, global = true,
                      action = clap::ArgAction::Append,
                      num_args = if <$ty as Setting>::BARE.is_some() { 0..=1 } else { 1..=1 },
                      require_equals = <$ty as Setting>::BARE.is_some(),
                      default_missing_value = <$ty as Setting>::BARE)]
                pub $field: Vec<String>,
            )+
        }

        /// Every tunable, in table order, for docs and the default ConfigMap.
        pub const SETTINGS: &[SettingDoc] = &[
            $( SettingDoc {
                key: $key,
                flag: $flag,
                env: $env,
                default: $default,
                doc: concat!($($doc),+),
            }, )+
        ];

        impl Tuning {
            /// The built-in defaults.
            pub fn defaults() -> Tuning {
                Tuning {
                    $( $field: <$ty as Setting>::parse($default)
                        .expect(concat!("the default of ", $key, " parses")), )+
                }
            }

            /// ConfigMap keys whose values differ between `self` and `other`.
            pub fn changed_keys(&self, other: &Tuning) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $( if self.$field != other.$field { keys.push($key); } )+
                keys
            }

            /// Sets one setting by its ConfigMap key. `Ok(false)` for an unknown key.
            fn set(&mut self, key: &str, raw: &str) -> Result<bool, String> {
                match key {
                    $( $key => self.$field = <$ty as Setting>::parse(raw)?, )+
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }

        /// `raw` as errors and Events may quote it for the setting `key`.
        fn shown(key: &str, raw: &str) -> String {
            match key {
                $( $key => <$ty as Setting>::shown(raw), )+
                _ => raw.to_owned(),
            }
        }

        impl TuningArgs {
            /// The flags that were given, as (key, raw value) pairs; a
            /// repeatable flag's values joined by newlines. A flag given
            /// twice that is not repeatable is refused, not silently
            /// resolved to one of its values.
            fn given(&self) -> (Vec<(&'static str, String)>, Vec<ConfigError>) {
                let (mut given, mut errors) = (Vec::new(), Vec::new());
                $(
                    match self.$field.as_slice() {
                        [] => {}
                        [one] => given.push(($key, one.clone())),
                        many if <$ty as Setting>::REPEATABLE => given.push(($key, many.join("\n"))),
                        many => errors.push(ConfigError::new(
                            $key,
                            &<$ty as Setting>::shown(&many.join(" ")),
                            concat!("--", $flag, " may be given once"),
                        )),
                    }
                )+
                (given, errors)
            }
        }
    };
}

tunables! {
    /// Base URL of the Prometheus API to poll, path prefix included (Thanos Query's address; Mimir's http://mimir/prometheus). Several, separated by commas, are polled together and their alerts merged: an HA pair, or two rulers.
    prometheus_url: Urls = ("prometheusUrl", "prometheus-url", "ALERT_POLLER_PROMETHEUS_URL", "http://127.0.0.1:9090");
    /// Where alerts are read: query (an instant query of the ALERTS series for our alert names only, filtered by Prometheus) or alerts (GET /api/v1/alerts, every active alert, filtered here).
    alert_source: AlertSource = ("alertSource", "alert-source", "ALERT_POLLER_ALERT_SOURCE", "query");
    /// Poll interval right after the alerts changed; the floor of all intervals.
    min_interval: Duration = ("minInterval", "min-interval", "ALERT_POLLER_MIN_INTERVAL", "1s");
    /// Poll interval ceiling while the alerts stay the same. Phase-locked, a poll waits for the next rule evaluation after it, so 1s polls once per evaluation, whatever the evaluation interval.
    max_interval: Duration = ("maxInterval", "max-interval", "ALERT_POLLER_MAX_INTERVAL", "1s");
    /// Growth of the interval after each poll that found no change (1 = fixed interval).
    backoff_factor: f64 = ("backoffFactor", "backoff-factor", "ALERT_POLLER_BACKOFF_FACTOR", "1");
    /// Poll just after Prometheus evaluates the alert rules, timed from /api/v1/rules (read once a minute; the last five readings count). Each poll is checked against a reading taken with it, and asked again if it raced an evaluation, where rules are evaluated every 5s or slower or the rules answer is small (64 KiB; Prometheus 2.49 and later leave the alerts out of it).
    phase_lock: bool = ("phaseLock", "phase-lock", "ALERT_POLLER_PHASE_LOCK", "true");
    /// Ceiling of the delay between polls while Prometheus fails (jitter included).
    error_max_interval: Duration = ("errorMaxInterval", "error-max-interval", "ALERT_POLLER_ERROR_MAX_INTERVAL", "60s");
    /// Time limit of one poll, from connect to the last byte.
    request_timeout: Duration = ("requestTimeout", "request-timeout", "ALERT_POLLER_REQUEST_TIMEOUT", "5s");
    /// Time limit for opening the connection to Prometheus.
    connect_timeout: Duration = ("connectTimeout", "connect-timeout", "ALERT_POLLER_CONNECT_TIMEOUT", "2s");
    /// Without a successful poll for this long, pipelines turn Unknown (GatewayProbingFailed).
    stale_after: Duration = ("staleAfter", "stale-after", "ALERT_POLLER_STALE_AFTER", "2m");
    /// Every pipeline is re-checked this often (jittered by up to a tenth), so a condition of ours that another writer changed or deleted is restored even if its event was missed.
    resync_interval: Duration = ("resyncInterval", "resync-interval", "ALERT_POLLER_RESYNC_INTERVAL", "5m");
    /// What becomes of each verdict: write (set conditionType on the pipeline) or shadow (write nothing; compare with the conditionType condition another writer keeps, such as telemetry-manager, and report agreement and who saw each transition first as metrics).
    mode: Mode = ("mode", "mode", "ALERT_POLLER_MODE", "write");
    /// Type of the condition written on each pipeline, of every kind (in shadow mode: the type compared with).
    condition_type: String = ("conditionType", "condition-type", "ALERT_POLLER_CONDITION_TYPE", crate::domain::health::DEFAULT_CONDITION_TYPE);
    /// Alerts whose name starts with this are about MetricPipelines.
    alert_name_prefix: String = ("alertNamePrefix", "alert-name-prefix", "ALERT_POLLER_ALERT_NAME_PREFIX", "Metric");
    /// Largest alerts response accepted; a bigger one is an error, never a memory spike.
    max_response_bytes: Bytes = ("maxResponseBytes", "max-response-bytes", "ALERT_POLLER_MAX_RESPONSE_BYTES", "32Mi");
    /// Extra request headers, one `Name: value` per line, such as `X-Scope-OrgID: tenant` for Mimir or Cortex. The flag is repeatable. Values are never logged; credentials belong in the file settings below.
    headers: Headers = ("headers", "header", "ALERT_POLLER_HEADERS", "");
    /// File holding a bearer token for Prometheus, read at every poll so rotation works (empty: none).
    bearer_token_file: Option<PathBuf> = ("bearerTokenFile", "bearer-token-file", "ALERT_POLLER_BEARER_TOKEN_FILE", "");
    /// User name for HTTP basic auth (or basicAuthUsernameFile); needs basicAuthPasswordFile.
    basic_auth_username: Option<String> = ("basicAuthUsername", "basic-auth-username", "ALERT_POLLER_BASIC_AUTH_USERNAME", "");
    /// File holding the basic-auth user name, read at every poll.
    basic_auth_username_file: Option<PathBuf> = ("basicAuthUsernameFile", "basic-auth-username-file", "ALERT_POLLER_BASIC_AUTH_USERNAME_FILE", "");
    /// File holding the basic-auth password, read at every poll so rotation works.
    basic_auth_password_file: Option<PathBuf> = ("basicAuthPasswordFile", "basic-auth-password-file", "ALERT_POLLER_BASIC_AUTH_PASSWORD_FILE", "");
    /// OAuth2 token endpoint for the client-credentials grant; needs oauth2ClientId and oauth2ClientSecretFile.
    oauth2_token_url: Option<Url> = ("oauth2TokenUrl", "oauth2-token-url", "ALERT_POLLER_OAUTH2_TOKEN_URL", "");
    /// OAuth2 client id.
    oauth2_client_id: Option<String> = ("oauth2ClientId", "oauth2-client-id", "ALERT_POLLER_OAUTH2_CLIENT_ID", "");
    /// File holding the OAuth2 client secret; a new secret there fetches a new token at the next poll.
    oauth2_client_secret_file: Option<PathBuf> = ("oauth2ClientSecretFile", "oauth2-client-secret-file", "ALERT_POLLER_OAUTH2_CLIENT_SECRET_FILE", "");
    /// OAuth2 scopes to ask for, separated by commas or spaces (empty: none).
    oauth2_scopes: Words = ("oauth2Scopes", "oauth2-scopes", "ALERT_POLLER_OAUTH2_SCOPES", "");
    /// PEM file with the CA that signs Prometheus' certificate (empty: system roots). Re-read when the file changes.
    ca_file: Option<PathBuf> = ("caFile", "ca-file", "ALERT_POLLER_CA_FILE", "");
    /// PEM client certificate for TLS client authentication; needs keyFile. Re-read when the file changes.
    cert_file: Option<PathBuf> = ("certFile", "cert-file", "ALERT_POLLER_CERT_FILE", "");
    /// PEM private key of certFile.
    key_file: Option<PathBuf> = ("keyFile", "key-file", "ALERT_POLLER_KEY_FILE", "");
    /// Skip TLS certificate verification towards Prometheus (unsafe; logged as a warning).
    insecure_skip_verify: bool = ("insecureSkipVerify", "insecure-skip-verify", "ALERT_POLLER_INSECURE_SKIP_VERIFY", "false");
}

/// A setting that was refused, with enough context to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}={value:?}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    fn new(key: &str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// All refused settings of one source, reported together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning::defaults()
    }
}

impl Tuning {
    /// Defaults with the given flags/environment applied and validated.
    pub fn from_args(args: &TuningArgs) -> Result<Tuning, ConfigErrors> {
        let (given, errors) = args.given();
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Tuning::defaults().with(given.iter().map(|(k, v)| (*k, v.as_str())))
    }

    /// `self` with the ConfigMap's keys applied and validated. Every bad key is
    /// reported, not just the first; unknown keys are errors because a typo
    /// (`minInteval`) would otherwise be silently ignored.
    pub fn with_overrides(&self, data: &BTreeMap<String, String>) -> Result<Tuning, ConfigErrors> {
        self.with(data.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    fn with<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Tuning, ConfigErrors> {
        let mut tuning = self.clone();
        let mut errors = Vec::new();
        let mut given = BTreeMap::new();
        for (key, raw) in pairs {
            given.insert(key, raw);
            match tuning.set(key, raw) {
                Ok(true) => {}
                Ok(false) => errors.push(ConfigError::new(key, raw, unknown_key_reason())),
                Err(reason) => errors.push(ConfigError::new(key, &shown(key, raw), reason)),
            }
        }
        if errors.is_empty() {
            errors.extend(tuning.refusals(&given));
        }
        if errors.is_empty() {
            Ok(tuning)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The alert matching this tuning asks for.
    /// The matchers of every kind; the MetricPipeline prefix is tunable
    /// (`alertNamePrefix`), the others are telemetry-manager's.
    pub fn matchers(&self) -> Vec<Matcher> {
        Kind::ALL
            .into_iter()
            .map(|kind| match kind {
                Kind::Metric => Matcher {
                    alertname_prefix: self.alert_name_prefix.clone(),
                    ..Matcher::for_kind(kind)
                },
                _ => Matcher::for_kind(kind),
            })
            .collect()
    }
}

fn unknown_key_reason() -> String {
    let keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
    format!("unknown key; known keys are {}", keys.join(", "))
}

/// The settings as a Markdown table, for the README (kept in sync by a test).
pub fn settings_markdown() -> String {
    let mut out = String::from(
        "| ConfigMap key | Flag | Environment | Default | Meaning |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            "(none)"
        } else {
            s.default
        };
        out.push_str(&format!(
            "| `{}` | `--{}` | `{}` | `{}` | {} |\n",
            s.key,
            s.flag,
            s.env,
            default,
            s.doc.trim()
        ));
    }
    out
}

#[cfg(test)]
mod tests;
