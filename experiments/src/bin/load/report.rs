//! The figures, read once the run is over, the Markdown report made of
//! them, and the checks the run must pass; the report is made before the
//! checks so that a failed run still shows what it measured.

use std::fmt::Write as _;
use std::time::Duration;

use alert_poller_experiments::figures::{mean, percent_of_core};
use alert_poller_testbed::controller::ControllerProcess;
use alert_poller_testbed::exposition;
use alert_poller_testbed::usage;
use anyhow::{Result, ensure};

use crate::Cli;
use crate::bed::{Bed, conditions};
use crate::drive::Drive;

/// The figures of the report, read once the run is over.
pub struct Figures {
    elapsed: Duration,
    polls: f64,
    failed: f64,
    duration_sum: f64,
    duration_count: f64,
    bytes: f64,
    /// Controller CPU seconds over the run, and its peak RSS over its life.
    cpu: f64,
    peak_kib: u64,
    prometheus_cpu: f64,
    initial_writes: f64,
    change_writes: f64,
    quiet_writes: f64,
    own_writes: f64,
    transitions: usize,
    set: usize,
    healthy: usize,
}

pub async fn measure(
    bed: &Bed,
    controller: &ControllerProcess,
    run: &Drive,
    initial_writes: f64,
) -> Result<Figures> {
    let kubectl = &bed.kubectl;
    let (cpu, peak_kib) = usage(controller.pid());
    let prometheus_cpu = usage(bed.prometheus.pid().unwrap_or(0)).0 - run.prometheus_cpu_before;
    let metric = |name: &'static str| async move { controller.metric(name).await.unwrap_or(0.0) };
    let polls = metric(r#"alert_poller_polls_total{result="success"}"#).await - run.polls_before;
    let failed = failed_polls_in(
        &controller
            .get("/metrics")
            .await
            .map(|(_, t)| t)
            .unwrap_or_default(),
    );
    let duration_sum = metric("alert_poller_poll_duration_seconds_sum").await;
    let duration_count = metric("alert_poller_poll_duration_seconds_count").await;
    let bytes = metric("alert_poller_prometheus_response_bytes_total").await;
    let own_writes = controller.status_writes().await;
    let transitions = kubectl
        .run(&[
            "get",
            "events.events.k8s.io",
            "-A",
            "-o",
            r#"jsonpath={range .items[*]}{.reportingController}{"\n"}{end}"#,
        ])?
        .lines()
        .filter(|l| l.trim() == "alert-poller")
        .count();
    let (set, healthy) = conditions(kubectl)?;
    Ok(Figures {
        elapsed: run.started.elapsed(),
        polls,
        failed,
        duration_sum,
        duration_count,
        bytes,
        cpu: cpu - run.samples[0].cpu,
        peak_kib,
        prometheus_cpu,
        initial_writes,
        change_writes: run.quiet_start_writes - run.samples[0].writes,
        quiet_writes: run.end_writes - run.quiet_start_writes,
        own_writes,
        transitions,
        set,
        healthy,
    })
}

/// The CPU count and model, so a reader can scale the CPU figures.
pub fn machine() -> String {
    format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("unknown CPU")
            .trim()
    )
}

/// The figures table's first rows: what polling cost both sides.
fn poll_rows(f: &Figures) -> [(&'static str, String); 8] {
    [
        ("run length", format!("{:.0} s", f.elapsed.as_secs_f64())),
        ("successful polls", format!("{:.0}", f.polls)),
        ("failed polls", format!("{:.0}", f.failed)),
        (
            "mean poll time (request and decode)",
            format!("{:.0} ms", 1000.0 * mean(f.duration_sum, f.duration_count)),
        ),
        (
            "mean response size",
            format!(
                "{:.2} MiB",
                mean(f.bytes, f.duration_count) / f64::from(1 << 20)
            ),
        ),
        (
            "controller CPU over the run",
            format!(
                "{:.1} s ({:.1}% of one core)",
                f.cpu,
                percent_of_core(f.cpu, f.elapsed.as_secs_f64())
            ),
        ),
        (
            "controller peak RSS (whole life)",
            format!("{:.1} MiB", f.peak_kib as f64 / 1024.0),
        ),
        (
            "Prometheus CPU over the run",
            format!("{:.1} s", f.prometheus_cpu),
        ),
    ]
}

/// The figures table's other rows: what was written to the API server.
fn write_rows(cli: &Cli, f: &Figures, run: &Drive) -> [(&'static str, String); 7] {
    [
        (
            "status writes to create the first conditions",
            format!("{:.0} (for {} pipelines)", f.initial_writes, cli.pipelines),
        ),
        (
            "changes injected (breaks and mends)",
            run.changes.to_string(),
        ),
        (
            "status writes while changing",
            format!("{:.0}", f.change_writes),
        ),
        (
            "status writes while quiet",
            format!(
                "{:.0} over {:.0} s",
                f.quiet_writes,
                (f.elapsed - run.quiet_from).as_secs_f64()
            ),
        ),
        (
            "status writes, controller's own count (whole life)",
            format!("{:.0}", f.own_writes),
        ),
        (
            "transition Events recorded (whole life)",
            f.transitions.to_string(),
        ),
        (
            "conditions set / True at the end",
            format!("{} / {}", f.set, f.healthy),
        ),
    ]
}

/// The Markdown report.
pub fn markdown(cli: &Cli, f: &Figures, run: &Drive, machine: &str) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "# Load run\n");
    let _ = writeln!(
        r,
        "Produced by `cargo build --release --workspace --bins && target/release/load --minutes {} --pipelines {} --alerts {} --interval {} --alert-source {}` on {machine}.\n",
        cli.minutes, cli.pipelines, cli.alerts, cli.interval, cli.alert_source
    );
    let _ = writeln!(
        r,
        "The release controller, out of cluster with deploy/'s ServiceAccount, against a real kube-apiserver with {} MetricPipelines and a real Prometheus with {} active alerts that concern no pipeline (plus the pipelines' own). It waits {} between polls. In the first half one pipeline breaks or mends every {}; the second half is quiet. Status writes are counted by the API server (`apiserver_request_total`, APPLY on `metricpipelines/status`).\n",
        cli.pipelines,
        cli.alerts,
        cli.interval,
        humantime::format_duration(cli.change_every)
    );
    let _ = writeln!(r, "| figure | value |\n|---|---|");
    for (k, v) in poll_rows(f).into_iter().chain(write_rows(cli, f, run)) {
        let _ = writeln!(r, "| {k} | {v} |");
    }
    let _ = writeln!(
        r,
        "\nController CPU and status writes (API server count) every 30 s:\n"
    );
    let _ = writeln!(r, "| at s | CPU s | writes |\n|---|---|---|");
    let first = &run.samples[0];
    for s in &run.samples {
        let _ = writeln!(
            r,
            "| {:.0} | {:.1} | {:.0} |",
            s.at.as_secs_f64(),
            s.cpu - first.cpu,
            s.writes - first.writes
        );
    }
    r
}

/// The verdict: no status write while nothing changed, between one and
/// three per injected change, and every pipeline healthy at the end. The
/// report goes into the error, so a failed run still shows its figures.
pub fn check(cli: &Cli, f: &Figures, changes: usize, report: &str) -> Result<()> {
    let (change_writes, quiet_writes) = (f.change_writes, f.quiet_writes);
    ensure!(
        quiet_writes == 0.0,
        "{quiet_writes} status writes while nothing changed\n{report}"
    );
    ensure!(
        change_writes <= 3.0 * changes as f64 && change_writes >= changes as f64,
        "{change_writes} status writes for {changes} changes\n{report}"
    );
    ensure!(
        f.set == cli.pipelines && f.healthy == cli.pipelines,
        "the run ended with {} conditions, {} True\n{report}",
        f.set,
        f.healthy
    );
    Ok(())
}

/// Polls that did not succeed, whatever the error class, in the
/// controller's `/metrics` text (so over its whole life).
fn failed_polls_in(metrics: &str) -> f64 {
    exposition::sum(metrics, "alert_poller_polls_total", |labels| {
        !labels.contains("success")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_failed_polls_of_every_class() {
        let text = r#"alert_poller_polls_total{result="success"} 600
alert_poller_polls_total{result="timeout"} 2
alert_poller_polls_total{result="too_large"} 1
alert_poller_polls_total{result="client"} 4
alert_poller_poll_duration_seconds_count 607
"#;
        for (text, expected) in [
            (text, 7.0),
            ("alert_poller_polls_total{result=\"success\"} 600\n", 0.0),
            ("", 0.0),
        ] {
            assert_eq!(failed_polls_in(text), expected);
        }
    }

    fn cli() -> Cli {
        Cli {
            minutes: 2,
            pipelines: 3,
            alerts: 10,
            interval: "1s".into(),
            change_every: Duration::from_secs(20),
            alert_source: "alerts".into(),
            out: "load.md".into(),
        }
    }

    fn figures(duration_sum: f64, duration_count: f64, bytes: f64, cpu: f64) -> Figures {
        Figures {
            elapsed: Duration::from_secs(120),
            polls: duration_count,
            failed: 0.0,
            duration_sum,
            duration_count,
            bytes,
            cpu,
            peak_kib: 2048,
            prometheus_cpu: 0.0,
            initial_writes: 3.0,
            change_writes: 2.0,
            quiet_writes: 0.0,
            own_writes: 5.0,
            transitions: 2,
            set: 3,
            healthy: 3,
        }
    }

    #[test]
    fn report_rows() {
        let driven = Drive {
            started: std::time::Instant::now(),
            polls_before: 0.0,
            prometheus_cpu_before: 0.0,
            samples: vec![crate::drive::Sample {
                at: Duration::ZERO,
                cpu: 1.0,
                writes: 3.0,
            }],
            changes: 2,
            quiet_from: Duration::from_secs(90),
            quiet_start_writes: 5.0,
            end_writes: 5.0,
        };
        for (f, rows) in [
            (
                figures(25.0, 100.0, 100.0 * 1048576.0, 6.0),
                [
                    "| mean poll time (request and decode) | 250 ms |",
                    "| mean response size | 1.00 MiB |",
                    "| controller CPU over the run | 6.0 s (5.0% of one core) |",
                ],
            ),
            // No poll yet: zeros, not NaN.
            (
                figures(0.0, 0.0, 0.0, 0.0),
                [
                    "| mean poll time (request and decode) | 0 ms |",
                    "| mean response size | 0.00 MiB |",
                    "| controller CPU over the run | 0.0 s (0.0% of one core) |",
                ],
            ),
        ] {
            let md = markdown(&cli(), &f, &driven, "test machine");
            for row in rows {
                assert!(md.contains(row), "{row} missing from\n{md}");
            }
            assert!(
                md.contains("| status writes while quiet | 0 over 30 s |"),
                "{md}"
            );
            assert!(
                md.contains("| controller peak RSS (whole life) | 2.0 MiB |"),
                "{md}"
            );
            assert!(check(&cli(), &f, driven.changes, &md).is_ok());
        }
    }

    #[test]
    fn checks() {
        for (change_writes, quiet_writes, set, healthy, changes, passes) in [
            (2.0, 0.0, 3, 3, 2, true),
            (6.0, 0.0, 3, 3, 2, true),
            (7.0, 0.0, 3, 3, 2, false), // more than three writes a change
            (1.0, 0.0, 3, 3, 2, false), // a change went unwritten
            (2.0, 1.0, 3, 3, 2, false), // a write while quiet
            (2.0, 0.0, 2, 2, 2, false), // a pipeline without condition
            (2.0, 0.0, 3, 2, 2, false), // a pipeline not healthy
            (0.0, 0.0, 3, 3, 0, true),
        ] {
            let f = Figures {
                change_writes,
                quiet_writes,
                set,
                healthy,
                ..figures(0.0, 0.0, 0.0, 0.0)
            };
            assert_eq!(
                check(&cli(), &f, changes, "").is_ok(),
                passes,
                "{change_writes} writes for {changes} changes, {quiet_writes} quiet, {set}/{healthy}"
            );
        }
    }
}
