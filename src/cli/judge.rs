//! `alert-poller check`'s verdicts: one poll, as the controller polls, and
//! the condition each pipeline would get. The pipelines come from the
//! command line or from the cluster's objects ([`super::cluster`]), which
//! also give each one's current condition to show beside the verdict.

use serde::Serialize;

use std::sync::Arc;

use alert_poller::config::Tuning;
use alert_poller::domain::alerts::Snapshot;
use alert_poller::domain::health::{self, Knowledge, LogSpec, PipelineFacts, Status};
use alert_poller::domain::kind::Kind;
use alert_poller::operations::metrics::Metrics;
use alert_poller::polling::sources::Sources;
use alert_poller::prometheus::PollError;

/// One pipeline to judge: what health needs, and what the cluster says now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    pub name: String,
    pub log: LogSpec,
    /// The condition of the judged type on the object; `None` without a
    /// cluster, or when the object has none.
    pub current: Option<Current>,
}

/// A condition as the object holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Current {
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// The verdict for one pipeline, in the shape `-o json` and `-o yaml` print.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PipelineReport {
    pub kind: Kind,
    pub pipeline: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    /// The object's condition now, when read from a cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Current>,
}

impl PipelineReport {
    /// Whether the verdict is healthy (`True`): what `--fail-on-unhealthy` asks.
    pub fn healthy(&self) -> bool {
        self.status == Status::True.as_str()
    }
}

/// Why the check could not run: no source answered. One line naming the
/// first source's URL and its error; with several sources each failure is
/// logged as a warning before it.
#[derive(Debug, thiserror::Error)]
#[error("cannot ask Prometheus at {url}: {source}")]
pub struct CheckError {
    pub url: String,
    #[source]
    pub source: PollError,
}

/// Polls once, as the controller does (every source, answers merged), and
/// judges each target.
pub async fn poll_and_judge(
    tuning: &Tuning,
    targets: Vec<Target>,
) -> Result<Vec<PipelineReport>, CheckError> {
    let snapshot = poll_once(tuning).await?;
    Ok(judge(&snapshot, targets))
}

/// One poll's firing alerts. One poll has no schedule to lock to the
/// evaluations, so it is never phase-locked.
async fn poll_once(tuning: &Tuning) -> Result<Snapshot, CheckError> {
    let tuning = &Tuning {
        phase_lock: false,
        ..tuning.clone()
    };
    let mut sources = Sources::new(Arc::new(Metrics::new().0));
    sources.update(tuning);
    let response = sources
        .poll(tuning)
        .await
        .into_result()
        .map_err(|(url, source)| CheckError { url, source })?;
    Ok(Snapshot::from_alerts(response.alerts, &tuning.matchers()))
}

/// The verdict for each target from one snapshot.
pub fn judge(snapshot: &Snapshot, targets: Vec<Target>) -> Vec<PipelineReport> {
    targets
        .into_iter()
        .map(|t| {
            let facts = PipelineFacts {
                kind: t.kind,
                name: &t.name,
                log: t.log,
            };
            let verdict = health::evaluate(facts, Knowledge::Fresh(snapshot))
                .expect("fresh knowledge always gives a verdict");
            PipelineReport {
                kind: t.kind,
                pipeline: t.name,
                status: verdict.status.as_str().to_owned(),
                reason: verdict.reason.to_owned(),
                message: verdict.message,
                current: t.current,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: Kind, name: &str) -> Target {
        Target {
            kind,
            name: name.into(),
            log: LogSpec::default(),
            current: None,
        }
    }

    #[test]
    fn every_target_gets_a_verdict_of_its_kind_and_keeps_its_current_condition() {
        let current = Current {
            status: "False".into(),
            reason: "GatewayThrottling".into(),
            message: "old".into(),
        };
        let mut metric = target(Kind::Metric, "a");
        metric.current = Some(current.clone());
        let reports = judge(&Snapshot::default(), vec![metric, target(Kind::Trace, "b")]);
        assert_eq!(reports.len(), 2);
        assert!(reports.iter().all(PipelineReport::healthy));
        assert_eq!(
            (reports[0].kind, reports[1].kind),
            (Kind::Metric, Kind::Trace)
        );
        assert_eq!(reports[0].current, Some(current));
        assert_eq!(reports[1].current, None);
    }
}
