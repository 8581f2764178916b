//! The test bed of one run: a collector stand-in and a real Prometheus
//! scraping it and evaluating the shipped rules at the scenario's
//! evaluation interval (their windows and `for` sped up, or as shipped), with the background alert and the noise already
//! firing before any design starts, so that no design sees them appear.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Collector, Component, Flow, PipelineKind};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use alert_poller_testbed::rules;
use anyhow::{Result, bail};

use crate::pipelines::{self, Pipeline};
use crate::truth;

/// A collector and a Prometheus over it.
pub struct Bed {
    pub collector: Collector,
    pub prometheus: Prometheus,
    /// The pipelines of all kinds, `p0` (a MetricPipeline with the
    /// background alert) first.
    pub pipelines: Vec<Pipeline>,
}

pub struct BedSetup {
    pub pipelines: usize,
    pub evaluation: Duration,
    /// The rules' rate window and `for`.
    pub window: Duration,
    pub hold: Duration,
    pub resend_delay: Option<Duration>,
    pub noise: usize,
    pub background_alert: bool,
    /// Where the push designs listen; Prometheus notifies them.
    pub alertmanagers: Vec<SocketAddr>,
    /// The Prometheus binary; the test bed's default when `None`.
    pub prometheus: Option<String>,
}

impl Bed {
    pub async fn start(b: &BedSetup) -> Result<Bed> {
        let pipelines = pipelines::dealt(b.pipelines);
        let collector = Collector::start(&[]).await?;
        for p in &pipelines {
            collector.add_pipeline_of(p.bed_kind(), &p.name);
        }
        if b.background_alert {
            collector.set_flow_of(
                PipelineKind::Metric,
                Component::Gateway,
                "p0",
                Flow::SomeDropped,
            );
        }
        collector.set_noise(b.noise);
        let window = b.window;
        // The noise group is there even without noise, so every scenario
        // evaluates the same rule groups.
        let prometheus = Prometheus::start(&Setup {
            scrape_interval: b.evaluation,
            evaluation_interval: b.evaluation,
            rules: rules::with_noise(&rules::fast(window, b.hold, b.evaluation)),
            collector: Some(collector.addr()),
            alertmanagers: b.alertmanagers.clone(),
            resend_delay: b.resend_delay,
            binary: b.prometheus.clone(),
        })
        .await?;
        if b.background_alert {
            until_firing(
                &prometheus,
                "p0",
                true,
                window * 4 + b.hold + Duration::from_secs(10),
            )
            .await?;
        }
        if b.noise > 0 {
            prometheus
                .until_noise(b.noise, b.evaluation * 10 + Duration::from_secs(30))
                .await?;
        }
        Ok(Bed {
            collector,
            prometheus,
            pipelines,
        })
    }
}

/// Waits until Prometheus reports (or stops reporting) a firing alert for `pipeline`.
pub async fn until_firing(
    prometheus: &Prometheus,
    pipeline: &str,
    firing: bool,
    limit: Duration,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if truth::firing_now(&prometheus.url(), pipeline).await? == firing {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("{pipeline}: firing={firing} not reached within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
