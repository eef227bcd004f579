//! Alarms leave through the outbox: flow actors store each event and, in the same write, queue
//! it (`Store::append_events`); the [`Relay`] publishes what is queued and only then marks it
//! done. While the message bus is away the relay retries with backoff and evaluation goes on,
//! so no alarm is lost and none blocks a tick.
//!
//! On NATS an alarm is the SPEC §8 message on `flowwatch.alarms.<country>.<lob>.<kind>.<flow>`,
//! published to the JetStream stream `FLOWWATCH_ALARMS` (kept for late subscribers) with
//! `Nats-Msg-Id` = the event id, so a repeat after a lost acknowledgement is dropped by the
//! server. Without NATS (`flowwatch run` alone) alarms go to the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use flowwatch_core::detection::Status;
use flowwatch_core::time::{parse_rfc3339, utc_string};
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_storage::{Event, Store};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::metrics::Counter;
use flowwatch_proto::server::write_metric;

/// The stream that keeps alarms for late subscribers.
pub const ALARM_STREAM: &str = "FLOWWATCH_ALARMS";
/// The subject prefix of alarms.
pub const ALARM_SUBJECT: &str = "flowwatch.alarms";
/// The `system` of every alarm message.
const SYSTEM: &str = "mediation";
/// How long the stream keeps alarms.
const ALARM_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Alarms published per round.
const BATCH: usize = 256;
/// The longest pause between attempts while the bus is away.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the outbox is looked at when nothing wakes the relay.
const POLL: Duration = Duration::from_secs(1);

/// The SPEC §8 message of an event (also what the events API lists).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmMessage<'e> {
    id: &'e str,
    system: &'static str,
    country: &'e str,
    lob_name: &'e str,
    kind: &'static str,
    flow_name: &'e str,
    tick_time: String,
    time: String,
    previous_status: &'static str,
    new_status: &'static str,
    actual: u64,
    expected: Option<f64>,
    difference: Option<f64>,
}

impl<'e> AlarmMessage<'e> {
    /// The message of `e`.
    pub fn of(e: &'e Event) -> AlarmMessage<'e> {
        AlarmMessage {
            id: &e.id,
            system: SYSTEM,
            country: &e.flow.country,
            lob_name: &e.flow.lob,
            kind: e.flow.kind.as_str(),
            flow_name: &e.flow.name,
            tick_time: utc_string(e.tick_time),
            time: utc_string(e.time),
            previous_status: e.previous_status.as_str(),
            new_status: e.new_status.as_str(),
            actual: e.actual,
            expected: e.expected,
            difference: e.difference,
        }
    }
}

/// The SPEC §8 JSON of an event.
pub fn message(e: &Event) -> Vec<u8> {
    serde_json::to_vec(&AlarmMessage::of(e)).expect("alarm messages serialize")
}

/// The event of a SPEC §8 message, the inverse of [`message`] (what a gateway reads from
/// NATS). Every field is checked; an error names the first bad one (`tickTime: invalid time
/// …`). Fields the SPEC does not define are ignored; `expected` and `difference` may be `null`
/// or left out. A message is never a revision (revisions are not alarmed).
pub fn parse_message(payload: &[u8]) -> Result<Event, String> {
    use serde_json::Value;
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(m) = value else {
        return Err("not a JSON object".into());
    };
    let text = |name: &str| match m.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
        Some(Value::String(_)) => Err(format!("{name}: empty")),
        Some(other) => Err(format!("{name}: expected a string, found {other}")),
        None => Err(format!("{name}: missing")),
    };
    let time = |name: &str| parse_rfc3339(text(name)?).map_err(|e| format!("{name}: {e}"));
    let status = |name: &str| {
        let s = text(name)?;
        Status::parse(s).ok_or_else(|| format!("{name}: \"{s}\" is not OK, WARNING, OUTAGE or N_A"))
    };
    let number = |name: &str| match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{name}: {n} is not a number")),
        Some(other) => Err(format!("{name}: expected a number or null, found {other}")),
    };
    let id = text("id")?;
    let system = text("system")?;
    if system != SYSTEM {
        return Err(format!("system: expected \"{SYSTEM}\", found \"{system}\""));
    }
    let kind = text("kind")?;
    // Only the spellings `message` writes (not the seed's plural).
    let kind = FlowKind::parse(kind)
        .filter(|k| k.as_str() == kind)
        .ok_or_else(|| format!("kind: \"{kind}\" is not input or forward"))?;
    let (country, lob, name) = (text("country")?, text("lobName")?, text("flowName")?);
    let flow = FlowId::new(country, lob, kind, name).map_err(|e| format!("flowName: {e}"))?;
    let actual = match m.get("actual") {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("actual: {n} is not a count of bytes"))?,
        Some(other) => return Err(format!("actual: expected a number, found {other}")),
        None => return Err("actual: missing".into()),
    };
    Ok(Event {
        id: id.to_owned(),
        flow,
        tick_time: time("tickTime")?,
        time: time("time")?,
        previous_status: status("previousStatus")?,
        new_status: status("newStatus")?,
        actual,
        expected: number("expected")?,
        difference: number("difference")?,
        revision: false,
    })
}

/// The subject of an event's alarm.
pub fn subject(e: &Event) -> String {
    e.flow.subject(ALARM_SUBJECT)
}

/// Where the relay sends alarms.
#[derive(Clone)]
pub enum Sink {
    /// The log only (no message bus configured).
    Log,
    /// NATS JetStream.
    Nats(Box<jetstream::Context>),
}

impl Sink {
    /// A NATS sink on `client`.
    pub fn nats(client: async_nats::Client) -> Sink {
        Sink::Nats(Box::new(jetstream::new(client)))
    }

    /// Makes sure the alarm stream exists (idempotent).
    async fn prepare(&self) -> Result<(), String> {
        let Sink::Nats(js) = self else {
            return Ok(());
        };
        js.get_or_create_stream(jetstream::stream::Config {
            name: ALARM_STREAM.into(),
            subjects: vec![format!("{ALARM_SUBJECT}.>")],
            max_age: ALARM_RETENTION,
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot create stream {ALARM_STREAM}: {e}"))
    }

    /// Publishes `events`; succeeds when every one is acknowledged.
    async fn publish(&self, events: &[Event]) -> Result<(), String> {
        match self {
            Sink::Log => {
                for e in events {
                    tracing::warn!(
                        target: "flowwatch::alarm",
                        flow = %e.flow,
                        tick = %utc_string(e.tick_time),
                        "{} -> {}",
                        e.previous_status.as_str(),
                        e.new_status.as_str()
                    );
                }
                Ok(())
            }
            Sink::Nats(js) => {
                let mut acks = Vec::with_capacity(events.len());
                for e in events {
                    let mut publish = jetstream::message::PublishMessage::build()
                        .payload(message(e).into())
                        .message_id(&e.id);
                    if let Some(cause) = take_cause(&e.id) {
                        let span = tracing::info_span!("worker.publish_alarm", id = %e.id);
                        flowwatch_proto::trace::set_parent(&span, cause);
                        let cx = flowwatch_proto::trace::context(&span);
                        for (k, v) in flowwatch_proto::trace::headers(&cx) {
                            publish = publish.header(k.as_str(), v.as_str());
                        }
                    }
                    let ack = js
                        .send_publish(subject(e), publish)
                        .await
                        .map_err(|err| format!("publish {}: {err}", e.id))?;
                    acks.push(ack);
                }
                for ack in
                    futures_util::future::join_all(acks.into_iter().map(|a| a.into_future())).await
                {
                    ack.map_err(|e| format!("no acknowledgement: {e}"))?;
                }
                Ok(())
            }
        }
    }
}

/// What the relay reports to the status view.
#[derive(Debug, Default)]
pub struct RelayStatus {
    /// Alarms published since start.
    pub published: Counter,
    /// Failed attempts since start.
    pub failures: Counter,
    /// Whether the last attempt succeeded.
    pub healthy: AtomicBool,
}

impl RelayStatus {
    /// Appends the relay's metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        write_metric(
            out,
            "flowwatch_alarms_published_total",
            "counter",
            "Alarms published.",
            self.published.get(),
        );
        write_metric(
            out,
            "flowwatch_alarms_publish_failures_total",
            "counter",
            "Failed publishing attempts.",
            self.failures.get(),
        );
    }
}

/// The trace each pending alarm was raised in, by event id (kept in memory: an alarm
/// published after a restart goes out without its trace). Bounded: past the bound, alarms go
/// untraced.
static CAUSES: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, opentelemetry::Context>>,
> = std::sync::LazyLock::new(Default::default);
const CAUSES_KEPT: usize = 100_000;

/// Keeps the trace an alarm was raised in, for the relay that publishes it.
pub fn remember_cause(id: &str, cx: opentelemetry::Context) {
    let mut causes = CAUSES.lock().expect("no panic holds the causes lock");
    if causes.len() < CAUSES_KEPT {
        causes.insert(id.to_owned(), cx);
    }
}

fn take_cause(id: &str) -> Option<opentelemetry::Context> {
    CAUSES
        .lock()
        .expect("no panic holds the causes lock")
        .remove(id)
}

/// Publishes the outbox.
pub struct Relay {
    store: Arc<dyn Store>,
    sink: Sink,
    wake: broadcast::Receiver<Event>,
    status: Arc<RelayStatus>,
}

impl Relay {
    /// A relay of `store`'s outbox to `sink`, woken by every event on `alarms`.
    pub fn new(store: Arc<dyn Store>, sink: Sink, alarms: &broadcast::Sender<Event>) -> Relay {
        Relay {
            store,
            sink,
            wake: alarms.subscribe(),
            status: Arc::new(RelayStatus::default()),
        }
    }

    /// Its status counters.
    pub fn status(&self) -> Arc<RelayStatus> {
        self.status.clone()
    }

    /// One round: publishes up to a batch of queued alarms and marks them done. Returns how
    /// many were published.
    pub async fn round(&self) -> Result<usize, String> {
        let pending = self
            .store
            .outbox_pending(BATCH)
            .await
            .map_err(|e| format!("outbox: {e}"))?;
        if pending.is_empty() {
            return Ok(0);
        }
        self.sink.publish(&pending).await?;
        let ids: Vec<String> = pending.iter().map(|e| e.id.clone()).collect();
        self.store
            .outbox_done(ids)
            .await
            .map_err(|e| format!("outbox: {e}"))?;
        Ok(pending.len())
    }

    /// Runs until the alarm channel closes: publishes whatever is queued, waits for the next
    /// alarm (or a poll interval), backs off while publishing fails.
    pub async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        let mut prepared = false;
        loop {
            let attempt = async {
                if !prepared {
                    self.sink.prepare().await?;
                    prepared = true;
                }
                self.round().await
            };
            match attempt.await {
                Ok(n) => {
                    backoff = Duration::from_millis(100);
                    self.status.healthy.store(true, Ordering::Relaxed);
                    self.status.published.add(n as u64);
                    if n == BATCH {
                        continue; // more waiting
                    }
                    match tokio::time::timeout(POLL, self.wake.recv()).await {
                        Err(_) | Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                        Ok(Err(broadcast::error::RecvError::Closed)) => {
                            // Shutting down: one last round for what the actors stored.
                            let _ = self.round().await;
                            return;
                        }
                    }
                }
                Err(why) => {
                    if self.status.healthy.swap(false, Ordering::Relaxed) {
                        tracing::warn!("alarms not published, retrying: {why}");
                    }
                    self.status.failures.add(1);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn event(kind: FlowKind, name: &str, expected: Option<f64>) -> Event {
        Event {
            id: "CZ/GSM/input/A@1486339200:OK>OUTAGE".into(),
            flow: FlowId::new("CZ", "Paid \"SMS\"", kind, name).unwrap(),
            tick_time: 1_486_339_200,
            time: 1_486_339_500,
            previous_status: Status::Ok,
            new_status: Status::Outage,
            actual: u64::MAX,
            // Exactly representable, so the round trip compares equal without the
            // float_roundtrip feature of serde_json.
            expected,
            difference: expected.map(|e| e / 4.0),
            revision: false,
        }
    }

    #[test]
    fn messages_round_trip() {
        for e in [
            event(FlowKind::Input, "MSS BRN 1A", Some(1234.5)),
            event(FlowKind::Forward, "MSSBRN1A:CZFOX-GSM", None),
        ] {
            assert_eq!(parse_message(&message(&e)).unwrap(), e);
        }
    }

    #[test]
    fn a_bad_field_is_refused_by_name() {
        let good: Value =
            serde_json::from_slice(&message(&event(FlowKind::Input, "A", Some(8.0)))).unwrap();
        let refused = |field: &str, value: Option<Value>| {
            let mut m = good.clone();
            match value {
                Some(v) => m[field] = v,
                None => {
                    m.as_object_mut().unwrap().remove(field);
                }
            }
            parse_message(m.to_string().as_bytes()).unwrap_err()
        };
        let cases = [
            ("id", Some(json!(""))),
            ("system", Some(json!("billing"))),
            ("country", None),
            ("lobName", Some(json!(7))),
            ("kind", Some(json!("inputs"))),
            ("flowName", Some(json!(""))),
            ("tickTime", Some(json!("2017-02-06"))),
            ("time", Some(json!("yesterday"))),
            ("previousStatus", Some(json!("BAD"))),
            ("newStatus", None),
            ("actual", Some(json!(-1))),
            ("actual", Some(json!(1.5))),
            ("actual", None),
            ("expected", Some(json!("12"))),
            ("difference", Some(json!([]))),
        ];
        for (field, value) in cases {
            let err = refused(field, value.clone());
            assert!(
                err.starts_with(&format!("{field}: ")),
                "{field} {value:?}: {err}"
            );
        }
        let mut forward = good.clone();
        forward["kind"] = json!("forward");
        let err = parse_message(forward.to_string().as_bytes()).unwrap_err();
        assert!(err.starts_with("flowName: invalid forward name"), "{err}");
        // Left-out numbers are unknown, unknown fields are ignored.
        let mut lenient = good.clone();
        lenient.as_object_mut().unwrap().remove("expected");
        lenient["extra"] = json!(1);
        assert_eq!(
            parse_message(lenient.to_string().as_bytes())
                .unwrap()
                .expected,
            None
        );
        assert!(
            parse_message(b"[1]")
                .unwrap_err()
                .starts_with("not a JSON object")
        );
        assert!(parse_message(b"{").unwrap_err().starts_with("not JSON: "));
    }
}
