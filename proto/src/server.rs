//! What every flowwatch server shares: gRPC services and plain HTTP routes (`/metrics`) on one
//! address, HTTP/1.1 and HTTP/2 (gRPC clients connect with prior knowledge); the standard
//! health service (`grpc.health.v1.Health`) and reflection (`grpc.reflection.v1`, so
//! `grpcurl` lists and calls the services without the `.proto` files); the Prometheus text
//! format.

use std::convert::Infallible;
use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};

use axum::body::Body;
use axum::response::IntoResponse;
use tonic::server::NamedService;
use tonic_health::ServingStatus;

/// The compiled descriptors of every flowwatch service (for reflection).
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

/// `router` with the gRPC `service` at `/<package.Service>/<method>`.
pub fn route<S>(router: axum::Router, service: S) -> axum::Router
where
    S: NamedService
        + tower_service::Service<axum::http::Request<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    router.route_service(&format!("/{}/{{*method}}", S::NAME), service)
}

/// `router` with the health service (each of `serving` reported `SERVING`, and the server as
/// a whole: the empty name) and reflection.
pub async fn standard(router: axum::Router, serving: &[&str]) -> axum::Router {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in serving {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTORS)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the descriptors compiled at build time decode");
    route(route(router, health), reflection)
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The client's address limits failed logins (the gateway).
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Writes one metric in the Prometheus text format.
pub fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl ToString) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
        value.to_string()
    );
}

/// Renders a service's metrics in the Prometheus text format.
pub type Render = Arc<RenderFn>;

/// The metrics of every service of this process: what `/metrics` serves, and what is exported
/// over OTLP when an endpoint is configured. Weak: a service's metrics go with its router (tests
/// start and drop many in one process).
static RENDERS: Mutex<Vec<Weak<RenderFn>>> = Mutex::new(Vec::new());

type RenderFn = dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync;

/// Makes `render` a source of this process's metrics ([`render_all`]) for as long as it lives;
/// the caller's `/metrics` route keeps it.
pub fn metrics(render: Render) -> Render {
    let mut renders = RENDERS.lock().unwrap_or_else(|p| p.into_inner());
    renders.retain(|r| r.strong_count() > 0);
    renders.push(Arc::downgrade(&render));
    render
}

/// `router` with `GET /metrics` answered by `render` (registered with [`metrics`]).
pub fn metrics_route(router: axum::Router, render: Render) -> axum::Router {
    let render = metrics(render);
    router.route(
        "/metrics",
        axum::routing::get(move || {
            let render = render.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, PROMETHEUS_TEXT)],
                    render().await,
                )
            }
        }),
    )
}

/// The Prometheus text format's content type.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// The metrics of every service of this process, in the Prometheus text format.
pub async fn render_all() -> String {
    let renders: Vec<Render> = RENDERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    let mut out = String::new();
    for render in renders {
        out.push_str(&render().await);
    }
    out
}
