//! `GET /api/v1/incidents?from=&to=` (SPEC §11): flows that left `OK` together because of
//! one cause, as one incident. Derived on demand from the stored status changes by
//! [`flowwatch_core::incident`] — what every backend keeps — so incidents hold across restarts
//! and are the same through every gateway of a cluster. Open incidents first, then the newest.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use flowwatch_core::FlowId;
use flowwatch_core::config::Config;
use flowwatch_core::detection::Status;
use flowwatch_core::event::Acknowledgement;
use flowwatch_core::incident::{Change, Incident, Incidents, Majority, Root, Update};
use flowwatch_core::time::{Instant, utc_string};
use flowwatch_ports::ErrorKind;
use flowwatch_storage::{Event, EventQuery, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

use crate::Gateway;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::views::instant;

/// How far before `from` the status changes are read: flows already down then.
const LEAD: Instant = 7 * 86_400;
/// The most status changes one request groups.
const MAX_CHANGES: usize = 200_000;

/// The window of incidents asked for.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IncidentsQuery {
    /// Incidents not ended before this instant (RFC 3339, or a date: its 00:00 UTC); the last
    /// 24 hours when absent.
    from: Option<String>,
    /// Incidents started before this instant; now when absent.
    to: Option<String>,
}

/// `{"incidents": [{"id", "root", "flows", "start", "end"?, "worstStatus"}]}`.
pub async fn incidents(
    State(g): State<Arc<Gateway>>,
    query: Result<Query<IncidentsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::query("", e.body_text()))?;
    let now = g.clock.now();
    let asked = q.to.as_deref().map(|t| instant("to", t)).transpose()?;
    let to = asked.unwrap_or(now);
    let from = q.from.as_deref().map(|t| instant("from", t)).transpose()?;
    let from = from.unwrap_or(to - 86_400);
    if to <= from {
        return Err(ApiError::query("to", "to: must be after from".to_owned()));
    }
    // Without `to`, every change stored so far (a worker's clock may be a moment ahead).
    let (open, ended) = derive(&g, from, asked).await?;
    let mut listed: Vec<&Incident> = (open.iter().chain(&ended))
        .filter(|i| i.start < to && i.end.is_none_or(|end| end >= from))
        .collect();
    listed.sort_by_key(|i| (i.end.is_some(), std::cmp::Reverse(i.start)));
    let incidents: Vec<Value> = listed.into_iter().map(incident_json).collect();
    Ok(Json(json!({ "incidents": incidents })))
}

/// The incidents open now and those ended, from the stored status changes (not revisions)
/// detected from a week before `from` to `to` (all stored so far when `None`).
async fn derive(
    g: &Gateway,
    from: Instant,
    to: Option<Instant>,
) -> Result<(Vec<Incident>, Vec<Incident>), ApiError> {
    let config = g.in_force();
    let changes = changes(&*g.store, &config, from - LEAD, to, Some(MAX_CHANGES), |e| {
        !e.revision
    })
    .await
    .map_err(ApiError::store)?
    .ok_or_else(|| {
        let why = format!(
            "from: more than {MAX_CHANGES} status changes from a week before from to to: ask for a shorter window"
        );
        ApiError::new(ErrorKind::Invalid, "from", why)
    })?;
    let flows = g.store.flows().await.map_err(ApiError::store)?;
    let mut grouping = Incidents::new(Majority::default(), flows.into_iter().map(|f| f.flow));
    for (_, c) in changes {
        grouping.observe(c);
    }
    // One settle decides every change in order: the same incidents as settling as they come.
    let ended: Vec<Incident> = (grouping.settle(g.clock.now()).into_iter())
        .filter_map(|u| match u {
            Update::Ended(i) => Some(i),
            _ => None,
        })
        .collect();
    Ok((grouping.open().to_vec(), ended))
}

/// `POST /api/v1/incidents/{id}/ack` `{"comment"}`: acknowledges an open incident: for each
/// of its flows still in `WARNING` or `OUTAGE`, its newest change to one since the incident
/// began (what `POST /api/v1/events/{id}/ack` does for one). Answers
/// `{"incident", "acknowledged": [event ids]}`; 404 for an incident not open in the last week.
pub async fn acknowledge(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let comment = crate::operator::comment(body)?;
    let now = g.clock.now();
    let (open, _) = derive(&g, now - 86_400, None).await?;
    let incident = (open.into_iter().find(|i| i.id == id)).ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotFound,
            "not_found",
            format!("no open incident {id:?}"),
        )
    })?;
    let mut newest: BTreeMap<FlowId, Event> = BTreeMap::new();
    let lobs: BTreeSet<(&str, &str)> = (incident.flows.iter())
        .map(|f| (f.country.as_str(), f.lob.as_str()))
        .collect();
    for (country, lob) in lobs {
        let mut cursor = None;
        loop {
            let page = (g.store.query_events(EventQuery {
                from: Some(incident.start),
                country: Some(country.to_owned()),
                lob: Some(lob.to_owned()),
                statuses: vec![Status::Warning, Status::Outage],
                actionable: true,
                limit: 1000,
                cursor,
                ..EventQuery::default()
            }))
            .await
            .map_err(ApiError::store)?;
            for e in page.events {
                if incident.flows.contains(&e.flow) && !newest.contains_key(&e.flow) {
                    newest.insert(e.flow.clone(), e);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    let mut acknowledged = Vec::new();
    for (flow, e) in newest {
        if !crate::operator::in_alarm(&g, &flow).await? {
            continue;
        }
        let ack = Acknowledgement {
            by: caller.user.clone(),
            at: now,
            comment: comment.clone(),
        };
        if g.store
            .acknowledge(&e.id, ack)
            .await
            .map_err(ApiError::store)?
            .is_some()
        {
            acknowledged.push(e.id);
        }
    }
    g.audit(
        &caller.user,
        "incident.ack",
        &id,
        json!({"comment": comment, "events": acknowledged}),
    )
    .await;
    Ok(Json(json!({"incident": id, "acknowledged": acknowledged})))
}

/// The stored status changes detected in `[from, to)` that `keep` takes, as the incidents
/// read them (each with its flow's tick, from `config`), oldest first; `None` past `max`.
pub(crate) async fn changes(
    store: &dyn Store,
    config: &Config,
    from: Instant,
    to: Option<Instant>,
    max: Option<usize>,
    keep: impl Fn(&Event) -> bool,
) -> flowwatch_storage::Result<Option<Vec<(Event, Change)>>> {
    let mut changes = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query_events(EventQuery {
                from: Some(from),
                to,
                limit: 1000,
                cursor,
                ..EventQuery::default()
            })
            .await?;
        for e in page.events.into_iter().filter(|e| keep(e)) {
            let tick = i64::from(config.flow_config(&e.flow).0.granularity.seconds());
            let change = Change {
                flow: e.flow.clone(),
                start: e.tick_time,
                end: e.tick_time + tick,
                previous: e.previous_status,
                new: e.new_status,
            };
            changes.push((e, change));
        }
        if max.is_some_and(|max| changes.len() > max) {
            return Ok(None);
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    changes.reverse();
    Ok(Some(changes))
}

fn flow_json(f: &FlowId) -> Value {
    json!({"country": f.country, "lob": f.lob, "kind": f.kind.as_str(), "flow": f.name})
}

pub(crate) fn incident_json(i: &Incident) -> Value {
    let root = match &i.root {
        Root::Flow(f) => flow_json(f),
        Root::Lob { country, lob } => json!({"country": country, "lob": lob}),
        Root::Country { country } => json!({"country": country}),
    };
    let mut v = json!({
        "id": i.id,
        "root": root,
        "flows": i.flows.iter().map(flow_json).collect::<Vec<_>>(),
        "start": utc_string(i.start),
        "worstStatus": i.worst.as_str(),
    });
    if let Some(end) = i.end {
        v["end"] = utc_string(end).into();
    }
    v
}
