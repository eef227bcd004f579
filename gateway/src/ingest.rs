//! Taking an ingest body, the part `POST /api/v1/ingest` and the gRPC `Ingest` stream share:
//! parse it with the configuration in force (`flowwatch_core::record::body::parse_body`), hand
//! the good records to the worker (`Gateway.ingest`), and count what was stored and refused.

use flowwatch_core::record::body::{BodyFormat, parse_body};
use flowwatch_ports::ErrorKind;
use serde::Serialize;

use crate::Gateway;
use crate::error::ApiError;

/// What an ingest took: `{"accepted", "refused", "errors": [{"line"?, "message"}]}`.
#[derive(Debug, Default, Serialize)]
pub struct Ingested {
    /// Records stored.
    pub accepted: u64,
    /// Records refused (bad lines, and records the worker refused).
    pub refused: u64,
    /// Each refusal.
    pub errors: Vec<IngestError>,
}

/// A refused line, or records of a flow the worker refused (no line).
#[derive(Debug, Serialize)]
pub struct IngestError {
    /// The line number, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Why.
    pub message: String,
}

impl Ingested {
    /// Adds what a later part of the same upload took.
    pub fn add(&mut self, more: Ingested) {
        self.accepted += more.accepted;
        self.refused += more.refused;
        self.errors.extend(more.errors);
    }
}

/// Parses `body` and answers once its good records are stored. `line_offset` is added to every
/// line number (a part of a longer upload); 0 for a whole body. A body that cannot be parsed
/// at all (a CSV without its header) is a 400 naming the line; records that were not stored
/// are answered by the kind of the failure, a 503 when the store or the stream is away
/// (nothing of the body was stored: the client may send it again).
pub async fn take(
    g: &Gateway,
    format: BodyFormat,
    body: &str,
    line_offset: u64,
) -> Result<Ingested, ApiError> {
    let config = g.in_force();
    let parsed = parse_body(format, body, &config).map_err(|e| {
        ApiError::new(
            ErrorKind::Invalid,
            "invalid_body",
            format!("line {}: {}", e.line + line_offset, e.message),
        )
    })?;
    let mut errors: Vec<IngestError> = parsed
        .refused
        .into_iter()
        .map(|e| IngestError {
            line: Some(e.line + line_offset),
            message: e.message,
        })
        .collect();
    let mut refused = errors.len() as u64;
    let outcome = if parsed.batch.is_empty() {
        Default::default()
    } else {
        // Nothing of the batch was stored: the client may send it again (a store or stream
        // that is away is a 503).
        g.ingest
            .submit(parsed.batch)
            .await
            .map_err(|why| ApiError::from_error("not_stored", &why))?
    };
    for (flow, n, why) in outcome.refused {
        refused += n;
        errors.push(IngestError {
            line: None,
            message: format!("{n} records of {flow}: {why}"),
        });
    }
    Ok(Ingested {
        accepted: outcome.accepted,
        refused,
        errors,
    })
}
