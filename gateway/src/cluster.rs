//! `GET /api/v1/cluster`: the cluster as its leading coordinator sees it — leader, epoch,
//! partitions, what moves, and every worker with its plan, partitions and load — in the shape
//! `flowwatch admin cluster --json` prints ([`flowwatch_proto::cluster::view_json`]).
//!
//! A gateway without coordinators (`flowwatch run`, or `flowwatch gateway` without
//! `--coordinator`) answers `{"clustered": false, "inProcess", "members": []}`: `inProcess`
//! says whether this process evaluates the flows itself (`flowwatch run`). Coordinators
//! configured but none leading: 503 naming each address asked and what it answered.

use flowwatch_ports::ErrorKind;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use flowwatch_proto::cluster::view_json;
use serde_json::{Value, json};

use crate::Gateway;
use crate::error::ApiError;

/// The leading coordinator's view, or the single-process answer.
pub async fn cluster(State(g): State<Arc<Gateway>>) -> Result<Json<Value>, ApiError> {
    let Some(coordinators) = &g.coordinators else {
        return Ok(Json(single_process(g.status.in_process())));
    };
    match coordinators.leader().await {
        Ok(leader) => Ok(Json(view_json(&leader.view))),
        // The caller sees why (the UI polls: no log line each time).
        Err(e) => {
            tracing::debug!("GET /api/v1/cluster: {e}");
            Err(ApiError::new(
                ErrorKind::Unavailable,
                "coordinator_unavailable",
                e.to_string(),
            ))
        }
    }
}

/// The answer of a gateway that knows no coordinator.
fn single_process(in_process: bool) -> Value {
    json!({
        "clustered": false,
        "inProcess": in_process,
        "members": [],
    })
}
