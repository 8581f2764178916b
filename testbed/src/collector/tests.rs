use super::*;

async fn scrape(collector: &Collector, path: &str) -> String {
    let state = &collector.state;
    let response = match path {
        "/gateway" => otel(state, Component::Gateway, None),
        "/agent" => otel(state, Component::Agent, Some(PipelineKind::Metric)),
        "/log-agent" => otel(state, Component::Agent, Some(PipelineKind::Log)),
        "/fluent-bit" => fluent_bit(state),
        _ => unreachable!(),
    };
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("a full body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

fn value(body: &str, series: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{body}"))
}

#[tokio::test]
async fn every_kind_is_served_in_its_unit_on_its_paths() {
    let c = Collector::start(&["m"]).await.unwrap();
    c.add_pipeline_of(PipelineKind::Trace, "t");
    c.add_pipeline_of(PipelineKind::Log, "l");
    let gateway = scrape(&c, "/gateway").await;
    for exporter in [
        "otelcol_exporter_sent_metric_points_total{exporter=\"otlp_grpc/metricpipeline-m\"",
        "otelcol_exporter_sent_spans_total{exporter=\"otlp_grpc/tracepipeline-t\"",
        "otelcol_exporter_sent_log_records_total{exporter=\"otlp_grpc/logpipeline-l\"",
        "otelcol_receiver_refused_spans_total{receiver=\"otlp\"",
    ] {
        assert!(gateway.contains(exporter), "{exporter} in\n{gateway}");
    }
    let agent = scrape(&c, "/agent").await;
    assert!(agent.contains("otlp_http/metricpipeline-m"), "{agent}");
    assert!(!agent.contains("pipeline-l") && !agent.contains("pipeline-t"));
    let log_agent = scrape(&c, "/log-agent").await;
    assert!(
        log_agent.contains(
            "otelcol_exporter_sent_log_records_total{exporter=\"otlp_http/logpipeline-l\""
        )
    );
    assert!(!log_agent.contains("pipeline-m") && !log_agent.contains("pipeline-t"));
    let fb = scrape(&c, "/fluent-bit").await;
    assert!(
        fb.contains("fluentbit_output_proc_bytes_total{name=\"l\"}"),
        "{fb}"
    );
    assert!(
        fb.contains("fluentbit_input_bytes_total{name=\"tail.0\"}"),
        "{fb}"
    );
    assert!(!fb.contains("name=\"m\"") && !fb.contains("name=\"t\""));
}

#[tokio::test]
async fn fluent_bit_flows_move_the_counters_the_rules_read() {
    let c = Collector::start(&[]).await.unwrap();
    c.add_pipeline_of(PipelineKind::Log, "l");
    let series = |kind: &str| format!("fluentbit_{kind}{{name=\"l\"}}");
    // Per flow: (bytes read, bytes delivered, records dropped) in one
    // scrape, and the chunks down after it.
    for (flow, read, delivered, dropped, full) in [
        (Flow::Healthy, true, true, false, false),
        (Flow::SomeDropped, true, true, true, false),
        (Flow::AllDropped, true, false, true, false),
        (Flow::BufferFull, true, true, false, true),
        (Flow::NoLogsDelivered, true, false, false, false),
    ] {
        c.set_flow_of(PipelineKind::Log, Component::FluentBit, "l", flow);
        let before = scrape(&c, "/fluent-bit").await;
        let after = scrape(&c, "/fluent-bit").await;
        let grew = |k: &str| value(&after, &series(k)) > value(&before, &series(k));
        assert_eq!(
            (
                grew("input_bytes_total"),
                grew("output_proc_bytes_total"),
                grew("output_dropped_records_total"),
                value(&after, &series("input_storage_chunks_down")) > 300,
            ),
            (read, delivered, dropped, full),
            "{flow:?}"
        );
    }
}

#[tokio::test]
async fn throttling_refuses_in_the_unit_of_its_signal_only() {
    let c = Collector::start(&[]).await.unwrap();
    c.set_throttling_of(PipelineKind::Trace, true);
    scrape(&c, "/gateway").await;
    let g = scrape(&c, "/gateway").await;
    let refused = |unit: &str| {
        value(
            &g,
            &format!(
                "otelcol_receiver_refused_{unit}_total{{receiver=\"otlp\",transport=\"grpc\",service_instance_id=\"telemetry-otlp-gateway-0\",service_name=\"otelcol-contrib\"}}"
            ),
        )
    };
    assert!(refused("spans") > 0);
    assert_eq!((refused("metric_points"), refused("log_records")), (0, 0));
}

#[tokio::test]
#[should_panic(expected = "does not pass")]
async fn a_trace_pipeline_has_no_agent() {
    let c = Collector::start(&[]).await.unwrap();
    c.set_flow_of(PipelineKind::Trace, Component::Agent, "t", Flow::AllDropped);
}

#[tokio::test]
#[should_panic(expected = "Fluent Bit flow")]
async fn buffer_full_is_fluent_bit_s_alone() {
    let c = Collector::start(&[]).await.unwrap();
    c.set_flow_of(PipelineKind::Log, Component::Gateway, "l", Flow::BufferFull);
}
