//! One alert's label set, decided on as it is read: kept only when the
//! alert's name is wanted, so that other teams' alerts cost no allocation.
//! The labels an `ALERTS` sample adds to the alert's own are dropped here,
//! its `alertstate` read as the state.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::decode::{Keep, Shape, state_of};
use super::envelope::Text;
use crate::domain::alerts::{ALERTNAME_LABEL, AlertState};
use crate::domain::labels::LabelSet;

/// Labels a sample of `ALERTS` carries that the alert itself does not:
/// left out, so an alert has the same identity whichever way it was read.
const NAME_LABEL: &str = "__name__";
/// The label of an `ALERTS` sample that says whether it fires.
const ALERTSTATE_LABEL: &str = "alertstate";

/// Label pairs as read, borrowed from the body.
pub(super) type Scratch<'b> = Vec<(Cow<'b, str>, Cow<'b, str>)>;

/// What reading one label set gave: the labels if the alert is kept, and
/// the `alertstate` label of a sample.
pub(super) struct Kept {
    pub(super) labels: Option<LabelSet>,
    pub(super) alertstate: Option<AlertState>,
}

/// A label set, decided on as it is read: labels are kept only once
/// `alertname` says the alert is wanted. Prometheus sorts labels by name, so
/// `alertname` comes first or nearly so and an alert that is not wanted
/// allocates nothing; labels read before it wait, borrowed, until it comes.
pub(super) struct LabelsSeed<'k, 's, 'b> {
    pub(super) keep: Keep<'k>,
    pub(super) shape: Shape,
    pub(super) scratch: &'s mut Scratch<'b>,
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

#[cfg(test)]
mod tests {
    use crate::domain::alerts::AlertState;
    use crate::prometheus::{decode, decode_alerts};

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
}
