//! Kafka ingest under load: seed messages (or traffic CSV lines) produced to a topic first,
//! then read by flowwatch's Kafka reader into a supervisor on an embedded store, in one
//! process, as `flowwatch run --kafka-brokers` does: records stored per second.

use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use anyhow::{Context, Result, ensure};
use chrono::TimeZone;
use flowwatch_core::time::Instant;
use flowwatch_ports::InForce;
use flowwatch_ports::ingest::SourceLag;
use flowwatch_worker::kafka::{KafkaIngest, KafkaSource};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use serde_json::{Value, json};

use crate::drive::{Flows, InProcess, IngestLoad, timeline};

/// The messages' form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Seed messages (JSON, the country's local time).
    Seed,
    /// One traffic CSV line each.
    Csv,
}

/// Message `i` of the load: flow `i % flows` at `start + i / flows`.
fn message(format: Format, flows: usize, start: Instant, i: usize) -> Vec<u8> {
    let time = start + (i / flows) as Instant;
    let name = Flows::name(i % flows);
    match format {
        Format::Seed => {
            let local = chrono_tz::Europe::Prague
                .timestamp_opt(time, 0)
                .single()
                .expect("a valid instant")
                .format("%d.%m.%Y %H:%M:%S");
            format!(
                r#"{{"country":"CZ","lobName":"LOAD","type":"inputs","flowName":"{name}","dataSize":1000,"time":"{local}"}}"#
            )
        }
        Format::Csv => {
            let mut line = String::new();
            flowwatch_core::record::write_csv_line(&mut line, &Flows::id(i % flows), time, 1000);
            line.trim_end().to_owned()
        }
    }
    .into_bytes()
}

/// Produces the load to `topic` (created with `partitions` partitions, message `i` to
/// partition `i % partitions`), then reads it into a supervisor until every record is stored.
pub async fn ingest_kafka(
    brokers: &str,
    topic: &str,
    partitions: i32,
    format: Format,
    load: IngestLoad,
) -> Result<Value> {
    use flowwatch_worker::ingest::SupervisorIngest;
    use flowwatch_worker::metrics::METRICS;

    let brokers: Vec<String> = brokers.split(',').map(str::to_owned).collect();
    let client = flowwatch_worker::kafka::connect(&brokers).await?;
    client
        .controller_client()?
        .create_topic(topic, partitions, 1, 5_000)
        .await
        .with_context(|| format!("cannot create topic {topic} (use a fresh name)"))?;
    let produced = WallInstant::now();
    let mut producing = Vec::new();
    for p in 0..partitions {
        let pc = client
            .partition_client(topic, p, UnknownTopicHandling::Retry)
            .await?;
        let (flows, start, records, batch) = (load.flows, load.start, load.records, load.batch);
        producing.push(tokio::spawn(async move {
            let mine: Vec<usize> = (p as usize..records).step_by(partitions as usize).collect();
            for chunk in mine.chunks(batch.clamp(1, 10_000)) {
                let batch = chunk
                    .iter()
                    .map(|&i| rskafka::record::Record {
                        key: None,
                        value: Some(message(format, flows, start, i)),
                        headers: Default::default(),
                        timestamp: rskafka::chrono::Utc::now(),
                    })
                    .collect();
                pc.produce(batch, Compression::NoCompression).await?;
            }
            anyhow::Ok(())
        }));
    }
    for p in producing {
        p.await??;
    }
    let produce_seconds = produced.elapsed().as_secs_f64();

    let worker = InProcess::start(&load).await?;
    let reader = KafkaIngest {
        source: KafkaSource {
            brokers,
            topic: topic.to_owned(),
            group: "loadtest".into(),
        },
        ingest: Arc::new(SupervisorIngest {
            supervisor: worker.supervisor.clone(),
            store: worker.store.clone(),
        }),
        config: tokio::sync::watch::channel(InForce {
            version: 1,
            config: Arc::new(flowwatch_core::config::Config::default()),
        })
        .1,
        lag: Arc::new(SourceLag::default()),
    };
    let before = METRICS.ingest_records.get();
    let stop = tokio_util::sync::CancellationToken::new();
    let t = WallInstant::now();
    let reading = tokio::spawn(reader.run(stop.clone()));
    let total = load.records as u64;
    let mut stored = Vec::new();
    loop {
        let n = METRICS.ingest_records.get() - before;
        stored.push((t.elapsed().as_secs_f64(), n));
        if n >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        ensure!(
            t.elapsed() < Duration::from_secs(600),
            "not everything was stored in 10 minutes ({n} of {total})"
        );
    }
    let seconds = t.elapsed().as_secs_f64();
    stop.cancel();
    reading.await?;
    worker.supervisor.stop(None);
    let done: Vec<(f64, u64)> = stored
        .windows(2)
        .map(|w| (w[1].0, w[1].1 - w[0].1))
        .collect();
    Ok(json!({
        "scenario": "ingest-kafka",
        "format": format!("{format:?}").to_lowercase(),
        "flows": load.flows, "records": total, "partitions": partitions,
        "produceSeconds": produce_seconds, "seconds": seconds,
        "recordsPerSecond": total as f64 / seconds, "timeline": timeline(&done),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_back_to_their_record() {
        let config = flowwatch_core::config::Config::default();
        for format in [Format::Seed, Format::Csv] {
            let m = message(format, 3, 1_486_335_600, 7);
            let (records, refused) = flowwatch_worker::kafka::parse_message(&m, &config).unwrap();
            assert!(refused.is_empty(), "{refused:?}");
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].time, 1_486_335_602, "{format:?}");
            assert_eq!(records[0].flow, Flows::id(1));
        }
    }
}
