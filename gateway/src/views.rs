//! Read views of SPEC §9: `GET /api/v1/dashboard` (status counts per country) and
//! `GET /api/v1/events` (status changes, newest first, filtered and paged).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use flowwatch_core::detection::Status;
use flowwatch_core::time::{Instant, epoch_day, parse_rfc3339};
use flowwatch_storage::{Event, EventQuery};
use flowwatch_worker::alarms::AlarmMessage;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Gateway;
use crate::rest::ApiError;

/// The dashboard's columns, in order.
const COLUMNS: [&str; 5] = ["OK", "WARNING", "OUTAGE", "N_A", "DISABLED"];

/// Per country, how many flows are in each status; a disabled flow counts as `DISABLED`, an
/// enabled one not evaluated yet as `N_A`. Every country of the configuration is listed.
pub async fn dashboard(State(g): State<Arc<Gateway>>) -> Result<Json<Value>, ApiError> {
    let config = g.config.borrow().config.clone();
    let flows = g.store.flows().await.map_err(ApiError::store)?;
    let latest: flowwatch_core::FlowMap<Status> = g
        .store
        .latest_statuses()
        .await
        .map_err(ApiError::store)?
        .into_iter()
        .map(|t| (t.flow, t.status))
        .collect();
    let empty = || {
        COLUMNS
            .iter()
            .map(|c| (*c, 0u64))
            .collect::<BTreeMap<_, _>>()
    };
    let mut countries: BTreeMap<String, BTreeMap<&str, u64>> = config
        .document()
        .countries
        .keys()
        .map(|c| (c.clone(), empty()))
        .collect();
    for entry in flows {
        let column = if !config.flow_config(&entry.flow).0.enabled {
            "DISABLED"
        } else {
            latest
                .get(&entry.flow)
                .map_or(Status::NotAvailable, |s| *s)
                .as_str()
        };
        let counts = countries
            .entry(entry.flow.country.clone())
            .or_insert_with(empty);
        *counts.entry(column).or_default() += 1;
    }
    Ok(Json(json!({ "countries": countries })))
}

/// The query of `GET /api/v1/events`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventsQuery {
    /// Changes detected at or after this instant (RFC 3339, or a date: its 00:00 UTC).
    from: Option<String>,
    /// Changes detected before this instant.
    to: Option<String>,
    /// New statuses, comma-separated (`OUTAGE,WARNING`).
    status: Option<String>,
    /// Only this country.
    country: Option<String>,
    /// Only this line of business.
    lob: Option<String>,
    /// Only changes to `OUTAGE`.
    #[serde(default)]
    only_outages: bool,
    /// Page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// The `next` of the previous page.
    cursor: Option<String>,
}

/// An event as listed: the SPEC §8 message and whether it was a revision.
#[derive(Serialize)]
struct Listed<'e> {
    #[serde(flatten)]
    message: AlarmMessage<'e>,
    revision: bool,
}

fn bad_query(path: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message).at(path)
}

/// An instant of a query: RFC 3339, or a date meaning its 00:00 UTC.
fn instant(path: &str, text: &str) -> Result<Instant, ApiError> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(Instant::from(epoch_day(date)) * 86_400);
    }
    parse_rfc3339(text).map_err(|e| {
        bad_query(
            path,
            format!("{path}: {e} (expected RFC 3339 or YYYY-MM-DD)"),
        )
    })
}

/// Status changes, newest first: `{"events": [...], "next"?}`.
pub async fn events(
    State(g): State<Arc<Gateway>>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| bad_query("", e.body_text()))?;
    let mut statuses = Vec::new();
    for s in q
        .status
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        statuses.push(Status::parse(s).ok_or_else(|| {
            bad_query(
                "status",
                format!("status: unknown status \"{s}\" (expected OK, WARNING, OUTAGE or N_A)"),
            )
        })?);
    }
    if q.only_outages {
        statuses = vec![Status::Outage];
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad_query(
            "limit",
            format!("limit: {limit} is not within 1–1000"),
        ));
    }
    let query = EventQuery {
        from: q.from.as_deref().map(|t| instant("from", t)).transpose()?,
        to: q.to.as_deref().map(|t| instant("to", t)).transpose()?,
        country: q.country,
        lob: q.lob,
        statuses,
        limit,
        cursor: q.cursor,
    };
    let page = g.store.query_events(query).await.map_err(ApiError::store)?;
    let listed: Vec<Listed<'_>> = page.events.iter().map(listed).collect();
    let mut body = json!({ "events": listed });
    if let Some(next) = page.next {
        body["next"] = next.into();
    }
    Ok(Json(body))
}

fn listed(e: &Event) -> Listed<'_> {
    Listed {
        message: AlarmMessage::of(e),
        revision: e.revision,
    }
}
