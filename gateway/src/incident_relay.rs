//! Incident messages (SPEC §11): beside the per-flow alarms, one message when an incident
//! opens, one when it ends (and one when a LoB- or country-wide incident takes it in), on
//! `flowwatch.incidents.<country>`, into the JetStream stream `FLOWWATCH_INCIDENTS` with
//! `Nats-Msg-Id` = the message id. Subscribers choose: flow alarms, incidents, or both.
//!
//! A gateway with NATS runs the relay. It follows the stored status changes that were alarmed
//! (not revisions, not silenced) — every backend keeps them, whichever worker wrote them — and
//! groups them as `GET /api/v1/incidents` does ([`flowwatch_core::incident`]). A message is
//! marked in the store once JetStream acknowledged it, so a restart does not send it again
//! (and sends what it missed: the grouping starts from the stored changes of the last week);
//! gateways beside each other send the same ids, which JetStream drops as repeats.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use flowwatch_core::id::subject_token;
use flowwatch_core::incident::{Incident, Incidents, Majority, Update};
use flowwatch_core::time::{Instant, utc_string};
use serde_json::{Value, json};

use crate::Gateway;
use crate::incidents::{changes, incident_json};

/// The subject prefix of incident messages: `flowwatch.incidents.<country>`.
pub const INCIDENT_SUBJECT: &str = "flowwatch.incidents";
/// The stream that keeps incident messages for late subscribers.
pub const INCIDENT_STREAM: &str = "FLOWWATCH_INCIDENTS";
/// How long the stream keeps them.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often the stored changes are looked at.
const EVERY: Duration = Duration::from_secs(2);
/// How far back each look reaches before the previous one: a change is stored a little after
/// the time it carries (a worker writes its ticks first).
const OVERLAP: Instant = 300;
/// How far back the grouping starts: flows already down then.
const LEAD: Instant = 7 * 86_400;
/// At start, updates older than this are not sent when missing (like flow alarms, a day).
const LATE: Instant = 86_400;

/// One incident message: its id, subject and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `<incident id>:opened` / `:ended` / `:absorbed`.
    pub id: String,
    /// `flowwatch.incidents.<country>`.
    pub subject: String,
    /// `{"id", "system", "event", "time", "incident": {…}, "into"?}`.
    pub body: Value,
    /// When what it says happened (an incident's start or end).
    pub at: Instant,
}

/// The message of an update, decided at `now`.
pub fn message(update: &Update, now: Instant) -> Message {
    let (event, incident, into): (&str, &Incident, Option<&str>) = match update {
        Update::Opened(i) => ("opened", i, None),
        Update::Ended(i) => ("ended", i, None),
        Update::Absorbed { incident, into } => ("absorbed", incident, Some(into)),
    };
    let id = format!("{}:{event}", incident.id);
    let mut body = json!({
        "id": id,
        "system": flowwatch_core::event::SYSTEM,
        "event": event,
        "time": utc_string(now),
        "incident": incident_json(incident),
    });
    if let Some(into) = into {
        body["into"] = into.into();
    }
    Message {
        subject: format!(
            "{INCIDENT_SUBJECT}.{}",
            subject_token(incident.root.country())
        ),
        at: incident.end.unwrap_or(incident.start),
        id,
        body,
    }
}

/// Runs the relay of `g` until it stops (only with NATS).
pub async fn run(g: Arc<Gateway>) {
    let Some(client) = g.nats.clone() else {
        return;
    };
    let js = jetstream::new(client);
    let stopping = g.clone();
    tokio::select! {
        _ = stopping.stopped() => {}
        _ = relay(&g, &js) => {}
    }
}

async fn relay(g: &Gateway, js: &jetstream::Context) {
    let failing = std::sync::atomic::AtomicBool::new(false);
    let warn = |what: &str, e: &dyn std::fmt::Display| {
        if !failing.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!("incident messages: {what}, retrying: {e}");
        }
    };
    // The stream, and the grouping from the stored changes of the last week.
    let (mut grouping, mut seen, mut since) = loop {
        let stream = js
            .get_or_create_stream(jetstream::stream::Config {
                name: INCIDENT_STREAM.into(),
                subjects: vec![format!("{INCIDENT_SUBJECT}.>")],
                max_age: RETENTION,
                ..Default::default()
            })
            .await;
        let flows = g.store.flows().await;
        match (stream, flows) {
            (Ok(_), Ok(flows)) => {
                let grouping =
                    Incidents::new(Majority::default(), flows.into_iter().map(|f| f.flow));
                break (grouping, HashMap::new(), g.clock.now() - LEAD);
            }
            (Err(e), _) => warn("cannot create the stream", &e),
            (_, Err(e)) => warn("cannot read the flows", &e),
        }
        tokio::time::sleep(EVERY).await;
    };
    let started = g.clock.now();
    let mut unsent: Vec<Message> = Vec::new();
    loop {
        let now = g.clock.now();
        match step(g, &mut grouping, &mut seen, since, now).await {
            Ok(updates) => {
                since = now;
                unsent.extend(
                    (updates.iter().map(|u| message(u, now))).filter(|m| m.at >= started - LATE),
                );
            }
            Err(e) => warn("cannot read the status changes", &e),
        }
        if !unsent.is_empty() {
            match send(g, js, &unsent, now).await {
                Ok(()) => {
                    unsent.clear();
                    failing.store(false, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => warn("cannot publish", &e),
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Observes the alarmed changes stored since `since` (less the overlap) not seen yet, and
/// settles.
async fn step(
    g: &Gateway,
    grouping: &mut Incidents,
    seen: &mut HashMap<String, Instant>,
    since: Instant,
    now: Instant,
) -> flowwatch_storage::Result<Vec<Update>> {
    let config = g.in_force();
    let from = since - OVERLAP;
    let read = changes(&*g.store, &config, from, None, None, |e| e.alarmed()).await?;
    for (e, change) in read.into_iter().flatten() {
        if seen.insert(e.id, e.time).is_none() {
            grouping.observe(change);
        }
    }
    seen.retain(|_, t| *t >= from);
    Ok(grouping.settle(now))
}

/// Publishes the messages not marked published yet, then marks them.
async fn send(
    g: &Gateway,
    js: &jetstream::Context,
    messages: &[Message],
    now: Instant,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let done = g.store.published(ids).await?;
    let mut acks = Vec::new();
    let mut sent = Vec::new();
    for m in messages.iter().filter(|m| !done.contains(&m.id)) {
        let publish = jetstream::message::PublishMessage::build()
            .payload(serde_json::to_vec(&m.body)?.into())
            .message_id(&m.id);
        acks.push(js.send_publish(m.subject.clone(), publish).await?);
        sent.push(m.id.clone());
    }
    for ack in acks {
        ack.await?;
    }
    if !sent.is_empty() {
        tracing::info!(messages = sent.len(), "incident messages published");
        g.store.mark_published(sent, now).await?;
    }
    Ok(())
}
