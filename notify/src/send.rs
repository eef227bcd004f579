//! Sends one alarm to one channel's target, as SPEC §12 says each type does:
//! - webhook: a POST of the SPEC §8 JSON, `X-Flowwatch-Signature: sha256=<hex HMAC-SHA256 of
//!   the body with the secret>` and `X-Flowwatch-Event-Id`;
//! - email: subject and text of `flowwatch_core::channel`, `Message-ID` from the event id;
//! - slack: a Slack-compatible incoming-webhook body (`{"text"}`);
//! - kafka: the SPEC §8 JSON, keyed by flow.
//!
//! A test message (`POST /channels/{name}/test`) is a made-up change of a flow in the
//! channel's scope, marked as a test everywhere a reader looks: `"test": true` in the JSON,
//! `[test]` before the subject and the Slack text.

use flowwatch_core::channel::{self, SmtpUrl, Target};
use flowwatch_core::detection::Status;
use flowwatch_core::event::{Event, message};
use flowwatch_core::silence::FlowScope;
use flowwatch_core::time::Instant;
use flowwatch_core::{FlowId, FlowKind};

use crate::kafka::KafkaSender;
use crate::{SendError, http, smtp};

/// What sends to one channel's target (kept while the target stays the same: a Kafka
/// producer keeps its connection).
pub struct Sender {
    name: String,
    target: Target,
    kafka: Option<KafkaSender>,
}

impl Sender {
    /// A sender to `target` of the channel `name`.
    pub fn new(name: &str, target: &Target) -> Sender {
        let kafka = match target {
            Target::Kafka(k) => Some(KafkaSender::new(
                channel::brokers(&k.brokers),
                k.topic.clone(),
            )),
            _ => None,
        };
        Sender {
            name: name.to_owned(),
            target: target.clone(),
            kafka,
        }
    }

    /// Sends `event` (a test message when `test`): what the receiver answered, or why it is
    /// not delivered.
    pub async fn send(&self, event: &Event, test: bool) -> Result<String, SendError> {
        let mark = if test { "[test] " } else { "" };
        match &self.target {
            Target::Webhook(w) => {
                let body = alarm_json(event, test);
                let headers = [
                    (
                        "x-flowwatch-signature",
                        channel::webhook_signature(&w.secret, &body),
                    ),
                    ("x-flowwatch-event-id", event.id.clone()),
                ];
                let reply = http::post(&w.url, "application/json", &headers, body).await?;
                Ok(reply.text)
            }
            Target::Slack(s) => {
                let mut body: serde_json::Value =
                    serde_json::from_slice(&channel::slack_body(event))
                        .expect("Slack bodies are JSON");
                if let Some(text) = body["text"].as_str() {
                    body["text"] = format!("{mark}{text}").into();
                }
                let body = serde_json::to_vec(&body).expect("JSON serializes");
                let reply = http::post(&s.url, "application/json", &[], body).await?;
                Ok(reply.text)
            }
            Target::Email(e) => {
                let url = SmtpUrl::parse(&e.smtp).map_err(SendError::permanent)?;
                let mail = smtp::Mail {
                    from: e.from.clone(),
                    to: e.to.clone(),
                    subject: format!("{mark}{}", channel::email_subject(event)),
                    text: channel::email_text(event),
                    message_id: smtp::message_id(&[&event.id, &self.name]),
                };
                smtp::send(&url, &mail).await
            }
            Target::Kafka(_) => {
                let producer = self.kafka.as_ref().expect("made with a Kafka target");
                producer.send(&event.flow, alarm_json(event, test)).await
            }
        }
    }
}

/// The SPEC §8 JSON of `event`, with `"test": true` for a test message.
fn alarm_json(event: &Event, test: bool) -> Vec<u8> {
    let body = message(event);
    if !test {
        return body;
    }
    let mut v: serde_json::Value = serde_json::from_slice(&body).expect("alarm messages are JSON");
    v["test"] = true.into();
    serde_json::to_vec(&v).expect("JSON serializes")
}

/// The made-up change a test message of the channel `name` (of `scope`) carries at `now_ms`:
/// a flow of the scope (`TEST` where the scope names no LoB, `flowwatch-test` where it names
/// no flow) going from `OK` to `OUTAGE`.
pub fn test_event(name: &str, scope: Option<&FlowScope>, now_ms: i64) -> Event {
    let now: Instant = now_ms.div_euclid(1000);
    let country = scope.map_or("TEST", |s| s.country.as_str());
    let lob = scope.and_then(|s| s.lob.as_deref()).unwrap_or("TEST");
    let kind = scope.and_then(|s| s.kind).unwrap_or(FlowKind::Input);
    let flow = scope
        .and_then(|s| s.flow.as_deref())
        .unwrap_or("flowwatch-test");
    let flow = FlowId::new(country, lob, kind, flow)
        .or_else(|_| FlowId::new("TEST", "TEST", FlowKind::Input, "flowwatch-test"))
        .expect("the fallback flow is valid");
    Event {
        id: format!("test:{name}:{now_ms}"),
        flow,
        tick_time: now - now.rem_euclid(3600),
        time: now,
        previous_status: Status::Ok,
        new_status: Status::Outage,
        actual: 0,
        expected: None,
        difference: None,
        revision: false,
        silenced: false,
        flapping: false,
        acknowledged: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_event_is_a_flow_of_the_scope() {
        let scope = FlowScope {
            country: "CZ".into(),
            lob: Some("GSM".into()),
            kind: None,
            flow: None,
        };
        let e = test_event("ops", Some(&scope), 1_485_901_000_123);
        assert_eq!(e.flow.to_string(), "CZ/GSM/input/flowwatch-test");
        assert_eq!(e.id, "test:ops:1485901000123");
        assert_eq!((e.time, e.tick_time), (1_485_901_000, 1_485_900_000));
        assert!(e.alarmed());
        let e = test_event("ops", None, 0);
        assert_eq!(e.flow.to_string(), "TEST/TEST/input/flowwatch-test");
    }

    #[test]
    fn a_test_message_says_so_in_its_json() {
        let e = test_event("ops", None, 0);
        let plain: serde_json::Value = serde_json::from_slice(&alarm_json(&e, false)).unwrap();
        assert!(plain.get("test").is_none());
        let test: serde_json::Value = serde_json::from_slice(&alarm_json(&e, true)).unwrap();
        assert_eq!(test["test"], true);
        assert_eq!(test["id"], plain["id"]);
    }
}
