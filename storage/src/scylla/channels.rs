//! Notification channels and their delivery queue in ScyllaDB.
//!
//! `delivery_marks` holds, per channel, every alarm it took (kept 30 days): queueing claims the
//! mark (`INSERT … IF NOT EXISTS`, state `queued`), then writes the queue row with the claim's
//! time as its timestamp, so queueing an alarm whose mark is still `queued` writes the row again
//! (what a crash left undone) without undoing a claim or a settlement made since. The queue is
//! partitioned by channel and the UTC day of the alarm (`delivery_days` lists the days that may
//! hold rows), so a claim reads the queued rows of a few days, not every alarm the channel ever
//! had; a claim is `UPDATE … IF next_at = ?` per row (of two senders, one takes it). Settling
//! deletes the row, then marks the alarm delivered or failed. Attempts are a partition per
//! channel, newest first, trimmed to the latest [`ATTEMPTS_KEPT`] and kept a week at most.

use async_trait::async_trait;

use super::events::now_micros;
use super::*;

/// How many days old an empty queue day must be before it leaves `delivery_days` (an
/// alarm's queue row is written before its day is listed).
const DAYS_KEPT: i32 = 2;

/// The statements of channels, deliveries and attempts.
pub(super) struct ChannelStatements {
    put: Prepared,
    get: Prepared,
    all: Prepared,
    delete: Prepared,
    mark: Prepared,
    marked: Prepared,
    settle_mark: Prepared,
    marks_delete: Prepared,
    queue: Prepared,
    day: Prepared,
    days: Prepared,
    queued: Prepared,
    count: Prepared,
    claim: Prepared,
    retry: Prepared,
    dequeue: Prepared,
    day_delete: Prepared,
    queue_delete: Prepared,
    days_delete: Prepared,
    attempt_put: Prepared,
    attempts: Prepared,
    attempts_trim: Prepared,
    attempts_delete: Prepared,
}

impl ChannelStatements {
    pub(super) async fn prepare(cql: &dyn Cql) -> Result<ChannelStatements> {
        Ok(ChannelStatements {
            put: cql.prepare("INSERT INTO channels (k, name, body) VALUES (0, ?, ?)").await?,
            get: cql.prepare("SELECT body FROM channels WHERE k = 0 AND name = ?").await?,
            all: cql.prepare("SELECT body FROM channels WHERE k = 0").await?,
            delete: cql.prepare("DELETE FROM channels WHERE k = 0 AND name = ?").await?,
            mark: cql.prepare("INSERT INTO delivery_marks (channel, event_id, state, claimed_at) VALUES (?, ?, 'queued', ?) IF NOT EXISTS").await?,
            marked: cql.prepare("SELECT state, claimed_at FROM delivery_marks WHERE channel = ? AND event_id = ?").await?,
            settle_mark: cql.prepare("UPDATE delivery_marks SET state = ? WHERE channel = ? AND event_id = ?").await?,
            marks_delete: cql.prepare("DELETE FROM delivery_marks WHERE channel = ?").await?,
            queue: cql.prepare("INSERT INTO deliveries (channel, day, time, event_id, next_at, body) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?").await?,
            day: cql.prepare("INSERT INTO delivery_days (channel, day) VALUES (?, ?)").await?,
            days: cql.prepare("SELECT day FROM delivery_days WHERE channel = ?").await?,
            queued: cql.prepare("SELECT next_at, body FROM deliveries WHERE channel = ? AND day = ?").await?,
            count: cql.prepare("SELECT count(*) FROM deliveries WHERE channel = ? AND day = ?").await?,
            claim: cql.prepare("UPDATE deliveries SET next_at = ?, body = ? WHERE channel = ? AND day = ? AND time = ? AND event_id = ? IF next_at = ?").await?,
            retry: cql.prepare("UPDATE deliveries SET next_at = ?, body = ? WHERE channel = ? AND day = ? AND time = ? AND event_id = ? IF EXISTS").await?,
            dequeue: cql.prepare("DELETE FROM deliveries WHERE channel = ? AND day = ? AND time = ? AND event_id = ?").await?,
            day_delete: cql.prepare("DELETE FROM delivery_days USING TIMESTAMP ? WHERE channel = ? AND day = ?").await?,
            queue_delete: cql.prepare("DELETE FROM deliveries WHERE channel = ? AND day = ?").await?,
            days_delete: cql.prepare("DELETE FROM delivery_days WHERE channel = ?").await?,
            attempt_put: cql.prepare("INSERT INTO delivery_attempts (channel, at_ms, event_id, attempt, body) VALUES (?, ?, ?, ?, ?)").await?,
            attempts: cql.prepare("SELECT body FROM delivery_attempts WHERE channel = ? LIMIT ?").await?,
            attempts_trim: cql.prepare("DELETE FROM delivery_attempts WHERE channel = ? AND at_ms < ?").await?,
            attempts_delete: cql.prepare("DELETE FROM delivery_attempts WHERE channel = ?").await?,
        })
    }
}

/// The key of a delivery's queue row after its channel: the alarm's day, time and id.
fn queue_key(d: &Delivery) -> (i32, i64, &str) {
    (day(d.event.time), d.event.time, &d.event.id)
}

impl ScyllaStore {
    /// Whether the channel `name` is stored, read once per call (`known` keeps the answers).
    async fn exists(&self, known: &mut HashMap<String, bool>, name: &str) -> Result<bool> {
        if let Some(&e) = known.get(name) {
            return Ok(e);
        }
        let e = crate::ChannelStore::channel(self, name).await?.is_some();
        known.insert(name.to_owned(), e);
        Ok(e)
    }

    async fn log(&self, a: &DeliveryAttempt) -> Result<()> {
        let st = &self.st.channels;
        let attempt = a.attempt as i32;
        self.exec(
            &st.attempt_put,
            (&a.channel, a.at_ms, &a.event_id, attempt, body(a)),
        )
        .await?;
        Ok(())
    }

    /// Drops the attempts of `channel` older than its latest [`ATTEMPTS_KEPT`].
    async fn trim(&self, channel: &str) -> Result<()> {
        let st = &self.st.channels;
        let kept: Vec<(String,)> = self
            .rows(&st.attempts, (channel, ATTEMPTS_KEPT as i32))
            .await?;
        if kept.len() == ATTEMPTS_KEPT
            && let Some((last,)) = kept.last()
        {
            let oldest: DeliveryAttempt = parse(last)?;
            self.exec(&st.attempts_trim, (channel, oldest.at_ms))
                .await?;
        }
        Ok(())
    }

    /// Writes `d`'s queue row with the timestamp of its mark, then lists its day.
    async fn enqueue(&self, d: &Delivery, marked_at: i64) -> Result<()> {
        let st = &self.st.channels;
        let (day, time, id) = queue_key(d);
        let row = (&d.channel, day, time, id, d.next_at, body(d), marked_at);
        self.exec(&st.queue, row).await?;
        self.exec(&st.day, (&d.channel, day)).await?;
        Ok(())
    }

    /// The days of `channel`'s queue, oldest first.
    async fn queue_days(&self, channel: &str) -> Result<Vec<i32>> {
        let days: Vec<(i32,)> = self.rows(&self.st.channels.days, (channel,)).await?;
        Ok(days.into_iter().map(|(d,)| d).collect())
    }
}

#[async_trait]
impl crate::ChannelStore for ScyllaStore {
    async fn put_channel(&self, channel: StoredChannel) -> Result<bool> {
        let new = self.channel(&channel.name).await?.is_none();
        self.exec(&self.st.channels.put, (&channel.name, body(&channel)))
            .await?;
        Ok(new)
    }

    async fn channel(&self, name: &str) -> Result<Option<StoredChannel>> {
        let rows: Vec<(String,)> = self.rows(&self.st.channels.get, (name,)).await?;
        rows.first().map(|(b,)| parse(b)).transpose()
    }

    async fn channels(&self) -> Result<Vec<StoredChannel>> {
        // Clustered by name: already in order.
        let rows: Vec<(String,)> = self.rows(&self.st.channels.all, ()).await?;
        rows.iter().map(|(b,)| parse(b)).collect()
    }

    async fn delete_channel(&self, name: &str) -> Result<bool> {
        if self.channel(name).await?.is_none() {
            return Ok(false);
        }
        let st = &self.st.channels;
        self.exec(&st.delete, (name,)).await?;
        for d in self.queue_days(name).await? {
            self.exec(&st.queue_delete, (name, d)).await?;
        }
        self.exec(&st.days_delete, (name,)).await?;
        self.exec(&st.marks_delete, (name,)).await?;
        self.exec(&st.attempts_delete, (name,)).await?;
        Ok(true)
    }

    async fn queue_deliveries(&self, deliveries: Vec<Delivery>) -> Result<usize> {
        let st = &self.st.channels;
        let mut known = HashMap::new();
        let mut queued = 0;
        for d in &deliveries {
            if !self.exists(&mut known, &d.channel).await? {
                continue;
            }
            let at = now_micros();
            if applied(self.exec(&st.mark, (&d.channel, &d.event.id, at)).await?)? {
                self.enqueue(d, at).await?;
                queued += 1;
                continue;
            }
            // Marked before: settled, or queued (its row written, or cut short by a crash).
            let marked: Vec<(Option<String>, Option<i64>)> =
                self.rows(&st.marked, (&d.channel, &d.event.id)).await?;
            if let Some((Some(state), Some(at))) = marked.into_iter().next()
                && state == "queued"
            {
                self.enqueue(d, at).await?;
            }
        }
        Ok(queued)
    }

    async fn claim_deliveries(
        &self,
        channel: &str,
        now: Instant,
        until: Instant,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let st = &self.st.channels;
        let started = now_micros();
        let today = day(started / 1_000_000);
        let mut taken = Vec::new();
        for d in self.queue_days(channel).await? {
            if taken.len() == limit {
                break;
            }
            let rows: Vec<(i64, String)> = self.rows(&st.queued, (channel, d)).await?;
            if rows.is_empty() && d <= today - DAYS_KEPT {
                // Timestamped when this read began: a day listed again since stays listed.
                self.exec(&st.day_delete, (started, channel, d)).await?;
            }
            let mut due = Vec::new();
            for (next_at, b) in rows {
                if next_at <= now {
                    due.push(parse::<Delivery>(&b)?);
                }
            }
            Delivery::sort(&mut due);
            for mut delivery in due {
                if taken.len() == limit {
                    break;
                }
                let was = delivery.next_at;
                delivery.next_at = until;
                let (day, time, id) = queue_key(&delivery);
                let values = (until, body(&delivery), channel, day, time, id, was);
                if applied(self.exec(&st.claim, values).await?)? {
                    taken.push(delivery);
                }
            }
        }
        Ok(taken)
    }

    async fn settle_deliveries(&self, settlements: Vec<Settlement>) -> Result<()> {
        let st = &self.st.channels;
        let mut known = HashMap::new();
        let mut logged = std::collections::BTreeSet::new();
        for s in &settlements {
            let d = &s.delivery;
            if !self.exists(&mut known, &d.channel).await? {
                continue;
            }
            let (day, time, id) = queue_key(d);
            match s.outcome {
                Outcome::Retry => {
                    let values = (d.next_at, body(d), &d.channel, day, time, id);
                    self.exec(&st.retry, values).await?;
                }
                Outcome::Delivered | Outcome::Failed => {
                    // The row first: a mark still `queued` after a crash here queues it
                    // again under the row's delete, which stays.
                    self.exec(&st.dequeue, (&d.channel, day, time, id)).await?;
                    let mark = (s.outcome.as_str(), &d.channel, id);
                    self.exec(&st.settle_mark, mark).await?;
                }
            }
            if let Some(a) = &s.attempt {
                self.log(a).await?;
                logged.insert(a.channel.clone());
            }
        }
        for channel in logged {
            self.trim(&channel).await?;
        }
        Ok(())
    }

    async fn log_attempt(&self, attempt: DeliveryAttempt) -> Result<()> {
        if self.channel(&attempt.channel).await?.is_none() {
            return Ok(());
        }
        self.log(&attempt).await?;
        self.trim(&attempt.channel).await
    }

    async fn delivery_attempts(&self, channel: &str, limit: usize) -> Result<Vec<DeliveryAttempt>> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let rows: Vec<(String,)> = self
            .rows(&self.st.channels.attempts, (channel, limit))
            .await?;
        rows.iter().map(|(b,)| parse(b)).collect()
    }

    async fn pending_deliveries(&self, channel: &str) -> Result<u64> {
        let st = &self.st.channels;
        let days = self.queue_days(channel).await?;
        let counts = days
            .iter()
            .map(|d| self.rows::<(i64,)>(&st.count, (channel, *d)));
        let counts = try_join_all(counts).await?;
        Ok(counts.iter().flatten().map(|(n,)| *n as u64).sum())
    }
}
