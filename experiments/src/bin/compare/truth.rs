//! Ground truth, read from Prometheus itself: the `ALERTS` series carries one
//! raw sample per rule evaluation while an alert fires, stamped with that
//! evaluation's time. The first sample of a firing run is the evaluation at
//! which the alert fired; one interval after the last is the evaluation at
//! which it stopped.

use std::time::Duration;

use alert_poller::prometheus::install_crypto_provider;
use anyhow::{Result, bail};
use prometheus_http_query::response::Data;
use prometheus_http_query::{Client, reqwest};

/// One injected fault and what Prometheus made of it.
#[derive(Clone, Debug)]
pub struct Change {
    pub pipeline: String,
    /// When the harness broke and mended the flow (Unix ms).
    pub broke_ms: u64,
    pub mended_ms: u64,
    /// The evaluation at which the first alert for the pipeline fired, and
    /// the one at which the last stopped (Unix ms).
    pub fired_ms: Option<u64>,
    pub resolved_ms: Option<u64>,
}

fn client(url: &str) -> Result<Client> {
    install_crypto_provider();
    Ok(Client::from(reqwest::Client::new(), url)?)
}

fn selector(pipeline: &str) -> String {
    format!(r#"ALERTS{{alertstate="firing",alertname=~"Metric.*",pipeline_name="{pipeline}"}}"#)
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
    injected: &[(String, u64, u64)],
    evaluation: Duration,
) -> Result<Vec<Change>> {
    let Some(first) = injected.iter().map(|c| c.1).min() else {
        return Ok(Vec::new());
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let lookback = Duration::from_millis(now.saturating_sub(first)) + evaluation * 2;
    let step = evaluation.as_millis() as u64;
    let mut out = Vec::new();
    for (pipeline, broke, mended) in injected {
        let stamps = firing_evaluations(url, pipeline, lookback).await?;
        let fired = stamps.iter().copied().find(|t| *t >= *broke);
        // The run that started at `fired` ends where a gap opens.
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
        out.push(Change {
            pipeline: pipeline.clone(),
            broke_ms: *broke,
            mended_ms: *mended,
            fired_ms: fired,
            resolved_ms: resolved.filter(|r| *r >= *mended),
        });
    }
    Ok(out)
}
