//! The rules a tuning must keep beyond each value parsing: bounds, and
//! combinations that would fail at run time (polls further apart than
//! staleness, half a credential mode). A tuning that breaks one is refused
//! whole, the way a bad value is, so the last good tuning stays.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ConfigError, Tuning, shown};

/// A setting that breaks a rule, and why; the setting is the one the
/// error names, with the value the user gave for it.
type Problem = (&'static str, String);

impl Tuning {
    /// Rules that span settings or bound a single one. `given` holds the raw
    /// values of this source, so an error quotes what the user wrote.
    pub(super) fn refusals(&self, given: &BTreeMap<&str, &str>) -> Vec<ConfigError> {
        let credentials = self
            .credential_conflicts()
            .into_iter()
            .map(|(key, reason)| (key, reason.to_owned()));
        self.interval_problems()
            .into_iter()
            .chain(self.timeout_problems())
            .chain(self.value_problems())
            .chain(credentials)
            .map(|(key, reason)| {
                let value = given
                    .get(key)
                    .map_or_else(|| "(default)".to_owned(), |raw| shown(key, raw));
                ConfigError::new(key, &value, reason)
            })
            .collect()
    }

    /// The schedule's bounds: a floor that would hammer Prometheus, a
    /// ceiling below the floor, which no delay could meet, a backoff that
    /// shrinks or leaps.
    fn interval_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.min_interval < Duration::from_millis(100) {
            problems.push(("minInterval", "must be at least 100ms".into()));
        }
        if self.max_interval < self.min_interval {
            problems.push((
                "maxInterval",
                format!(
                    "must not be below minInterval ({})",
                    human(self.min_interval)
                ),
            ));
        }
        if !(1.0..=10.0).contains(&self.backoff_factor) {
            problems.push(("backoffFactor", "must be between 1 and 10".into()));
        }
        if self.error_max_interval < self.min_interval {
            problems.push((
                "errorMaxInterval",
                format!(
                    "must not be below minInterval ({})",
                    human(self.min_interval)
                ),
            ));
        }
        problems
    }

    /// The timeouts against each other and against staleness: a request
    /// that may outlast `staleAfter`, or a poll that late, would turn every
    /// pipeline Unknown before its answer counts.
    fn timeout_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.request_timeout < Duration::from_millis(100) {
            problems.push(("requestTimeout", "must be at least 100ms".into()));
        }
        if self.connect_timeout.is_zero() || self.connect_timeout > self.request_timeout {
            problems.push((
                "connectTimeout",
                format!(
                    "must be above 0 and at most requestTimeout ({})",
                    human(self.request_timeout)
                ),
            ));
        }
        if self.stale_after <= self.request_timeout {
            problems.push((
                "staleAfter",
                format!(
                    "must be longer than requestTimeout ({})",
                    human(self.request_timeout)
                ),
            ));
        }
        // Checked only once staleAfter is sane, so one mistake gets one message.
        else if self.max_interval + self.request_timeout >= self.stale_after {
            problems.push((
                "maxInterval",
                format!(
                    "plus requestTimeout ({}) must stay below staleAfter ({}): a poll that late would turn every pipeline Unknown between two polls",
                    human(self.request_timeout),
                    human(self.stale_after)
                ),
            ));
        }
        problems
    }

    /// Single settings outside what works: a prefix that would claim every
    /// alert, a resync that would hammer the API server, a condition type
    /// it refuses at every write, a cap below any answer.
    fn value_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.alert_name_prefix.trim().is_empty() {
            problems.push((
                "alertNamePrefix",
                "must not be empty: every alert of the source would count as a MetricPipeline's"
                    .into(),
            ));
        }
        if self.resync_interval < Duration::from_secs(10) {
            problems.push(("resyncInterval", "must be at least 10s".into()));
        }
        if let Err(reason) = check_condition_type(&self.condition_type) {
            problems.push(("conditionType", reason));
        }
        if self.max_response_bytes.0 < 1024 {
            problems.push(("maxResponseBytes", "must be at least 1Ki".into()));
        }
        problems
    }

    /// Credential settings that do not go together: one mode at a time,
    /// each complete ([`super::Auth::try_from`]), and a whole client
    /// certificate.
    fn credential_conflicts(&self) -> Vec<(&'static str, &'static str)> {
        let mut conflicts = super::Auth::try_from(self).err().unwrap_or_default();
        conflicts.extend(self.client_certificate_gap());
        conflicts
    }

    /// A client certificate without its key, or a key without its
    /// certificate, named by the one missing.
    fn client_certificate_gap(&self) -> Option<(&'static str, &'static str)> {
        if self.cert_file.is_some() == self.key_file.is_some() {
            return None;
        }
        let key = if self.cert_file.is_some() {
            "keyFile"
        } else {
            "certFile"
        };
        Some((key, "a client certificate needs both certFile and keyFile"))
    }
}

/// A duration as the user writes one (`1m 30s`), for quoting a bound.
fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
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
