//! The pipelines of a run: MetricPipelines, TracePipelines and LogPipelines
//! dealt in turn, because telemetry-manager's webhook re-queues pipelines of
//! all three kinds and alert-poller serves all three from one poll: a
//! comparison over one kind would leave out two thirds of what each design
//! reconciles and asks Prometheus.
//!
//! Names are unique over all kinds (`p0`, `p1`, ...), so that a detection
//! and Prometheus' ground truth can be matched by name alone. The first
//! pipeline is a MetricPipeline: it carries the background alert.

use std::fmt;

use alert_poller::domain::health::{LogSpec, PipelineFacts};
use alert_poller::domain::kind::Kind;
use alert_poller_testbed::collector::PipelineKind;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One pipeline of a run.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pipeline {
    #[serde(serialize_with = "kind_out", deserialize_with = "kind_in")]
    pub kind: Kind,
    pub name: String,
}

fn kind_out<S: Serializer>(kind: &Kind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

fn kind_in<'de, D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

/// What every LogPipeline of a run uses: an OTLP output with both inputs,
/// so the log gateway and the log agent both count for it (the collector
/// stand-in serves both flows), as for a v1beta1 LogPipeline with the
/// defaults.
const LOG_SPEC: LogSpec = LogSpec {
    otlp_output: true,
    runtime_input: true,
    otlp_input: true,
};

impl Pipeline {
    /// What health needs to judge it.
    pub fn facts(&self) -> PipelineFacts<'_> {
        PipelineFacts {
            log: LOG_SPEC,
            ..PipelineFacts::new(self.kind, &self.name)
        }
    }

    /// The test bed's name for its kind.
    pub fn bed_kind(&self) -> PipelineKind {
        match self.kind {
            Kind::Metric => PipelineKind::Metric,
            Kind::Trace => PipelineKind::Trace,
            Kind::Log => PipelineKind::Log,
        }
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}pipeline/{}", self.kind, self.name)
    }
}

/// `n` pipelines, the kinds dealt in turn: metric, trace, log, metric, ...
pub fn dealt(n: usize) -> Vec<Pipeline> {
    (0..n)
        .map(|i| Pipeline {
            kind: Kind::ALL[i % Kind::ALL.len()],
            name: format!("p{i}"),
        })
        .collect()
}

/// The pipeline that change `i` breaks: never `p0` (its background alert
/// would hide the change) unless it is the only one; in turn over the rest,
/// so consecutive changes hit different kinds.
pub fn faulty(pipelines: &[Pipeline], i: usize) -> &Pipeline {
    if pipelines.len() > 1 {
        &pipelines[1 + i % (pipelines.len() - 1)]
    } else {
        &pipelines[0]
    }
}

/// The pipeline of the `k`-th change of `lane` when `lanes` sequences of
/// changes run at once: each lane has pipelines of its own (never `p0`,
/// as in [`faulty`]), so no two changes overlap on one pipeline. One lane
/// is [`faulty`].
pub fn faulty_in_lane(pipelines: &[Pipeline], lanes: usize, lane: usize, k: usize) -> &Pipeline {
    let own: Vec<usize> = (1..pipelines.len())
        .filter(|i| (i - 1) % lanes.max(1) == lane)
        .collect();
    if own.is_empty() {
        return faulty(pipelines, k);
    }
    &pipelines[own[k % own.len()]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_dealt_in_turn_with_unique_names() {
        let p = dealt(7);
        let kinds: Vec<Kind> = p.iter().map(|p| p.kind).collect();
        use Kind::*;
        assert_eq!(kinds, [Metric, Trace, Log, Metric, Trace, Log, Metric]);
        let mut names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), 7);
        assert_eq!(p[0].to_string(), "metricpipeline/p0");
    }

    #[test]
    fn changes_go_round_the_kinds_and_spare_the_background_pipeline() {
        let p = dealt(10);
        let hit: Vec<&str> = (0..4).map(|i| faulty(&p, i).name.as_str()).collect();
        assert_eq!(hit, ["p1", "p2", "p3", "p4"]);
        let kinds: Vec<Kind> = (0..3).map(|i| faulty(&p, i).kind).collect();
        assert_eq!(kinds, [Kind::Trace, Kind::Log, Kind::Metric]);
        assert_eq!(faulty(&p, 9).name, "p1");
        let one = dealt(1);
        assert_eq!(faulty(&one, 5).name, "p0");
    }

    #[test]
    fn travels_between_processes_as_json() {
        let p = dealt(3);
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(r#""kind":"log""#), "{json}");
        assert_eq!(serde_json::from_str::<Vec<Pipeline>>(&json).unwrap(), p);
        assert!(serde_json::from_str::<Pipeline>(r#"{"kind":"span","name":"x"}"#).is_err());
    }

    #[test]
    fn log_pipelines_count_gateway_and_agent() {
        let log = &dealt(3)[2];
        let facts = log.facts();
        assert_eq!(facts.kind, Kind::Log);
        assert!(facts.log.otlp_output && facts.log.runtime_input && facts.log.otlp_input);
    }

    #[test]
    fn lanes_never_share_a_pipeline() {
        let all = dealt(9);
        let name = |lanes, lane, k| faulty_in_lane(&all, lanes, lane, k).name.clone();
        // One lane is the plain sequence.
        for k in 0..12 {
            assert_eq!(name(1, 0, k), faulty(&all, k).name);
        }
        // Three lanes over p1..p8: p1 p4 p7 | p2 p5 p8 | p3 p6.
        let lanes: Vec<Vec<String>> = (0..3)
            .map(|lane| (0..4).map(|k| name(3, lane, k)).collect())
            .collect();
        assert_eq!(lanes[0], ["p1", "p4", "p7", "p1"]);
        assert_eq!(lanes[1], ["p2", "p5", "p8", "p2"]);
        assert_eq!(lanes[2], ["p3", "p6", "p3", "p6"]);
    }
}
