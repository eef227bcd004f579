//! Ingest: how records reach a worker's supervisor.
//!
//! Both are adapters of the ingest port ([`flowwatch_ports::Ingest`]):
//! - In one process (`flowwatch run`), [`SupervisorIngest`] hands a batch to the supervisor,
//!   whose mailbox is the queue; the call returns once the batch is stored.
//! - In a cluster, [`JetStreamIngest`] publishes records to the stream
//!   `FLOWWATCH_INGEST` on `flowwatch.ingest.<partition>` (the partition is a stable hash of the
//!   flow id), as the SPEC §6 CSV, and returns once JetStream has them. A worker runs a
//!   [`PartitionConsumer`] per partition it owns: a durable pull consumer whose messages are
//!   acknowledged only after their records are stored, each batch stored with its stream
//!   position, so a batch delivered again after a crash is counted once. A consumer starting
//!   on a partition (a restart, or a partition moved from another worker) makes the durable
//!   consumer afresh, so the messages nobody acknowledged come first, in stream order: none is
//!   passed over by a newer one (which would make its position look stored).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, consumer::pull};
use async_trait::async_trait;
use flowwatch_core::FlowId;
use flowwatch_core::record::{Batch, check_csv_header, write_csv_line};
use flowwatch_core::time::Instant;
use flowwatch_ports::{Ingest, IngestError, IngestOutcome};
use flowwatch_storage::{IngestMark, Store};
use futures_util::StreamExt;
use ractor::ActorRef;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::actors::flow_supervisor::SupervisorMsg;

/// The ingest stream.
pub const INGEST_STREAM: &str = "FLOWWATCH_INGEST";
/// The subject prefix of the ingest partitions.
pub const INGEST_SUBJECT: &str = "flowwatch.ingest";
/// Ingest partitions when none are configured (the gateway's `--partitions`, the JetStream
/// load driver's); every publisher and every worker of a cluster must use the same number.
pub const DEFAULT_PARTITIONS: u32 = 8;
/// Records per JetStream message (about 60 KB).
const RECORDS_PER_MESSAGE: usize = 1000;
/// Messages a consumer takes per batch.
const MESSAGES_PER_BATCH: usize = 64;

/// The in-process ingest adapter: a batch goes to this process's supervisor, whose mailbox is
/// the queue, and is answered once stored.
#[derive(Clone)]
pub struct SupervisorIngest(pub ActorRef<SupervisorMsg>);

#[async_trait]
impl Ingest for SupervisorIngest {
    async fn submit(&self, batch: Batch) -> Result<IngestOutcome, IngestError> {
        supervisor_ingest(&self.0, batch, None).await
    }
}

async fn supervisor_ingest(
    supervisor: &ActorRef<SupervisorMsg>,
    batch: Batch,
    mark: Option<IngestMark>,
) -> Result<IngestOutcome, IngestError> {
    match supervisor
        .call(|r| SupervisorMsg::Ingest(batch, mark, r), None)
        .await
    {
        Ok(ractor::rpc::CallResult::Success(outcome)) => Ok(outcome?),
        Ok(other) => Err(IngestError::Stopped(
            format!("the supervisor did not answer: {other:?}").into(),
        )),
        Err(e) => Err(IngestError::Stopped(Box::new(e))),
    }
}

/// The subject of a partition.
pub fn partition_subject(partition: u32) -> String {
    format!("{INGEST_SUBJECT}.{partition}")
}

/// Creates the ingest stream if it does not exist: a work queue (a message leaves once its
/// worker acknowledged it).
pub async fn ingest_stream(
    js: &jetstream::Context,
) -> Result<jetstream::stream::Stream, IngestError> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: INGEST_STREAM.into(),
        subjects: vec![format!("{INGEST_SUBJECT}.>")],
        retention: jetstream::stream::RetentionPolicy::WorkQueue,
        ..Default::default()
    })
    .await
    .map_err(|e| stream_error(format!("cannot create stream {INGEST_STREAM}"), e))
}

/// An ingest stream failure: what was attempted and the client's error.
fn stream_error(
    what: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> IngestError {
    IngestError::Stream {
        what: what.into(),
        source: Box::new(source),
    }
}

/// Publishes records to the ingest stream.
pub struct JetStreamIngest {
    js: jetstream::Context,
    partitions: u32,
}

impl JetStreamIngest {
    /// A publisher on `client` for `partitions` partitions; creates the stream if needed.
    pub async fn new(client: async_nats::Client, partitions: u32) -> Result<Self, IngestError> {
        let js = jetstream::new(client);
        ingest_stream(&js).await?;
        Ok(JetStreamIngest {
            js,
            partitions: partitions.max(1),
        })
    }

    /// Publishes a batch, grouped by partition; returns once JetStream acknowledged all.
    pub async fn publish(&self, batch: &Batch) -> Result<(), IngestError> {
        let mut by_partition = vec![Vec::new(); self.partitions as usize];
        for (flow, records) in batch.flows() {
            let p = &mut by_partition[flow.partition(self.partitions) as usize];
            p.extend(records.iter().map(|&(time, bytes)| (flow, time, bytes)));
        }
        // The caller's trace goes on in the worker that stores these records.
        let mut headers = async_nats::HeaderMap::new();
        let cx = flowwatch_proto::trace::context(&tracing::Span::current());
        for (k, v) in flowwatch_proto::trace::headers(&cx) {
            headers.insert(k.as_str(), v.as_str());
        }
        let mut acks = Vec::new();
        for (p, records) in by_partition.iter().enumerate() {
            for chunk in records.chunks(RECORDS_PER_MESSAGE) {
                let ack = self
                    .js
                    .publish_with_headers(
                        partition_subject(p as u32),
                        headers.clone(),
                        encode(chunk).into(),
                    )
                    .await
                    .map_err(|e| stream_error("cannot publish to JetStream", e))?;
                acks.push(ack.into_future());
            }
        }
        for ack in futures_util::future::join_all(acks).await {
            ack.map_err(|e| stream_error("JetStream did not acknowledge", e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Ingest for JetStreamIngest {
    async fn submit(&self, batch: Batch) -> Result<IngestOutcome, IngestError> {
        let n = batch.len() as u64;
        self.publish(&batch).await?;
        Ok(IngestOutcome {
            accepted: n,
            ..Default::default()
        })
    }
}

/// Records (flow, time, bytes) as the SPEC §6 traffic CSV.
pub fn encode(records: &[(&FlowId, Instant, u64)]) -> Vec<u8> {
    let mut out = String::with_capacity(64 * (records.len() + 1));
    out.push_str(flowwatch_core::record::CSV_HEADER);
    out.push('\n');
    for &(flow, time, bytes) in records {
        write_csv_line(&mut out, flow, time, bytes);
    }
    out.into_bytes()
}

/// Adds the records of a message to `batch`; a message that is not our CSV is an error (we
/// wrote it), and then nothing of it is added.
pub fn decode(payload: &[u8], batch: &mut Batch) -> crate::Result<()> {
    let foreign = |line| move |source| crate::Error::Foreign { line, source };
    let text = std::str::from_utf8(payload).map_err(crate::Error::NotUtf8)?;
    let mut lines = text.lines();
    check_csv_header(lines.next().unwrap_or("")).map_err(foreign(1))?;
    let mut message = Batch::default();
    for (i, line) in lines.enumerate() {
        message
            .add_csv_line(line, |_| Ok(()))
            .map_err(foreign(i + 2))?;
    }
    batch.extend(message);
    Ok(())
}

/// Consumes one partition of the ingest stream into a supervisor.
pub struct PartitionConsumer {
    /// The JetStream context.
    pub js: jetstream::Context,
    /// The partition.
    pub partition: u32,
    /// Where records go.
    pub supervisor: ActorRef<SupervisorMsg>,
    /// The store (for the partition's stored position).
    pub store: Arc<dyn Store>,
    /// How long JetStream waits for an acknowledgement before it delivers a message again.
    pub ack_wait: Duration,
}

impl PartitionConsumer {
    /// Runs until `stop` is cancelled (then it stops between two batches: the one taken is
    /// stored and acknowledged first) or the task is dropped. A batch is stored (and then
    /// acknowledged) before the next is taken.
    pub async fn run(self, stop: CancellationToken) {
        self.run_telling(stop, None).await
    }

    /// [`run`](Self::run), saying on `caught_up` once the partition's backlog is stored (a
    /// fetch left nothing pending): a worker taking a partition over evaluates its flows only
    /// then, with the traffic that waited for it.
    pub async fn run_telling(
        self,
        stop: CancellationToken,
        mut caught_up: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.consume(&stop, &mut caught_up).await {
                Ok(()) => return,
                Err(why) => {
                    tracing::warn!(partition = self.partition, "ingest consumer: {why}");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn consume(
        &self,
        stop: &CancellationToken,
        caught_up: &mut Option<tokio::sync::oneshot::Sender<()>>,
    ) -> crate::Result<()> {
        let source = partition_subject(self.partition);
        let stream = ingest_stream(&self.js).await?;
        let durable = format!("flowwatch-ingest-{}", self.partition);
        // Made afresh: a consumer of before (ours, or the partition's previous owner's) may
        // have messages out that nobody acknowledged; JetStream would deliver them again only
        // after newer ones. A new consumer of the work queue starts at the oldest message.
        match stream.delete_consumer(&durable).await {
            Ok(_) => {}
            Err(e)
                if matches!(e.kind(), ConsumerErrorKind::JetStream(j)
                if j.error_code() == ErrorCode::CONSUMER_NOT_FOUND) => {}
            Err(e) => return Err(crate::Error::nats(format!("consumer {durable}"), e)),
        }
        let consumer: jetstream::consumer::PullConsumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(durable.clone()),
                filter_subject: source.clone(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: self.ack_wait,
                max_ack_pending: 10_000,
                ..Default::default()
            })
            .await
            .map_err(|e| crate::Error::nats(format!("consumer {durable}"), e))?;
        let mut position = self
            .store
            .ingest_position(&source)
            .await
            .map_err(crate::Error::store("read the ingest position"))?
            .unwrap_or(0);
        while !stop.is_cancelled() {
            let mut batch = consumer
                .fetch()
                .max_messages(MESSAGES_PER_BATCH)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .map_err(|e| crate::Error::nats("fetch", e))?;
            let mut messages = Vec::new();
            while let Some(m) = batch.next().await {
                messages.push(m.map_err(|e| crate::Error::nats("fetch", e))?);
            }
            let pending = match messages.last() {
                Some(m) => {
                    m.info()
                        .map_err(|e| crate::Error::nats("message info", e))?
                        .pending
                }
                None => 0,
            };
            let mut records = Batch::default();
            let mut last = position;
            for m in &messages {
                let seq = m
                    .info()
                    .map_err(|e| crate::Error::nats("message info", e))?
                    .stream_sequence;
                if seq <= position {
                    continue; // stored before a crash, not acknowledged then
                }
                last = last.max(seq);
                // Only flowwatch publishes here; a foreign message is dropped, loudly.
                if let Err(why) = decode(&m.payload, &mut records) {
                    tracing::error!(seq, "ingest message dropped: {why}");
                }
            }
            if last > position {
                let mark = IngestMark {
                    source: source.clone(),
                    position: last,
                };
                // A trace that came with the first message goes on here, through the
                // supervisor to the flow actors (ractor carries the span with each message).
                let span = tracing::info_span!("worker.ingest", partition = self.partition, last);
                if let Some(h) = messages.first().and_then(|m| m.headers.as_ref()) {
                    let header = |k: &str| h.get(k).map(|v| v.as_str().to_owned());
                    flowwatch_proto::trace::set_parent(
                        &span,
                        flowwatch_proto::trace::extract(header),
                    );
                }
                let stored = self.store_until_done(records, mark, stop).instrument(span);
                if !stored.await {
                    // Stopped first: unacknowledged, the batch goes to the next consumer.
                    return Ok(());
                }
                position = last;
            }
            for m in messages {
                m.ack().await.map_err(|e| crate::Error::nats("ack", e))?;
            }
            if pending == 0
                && let Some(tell) = caught_up.take()
            {
                let _ = tell.send(());
            }
        }
        Ok(())
    }

    /// Stores one batch, retrying while storage is away (the messages stay unacknowledged).
    /// (Whether it was stored: `false` when `stop` came first.)
    async fn store_until_done(
        &self,
        records: Batch,
        mark: IngestMark,
        stop: &CancellationToken,
    ) -> bool {
        let mut backoff = Duration::from_millis(100);
        loop {
            match supervisor_ingest(&self.supervisor, records.clone(), Some(mark.clone())).await {
                Ok(outcome) => {
                    for (flow, n, why) in outcome.refused {
                        tracing::warn!(%flow, records = n, "records refused: {why}");
                    }
                    return true;
                }
                Err(why) => {
                    tracing::warn!(partition = self.partition, "ingest not stored: {why}");
                    tokio::select! {
                        _ = stop.cancelled() => return false,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowwatch_core::FlowKind;
    use flowwatch_core::record::Record;

    #[test]
    fn messages_round_trip_any_flow_name() {
        let records = [
            Record {
                time: 1_486_335_600,
                flow: FlowId::new("CZ", "GSM", FlowKind::Input, "A").unwrap(),
                bytes: 5,
            },
            Record {
                time: 1_486_335_601,
                flow: FlowId::new("CZ", "Paid, \"SMS\"", FlowKind::Forward, "I:O\u{e9}").unwrap(),
                bytes: u64::MAX,
            },
        ];
        let batch: Batch = records.into_iter().collect();
        let lines: Vec<_> = batch.records().collect();
        let mut decoded = Batch::default();
        decode(&encode(&lines), &mut decoded).unwrap();
        assert_eq!(decoded, batch);
        assert!(decode(b"time,bytes\n", &mut decoded).is_err());
        let half = b"time,country,lob,kind,flow,bytes\n2017-02-05T23:00:00Z,CZ,GSM,input,A,1\nx\n";
        let err = decode(half, &mut decoded).unwrap_err().to_string();
        assert!(err.starts_with("not an ingest message: line 3:"), "{err}");
        assert_eq!(decoded, batch, "nothing of a bad message is taken");
    }
}
