//! Cost of one poll's CPU work at scale: decoding an `/api/v1/alerts` body,
//! building the snapshot and diffing it against the previous one.
//!
//! Run: `cargo bench --bench parse_diff` (optionally `-- 50000` for another
//! alert count). Prints the median and p90 of repeated runs per stage.

use std::time::{Duration, Instant};

use alert_poller::alerts::{Matcher, Snapshot};
use alert_poller::prometheus::decode;

/// An alerts body like Prometheus' with `n` alerts: most of our kind spread
/// over 1000 pipelines, a fifth of another kind, a tenth pending. `shift`
/// changes the identity of 1% of them, as a poll after a change would see.
fn body(n: usize, shift: usize) -> Vec<u8> {
    let rules = [
        "MetricGatewayAllDataDropped",
        "MetricGatewaySomeDataDropped",
        "MetricAgentSomeDataDropped",
        "TraceGatewayThrottling",
        "LogAgentAllDataDropped",
    ];
    let mut out = String::from(r#"{"status":"success","data":{"alerts":["#);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        let generation = if i % 100 == 0 { shift } else { 0 };
        let state = if i % 10 == 7 { "pending" } else { "firing" };
        out.push_str(&format!(
            r#"{{"labels":{{"alertname":"{}","pipeline_name":"pipeline-{}","severity":"critical","pod":"gw-{}-{}","namespace":"kyma-system"}},"annotations":{{"summary":"Something about pipeline {}"}},"state":"{state}","activeAt":"2026-11-27T10:00:00.123456789Z","value":"{}e+00"}}"#,
            rules[i % rules.len()],
            i % 1000,
            i,
            generation,
            i % 1000,
            i % 7
        ));
    }
    out.push_str("]}}");
    out.into_bytes()
}

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

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let matcher = Matcher::all();
    let before = body(n, 0);
    let after = body(n, 1);
    let previous = Snapshot::from_alerts(decode(&before).unwrap(), &matcher);
    let runs = 30;

    println!(
        "alerts: {n}, body: {:.1} MiB, runs: {runs}",
        before.len() as f64 / 1048576.0
    );
    let (p50, p90) = measure(runs, || {
        std::hint::black_box(decode(&after).unwrap());
    });
    println!("decode             p50 {p50:>10.2?}  p90 {p90:>10.2?}");
    let alerts = decode(&after).unwrap();
    let (p50, p90) = measure(runs, || {
        std::hint::black_box(Snapshot::from_alerts(alerts.clone(), &matcher));
    });
    println!("snapshot (+clone)  p50 {p50:>10.2?}  p90 {p90:>10.2?}");
    let next = Snapshot::from_alerts(alerts, &matcher);
    let (p50, p90) = measure(runs, || {
        std::hint::black_box(next.diff(&previous));
    });
    let diff = next.diff(&previous);
    println!(
        "diff               p50 {p50:>10.2?}  p90 {p90:>10.2?}  (+{} -{} alerts)",
        diff.added, diff.removed
    );
    let (p50, p90) = measure(runs, || {
        let s = Snapshot::from_alerts(decode(&after).unwrap(), &matcher);
        std::hint::black_box(s.diff(&previous));
    });
    println!("whole poll CPU     p50 {p50:>10.2?}  p90 {p90:>10.2?}");
    println!(
        "firing of our kind: {}, pending: {}",
        next.firing(),
        next.pending()
    );
}
