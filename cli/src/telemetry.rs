//! Logging to standard error (`RUST_LOG` filters, default `info`) and, when an OTLP endpoint is
//! configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, the
//! OpenTelemetry variables every collector documents), the spans of this process exported as
//! OpenTelemetry traces over OTLP/gRPC, under the service name `OTEL_SERVICE_NAME` (default
//! `flowwatch-<role>`). The trace context crosses processes in W3C `traceparent` headers
//! (`flowwatch_proto::trace`). Without an endpoint nothing is exported and no context is made.

use anyhow::{Context, Result};
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What must be flushed at exit.
pub struct Telemetry(Option<SdkTracerProvider>);

fn endpoint() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// Starts logging and, if configured, trace export for `role`. Called inside the runtime (the
/// exporter's gRPC client needs it).
pub fn init(role: &str) -> Result<Telemetry> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let Some(endpoint) = endpoint() else {
        tracing_subscriber::registry().with(filter).with(fmt).init();
        return Ok(Telemetry(None));
    };
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .with_context(|| format!("invalid OTLP endpoint {endpoint}"))?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or(format!("flowwatch-{role}"));
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
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
    Ok(Telemetry(Some(provider)))
}

impl Telemetry {
    /// Exports what is left.
    pub async fn shutdown(self) {
        if let Some(provider) = self.0 {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}
