//! Logging to standard error (`RUST_LOG` filters, default `info`) and, when an OTLP endpoint is
//! configured (the OpenTelemetry variables every collector documents), export over OTLP/gRPC
//! under the service name `OTEL_SERVICE_NAME` (default `flowwatch-<role>`):
//! - traces (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`): the spans
//!   of this process; the context crosses processes in W3C `traceparent` headers
//!   (`flowwatch_proto::trace`);
//! - metrics (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`): every
//!   `OTEL_METRIC_EXPORT_INTERVAL` milliseconds (default 60 000) and at exit, the metrics the
//!   process's `/metrics` serves (`flowwatch_proto::server::render_all`): counters as cumulative
//!   monotonic sums, gauges as gauges.
//!
//! Without an endpoint nothing is exported and no context is made.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use opentelemetry::trace::TracerProvider;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What must be flushed at exit.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
    metrics: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

/// The endpoint of one signal (`TRACES`, `METRICS`), else the general one.
fn endpoint(signal: &str) -> Option<String> {
    [
        format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"),
        "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

fn service_name(role: &str) -> String {
    std::env::var("OTEL_SERVICE_NAME").unwrap_or(format!("flowwatch-{role}"))
}

/// Starts logging and, if configured, the export of traces and metrics for `role`. Called
/// inside the runtime (the exporters' gRPC clients need it).
pub fn init(role: &str) -> Result<Telemetry> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let traces = match endpoint("TRACES") {
        None => {
            tracing_subscriber::registry().with(filter).with(fmt).init();
            None
        }
        Some(endpoint) => {
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .with_context(|| format!("invalid OTLP endpoint {endpoint}"))?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(service_name(role))
                        .build(),
                )
                .build();
            let tracer = provider.tracer("flowwatch");
            tracing_subscriber::registry()
                .with(filter)
                .with(fmt)
                .with(tracing_opentelemetry::layer().with_tracer(tracer))
                .init();
            tracing::info!(endpoint, "traces exported over OTLP");
            Some(provider)
        }
    };
    let metrics = match endpoint("METRICS") {
        None => None,
        Some(endpoint) => {
            let every = match std::env::var("OTEL_METRIC_EXPORT_INTERVAL") {
                Ok(ms) => ms.parse().map(Duration::from_millis).with_context(|| {
                    format!("OTEL_METRIC_EXPORT_INTERVAL: {ms:?} is not a number of milliseconds")
                })?,
                Err(_) => Duration::from_secs(60),
            };
            let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
                .with_context(|| format!("invalid OTLP endpoint {endpoint}"))?
                .timeout(Duration::from_secs(10))
                .connect_lazy();
            let stop = CancellationToken::new();
            let exporting = MetricsExport {
                client: MetricsServiceClient::new(channel),
                service: service_name(role),
                start: unix_nanos(),
            };
            tracing::info!(endpoint, ?every, "metrics exported over OTLP");
            let task =
                tokio::spawn(exporting.run(every.max(Duration::from_millis(10)), stop.clone()));
            Some((stop, task))
        }
    };
    Ok(Telemetry { traces, metrics })
}

impl Telemetry {
    /// Exports what is left.
    pub async fn shutdown(self) {
        if let Some((stop, task)) = self.metrics {
            stop.cancel();
            let _ = task.await;
        }
        if let Some(provider) = self.traces {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Sends this process's metrics to an OTLP receiver.
struct MetricsExport {
    client: MetricsServiceClient<tonic::transport::Channel>,
    service: String,
    /// The start of the cumulative sums: when the process began exporting.
    start: u64,
}

impl MetricsExport {
    /// Exports every `every` until `stop`, and once more then.
    async fn run(mut self, every: Duration, stop: CancellationToken) {
        let mut failing = false;
        loop {
            let stopping = tokio::select! {
                _ = stop.cancelled() => true,
                _ = tokio::time::sleep(every) => false,
            };
            let text = flowwatch_proto::server::render_all().await;
            let request = self.request(&text, unix_nanos());
            match self.client.export(request).await {
                Ok(_) => failing = false,
                // Said once per outage, not once per interval.
                Err(status) if !failing => {
                    failing = true;
                    tracing::warn!("metrics not exported over OTLP: {}", status.message());
                }
                Err(_) => {}
            }
            if stopping {
                return;
            }
        }
    }

    fn request(&self, text: &str, now: u64) -> ExportMetricsServiceRequest {
        let string = |key: &str, value: &str| KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.to_owned())),
            }),
            ..Default::default()
        };
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![string("service.name", &self.service)],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "flowwatch".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..Default::default()
                    }),
                    metrics: otlp_metrics(text, self.start, now),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }
}

/// The samples of a Prometheus text exposition (`# HELP`, `# TYPE`, `name value` lines, as
/// `flowwatch_proto::server::write_metric` writes them) as OTLP metrics: a `counter` a
/// cumulative monotonic sum from `start`, anything else a gauge. A line that does not parse,
/// or has labels, is left out.
fn otlp_metrics(text: &str, start: u64, now: u64) -> Vec<Metric> {
    let mut help = std::collections::HashMap::new();
    let mut kind = std::collections::HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some((name, text)) = rest.split_once(' ') {
                help.insert(name, text);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, k)) = rest.split_once(' ') {
                kind.insert(name, k);
            }
            continue;
        }
        // flowwatch's metrics have no labels: a labelled sample is not one of them.
        let Some((name, value)) = line.split_once(' ').filter(|(n, _)| !n.contains('{')) else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let point = NumberDataPoint {
            start_time_unix_nano: start,
            time_unix_nano: now,
            value: Some(number_data_point::Value::AsDouble(value)),
            ..Default::default()
        };
        let data = match kind.get(name) {
            Some(&"counter") => metric::Data::Sum(Sum {
                data_points: vec![point],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
            _ => metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    start_time_unix_nano: 0,
                    ..point
                }],
            }),
        };
        out.push(Metric {
            name: name.to_owned(),
            description: help.get(name).copied().unwrap_or("").to_owned(),
            data: Some(data),
            ..Default::default()
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_become_cumulative_sums_and_gauges_gauges() {
        let mut text = String::new();
        flowwatch_proto::server::write_metric(&mut text, "a_total", "counter", "As.", 7);
        flowwatch_proto::server::write_metric(&mut text, "b", "gauge", "Bs.", -2.5);
        text.push_str("garbage line\nc{x=\"1\"} 3\n");
        let m = otlp_metrics(&text, 10, 20);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(
            (m[0].name.as_str(), m[0].description.as_str()),
            ("a_total", "As.")
        );
        let Some(metric::Data::Sum(sum)) = &m[0].data else {
            panic!("{m:?}")
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let p = &sum.data_points[0];
        assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (10, 20));
        assert_eq!(p.value, Some(number_data_point::Value::AsDouble(7.0)));
        let Some(metric::Data::Gauge(gauge)) = &m[1].data else {
            panic!("{m:?}")
        };
        assert_eq!(
            gauge.data_points[0].value,
            Some(number_data_point::Value::AsDouble(-2.5))
        );
    }
}
