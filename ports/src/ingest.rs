//! The ingest port: where a parsed batch of records goes, answered once its records are
//! durable. The worker provides its adapters (its supervisor in this process, or the JetStream
//! ingest stream in front of a cluster); the gateway and the Kafka consumer hold an
//! `Arc<dyn Ingest>`.
//!
//! A source that numbers its records (a Kafka partition) hands them on as a [`SourcedBatch`]:
//! each record with its offset, stored with the source's position in the same atomic write, so
//! a record read again after a crash (stored, but the consumer died before it moved on) is
//! counted once. [`Ingest::resume_at`] says where such a source goes on.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use flowwatch_core::record::{Batch, Record};
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

    /// Hands on the records a numbered source gave from [`resume_at`](Self::resume_at) up to
    /// `batch.end`; returns once they are durable. Records whose offsets were stored before are
    /// not counted again, however the batch is cut.
    async fn submit_sourced(&self, batch: SourcedBatch) -> Result<IngestOutcome, IngestError>;

    /// The offset a numbered source goes on from: every record before it is stored (0 for a
    /// source never seen).
    async fn resume_at(&self, source: &str) -> Result<u64, IngestError>;
}

/// Records read from a source that numbers them (a Kafka partition), in offset order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourcedBatch {
    /// The source, unique per reader (`kafka/<group>/<topic>/<partition>`).
    pub source: String,
    /// Each record with its offset, in offset order; an offset may hold several records (a
    /// message of CSV lines) or none (a refused or empty message).
    pub records: Vec<(u64, Record)>,
    /// The offset after the last one read: where the source goes on.
    pub end: u64,
}

impl SourcedBatch {
    /// The records from offset `from` on, as one batch.
    pub fn batch_from(&self, from: u64) -> Batch {
        self.records
            .iter()
            .filter(|(offset, _)| *offset >= from)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

/// How far each numbered source's reader is behind its source, as the readers of this process
/// last saw it: the System page's and the metrics' ingest lag per Kafka partition.
#[derive(Debug, Default)]
pub struct SourceLag(Mutex<BTreeMap<(String, i32), PartitionLag>>);

/// One partition's reader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionLag {
    /// The next offset to read (every record before it is stored).
    pub position: u64,
    /// The partition's high watermark (the offset after its newest record).
    pub high_watermark: u64,
}

impl PartitionLag {
    /// Records in the partition not stored yet.
    pub fn lag(&self) -> u64 {
        self.high_watermark.saturating_sub(self.position)
    }
}

impl SourceLag {
    /// Notes where the reader of `topic`'s `partition` is.
    pub fn set(&self, topic: &str, partition: i32, lag: PartitionLag) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.insert((topic.to_owned(), partition), lag);
    }

    /// Every partition read, by topic and partition.
    pub fn snapshot(&self) -> Vec<(String, i32, PartitionLag)> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|((t, p), l)| (t.clone(), *p, *l)).collect()
    }

    /// Appends `flowwatch_kafka_lag{topic, partition}` in the Prometheus text format (nothing
    /// before a partition is read).
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let partitions = self.snapshot();
        if partitions.is_empty() {
            return;
        }
        out.push_str("# HELP flowwatch_kafka_lag Records of a Kafka partition not stored yet.\n");
        out.push_str("# TYPE flowwatch_kafka_lag gauge\n");
        for (topic, partition, lag) in partitions {
            let topic = topic.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "flowwatch_kafka_lag{{topic=\"{topic}\",partition=\"{partition}\"}} {}",
                lag.lag()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_what_is_not_stored_per_partition() {
        let lag = SourceLag::default();
        let mut out = String::new();
        lag.render(&mut out);
        assert_eq!(out, "");
        lag.set(
            "cdr",
            1,
            PartitionLag {
                position: 10,
                high_watermark: 25,
            },
        );
        lag.set(
            "cdr",
            0,
            PartitionLag {
                position: 7,
                high_watermark: 7,
            },
        );
        lag.render(&mut out);
        assert!(
            out.contains("flowwatch_kafka_lag{topic=\"cdr\",partition=\"0\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("flowwatch_kafka_lag{topic=\"cdr\",partition=\"1\"} 15\n"),
            "{out}"
        );
        assert_eq!(lag.snapshot()[1].2.lag(), 15);
    }

    #[test]
    fn a_sourced_batch_from_an_offset_leaves_the_records_before_it() {
        let flow =
            flowwatch_core::FlowId::new("CZ", "GSM", flowwatch_core::FlowKind::Input, "A").unwrap();
        let r = |bytes| Record {
            time: 0,
            flow: flow.clone(),
            bytes,
        };
        let batch = SourcedBatch {
            source: "kafka/g/t/0".into(),
            records: vec![(3, r(1)), (4, r(2)), (4, r(4)), (6, r(8))],
            end: 9,
        };
        let total = |b: Batch| b.records().map(|x| x.2).sum::<u64>();
        assert_eq!(total(batch.batch_from(0)), 15);
        assert_eq!(total(batch.batch_from(4)), 14);
        assert_eq!(total(batch.batch_from(7)), 0);
    }
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
