//! Kafka ingest (SPEC §12): the seed system's way in. Each partition of `--kafka-topic` is read
//! from where its records stop being stored, its messages (seed messages, or traffic CSV lines)
//! parsed with the configuration in force, and handed to the ingest port as a
//! [`SourcedBatch`] named `kafka/<group>/<topic>/<partition>`.
//!
//! Offsets live in flowwatch's store, not in Kafka's group coordinator: each batch is stored with
//! its source's position in the same atomic write (one process), or with the position of each
//! ingest partition it reaches (a cluster, see [`crate::ingest`]), so a record is counted once
//! even when the process dies between storing it and moving on. `--kafka-group` names that set
//! of positions: two deployments with different groups read the same topic independently.
//!
//! Where it runs: in `flowwatch run` the records go straight to this process's supervisor; in a
//! cluster, whichever process reads Kafka (`gateway` or `worker`) bridges its records into the
//! JetStream ingest partitions, because the producer chooses the Kafka partition of a flow and
//! only the ingest partitions map to the workers that own the flows. Records of a partition that
//! a reader reads twice (two readers, or a restart) are dropped by the partition's consumer.

use std::sync::Arc;
use std::time::Duration;

use flowwatch_core::config::Config;
use flowwatch_core::record::Record;
use flowwatch_core::record::body::{BodyFormat, parse_body};
use flowwatch_ports::ingest::{PartitionLag, SourceLag, SourcedBatch};
use flowwatch_ports::{InForce, Ingest};
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::ingest::{Backoff, until_taken};
use crate::metrics::METRICS;

/// The most bytes one fetch asks for (a batch stored at once).
const FETCH_BYTES: i32 = 4 << 20;
/// How long a fetch waits for records when the partition has none.
const FETCH_WAIT_MS: i32 = 500;
/// How often the topic's partitions are listed again (partitions added to it are read).
const LIST_EVERY: Duration = Duration::from_secs(30);
/// How long a request to the brokers is retried before the error is logged and tried again.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Where to read: `--kafka-brokers`, `--kafka-topic`, `--kafka-group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSource {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// The topic.
    pub topic: String,
    /// The name of this reader's positions.
    pub group: String,
}

impl KafkaSource {
    /// The ingest source of one partition.
    pub fn source(&self, partition: i32) -> String {
        format!("kafka/{}/{}/{partition}", self.group, self.topic)
    }
}

/// Connects to the brokers (failing after [`REQUEST_DEADLINE`] when none answers).
pub async fn connect(brokers: &[String]) -> crate::Result<Client> {
    ClientBuilder::new(brokers.to_vec())
        .client_id("flowwatch")
        .backoff_config(rskafka::BackoffConfig {
            deadline: Some(REQUEST_DEADLINE),
            max_backoff: Duration::from_secs(5),
            ..Default::default()
        })
        .build()
        .await
        .map_err(|e| crate::Error::kafka(format!("connect to {}", brokers.join(",")), e))
}

/// Reads a topic into an ingest port until stopped.
pub struct KafkaIngest {
    /// Where to read.
    pub source: KafkaSource,
    /// Where records go.
    pub ingest: Arc<dyn Ingest>,
    /// The configuration in force (seed messages carry local times).
    pub config: watch::Receiver<InForce>,
    /// Where each partition's reader says how far behind it is.
    pub lag: Arc<SourceLag>,
}

impl KafkaIngest {
    /// Reads every partition of the topic (and those added later) until `stop` is cancelled;
    /// a broker away is waited for, and said so in the log.
    pub async fn run(self, stop: CancellationToken) {
        let this = Arc::new(self);
        let mut running = std::collections::BTreeSet::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut client: Option<Arc<Client>> = None;
        loop {
            match this.partitions(&mut client).await {
                Ok((c, partitions)) => {
                    // A partition not read yet (all at first, then those added to the topic).
                    for p in partitions {
                        if running.insert(p) {
                            let (this, client, stop) = (this.clone(), c.clone(), stop.clone());
                            tasks.spawn(async move { this.read(client, p, stop).await });
                        }
                    }
                }
                Err(why) => {
                    client = None;
                    tracing::warn!(topic = this.source.topic, "kafka ingest: {why}");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(LIST_EVERY) => {}
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// The topic's partitions, connecting first if needed.
    async fn partitions(
        &self,
        client: &mut Option<Arc<Client>>,
    ) -> crate::Result<(Arc<Client>, std::collections::BTreeSet<i32>)> {
        let c = match client {
            Some(c) => c.clone(),
            None => client
                .insert(Arc::new(connect(&self.source.brokers).await?))
                .clone(),
        };
        let topics = c
            .list_topics()
            .await
            .map_err(|e| crate::Error::kafka("list the topics", e))?;
        match topics.into_iter().find(|t| t.name == self.source.topic) {
            Some(t) => Ok((c, t.partitions)),
            None => Err(crate::Error::kafka(
                format!("topic {}", self.source.topic),
                "no such topic on the brokers",
            )),
        }
    }

    /// Reads one partition until stopped.
    async fn read(&self, client: Arc<Client>, partition: i32, stop: CancellationToken) {
        let source = self.source.source(partition);
        let mut backoff = Backoff::default();
        let reader = loop {
            let made = async {
                let pc = client
                    .partition_client(&self.source.topic, partition, UnknownTopicHandling::Retry)
                    .await
                    .map_err(|e| crate::Error::kafka("reach the partition's leader", e))?;
                let at = self.ingest.resume_at(&source).await?;
                Ok::<_, crate::Error>((pc, at))
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                made = made => match made {
                    Ok(made) => break made,
                    Err(why) => {
                        tracing::warn!(source, "kafka ingest: {why}");
                        if !backoff.wait(&stop).await { return; }
                    }
                },
            }
        };
        let (pc, mut next) = reader;
        backoff = Backoff::default();
        loop {
            let fetched = tokio::select! {
                _ = stop.cancelled() => return,
                f = pc.fetch_records(next as i64, 1..FETCH_BYTES, FETCH_WAIT_MS) => f,
            };
            match fetched {
                Ok((records, high_watermark)) => {
                    backoff = Backoff::default();
                    let high_watermark = high_watermark.max(0) as u64;
                    self.note(partition, next, high_watermark);
                    let Some(last) = records.last() else { continue };
                    let end = last.offset as u64 + 1;
                    let config = self.config.borrow().config.clone();
                    let batch = SourcedBatch {
                        source: source.clone(),
                        records: parse_records(&source, &records, &config),
                        end,
                    };
                    if !self.submit(batch, &stop).await {
                        return;
                    }
                    next = end;
                    self.note(partition, next, high_watermark);
                }
                Err(KafkaError::ServerError {
                    protocol_error: ProtocolError::OffsetOutOfRange,
                    ..
                }) => match self.out_of_range(&pc, next).await {
                    Ok(n) => next = n,
                    Err(why) => {
                        tracing::warn!(source, "kafka ingest: {why}");
                        if !backoff.wait(&stop).await {
                            return;
                        }
                    }
                },
                Err(e) => {
                    tracing::warn!(source, "kafka ingest: fetch: {e}");
                    if !backoff.wait(&stop).await {
                        return;
                    }
                }
            }
        }
    }

    /// Where to go on when `next` is outside what the partition keeps: its oldest record when
    /// retention deleted records never stored (said loudly: they are lost), else unchanged.
    async fn out_of_range(&self, pc: &PartitionClient, next: u64) -> crate::Result<u64> {
        let earliest = pc
            .get_offset(OffsetAt::Earliest)
            .await
            .map_err(|e| crate::Error::kafka("read the oldest offset", e))?
            .max(0) as u64;
        if next < earliest {
            tracing::error!(
                topic = self.source.topic,
                partition = pc.partition(),
                lost = earliest - next,
                "records deleted by the topic's retention before they were stored"
            );
            return Ok(earliest);
        }
        Ok(next)
    }

    /// Hands a batch on, retrying while the store or the ingest stream is away (`false` when
    /// stopped first: nothing moved on, the batch is read again at the next start).
    async fn submit(&self, batch: SourcedBatch, stop: &CancellationToken) -> bool {
        let attempt = || self.ingest.submit_sourced(batch.clone());
        until_taken(&batch.source, stop, attempt).await
    }

    fn note(&self, partition: i32, position: u64, high_watermark: u64) {
        let lag = PartitionLag {
            position,
            high_watermark: high_watermark.max(position),
        };
        self.lag.set(&self.source.topic, partition, lag);
    }
}

/// The records of Kafka messages, each with its offset. A message is a seed message or a
/// canonical record (JSON, one a line), or traffic CSV lines (the header may come first); a
/// message or line that does not parse is refused in the log, with its offset, and counted.
pub fn parse_records(
    source: &str,
    messages: &[rskafka::record::RecordAndOffset],
    config: &Config,
) -> Vec<(u64, Record)> {
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let offset = m.offset as u64;
        let value = m.record.value.as_deref().unwrap_or_default();
        match parse_message(value, config) {
            Ok((records, refused)) => {
                out.extend(records.into_iter().map(|r| (offset, r)));
                for why in refused {
                    METRICS.kafka_refused.add(1);
                    tracing::warn!(source, offset, "kafka record refused: {why}");
                }
            }
            Err(why) => {
                METRICS.kafka_refused.add(1);
                tracing::warn!(source, offset, "kafka message refused: {why}");
            }
        }
    }
    out
}

/// One Kafka message's records, and what was refused in it (`line N: why`).
pub fn parse_message(value: &[u8], config: &Config) -> Result<(Vec<Record>, Vec<String>), String> {
    let text = std::str::from_utf8(value).map_err(|e| format!("not UTF-8: {e}"))?;
    let body = text.trim_start_matches('\u{feff}');
    let parsed = if body.trim_start().starts_with('{') {
        parse_body(BodyFormat::Ndjson, body, config)
    } else if body.starts_with(flowwatch_core::record::CSV_HEADER) {
        parse_body(BodyFormat::Csv, body, config)
    } else {
        let with_header = format!("{}\n{body}", flowwatch_core::record::CSV_HEADER);
        parse_body(BodyFormat::Csv, &with_header, config).map(|mut p| {
            for e in &mut p.refused {
                e.line -= 1; // the message's own line numbers
            }
            p
        })
    }
    .map_err(|e| format!("line {}: {}", e.line, e.message))?;
    let records = parsed
        .batch
        .records()
        .map(|(flow, time, bytes)| Record {
            time,
            flow: flow.clone(),
            bytes,
        })
        .collect();
    let refused = parsed
        .refused
        .into_iter()
        .map(|e| format!("line {}: {}", e.line, e.message))
        .collect();
    Ok((records, refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::default()
    }

    #[test]
    fn a_message_is_a_seed_message_a_record_or_csv_lines() {
        let c = config();
        let seed = br#"{"country":"CZ","lobName":"GSM","type":"inputs","flowName":"A","dataSize":5,"time":"01.02.2017 08:15:03"}"#;
        let (records, refused) = parse_message(seed, &c).unwrap();
        assert_eq!((records.len(), refused.len()), (1, 0));
        assert_eq!(records[0].bytes, 5);
        assert_eq!(&*records[0].flow.name, "A");

        let lines =
            b"2017-02-01T08:15:03Z,CZ,GSM,input,A,7\n2017-02-01T08:15:04Z,CZ,GSM,input,B,8\n";
        let (records, refused) = parse_message(lines, &c).unwrap();
        assert_eq!(records.iter().map(|r| r.bytes).sum::<u64>(), 15);
        assert!(refused.is_empty());

        let with_header =
            b"time,country,lob,kind,flow,bytes\n2017-02-01T08:15:03Z,CZ,GSM,input,A,7";
        let (records, _) = parse_message(with_header, &c).unwrap();
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn a_bad_line_is_refused_by_its_number_and_the_rest_taken() {
        let c = config();
        let lines = b"2017-02-01T08:15:03Z,CZ,GSM,input,A,7\nnot,a,line\n";
        let (records, refused) = parse_message(lines, &c).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(refused.len(), 1);
        assert!(refused[0].starts_with("line 2:"), "{refused:?}");
        let unknown = b"2017-02-01T08:15:03Z,XX,GSM,input,A,7";
        let (records, refused) = parse_message(unknown, &c).unwrap();
        assert!(records.is_empty());
        assert!(refused[0].contains("unknown country"), "{refused:?}");
        assert!(
            parse_message(&[0xff, 0xfe], &c)
                .unwrap_err()
                .contains("UTF-8")
        );
    }
}
