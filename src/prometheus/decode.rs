//! The alert decoders: an `/api/v1/alerts` body or the answer to an
//! `ALERTS` query in, the firing and pending alerts we keep out. No I/O, so
//! they are tested, fuzzed and benchmarked without a server. Both answers
//! are read by the same streaming readers, told apart by their `Shape`;
//! the envelope around them is `envelope.rs`'s, each label set
//! `alert_labels.rs`'s.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::alert_labels::{Kept, LabelsSeed, Scratch};
use super::envelope::{DecodeError, Text, envelope};
use crate::domain::alerts::{ActiveAlert, AlertState};

/// Which alerts to keep, asked with the alert's name before anything is
/// allocated for it: in a cluster most active alerts are someone else's,
/// and a poll should cost no more for them than reading past them.
pub type Keep<'k> = &'k dyn Fn(&str) -> bool;

/// The alerts of one answer, and the warnings that came with them.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    pub alerts: Vec<ActiveAlert>,
    pub warnings: Vec<String>,
}

fn decoded(shape: Shape, body: &[u8], keep: Keep<'_>) -> Result<Decoded, DecodeError> {
    let (alerts, warnings) = envelope(body, DataSeed { keep, shape })?;
    Ok(Decoded { alerts, warnings })
}

/// Decodes an `/api/v1/alerts` body, keeping the firing and pending alerts
/// whose name `keep` accepts.
pub fn decode_alerts(body: &[u8], keep: Keep<'_>) -> Result<Decoded, DecodeError> {
    decoded(Shape::Alerts, body, keep)
}

/// Decodes the answer to an instant query of `ALERTS` into the same alerts
/// `/api/v1/alerts` reports, keeping those whose name `keep` accepts.
pub fn decode_alert_series(body: &[u8], keep: Keep<'_>) -> Result<Decoded, DecodeError> {
    decoded(Shape::Series, body, keep)
}

/// Decodes every firing and pending alert of an `/api/v1/alerts` body.
pub fn decode(body: &[u8]) -> Result<Vec<ActiveAlert>, DecodeError> {
    decode_alerts(body, &|_| true).map(|d| d.alerts)
}

/// `data` of either answer: `{"alerts": [...]}` of `/api/v1/alerts`, or
/// `{"resultType": "vector", "result": [...]}` of an `ALERTS` query.
struct DataSeed<'k> {
    keep: Keep<'k>,
    shape: Shape,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = Vec<ActiveAlert>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = Vec<ActiveAlert>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the data of an alerts or query answer")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let list_key = self.shape.list_key();
        let (mut list, mut kind) = (None, None);
        while let Some(Text(key)) = map.next_key()? {
            if key == list_key && list.is_none() {
                list = Some(map.next_value_seed(Each {
                    keep: self.keep,
                    shape: self.shape,
                })?);
            } else if key == "resultType" && self.shape == Shape::Series {
                kind = Some(map.next_value::<Text<'de>>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if self.shape == Shape::Series {
            match kind.as_deref() {
                Some("vector") => {}
                Some(other) => {
                    return Err(de::Error::custom(format!(
                        "the alerts query answered a {other}, not a vector"
                    )));
                }
                None => return Err(de::Error::missing_field("resultType")),
            }
        }
        list.ok_or_else(|| de::Error::missing_field(list_key))
    }
}

/// Where an answer keeps what identifies an alert: `labels` and `state` of
/// an `/api/v1/alerts` entry, or `metric` of an `ALERTS` sample, whose
/// `alertstate` label holds the state.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Alerts,
    Series,
}

impl Shape {
    /// The key of `data` that holds the list.
    fn list_key(self) -> &'static str {
        match self {
            Shape::Alerts => "alerts",
            Shape::Series => "result",
        }
    }

    /// The key of an entry that holds the labels.
    fn labels_key(self) -> &'static str {
        match self {
            Shape::Alerts => "labels",
            Shape::Series => "metric",
        }
    }
}

/// The array of alerts or samples.
struct Each<'k> {
    keep: Keep<'k>,
    shape: Shape,
}

/// A list that may be `null`: Thanos Query answers `"alerts": null` when
/// no alert is active.
impl<'de> DeserializeSeed<'de> for Each<'_> {
    type Value = Vec<ActiveAlert>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Each<'_> {
    type Value = Vec<ActiveAlert>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of alerts")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        // One buffer for the labels of every entry, not one per entry.
        let mut scratch: Scratch<'de> = Vec::new();
        while let Some(alert) = seq.next_element_seed(EntrySeed {
            keep: self.keep,
            shape: self.shape,
            scratch: &mut scratch,
        })? {
            out.extend(alert);
        }
        Ok(out)
    }
}

/// One alert or sample: the alert it is, or nothing when it is not kept or
/// neither firing nor pending. Annotations, `activeAt` and `value` are read
/// past, never stored.
struct EntrySeed<'k, 's, 'b> {
    keep: Keep<'k>,
    shape: Shape,
    scratch: &'s mut Scratch<'b>,
}

impl<'de: 'b, 'b> DeserializeSeed<'de> for EntrySeed<'_, '_, 'b> {
    type Value = Option<ActiveAlert>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'b, 'b> Visitor<'de> for EntrySeed<'_, '_, 'b> {
    type Value = Option<ActiveAlert>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an alert")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut labels, mut state) = (None, None);
        let labels_key = self.shape.labels_key();
        while let Some(Text(key)) = map.next_key()? {
            if key == labels_key && labels.is_none() {
                labels = Some(map.next_value_seed(LabelsSeed {
                    keep: self.keep,
                    shape: self.shape,
                    scratch: &mut *self.scratch,
                })?);
            } else if key == "state" && self.shape == Shape::Alerts {
                state = state_of(&map.next_value::<Text<'de>>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let Some(Kept { labels, alertstate }) = labels else {
            return Err(de::Error::missing_field(labels_key));
        };
        let state = match self.shape {
            Shape::Alerts => state,
            Shape::Series => alertstate,
        };
        Ok(labels
            .zip(state)
            .map(|(labels, state)| ActiveAlert { labels, state }))
    }
}

/// The state of an alert we keep: an `inactive` one (or an unknown state)
/// is no alert at all.
pub(super) fn state_of(s: &str) -> Option<AlertState> {
    match s {
        "firing" => Some(AlertState::Firing),
        "pending" => Some(AlertState::Pending),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_firing_and_pending_alerts() {
        let body = br#"{"status":"success","data":{"alerts":[
            {"labels":{"alertname":"MetricGatewayThrottling","pipeline_name":"a"},
             "annotations":{},"state":"firing","activeAt":"2026-11-27T10:00:00.123456789Z","value":"1e+00"},
            {"labels":{"alertname":"MetricAgentSomeDataDropped"},"annotations":{"summary":"x"},
             "state":"pending","activeAt":"2026-11-27T10:00:01Z","value":"+Inf",
             "keepFiringSince":"2026-11-27T10:00:01Z"}]}}"#;
        let alerts = decode(body).unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].state, AlertState::Firing);
        assert_eq!(alerts[0].labels.get("pipeline_name"), Some("a"));
        assert_eq!(alerts[1].state, AlertState::Pending);
    }

    fn ours(name: &str) -> bool {
        name.starts_with("Metric")
    }

    /// A sample of `ALERTS` is the same alert as the `/api/v1/alerts` entry:
    /// same labels once `__name__` and `alertstate` are left out, its state
    /// from `alertstate`.
    #[test]
    fn alert_series_decode_to_the_same_alerts() {
        let alerts = br#"{"status":"success","data":{"alerts":[
            {"labels":{"alertname":"MetricGatewayThrottling","pipeline_name":"a"},"state":"firing","value":"1"},
            {"labels":{"alertname":"MetricAgentSomeDataDropped"},"state":"pending","value":"1"}]}}"#;
        let series = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"ALERTS","alertname":"MetricGatewayThrottling","alertstate":"firing","pipeline_name":"a"},"value":[1795989643.407,"1"]},
            {"metric":{"__name__":"ALERTS","alertname":"MetricAgentSomeDataDropped","alertstate":"pending"},"value":[1795989643.407,"1"]},
            {"metric":{"__name__":"ALERTS","alertname":"KubePodNotReady","alertstate":"firing"},"value":[1795989643.407,"1"]}]}}"#;
        assert_eq!(
            decode_alert_series(series, &ours).unwrap(),
            decode_alerts(alerts, &ours).unwrap()
        );
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(matches!(
            decode_alert_series(matrix, &ours),
            Err(DecodeError::Invalid(m)) if m.contains("matrix")
        ));
        let empty = br#"{"status":"success","data":{"result":[],"resultType":"vector"}}"#;
        assert_eq!(decode_alert_series(empty, &ours).unwrap().alerts, []);
    }
}
