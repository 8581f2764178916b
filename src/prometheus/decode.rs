//! The pure decoders: an `/api/v1/alerts` or `/api/v1/rules` body in, the
//! crate's types out. No I/O, so they are tested, fuzzed and benchmarked
//! without a server.

use std::borrow::Cow;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use crate::domain::alerts::{ALERTNAME_LABEL, ActiveAlert, AlertState};
use crate::domain::labels::LabelSet;

/// When one rule group is evaluated, in Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupTiming {
    /// Which group (its file and name, hashed): readings of the same group
    /// are put together by it.
    pub group: u64,
    /// Start of the last evaluation.
    pub last_evaluation_ms: i64,
    /// Time between evaluations.
    pub interval_ms: i64,
    /// How long the last evaluation took.
    pub evaluation_ms: i64,
}

/// Why a body did not decode. Garbage and a Prometheus error are kept apart
/// because they are different causes to report (`decode`, `prometheus_error`).
#[derive(Debug, PartialEq)]
pub enum DecodeError {
    /// Not the JSON shape of the expected answer.
    Invalid(String),
    /// A well-formed `{"status":"error"}` answer.
    Prometheus(String),
}

/// Which alerts to keep, asked with the alert's name before anything is
/// allocated for it: in a cluster most active alerts are someone else's,
/// and a poll should cost no more for them than reading past them.
pub type Keep<'k> = &'k dyn Fn(&str) -> bool;

/// Reads Prometheus' answer envelope (`status`, `data`, `errorType`,
/// `error`) in one pass, handing `data` to `seed` as it streams by. A derived
/// internally tagged enum would first buffer the whole answer as a tree of
/// values and then read it again.
fn envelope<'de, S: DeserializeSeed<'de>>(
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
enum Shape {
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

/// Labels a sample of `ALERTS` carries that the alert itself does not:
/// left out, so an alert has the same identity whichever way it was read.
const NAME_LABEL: &str = "__name__";
/// The label of an `ALERTS` sample that says whether it fires.
const ALERTSTATE_LABEL: &str = "alertstate";

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

/// Label pairs as read, borrowed from the body.
type Scratch<'b> = Vec<(Cow<'b, str>, Cow<'b, str>)>;

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

/// What reading one label set gave: the labels if the alert is kept, and
/// the `alertstate` label of a sample.
struct Kept {
    labels: Option<LabelSet>,
    alertstate: Option<AlertState>,
}

/// A label set, decided on as it is read: labels are kept only once
/// `alertname` says the alert is wanted. Prometheus sorts labels by name, so
/// `alertname` comes first or nearly so and an alert that is not wanted
/// allocates nothing; labels read before it wait, borrowed, until it comes.
struct LabelsSeed<'k, 's, 'b> {
    keep: Keep<'k>,
    shape: Shape,
    scratch: &'s mut Scratch<'b>,
}

impl<'de: 'b, 'b> DeserializeSeed<'de> for LabelsSeed<'_, '_, 'b> {
    type Value = Kept;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'b, 'b> Visitor<'de> for LabelsSeed<'_, '_, 'b> {
    type Value = Kept;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of label names to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kept, A::Error> {
        // Labels read before `alertname`, then, if the alert is kept, all.
        let pairs = self.scratch;
        pairs.clear();
        let mut kept = false;
        let mut decided = false;
        let mut alertstate = None;
        while let Some(Text(name)) = map.next_key()? {
            let wanted =
                kept || !decided || (self.shape == Shape::Series && name == ALERTSTATE_LABEL);
            if !wanted {
                // Not ours: read past the value as fast as the scan does.
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let Text(value) = map.next_value()?;
            if self.shape == Shape::Series {
                if name == ALERTSTATE_LABEL {
                    alertstate = state_of(&value);
                    continue;
                }
                if name == NAME_LABEL {
                    continue;
                }
            }
            if name == ALERTNAME_LABEL && !decided {
                decided = true;
                kept = (self.keep)(&value);
                if !kept {
                    pairs.clear();
                    continue;
                }
            }
            if kept || !decided {
                pairs.push((name, value));
            }
        }
        Ok(Kept {
            labels: kept.then(|| LabelSet::from_slice(pairs)),
            alertstate,
        })
    }
}

/// A string borrowed from the body where it has no escapes. serde's own
/// `Cow<str>` always copies unless a derive marks it borrowed, and these
/// are read by hand.
struct Text<'a>(Cow<'a, str>);

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

fn state_of(s: &str) -> Option<AlertState> {
    match s {
        "firing" => Some(AlertState::Firing),
        "pending" => Some(AlertState::Pending),
        _ => None,
    }
}

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

/// The parts of `/api/v1/rules` that timing needs. Our own, lenient model:
/// the crate's `RuleGroup` insists on fields older servers do not send and
/// decodes every alert of every rule, which phase locking has no use for.
#[derive(Deserialize)]
struct RulesData {
    /// `null` from Thanos Query when there are none.
    groups: Option<Vec<RulesGroup>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RulesGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    file: String,
    interval: f64,
    #[serde(default)]
    evaluation_time: f64,
    last_evaluation: String,
    rules: Vec<RuleName>,
}

#[derive(Deserialize)]
struct RuleName {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

/// Decodes `/api/v1/rules` into the timing of the groups that hold alerts
/// whose name starts with one of `prefixes` (one per watched kind). Groups
/// never evaluated yet are left out. Pure.
pub fn decode_rule_timings(
    body: &[u8],
    prefixes: &[&str],
) -> Result<Vec<GroupTiming>, DecodeError> {
    let (data, _): (RulesData, _) = envelope(body, PhantomData)?;
    Ok(data
        .groups
        .unwrap_or_default()
        .iter()
        .filter(|g| {
            g.rules
                .iter()
                .any(|r| r.kind == "alerting" && prefixes.iter().any(|p| r.name.starts_with(p)))
        })
        .filter_map(|g| {
            let last: Timestamp = g.last_evaluation.parse().ok()?;
            // Prometheus tells groups apart by file and name.
            let mut group = DefaultHasher::new();
            (&g.file, &g.name).hash(&mut group);
            // Prometheus reports a group not yet evaluated at the zero time.
            (last.as_second() > 0).then(|| GroupTiming {
                group: group.finish(),
                last_evaluation_ms: last.as_millisecond(),
                interval_ms: (g.interval * 1000.0).round() as i64,
                evaluation_ms: (g.evaluation_time * 1000.0).ceil() as i64,
            })
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeInfo {
    start_time: String,
}

/// Decodes `/api/v1/status/runtimeinfo` into the moment the server started,
/// in Unix ms. Pure.
pub fn decode_start_time(body: &[u8]) -> Result<i64, DecodeError> {
    let (info, _): (RuntimeInfo, _) = envelope(body, PhantomData)?;
    let started: Timestamp = info
        .start_time
        .parse()
        .map_err(|e| DecodeError::Invalid(format!("startTime {:?}: {e}", info.start_time)))?;
    Ok(started.as_millisecond())
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

    /// Other teams' alerts are dropped by name, wherever `alertname` sits
    /// among the labels; labels read before it are kept with it; escapes
    /// decode; an alert without a name is nobody's.
    #[test]
    fn keeps_only_alerts_whose_name_is_wanted() {
        let body = br#"{"status":"success","data":{"alerts":[
            {"labels":{"alertname":"KubePodNotReady","pod":"a"},"state":"firing","value":"1"},
            {"labels":{"Zone":"eu","alertname":"MetricGatewayThrottling","pipeline_name":"b\u00e9","severity":"critical"},
             "annotations":{"summary":"x"},"state":"firing","activeAt":"2026-11-27T10:00:00Z","value":"1e+00"},
            {"state":"pending","labels":{"alertname":"MetricAgentSomeDataDropped"}},
            {"labels":{"pipeline_name":"c"},"state":"firing"},
            {"labels":{"alertname":"MetricGatewayThrottling","pipeline_name":"d"},"state":"inactive"}]}}"#;
        let alerts = decode_alerts(body, &ours).unwrap().alerts;
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        let labels: Vec<(&str, &str)> = alerts[0].labels.iter().collect();
        assert_eq!(
            labels,
            [
                ("Zone", "eu"),
                ("alertname", "MetricGatewayThrottling"),
                ("pipeline_name", "bé"),
                ("severity", "critical"),
            ]
        );
        assert_eq!(alerts[1].state, AlertState::Pending);
        // Without a filter, every named firing or pending alert.
        assert_eq!(decode(body).unwrap().len(), 3);
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

    #[test]
    fn rule_timings_come_from_groups_with_our_alerts() {
        let body = br#"{"status":"success","data":{"groups":[
            {"name":"metricpipeline-flow-health","file":"rules.yaml","interval":30,"limit":0,
             "evaluationTime":0.0123,"lastEvaluation":"2026-11-27T10:00:00.5Z",
             "rules":[{"state":"inactive","name":"MetricGatewayThrottling","query":"up == 0",
               "duration":60,"labels":{},"annotations":{},"alerts":[],"health":"ok",
               "evaluationTime":0.001,"lastEvaluation":"2026-11-27T10:00:00.5Z","type":"alerting"}]},
            {"name":"other","file":"rules.yaml","interval":15,"limit":0,
             "evaluationTime":0.001,"lastEvaluation":"2026-11-27T10:00:01Z",
             "rules":[{"state":"inactive","name":"TraceGatewayThrottling","query":"up == 0",
               "duration":0,"labels":{},"annotations":{},"alerts":[],"health":"ok",
               "evaluationTime":0.001,"lastEvaluation":"2026-11-27T10:00:01Z","type":"alerting"}]}]}}"#;
        let timings = decode_rule_timings(body, &["Metric"]).unwrap();
        assert_eq!(timings.len(), 1);
        assert_eq!(timings[0].interval_ms, 30_000);
        assert_eq!(timings[0].evaluation_ms, 13);
        assert_eq!(timings[0].last_evaluation_ms % 1000, 500);
        // A kind whose rules sit in a group of their own brings that group.
        let both = decode_rule_timings(body, &["Metric", "Trace"]).unwrap();
        assert_eq!(both.len(), 2);
        assert_ne!(both[0].group, both[1].group);
        assert_eq!(both[0], timings[0]);
        assert!(decode_rule_timings(b"[]", &["Metric"]).is_err());
        let none = br#"{"status":"success","data":{"groups":null}}"#;
        assert_eq!(decode_rule_timings(none, &["Metric"]).unwrap(), []);
    }
}
