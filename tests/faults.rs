//! Prometheus misbehaving in ways the real one cannot be made to: each bad
//! answer must become a clear error of its own class, never a panic, never a
//! memory spike, and the poller must back off and turn pipelines Unknown.
//! (Prometheus killed and restarted is in tests/poller_prometheus.rs, with the
//! real Prometheus.)

use std::time::{Duration, Instant};

use alert_poller::config::Tuning;
use alert_poller::domain::alerts::Affected;
use alert_poller::domain::health::Knowledge;
use alert_poller::prometheus::{ClientSettings, PollError, PrometheusClient};
use alert_poller_testbed::TempDir;
use alert_poller_testbed::fake_prometheus::{Answer, FakePrometheus};
use alert_poller_testbed::poller::{self, StandalonePoller};

fn tuning(url: &str, extra: &[(&str, &str)]) -> Tuning {
    let mut settings = vec![
        ("prometheusUrl", url),
        ("requestTimeout", "500ms"),
        ("connectTimeout", "200ms"),
        ("maxResponseBytes", "1Mi"),
    ];
    settings.extend_from_slice(extra);
    poller::tuning(&settings)
}

fn client(t: &Tuning) -> PrometheusClient {
    PrometheusClient::new(ClientSettings::first(t)).expect("client builds")
}

fn raw(status: u16, content_type: &'static str, body: &str, retry_after: Option<u64>) -> Answer {
    Answer::Raw {
        status,
        content_type,
        body: body.as_bytes().to_vec(),
        retry_after,
    }
}

/// Each bad answer, the class of error it must give and a text its message
/// must hold.
// Unformatted so the cases stay one per line.
#[rustfmt::skip]
fn bad_answers() -> Vec<(&'static str, Answer, &'static str, &'static str)> {
    let prometheus_error = r#"{"status":"error","errorType":"internal","error":"boom"}"#;
    let truncated = r#"{"status":"success","data":{"alerts":[{"labels":{"alertname":"Metr"#;
    let unlabelled = r#"{"state":"firing","activeAt":"2026-11-27T10:00:00Z","value":"1"}"#;
    let error_with_200 = r#"{"status":"error","errorType":"bad_data","error":"nope"}"#;
    vec![
        ("500 with a Prometheus error", raw(500, "application/json", prometheus_error, None), "http_status", "boom"),
        ("500 from a proxy", raw(500, "text/plain", "oops", None), "http_status", "500"),
        ("503 with Retry-After", raw(503, "text/plain", "busy", Some(7)), "retry_later", "after 7s"),
        ("429 with Retry-After", raw(429, "application/json", "{}", Some(3)), "retry_later", "429"),
        ("an HTML page", raw(200, "text/html", "<html></html>", None), "content_type", "text/html"),
        ("no content type", raw(200, "", "{}", None), "content_type", "not JSON"),
        ("non-JSON", Answer::Json("alerts: none".into()), "decode", "not a valid alerts response"),
        ("truncated JSON", Answer::Json(truncated.into()), "decode", "EOF"),
        ("an alert without labels", Answer::alerts(unlabelled), "decode", "missing field"),
        ("an error envelope with 200", Answer::Json(error_with_200.into()), "prometheus_error", "nope"),
        ("a 100 MB body", Answer::Huge { bytes: 100 << 20 }, "too_large", "1048576 bytes"),
        ("a hung answer", Answer::Slow(Duration::from_secs(3), "{}".into()), "timeout", "500ms"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_answer_is_a_clear_error_of_its_own_class() {
    let fake = FakePrometheus::start(Answer::NoAlerts).await.unwrap();
    let c = client(&tuning(&fake.url(), &[]));
    for (what, answer, kind, text) in bad_answers() {
        fake.set(answer);
        let started = Instant::now();
        let error: PollError = c.alerts().await.expect_err(what);
        assert_eq!(error.kind(), kind, "{what}: {error}");
        let message = error.to_string();
        assert!(message.contains(text), "{what}: {message:?} lacks {text:?}");
        assert!(!message.contains('\n'), "{what}: one line: {message:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{what} took {:?}",
            started.elapsed()
        );
        if kind == "retry_later" {
            assert!(error.retry_after().is_some(), "{what}: Retry-After is read");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_token_is_sent_and_never_shown() {
    let fake = FakePrometheus::start(Answer::NoAlerts).await.unwrap();
    let dir = TempDir::new("token").unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cr3t-token\n").unwrap();
    let path = token_file.display().to_string();
    let c = client(&tuning(&fake.url(), &[("bearerTokenFile", &path)]));

    c.alerts().await.expect("a good answer");
    let seen = fake.seen();
    assert_eq!(
        seen.last().unwrap().authorization.as_deref(),
        Some("Bearer s3cr3t-token")
    );
    assert_eq!(seen.last().unwrap().path, "/api/v1/alerts");
    // The default source, the ALERTS query, with the same token.
    c.alerts_of_ours(None).await.expect("a good answer");
    let seen = fake.seen();
    assert_eq!(seen.last().unwrap().path, "/api/v1/query");
    assert_eq!(
        seen.last().unwrap().authorization.as_deref(),
        Some("Bearer s3cr3t-token")
    );
    assert!(
        seen.last()
            .unwrap()
            .accept_encoding
            .as_deref()
            .unwrap_or_default()
            .contains("gzip"),
        "compressed answers are asked for"
    );

    for answer in [
        raw(500, "text/plain", "x", None),
        Answer::Json("{".into()),
        raw(401, "application/json", "{}", None),
    ] {
        fake.set(answer);
        let message = c.alerts().await.unwrap_err().to_string();
        assert!(!message.contains("s3cr3t"), "token leaked: {message}");
    }

    // The file is read at every poll: a rotated token is used at once, and a
    // missing file is an error naming the file, not its content.
    std::fs::write(&token_file, "rotated-token").unwrap();
    fake.set(Answer::NoAlerts);
    c.alerts().await.unwrap();
    assert_eq!(
        fake.seen().last().unwrap().authorization.as_deref(),
        Some("Bearer rotated-token")
    );
    std::fs::remove_file(&token_file).unwrap();
    let error = c.alerts().await.unwrap_err();
    assert_eq!(error.kind(), "credential_file");
    assert!(error.to_string().contains(&path));
}

/// What 2.5 s of failure asked of `fake`: polls, a handful, and the rule
/// timing the default source also reads, once, not again at every failed
/// poll (that would double the requests to a Prometheus in trouble).
fn assert_polls_and_one_rule_timing_read(fake: &FakePrometheus) {
    let seen = fake.seen();
    let polls = seen.iter().filter(|s| s.path == "/api/v1/query").count();
    let timing_reads = seen.iter().filter(|s| s.path == "/api/v1/rules").count();
    assert_eq!(polls + timing_reads, seen.len(), "only these two are asked");
    assert!(
        (4..=20).contains(&polls),
        "{polls} polls in 2.5 s of failure"
    );
    assert_eq!(timing_reads, 1, "rule timing reads while failing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_prometheus_is_backed_off_and_pipelines_turn_unknown() {
    let fake = FakePrometheus::start(raw(500, "text/plain", "down", None))
        .await
        .unwrap();
    let t = tuning(
        &fake.url(),
        &[
            ("minInterval", "100ms"),
            ("maxInterval", "200ms"),
            ("errorMaxInterval", "400ms"),
            ("staleAfter", "1500ms"),
        ],
    );
    let mut poller = StandalonePoller::start(t);
    let (view, requeues, metrics) = (&poller.view, &mut poller.requeues, &poller.metrics);
    // While failing: every scheduled delay stays within errorMaxInterval, and
    // after staleAfter the view turns stale and everyone is re-queued.
    let started = Instant::now();
    let mut longest = 0.0f64;
    while started.elapsed() < Duration::from_millis(2500) {
        longest = longest.max(metrics.poll_interval.get());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        longest <= 0.4,
        "a delay of {longest}s is above errorMaxInterval"
    );
    assert!(longest >= 0.2, "the backoff grew: {longest}s");
    assert_polls_and_one_rule_timing_read(&fake);
    assert!(
        matches!(
            view.borrow().knowledge(),
            Knowledge::Stale {
                cause: "http_status"
            }
        ),
        "stale with the error class"
    );
    let mut all = false;
    while let Ok(a) = requeues.try_recv() {
        all |= a == Affected::everyone();
    }
    assert!(all, "going stale re-queues everyone");

    // Back to normal: the next poll makes the view fresh again.
    fake.set(Answer::NoAlerts);
    let started = Instant::now();
    while !matches!(view.borrow().knowledge(), Knowledge::Fresh(_)) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(poller);
}
