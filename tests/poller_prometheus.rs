//! The poller against a real Prometheus (Debian's package), evaluating the
//! shipped alert rules (sped up) over a fake collector whose flows we break
//! and mend. No Kubernetes here: the test reads what the poller re-queues and
//! judges each pipeline from the poller's view, exactly as a reconcile does.

#[path = "poller_prometheus/sources.rs"]
mod sources;

use std::time::{Duration, Instant};

use alert_poller::domain::alerts::Affected;
use alert_poller::domain::health::{self, LogSpec, PipelineFacts, Status, Verdict};
use alert_poller::domain::kind::Kind;
use alert_poller::operations::metrics::ResultLabels;
use alert_poller_testbed::collector::{Collector, Component, Flow, PipelineKind};
use alert_poller_testbed::poller::{StandalonePoller, tuning};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use prometheus_http_query::reqwest;

const PATIENCE: Duration = Duration::from_secs(60);

struct Bed {
    // Field order is drop order: the poller stops before Prometheus goes.
    poller: StandalonePoller,
    prometheus: Prometheus,
    collector: Collector,
    /// What the poller re-queued while the fresh Prometheus settled.
    initial: Vec<Affected>,
}

async fn bed(pipelines: &[&str], extra: &[(&str, &str)]) -> Bed {
    let collector = Collector::start(pipelines).await.expect("collector starts");
    let prometheus = Prometheus::start(&Setup::fast(collector.addr()))
        .await
        .expect("prometheus starts");
    let url = prometheus.url();
    let mut settings = vec![
        ("prometheusUrl", url.as_str()),
        ("minInterval", "200ms"),
        ("maxInterval", "1s"),
        ("backoffFactor", "2"),
        ("errorMaxInterval", "1s"),
        ("requestTimeout", "1s"),
        ("connectTimeout", "500ms"),
        ("staleAfter", "3s"),
    ];
    settings.extend_from_slice(extra);
    let poller = StandalonePoller::start(tuning(&settings));
    let mut bed = Bed {
        poller,
        prometheus,
        collector,
        initial: Vec::new(),
    };
    bed.initial = bed.settled().await;
    bed
}

impl Bed {
    /// How many times Prometheus has evaluated its busiest rule group, from
    /// its own `prometheus_rule_group_iterations_total`.
    async fn evaluations(&self) -> f64 {
        let url = format!("{}/metrics", self.prometheus.url().trim_end_matches('/'));
        let text = match reqwest::get(&url).await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .filter(|l| l.starts_with("prometheus_rule_group_iterations_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, f64::max)
    }

    /// Waits until Prometheus has evaluated `count` times, for a minute at most.
    async fn until_evaluations(&self, count: f64) {
        let started = Instant::now();
        while self.evaluations().await < count {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "Prometheus stopped evaluating"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn judge(&self, pipeline: &str) -> Option<Verdict> {
        self.judge_as(PipelineFacts::new(Kind::Metric, pipeline))
    }

    fn judge_as(&self, facts: PipelineFacts<'_>) -> Option<Verdict> {
        let view = self.poller.view.borrow().clone();
        health::evaluate(facts, view.knowledge())
    }

    /// Waits until `facts`' pipeline is judged `reason`; returns every
    /// re-queue request seen meanwhile.
    async fn until_as(&mut self, facts: PipelineFacts<'_>, reason: &str) -> Vec<Affected> {
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            seen.extend(self.drain());
            if self.judge_as(facts).is_some_and(|v| v.reason == reason) {
                return seen;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{} {} never became {reason}; last verdict {:?}; requeues {seen:?}",
                facts.kind,
                facts.name,
                self.judge_as(facts)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn successful_polls(&self) -> u64 {
        self.poller
            .metrics
            .polls
            .get_or_create(&ResultLabels {
                result: "success".into(),
            })
            .get()
    }

    /// Waits until `pipeline` is judged `status`/`reason`; returns every
    /// re-queue request seen meanwhile.
    async fn until(&mut self, pipeline: &str, status: Status, reason: &str) -> Vec<Affected> {
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            while let Ok(a) = self.poller.requeues.try_recv() {
                seen.push(a);
            }
            if let Some(v) = self.judge(pipeline)
                && v.status == status
                && v.reason == reason
            {
                return seen;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{pipeline} never became {status:?}/{reason}; last verdict {:?}; requeues {seen:?}\nPrometheus log:\n{}",
                self.judge(pipeline),
                self.prometheus.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the poller has polled and no longer takes the fresh
    /// Prometheus for one that is settling after its start (which holds
    /// back resolves and re-queues everyone when it ends); returns the
    /// re-queues until then.
    async fn settled(&mut self) -> Vec<Affected> {
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            seen.extend(self.drain());
            let view = self.poller.view.borrow().clone();
            if view.snapshot.is_some() && !view.settling {
                seen.extend(self.drain());
                return seen;
            }
            assert!(started.elapsed() < PATIENCE, "Prometheus never settled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Drains pending re-queue requests.
    fn drain(&mut self) -> Vec<Affected> {
        let mut seen = Vec::new();
        while let Ok(a) = self.poller.requeues.try_recv() {
            seen.push(a);
        }
        seen
    }

    /// Waits for `n` more successful polls.
    async fn polls(&self, n: u64) {
        let target = self.successful_polls() + n;
        let started = Instant::now();
        while self.successful_polls() < target {
            assert!(started.elapsed() < PATIENCE, "polls stalled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn only(names: &[&str]) -> Affected {
    Affected::pipelines(Kind::Metric, names.iter().copied())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_pipeline_whose_alerts_changed_is_requeued() {
    let mut bed = bed(&["a", "b"], &[]).await;
    bed.until("a", Status::True, "FlowHealthy").await;
    assert_eq!(
        bed.initial.first(),
        Some(&Affected::everyone()),
        "the first poll re-queues everyone"
    );
    assert_eq!(bed.judge("b").unwrap().status, Status::True);

    // The gateway of "a" loses everything: only "a" is re-queued, and it gets
    // the most severe reason once the window holds no successful sends.
    bed.collector
        .set_flow(Component::Gateway, "a", Flow::AllDropped);
    let seen = bed
        .until("a", Status::False, "GatewayAllTelemetryDataDropped")
        .await;
    assert!(!seen.is_empty(), "the change was re-queued");
    assert!(
        seen.iter().all(|a| *a == only(&["a"])),
        "only a re-queued: {seen:?}"
    );
    let b = bed.judge("b").unwrap();
    assert_eq!((b.status, b.reason), (Status::True, "FlowHealthy"));

    // Mended: "a" is healthy again, and again only "a" was touched.
    bed.collector
        .set_flow(Component::Gateway, "a", Flow::Healthy);
    let seen = bed.until("a", Status::True, "FlowHealthy").await;
    assert!(
        seen.iter().all(|a| *a == only(&["a"])),
        "only a re-queued: {seen:?}"
    );

    // Nothing changes any more: a run of polls re-queues nobody. The first
    // polls wait out the rate window so no alert is still settling.
    bed.polls(6).await;
    bed.drain();
    bed.polls(8).await;
    assert_eq!(
        bed.drain(),
        Vec::<Affected>::new(),
        "unchanged polls re-queue nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasons_follow_the_flow_and_unscoped_alerts_requeue_all() {
    let mut bed = bed(&["a", "b"], &[]).await;
    bed.until("b", Status::True, "FlowHealthy").await;

    bed.collector
        .set_flow(Component::Agent, "b", Flow::SomeDropped);
    let seen = bed
        .until("b", Status::False, "AgentSomeTelemetryDataDropped")
        .await;
    assert!(seen.iter().all(|a| *a == only(&["b"])), "{seen:?}");

    // Throttling has no pipeline_name: every MetricPipeline is re-queued
    // (and no other kind's), and it outranks the agent's problem on "b".
    bed.collector.set_throttling(true);
    let seen = bed.until("a", Status::False, "GatewayThrottling").await;
    assert!(seen.contains(&Affected::all_of(Kind::Metric)), "{seen:?}");
    bed.until("b", Status::False, "GatewayThrottling").await;

    bed.collector.set_throttling(false);
    bed.collector.set_flow(Component::Agent, "b", Flow::Healthy);
    bed.until("a", Status::True, "FlowHealthy").await;
    bed.until("b", Status::True, "FlowHealthy").await;
}

/// One poll serves every kind, and an alert of one kind re-queues only
/// pipelines of that kind: a trace pipeline's and then a log pipeline's
/// problem never touch the MetricPipeline of the same name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_of_one_kind_requeues_only_that_kind() {
    let mut bed = bed(&["shared"], &[]).await;
    bed.collector.add_pipeline_of(PipelineKind::Trace, "shared");
    bed.collector.add_pipeline_of(PipelineKind::Log, "shared");
    let trace = PipelineFacts::new(Kind::Trace, "shared");
    let log = PipelineFacts {
        log: LogSpec {
            otlp_output: true,
            runtime_input: true,
            otlp_input: true,
        },
        ..PipelineFacts::new(Kind::Log, "shared")
    };
    bed.until("shared", Status::True, "FlowHealthy").await;
    bed.polls(2).await;
    bed.drain();

    type Case<'a> = (PipelineKind, Component, Kind, PipelineFacts<'a>, &'a str);
    let cases: [Case; 2] = [
        (
            PipelineKind::Trace,
            Component::Gateway,
            Kind::Trace,
            trace,
            "GatewayAllTelemetryDataDropped",
        ),
        (
            PipelineKind::Log,
            Component::Agent,
            Kind::Log,
            log,
            "AgentAllTelemetryDataDropped",
        ),
    ];
    for (pipeline_kind, component, kind, facts, reason) in cases {
        bed.collector
            .set_flow_of(pipeline_kind, component, "shared", Flow::AllDropped);
        let mut seen = bed.until_as(facts, reason).await;
        bed.collector
            .set_flow_of(pipeline_kind, component, "shared", Flow::Healthy);
        seen.extend(bed.until_as(facts, "FlowHealthy").await);
        let only_this_kind = Affected::pipelines(kind, ["shared"]);
        assert!(
            !seen.is_empty() && seen.iter().all(|a| *a == only_this_kind),
            "{kind}: {seen:?}"
        );
        assert_eq!(bed.judge("shared").unwrap().reason, "FlowHealthy", "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_prometheus_turns_pipelines_unknown_until_it_returns() {
    let mut bed = bed(&["a"], &[]).await;
    bed.until("a", Status::True, "FlowHealthy").await;
    bed.drain();

    bed.prometheus.kill().await;
    let seen = bed
        .until("a", Status::Unknown, "GatewayProbingFailed")
        .await;
    assert!(
        seen.contains(&Affected::everyone()),
        "staleness re-queues everyone: {seen:?}"
    );
    let message = bed.judge("a").unwrap().message;
    assert!(message.contains("connect"), "the cause is named: {message}");

    bed.prometheus.restart().await.expect("prometheus restarts");
    let seen = bed.until("a", Status::True, "FlowHealthy").await;
    assert!(
        seen.contains(&Affected::everyone()),
        "recovery re-queues everyone: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_locked_polls_follow_the_evaluations() {
    phase_locked_polls_follow_the_evaluations_from("alerts").await;
}

/// Phase locking reads the timing from `/api/v1/rules` whichever source
/// gives the alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_locked_polls_of_the_alerts_series_follow_the_evaluations() {
    phase_locked_polls_follow_the_evaluations_from("query").await;
}

async fn phase_locked_polls_follow_the_evaluations_from(source: &str) {
    let mut bed = bed(
        &["a", "b"],
        &[
            ("phaseLock", "true"),
            ("minInterval", "200ms"),
            ("maxInterval", "300ms"),
            ("alertSource", source),
        ],
    )
    .await;
    // Unlocked, this schedule would poll three times per evaluation.
    bed.until("a", Status::True, "FlowHealthy").await;
    // Stable: at most one poll per evaluation, whatever minInterval says.
    // Counted in the evaluations Prometheus reports, not in wall time. The
    // first timing reading may come before the first evaluation and is
    // taken again 5 s later, so six evaluations pass first.
    let start = bed.evaluations().await;
    bed.until_evaluations(start + 6.0).await;
    let (before, evaluated) = (bed.successful_polls(), bed.evaluations().await);
    bed.until_evaluations(evaluated + 8.0).await;
    let polls = bed.successful_polls() - before;
    let evaluations = bed.evaluations().await - evaluated;
    assert!(
        polls as f64 <= evaluations + 1.0,
        "{polls} polls over {evaluations} evaluations"
    );
    assert!(polls >= 3, "still polling: {polls}");
    assert!(
        bed.poller.metrics.rule_timing_reads.get() >= 1,
        "the timing was read"
    );

    // Changes are still seen, and only the changed pipeline is re-queued.
    bed.drain();
    bed.collector
        .set_flow(Component::Gateway, "a", Flow::AllDropped);
    let seen = bed
        .until("a", Status::False, "GatewayAllTelemetryDataDropped")
        .await;
    assert!(seen.iter().all(|a| *a == only(&["a"])), "{seen:?}");
}

/// Waits until `check` holds; returns how long that took.
async fn until<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < PATIENCE, "never: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    started.elapsed()
}
