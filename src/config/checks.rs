//! The rules a tuning must keep beyond each value parsing: bounds, and
//! combinations that would fail at run time (polls further apart than
//! staleness, half a credential mode). A tuning that breaks one is refused
//! whole, the way a bad value is, so the last good tuning stays.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ConfigError, Tuning, shown};

impl Tuning {
    /// Rules that span settings or bound a single one. `given` holds the raw
    /// values of this source, so an error quotes what the user wrote.
    pub(super) fn check(&self, given: &BTreeMap<&str, &str>) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut refuse = |key: &str, reason: String| {
            let value = given
                .get(key)
                .map_or_else(|| "(default)".to_owned(), |raw| shown(key, raw));
            errors.push(ConfigError::new(key, &value, reason));
        };
        let human = |d: Duration| humantime::format_duration(d).to_string();
        if self.min_interval < Duration::from_millis(100) {
            refuse("minInterval", "must be at least 100ms".into());
        }
        if self.max_interval < self.min_interval {
            refuse(
                "maxInterval",
                format!(
                    "must not be below minInterval ({})",
                    human(self.min_interval)
                ),
            );
        }
        if !(1.0..=10.0).contains(&self.backoff_factor) {
            refuse("backoffFactor", "must be between 1 and 10".into());
        }
        if self.error_max_interval < self.min_interval {
            refuse(
                "errorMaxInterval",
                format!(
                    "must not be below minInterval ({})",
                    human(self.min_interval)
                ),
            );
        }
        if self.request_timeout < Duration::from_millis(100) {
            refuse("requestTimeout", "must be at least 100ms".into());
        }
        if self.connect_timeout.is_zero() || self.connect_timeout > self.request_timeout {
            refuse(
                "connectTimeout",
                format!(
                    "must be above 0 and at most requestTimeout ({})",
                    human(self.request_timeout)
                ),
            );
        }
        if self.stale_after <= self.request_timeout {
            refuse(
                "staleAfter",
                format!(
                    "must be longer than requestTimeout ({})",
                    human(self.request_timeout)
                ),
            );
        }
        // Checked only once staleAfter is sane, so one mistake gets one message.
        else if self.max_interval + self.request_timeout >= self.stale_after {
            refuse(
                "maxInterval",
                format!(
                    "plus requestTimeout ({}) must stay below staleAfter ({}): a poll that late would turn every pipeline Unknown between two polls",
                    human(self.request_timeout),
                    human(self.stale_after)
                ),
            );
        }
        if self.alert_name_prefix.trim().is_empty() {
            refuse(
                "alertNamePrefix",
                "must not be empty: every alert of the source would count as a MetricPipeline's"
                    .into(),
            );
        }
        if self.resync_interval < Duration::from_secs(10) {
            refuse("resyncInterval", "must be at least 10s".into());
        }
        if let Err(reason) = check_condition_type(&self.condition_type) {
            refuse("conditionType", reason);
        }
        if self.max_response_bytes.0 < 1024 {
            refuse("maxResponseBytes", "must be at least 1Ki".into());
        }
        for (key, reason) in self.credential_conflicts() {
            refuse(key, reason.into());
        }
        errors
    }

    /// Credential settings that do not go together: one way to authenticate
    /// at a time, each complete. A half-set mode would otherwise send no
    /// credentials and fail every poll with a puzzling 401.
    fn credential_conflicts(&self) -> Vec<(&'static str, &'static str)> {
        let mut conflicts = Vec::new();
        let basic = self.basic_auth_username.is_some()
            || self.basic_auth_username_file.is_some()
            || self.basic_auth_password_file.is_some();
        let oauth2 = self.oauth2_token_url.is_some()
            || self.oauth2_client_id.is_some()
            || self.oauth2_client_secret_file.is_some()
            || !self.oauth2_scopes.0.is_empty();
        let modes = [self.bearer_token_file.is_some(), basic, oauth2];
        if modes.iter().filter(|m| **m).count() > 1 {
            let key = if oauth2 {
                "oauth2TokenUrl"
            } else {
                "basicAuthPasswordFile"
            };
            conflicts.push((
                key,
                "use one of bearerTokenFile, basic auth and OAuth2, not several",
            ));
        }
        if basic {
            match (
                self.basic_auth_username.is_some(),
                self.basic_auth_username_file.is_some(),
            ) {
                (true, true) => conflicts.push((
                    "basicAuthUsernameFile",
                    "give basicAuthUsername or basicAuthUsernameFile, not both",
                )),
                (false, false) => conflicts.push((
                    "basicAuthUsername",
                    "basic auth needs basicAuthUsername or basicAuthUsernameFile",
                )),
                _ => {}
            }
            if self.basic_auth_password_file.is_none() {
                conflicts.push(("basicAuthPasswordFile", "basic auth needs a password file"));
            }
        }
        if oauth2 {
            for (missing, key, reason) in [
                (
                    self.oauth2_token_url.is_none(),
                    "oauth2TokenUrl",
                    "OAuth2 needs the token endpoint's URL",
                ),
                (
                    self.oauth2_client_id.is_none(),
                    "oauth2ClientId",
                    "OAuth2 needs a client id",
                ),
                (
                    self.oauth2_client_secret_file.is_none(),
                    "oauth2ClientSecretFile",
                    "OAuth2 needs a client secret file",
                ),
            ] {
                if missing {
                    conflicts.push((key, reason));
                }
            }
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            let key = if self.cert_file.is_some() {
                "keyFile"
            } else {
                "certFile"
            };
            conflicts.push((key, "a client certificate needs both certFile and keyFile"));
        }
        conflicts
    }
}

/// A condition type is a Kubernetes qualified name: an optional DNS-subdomain
/// prefix and a slash, then up to 63 alphanumerics, '-', '_' or '.', starting
/// and ending alphanumeric. The API server rejects anything else, so we refuse
/// it here, before every status write would fail.
fn check_condition_type(value: &str) -> Result<(), String> {
    let (prefix, name) = match value.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    let inner_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(inner_ok)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(
            "must be a qualified name such as TelemetryFlowHealthy or example.com/FlowHealthy"
                .into(),
        )
    }
}
