//! Notification channels (SPEC §12): `PUT`/`GET`/`DELETE /api/v1/channels/{name}`,
//! `GET /api/v1/channels`, `POST /api/v1/channels/{name}/test` (a test message sent now, its
//! result answered) and `GET /api/v1/channels/{name}/deliveries` (the latest attempts and how
//! many wait). Channels are kept in the store: every worker's senders follow them within 2 s.
//! Secrets never leave: a webhook's secret and an SMTP password read as `…`, and a `PUT` that
//! sends `…` back keeps the stored one (so a form can show what it read). Each change is in the
//! audit log.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flowwatch_core::channel::{
    Channel, ChannelError, Email, HIDDEN, Target, check_name, smtp_password,
};
use flowwatch_core::time::utc_string;
use flowwatch_ports::ErrorKind;
use flowwatch_storage::{DeliveryAttempt, StoredChannel};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Gateway;
use crate::auth::{Caller, utc_millis};
use crate::error::ApiError;
use crate::rest::json_body;

/// The most attempts one `GET …/deliveries` lists.
const MOST: usize = 100;

fn invalid(e: ChannelError) -> ApiError {
    ApiError::new(ErrorKind::Invalid, "invalid_body", e.to_string()).at(e.field)
}

fn unknown(name: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        "not_found",
        format!("no channel {name:?}"),
    )
}

/// An attempt as the API shows it.
fn attempt_view(a: &DeliveryAttempt) -> Value {
    json!({
        "at": utc_millis(a.at_ms),
        "eventId": a.event_id,
        "attempt": a.attempt,
        "test": a.test,
        "outcome": a.outcome.as_str(),
        "response": a.response,
        "durationMs": a.duration_ms,
    })
}

/// A channel as the API shows it: its document with secrets hidden, who saved it when, how
/// many deliveries wait, its latest attempt.
async fn view(g: &Gateway, c: &StoredChannel) -> Result<Value, ApiError> {
    let pending = (g.store.pending_deliveries(&c.name).await).map_err(ApiError::store)?;
    let last = (g.store.delivery_attempts(&c.name, 1).await).map_err(ApiError::store)?;
    let mut v = serde_json::to_value(c.channel.redacted()).expect("channels serialize");
    v["name"] = c.name.clone().into();
    v["updatedAt"] = utc_string(c.updated_at).into();
    v["updatedBy"] = c.updated_by.clone().into();
    v["pending"] = pending.into();
    v["lastAttempt"] = last.first().map_or(Value::Null, attempt_view);
    Ok(v)
}

async fn stored(g: &Gateway, name: &str) -> Result<StoredChannel, ApiError> {
    (g.store.channel(name).await)
        .map_err(ApiError::store)?
        .ok_or_else(|| unknown(name))
}

/// `GET /api/v1/channels`: every channel, by name.
pub async fn list(State(g): State<Arc<Gateway>>) -> Result<Json<Value>, ApiError> {
    let all = g.store.channels().await.map_err(ApiError::store)?;
    let mut listed = Vec::with_capacity(all.len());
    for c in &all {
        listed.push(view(&g, c).await?);
    }
    Ok(Json(json!({ "channels": listed })))
}

/// `GET /api/v1/channels/{name}`.
pub async fn get_one(
    State(g): State<Arc<Gateway>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = stored(&g, &name).await?;
    Ok(Json(view(&g, &c).await?))
}

/// `channel` with the secrets it sends as `…` taken from `before` (the stored channel).
fn keep_secrets(mut channel: Channel, before: Option<&StoredChannel>) -> Channel {
    let before = before.map(|b| &b.channel.target);
    match (&mut channel.target, before) {
        (Target::Webhook(w), Some(Target::Webhook(old))) if w.secret == HIDDEN => {
            w.secret = old.secret.clone();
        }
        (Target::Email(Email { smtp, .. }), Some(Target::Email(old))) => {
            if let Some(at) = smtp_password(smtp)
                && smtp[at.clone()] == *HIDDEN
                && let Some(was) = smtp_password(&old.smtp)
            {
                smtp.replace_range(at, &old.smtp[was]);
            }
        }
        _ => {}
    }
    channel
}

/// `PUT /api/v1/channels/{name}`: creates (`201`) or replaces (`200`) a channel; the body is
/// `{"type", "target", "scope"?, "minStatus"}`, refused naming the field that is wrong.
pub async fn put(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_name(&name).map_err(invalid)?;
    let document: Value = json_body(body, "channel")?;
    let channel = Channel::parse(&document).map_err(invalid)?;
    let before = g.store.channel(&name).await.map_err(ApiError::store)?;
    let channel = keep_secrets(channel, before.as_ref());
    channel.validate().map_err(invalid)?;
    let saved = StoredChannel {
        name: name.clone(),
        channel,
        updated_at: g.clock.now(),
        updated_by: caller.user.clone(),
    };
    let new = (g.store.put_channel(saved.clone()).await).map_err(ApiError::store)?;
    let redacted = serde_json::to_value(saved.channel.redacted()).expect("channels serialize");
    g.audit(&caller.user, "channel.put", &name, redacted).await;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&g, &saved).await?)).into_response())
}

/// `DELETE /api/v1/channels/{name}`: the channel goes, with its queue and its attempts.
pub async fn delete(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !(g.store.delete_channel(&name).await).map_err(ApiError::store)? {
        return Err(unknown(&name));
    }
    g.audit(&caller.user, "channel.delete", &name, Value::Null)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/channels/{name}/test`: sends a test message now; answers the attempt (a
/// receiver that fails is a `200` saying so: the request did what it was asked).
pub async fn test(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = stored(&g, &name).await?;
    let attempt = flowwatch_notify::delivery::send_test(&*g.store, &g.clock, &c)
        .await
        .map_err(ApiError::store)?;
    let v = attempt_view(&attempt);
    g.audit(&caller.user, "channel.test", &name, v.clone())
        .await;
    Ok(Json(v))
}

/// The query of `GET …/deliveries`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    limit: Option<usize>,
}

/// `GET /api/v1/channels/{name}/deliveries[?limit=N]`: the latest attempts (at most 100),
/// newest first, and how many deliveries wait.
pub async fn deliveries(
    State(g): State<Arc<Gateway>>,
    Path(name): Path<String>,
    query: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::query("", e.body_text()))?;
    stored(&g, &name).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, MOST);
    let attempts = (g.store.delivery_attempts(&name, limit).await).map_err(ApiError::store)?;
    let pending = (g.store.pending_deliveries(&name).await).map_err(ApiError::store)?;
    Ok(Json(json!({
        "pending": pending,
        "deliveries": attempts.iter().map(attempt_view).collect::<Vec<_>>(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(smtp: &str) -> Channel {
        Channel::parse(&json!({"type": "email", "minStatus": "OUTAGE",
            "target": {"smtp": smtp, "from": "a@b.c", "to": ["x@y.z"]}}))
        .unwrap()
    }

    fn stored(channel: Channel) -> StoredChannel {
        StoredChannel {
            name: "m".into(),
            channel,
            updated_at: 0,
            updated_by: "root".into(),
        }
    }

    #[test]
    fn a_password_sent_back_hidden_is_the_stored_one_and_a_new_one_replaces_it() {
        let before = stored(mail("smtp://ops:p%40ss@mail:587?starttls=required"));
        let shown = before.channel.redacted();
        assert_eq!(
            shown,
            mail("smtp://ops:…@mail:587?starttls=required"),
            "as read"
        );
        assert_eq!(keep_secrets(shown, Some(&before)), before.channel);
        let new = mail("smtp://ops:n3w@mail:587");
        assert_eq!(keep_secrets(new.clone(), Some(&before)), new);
        let hidden = mail("smtp://ops:…@mail:587");
        assert_eq!(
            keep_secrets(hidden.clone(), None),
            hidden,
            "nothing to keep"
        );
    }
}
