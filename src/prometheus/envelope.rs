//! The answer envelope every Prometheus API answer shares (`status`,
//! `data`, `errorType`, `error`, `warnings`), and the borrowed strings the
//! hand-written readers use. Kept apart from the decoders of `data` so that
//! each answer's reader deals with its own shape only.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, Visitor};

/// Why a body did not decode. Garbage and a Prometheus error are kept apart
/// because they are different causes to report (`decode`, `prometheus_error`).
#[derive(Debug, PartialEq)]
pub enum DecodeError {
    /// Not the JSON shape of the expected answer.
    Invalid(String),
    /// A well-formed `{"status":"error"}` answer.
    Prometheus(String),
}

/// Reads Prometheus' answer envelope (`status`, `data`, `errorType`,
/// `error`) in one pass, handing `data` to `seed` as it streams by. A derived
/// internally tagged enum would first buffer the whole answer as a tree of
/// values and then read it again.
pub(super) fn envelope<'de, S: DeserializeSeed<'de>>(
    body: &'de [u8],
    seed: S,
) -> Result<(S::Value, Vec<String>), DecodeError> {
    let invalid = |e: serde_json::Error| DecodeError::Invalid(e.to_string());
    let mut de = serde_json::Deserializer::from_slice(body);
    let answer = de
        .deserialize_map(EnvelopeVisitor { seed: Some(seed) })
        .map_err(invalid)?;
    de.end().map_err(invalid)?;
    match (answer.status.as_deref(), answer.data) {
        (Some("success"), Some(data)) => Ok((data, answer.warnings)),
        (Some("success"), None) => Err(DecodeError::Invalid("a success without data".into())),
        (Some("error"), _) => Err(DecodeError::Prometheus(format!(
            "{}: {}",
            answer.error_type.as_deref().unwrap_or("unknown"),
            answer.error.as_deref().unwrap_or("no message")
        ))),
        (Some(other), _) => Err(DecodeError::Invalid(format!("unknown status {other:?}"))),
        (None, _) => Err(DecodeError::Invalid("no status".into())),
    }
}

struct Answer<T> {
    status: Option<String>,
    data: Option<T>,
    error_type: Option<String>,
    error: Option<String>,
    /// Set by Thanos when some of its stores did not answer (a partial
    /// response), and by Prometheus for a query's doubtful result.
    warnings: Vec<String>,
}

struct EnvelopeVisitor<S> {
    seed: Option<S>,
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for EnvelopeVisitor<S> {
    type Value = Answer<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Prometheus API answer")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut answer = Answer {
            status: None,
            data: None,
            error_type: None,
            error: None,
            warnings: Vec::new(),
        };
        while let Some(Text(key)) = map.next_key()? {
            match &*key {
                "status" => answer.status = Some(map.next_value()?),
                "errorType" => answer.error_type = map.next_value()?,
                "error" => answer.error = map.next_value()?,
                "warnings" => answer.warnings = map.next_value::<Option<_>>()?.unwrap_or_default(),
                "data" => match self.seed.take() {
                    Some(seed) => answer.data = Some(map.next_value_seed(seed)?),
                    None => return Err(de::Error::duplicate_field("data")),
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(answer)
    }
}

/// A string borrowed from the body where it has no escapes. serde's own
/// `Cow<str>` always copies unless a derive marks it borrowed, and these
/// are read by hand.
pub(super) struct Text<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }

        d.deserialize_str(TextVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::{Decoded, decode, decode_alert_series, decode_alerts};

    #[test]
    fn prometheus_errors_and_garbage_are_told_apart() {
        let err = decode(br#"{"status":"error","errorType":"timeout","error":"query timed out"}"#);
        assert!(matches!(err, Err(DecodeError::Prometheus(m)) if m.contains("query timed out")));
        assert!(matches!(decode(b"<html>"), Err(DecodeError::Invalid(_))));
        assert!(matches!(
            decode(br#"{"status":"success","data":{"alerts":[{"labels":"#),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode(br#"{"status":"success","data":{}}"#),
            Err(DecodeError::Invalid(_))
        ));
    }

    fn ours(name: &str) -> bool {
        name.starts_with("Metric")
    }

    /// The envelope is read in one pass whatever the order of its keys, and
    /// its warnings (Thanos' partial responses) come along.
    #[test]
    fn envelope_in_any_order() {
        let late = br#"{"data":{"alerts":[]},"warnings":["w"],"status":"success"}"#;
        assert_eq!(decode(late).unwrap(), []);
        assert_eq!(decode_alerts(late, &ours).unwrap().warnings, ["w"]);
        let none = br#"{"status":"success","warnings":null,"data":{"alerts":[]}}"#;
        assert_eq!(decode_alerts(none, &ours).unwrap(), Decoded::default());
        // Thanos Query with no active alert.
        let thanos = br#"{"status":"success","data":{"alerts":null}}"#;
        assert_eq!(decode_alerts(thanos, &ours).unwrap(), Decoded::default());
        let series = br#"{"status":"success","data":{"resultType":"vector","result":null}}"#;
        assert_eq!(
            decode_alert_series(series, &ours).unwrap(),
            Decoded::default()
        );
        assert!(decode(br#"{"status":"success","data":{"alerts":7}}"#).is_err());
        assert!(matches!(
            decode(br#"{"data":{"alerts":[]}}"#),
            Err(DecodeError::Invalid(m)) if m.contains("no status")
        ));
        assert!(matches!(
            decode(br#"{"status":"success"}"#),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode(br#"{"status":"weird","data":{"alerts":[]}}"#),
            Err(DecodeError::Invalid(m)) if m.contains("weird")
        ));
        assert!(matches!(
            decode(br#"{"status":"success","data":{"alerts":[]}} trailing"#),
            Err(DecodeError::Invalid(_))
        ));
    }
}
