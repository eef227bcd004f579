//! The SPEC §8 JSON to a Kafka topic (the seed system's outgoing message), keyed by flow and
//! put in the flow's partition (`FlowId::partition` over the topic's partitions), so each
//! flow's changes stay in order. The client is kept between messages and made again after a
//! failure.

use std::collections::BTreeMap;
use std::time::Duration;

use flowwatch_core::FlowId;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use tokio::sync::Mutex;

use crate::SendError;

/// How long connecting or producing may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A producer to one topic.
pub struct KafkaSender {
    brokers: Vec<String>,
    topic: String,
    /// The client and the topic's partition count, once connected.
    client: Mutex<Option<(Client, u32)>>,
}

impl KafkaSender {
    /// A producer to `topic` on `brokers` (connected at the first message).
    pub fn new(brokers: Vec<String>, topic: String) -> KafkaSender {
        KafkaSender {
            brokers,
            topic,
            client: Mutex::new(None),
        }
    }

    /// Produces `value` keyed by `flow`: the partition and offset it got.
    pub async fn send(&self, flow: &FlowId, value: Vec<u8>) -> Result<String, SendError> {
        let mut held = self.client.lock().await;
        let attempt = tokio::time::timeout(TIMEOUT, self.produce(&mut held, flow, value));
        let result = match attempt.await {
            Ok(r) => r,
            Err(_) => Err(SendError::transient(format!(
                "no answer from {} within {} s",
                self.brokers.join(","),
                TIMEOUT.as_secs()
            ))),
        };
        if result.is_err() {
            *held = None;
        }
        result
    }

    async fn produce(
        &self,
        held: &mut Option<(Client, u32)>,
        flow: &FlowId,
        value: Vec<u8>,
    ) -> Result<String, SendError> {
        let failed = |what: &str, e: rskafka::client::error::Error| {
            SendError::transient(format!("{what} {}: {e}", self.brokers.join(",")))
        };
        if held.is_none() {
            let client = ClientBuilder::new(self.brokers.clone())
                .client_id("flowwatch")
                .backoff_config(rskafka::BackoffConfig {
                    deadline: Some(TIMEOUT),
                    max_backoff: Duration::from_secs(2),
                    ..Default::default()
                })
                .build()
                .await
                .map_err(|e| failed("cannot connect to", e))?;
            let topics = client
                .list_topics()
                .await
                .map_err(|e| failed("cannot list the topics of", e))?;
            let partitions = topics
                .iter()
                .find(|t| t.name == self.topic)
                .map_or(0, |t| t.partitions.len() as u32);
            if partitions == 0 {
                return Err(SendError::transient(format!(
                    "topic \"{}\" does not exist on {}",
                    self.topic,
                    self.brokers.join(",")
                )));
            }
            *held = Some((client, partitions));
        }
        let (client, partitions) = held.as_ref().expect("connected above");
        let partition = flow.partition(*partitions) as i32;
        let producer = client
            .partition_client(self.topic.clone(), partition, UnknownTopicHandling::Error)
            .await
            .map_err(|e| failed("cannot reach the leader of the partition on", e))?;
        let record = Record {
            key: Some(flow.to_string().into_bytes()),
            value: Some(value),
            headers: BTreeMap::new(),
            timestamp: chrono::Utc::now(),
        };
        let offsets = producer
            .produce(vec![record], Compression::NoCompression)
            .await
            .map_err(|e| failed("cannot produce to", e))?;
        Ok(format!(
            "{} partition {partition} offset {}",
            self.topic,
            offsets.first().copied().unwrap_or(-1)
        ))
    }
}
