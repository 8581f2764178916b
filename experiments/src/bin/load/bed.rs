//! Everything the controller runs against, brought up in order: the control
//! plane, the collector stand-in with its noise, Prometheus with the noise
//! already firing, the pipelines, then the release controller itself with
//! every pipeline's first condition written. Also the API server reads that
//! the run and the report share.

use std::path::Path;
use std::time::{Duration, Instant};

use alert_poller_testbed::collector::Collector;
use alert_poller_testbed::controller::ControllerProcess;
use alert_poller_testbed::controlplane::{ControlPlane, Kubectl};
use alert_poller_testbed::exposition;
use alert_poller_testbed::install::{NAMESPACE, install};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use alert_poller_testbed::rules;
use anyhow::{Result, bail};

use crate::{Cli, Log};

/// The control plane, the collector and Prometheus, with the noise firing.
/// Fields drop in this order: Prometheus before what it scrapes, the control
/// plane last.
pub struct Bed {
    pub prometheus: Prometheus,
    pub collector: Collector,
    pub names: Vec<String>,
    pub kubectl: Kubectl,
    plane: ControlPlane,
}

pub async fn start(cli: &Cli, log: &Log) -> Result<Bed> {
    log.say("starting the control plane");
    let plane = tokio::task::spawn_blocking(ControlPlane::start).await??;
    let kubectl = plane.kubectl();
    let names: Vec<String> = (0..cli.pipelines).map(|i| format!("load-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let collector = Collector::start(&refs).await?;
    collector.set_noise(cli.alerts);
    let mut setup = Setup::fast(collector.addr());
    setup.rules = rules::with_noise(&setup.rules);
    let prometheus = Prometheus::start(&setup).await?;
    log.say(&format!("waiting for {} NoiseAlerts to fire", cli.alerts));
    prometheus
        .until_noise(cli.alerts, Duration::from_secs(120))
        .await?;
    Ok(Bed {
        prometheus,
        collector,
        names,
        kubectl,
        plane,
    })
}

/// The controller's deployment with a fixed poll interval, then the
/// pipelines, applied in lists so that a thousand take seconds, not minutes.
pub fn deploy(bed: &Bed, cli: &Cli, log: &Log) -> Result<()> {
    let url = bed.prometheus.url();
    install(
        &bed.kubectl,
        &[
            ("prometheusUrl", url.as_str()),
            ("minInterval", &cli.interval),
            ("maxInterval", &cli.interval),
            ("backoffFactor", "1"),
            ("requestTimeout", "10s"),
            ("staleAfter", "2m"),
            ("alertSource", &cli.alert_source),
        ],
    )?;
    log.say(&format!("creating {} MetricPipelines", cli.pipelines));
    for chunk in bed.names.chunks(250) {
        let items: Vec<String> = chunk
            .iter()
            .map(|n| {
                format!(
                    r#"{{"apiVersion":"telemetry.kyma-project.io/v1beta1","kind":"MetricPipeline","metadata":{{"name":"{n}"}},"spec":{{"output":{{"otlp":{{"endpoint":{{"value":"http://backend:4317"}}}}}}}}}}"#
                )
            })
            .collect();
        let list = format!(
            r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#,
            items.join(",")
        );
        bed.kubectl
            .run_with_input(&["apply", "-f", "-"], Some(&list))?;
    }
    Ok(())
}

/// Starts the release controller and waits until every pipeline has a True
/// condition; returns it and the status writes that took, which are the
/// first conditions, not reactions to change.
pub async fn start_controller(
    bed: &Bed,
    binary: &Path,
    cli: &Cli,
    log: &Log,
) -> Result<(ControllerProcess, f64)> {
    let kubectl = &bed.kubectl;
    let kubeconfig = bed.plane.dir().join("alert-poller.kubeconfig");
    kubectl.service_account_kubeconfig(NAMESPACE, "alert-poller", &kubeconfig)?;
    let log_file = bed.plane.dir().join("alert-poller.log");
    let writes_before_start = server_status_writes(kubectl)?;
    log.say("starting the release controller");
    let controller = ControllerProcess::start(binary, &kubeconfig, NAMESPACE, &log_file)?;
    let limit = Instant::now() + Duration::from_secs(180);
    loop {
        let (set, healthy) = conditions(kubectl)?;
        if set == cli.pipelines && healthy == cli.pipelines {
            break;
        }
        if Instant::now() > limit {
            bail!("only {set} conditions set, {healthy} True, after 3 min");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let initial_writes = server_status_writes(kubectl)? - writes_before_start;
    log.say(&format!(
        "all {} pipelines healthy after {initial_writes} status writes",
        cli.pipelines
    ));
    Ok((controller, initial_writes))
}

/// Status writes (server-side applies on the status subresource of
/// MetricPipelines) as the API server's own `apiserver_request_total` counts them.
pub fn server_status_writes(kubectl: &Kubectl) -> Result<f64> {
    Ok(status_writes_in(
        &kubectl.run(&["get", "--raw", "/metrics"])?,
    ))
}

/// The API server's count of status writes in its `/metrics` text: the
/// counter has a series per verb, code, client and more, so every matching
/// series is summed.
fn status_writes_in(metrics: &str) -> f64 {
    exposition::sum(metrics, "apiserver_request_total", |labels| {
        labels.contains(r#"resource="metricpipelines""#)
            && labels.contains(r#"subresource="status""#)
            && (labels.contains(r#"verb="APPLY""#) || labels.contains(r#"verb="PATCH""#))
    })
}

/// Pipelines whose flow condition is set, and how many of those are True.
pub fn conditions(kubectl: &Kubectl) -> Result<(usize, usize)> {
    let out = kubectl.run(&[
        "get",
        "metricpipelines",
        "-o",
        r#"jsonpath={range .items[*]}{.status.conditions[?(@.type=="TelemetryFlowHealthy")].status}{"\n"}{end}"#,
    ])?;
    Ok(count_conditions(&out))
}

/// Counts the jsonpath output of [`conditions`]: one line per pipeline,
/// empty while its condition is not set yet.
fn count_conditions(out: &str) -> (usize, usize) {
    let set = out.lines().filter(|l| !l.trim().is_empty()).count();
    let healthy = out.lines().filter(|l| l.trim() == "True").count();
    (set, healthy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_status_writes_the_api_server_saw() {
        let text = r#"# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="telemetry.kyma-project.io",resource="metricpipelines",scope="resource",subresource="status",verb="APPLY",version="v1beta1"} 12
apiserver_request_total{code="409",component="apiserver",dry_run="",group="telemetry.kyma-project.io",resource="metricpipelines",scope="resource",subresource="status",verb="APPLY",version="v1beta1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="telemetry.kyma-project.io",resource="metricpipelines",scope="resource",subresource="status",verb="PATCH",version="v1beta1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="telemetry.kyma-project.io",resource="metricpipelines",scope="resource",subresource="status",verb="GET",version="v1beta1"} 50
apiserver_request_total{code="200",component="apiserver",dry_run="",group="telemetry.kyma-project.io",resource="metricpipelines",scope="resource",subresource="",verb="APPLY",version="v1beta1"} 1000
apiserver_request_total{code="200",component="apiserver",dry_run="",group="telemetry.kyma-project.io",resource="logpipelines",scope="resource",subresource="status",verb="APPLY",version="v1beta1"} 7
apiserver_request_duration_seconds_count{resource="metricpipelines",subresource="status",verb="APPLY"} 16
"#;
        for (text, expected) in [(text, 16.0), ("", 0.0)] {
            assert_eq!(status_writes_in(text), expected);
        }
    }

    #[test]
    fn counts_conditions() {
        for (out, expected) in [
            ("", (0, 0)),
            ("\n\n\n", (0, 0)),
            ("True\n", (1, 1)),
            ("True\nFalse\n\nUnknown\nTrue\n", (4, 2)),
            (" True \n", (1, 1)),
        ] {
            assert_eq!(count_conditions(out), expected, "{out:?}");
        }
    }
}
