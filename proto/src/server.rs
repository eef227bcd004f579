//! What every flowwatch server shares: gRPC services and plain HTTP routes (`/metrics`) on one
//! address, HTTP/1.1 and HTTP/2 (gRPC clients connect with prior knowledge); the standard
//! health service (`grpc.health.v1.Health`) and reflection (`grpc.reflection.v1`, so
//! `grpcurl` lists and calls the services without the `.proto` files); the Prometheus text
//! format.

use std::convert::Infallible;
use std::fmt::Write;

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
