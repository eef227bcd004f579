//! Alarms leave through the outbox: flow actors store each event and, in the same write, queue
//! it (`Store::append_events`); the [`Relay`] publishes what is queued and only then marks it
//! done. While the message bus is away the relay retries with backoff and evaluation goes on,
//! so no alarm is lost and none blocks a tick.
//!
//! Each alarm taken from the outbox is first queued for the notification channels that want
//! it (`flowwatch_notify::delivery`), then published.
//!
//! On NATS an alarm is the SPEC §8 message on `flowwatch.alarms.<country>.<lob>.<kind>.<flow>`,
//! published to the JetStream stream `FLOWWATCH_ALARMS` (kept for late subscribers) with
//! `Nats-Msg-Id` = the event id, so a repeat after a lost acknowledgement is dropped by the
//! server. Without NATS (`flowwatch run` alone) alarms go to the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use async_trait::async_trait;
use flowwatch_core::event::{ALARM_SUBJECT, message};
use flowwatch_core::time::utc_string;
use flowwatch_notify::delivery::{DeliveryStats, Notifier};
use flowwatch_ports::status::RelayHealth;
use flowwatch_ports::{AlarmError, AlarmSink};
use flowwatch_storage::{Event, Store};
use tokio::sync::broadcast;

use crate::metrics::Counter;
use flowwatch_proto::server::write_metric;

/// The stream that keeps alarms for late subscribers.
pub const ALARM_STREAM: &str = "FLOWWATCH_ALARMS";
/// How long the stream keeps alarms.
const ALARM_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Alarms published per round.
const BATCH: usize = 256;
/// The longest pause between attempts while the bus is away.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the outbox is looked at when nothing wakes the relay.
const POLL: Duration = Duration::from_secs(1);

/// The alarm sink of a process without a message bus: alarms go to the log.
pub struct LogSink;

#[async_trait]
impl AlarmSink for LogSink {
    async fn publish(&self, events: &[Event]) -> Result<(), AlarmError> {
        for e in events {
            tracing::warn!(
                target: "flowwatch::alarm",
                flow = %e.flow,
                tick = %utc_string(e.tick_time),
                "{} -> {}",
                e.previous_status.as_str(),
                e.new_status.as_str()
            );
        }
        Ok(())
    }
}

/// The alarm sink on NATS JetStream: the SPEC §8 message on the event's subject, into the
/// stream [`ALARM_STREAM`], deduplicated by the server on `Nats-Msg-Id` = the event id.
pub struct NatsSink(jetstream::Context);

impl NatsSink {
    /// A sink on `client`.
    pub fn new(client: async_nats::Client) -> NatsSink {
        NatsSink(jetstream::new(client))
    }
}

#[async_trait]
impl AlarmSink for NatsSink {
    /// Makes sure the alarm stream exists.
    async fn prepare(&self) -> Result<(), AlarmError> {
        self.0
            .get_or_create_stream(jetstream::stream::Config {
                name: ALARM_STREAM.into(),
                subjects: vec![format!("{ALARM_SUBJECT}.>")],
                max_age: ALARM_RETENTION,
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|e| AlarmError::new(format!("cannot create stream {ALARM_STREAM}"), e))
    }

    async fn publish(&self, events: &[Event]) -> Result<(), AlarmError> {
        let mut acks = Vec::with_capacity(events.len());
        for e in events {
            let mut publish = jetstream::message::PublishMessage::build()
                .payload(message(e).into())
                .message_id(&e.id);
            if let Some(cause) = take_cause(&e.id) {
                let span = tracing::info_span!("worker.publish_alarm", id = %e.id);
                flowwatch_proto::trace::set_parent(&span, cause);
                let cx = flowwatch_proto::trace::context(&span);
                for (k, v) in flowwatch_proto::trace::headers(&cx) {
                    publish = publish.header(k.as_str(), v.as_str());
                }
            }
            let ack = self
                .0
                .send_publish(e.subject(), publish)
                .await
                .map_err(|err| AlarmError::new(format!("publish {}", e.id), err))?;
            acks.push(ack);
        }
        for ack in futures_util::future::join_all(acks.into_iter().map(|a| a.into_future())).await {
            ack.map_err(|e| AlarmError::new("no acknowledgement", e))?;
        }
        Ok(())
    }
}

/// What the relay reports to the status view.
#[derive(Debug, Default)]
pub struct RelayStatus {
    /// The notification channels' counts (their deliveries are queued by the relay).
    pub notifications: Arc<DeliveryStats>,
    /// Alarms published since start.
    pub published: Counter,
    /// Failed attempts since start.
    pub failures: Counter,
    /// Whether the last attempt succeeded.
    pub healthy: AtomicBool,
}

impl RelayStatus {
    /// Its figures now.
    pub fn health(&self) -> RelayHealth {
        RelayHealth {
            healthy: self.healthy.load(Ordering::Relaxed),
            published: self.published.get(),
            failures: self.failures.get(),
        }
    }

    /// Appends the relay's metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        write_metric(
            out,
            "flowwatch_alarms_published_total",
            "counter",
            "Alarms published.",
            self.published.get(),
        );
        write_metric(
            out,
            "flowwatch_alarms_publish_failures_total",
            "counter",
            "Failed publishing attempts.",
            self.failures.get(),
        );
        self.notifications.render(out);
    }
}

/// The trace each pending alarm was raised in, by event id (kept in memory: an alarm
/// published after a restart goes out without its trace). Bounded: past the bound, alarms go
/// untraced.
static CAUSES: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, opentelemetry::Context>>,
> = std::sync::LazyLock::new(Default::default);
const CAUSES_KEPT: usize = 100_000;

/// Keeps the trace an alarm was raised in, for the relay that publishes it.
pub fn remember_cause(id: &str, cx: opentelemetry::Context) {
    let mut causes = CAUSES.lock().expect("no panic holds the causes lock");
    if causes.len() < CAUSES_KEPT {
        causes.insert(id.to_owned(), cx);
    }
}

fn take_cause(id: &str) -> Option<opentelemetry::Context> {
    CAUSES
        .lock()
        .expect("no panic holds the causes lock")
        .remove(id)
}

/// Publishes the outbox, and queues its alarms for the notification channels.
pub struct Relay {
    store: Arc<dyn Store>,
    sink: Arc<dyn AlarmSink>,
    notifier: Arc<Notifier>,
    wake: broadcast::Receiver<Event>,
    status: Arc<RelayStatus>,
}

impl Relay {
    /// A relay of `store`'s outbox to `sink` and to `notifier`'s channels, woken by every
    /// event on `alarms`.
    pub fn new(
        store: Arc<dyn Store>,
        sink: Arc<dyn AlarmSink>,
        notifier: Arc<Notifier>,
        alarms: &broadcast::Sender<Event>,
    ) -> Relay {
        Relay {
            store,
            sink,
            wake: alarms.subscribe(),
            status: Arc::new(RelayStatus {
                notifications: notifier.stats(),
                ..Default::default()
            }),
            notifier,
        }
    }

    /// Its status counters.
    pub fn status(&self) -> Arc<RelayStatus> {
        self.status.clone()
    }

    /// One round: queues up to a batch of outbox alarms for the notification channels (so
    /// they do not wait for the bus), publishes them and marks them done. Returns how many
    /// were published.
    pub async fn round(&self) -> crate::Result<usize> {
        let outbox = crate::Error::store("outbox");
        let pending = self.store.outbox_pending(BATCH).await.map_err(outbox)?;
        if pending.is_empty() {
            return Ok(0);
        }
        let channels = crate::Error::store("queue for the notification channels");
        self.notifier.queue(&pending).await.map_err(channels)?;
        self.sink.publish(&pending).await?;
        let ids: Vec<String> = pending.iter().map(|e| e.id.clone()).collect();
        let outbox = crate::Error::store("outbox");
        self.store.outbox_done(ids).await.map_err(outbox)?;
        Ok(pending.len())
    }

    /// Runs until the alarm channel closes: publishes whatever is queued, waits for the next
    /// alarm (or a poll interval), backs off while publishing fails.
    pub async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        let mut prepared = false;
        loop {
            let attempt = async {
                if !prepared {
                    self.sink.prepare().await?;
                    prepared = true;
                }
                self.round().await
            };
            match attempt.await {
                Ok(n) => {
                    backoff = Duration::from_millis(100);
                    self.status.healthy.store(true, Ordering::Relaxed);
                    self.status.published.add(n as u64);
                    if n == BATCH {
                        continue; // more waiting
                    }
                    match tokio::time::timeout(POLL, self.wake.recv()).await {
                        Err(_) | Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                        Ok(Err(broadcast::error::RecvError::Closed)) => {
                            // Shutting down: one last round for what the actors stored.
                            let _ = self.round().await;
                            return;
                        }
                    }
                }
                Err(why) => {
                    if self.status.healthy.swap(false, Ordering::Relaxed) {
                        tracing::warn!("alarms not published, retrying: {why}");
                    }
                    self.status.failures.add(1);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
