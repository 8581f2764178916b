//! The values a setting can take, each parsed from the one string form that
//! flags, environment variables and ConfigMaps share, and each shown in
//! errors and Events without what could be a secret.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use prometheus_http_query::reqwest::Url;
use prometheus_http_query::reqwest::header::{self, HeaderName, HeaderValue};

/// A value a tunable can hold: parsed from and rendered to the string form used
/// in flags, environment variables and ConfigMaps alike.
pub trait Setting: Sized {
    fn parse(raw: &str) -> Result<Self, String>;

    /// Whether a flag may be given more than once; its values are then
    /// joined by newlines, the form the ConfigMap value takes.
    const REPEATABLE: bool = false;

    /// The value a flag given bare (`--phase-lock`) stands for; `None`
    /// where a flag needs a value. Such a flag takes its value only after
    /// `=`, so `--phase-lock check` never reads `check` as its value.
    const BARE: Option<&'static str> = None;

    /// The raw value as an error, a log line or an Event may quote it.
    /// Settings that can carry a secret show less.
    fn shown(raw: &str) -> String {
        raw.to_owned()
    }
}

impl Setting for Duration {
    fn parse(raw: &str) -> Result<Self, String> {
        humantime::parse_duration(raw.trim())
            .map_err(|e| format!("not a duration such as 500ms, 30s or 2m ({e})"))
    }
}

impl Setting for f64 {
    fn parse(raw: &str) -> Result<Self, String> {
        raw.trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| "not a finite number".to_owned())
    }
}

impl Setting for bool {
    const BARE: Option<&'static str> = Some("true");

    fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("must be true or false".to_owned()),
        }
    }
}

impl Setting for String {
    fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim();
        if value.is_empty() {
            return Err("must not be empty".to_owned());
        }
        Ok(value.to_owned())
    }
}

impl Setting for Url {
    fn shown(raw: &str) -> String {
        hide_userinfo(raw)
    }

    fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("the scheme must be http or https".to_owned());
        }
        if url.host_str().is_none() {
            return Err("the URL has no host".to_owned());
        }
        Ok(url)
    }
}

/// An optional file path; the empty string means "none".
impl Setting for Option<PathBuf> {
    fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim();
        Ok((!value.is_empty()).then(|| PathBuf::from(value)))
    }
}

/// An optional text; the empty string means "none".
impl Setting for Option<String> {
    fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim();
        Ok((!value.is_empty()).then(|| value.to_owned()))
    }
}

/// An optional URL; the empty string means "none".
impl Setting for Option<Url> {
    fn shown(raw: &str) -> String {
        hide_userinfo(raw)
    }

    fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Ok(None);
        }
        <Url as Setting>::parse(raw).map(Some)
    }
}

/// `raw` with any `user:password@` of the URLs in it replaced by `***@`,
/// done on the text so that it works on values that do not parse.
fn hide_userinfo(raw: &str) -> String {
    raw.split_inclusive(|c: char| c == ',' || c.is_whitespace())
        .map(|part| {
            let Some(scheme) = part.find("://") else {
                return part.to_owned();
            };
            let host_at = scheme + 3;
            let authority_end = part[host_at..]
                .find(['/', '?', '#'])
                .map_or(part.len(), |end| host_at + end);
            match part[host_at..authority_end].rfind('@') {
                Some(at) => format!("{}***{}", &part[..host_at], &part[host_at + at..]),
                None => part.to_owned(),
            }
        })
        .collect()
}

/// One URL or several, separated by commas, spaces or newlines (a repeated
/// flag gives them one per line).
#[derive(Clone, PartialEq, Eq)]
pub struct Urls(pub Vec<Url>);

impl fmt::Debug for Urls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Urls({self})")
    }
}

/// Credentials in a URL are never shown.
impl fmt::Display for Urls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.0.iter().map(redact).collect();
        f.write_str(&shown.join(", "))
    }
}

impl Setting for Urls {
    const REPEATABLE: bool = true;

    fn shown(raw: &str) -> String {
        hide_userinfo(raw)
    }

    fn parse(raw: &str) -> Result<Self, String> {
        let mut urls: Vec<Url> = Vec::new();
        for part in raw.split(|c: char| c == ',' || c.is_whitespace()) {
            if part.is_empty() {
                continue;
            }
            let shown = hide_userinfo(part);
            let url = <Url as Setting>::parse(part).map_err(|e| format!("{shown}: {e}"))?;
            if urls.contains(&url) {
                return Err(format!("{shown} is named twice"));
            }
            urls.push(url);
        }
        if urls.is_empty() {
            return Err("must name at least one URL".to_owned());
        }
        Ok(Urls(urls))
    }
}

/// A list of words separated by commas or spaces; empty means none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Words(pub Vec<String>);

impl Setting for Words {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(Words(
            raw.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }
}

/// What the controller does with its verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Writes the condition (where no other writer keeps the same type).
    Write,
    /// Writes nothing and compares its verdicts with the condition another
    /// writer keeps: push against pull, measured in a live cluster.
    Shadow,
}

impl Setting for Mode {
    fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "write" => Ok(Mode::Write),
            "shadow" => Ok(Mode::Shadow),
            _ => Err("must be write (set the condition) or shadow (compare only)".to_owned()),
        }
    }
}

/// A size in bytes, written plain (`1048576`) or with a binary suffix (`16Mi`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl Setting for Bytes {
    fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim();
        let (digits, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
            Some(at) => value.split_at(at),
            None => (value, ""),
        };
        let multiplier: u64 = match unit {
            "" => 1,
            "Ki" => 1 << 10,
            "Mi" => 1 << 20,
            "Gi" => 1 << 30,
            _ => return Err("not a size such as 65536, 512Ki or 16Mi".to_owned()),
        };
        digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .map(Bytes)
            .ok_or_else(|| "not a size such as 65536, 512Ki or 16Mi".to_owned())
    }
}

/// Extra headers sent with every request, in the order given.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(HeaderName, HeaderValue)>);

/// Values are left out: a header may carry an API key after all.
impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| format!("{name}: ***")))
            .finish()
    }
}

impl Setting for Headers {
    const REPEATABLE: bool = true;

    fn parse(raw: &str) -> Result<Self, String> {
        let mut headers = Vec::new();
        for (number, line) in raw.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let place = || format!("line {}", number + 1);
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("{}: not a `Name: value` header", place()));
            };
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("{}: {:?} is not a header name", place(), name.trim()))?;
            if RESERVED.contains(&name) {
                return Err(format!(
                    "{}: {name} is set by alert-poller itself{}",
                    place(),
                    if name == header::AUTHORIZATION {
                        " (use bearerTokenFile, basic auth or OAuth2, which read secrets from files)"
                    } else {
                        ""
                    }
                ));
            }
            let value = HeaderValue::from_str(value.trim()).map_err(|_| {
                format!(
                    "{}: the value of {name} is not a valid header value",
                    place()
                )
            })?;
            headers.push((name, value));
        }
        Ok(Headers(headers))
    }

    /// Names only.
    fn shown(raw: &str) -> String {
        raw.lines()
            .filter_map(|line| line.split_once(':').map(|(name, _)| name.trim()))
            .map(|name| format!("{name}: ***"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Headers the client sets itself; a configured one would fight it.
const RESERVED: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::ACCEPT,
    header::HOST,
    header::CONTENT_LENGTH,
];

/// How the poller asks Prometheus for the alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertSource {
    /// `GET /api/v1/alerts`: every active alert, filtered here.
    Alerts,
    /// `GET /api/v1/query` of `ALERTS{alertname=~"<prefixes>.*"}`: only ours.
    Query,
}

impl AlertSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSource::Alerts => "alerts",
            AlertSource::Query => "query",
        }
    }
}

impl fmt::Display for AlertSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Setting for AlertSource {
    fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "alerts" => Ok(AlertSource::Alerts),
            "query" => Ok(AlertSource::Query),
            _ => Err("must be alerts (GET /api/v1/alerts) or query (an ALERTS query)".to_owned()),
        }
    }
}

/// A URL as logs, messages and conditions may show it: a URL can carry a
/// user name and password, so both are dropped.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_sources_and_refuses_others() {
        assert_eq!(AlertSource::parse(" query "), Ok(AlertSource::Query));
        assert_eq!(AlertSource::parse("alerts"), Ok(AlertSource::Alerts));
        for source in [AlertSource::Alerts, AlertSource::Query] {
            assert_eq!(AlertSource::parse(source.as_str()), Ok(source));
        }
        assert!(AlertSource::parse("ALERTS").unwrap_err().contains("alerts"));
        assert!(AlertSource::parse("").is_err());
    }

    #[test]
    fn byte_sizes_parse() {
        assert_eq!(Bytes::parse("1024"), Ok(Bytes(1024)));
        assert_eq!(Bytes::parse("16Mi"), Ok(Bytes(16 << 20)));
        assert_eq!(Bytes::parse("1Gi"), Ok(Bytes(1 << 30)));
        assert!(Bytes::parse("1.5Mi").is_err());
        assert!(Bytes::parse("99999999999999999999Gi").is_err());
    }

    #[test]
    fn credentials_never_show_in_urls() {
        let url = Url::parse("https://user:secret@prom.example/").unwrap();
        assert_eq!(redact(&url), "https://prom.example/");
        assert_eq!(hide_userinfo("http://a/b@c"), "http://a/b@c");
        assert_eq!(hide_userinfo("not a url@all"), "not a url@all");
    }

    #[test]
    fn headers_parse_one_per_line() {
        let h = Headers::parse("X-Scope-OrgID: team-a\n\n  X-Extra:  a: b  \n").unwrap();
        assert_eq!(h.0.len(), 2);
        assert_eq!(h.0[0].0, "x-scope-orgid");
        assert_eq!(h.0[0].1, "team-a");
        assert_eq!(h.0[1].1, "a: b");
        assert_eq!(Headers::parse("").unwrap(), Headers::default());
    }

    #[test]
    fn bad_or_reserved_headers_are_refused_without_their_value() {
        for (raw, says) in [
            ("no colon here", "line 1"),
            ("Bad Name: x", "not a header name"),
            ("Authorization: Bearer s3cret", "bearerTokenFile"),
            ("X-A: ok\nHost: elsewhere", "line 2"),
            ("X-A: bad\u{7f}value", "not a valid header value"),
        ] {
            let error = Headers::parse(raw).unwrap_err();
            assert!(error.contains(says), "{raw:?}: {error}");
            assert!(
                !error.contains("s3cret") && !error.contains("elsewhere"),
                "{error}"
            );
        }
        assert_eq!(
            Headers::shown("X-Scope-OrgID: t1\nX-Api-Key: s3cret"),
            "X-Scope-OrgID: ***, X-Api-Key: ***"
        );
        let debug = format!("{:?}", Headers::parse("X-Api-Key: s3cret").unwrap());
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
