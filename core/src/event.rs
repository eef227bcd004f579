//! A change of a flow's status (SPEC §4) and its message (SPEC §8): what the worker stores and
//! publishes, what the gateway lists and streams, what subscribers on NATS read.
//!
//! [`message`] writes the SPEC §8 JSON and [`parse_message`] reads it back, checking every field.

use serde::{Deserialize, Serialize};

use crate::detection::Status;
use crate::time::{Instant, parse_rfc3339, utc_string};
use crate::{FlowId, FlowKind};

/// The id suffix of the alarm of a flow still not `OK` when its silence ended.
pub const SILENCE_ENDED: &str = ":silence-ended";
/// The id suffix of the summary of a flow that settled after flapping.
pub const FLAPPING_SETTLED: &str = ":flapping-settled";

/// The subject prefix of alarms on NATS: `flowwatch.alarms.<country>.<lob>.<kind>.<flow>`.
pub const ALARM_SUBJECT: &str = "flowwatch.alarms";
/// The `system` of every alarm message.
pub const SYSTEM: &str = "mediation";

/// A change of a flow's status (SPEC §4, §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique, stable for the same tick and transition.
    pub id: String,
    /// The flow.
    pub flow: FlowId,
    /// Start of the tick that changed the status.
    pub tick_time: Instant,
    /// When the change was detected.
    pub time: Instant,
    /// Status before.
    pub previous_status: Status,
    /// Status after.
    pub new_status: Status,
    /// Bytes in the tick.
    pub actual: u64,
    /// Expected bytes, if known.
    pub expected: Option<f64>,
    /// The difference, if known.
    pub difference: Option<f64>,
    /// A change found by re-evaluating old ticks (no alarm is sent for it).
    pub revision: bool,
    /// A change of a tick a silence covers (SPEC §11): stored and listed, no alarm is sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silenced: bool,
    /// A change of a flow that flaps ([`crate::flapping`]): stored and listed, no alarm is sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flapping: bool,
    /// Who acknowledged it, if anyone did (SPEC §11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Acknowledgement>,
}

/// A person's acknowledgement of an alarm: the flow counts as acknowledged until it is `OK`
/// again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Acknowledgement {
    /// Who (a user name).
    pub by: String,
    /// When (Unix seconds).
    pub at: Instant,
    /// What they said.
    pub comment: String,
}

impl Event {
    /// A change a person acts on: to or from `WARNING` or `OUTAGE`, as it happened (not a
    /// revision). `N_A` ↔ `OK` flips of daily flows and late data re-deciding old ticks are not.
    pub fn actionable(&self) -> bool {
        !self.revision && (self.previous_status.is_alarm() || self.new_status.is_alarm())
    }

    /// Whether it sums up changes held back (a silence ended, a flapping flow settled)
    /// rather than being a change of its tick.
    pub fn is_summary(&self) -> bool {
        self.id.ends_with(SILENCE_ENDED) || self.id.ends_with(FLAPPING_SETTLED)
    }

    /// Whether it is published as an alarm (SPEC §8): not a revision, not silenced, not held
    /// while its flow flaps.
    pub fn alarmed(&self) -> bool {
        !self.revision && !self.silenced && !self.flapping
    }

    /// Whether a flow's acknowledgement survives this change: only a change between
    /// `WARNING` and `OUTAGE` as it happens keeps it (the flow is not `OK` again, and no new
    /// episode begins). A revision changes nothing now.
    pub fn keeps_acknowledgement(&self) -> bool {
        self.revision || (self.previous_status.is_alarm() && self.new_status.is_alarm())
    }

    /// The NATS subject of its alarm (`flowwatch.alarms.<country>.<lob>.<kind>.<flow>`, each
    /// token escaped).
    pub fn subject(&self) -> String {
        self.flow.subject(ALARM_SUBJECT)
    }
}

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

/// Why a message is not a SPEC §8 alarm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The payload does not parse as JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The payload is JSON but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A field is missing or wrong.
    #[error("{field}: {why}")]
    Field {
        /// The field, as the message spells it (`tickTime`).
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

/// The event of a SPEC §8 message, the inverse of [`message`] (what a gateway reads from
/// NATS). Every field is checked; an error names the first bad one (`tickTime: invalid time
/// …`). Fields the SPEC does not define are ignored; `expected` and `difference` may be `null`
/// or left out. A message is never a revision (revisions are not alarmed).
pub fn parse_message(payload: &[u8]) -> Result<Event, MessageError> {
    use serde_json::Value;
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| MessageError::NotJson(e.to_string()))?;
    let Value::Object(m) = value else {
        return Err(MessageError::NotAnObject);
    };
    let bad = |field: &'static str, why: String| MessageError::Field { field, why };
    let text = |name: &'static str| match m.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
        Some(Value::String(_)) => Err(bad(name, "empty".into())),
        Some(other) => Err(bad(name, format!("expected a string, found {other}"))),
        None => Err(bad(name, "missing".into())),
    };
    let time =
        |name: &'static str| parse_rfc3339(text(name)?).map_err(|e| bad(name, e.to_string()));
    let status = |name: &'static str| {
        let s = text(name)?;
        Status::parse(s)
            .ok_or_else(|| bad(name, format!("\"{s}\" is not OK, WARNING, OUTAGE or N_A")))
    };
    let number = |name: &'static str| match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| bad(name, format!("{n} is not a number"))),
        Some(other) => Err(bad(
            name,
            format!("expected a number or null, found {other}"),
        )),
    };
    let id = text("id")?;
    let system = text("system")?;
    if system != SYSTEM {
        return Err(bad(
            "system",
            format!("expected \"{SYSTEM}\", found \"{system}\""),
        ));
    }
    let kind = text("kind")?;
    // Only the spellings `message` writes (not the seed's plural).
    let kind = FlowKind::parse(kind)
        .filter(|k| k.as_str() == kind)
        .ok_or_else(|| bad("kind", format!("\"{kind}\" is not input or forward")))?;
    let (country, lob, name) = (text("country")?, text("lobName")?, text("flowName")?);
    let flow = FlowId::new(country, lob, kind, name).map_err(|e| bad("flowName", e.to_string()))?;
    let actual = match m.get("actual") {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| bad("actual", format!("{n} is not a count of bytes")))?,
        Some(other) => return Err(bad("actual", format!("expected a number, found {other}"))),
        None => return Err(bad("actual", "missing".into())),
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
        silenced: false,
        flapping: false,
        acknowledged: None,
    })
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
            silenced: false,
            flapping: false,
            acknowledged: None,
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
            parse_message(m.to_string().as_bytes())
                .unwrap_err()
                .to_string()
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
        let err = parse_message(forward.to_string().as_bytes())
            .unwrap_err()
            .to_string();
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
        assert_eq!(parse_message(b"[1]"), Err(MessageError::NotAnObject));
        assert!(matches!(parse_message(b"{"), Err(MessageError::NotJson(_))));
    }
}
