//! `GET /api/v1/config` → `{"version", "document"}`; `PUT /api/v1/config` `{"version",
//! "document"}` saves a new version if `version` is still the newest (409 otherwise), after
//! validating the whole document (400 naming each field's path; nothing is applied). A saved
//! version is put in force at once: the workers take it from their next tick.
//!
//! One flow's own settings: `PUT` (replace), `PATCH` (merge) and `DELETE ?version=` on
//! `/api/v1/config/flows/{country}/{lob}/{kind}/{flow}`, with the same compare-and-set.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::{Extension, Json};
use flowwatch_core::config::{Config, ConfigError, FlowSettings};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::rest::ApiError;
use crate::{Gateway, InForce};

/// The body of `PUT /api/v1/config`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Put {
    /// The version the change is based on (0: none saved yet).
    version: u64,
    /// The whole document (SPEC §5).
    document: Value,
}

/// The configuration in force.
pub async fn get_config(State(g): State<Arc<Gateway>>) -> Json<Value> {
    let in_force = g.config.borrow().clone();
    Json(answer(&in_force))
}

fn answer(in_force: &InForce) -> Value {
    json!({"version": in_force.version, "document": in_force.config.document()})
}

/// Saves a new version (compare-and-set on `version`) and puts it in force.
pub async fn put_config(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let put: Put = crate::rest::json_body(body, "request")?;
    let config = Config::from_json(&put.document.to_string()).map_err(|e| {
        let path = e.errors.first().map(|f| f.path.clone()).unwrap_or_default();
        let fields = serde_json::to_value(&e.errors).unwrap_or_default();
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_config", e.to_string())
            .at(if path.is_empty() {
                "document".to_owned()
            } else {
                format!("document.{path}")
            })
            .with_fields(fields)
    })?;
    save(&g, &caller, "the whole document", put.version, config).await
}

/// Stores `config` as the version after `expected` and puts it in force.
async fn save(
    g: &Gateway,
    who: &Caller,
    what: &str,
    expected: u64,
    config: Config,
) -> Result<Json<Value>, ApiError> {
    let document = serde_json::to_value(config.document())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let saved = g
        .store
        .config_put(expected, document, &who.user)
        .await
        .map_err(|e| match e {
            flowwatch_storage::Error::Conflict { .. } => conflict(e.to_string()),
            other => ApiError::store(other),
        })?;
    let in_force = InForce {
        version: saved.version,
        config: Arc::new(config),
    };
    let body = answer(&in_force);
    tracing::info!(
        version = saved.version,
        who.user,
        "configuration saved: {what}"
    );
    g.audit(
        &who.user,
        "config.save",
        &format!("version {}", saved.version),
        json!({ "change": what }),
    )
    .await;
    // Two saves racing: the newer version stays in force whichever is published last.
    g.config.send_if_modified(|current| {
        let newer = in_force.version > current.version;
        if newer {
            *current = in_force;
        }
        newer
    });
    Ok(Json(body))
}

fn conflict(message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "version_conflict", message).at("version")
}

/// A flow's settings that the document refuses, at the request's `settings.<field>` (the
/// document's path is `countries.….config.<field>`).
pub(crate) fn settings_error(e: ConfigError) -> ApiError {
    let path = e
        .errors
        .first()
        .map(|f| f.path.as_str())
        .unwrap_or_default();
    let field = path.rsplit_once(".config").map_or("", |(_, field)| field);
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_config", e.to_string())
        .at(format!("settings{field}"))
}

/// A change of one flow's own settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowChange {
    /// The version the change is based on.
    version: u64,
    /// The settings (SPEC §5 names).
    settings: FlowSettings,
}

/// The version a removal is based on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Based {
    version: u64,
}

/// How a flow's own settings change.
enum Edit {
    /// Replaced by these (a field left out is inherited).
    Replace(FlowSettings),
    /// These fields set, the others kept.
    Merge(FlowSettings),
    /// The flow's entry removed: everything inherited.
    Remove,
}

/// Saves the configuration in force with one flow's own settings edited, if `version` is
/// still the newest.
async fn edit_flow(
    g: &Gateway,
    who: &Caller,
    path: (String, String, String, String),
    version: u64,
    edit: Edit,
) -> Result<Json<Value>, ApiError> {
    let flow = crate::views::flow_of(path)?;
    let in_force = g.config.borrow().clone();
    if version != in_force.version {
        return Err(conflict(format!(
            "configuration version conflict: expected version {version}, the newest is {}",
            in_force.version
        )));
    }
    let what = match &edit {
        Edit::Replace(_) => format!("flow {flow}: settings replaced"),
        Edit::Merge(_) => format!("flow {flow}: settings changed"),
        Edit::Remove => format!("flow {flow}: own settings removed"),
    };
    let config = match edit {
        Edit::Replace(settings) => in_force
            .config
            .with_flow_settings(&flow, |own| *own = settings),
        Edit::Merge(settings) => in_force
            .config
            .with_flow_settings(&flow, |own| own.merge(&settings)),
        Edit::Remove => in_force
            .config
            .without_flow_settings(&flow)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("flow {flow} has no settings of its own"),
                )
            })?,
    }
    .map_err(settings_error)?;
    save(g, who, &what, version, config).await
}

/// `PUT /api/v1/config/flows/{country}/{lob}/{kind}/{flow}` `{"version", "settings"}`: the
/// flow's own settings replaced (a field left out is inherited); with `PATCH`, the fields
/// given are set and the flow's others kept. Enabling and disabling is `{"enabled": false}`.
pub async fn change_flow(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    method: Method,
    Path(path): Path<(String, String, String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let change: FlowChange = crate::rest::json_body(body, "change")?;
    let edit = if method == Method::PATCH {
        Edit::Merge(change.settings)
    } else {
        Edit::Replace(change.settings)
    };
    edit_flow(&g, &caller, path, change.version, edit).await
}

/// `DELETE` of the same `?version=N`: the flow's entry removed, everything inherited (its
/// traffic and ticks stay).
pub async fn delete_flow(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Path(path): Path<(String, String, String, String)>,
    query: Result<Query<Based>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(based) = query.map_err(|e| ApiError::query("version", e.body_text()))?;
    edit_flow(&g, &caller, path, based.version, Edit::Remove).await
}
