//! `GET /api/v1/config` → `{"version", "document"}`; `PUT /api/v1/config` `{"version",
//! "document"}` saves a new version if `version` is still the newest (409 otherwise), after
//! validating the whole document (400 naming each field's path; nothing is applied). A saved
//! version is put in force at once: the workers take it from their next tick.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use flowwatch_core::config::Config;
use serde::Deserialize;
use serde_json::{Value, json};

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
    let document = serde_json::to_value(config.document())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let saved = g
        .store
        .config_put(put.version, document, "api")
        .await
        .map_err(|e| match e {
            flowwatch_storage::Error::Conflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "version_conflict", e.to_string()).at("version")
            }
            other => ApiError::store(other),
        })?;
    let in_force = InForce {
        version: saved.version,
        config: Arc::new(config),
    };
    let body = answer(&in_force);
    tracing::info!(version = saved.version, "configuration saved");
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
