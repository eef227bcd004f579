//! Ingest bodies: a whole upload in one of the three forms every ingest path accepts (SPEC §6,
//! §9) — the traffic CSV, NDJSON (canonical records or seed messages, one per line) and JSON
//! seed messages (one, or an array). Every bad line is refused with its number and the reason;
//! the rest is taken.

use crate::InputError;
use serde::Deserialize;

use super::{Batch, Record, SeedMessage, check_csv_header, unknown_country};
use crate::config::Config;
use crate::id::{FlowId, FlowKind};
use crate::time::parse_rfc3339;

/// The form of an ingest body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `text/csv`: the traffic CSV with its header.
    Csv,
    /// `application/x-ndjson`: one canonical record or seed message per line.
    Ndjson,
    /// `application/json`: one seed message or an array of them.
    SeedJson,
}

impl BodyFormat {
    /// The form a `Content-Type` names (parameters such as `charset` are ignored).
    pub fn from_content_type(content_type: &str) -> Option<BodyFormat> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media.to_ascii_lowercase().as_str() {
            "text/csv" => Some(BodyFormat::Csv),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
                Some(BodyFormat::Ndjson)
            }
            "application/json" => Some(BodyFormat::SeedJson),
            _ => None,
        }
    }
}

/// A refused line (for a JSON array: the element, counted from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// Line number, from 1.
    pub line: u64,
    /// Why.
    pub message: String,
}

/// What a body held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedBody {
    /// The good records, by flow.
    pub batch: Batch,
    /// The refused lines.
    pub refused: Vec<LineError>,
}

/// The canonical record as JSON: the CSV's columns.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRecord {
    time: String,
    country: String,
    lob: String,
    kind: String,
    flow: String,
    bytes: u64,
}

impl JsonRecord {
    fn to_record(&self) -> Result<Record, InputError> {
        let kind = FlowKind::parse(&self.kind)
            .filter(|_| !self.kind.ends_with('s'))
            .ok_or_else(|| InputError::Kind(self.kind.clone()))?;
        Ok(Record {
            time: parse_rfc3339(&self.time)?,
            flow: FlowId::new(&self.country, &self.lob, kind, &self.flow)?,
            bytes: self.bytes,
        })
    }
}

/// One NDJSON line: a seed message has `flowName`, a canonical record `flow`.
fn parse_json_line(line: &str, config: &Config) -> Result<Record, InputError> {
    if line.contains("\"flowName\"") {
        SeedMessage::parse(line)?.to_record(config)
    } else {
        serde_json::from_str::<JsonRecord>(line)
            .map_err(|e| InputError::Json {
                what: "record",
                why: e.to_string(),
            })?
            .to_record()
    }
}

/// Parses a body. A CSV without its header line is refused whole (the error is for line 1);
/// otherwise every line is taken or refused on its own. Records of a country the
/// configuration does not know are refused: nothing could evaluate them.
pub fn parse_body(
    format: BodyFormat,
    body: &str,
    config: &Config,
) -> Result<ParsedBody, LineError> {
    let mut batch = Batch::default();
    let mut refused = Vec::new();
    let known = |flow: &FlowId| match config.calendar(&flow.country) {
        Some(_) => Ok(()),
        None => Err(unknown_country(&flow.country)),
    };
    let mut refuse = |line: u64, r: Result<(), InputError>| {
        if let Err(e) = r {
            refused.push(LineError {
                line,
                message: e.to_string(),
            });
        }
    };
    let mut take = |line: u64, r: Result<Record, InputError>| {
        refuse(line, r.and_then(|r| batch.add_record(r, known)))
    };
    match format {
        BodyFormat::Csv => {
            let mut lines = body.lines();
            let header = lines.next().unwrap_or("");
            check_csv_header(header).map_err(|e| LineError {
                line: 1,
                message: e.to_string(),
            })?;
            for (i, line) in lines.enumerate() {
                if !line.trim().is_empty() {
                    refuse(i as u64 + 2, batch.add_csv_line(line, known));
                }
            }
        }
        BodyFormat::Ndjson => {
            for (i, line) in body.lines().enumerate() {
                if !line.trim().is_empty() {
                    take(i as u64 + 1, parse_json_line(line, config));
                }
            }
        }
        BodyFormat::SeedJson => {
            let invalid = |e: serde_json::Error| LineError {
                line: e.line() as u64,
                message: format!("invalid JSON: {e}"),
            };
            let value: serde_json::Value = serde_json::from_str(body).map_err(invalid)?;
            let items = match value {
                serde_json::Value::Array(items) => items,
                one => vec![one],
            };
            for (i, item) in items.into_iter().enumerate() {
                let r = serde_json::from_value::<SeedMessage>(item)
                    .map_err(|e| InputError::Json {
                        what: "seed message",
                        why: e.to_string(),
                    })
                    .and_then(|m| m.to_record(config));
                take(i as u64 + 1, r);
            }
        }
    }
    Ok(ParsedBody { batch, refused })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cz(name: &str) -> FlowId {
        FlowId::new("CZ", "GSM", FlowKind::Input, name).unwrap()
    }

    #[test]
    fn content_types() {
        use BodyFormat::*;
        assert_eq!(
            BodyFormat::from_content_type("text/csv; charset=utf-8"),
            Some(Csv)
        );
        assert_eq!(
            BodyFormat::from_content_type("application/x-ndjson"),
            Some(Ndjson)
        );
        assert_eq!(
            BodyFormat::from_content_type("Application/JSON"),
            Some(SeedJson)
        );
        assert_eq!(BodyFormat::from_content_type("text/plain"), None);
    }

    #[test]
    fn csv_takes_good_lines_and_names_bad_ones() {
        let body = "time,country,lob,kind,flow,bytes\n\
                    2017-02-01T08:15:03Z,CZ,GSM,input,A,10\n\
                    2017-02-01T08:15:03Z,CZ,GSM,input,A\n\
                    \n\
                    2017-02-01T08:15:04Z,XX,GSM,input,A,10\n\
                    2017-02-01T08:15:05+01:00,CZ,GSM,input,B,7\r\n";
        let p = parse_body(BodyFormat::Csv, body, &Config::default()).unwrap();
        assert_eq!(
            p.batch
                .records()
                .map(|(flow, _, bytes)| (flow.clone(), bytes))
                .collect::<Vec<_>>(),
            [(cz("A"), 10), (cz("B"), 7)]
        );
        assert_eq!(p.refused.len(), 2);
        assert_eq!(p.refused[0].line, 3);
        assert_eq!(p.refused[0].message, "expected 6 fields, found 5");
        assert_eq!(p.refused[1].line, 5);
        assert!(p.refused[1].message.contains("unknown country \"XX\""));
        let err = parse_body(BodyFormat::Csv, "time,bytes\n", &Config::default()).unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn ndjson_mixes_canonical_records_and_seed_messages() {
        let body = r#"{"time":"2017-02-01T08:15:03Z","country":"CZ","lob":"GSM","kind":"input","flow":"A","bytes":5}
{"country":"CZ","lobName":"GSM","type":"inputs","flowName":"A","dataSize":6,"time":"01.02.2017 09:15:03"}
{"time":"2017-02-01T08:15:03Z","country":"CZ","lob":"GSM","kind":"input","flow":"A","bytes":5,"extra":1}
not json
"#;
        let p = parse_body(BodyFormat::Ndjson, body, &Config::default()).unwrap();
        let times: Vec<_> = p.batch.records().map(|r| r.1).collect();
        assert_eq!(times.len(), 2);
        assert_eq!(times[0], times[1], "CET local time of the seed");
        assert_eq!(p.refused.iter().map(|e| e.line).collect::<Vec<_>>(), [3, 4]);
        assert!(
            p.refused[0].message.contains("unknown field `extra`"),
            "{:?}",
            p.refused
        );
    }

    #[test]
    fn seed_json_one_or_many() {
        let one = r#"{"country":"CZ","lobName":"GSM","type":"forwards","flowName":"A:B","dataSize":6,"time":"01.02.2017 09:15:03"}"#;
        let p = parse_body(BodyFormat::SeedJson, one, &Config::default()).unwrap();
        assert_eq!(p.batch.flows()[0].0.kind, FlowKind::Forward);
        let many = format!(r#"[{one}, {{"country":"CZ"}}]"#);
        let p = parse_body(BodyFormat::SeedJson, &many, &Config::default()).unwrap();
        assert_eq!((p.batch.len(), p.refused[0].line), (1, 2));
        assert!(p.refused[0].message.contains("missing field"));
        let err = parse_body(BodyFormat::SeedJson, "[{", &Config::default()).unwrap_err();
        assert!(err.message.starts_with("invalid JSON"), "{err:?}");
    }
}
