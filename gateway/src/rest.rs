//! The route table of the HTTP API (every route, checked against `gateway/openapi.json`), the
//! JSON error every route answers with, request bodies, and the routes of the running system:
//! `GET /api/v1/health`, `POST /api/v1/ingest` (SPEC §9), `GET /api/v1/status` (every
//! component's state) and `GET /metrics` (Prometheus).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use axum::{Json, Router};
use flowwatch_core::record::body::BodyFormat;
use flowwatch_core::time::utc_string;
use flowwatch_ports::ErrorKind;
use flowwatch_ports::status::Source;
use flowwatch_proto::server::{PROMETHEUS_TEXT, Render, write_metric};
use serde_json::json;
use tracing::Instrument;

use crate::Gateway;
use crate::auth::{Access, MethodAccess};
use crate::error::ApiError;

/// A route: its path, the methods it takes with who may call each, and its handlers.
pub type Route = (&'static str, MethodAccess, MethodRouter<Arc<Gateway>>);

/// Every route: its path, the methods it takes and who may call each, and its handlers.
/// `router` serves exactly these, and a test checks them against the OpenAPI document
/// (`gateway/openapi.json`). Reads are `Read`, changes `Root`; the simulation and the backtest only read.
pub fn routes() -> Vec<Route> {
    use crate::{auth, config, operator, views};
    use Access::{Public, Read, Root};
    vec![
        ("/api/v1/health", &[("GET", Public)], get(health)),
        ("/api/v1/login", &[("POST", Public)], post(auth::login)),
        (
            "/api/v1/visitor-login",
            &[("POST", Public)],
            post(auth::visitor_login),
        ),
        ("/api/v1/logout", &[("POST", Read)], post(auth::logout)),
        ("/api/v1/me", &[("GET", Read)], get(auth::me)),
        ("/api/v1/time", &[("GET", Read)], get(time)),
        (
            "/api/v1/users",
            &[("GET", Root), ("POST", Root)],
            get(auth::users).post(auth::create_user),
        ),
        (
            "/api/v1/users/{name}",
            &[("GET", Root), ("PATCH", Root), ("DELETE", Root)],
            get(auth::user)
                .patch(auth::change_user)
                .delete(auth::delete_user),
        ),
        (
            "/api/v1/users/{name}/key",
            &[("POST", Root)],
            post(auth::reset_key),
        ),
        ("/api/v1/audit", &[("GET", Root)], get(auth::audit)),
        ("/api/v1/openapi.json", &[("GET", Read)], get(openapi)),
        ("/api/v1/ingest", &[("POST", Root)], post(ingest)),
        ("/api/v1/status", &[("GET", Read)], get(status)),
        (
            "/api/v1/config",
            &[("GET", Read), ("PUT", Root)],
            get(config::get_config).put(config::put_config),
        ),
        (
            "/api/v1/config/countries/{country}",
            &[
                ("GET", Read),
                ("PUT", Root),
                ("PATCH", Root),
                ("DELETE", Root),
            ],
            get(config::get_country)
                .put(config::change_country)
                .patch(config::change_country)
                .delete(config::delete_country),
        ),
        (
            "/api/v1/config/countries/{country}/fill-holidays",
            &[("POST", Root)],
            post(config::fill_holidays),
        ),
        (
            "/api/v1/config/countries/{country}/lobs/{lob}",
            &[
                ("GET", Read),
                ("PUT", Root),
                ("PATCH", Root),
                ("DELETE", Root),
            ],
            get(config::get_lob)
                .put(config::change_lob)
                .patch(config::change_lob)
                .delete(config::delete_lob),
        ),
        (
            "/api/v1/config/flows/{country}/{lob}/{kind}/{flow}",
            &[("PUT", Root), ("PATCH", Root), ("DELETE", Root)],
            put(config::change_flow)
                .patch(config::change_flow)
                .delete(config::delete_flow),
        ),
        ("/api/v1/dashboard", &[("GET", Read)], get(views::dashboard)),
        (
            "/api/v1/cluster",
            &[("GET", Read)],
            get(crate::cluster::cluster),
        ),
        ("/api/v1/live", &[("GET", Read)], get(crate::live::live)),
        ("/api/v1/events", &[("GET", Read)], get(views::events)),
        (
            "/api/v1/events/{id}/ack",
            &[("POST", Root)],
            post(operator::acknowledge),
        ),
        (
            "/api/v1/silences",
            &[("GET", Read), ("POST", Root)],
            get(operator::silences).post(operator::create_silence),
        ),
        (
            "/api/v1/silences/{id}",
            &[("DELETE", Root)],
            delete(operator::end_silence),
        ),
        (
            "/api/v1/channels",
            &[("GET", Read)],
            get(crate::channels::list),
        ),
        (
            "/api/v1/channels/{name}",
            &[("GET", Read), ("PUT", Root), ("DELETE", Root)],
            get(crate::channels::get_one)
                .put(crate::channels::put)
                .delete(crate::channels::delete),
        ),
        (
            "/api/v1/channels/{name}/test",
            &[("POST", Root)],
            post(crate::channels::test),
        ),
        (
            "/api/v1/channels/{name}/deliveries",
            &[("GET", Read)],
            get(crate::channels::deliveries),
        ),
        (
            "/api/v1/incidents",
            &[("GET", Read)],
            get(crate::incidents::incidents),
        ),
        (
            "/api/v1/incidents/{id}/ack",
            &[("POST", Root)],
            post(crate::incidents::acknowledge),
        ),
        ("/api/v1/flows", &[("GET", Read)], get(views::tree)),
        (
            "/api/v1/suggestions",
            &[("GET", Read)],
            get(crate::suggestions::suggestions),
        ),
        (
            "/api/v1/flapping",
            &[("GET", Read)],
            get(views::flapping_flows),
        ),
        (
            "/api/v1/flows/{country}/{lob}",
            &[("GET", Read)],
            get(views::lob_flows),
        ),
        (
            "/api/v1/flows/{country}/{lob}/{kind}/{flow}/ticks",
            &[("GET", Read)],
            get(views::ticks),
        ),
        (
            "/api/v1/flows/{country}/{lob}/{kind}/{flow}/simulate",
            &[("POST", Read)],
            post(views::simulate),
        ),
        (
            "/api/v1/backtest",
            &[("POST", Read)],
            post(crate::backtest::backtest),
        ),
        (
            "/api/v1/flows/{country}/{lob}/{kind}/{flow}/config",
            &[("GET", Read)],
            get(views::flow_config),
        ),
        (
            "/api/v1/flows/{country}/{lob}/{kind}/{flow}/traffic",
            &[("GET", Read)],
            get(views::traffic),
        ),
        ("/metrics", &[("GET", Read)], get(metrics)),
    ]
}

/// The routes, each behind [`crate::auth::authorize`] with its access.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let max_body = gateway.max_body;
    // This gateway's metrics, for `/metrics` and the OTLP export; the router keeps them.
    let weak = Arc::downgrade(&gateway);
    let render = flowwatch_proto::server::metrics(Arc::new(move || {
        let g = weak.upgrade();
        Box::pin(async move {
            match g {
                Some(g) => render_metrics(&g).await,
                None => String::new(),
            }
        })
    }));
    routes()
        .into_iter()
        .fold(Router::new(), |r, (path, methods, handlers)| {
            let guard = from_fn_with_state((gateway.clone(), methods), crate::auth::authorize);
            r.route(path, handlers.route_layer(guard))
        })
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(Extension(render))
        .with_state(gateway)
}

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Whether `path` is in a namespace of the APIs: the HTTP API, the metrics, a gRPC service
/// (`/flowwatch.v1.FlowWatch/…`, `/grpc.health.v1.Health/…`). The web UI has the rest.
fn api_path(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    first == "api"
        || first == "metrics"
        || first.starts_with("flowwatch.")
        || first.starts_with("grpc.")
}

/// A path no route takes: in the APIs' namespaces a JSON 404; any other page read is the web
/// UI's.
async fn no_route(State(g): State<Arc<Gateway>>, method: Method, uri: Uri) -> Response {
    if !api_path(uri.path()) && (method == Method::GET || method == Method::HEAD) {
        return g.ui.get(uri.path()).await;
    }
    ApiError::new(
        ErrorKind::NotFound,
        "not_found",
        format!("no route {method} {}", uri.path()),
    )
    .into_response()
}

async fn no_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorKind::MethodNotAllowed,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}

/// A request body, or the JSON error of one that could not be read (too large: 413).
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        let message = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "the body is larger than this server takes (--max-body): send it in parts".to_owned()
        } else {
            e.body_text()
        };
        let kind = match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorKind::UnsupportedMediaType,
            status if status.is_server_error() => ErrorKind::Internal,
            _ => ErrorKind::Invalid,
        };
        ApiError::new(kind, "invalid_body", message)
    })
}

/// A JSON request body (unknown members refused by `T`), or a 400 naming where it is wrong.
pub fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    what: &str,
) -> Result<T, ApiError> {
    let body = self::body(body)?;
    let de = &mut serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::new(
            ErrorKind::Invalid,
            "invalid_body",
            format!("invalid {what}: {}", e.into_inner()),
        )
        .at(if path == "." { String::new() } else { path })
    })
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "serving"}))
}

/// The current time of the system (the clock the detection runs on, which `--start-time`
/// may shift from the wall clock).
async fn time(State(g): State<Arc<Gateway>>) -> Json<serde_json::Value> {
    let now = g.clock.now();
    Json(json!({"time": utc_string(now), "unix": now}))
}

/// Takes a body in any SPEC form; answers once the accepted records are stored.
async fn ingest(
    State(g): State<Arc<Gateway>>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<crate::ingest::Ingested>, ApiError> {
    let bytes = body(bytes)?;
    let body = std::str::from_utf8(&bytes).map_err(|e| {
        ApiError::new(
            ErrorKind::Invalid,
            "invalid_body",
            format!("the body is not UTF-8 (byte {})", e.valid_up_to() + 1),
        )
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = BodyFormat::from_content_type(content_type).ok_or_else(|| {
        ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "unsupported_media_type",
            format!(
                "content type \"{content_type}\" is not taken: send text/csv, \
                 application/x-ndjson or application/json"
            ),
        )
    })?;
    // One trace follows these records through JetStream and the worker to their alarms; a
    // caller's `traceparent` makes it part of the caller's trace.
    let span = tracing::info_span!("gateway.ingest", bytes = bytes.len());
    let header = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    flowwatch_proto::trace::set_parent(&span, flowwatch_proto::trace::extract(header));
    let taken = crate::ingest::take(&g, format, body, 0).instrument(span);
    Ok(Json(taken.await?))
}

/// Every component's state: the one status view.
async fn status(State(g): State<Arc<Gateway>>) -> Json<serde_json::Value> {
    Json(components(&g).await)
}

/// Every component's state (`GET /api/v1/status`, and the live stream's `components`). The
/// workers' and ingest's figures are the status source's: this process's workers, or the sum
/// of a cluster's live workers (`source` says which, or why they are unknown).
pub(crate) async fn components(g: &Gateway) -> serde_json::Value {
    let (store_ok, store_error, outbox) = match g.store.outbox_len().await {
        Ok(n) => (true, None, Some(n)),
        Err(e) => (false, Some(e.to_string()), None),
    };
    let health = g.status.health().await;
    let (source, workers, error) = match &health.source {
        Source::InProcess => ("in process", None, None),
        Source::Cluster { workers } => ("cluster", Some(*workers), None),
        Source::Unknown(why) => ("unknown", None, Some(why.as_str())),
    };
    let relay = health
        .relay
        .map(|r| json!({"healthy": r.healthy, "published": r.published, "failures": r.failures}));
    let (w, i) = (health.workers, health.ingest);
    let now = g.clock.now();
    json!({
        "time": utc_string(now),
        "components": {
            "store": {"ok": store_ok, "error": store_error},
            "worker": {
                "source": source,
                "workers": workers,
                "error": error,
                "flows": w.flows,
                "ticks": w.ticks,
                "lastEvaluation": w.last_evaluation.map(utc_string),
                "actorFailures": w.actor_failures,
            },
            "ingest": {
                "records": i.records,
                "batches": i.batches,
                "refused": i.refused,
                // Event-time lag: how far the newest traffic is behind the clock. It grows
                // when every source stops, the outage of the whole mediation system.
                "newestRecord": i.newest_record.map(utc_string),
                "lagSeconds": i.newest_record.map(|n| now - n),
            },
            "alarms": {"outbox": outbox, "relay": relay},
            "nats": nats_state(g),
            // This process's Kafka readers, a partition each: records not stored yet.
            "kafka": g.kafka.snapshot().into_iter().map(|(topic, partition, l)| json!({
                "topic": topic,
                "partition": partition,
                "position": l.position,
                "highWatermark": l.high_watermark,
                "lag": l.lag(),
            })).collect::<Vec<_>>(),
        }
    })
}

fn nats_state(g: &Gateway) -> &'static str {
    match &g.nats {
        None => "not configured",
        Some(c) => match c.connection_state() {
            async_nats::connection::State::Connected => "connected",
            async_nats::connection::State::Disconnected => "disconnected",
            async_nats::connection::State::Pending => "connecting",
        },
    }
}

/// Prometheus metrics.
async fn metrics(Extension(render): Extension<Render>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], render().await)
}

/// The gateway's metrics in the Prometheus text format.
async fn render_metrics(g: &Gateway) -> String {
    let mut out = String::new();
    g.status.render_metrics(&mut out);
    if let Ok(n) = g.store.outbox_len().await {
        write_metric(
            &mut out,
            "flowwatch_alarms_outbox",
            "gauge",
            "Alarms not yet published.",
            n,
        );
    }
    g.kafka.render(&mut out);
    let connected = matches!(nats_state(g), "connected") as u8;
    write_metric(
        &mut out,
        "flowwatch_nats_connected",
        "gauge",
        "1 when connected to NATS.",
        connected,
    );
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn api_namespaces_are_not_the_uis() {
        for api in [
            "/api/v1/nothing",
            "/api",
            "/metrics",
            "/flowwatch.v1.Nothing/Call",
            "/grpc.health.v1.Health/Check",
        ] {
            assert!(api_path(api), "{api}");
        }
        for page in [
            "/",
            "/flow/CZ/GSM/input/A",
            "/apis",
            "/assets/index-1.js",
            "/metricsx",
        ] {
            assert!(!api_path(page), "{page}");
        }
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_routes_and_who_may_call_them() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        let documented: BTreeSet<(String, String, String)> = doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .expect("operations")
                    .iter()
                    .filter(|(m, _)| *m != "parameters")
                    .map(move |(m, op)| {
                        let access = op["x-access"].as_str().unwrap_or("missing").to_owned();
                        (path.clone(), m.to_uppercase(), access)
                    })
            })
            .collect();
        let served: BTreeSet<(String, String, String)> = routes()
            .into_iter()
            .flat_map(|(path, methods, _)| {
                methods.iter().map(move |(m, access)| {
                    let access = match access {
                        Access::Public => "public",
                        Access::Read => "read",
                        Access::Root => "root",
                    };
                    (path.to_owned(), (*m).to_owned(), access.to_owned())
                })
            })
            .collect();
        assert_eq!(documented, served);
        // Public operations say so to OpenAPI tools too.
        for (path, method, access) in &documented {
            let op = &doc["paths"][path][method.to_lowercase()];
            assert_eq!(
                op["security"] == serde_json::json!([]),
                access == "public",
                "{method} {path}"
            );
        }
    }
}
