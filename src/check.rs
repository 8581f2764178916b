//! `alert-poller check`: one poll, and the condition each named pipeline would
//! get, without a cluster. For operators asking "what would the controller
//! write right now?" and for scripts (`-o json`).

use serde::Serialize;

use crate::alerts::Snapshot;
use crate::config::Tuning;
use crate::health::{self, Knowledge, LogSpec, PipelineFacts};
use crate::kind::Kind;
use crate::prometheus::{
    AlertSource, ClientError, PollError, PrometheusClient, redact, series_max_age,
};

/// The verdict for one pipeline, in the shape `-o json` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PipelineReport {
    pub pipeline: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// Why the check could not run; each message is one line naming the URL.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot ask Prometheus at {url}: {source}")]
    Client {
        url: String,
        #[source]
        source: ClientError,
    },
    #[error("cannot ask Prometheus at {url}: {source}")]
    Poll {
        url: String,
        #[source]
        source: PollError,
    },
}

/// Polls once and judges each named pipeline of `kind`. Without the pipeline
/// objects, what a LogPipeline uses comes from the caller (`log`).
pub async fn check(
    tuning: &Tuning,
    kind: Kind,
    log: LogSpec,
    pipelines: &[String],
) -> Result<Vec<PipelineReport>, CheckError> {
    let client = PrometheusClient::new((tuning).into()).map_err(|source| CheckError::Client {
        url: redact(&tuning.prometheus_url),
        source,
    })?;
    // As the controller asks: `ALERTS` samples no older than the rule groups'
    // timing allows, when it can be read.
    let max_age = match tuning.alert_source {
        AlertSource::Query => client
            .rule_timings(&tuning.alert_name_prefix)
            .await
            .ok()
            .and_then(|groups| series_max_age(&groups)),
        AlertSource::Alerts => None,
    };
    let response = client
        .alerts_of_ours(max_age)
        .await
        .map_err(|source| CheckError::Poll {
            url: client.url().to_owned(),
            source,
        })?;
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
