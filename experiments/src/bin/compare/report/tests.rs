//! Fixtures shared by the report's tests (and the restart table's): two
//! designs, two changes, one of them never resolved.

use std::time::Duration;

use alert_poller::domain::kind::Kind;

use crate::agent::{AgentReport, Design, Detection};
use crate::designs::DesignSpec;
use crate::outcome::{Outcome, Stable};
use crate::truth::Change;

pub(crate) fn seen(pipeline: &str, status: &str, unix_ms: u64) -> Detection {
    Detection {
        pipeline: pipeline.into(),
        pipeline_kind: "metric".into(),
        status: status.into(),
        unix_ms,
    }
}

pub(crate) fn design(label: &str, detections: Vec<Detection>) -> (DesignSpec, AgentReport) {
    let spec = DesignSpec {
        label: label.into(),
        design: Design::Pull,
        tuning: vec![],
    };
    let report = AgentReport {
        detections,
        prometheus_requests: 4,
        prometheus_bytes: 2048,
        ..AgentReport::default()
    };
    (spec, report)
}

pub(crate) fn change(pipeline: &str, fired_ms: Option<u64>, resolved_ms: Option<u64>) -> Change {
    Change {
        pipeline: pipeline.into(),
        pipeline_kind: Kind::Trace,
        fired_ms,
        resolved_ms,
    }
}

/// Two designs and two changes; Prometheus never resolved the second.
/// `a` sees everything, `b` only the first fire (and something earlier
/// than the truth, which must not count).
pub(crate) fn outcome() -> Outcome {
    let scenario = crate::scenarios::plan(true, &[]).0.remove(0);
    Outcome {
        provenance: crate::provenance::Provenance::default(),
        restarts: Default::default(),
        stable: vec![Stable {
            label: "a".into(),
            requests: 30,
            bytes: 0,
            reconciles: 5,
        }],
        scenario,
        reports: vec![
            design(
                "a",
                vec![
                    seen("p1", "False", 1500),
                    seen("p2", "False", 2100),
                    seen("p1", "True", 5200),
                ],
            ),
            design(
                "b",
                vec![seen("p1", "False", 900), seen("p1", "False", 1300)],
            ),
        ],
        truths: vec![
            change("p1", Some(1000), Some(5000)),
            change("p2", Some(2000), None),
        ],
        prometheus_cpu: 0.0,
        duration: Duration::from_secs(60),
    }
}
