//! The three pipeline kinds telemetry-manager keeps flow health on, and the
//! names each goes by: in alert names, in the `pipeline_type` label, in the
//! Kubernetes API and in our settings and metrics.

use std::fmt;
use std::str::FromStr;

/// A kind of Kyma telemetry pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Metric,
    Trace,
    Log,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Metric, Kind::Trace, Kind::Log];

    /// How settings, flags and metric labels spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Metric => "metric",
            Kind::Trace => "trace",
            Kind::Log => "log",
        }
    }

    /// The start of every alert name about this kind (case-sensitive).
    pub fn alert_prefix(self) -> &'static str {
        match self {
            Kind::Metric => "Metric",
            Kind::Trace => "Trace",
            Kind::Log => "Log",
        }
    }

    /// The value of the `pipeline_type` label the scrape relabeling derives
    /// from an exporter's name.
    pub fn pipeline_type(self) -> &'static str {
        match self {
            Kind::Metric => "metricpipeline",
            Kind::Trace => "tracepipeline",
            Kind::Log => "logpipeline",
        }
    }

    /// The resource's kind in the API.
    pub fn api_kind(self) -> &'static str {
        match self {
            Kind::Metric => "MetricPipeline",
            Kind::Trace => "TracePipeline",
            Kind::Log => "LogPipeline",
        }
    }

    /// The resource's plural in the API.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Metric => "metricpipelines",
            Kind::Trace => "tracepipelines",
            Kind::Log => "logpipelines",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As settings spell it, so `check -o json` prints what `--kind` takes.
impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| format!("{s:?} is not a pipeline kind (metric, trace or log)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_consistent() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind));
            assert_eq!(kind.pipeline_type(), format!("{}pipeline", kind.as_str()));
            assert_eq!(
                kind.plural(),
                format!("{}s", kind.api_kind().to_lowercase())
            );
            assert!(kind.api_kind().starts_with(kind.alert_prefix()));
        }
        assert!(
            "Metric".parse::<Kind>().is_err(),
            "settings spell kinds in lower case"
        );
    }
}
