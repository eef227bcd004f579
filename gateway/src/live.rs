//! `GET /api/v1/live`: Server-Sent Events for the UI.
//!
//! - `components`: the status of every component (what `GET /api/v1/status` answers), at once
//!   and every [`COMPONENTS_EVERY`];
//! - `status`: each status change as the workers record it (the SPEC §8 message), filtered by
//!   `?country=&lob=&onlyOutages=`;
//! - `lagged`: `{"skipped": n}` when this client fell behind and missed changes (reload the
//!   views from the REST API).
//!
//! A comment every 15 s keeps proxies from closing a quiet stream. The stream ends when the
//! server shuts down, so a graceful shutdown never waits on an open page.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use flowwatch_core::detection::Status;
use flowwatch_core::event::AlarmMessage;
use flowwatch_storage::Event;
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::Gateway;
use crate::error::ApiError;

/// How often the component status is sent.
pub const COMPONENTS_EVERY: Duration = Duration::from_secs(5);

/// Which status changes a client wants (the live stream's query, the gRPC watch's request).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangeFilter {
    /// Only this country.
    pub country: Option<String>,
    /// Only this line of business.
    pub lob: Option<String>,
    /// Only changes to `OUTAGE`.
    #[serde(default)]
    pub only_outages: bool,
}

impl ChangeFilter {
    /// Whether `e` is wanted.
    pub fn wants(&self, e: &Event) -> bool {
        self.country.as_ref().is_none_or(|c| *c == e.flow.country)
            && self.lob.as_ref().is_none_or(|l| *l == e.flow.lob)
            && (!self.only_outages || e.new_status == Status::Outage)
    }
}

fn json_event(name: &str, data: &impl serde::Serialize) -> SseEvent {
    SseEvent::default()
        .event(name)
        .json_data(data)
        .expect("live events serialize")
}

/// The stream of one client.
pub async fn live(
    State(g): State<Arc<Gateway>>,
    query: Result<Query<ChangeFilter>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let Query(filter) = query.map_err(|e| ApiError::query("", e.body_text()))?;
    let changes = g.status.changes();
    let stopping = g.stopping.subscribe();
    let mut every = tokio::time::interval(COMPONENTS_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = (g, changes, stopping, every, filter);
    let stream = futures_util::stream::unfold(
        state,
        |(g, mut changes, mut stopping, mut every, filter)| async move {
            let event = loop {
                if *stopping.borrow() {
                    return None;
                }
                tokio::select! {
                    _ = stopping.changed() => return None,
                    _ = every.tick() => break json_event("components", &crate::rest::components(&g).await),
                    change = changes.recv() => match change {
                        Ok(e) if filter.wants(&e) => break json_event("status", &AlarmMessage::of(&e)),
                        Ok(_) => continue,
                        Err(RecvError::Lagged(n)) => break json_event("lagged", &serde_json::json!({"skipped": n})),
                        Err(RecvError::Closed) => return None,
                    },
                }
            };
            Some((Ok(event), (g, changes, stopping, every, filter)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowwatch_core::{FlowId, FlowKind};

    #[test]
    fn filters_pick_country_lob_and_outages() {
        let e = |country: &str, status| Event {
            id: "e".into(),
            flow: FlowId::new(country, "GSM", FlowKind::Input, "A").unwrap(),
            tick_time: 0,
            time: 0,
            previous_status: Status::Ok,
            new_status: status,
            actual: 0,
            expected: None,
            difference: None,
            revision: false,
            silenced: false,
            flapping: false,
            acknowledged: None,
        };
        let all = ChangeFilter::default();
        assert!(all.wants(&e("CZ", Status::Warning)));
        let cz_outages = ChangeFilter {
            country: Some("CZ".into()),
            only_outages: true,
            ..ChangeFilter::default()
        };
        assert!(cz_outages.wants(&e("CZ", Status::Outage)));
        assert!(!cz_outages.wants(&e("CZ", Status::Warning)));
        assert!(!cz_outages.wants(&e("DE", Status::Outage)));
        let sms = ChangeFilter {
            lob: Some("SMS".into()),
            ..ChangeFilter::default()
        };
        assert!(!sms.wants(&e("CZ", Status::Outage)));
    }
}
