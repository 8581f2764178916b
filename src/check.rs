//! `alert-poller check`: one poll, and the condition each named pipeline would
//! get, without a cluster. For operators asking "what would the controller
//! write right now?" and for scripts (`-o json`).

use serde::Serialize;

use std::sync::Arc;

use crate::alerts::Snapshot;
use crate::config::Tuning;
use crate::health::{self, Knowledge, LogSpec, PipelineFacts};
use crate::kind::Kind;
use crate::metrics::Metrics;
use crate::prometheus::PollError;
use crate::sources::Sources;

/// The verdict for one pipeline, in the shape `-o json` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PipelineReport {
    pub pipeline: String,
    pub status: String,
    pub reason: String,
    pub message: String,
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
/// judges each named pipeline of `kind`. Without the pipeline objects, what
/// a LogPipeline uses comes from the caller (`log`).
pub async fn check(
    tuning: &Tuning,
    kind: Kind,
    log: LogSpec,
    pipelines: &[String],
) -> Result<Vec<PipelineReport>, CheckError> {
    // One poll has no schedule to lock to the evaluations.
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
    let snapshot = Snapshot::from_alerts(response.alerts, &tuning.matchers());
    Ok(pipelines
        .iter()
        .map(|name| {
            let facts = PipelineFacts { kind, name, log };
            let verdict = health::evaluate(facts, Knowledge::Fresh(&snapshot))
                .expect("fresh knowledge always gives a verdict");
            PipelineReport {
                pipeline: name.clone(),
                status: verdict.status.as_str().to_owned(),
                reason: verdict.reason.to_owned(),
                message: verdict.message,
            }
        })
        .collect())
}

/// The reports as an aligned text table.
pub fn table(reports: &[PipelineReport]) -> String {
    let width = reports
        .iter()
        .map(|r| r.pipeline.len())
        .chain([8])
        .max()
        .unwrap_or(8);
    let mut out = format!(
        "{:width$}  {:7}  {:31}  MESSAGE\n",
        "PIPELINE", "STATUS", "REASON"
    );
    for r in reports {
        out.push_str(&format!(
            "{:width$}  {:7}  {:31}  {}\n",
            r.pipeline, r.status, r.reason, r.message
        ));
    }
    out
}
