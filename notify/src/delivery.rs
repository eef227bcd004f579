//! The delivery queue at work. The worker's outbox relay hands every alarm it takes to
//! [`Notifier::queue`], which queues it in the store once for each channel that wants it
//! (`Channel::wants`: alarmed, in scope, reaching the minimum status) — before the alarm goes
//! to NATS, so a channel does not wait for the bus. [`Notifier::run`] keeps one sender task
//! per stored channel; each claims its channel's due deliveries (held for [`HOLD`], so two
//! processes never send the same one at once, and one that dies mid-send lets it go again),
//! sends them oldest first, and settles each:
//!
//! - delivered: it leaves the queue;
//! - refused for good (an HTTP 4xx, an SMTP 5xx): failed, it leaves the queue;
//! - not reached: retried after a backoff doubling from 1 s to [`MAX_BACKOFF`], for at least
//!   [`RETRY_FOR`] after it was queued, then failed. The channel waits with it: its other
//!   deliveries are released to the same time, so a receiver that is away gets one attempt per
//!   backoff, not one per alarm, and every alarm follows within moments once it is back.
//!
//! Each channel has its own task, so a receiver that is slow or away delays no other channel,
//! and none of them delays evaluation (the relay only queues).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flowwatch_core::channel::Target;
use flowwatch_core::event::Event;
use flowwatch_core::time::Instant;
use flowwatch_ports::clock::Clock;
use flowwatch_storage::{Delivery, DeliveryAttempt, Outcome, Settlement, Store, StoredChannel};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::SendError;
use crate::send::{Sender, test_event};

/// How long a claimed delivery is held by its sender (longer than any send may take).
pub const HOLD: Instant = 90;
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Instant = 60;
/// How long an alarm is retried before it is given up.
pub const RETRY_FOR: Instant = 24 * 3600;
/// Deliveries claimed at once.
const BATCH: usize = 50;
/// How often a channel's queue is looked at when nothing wakes its sender.
const POLL: Duration = Duration::from_secs(1);
/// How often the stored channels are looked at (new ones get a sender).
const REFRESH: Duration = Duration::from_secs(2);

/// The wait after the `attempts`-th failed attempt: 1 s, 2 s, 4 s, … up to [`MAX_BACKOFF`].
pub fn backoff(attempts: u32) -> Instant {
    let doubled = 1_i64
        .checked_shl(attempts.saturating_sub(1))
        .unwrap_or(i64::MAX);
    doubled.clamp(1, MAX_BACKOFF)
}

/// What an attempt comes to: `result` of the `attempts`-th attempt of an alarm queued at
/// `queued_at`, at `now`.
pub fn outcome(
    result: &Result<String, SendError>,
    attempts: u32,
    queued_at: Instant,
    now: Instant,
) -> (Outcome, Instant) {
    match result {
        Ok(_) => (Outcome::Delivered, now),
        Err(e) if e.permanent => (Outcome::Failed, now),
        Err(_) if now - queued_at >= RETRY_FOR => (Outcome::Failed, now),
        Err(_) => (Outcome::Retry, now + backoff(attempts)),
    }
}

/// Counts of attempts since start, by outcome.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    queued: AtomicU64,
}

impl DeliveryStats {
    fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Delivered => &self.delivered,
            Outcome::Retry => &self.retried,
            Outcome::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        flowwatch_proto::server::write_metric(
            out,
            "flowwatch_notifications_queued_total",
            "counter",
            "Alarms queued for a notification channel.",
            self.queued.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP flowwatch_notification_attempts_total Attempts to deliver to a notification channel, by outcome.\n# TYPE flowwatch_notification_attempts_total counter"
        );
        for (outcome, n) in [
            ("delivered", &self.delivered),
            ("retry", &self.retried),
            ("failed", &self.failed),
        ] {
            let _ = writeln!(
                out,
                "flowwatch_notification_attempts_total{{outcome=\"{outcome}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
    }
}

/// Queues alarms for the channels and runs their senders.
pub struct Notifier {
    store: Arc<dyn Store>,
    clock: Clock,
    wake: std::sync::Mutex<HashMap<String, Arc<Notify>>>,
    stats: Arc<DeliveryStats>,
}

impl Notifier {
    /// A notifier on `store`'s channels and queue.
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Arc<Notifier> {
        Arc::new(Notifier {
            store,
            clock,
            wake: Default::default(),
            stats: Default::default(),
        })
    }

    /// Its counts.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.stats.clone()
    }

    fn waker(&self, channel: &str) -> Arc<Notify> {
        let mut wake = self.wake.lock().unwrap_or_else(|p| p.into_inner());
        wake.entry(channel.to_owned()).or_default().clone()
    }

    /// Queues each of `events` for every channel that wants it (once per channel and event,
    /// however often it is handed over) and wakes their senders; returns how many were queued.
    pub async fn queue(&self, events: &[Event]) -> flowwatch_storage::Result<usize> {
        if events.is_empty() {
            return Ok(0);
        }
        let channels = self.store.channels().await?;
        let now = self.clock.now();
        let mut deliveries = Vec::new();
        let mut woken = Vec::new();
        for c in &channels {
            let before = deliveries.len();
            deliveries.extend(
                events
                    .iter()
                    .filter(|e| c.channel.wants(e))
                    .map(|e| Delivery {
                        channel: c.name.clone(),
                        event: e.clone(),
                        queued_at: now,
                        attempts: 0,
                        next_at: now,
                    }),
            );
            if deliveries.len() > before {
                woken.push(c.name.as_str());
            }
        }
        if deliveries.is_empty() {
            return Ok(0);
        }
        let queued = self.store.queue_deliveries(deliveries).await?;
        self.stats
            .queued
            .fetch_add(queued as u64, Ordering::Relaxed);
        for name in woken {
            self.waker(name).notify_one();
        }
        Ok(queued)
    }

    /// Runs a sender for every stored channel until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        // Each sender's target, kept on the stored one here (the one read of the channels):
        // a sender whose entry goes (its channel was deleted) stops.
        let mut senders: HashMap<String, (watch::Sender<Target>, JoinHandle<()>)> = HashMap::new();
        let mut failing = false;
        loop {
            match self.store.channels().await {
                Ok(channels) => {
                    failing = false;
                    senders.retain(|name, (_, task)| {
                        !task.is_finished() && channels.iter().any(|c| &c.name == name)
                    });
                    for c in channels {
                        let target = c.channel.target;
                        match senders.entry(c.name) {
                            Entry::Occupied(kept) => {
                                kept.get().0.send_if_modified(|t| {
                                    let changed = *t != target;
                                    *t = target;
                                    changed
                                });
                            }
                            Entry::Vacant(slot) => {
                                let (tx, rx) = watch::channel(target);
                                let send =
                                    self.clone().send_loop(slot.key().clone(), rx, stop.clone());
                                slot.insert((tx, tokio::spawn(send)));
                            }
                        }
                    }
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!("notification channels: cannot read them, retrying: {e}");
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(REFRESH) => {}
            }
        }
        for (_, (_, task)) in senders {
            let _ = task.await;
        }
    }

    /// Sends the deliveries of the channel `name` to the target `targets` holds, until its
    /// entry goes (the channel was deleted) or `stop`.
    async fn send_loop(
        self: Arc<Self>,
        name: String,
        mut targets: watch::Receiver<Target>,
        stop: CancellationToken,
    ) {
        let wake = self.waker(&name);
        let mut sender = Sender::new(&name, &targets.borrow_and_update());
        loop {
            match targets.has_changed() {
                Err(_) => return, // deleted
                Ok(true) => sender = Sender::new(&name, &targets.borrow_and_update()),
                Ok(false) => {}
            }
            let wait = tokio::select! {
                _ = stop.cancelled() => return,
                sent = self.send_due(&name, &sender) => match sent {
                    Ok(sent) => sent == 0,
                    Err(e) => {
                        tracing::warn!(channel = %name, "notification channel: {e}");
                        true
                    }
                },
            };
            if wait {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }

    /// Claims the due deliveries of `name` and sends them in order until one is not
    /// delivered (the rest then wait with it). Returns how many were attempted.
    async fn send_due(&self, name: &str, sender: &Sender) -> flowwatch_storage::Result<usize> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_deliveries(name, now, now + HOLD, BATCH)
            .await?;
        let mut attempted = 0;
        let mut rest = claimed.into_iter();
        while let Some(mut d) = rest.next() {
            let at_ms = self.clock.now_ms();
            let started = std::time::Instant::now();
            let result = sender.send(&d.event, false).await;
            attempted += 1;
            d.attempts += 1;
            let now = self.clock.now();
            let (outcome, next_at) = outcome(&result, d.attempts, d.queued_at, now);
            d.next_at = next_at;
            let response = match &result {
                Ok(r) => r.clone(),
                Err(e) if outcome == Outcome::Failed && !e.permanent => {
                    format!("{e} (given up: retried for {} h)", RETRY_FOR / 3600)
                }
                Err(e) => e.message.clone(),
            };
            match outcome {
                Outcome::Delivered => {
                    tracing::debug!(channel = name, id = %d.event.id, "delivered: {response}")
                }
                Outcome::Retry => tracing::info!(
                    channel = name, id = %d.event.id, attempt = d.attempts,
                    "not delivered, next attempt in {} s: {response}", next_at - now
                ),
                Outcome::Failed => tracing::error!(
                    channel = name, id = %d.event.id, attempt = d.attempts,
                    "not delivered, given up: {response}"
                ),
            }
            self.stats.count(outcome);
            let attempt = DeliveryAttempt {
                channel: name.to_owned(),
                at_ms,
                event_id: d.event.id.clone(),
                attempt: d.attempts,
                test: false,
                outcome,
                response,
                duration_ms: started.elapsed().as_millis() as u64,
            };
            let mut settled = vec![Settlement {
                delivery: d,
                outcome,
                attempt: Some(attempt),
            }];
            if outcome == Outcome::Retry {
                settled.extend(rest.by_ref().map(|mut r| {
                    r.next_at = next_at;
                    Settlement {
                        delivery: r,
                        outcome: Outcome::Retry,
                        attempt: None,
                    }
                }));
            }
            self.store.settle_deliveries(settled).await?;
        }
        Ok(attempted)
    }
}

/// Sends a test message to the channel `stored` now (`POST /channels/{name}/test`) and logs
/// the attempt with its deliveries: what became of it.
pub async fn send_test(
    store: &dyn Store,
    clock: &Clock,
    stored: &StoredChannel,
) -> flowwatch_storage::Result<DeliveryAttempt> {
    let at_ms = clock.now_ms();
    let event = test_event(&stored.name, stored.channel.scope.as_ref(), at_ms);
    let started = std::time::Instant::now();
    let result = Sender::new(&stored.name, &stored.channel.target)
        .send(&event, true)
        .await;
    let (outcome, response) = match result {
        Ok(r) => (Outcome::Delivered, r),
        Err(e) => (Outcome::Failed, e.message),
    };
    let attempt = DeliveryAttempt {
        channel: stored.name.clone(),
        at_ms,
        event_id: event.id,
        attempt: 1,
        test: true,
        outcome,
        response,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    store.log_attempt(attempt.clone()).await?;
    Ok(attempt)
}
