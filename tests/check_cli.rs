//! `alert-poller check` as a user runs it: the real binary against a real
//! Prometheus, and against addresses where no Prometheus answers.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Collector, Component, Flow, PipelineKind};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use alert_poller_testbed::rules;
use serde_json::Value;

fn check(url: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alert-poller"))
        .args([
            "check",
            "--prometheus-url",
            url,
            "--request-timeout",
            "2s",
            "--connect-timeout",
            "1s",
        ])
        .args(extra)
        .output()
        .expect("the binary runs")
}

fn assert_one_line_error(out: &Output, url_part: &str, cause: &str) {
    assert!(!out.status.success(), "exit status {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("error: cannot ask Prometheus at "),
        "{stderr}"
    );
    assert!(stderr.contains(url_part), "names the URL: {stderr}");
    assert!(
        stderr.contains(cause),
        "names the cause ({cause}): {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

/// A collector with pipelines `a` and `b`, scraped by a Prometheus whose
/// rules have short windows, so that a drop fires within seconds.
async fn bed() -> (Collector, Prometheus) {
    let collector = Collector::start(&["a", "b"]).await.unwrap();
    let prometheus = Prometheus::start(&Setup {
        rules: rules::fast(
            Duration::from_secs(3),
            Duration::ZERO,
            Duration::from_secs(1),
        ),
        collector: Some(collector.addr()),
        ..Setup::default()
    })
    .await
    .unwrap();
    (collector, prometheus)
}

/// The JSON reports of `a` and `b` from the first `check` that sees `a`
/// dropping data: the alert takes a few evaluations to fire.
async fn reports_once_a_drops(url: &str) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let out = check(url, &["--pipeline", "a", "--pipeline", "b", "-o", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reports: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
        if reports[0]["reason"] == "GatewayAllTelemetryDataDropped" {
            break reports;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "a never dropped: {reports:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_prints_the_condition_each_pipeline_would_get() {
    let (collector, prometheus) = bed().await;
    collector.set_flow(Component::Gateway, "a", Flow::AllDropped);

    let reports = reports_once_a_drops(&prometheus.url()).await;
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["pipeline"], "a");
    assert_eq!(reports[0]["status"], "False");
    assert_eq!(reports[1]["pipeline"], "b");
    assert_eq!(reports[1]["status"], "True");
    assert_eq!(reports[1]["reason"], "FlowHealthy");
    for r in &reports {
        let keys: Vec<_> = r.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["kind", "message", "pipeline", "reason", "status"]);
        assert_eq!(r["kind"], "metric");
    }

    let table = check(&prometheus.url(), &["--pipeline", "b"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.starts_with("KIND    PIPELINE") && text.contains("FlowHealthy"),
        "{text}"
    );

    // For scripts: exit 3 when asked to and something is unhealthy, and
    // YAML that says the same as JSON.
    let strict = ["--pipeline", "a", "--pipeline", "b", "--fail-on-unhealthy"];
    let unhealthy = check(&prometheus.url(), &strict);
    assert_eq!(unhealthy.status.code(), Some(3), "{unhealthy:?}");
    assert!(String::from_utf8_lossy(&unhealthy.stdout).contains("GatewayAllTelemetryDataDropped"));
    let healthy_only = check(
        &prometheus.url(),
        &["--pipeline", "b", "--fail-on-unhealthy"],
    );
    assert_eq!(healthy_only.status.code(), Some(0), "{healthy_only:?}");
    let yaml = check(
        &prometheus.url(),
        &["--pipeline", "a", "--pipeline", "b", "-o", "yaml"],
    );
    let yaml: Value = serde_norway::from_slice(&yaml.stdout).expect("YAML");
    assert_eq!(yaml[0]["reason"], reports[0]["reason"]);
    assert_eq!(yaml[1]["reason"], "FlowHealthy");
}

/// `--kind` and the log flags choose whose verdict is printed: Fluent Bit's
/// buffer alert on "logs" shows for `--kind log --log-output fluentbit`
/// only, never for an OTLP LogPipeline or for other kinds of the same name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_judges_the_kind_it_is_asked_for() {
    let collector = Collector::start(&["logs"]).await.unwrap();
    collector.add_pipeline_of(PipelineKind::Log, "logs");
    let prometheus = Prometheus::start(&Setup::fast(collector.addr()))
        .await
        .unwrap();
    collector.set_flow_of(
        PipelineKind::Log,
        Component::FluentBit,
        "logs",
        Flow::BufferFull,
    );
    let reason = |extra: &[&str]| -> String {
        let mut args = vec!["--pipeline", "logs", "-o", "json"];
        args.extend_from_slice(extra);
        let out = check(&prometheus.url(), &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reports: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
        reports[0]["reason"].as_str().unwrap().to_owned()
    };
    let fluent_bit = ["--kind", "log", "--log-output", "fluentbit"];
    let started = Instant::now();
    while reason(&fluent_bit) != "AgentBufferFillingUp" {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the buffer alert never fired"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        reason(&["--kind", "log", "--log-output", "otlp"]),
        "FlowHealthy"
    );
    assert_eq!(reason(&["--kind", "trace"]), "FlowHealthy");
    assert_eq!(reason(&[]), "FlowHealthy", "metric by default");
}

#[test]
fn check_names_url_and_cause_when_nobody_answers() {
    let port = alert_poller_testbed::free_port();
    let url = format!("http://127.0.0.1:{port}");
    assert_one_line_error(&check(&url, &["--pipeline", "a"]), &url, "connect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_url_and_cause_when_the_answer_is_not_prometheus() {
    // The collector answers, but not with Prometheus' API.
    let collector = Collector::start(&[]).await.unwrap();
    let url = format!("http://{}", collector.addr());
    let out = tokio::task::spawn_blocking(move || check(&url, &["--pipeline", "a", "-o", "json"]))
        .await
        .unwrap();
    assert_one_line_error(&out, &collector.addr().to_string(), "404");
}

#[test]
fn check_refuses_a_bad_url_before_asking() {
    let out = check("ftp://example", &["--pipeline", "a"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("prometheusUrl") && stderr.contains("ftp://example"),
        "{stderr}"
    );
}
