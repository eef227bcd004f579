//! The ingest port: where a parsed batch of records goes, answered once its records are
//! durable. The worker provides its adapters (its supervisor in this process, or the JetStream
//! ingest stream in front of a cluster); the gateway and the Kafka consumer hold an
//! `Arc<dyn Ingest>`.

use async_trait::async_trait;
use flowwatch_core::record::Batch;
use flowwatch_core::{FlowId, InputError};

use crate::BoxError;
use crate::error::{ErrorKind, HasKind};

/// Takes batches of records.
#[async_trait]
pub trait Ingest: Send + Sync {
    /// Hands `batch` on; returns once its accepted records are durable (stored, or held by
    /// the ingest stream). An error means nothing of the batch is durable: the caller may send
    /// it again.
    async fn submit(&self, batch: Batch) -> Result<IngestOutcome, IngestError>;
}

/// How an ingest went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Records stored (or, for a repeated marked batch, stored before).
    pub accepted: u64,
    /// Records refused, with the reason (e.g. a country without a zone), per flow.
    pub refused: Vec<(FlowId, u64, InputError)>,
}

/// Why a batch was not taken (nothing of it is durable).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The store failed.
    #[error("the records were not stored: {0}")]
    Store(#[from] flowwatch_storage::Error),
    /// The worker that stores them is not running (stopping, or failed).
    #[error("the worker is not running: {0}")]
    Stopped(#[source] BoxError),
    /// The ingest stream did not take them.
    #[error("{what}: {source}")]
    Stream {
        /// What was attempted (`publish to JetStream`).
        what: String,
        /// What the stream said.
        #[source]
        source: BoxError,
    },
}

impl HasKind for IngestError {
    fn kind(&self) -> ErrorKind {
        match self {
            IngestError::Store(e) => e.kind(),
            IngestError::Stopped(_) | IngestError::Stream { .. } => ErrorKind::Unavailable,
        }
    }
}
