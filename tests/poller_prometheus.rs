//! The poller against a real Prometheus (Debian's package), evaluating the
//! shipped alert rules (sped up) over a fake collector whose flows we break
//! and mend. No Kubernetes here: the test reads what the poller re-queues and
//! judges each pipeline from the poller's view, exactly as a reconcile does.

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

/// The two alert sources, asked back to back through a fire and a resolve
/// of alerts of every kind, with other teams' alerts firing beside them:
/// the `ALERTS` query gives the very alerts `/api/v1/alerts` gives (same
/// label sets, same states, so the same verdicts), without the others.
/// Each query answer is bracketed by two `/api/v1/alerts` answers; when
/// those two agree, no evaluation changed anything in between and the query
/// must agree with them. When they differ, an evaluation ran meanwhile, and
/// as a group's rules are evaluated one after the other, an answer in the
/// middle may rightly hold some rules' new state and others' old one (seen
/// on Prometheus 3.12); those rounds are not compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_alert_sources_agree_through_a_fire_and_a_resolve() {
    use alert_poller::domain::alerts::{Matcher, Snapshot};
    use alert_poller::prometheus::{ClientSettings, PrometheusClient};
    use alert_poller_testbed::rules;

    let collector = Collector::start(&["m"]).await.expect("collector starts");
    collector.add_pipeline_of(PipelineKind::Trace, "t");
    collector.add_pipeline_of(PipelineKind::Log, "l");
    collector.set_noise(30);
    let second = Duration::from_secs(1);
    let prometheus = Prometheus::start(&Setup {
        rules: rules::with_noise(&rules::fast(second * 3, second, second)),
        ..Setup::fast(collector.addr())
    })
    .await
    .expect("prometheus starts");
    prometheus
        .until_noise(30, PATIENCE)
        .await
        .expect("the unrelated alerts fire");
    let url = prometheus.url();
    let client = |source: &str| {
        PrometheusClient::new(ClientSettings::first(&tuning(&[
            ("prometheusUrl", url.as_str()),
            ("alertSource", source),
        ])))
        .expect("client builds")
    };
    let (alerts, query) = (client("alerts"), client("query"));
    let matchers = Matcher::all();
    let snapshot = |answer: Vec<_>| Snapshot::from_alerts(answer, &matchers);

    // Break the trace pipeline's gateway and the metric agent (scoped
    // alerts) and throttle the log gateway (an unscoped one), then mend all.
    let kinds = [
        (Kind::Trace, "t", "GatewayAllTelemetryDataDropped"),
        (Kind::Metric, "m", "AgentAllTelemetryDataDropped"),
        (Kind::Log, "l", "GatewayThrottling"),
    ];
    let log = LogSpec {
        otlp_output: true,
        runtime_input: true,
        otlp_input: true,
    };
    let facts = |kind: Kind, name: &'static str| PipelineFacts {
        log,
        ..PipelineFacts::new(kind, name)
    };
    let mut seen_firing = [false; 3];
    let mut seen_resolved = [false; 3];
    let mut compared = 0;
    let (mut alerts_bytes, mut query_bytes) = (0, 0);
    let started = Instant::now();
    let mut broken = false;
    let mut mended = false;
    while !(mended && seen_resolved.iter().all(|s| *s)) {
        assert!(
            started.elapsed() < PATIENCE * 2,
            "not every fire and resolve was seen: fired {seen_firing:?}, resolved {seen_resolved:?}"
        );
        if !broken {
            collector.set_flow_of(
                PipelineKind::Trace,
                Component::Gateway,
                "t",
                Flow::AllDropped,
            );
            collector.set_flow_of(
                PipelineKind::Metric,
                Component::Agent,
                "m",
                Flow::AllDropped,
            );
            collector.set_throttling_of(PipelineKind::Log, true);
            broken = true;
        } else if !mended && seen_firing.iter().all(|s| *s) {
            collector.set_flow_of(PipelineKind::Trace, Component::Gateway, "t", Flow::Healthy);
            collector.set_flow_of(PipelineKind::Metric, Component::Agent, "m", Flow::Healthy);
            collector.set_throttling_of(PipelineKind::Log, false);
            mended = true;
        }
        let before = alerts.alerts_of_ours(None).await.expect("alerts answer");
        let series = query.alerts_of_ours(None).await.expect("query answers");
        let after = alerts.alerts_of_ours(None).await.expect("alerts answer");
        alerts_bytes = before.bytes;
        query_bytes = series.bytes;
        let (before, series, after) = (
            snapshot(before.alerts),
            snapshot(series.alerts),
            snapshot(after.alerts),
        );
        if before != after {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(
            series, before,
            "the query's alerts differ from /api/v1/alerts' on both sides of it"
        );
        compared += 1;
        for (i, (kind, name, reason)) in kinds.into_iter().enumerate() {
            let verdict = health::evaluate(facts(kind, name), health::Knowledge::Fresh(&series))
                .expect("fresh knowledge gives a verdict");
            if verdict.reason == reason {
                seen_firing[i] = true;
            } else if mended && seen_firing[i] && verdict.status == Status::True {
                seen_resolved[i] = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let everything = alerts.alerts().await.expect("alerts answer");
    assert!(
        everything
            .alerts
            .iter()
            .any(|a| a.labels.get("alertname") == Some("NoiseAlert")),
        "the unrelated alerts are there to be filtered"
    );
    assert!(
        query_bytes * 2 < alerts_bytes,
        "the query answer ({query_bytes} B) should be far smaller than /api/v1/alerts ({alerts_bytes} B)"
    );
    println!(
        "    {compared} bracketed comparisons; answers {query_bytes} B (query) vs {alerts_bytes} B (alerts)"
    );
}

/// An alert that stops firing while Prometheus is down gets no stale
/// marker, so after a restart its last `ALERTS` sample would answer a plain
/// query for the whole lookback delta. The poller's query bounds the sample
/// age by the rule groups' timing: the alert is gone within seconds, while
/// the unbounded query (the control) still shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_alert_does_not_linger_in_the_series_after_a_restart() {
    use alert_poller::domain::alerts::{AlertState, Matcher, Snapshot};
    use alert_poller::prometheus::{ClientSettings, PrometheusClient, series_max_age};

    let collector = Collector::start(&["a"]).await.expect("collector starts");
    let mut prometheus = Prometheus::start(&Setup::fast(collector.addr()))
        .await
        .expect("prometheus starts");
    let url = prometheus.url();
    let client = PrometheusClient::new(ClientSettings::first(&tuning(&[
        ("prometheusUrl", url.as_str()),
        ("alertSource", "query"),
    ])))
    .expect("client builds");
    let matchers = Matcher::all();
    let fires_for_a = |alerts: Vec<alert_poller::domain::alerts::ActiveAlert>| {
        let snapshot = Snapshot::from_alerts(
            alerts.into_iter().filter(|a| a.state == AlertState::Firing),
            &matchers,
        );
        snapshot.rules_for(Kind::Metric, "a").next().is_some()
    };
    collector.set_flow(Component::Gateway, "a", Flow::AllDropped);
    until("a fires", || async {
        client
            .alerts_of_ours(None)
            .await
            .is_ok_and(|r| fires_for_a(r.alerts))
    })
    .await;
    let bound = series_max_age(
        &client
            .rule_timings(&["Metric"])
            .await
            .expect("the rule timing reads")
            .0,
    )
    .expect("the group has been evaluated");

    // Down while the flow mends; up again with its data.
    prometheus.kill().await;
    collector.set_flow(Component::Gateway, "a", Flow::Healthy);
    prometheus.restart().await.expect("prometheus restarts");
    // The rules run again: /api/v1/alerts no longer has the alert.
    until("the alert resolves after the restart", || async {
        client.alerts().await.is_ok_and(|r| !fires_for_a(r.alerts))
    })
    .await;
    let took = until("the bounded query drops the alert", || async {
        client
            .alerts_of_ours(Some(bound))
            .await
            .is_ok_and(|r| !fires_for_a(r.alerts))
    })
    .await;
    assert!(
        took <= bound + Duration::from_secs(2),
        "the bounded query kept the alert {took:?} (bound {bound:?})"
    );
    let unbounded = client.alerts_of_ours(None).await.expect("query answers");
    assert!(
        fires_for_a(unbounded.alerts),
        "the control: the unbounded query no longer shows the old alert, so this test shows nothing"
    );
    println!(
        "    bound {bound:?}: gone from the bounded query after {took:?}; the unbounded one still shows it"
    );
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
