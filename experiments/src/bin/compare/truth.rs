//! Ground truth, read from Prometheus itself: the `ALERTS` series carries one
//! raw sample per rule evaluation while an alert fires, stamped with that
//! evaluation's time. The first sample of a firing run is the evaluation at
//! which the alert fired; one interval after the last is the evaluation at
//! which it stopped.

use std::time::Duration;

use alert_poller::domain::kind::Kind;
use alert_poller::prometheus::install_crypto_provider;
use anyhow::{Result, bail};
use prometheus_http_query::response::Data;
use prometheus_http_query::{Client, reqwest};

use crate::pipelines::Pipeline;

/// One injected fault and what Prometheus made of it.
#[derive(Clone, Debug)]
pub struct Change {
    pub pipeline: String,
    pub pipeline_kind: Kind,
    /// The evaluation at which the first alert for the pipeline fired, and
    /// the one at which the last stopped (Unix ms).
    pub fired_ms: Option<u64>,
    pub resolved_ms: Option<u64>,
}

fn client(url: &str) -> Result<Client> {
    install_crypto_provider();
    Ok(Client::from(reqwest::Client::new(), url)?)
}

/// Any alert of any pipeline kind about `pipeline`: names are unique over
/// all kinds in a run, so the name alone says whose it is.
fn selector(pipeline: &str) -> String {
    format!(
        r#"ALERTS{{alertstate="firing",alertname=~"(Metric|Trace|Log).*",pipeline_name="{pipeline}"}}"#
    )
}

/// Whether any alert for the pipeline fires right now.
pub async fn firing_now(url: &str, pipeline: &str) -> Result<bool> {
    let result = client(url)?.query(selector(pipeline)).get().await?;
    Ok(match result.data() {
        Data::Vector(v) => !v.is_empty(),
        _ => false,
    })
}

/// Evaluation timestamps (ms) at which any alert for the pipeline fired,
/// over the last `lookback`.
async fn firing_evaluations(url: &str, pipeline: &str, lookback: Duration) -> Result<Vec<u64>> {
    let query = format!("{}[{}s]", selector(pipeline), lookback.as_secs().max(1));
    let result = client(url)?.query(query).get().await?;
    let Data::Matrix(series) = result.data() else {
        bail!("a range query answered without a matrix");
    };
    let mut stamps: Vec<u64> = series
        .iter()
        .flat_map(|s| {
            s.samples()
                .iter()
                .map(|x| (x.timestamp() * 1000.0).round() as u64)
        })
        .collect();
    stamps.sort_unstable();
    stamps.dedup();
    Ok(stamps)
}

/// Matches each injected fault to the firing run it caused.
pub async fn changes(
    url: &str,
    injected: &[(Pipeline, u64, u64)],
    evaluation: Duration,
) -> Result<Vec<Change>> {
    let Some(first) = injected.iter().map(|c| c.1).min() else {
        return Ok(Vec::new());
    };
    let now = alert_poller_experiments::unix_ms();
    let lookback = Duration::from_millis(now.saturating_sub(first)) + evaluation * 2;
    let step = evaluation.as_millis() as u64;
    let mut out = Vec::new();
    for (pipeline, broke, mended) in injected {
        let stamps = firing_evaluations(url, &pipeline.name, lookback).await?;
        let (fired_ms, resolved_ms) = firing_run(&stamps, *broke, *mended, step);
        out.push(Change {
            pipeline: pipeline.name.clone(),
            pipeline_kind: pipeline.kind,
            fired_ms,
            resolved_ms,
        });
    }
    Ok(out)
}

/// The firing run a fault caused, from the sorted evaluation stamps (ms) at
/// which the pipeline had a firing alert and the evaluation interval `step`
/// (ms): it starts at the first stamp at or after `broke` and ends one
/// interval after the last stamp before a gap of more than one and a half
/// intervals: jitter in the evaluation times does not split a run, one
/// evaluation without the alert does. An end before `mended` belongs to
/// another cause and is no resolve of this fault.
fn firing_run(stamps: &[u64], broke: u64, mended: u64, step: u64) -> (Option<u64>, Option<u64>) {
    let fired = stamps.iter().copied().find(|t| *t >= broke);
    let resolved = fired.map(|start| {
        let mut last = start;
        for t in stamps.iter().copied().filter(|t| *t > start) {
            if t - last > step * 3 / 2 {
                break;
            }
            last = t;
        }
        last + step
    });
    (fired, resolved.filter(|r| *r >= mended))
}

#[cfg(test)]
mod tests {
    use super::firing_run;

    #[test]
    fn firing_runs() {
        let step = 1000;
        for (stamps, broke, mended, expected) in [
            (&[][..], 0, 0, (None, None)),
            // One evaluation fired: resolved one interval later.
            (&[5000][..], 4200, 5500, (Some(5000), Some(6000))),
            (&[5000][..], 4200, 6000, (Some(5000), Some(6000))),
            // Firing that started before the break is not this fault's.
            (&[3000, 4000][..], 4200, 4500, (None, None)),
            (
                &[3000, 4000, 5000, 6000][..],
                4200,
                5500,
                (Some(5000), Some(7000)),
            ),
            // A gap of one and a half intervals still continues the run...
            (
                &[5000, 6000, 7500][..],
                4200,
                5500,
                (Some(5000), Some(8500)),
            ),
            // ...a longer one ends it, and a later run is another cause.
            (
                &[5000, 6000, 8000, 9000][..],
                4200,
                5500,
                (Some(5000), Some(7000)),
            ),
            // Ended before the mend: fired, but no resolve of this fault.
            (&[5000, 6000][..], 4200, 9000, (Some(5000), None)),
            // The last stamp ends the run (the harness asks only once the
            // alert cleared).
            (
                &[5000, 6000, 7000][..],
                4200,
                6500,
                (Some(5000), Some(8000)),
            ),
        ] {
            assert_eq!(
                firing_run(stamps, broke, mended, step),
                expected,
                "{stamps:?} broke {broke} mended {mended}"
            );
        }
    }
}
