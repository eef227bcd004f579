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
//!
//! Records of a numbered source (a Kafka partition, [`SourcedBatch`]) keep their offsets all
//! the way to the store. In one process the batch is stored with the source's position. In a
//! cluster it is published to every ingest partition (records of none of its flows make an
//! empty message), each message saying the source, each line's offset and where the source
//! goes on ([`SOURCE_HEADER`], [`OFFSETS_HEADER`], [`END_HEADER`]); the consumer of a
//! partition keeps the position of `<source>@<partition>` and drops the records stored before.
//! However the Kafka reader's batches were cut, and however often it read them again after a
//! crash, each record is counted once; the reader goes on from the lowest position of the
//! partitions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, consumer::pull};
use async_trait::async_trait;
use flowwatch_core::FlowId;
use flowwatch_core::record::{Batch, check_csv_header, write_csv_line};
use flowwatch_core::record::{Record, parse_csv_line};
use flowwatch_core::time::Instant;
use flowwatch_ports::ingest::SourcedBatch;
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

/// The header of an ingest message from a numbered source: its name.
pub const SOURCE_HEADER: &str = "Flowwatch-Source";
/// The header of an ingest message from a numbered source: each line's offset,
/// comma-separated.
pub const OFFSETS_HEADER: &str = "Flowwatch-Offsets";
/// The header of an ingest message from a numbered source: where the source goes on once the
/// message is stored.
pub const END_HEADER: &str = "Flowwatch-End";

/// The in-process ingest adapter: a batch goes to this process's supervisor, whose mailbox is
/// the queue, and is answered once stored.
#[derive(Clone)]
pub struct SupervisorIngest {
    /// The supervisor.
    pub supervisor: ActorRef<SupervisorMsg>,
    /// The store it writes (for the positions of numbered sources).
    pub store: Arc<dyn Store>,
}

#[async_trait]
impl Ingest for SupervisorIngest {
    async fn submit(&self, batch: Batch) -> Result<IngestOutcome, IngestError> {
        supervisor_ingest(&self.supervisor, batch, None).await
    }

    async fn submit_sourced(&self, batch: SourcedBatch) -> Result<IngestOutcome, IngestError> {
        let stored = self.resume_at(&batch.source).await?;
        if batch.end <= stored {
            return Ok(IngestOutcome::default());
        }
        let mark = IngestMark {
            source: batch.source.clone(),
            position: batch.end,
        };
        supervisor_ingest(&self.supervisor, batch.batch_from(stored), Some(mark)).await
    }

    async fn resume_at(&self, source: &str) -> Result<u64, IngestError> {
        Ok(self.store.ingest_position(source).await?.unwrap_or(0))
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
    /// Where the partitions' consumers keep the positions of numbered sources.
    store: Option<Arc<dyn Store>>,
}

/// The key under which the consumer of `partition` keeps the position of a numbered `source`.
pub fn partition_source(source: &str, partition: u32) -> String {
    format!("{source}@{partition}")
}

impl JetStreamIngest {
    /// A publisher on `client` for `partitions` partitions; creates the stream if needed.
    pub async fn new(client: async_nats::Client, partitions: u32) -> Result<Self, IngestError> {
        let js = jetstream::new(client);
        ingest_stream(&js).await?;
        Ok(JetStreamIngest {
            js,
            partitions: partitions.max(1),
            store: None,
        })
    }

    /// The same publisher, reading where numbered sources go on from `store` (the cluster's
    /// shared store): what [`Ingest::resume_at`] needs.
    pub fn with_store(self, store: Arc<dyn Store>) -> Self {
        JetStreamIngest {
            store: Some(store),
            ..self
        }
    }

    /// The trace headers of the caller's span (the worker that stores the records goes on
    /// with its trace).
    fn trace_headers() -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        let cx = flowwatch_proto::trace::context(&tracing::Span::current());
        for (k, v) in flowwatch_proto::trace::headers(&cx) {
            headers.insert(k.as_str(), v.as_str());
        }
        headers
    }

    /// Publishes a batch, grouped by partition; returns once JetStream acknowledged all.
    pub async fn publish(&self, batch: &Batch) -> Result<(), IngestError> {
        let mut by_partition = vec![Vec::new(); self.partitions as usize];
        for (flow, records) in batch.flows() {
            let p = &mut by_partition[flow.partition(self.partitions) as usize];
            p.extend(records.iter().map(|&(time, bytes)| (flow, time, bytes)));
        }
        let headers = Self::trace_headers();
        let mut messages = Vec::new();
        for (p, records) in by_partition.iter().enumerate() {
            for chunk in records.chunks(RECORDS_PER_MESSAGE) {
                messages.push((p as u32, headers.clone(), encode(chunk)));
            }
        }
        self.send(messages).await
    }

    /// Publishes `(partition, headers, body)` messages in order; returns once JetStream
    /// acknowledged all.
    async fn send(
        &self,
        messages: Vec<(u32, async_nats::HeaderMap, Vec<u8>)>,
    ) -> Result<(), IngestError> {
        let mut acks = Vec::new();
        for (p, headers, body) in messages {
            let ack = self
                .js
                .publish_with_headers(partition_subject(p), headers, body.into())
                .await
                .map_err(|e| stream_error("cannot publish to JetStream", e))?;
            acks.push(ack.into_future());
        }
        for ack in futures_util::future::join_all(acks).await {
            ack.map_err(|e| stream_error("JetStream did not acknowledge", e))?;
        }
        Ok(())
    }

    /// Publishes a numbered source's records to every partition (an empty message where none
    /// of its flows are, so that every partition's position moves on); returns once JetStream
    /// acknowledged all. A message never splits an offset's records: its end is the first
    /// offset of the next message of its partition, or the batch's end.
    pub async fn publish_sourced(&self, batch: &SourcedBatch) -> Result<(), IngestError> {
        let mut by_partition = vec![Vec::new(); self.partitions as usize];
        for (offset, r) in &batch.records {
            by_partition[r.flow.partition(self.partitions) as usize].push((*offset, r));
        }
        let trace = Self::trace_headers();
        let mut messages = Vec::new();
        for (p, records) in by_partition.iter().enumerate() {
            let chunks = sourced_chunks(records);
            for (i, chunk) in chunks.iter().enumerate() {
                let end = chunks.get(i + 1).map_or(batch.end, |next| next[0].0);
                let mut headers = trace.clone();
                headers.insert(SOURCE_HEADER, batch.source.as_str());
                let offsets: Vec<String> = chunk.iter().map(|(o, _)| o.to_string()).collect();
                headers.insert(OFFSETS_HEADER, offsets.join(",").as_str());
                headers.insert(END_HEADER, end.to_string().as_str());
                let lines: Vec<_> = chunk
                    .iter()
                    .map(|(_, r)| (&r.flow, r.time, r.bytes))
                    .collect();
                messages.push((p as u32, headers, encode(&lines)));
            }
        }
        self.send(messages).await
    }
}

/// A partition's records of a numbered source cut into messages of about
/// [`RECORDS_PER_MESSAGE`], never between two records of one offset; one empty message when
/// there are none.
fn sourced_chunks<'a>(records: &'a [(u64, &'a Record)]) -> Vec<&'a [(u64, &'a Record)]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for i in 1..records.len() {
        if i - start >= RECORDS_PER_MESSAGE && records[i].0 != records[i - 1].0 {
            chunks.push(&records[start..i]);
            start = i;
        }
    }
    chunks.push(&records[start..]);
    chunks
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

    async fn submit_sourced(&self, batch: SourcedBatch) -> Result<IngestOutcome, IngestError> {
        let n = batch.records.len() as u64;
        self.publish_sourced(&batch).await?;
        Ok(IngestOutcome {
            accepted: n,
            ..Default::default()
        })
    }

    /// The lowest position of the source among the partitions: every record before it is
    /// stored, whichever partition its flow hashes to.
    async fn resume_at(&self, source: &str) -> Result<u64, IngestError> {
        let Some(store) = &self.store else {
            return Err(IngestError::Stopped(
                "this JetStream publisher has no store to read positions from".into(),
            ));
        };
        let mut lowest = u64::MAX;
        for p in 0..self.partitions {
            let at = store.ingest_position(&partition_source(source, p)).await?;
            lowest = lowest.min(at.unwrap_or(0));
        }
        Ok(lowest)
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

/// A message of a numbered source: its records with their offsets, and where the source goes
/// on once they are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedMessage {
    /// The source.
    pub source: String,
    /// Each record with its offset.
    pub records: Vec<(u64, Record)>,
    /// Where the source goes on.
    pub end: u64,
}

/// The numbered source's part of a message, if it has one (`None`: a plain message). A
/// message whose headers or lines do not agree is an error (we wrote it).
pub fn decode_sourced(
    headers: Option<&async_nats::HeaderMap>,
    payload: &[u8],
) -> crate::Result<Option<SourcedMessage>> {
    let Some(h) = headers else { return Ok(None) };
    let Some(source) = h.get(SOURCE_HEADER) else {
        return Ok(None);
    };
    let foreign = |line, source| crate::Error::Foreign { line, source };
    let end = h
        .get(END_HEADER)
        .and_then(|v| v.as_str().parse().ok())
        .ok_or(crate::Error::Header(END_HEADER))?;
    let offsets = h.get(OFFSETS_HEADER).map_or("", |v| v.as_str());
    let mut offsets = offsets.split(',').filter(|o| !o.is_empty());
    let text = std::str::from_utf8(payload).map_err(crate::Error::NotUtf8)?;
    let mut lines = text.lines();
    check_csv_header(lines.next().unwrap_or("")).map_err(|e| foreign(1, e))?;
    let mut records = Vec::new();
    for (i, line) in lines.enumerate() {
        let r = parse_csv_line(line).map_err(|e| foreign(i + 2, e))?;
        let offset = offsets
            .next()
            .and_then(|o| o.parse().ok())
            .ok_or(crate::Error::Header(OFFSETS_HEADER))?;
        records.push((offset, r.to_record()));
    }
    if offsets.next().is_some() {
        return Err(crate::Error::Header(OFFSETS_HEADER));
    }
    Ok(Some(SourcedMessage {
        source: source.as_str().to_owned(),
        records,
        end,
    }))
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
        let mut backoff = Backoff::default();
        loop {
            match self.consume(&stop, &mut caught_up).await {
                Ok(()) => return,
                Err(why) => {
                    tracing::warn!(partition = self.partition, "ingest consumer: {why}");
                    if !backoff.wait(&stop).await {
                        return;
                    }
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
        // The stored positions of the numbered sources met, read once each.
        let mut positions: HashMap<String, u64> = HashMap::new();
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
            let mut sourced: Vec<SourcedMessage> = Vec::new();
            for m in &messages {
                let seq = m
                    .info()
                    .map_err(|e| crate::Error::nats("message info", e))?
                    .stream_sequence;
                // Only flowwatch publishes here; a foreign message is dropped, loudly.
                match decode_sourced(m.headers.as_ref(), &m.payload) {
                    // Counted once by its source's own position, whatever the sequence.
                    Ok(Some(message)) => sourced.push(message),
                    Ok(None) if seq <= position => {} // stored before a crash, not acknowledged
                    Ok(None) => {
                        last = last.max(seq);
                        if let Err(why) = decode(&m.payload, &mut records) {
                            tracing::error!(seq, "ingest message dropped: {why}");
                        }
                    }
                    Err(why) => tracing::error!(seq, "ingest message dropped: {why}"),
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
            for message in sourced {
                if !self.store_sourced(message, &mut positions, stop).await? {
                    return Ok(());
                }
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

    /// Stores the records of a numbered source's message not stored before, with the source's
    /// position in this partition (`false` when `stop` came first).
    async fn store_sourced(
        &self,
        message: SourcedMessage,
        positions: &mut HashMap<String, u64>,
        stop: &CancellationToken,
    ) -> crate::Result<bool> {
        let key = partition_source(&message.source, self.partition);
        let stored = match positions.get(&key) {
            Some(&p) => p,
            None => self
                .store
                .ingest_position(&key)
                .await
                .map_err(crate::Error::store("read the ingest position"))?
                .unwrap_or(0),
        };
        if message.end <= stored {
            positions.insert(key, stored);
            return Ok(true);
        }
        let records = message
            .records
            .into_iter()
            .filter(|(offset, _)| *offset >= stored)
            .map(|(_, r)| r)
            .collect();
        let mark = IngestMark {
            source: key.clone(),
            position: message.end,
        };
        if !self.store_until_done(records, mark, stop).await {
            return Ok(false);
        }
        positions.insert(key, message.end);
        Ok(true)
    }

    /// Stores one batch, retrying while storage is away (the messages stay unacknowledged).
    /// (Whether it was stored: `false` when `stop` came first.)
    async fn store_until_done(
        &self,
        records: Batch,
        mark: IngestMark,
        stop: &CancellationToken,
    ) -> bool {
        let what = format!("partition {}", self.partition);
        let attempt =
            async || supervisor_ingest(&self.supervisor, records.clone(), Some(mark.clone())).await;
        until_taken(&what, stop, attempt).await
    }
}

/// Hands a batch on with `attempt` until it is taken, waiting [`Backoff`] between tries while
/// the store or the stream is away (`false` when `stop` came first); logs the records refused.
pub(crate) async fn until_taken<F>(
    what: &str,
    stop: &CancellationToken,
    mut attempt: impl FnMut() -> F,
) -> bool
where
    F: Future<Output = Result<IngestOutcome, IngestError>>,
{
    let mut backoff = Backoff::default();
    loop {
        match attempt().await {
            Ok(outcome) => {
                for (flow, n, why) in outcome.refused {
                    tracing::warn!(%flow, records = n, "records refused: {why}");
                }
                return true;
            }
            Err(why) => {
                tracing::warn!("{what}: ingest not stored: {why}");
                if !backoff.wait(stop).await {
                    return false;
                }
            }
        }
    }
}

/// Waits before trying again: 100 ms doubling to 5 s.
#[derive(Debug)]
pub(crate) struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(100))
    }
}

impl Backoff {
    /// Waits (`false` when `stop` came first).
    pub(crate) async fn wait(&mut self, stop: &CancellationToken) -> bool {
        let wait = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
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
