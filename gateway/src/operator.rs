//! What operators do about alarms (SPEC §11): silences (`POST`/`GET /api/v1/silences`,
//! `DELETE /api/v1/silences/{id}`) and acknowledgements (`POST /api/v1/events/{id}/ack`).
//! Both are kept in the store, so every gateway and worker of a cluster sees them and a
//! restart keeps them; each change is in the audit log.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flowwatch_core::event::Acknowledgement;
use flowwatch_core::silence::{FlowScope, Silence, SilenceError, Weekly};
use flowwatch_core::time::{Instant, parse_rfc3339, utc_string};
use flowwatch_ports::ErrorKind;
use flowwatch_storage::Scope;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Gateway;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::rest::json_body;

/// The body of `POST /api/v1/silences`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    scope: FlowScope,
    from: String,
    to: String,
    comment: String,
    #[serde(default)]
    weekly: Option<WeeklyBody>,
}

/// A weekly window as the API writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeeklyBody {
    days: Vec<i64>,
    start: String,
    end: String,
}

fn invalid(e: SilenceError) -> ApiError {
    ApiError::new(ErrorKind::Invalid, "invalid_body", e.to_string()).at(e.field)
}

fn time_field(field: &'static str, text: &str) -> Result<Instant, ApiError> {
    parse_rfc3339(text).map_err(|e| {
        ApiError::new(
            ErrorKind::Invalid,
            "invalid_body",
            format!("{field}: {e} (expected RFC 3339)"),
        )
        .at(field)
    })
}

/// Where a silence stands at `now`.
fn state(s: &Silence, now: Instant) -> &'static str {
    if s.is_over(now) {
        "ended"
    } else if s.from > now {
        "scheduled"
    } else {
        "active"
    }
}

/// A silence as the API shows it (times in RFC 3339).
fn view(s: &Silence, now: Instant) -> Value {
    let mut v = json!({
        "id": s.id,
        "scope": s.scope,
        "from": utc_string(s.from),
        "to": utc_string(s.to),
        "comment": s.comment,
        "createdBy": s.created_by,
        "createdAt": utc_string(s.created_at),
        "state": state(s, now),
    });
    if let Some(w) = &s.weekly {
        v["weekly"] = serde_json::to_value(w).expect("weekly windows serialize");
    }
    if let Some(at) = s.ended_at {
        v["endedAt"] = utc_string(at).into();
    }
    v
}

/// `POST /api/v1/silences`: creates a silence; `201` with it (its `id` first).
pub async fn create_silence(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let new: NewSilence = json_body(body, "silence")?;
    let (from, to) = (time_field("from", &new.from)?, time_field("to", &new.to)?);
    let weekly = (new.weekly.as_ref())
        .map(|w| Weekly::parse(&w.days, &w.start, &w.end))
        .transpose()
        .map_err(invalid)?;
    if new.comment.trim().is_empty() {
        return Err(invalid(SilenceError {
            field: "comment",
            why: "empty: say why the flows are silenced".into(),
        }));
    }
    let now = g.clock.now();
    let silence = Silence {
        id: format!("s-{}", crate::auth::random_hex(8)),
        scope: new.scope,
        from,
        to,
        weekly,
        comment: new.comment,
        created_by: caller.user.clone(),
        created_at: now,
        ended_at: None,
    };
    silence.validate().map_err(invalid)?;
    known_scope(&g, &silence.scope).await?;
    g.store
        .put_silence(silence.clone())
        .await
        .map_err(ApiError::store)?;
    let body = view(&silence, now);
    g.audit(&caller.user, "silence.create", &silence.id, body.clone())
        .await;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Refuses a scope that holds no flow seen in traffic nor configured: a typo would silence
/// nothing, and say nothing.
async fn known_scope(g: &Gateway, scope: &FlowScope) -> Result<(), ApiError> {
    let seen = match &scope.lob {
        Some(lob) => g.store.flows_in(Scope::lob(&scope.country, lob)).await,
        None => g.store.flows_in(Scope::country(&scope.country)).await,
    }
    .map_err(ApiError::store)?;
    if seen.iter().any(|f| scope.covers(&f.flow)) {
        return Ok(());
    }
    let config = g.in_force();
    let country = config.document().countries.get(&scope.country);
    let configured = match (&scope.lob, &scope.flow) {
        (None, _) => country.is_some(),
        (Some(lob), None) => country.is_some_and(|c| c.lobs.contains_key(lob)),
        (Some(lob), Some(flow)) => country
            .and_then(|c| c.lobs.get(lob))
            .is_some_and(|l| l.inputs.contains_key(flow) || l.forwards.contains_key(flow)),
    };
    if configured {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorKind::Invalid,
        "unknown_scope",
        "scope: no flow in it is configured or seen in traffic",
    )
    .at("scope"))
}

/// `GET /api/v1/silences`: every silence, active first, then scheduled, then ended (newest
/// first within each).
pub async fn silences(State(g): State<Arc<Gateway>>) -> Result<Json<Value>, ApiError> {
    let now = g.clock.now();
    let mut all = g.store.silences().await.map_err(ApiError::store)?;
    let rank = |s: &Silence| match state(s, now) {
        "active" => 0,
        "scheduled" => 1,
        _ => 2,
    };
    all.sort_by(|a, b| {
        (rank(a), std::cmp::Reverse(a.from), &a.id).cmp(&(
            rank(b),
            std::cmp::Reverse(b.from),
            &b.id,
        ))
    });
    let listed: Vec<Value> = all.iter().map(|s| view(s, now)).collect();
    Ok(Json(json!({ "silences": listed })))
}

/// `DELETE /api/v1/silences/{id}`: ends a silence now (ticks that started before stay
/// covered); one already over is answered as it is.
pub async fn end_silence(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let now = g.clock.now();
    let Some(mut silence) = g.store.silence(&id).await.map_err(ApiError::store)? else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            "not_found",
            format!("no silence {id:?}"),
        ));
    };
    if !silence.is_over(now) {
        silence.ended_at = Some(now);
        g.store
            .put_silence(silence.clone())
            .await
            .map_err(ApiError::store)?;
        g.audit(
            &caller.user,
            "silence.end",
            &id,
            json!({"endedAt": utc_string(now)}),
        )
        .await;
    }
    Ok(Json(view(&silence, now)))
}

/// The body of `POST /api/v1/events/{id}/ack`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    comment: String,
}

/// The comment of an acknowledgement's body `{"comment"}`, not empty.
pub(crate) fn comment(body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let ack: Ack = json_body(body, "acknowledgement")?;
    if ack.comment.trim().is_empty() {
        return Err(ApiError::new(
            ErrorKind::Invalid,
            "invalid_body",
            "comment: empty: say what is being done",
        )
        .at("comment"));
    }
    Ok(ack.comment)
}

/// Whether `flow`'s latest status is `WARNING` or `OUTAGE`.
pub(crate) async fn in_alarm(g: &Gateway, flow: &flowwatch_core::FlowId) -> Result<bool, ApiError> {
    let latest = (g
        .store
        .latest_statuses_in(Scope::lob(&flow.country, &flow.lob))
        .await)
        .map_err(ApiError::store)?;
    Ok(latest
        .iter()
        .any(|t| t.flow == *flow && t.status.is_alarm()))
}

/// `POST /api/v1/events/{id}/ack` `{"comment"}`: acknowledges a change to `WARNING` or
/// `OUTAGE` of a flow still not `OK`; answers the event as the events API lists it.
pub async fn acknowledge(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let comment = comment(body)?;
    let not_found = || ApiError::new(ErrorKind::NotFound, "not_found", format!("no event {id:?}"));
    let event = (g.store.event(&id).await)
        .map_err(ApiError::store)?
        .ok_or_else(not_found)?;
    if !event.new_status.is_alarm() {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            "not_an_alarm",
            format!(
                "event {id:?} is a change to {}: only a change to WARNING or OUTAGE is acknowledged",
                event.new_status.as_str()
            ),
        ));
    }
    let f = &event.flow;
    if !in_alarm(&g, f).await? {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            "not_in_alarm",
            format!("flow {f} is not in WARNING or OUTAGE now: nothing to acknowledge"),
        ));
    }
    let at = g.clock.now();
    let acknowledgement = Acknowledgement {
        by: caller.user.clone(),
        at,
        comment,
    };
    let event = (g.store.acknowledge(&id, acknowledgement).await)
        .map_err(ApiError::store)?
        .ok_or_else(not_found)?;
    g.audit(
        &caller.user,
        "event.ack",
        &id,
        json!({"flow": f.to_string(), "comment": event.acknowledged.as_ref().map(|a| &a.comment)}),
    )
    .await;
    Ok(Json(crate::views::event_view(&event)))
}
