//! Traffic records and their wire forms: the traffic CSV line (SPEC §6) and the original
//! system's seed message.

use crate::InputError;
use std::borrow::Cow;

use chrono::NaiveDateTime;
use serde::Deserialize;

use crate::config::Config;
use crate::id::{FlowId, FlowKind, validate_parts};
use crate::time::{Instant, local_to_utc, parse_rfc3339};

mod batch;
pub mod body;

pub use batch::Batch;

/// The header line of the traffic CSV.
pub const CSV_HEADER: &str = "time,country,lob,kind,flow,bytes";

/// One record borrowed from a line: a batch of bytes that passed a flow at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// When (Unix seconds, fraction floored).
    pub time: Instant,
    /// Country code.
    pub country: Cow<'a, str>,
    /// Line of business.
    pub lob: Cow<'a, str>,
    /// Input or forward.
    pub kind: FlowKind,
    /// Flow name.
    pub name: Cow<'a, str>,
    /// Size of the batch.
    pub bytes: u64,
}

impl RecordRef<'_> {
    /// The owned record.
    pub fn to_record(&self) -> Record {
        Record {
            time: self.time,
            flow: self.flow_id(),
            bytes: self.bytes,
        }
    }

    /// The flow's id (allocates).
    pub fn flow_id(&self) -> FlowId {
        FlowId {
            country: self.country.clone().into_owned(),
            lob: self.lob.clone().into_owned(),
            kind: self.kind,
            name: self.name.clone().into_owned(),
        }
    }
}

/// Checks the header line of a traffic CSV (a UTF-8 byte order mark is allowed).
pub fn check_csv_header(line: &str) -> Result<(), InputError> {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line == CSV_HEADER {
        Ok(())
    } else {
        Err(InputError::Header {
            found: line.to_owned(),
            expected: CSV_HEADER,
        })
    }
}

/// Parses one data line of the traffic CSV. Fields may be quoted as RFC 4180 allows.
pub fn parse_csv_line(line: &str) -> Result<RecordRef<'_>, InputError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let fields: [Cow<'_, str>; 6] = if line.as_bytes().contains(&b'"') {
        split_quoted(line)?
    } else {
        // Six fields need exactly five commas; found by bytes (a comma is never inside a
        // multi-byte UTF-8 sequence, so the slices stay on character boundaries).
        let b = line.as_bytes();
        let mut cuts = [0usize; 5];
        let mut n = 0;
        for (i, &c) in b.iter().enumerate() {
            if c == b',' {
                if n == 5 {
                    return Err(InputError::Fields(line.split(',').count()));
                }
                cuts[n] = i;
                n += 1;
            }
        }
        if n != 5 {
            return Err(InputError::Fields(n + 1));
        }
        let f = |from: usize, to: usize| Cow::Borrowed(&line[from..to]);
        [
            f(0, cuts[0]),
            f(cuts[0] + 1, cuts[1]),
            f(cuts[1] + 1, cuts[2]),
            f(cuts[2] + 1, cuts[3]),
            f(cuts[3] + 1, cuts[4]),
            f(cuts[4] + 1, b.len()),
        ]
    };
    let [time, country, lob, kind, name, bytes] = fields;
    let time = parse_rfc3339(&time)?;
    let kind = FlowKind::parse(&kind)
        .filter(|_| !kind.ends_with('s'))
        .ok_or_else(|| InputError::Kind(kind.to_string()))?;
    validate_parts(&country, &lob, kind, &name)?;
    let bytes = parse_bytes(&bytes)?;
    Ok(RecordRef {
        time,
        country,
        lob,
        kind,
        name,
        bytes,
    })
}

fn parse_bytes(text: &str) -> Result<u64, InputError> {
    let bad = |why| InputError::Bytes {
        input: text.to_owned(),
        why,
    };
    if text.is_empty() || !text.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad("expected a whole number of bytes"));
    }
    text.parse().map_err(|_| bad("too large"))
}

/// Splits a line with quoted fields (`"a,b"`, `""` for a quote).
fn split_quoted(line: &str) -> Result<[Cow<'_, str>; 6], InputError> {
    let mut fields: Vec<Cow<'_, str>> = Vec::with_capacity(6);
    crate::csv::split_fields(line, &mut fields)?;
    let n = fields.len();
    fields.try_into().map_err(|_| InputError::Fields(n))
}

/// The original system's Kafka message, accepted on every ingest path.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedMessage {
    /// Country code.
    pub country: String,
    /// Line of business.
    pub lob_name: String,
    /// `inputs` or `forwards`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Flow name.
    pub flow_name: String,
    /// Size of the batch in bytes.
    pub data_size: u64,
    /// Local time of the country, `DD.MM.YYYY HH:MM:SS`.
    pub time: String,
}

/// An owned record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When (Unix seconds).
    pub time: Instant,
    /// Which flow.
    pub flow: FlowId,
    /// Size of the batch.
    pub bytes: u64,
}

/// Appends a record of `flow` as one line of the traffic CSV (time in UTC), which
/// [`parse_csv_line`] reads back.
pub fn write_csv_line(out: &mut String, flow: &FlowId, time: Instant, bytes: u64) {
    use std::fmt::Write;
    crate::time::write_utc(time, out);
    for part in [&*flow.country, &*flow.lob, flow.kind.as_str(), &*flow.name] {
        out.push(',');
        crate::csv::write_field(out, part);
    }
    let _ = writeln!(out, ",{bytes}");
}

impl SeedMessage {
    /// Parses one message.
    pub fn parse(json: &str) -> Result<SeedMessage, InputError> {
        serde_json::from_str(json).map_err(|e| InputError::Json {
            what: "seed message",
            why: e.to_string(),
        })
    }

    /// The record it carries; its local time is read in the country's zone (an ambiguous time
    /// is the earlier instant, SPEC §2).
    pub fn to_record(&self, config: &Config) -> Result<Record, InputError> {
        let kind = match self.kind.as_str() {
            "inputs" => FlowKind::Input,
            "forwards" => FlowKind::Forward,
            other => return Err(InputError::SeedType(other.to_owned())),
        };
        let flow = FlowId::new(&self.country, &self.lob_name, kind, &self.flow_name)?;
        let local =
            NaiveDateTime::parse_from_str(&self.time, "%d.%m.%Y %H:%M:%S").map_err(|_| {
                InputError::Time {
                    input: self.time.clone(),
                    why: "expected local time DD.MM.YYYY HH:MM:SS",
                }
            })?;
        let calendar = config
            .calendar(&self.country)
            .ok_or_else(|| unknown_country(&self.country))?;
        Ok(Record {
            time: local_to_utc(calendar.tz(), local),
            flow,
            bytes: self.data_size,
        })
    }
}

/// The error for a record of a country with no zone.
pub fn unknown_country(country: &str) -> InputError {
    InputError::UnknownCountry(country.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spec_lines() {
        let r = parse_csv_line("2017-02-01T08:15:03Z,CZ,GSM,input,MSSBRN1A,18838553").unwrap();
        assert_eq!(r.time, parse_rfc3339("2017-02-01T08:15:03Z").unwrap());
        assert_eq!(
            (&*r.country, &*r.lob, r.kind, &*r.name),
            ("CZ", "GSM", FlowKind::Input, "MSSBRN1A")
        );
        assert_eq!(r.bytes, 18_838_553);
        let r =
            parse_csv_line("2017-02-01T08:15:09+01:00,CZ,GSM,forward,MSSBRN1A:CZFOX-GSM,1883855\r")
                .unwrap();
        assert_eq!(r.flow_id().input_name(), Some("MSSBRN1A"));
        assert_eq!(r.bytes, 1_883_855);
    }

    #[test]
    fn quoted_fields() {
        let r = parse_csv_line(r#""2017-02-01T08:15:03Z",CZ,"G,SM",input,"A""B",5"#).unwrap();
        assert_eq!(&*r.lob, "G,SM");
        assert_eq!(&*r.name, "A\"B");
        assert!(parse_csv_line(r#"2017-02-01T08:15:03Z,CZ,"GSM,input,A,5"#).is_err());
    }

    #[test]
    fn each_malformed_line_says_why() {
        let cases = [
            (
                "2017-02-01T08:15:03Z,CZ,GSM,input,A",
                "expected 6 fields, found 5",
            ),
            (
                "2017-02-01T08:15:03Z,CZ,GSM,input,A,1,2",
                "expected 6 fields, found 7",
            ),
            (
                "2017-02-31T08:15:03Z,CZ,GSM,input,A,1",
                "invalid time \"2017-02-31T08:15:03Z\": no such date",
            ),
            (
                "2017-02-01T08:15:03Z,CZ,GSM,inputs,A,1",
                "invalid kind \"inputs\"",
            ),
            (
                "2017-02-01T08:15:03Z,CZ,GSM,Input,A,1",
                "invalid kind \"Input\"",
            ),
            ("2017-02-01T08:15:03Z,,GSM,input,A,1", "empty country"),
            ("2017-02-01T08:15:03Z,CZ,,input,A,1", "empty lob"),
            ("2017-02-01T08:15:03Z,CZ,GSM,input,,1", "empty flow name"),
            (
                "2017-02-01T08:15:03Z,CZ,GSM,forward,A,1",
                "invalid forward name \"A\": expected INPUT:TARGET",
            ),
            (
                "2017-02-01T08:15:03Z,CZ,GSM,input,A,-5",
                "invalid bytes \"-5\"",
            ),
            (
                "2017-02-01T08:15:03Z,CZ,GSM,input,A,1.5",
                "invalid bytes \"1.5\"",
            ),
            ("2017-02-01T08:15:03Z,CZ,GSM,input,A,", "invalid bytes \"\""),
            (
                "2017-02-01T08:15:03Z,CZ,GSM,input,A,99999999999999999999",
                "too large",
            ),
        ];
        for (line, why) in cases {
            let err = parse_csv_line(line).unwrap_err().to_string();
            assert!(err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn header() {
        assert!(check_csv_header(CSV_HEADER).is_ok());
        assert!(check_csv_header("\u{feff}time,country,lob,kind,flow,bytes\r").is_ok());
        assert!(
            check_csv_header("time,country,lob,kind,name,bytes")
                .unwrap_err()
                .to_string()
                .contains("expected")
        );
    }

    #[test]
    fn seed_message_in_local_time() {
        let cfg = Config::default();
        let m = SeedMessage::parse(
            r#"{"country":"CZ","lobName":"GSM","type":"inputs","flowName":"MSSBRN1A","dataSize":123,"time":"01.02.2017 08:15:03"}"#,
        )
        .unwrap();
        let r = m.to_record(&cfg).unwrap();
        assert_eq!(r.time, parse_rfc3339("2017-02-01T07:15:03Z").unwrap());
        assert_eq!(r.bytes, 123);
        assert_eq!(r.flow.kind, FlowKind::Input);
        // In the autumn fold the earlier instant.
        let mut m2 = m.clone();
        m2.time = "30.10.2016 02:30:00".into();
        assert_eq!(
            m2.to_record(&cfg).unwrap().time,
            parse_rfc3339("2016-10-30T00:30:00Z").unwrap()
        );
    }

    #[test]
    fn bad_seed_messages() {
        let cfg = Config::default();
        assert!(
            SeedMessage::parse(r#"{"country":"CZ"}"#)
                .unwrap_err()
                .to_string()
                .contains("missing field")
        );
        assert!(
            SeedMessage::parse(r#"{"country":"CZ","x":1}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown field `x`")
        );
        let m = |kind: &str, time: &str, country: &str| SeedMessage {
            country: country.into(),
            lob_name: "GSM".into(),
            kind: kind.into(),
            flow_name: "A:B".into(),
            data_size: 1,
            time: time.into(),
        };
        assert!(
            m("input", "01.02.2017 08:15:03", "CZ")
                .to_record(&cfg)
                .unwrap_err()
                .to_string()
                .contains("invalid type")
        );
        assert!(
            m("forwards", "2017-02-01", "CZ")
                .to_record(&cfg)
                .unwrap_err()
                .to_string()
                .contains("invalid time")
        );
        assert!(
            m("forwards", "01.02.2017 08:15:03", "PL")
                .to_record(&cfg)
                .unwrap_err()
                .to_string()
                .contains("unknown country")
        );
        assert!(
            m("forwards", "01.02.2017 08:15:03", "CZ")
                .to_record(&cfg)
                .is_ok()
        );
    }
}
