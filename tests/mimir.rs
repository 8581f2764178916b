//! Grafana Mimir as an alert source, end to end: a Prometheus scrapes the
//! collector stand-in and remote-writes to Mimir for tenant `team-a`, Mimir's
//! ruler evaluates the shipped rules (sped up) for that tenant, and the
//! poller reads them through Mimir's `/prometheus` API with an
//! `X-Scope-OrgID` header, by `/api/v1/alerts` and by the `ALERTS` query,
//! phase-locked on the ruler's `/api/v1/rules`. Another tenant sees none of
//! it, and a request without the header is refused.
//!
//! Mimir comes from `$MIMIR_BIN` or tests/mimir/build.sh (minutes on a cold
//! machine, then cached).

use std::process::Command;
use std::time::{Duration, Instant};

use alert_poller::domain::health::Status;
use alert_poller_testbed::collector::{Collector, Component, Flow};
use alert_poller_testbed::mimir::{self, Mimir};
use alert_poller_testbed::poller::{self, StandalonePoller, tuning};
use alert_poller_testbed::prometheus::{Prometheus, Setup};

/// Remote write, ingestion and the ruler's evaluation stand between a flow
/// change and the alert: more steps than with one Prometheus.
const PATIENCE: Duration = Duration::from_secs(90);
const HEALTHY: (Status, &str) = (Status::True, "FlowHealthy");
const BROKEN: (Status, &str) = (Status::False, "GatewayAllTelemetryDataDropped");

fn is(v: &Option<(Status, String)>, want: (Status, &str)) -> bool {
    v.as_ref().is_some_and(|(s, r)| *s == want.0 && r == want.1)
}

/// Waits until every poller judges `a` and `b` as given; on timeout, fails
/// with the verdicts, team-a's alerts as Mimir reports them and its log.
async fn until_judged(
    mimir: &Mimir,
    pollers: &[(&str, &StandalonePoller)],
    a: (Status, &str),
    b: (Status, &str),
) {
    let want = [("a", a.0, a.1), ("b", b.0, b.1)];
    if let Err(now) = poller::until_judged(pollers, &want, PATIENCE).await {
        let alerts = mimir.get(Some("team-a"), "api/v1/alerts").await;
        let log = mimir.log();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        panic!(
            "{now}\nteam-a's alerts: {alerts:?}\nMimir's log, newest first:\n{}",
            tail.join("\n")
        );
    }
}

/// A poller of Mimir as `tenant`, reading alerts from `source` (alerts or
/// query).
fn poller_of(mimir: &Mimir, tenant: &str, source: &str) -> StandalonePoller {
    StandalonePoller::start(tuning(&[
        ("prometheusUrl", &mimir.prometheus_url()),
        ("headers", &format!("X-Scope-OrgID: {tenant}")),
        ("alertSource", source),
        ("phaseLock", "true"),
        ("minInterval", "200ms"),
        ("maxInterval", "1s"),
        ("errorMaxInterval", "1s"),
        ("requestTimeout", "2s"),
        ("connectTimeout", "500ms"),
        ("staleAfter", "5s"),
    ]))
}

/// Mimir with the shipped rules (sped up) for `team-a`, and a Prometheus
/// that scrapes a collector with pipelines `a` and `b` and remote-writes to
/// Mimir for that tenant. The Prometheus evaluates nothing itself, so every
/// alert the pollers see comes from Mimir's ruler.
async fn bed() -> (Mimir, Collector, Prometheus) {
    let mimir = Mimir::start()
        .await
        .unwrap_or_else(|e| panic!("Mimir starts: {e}"));
    let collector = Collector::start(&["a", "b"]).await.unwrap();
    let fast = Setup::fast(collector.addr());
    let prometheus = Prometheus::start(&Setup {
        rules: "groups: []\n".into(),
        ..fast.clone()
    })
    .await
    .unwrap();
    mimir::remote_write_to(&prometheus, &mimir, "team-a")
        .await
        .unwrap();
    mimir
        .set_rules("team-a", "telemetry", &fast.rules)
        .await
        .unwrap_or_else(|e| panic!("{e}\nMimir's log:\n{}", mimir.log()));
    (mimir, collector, prometheus)
}

/// Without the tenant header Mimir answers 401, and `check` says so in
/// one line; with it, `check` sees what the pollers see: `a` broken.
fn assert_check_needs_the_tenant(mimir: &Mimir) {
    let check = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_alert-poller"))
            .args(["check", "--pipeline", "a", "--prometheus-url"])
            .arg(mimir.prometheus_url())
            .args(extra)
            .output()
            .expect("the binary runs")
    };
    let out = check(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{:?}: {stderr}", out.status);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("401"), "names the status: {stderr}");
    eprintln!("check without a tenant: {}", stderr.trim_end());
    let out = check(&["--header", "X-Scope-OrgID: team-a", "-o", "json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(BROKEN.1), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_judges_what_mimirs_ruler_evaluates_for_its_tenant() {
    let started = Instant::now();
    let (mimir, collector, _prometheus) = bed().await;
    let ready = started.elapsed();

    let by_alerts = poller_of(&mimir, "team-a", "alerts");
    let by_query = poller_of(&mimir, "team-a", "query");
    let pollers = [("alerts", &by_alerts), ("ALERTS", &by_query)];
    until_judged(&mimir, &pollers, HEALTHY, HEALTHY).await;
    let healthy = started.elapsed();
    collector.set_flow(Component::Gateway, "a", Flow::AllDropped);
    until_judged(&mimir, &pollers, BROKEN, HEALTHY).await;
    let broken = started.elapsed();
    collector.set_flow(Component::Gateway, "a", Flow::Healthy);
    until_judged(&mimir, &pollers, HEALTHY, HEALTHY).await;
    let mended = started.elapsed();

    // Tenant team-b has neither series nor rules: while a is broken for
    // team-a, a poller of team-b judges it healthy, poll after poll.
    let other = poller_of(&mimir, "team-b", "alerts");
    collector.set_flow(Component::Gateway, "a", Flow::AllDropped);
    until_judged(&mimir, &pollers, BROKEN, HEALTHY).await;
    let polls = other.polls("success");
    let since = Instant::now();
    while other.polls("success") < polls + 2 {
        assert!(since.elapsed() < Duration::from_secs(10), "team-b polls");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(is(&other.verdict("a"), HEALTHY), "{:?}", other.verdict("a"));
    assert!(is(&by_alerts.verdict("a"), BROKEN), "team-a still broken");

    assert_check_needs_the_tenant(&mimir);

    eprintln!(
        "Mimir ready with rules after {ready:?}; healthy {healthy:?}, broken {broken:?}, mended {mended:?}; done after {:?}",
        started.elapsed()
    );
}
