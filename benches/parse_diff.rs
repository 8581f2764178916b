//! What one poll costs in CPU, next to the cheapest possible reading of the
//! same answer: a `serde_json` pass that builds nothing (`IgnoredAny`). A
//! poll can never beat that pass, so the ratio says how much of its time is
//! our own work (keeping label sets, building the snapshot, diffing).
//!
//! Run: `cargo bench --bench parse_diff` (optionally `-- 50000` for another
//! alert count). Three answers, each with the poll's own figures and the
//! ratio to the scan of the same body:
//!
//! - `ours`: `/api/v1/alerts` where nearly every alert is of our kinds,
//!   spread over 1000 pipelines (the worst case for our own work);
//! - `unrelated`: `/api/v1/alerts` with the same number of other teams'
//!   alerts and 20 of ours (what a shared cluster looks like);
//! - `series`: the `ALERTS` query answer of the same cluster, which holds
//!   only our 20 alerts, its ratio taken to the `unrelated` scan (the
//!   answer it replaces).
//!
//! The issue's goals, measured here and not in a timed test: `ours` at most
//! 5x its scan, `unrelated` at most 2x.

use std::time::{Duration, Instant};

use alert_poller::domain::alerts::{Matcher, Snapshot};
use alert_poller::prometheus::{DecodeError, Decoded, Keep, decode_alert_series, decode_alerts};
use serde::de::IgnoredAny;

const RULES: [&str; 5] = [
    "MetricGatewayAllDataDropped",
    "MetricGatewaySomeDataDropped",
    "MetricAgentSomeDataDropped",
    "TraceGatewayThrottling",
    "LogAgentAllDataDropped",
];

/// One `/api/v1/alerts` entry, shaped as Prometheus writes it.
fn alert(name: &str, pipeline: usize, pod: usize, generation: usize, state: &str) -> String {
    format!(
        r#"{{"labels":{{"alertname":"{name}","namespace":"kyma-system","pipeline_name":"pipeline-{pipeline}","pod":"gw-{pod}-{generation}","severity":"critical"}},"annotations":{{"summary":"Something about pipeline {pipeline}","description":"A longer text that explains what the alert means and what to do about it."}},"state":"{state}","activeAt":"2026-11-27T10:00:00.123456789Z","value":"{}e+00"}}"#,
        pod % 7
    )
}

/// Another team's alert: labels and annotations of a typical size.
fn unrelated(i: usize) -> String {
    format!(
        r#"{{"labels":{{"alertname":"KubePodNotReady","namespace":"team-{}","pod":"app-{i}","severity":"warning","container":"main"}},"annotations":{{"summary":"Pod app-{i} is not ready","runbook_url":"https://runbooks.example/KubePodNotReady"}},"state":"firing","activeAt":"2026-11-27T10:00:00.123456789Z","value":"1e+00"}}"#,
        i % 50
    )
}

fn alerts_body(entries: impl Iterator<Item = String>) -> Vec<u8> {
    let entries: Vec<String> = entries.collect();
    format!(
        r#"{{"status":"success","data":{{"alerts":[{}]}}}}"#,
        entries.join(",")
    )
    .into_bytes()
}

/// `n` alerts nearly all of our kinds; a tenth pending; `shift` changes the
/// identity of 1% of them, as a poll after a change would see.
fn ours(n: usize, shift: usize) -> Vec<u8> {
    alerts_body((0..n).map(|i| {
        let generation = if i % 100 == 0 { shift } else { 0 };
        let state = if i % 10 == 7 { "pending" } else { "firing" };
        alert(RULES[i % RULES.len()], i % 1000, i, generation, state)
    }))
}

/// `n` unrelated alerts and 20 of ours, one of which `shift` changes.
fn mixed(n: usize, shift: usize) -> Vec<u8> {
    alerts_body((0..n).map(unrelated).chain((0..20).map(|i| {
        alert(
            RULES[i % RULES.len()],
            i,
            i,
            shift * usize::from(i == 0),
            "firing",
        )
    })))
}

/// The `ALERTS` answer of the same cluster: our 20 alerts only.
fn series(shift: usize) -> Vec<u8> {
    let samples: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"metric":{{"__name__":"ALERTS","alertname":"{}","alertstate":"firing","namespace":"kyma-system","pipeline_name":"pipeline-{i}","pod":"gw-{i}-{}","severity":"critical"}},"value":[1795989643.407,"1"]}}"#,
                RULES[i % RULES.len()],
                shift * usize::from(i == 0)
            )
        })
        .collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        samples.join(",")
    )
    .into_bytes()
}

/// Median and p90 of `runs` timings of `f`.
fn measure(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[runs * 9 / 10])
}

fn scan(body: &[u8]) {
    std::hint::black_box(serde_json::from_slice::<IgnoredAny>(body).unwrap());
}

type Decoder = fn(&[u8], Keep<'_>) -> Result<Decoded, DecodeError>;

/// One whole poll: decode what our matchers take, build the snapshot, diff.
fn poll(decoder: Decoder, body: &[u8], matchers: &[Matcher], previous: &Snapshot) -> Snapshot {
    let keep = |name: &str| matchers.iter().any(|m| m.takes_name(name));
    let next = Snapshot::from_alerts(decoder(body, &keep).unwrap().alerts, matchers);
    std::hint::black_box(next.diff(previous));
    next
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let runs = 30;
    let matchers = Matcher::all();
    let unrelated_body = mixed(n, 1);
    println!("alerts: {n}, runs: {runs}; p50 and p90 per poll");
    for (label, decoder, before, after, baseline) in [
        (
            "ours",
            decode_alerts as Decoder,
            ours(n, 0),
            ours(n, 1),
            None,
        ),
        ("unrelated", decode_alerts, mixed(n, 0), mixed(n, 1), None),
        (
            "series",
            decode_alert_series,
            series(0),
            series(1),
            Some(&unrelated_body),
        ),
    ] {
        let previous = poll(decoder, &before, &matchers, &Snapshot::default());
        let (scan50, _) = measure(runs, || scan(baseline.unwrap_or(&after)));
        let (p50, p90) = measure(runs, || {
            poll(decoder, &after, &matchers, &previous);
        });
        // Where the time goes: the decoder alone, and the diff alone; the
        // snapshot is the rest.
        let keep = |name: &str| matchers.iter().any(|m| m.takes_name(name));
        let (decode50, _) = measure(runs, || {
            std::hint::black_box(decoder(&after, &keep).unwrap());
        });
        let next = poll(decoder, &after, &matchers, &previous);
        let (diff50, _) = measure(runs, || {
            std::hint::black_box(next.diff(&previous));
        });
        let diff = next.diff(&previous);
        println!(
            "{label:<10} body {:>8.1} KiB  scan p50 {scan50:>9.2?}  poll p50 {p50:>9.2?} p90 {p90:>9.2?}  \
             poll/scan {:>5.2}\n{:<10} of the poll's p50: decode {decode50:>9.2?}, diff {diff50:>9.2?}  \
             (firing {}, pending {}, +{} -{})",
            after.len() as f64 / 1024.0,
            p50.as_secs_f64() / scan50.as_secs_f64(),
            "",
            next.firing(),
            next.pending(),
            diff.added,
            diff.removed
        );
    }
}
