//! Conversions between the messages of `flowwatch.v1` and the domain types.
//!
//! A message that comes in is validated on the way into its domain type (`TryFrom`); a failure
//! is a [`tonic::Status`] with code `INVALID_ARGUMENT` whose message starts with the path of the
//! field at fault (`flow.kind: …`). A domain type always makes a valid message (`From`).
//! Enumerations are plain `i32` in messages (an unknown number is kept, not dropped), so their
//! fields are read with functions that take the field's path: [`status`], [`ingest_format`].

use flowwatch_core::detection::{Status, TickValues};
use flowwatch_core::record::body::BodyFormat;
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_storage::Event;

use crate::pb;

/// `INVALID_ARGUMENT` for the field at `path`: `"{path}: {message}"`.
pub fn invalid(path: &str, message: impl std::fmt::Display) -> tonic::Status {
    tonic::Status::invalid_argument(format!("{path}: {message}"))
}

/// A message field that must be present.
pub fn required<T>(path: &str, field: Option<T>) -> Result<T, tonic::Status> {
    field.ok_or_else(|| invalid(path, "missing"))
}

/// An optional filter (`country`, `lob`): left out, or a name that is not empty.
pub fn filter(path: &str, field: Option<String>) -> Result<Option<String>, tonic::Status> {
    match field {
        Some(s) if s.is_empty() => Err(invalid(path, "empty (leave it out to take every one)")),
        other => Ok(other),
    }
}

impl From<FlowKind> for pb::FlowKind {
    fn from(kind: FlowKind) -> Self {
        match kind {
            FlowKind::Input => pb::FlowKind::Input,
            FlowKind::Forward => pb::FlowKind::Forward,
        }
    }
}

impl TryFrom<pb::FlowKind> for FlowKind {
    type Error = tonic::Status;

    /// The kind of a `FlowRef` (`flow.kind`); unspecified is refused.
    fn try_from(kind: pb::FlowKind) -> Result<Self, Self::Error> {
        match kind {
            pb::FlowKind::Input => Ok(FlowKind::Input),
            pb::FlowKind::Forward => Ok(FlowKind::Forward),
            pb::FlowKind::Unspecified => Err(invalid(
                "flow.kind",
                "missing: FLOW_KIND_INPUT or FLOW_KIND_FORWARD",
            )),
        }
    }
}

impl From<&FlowId> for pb::FlowRef {
    fn from(flow: &FlowId) -> Self {
        pb::FlowRef {
            country: flow.country.clone(),
            lob: flow.lob.clone(),
            kind: pb::FlowKind::from(flow.kind).into(),
            name: flow.name.clone(),
        }
    }
}

impl TryFrom<pb::FlowRef> for FlowId {
    type Error = tonic::Status;

    /// A flow (the field `flow` of every message that has one): a known kind, no empty part,
    /// a forward named `INPUT:TARGET`.
    fn try_from(flow: pb::FlowRef) -> Result<Self, Self::Error> {
        let kind = pb::FlowKind::try_from(flow.kind).map_err(|_| {
            invalid(
                "flow.kind",
                format!(
                    "unknown value {}: FLOW_KIND_INPUT or FLOW_KIND_FORWARD",
                    flow.kind
                ),
            )
        })?;
        let kind = FlowKind::try_from(kind)?;
        for (path, part) in [("flow.country", &flow.country), ("flow.lob", &flow.lob)] {
            if part.is_empty() {
                return Err(invalid(path, "empty"));
            }
        }
        // What is left to check is the name (empty, or not a forward's `INPUT:TARGET`).
        FlowId::new(&flow.country, &flow.lob, kind, &flow.name).map_err(|e| invalid("flow.name", e))
    }
}

impl From<Status> for pb::FlowStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Ok => pb::FlowStatus::Ok,
            Status::Warning => pb::FlowStatus::Warning,
            Status::Outage => pb::FlowStatus::Outage,
            Status::NotAvailable => pb::FlowStatus::NotAvailable,
        }
    }
}

/// The status in the field at `path` (`FlowStatus` as its number); unspecified or unknown is
/// refused.
pub fn status(path: &str, value: i32) -> Result<Status, tonic::Status> {
    match pb::FlowStatus::try_from(value) {
        Ok(pb::FlowStatus::Ok) => Ok(Status::Ok),
        Ok(pb::FlowStatus::Warning) => Ok(Status::Warning),
        Ok(pb::FlowStatus::Outage) => Ok(Status::Outage),
        Ok(pb::FlowStatus::NotAvailable) => Ok(Status::NotAvailable),
        Ok(pb::FlowStatus::Unspecified) => Err(invalid(path, "missing")),
        Err(_) => Err(invalid(path, format!("unknown value {value}"))),
    }
}

impl From<TickValues> for pb::TickValues {
    fn from(v: TickValues) -> Self {
        pb::TickValues {
            expected: v.expected,
            day_average: v.day_average,
            tick_difference: v.tick_difference,
            day_difference: v.day_difference,
            difference: v.difference,
        }
    }
}

impl TryFrom<pb::TickValues> for TickValues {
    type Error = tonic::Status;

    /// A tick's numbers (the field `values` of a `Tick`): none is NaN.
    fn try_from(v: pb::TickValues) -> Result<Self, Self::Error> {
        for (path, x) in [
            ("values.expected", v.expected),
            ("values.day_average", v.day_average),
            ("values.tick_difference", v.tick_difference),
            ("values.day_difference", v.day_difference),
            ("values.difference", v.difference),
        ] {
            if x.is_nan() {
                return Err(invalid(path, "not a number"));
            }
        }
        Ok(TickValues {
            expected: v.expected,
            day_average: v.day_average,
            tick_difference: v.tick_difference,
            day_difference: v.day_difference,
            difference: v.difference,
            band: None,
        })
    }
}

impl From<&Event> for pb::StatusChange {
    fn from(e: &Event) -> Self {
        pb::StatusChange {
            id: e.id.clone(),
            flow: Some((&e.flow).into()),
            tick_time: e.tick_time,
            time: e.time,
            previous_status: pb::FlowStatus::from(e.previous_status).into(),
            new_status: pb::FlowStatus::from(e.new_status).into(),
            actual: e.actual,
            expected: e.expected,
            difference: e.difference,
            revision: e.revision,
            silenced: e.silenced,
            flapping: e.flapping,
        }
    }
}

impl TryFrom<pb::StatusChange> for Event {
    type Error = tonic::Status;

    /// A status change: an id, a valid flow, two known statuses that differ.
    fn try_from(c: pb::StatusChange) -> Result<Self, Self::Error> {
        if c.id.is_empty() {
            return Err(invalid("id", "empty"));
        }
        let flow = FlowId::try_from(required("flow", c.flow)?)?;
        let previous_status = status("previous_status", c.previous_status)?;
        let new_status = status("new_status", c.new_status)?;
        if previous_status == new_status {
            return Err(invalid(
                "new_status",
                format!("{} is the previous status too", new_status.as_str()),
            ));
        }
        Ok(Event {
            id: c.id,
            flow,
            tick_time: c.tick_time,
            time: c.time,
            previous_status,
            new_status,
            actual: c.actual,
            expected: c.expected,
            difference: c.difference,
            revision: c.revision,
            silenced: c.silenced,
            flapping: c.flapping,
            acknowledged: None,
        })
    }
}

/// The form an ingest chunk names in its field `format`: `None` when it names none
/// (unspecified); an unknown number is refused.
pub fn ingest_format(value: i32) -> Result<Option<BodyFormat>, tonic::Status> {
    match pb::IngestFormat::try_from(value) {
        Ok(pb::IngestFormat::Csv) => Ok(Some(BodyFormat::Csv)),
        Ok(pb::IngestFormat::Ndjson) => Ok(Some(BodyFormat::Ndjson)),
        Ok(pb::IngestFormat::Unspecified) => Ok(None),
        Err(_) => Err(invalid(
            "format",
            format!("unknown value {value}: INGEST_FORMAT_CSV or INGEST_FORMAT_NDJSON"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow_ref(kind: i32, name: &str) -> pb::FlowRef {
        pb::FlowRef {
            country: "CZ".into(),
            lob: "GSM".into(),
            kind,
            name: name.into(),
        }
    }

    /// The code and message of a refusal.
    fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (tonic::Code, String) {
        let e = r.expect_err("refused");
        (e.code(), e.message().to_owned())
    }

    #[test]
    fn flows_go_both_ways() {
        for flow in [
            FlowId::new("CZ", "GSM", FlowKind::Input, "MSSBRN1A").expect("valid"),
            FlowId::new("DE", "SMS", FlowKind::Forward, "A:BILL").expect("valid"),
        ] {
            let message = pb::FlowRef::from(&flow);
            assert_eq!(FlowId::try_from(message).expect("valid"), flow);
        }
        let forward = FlowId::try_from(flow_ref(pb::FlowKind::Forward as i32, "A:BILL"));
        assert_eq!(forward.expect("valid").kind, FlowKind::Forward);
    }

    #[test]
    fn an_invalid_flow_is_refused_naming_the_field() {
        let cases = [
            (flow_ref(0, "A"), "flow.kind: missing"),
            (flow_ref(7, "A"), "flow.kind: unknown value 7"),
            (flow_ref(-1, "A"), "flow.kind: unknown value -1"),
            (flow_ref(1, ""), "flow.name: empty flow name"),
            (flow_ref(2, "A"), "flow.name: invalid forward name \"A\""),
            (flow_ref(2, "A:"), "flow.name: invalid forward name"),
            (
                pb::FlowRef {
                    country: String::new(),
                    ..flow_ref(1, "A")
                },
                "flow.country: empty",
            ),
            (
                pb::FlowRef {
                    lob: String::new(),
                    ..flow_ref(1, "A")
                },
                "flow.lob: empty",
            ),
        ];
        for (message, expected) in cases {
            let (code, text) = refused(FlowId::try_from(message));
            assert_eq!(code, tonic::Code::InvalidArgument);
            assert!(text.starts_with(expected), "{text:?} is not {expected:?}…");
        }
    }

    #[test]
    fn statuses_go_both_ways_and_unknown_ones_are_refused() {
        for s in [
            Status::Ok,
            Status::Warning,
            Status::Outage,
            Status::NotAvailable,
        ] {
            let number = pb::FlowStatus::from(s) as i32;
            assert_eq!(status("status", number).expect("known"), s);
        }
        assert_eq!(
            refused(status("new_status", 0)),
            (tonic::Code::InvalidArgument, "new_status: missing".into())
        );
        assert_eq!(
            refused(status("previous_status", 9)),
            (
                tonic::Code::InvalidArgument,
                "previous_status: unknown value 9".into()
            )
        );
    }

    #[test]
    fn tick_values_go_both_ways_and_nan_is_refused() {
        let v = TickValues {
            expected: 1234.5,
            day_average: 1000.25,
            tick_difference: 0.1,
            day_difference: 0.7,
            difference: f64::INFINITY,
            band: None,
        };
        let message = pb::TickValues::from(v);
        assert_eq!(TickValues::try_from(message).expect("valid"), v);
        let nan = pb::TickValues {
            day_difference: f64::NAN,
            ..message
        };
        let (code, text) = refused(TickValues::try_from(nan));
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert_eq!(text, "values.day_difference: not a number");
    }

    fn event() -> Event {
        Event {
            id: "e1".into(),
            flow: FlowId::new("AT", "DATA", FlowKind::Forward, "IN:OUT").expect("valid"),
            tick_time: 1_486_339_200,
            time: 1_486_342_805,
            previous_status: Status::Ok,
            new_status: Status::Outage,
            actual: 0,
            expected: Some(1_000_000.5),
            difference: Some(0.0),
            revision: false,
            silenced: false,
            flapping: false,
            acknowledged: None,
        }
    }

    #[test]
    fn events_go_both_ways() {
        let e = event();
        let message = pb::StatusChange::from(&e);
        assert_eq!(message.new_status, pb::FlowStatus::Outage as i32);
        assert_eq!(message.flow.as_ref().expect("a flow").name, "IN:OUT");
        assert_eq!(Event::try_from(message).expect("valid"), e);
        let unknown = Event {
            expected: None,
            difference: None,
            previous_status: Status::NotAvailable,
            new_status: Status::Ok,
            revision: true,
            silenced: false,
            flapping: false,
            acknowledged: None,
            ..event()
        };
        assert_eq!(
            Event::try_from(pb::StatusChange::from(&unknown)).expect("valid"),
            unknown
        );
    }

    #[test]
    fn an_invalid_event_is_refused_naming_the_field() {
        let good = pb::StatusChange::from(&event());
        let cases = [
            (
                pb::StatusChange {
                    id: String::new(),
                    ..good.clone()
                },
                "id: empty",
            ),
            (
                pb::StatusChange {
                    flow: None,
                    ..good.clone()
                },
                "flow: missing",
            ),
            (
                pb::StatusChange {
                    flow: Some(flow_ref(3, "A")),
                    ..good.clone()
                },
                "flow.kind: unknown value 3",
            ),
            (
                pb::StatusChange {
                    previous_status: 0,
                    ..good.clone()
                },
                "previous_status: missing",
            ),
            (
                pb::StatusChange {
                    new_status: pb::FlowStatus::Ok as i32,
                    ..good.clone()
                },
                "new_status: OK is the previous status too",
            ),
        ];
        for (message, expected) in cases {
            let (code, text) = refused(Event::try_from(message));
            assert_eq!(code, tonic::Code::InvalidArgument);
            assert!(text.starts_with(expected), "{text:?} is not {expected:?}…");
        }
    }

    #[test]
    fn ingest_formats_and_filters() {
        assert_eq!(
            ingest_format(pb::IngestFormat::Csv as i32).expect("known"),
            Some(BodyFormat::Csv)
        );
        assert_eq!(
            ingest_format(pb::IngestFormat::Ndjson as i32).expect("known"),
            Some(BodyFormat::Ndjson)
        );
        assert_eq!(ingest_format(0).expect("unspecified"), None);
        let (code, text) = refused(ingest_format(5));
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(text.starts_with("format: unknown value 5"), "{text}");

        assert_eq!(filter("country", None).expect("no filter"), None);
        assert_eq!(
            filter("country", Some("CZ".into())).expect("a filter"),
            Some("CZ".into())
        );
        let (code, text) = refused(filter("lob", Some(String::new())));
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(text.starts_with("lob: empty"), "{text}");
        assert_eq!(
            refused(required::<u8>("flow", None)).1,
            "flow: missing".to_owned()
        );
    }
}
