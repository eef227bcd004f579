//! Notification channels and their delivery queue in ScyllaDB. A channel's deliveries are one
//! partition: queueing is `INSERT … IF NOT EXISTS` (an alarm is queued once, and a settled row
//! stays), a claim is `UPDATE … IF next_at = ? AND state = 'queued'` per row (of two senders,
//! one takes it), and a retry is written only while the row is still queued. Attempts are a
//! partition per channel, newest first, trimmed to the latest [`ATTEMPTS_KEPT`] and kept a
//! week at most (table TTL).

use async_trait::async_trait;

use super::*;

fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(corrupt)
}

fn body(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).expect("stored types serialize")
}

/// The statements of channels, deliveries and attempts.
pub(super) struct ChannelStatements {
    put: PreparedStatement,
    get: PreparedStatement,
    all: PreparedStatement,
    delete: PreparedStatement,
    queue: PreparedStatement,
    queued: PreparedStatement,
    claim: PreparedStatement,
    retry: PreparedStatement,
    settle: PreparedStatement,
    deliveries_delete: PreparedStatement,
    attempt_put: PreparedStatement,
    attempts: PreparedStatement,
    attempts_trim: PreparedStatement,
    attempts_delete: PreparedStatement,
}

impl ChannelStatements {
    pub(super) async fn prepare<F, P>(p: &P) -> Result<ChannelStatements>
    where
        P: Fn(String) -> F,
        F: std::future::Future<Output = Result<PreparedStatement>>,
    {
        let s = |cql: &str| p(cql.to_owned());
        Ok(ChannelStatements {
            put: s("INSERT INTO channels (k, name, body) VALUES (0, ?, ?)").await?,
            get: s("SELECT body FROM channels WHERE k = 0 AND name = ?").await?,
            all: s("SELECT body FROM channels WHERE k = 0").await?,
            delete: s("DELETE FROM channels WHERE k = 0 AND name = ?").await?,
            queue: s("INSERT INTO deliveries (channel, event_id, state, next_at, body) VALUES (?, ?, 'queued', ?, ?) IF NOT EXISTS").await?,
            queued: s("SELECT state, next_at, body FROM deliveries WHERE channel = ?").await?,
            claim: s("UPDATE deliveries SET next_at = ?, body = ? WHERE channel = ? AND event_id = ? IF next_at = ? AND state = 'queued'").await?,
            retry: s("UPDATE deliveries SET next_at = ?, body = ? WHERE channel = ? AND event_id = ? IF state = 'queued'").await?,
            settle: s("UPDATE deliveries SET state = ?, next_at = ?, body = null WHERE channel = ? AND event_id = ?").await?,
            deliveries_delete: s("DELETE FROM deliveries WHERE channel = ?").await?,
            attempt_put: s("INSERT INTO delivery_attempts (channel, at_ms, event_id, attempt, body) VALUES (?, ?, ?, ?, ?)").await?,
            attempts: s("SELECT body FROM delivery_attempts WHERE channel = ? LIMIT ?").await?,
            attempts_trim: s("DELETE FROM delivery_attempts WHERE channel = ? AND at_ms < ?").await?,
            attempts_delete: s("DELETE FROM delivery_attempts WHERE channel = ?").await?,
        })
    }
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
        self.exec(&st.deliveries_delete, (name,)).await?;
        self.exec(&st.attempts_delete, (name,)).await?;
        Ok(true)
    }

    async fn queue_deliveries(&self, deliveries: Vec<Delivery>) -> Result<usize> {
        let mut known = HashMap::new();
        let mut queued = 0;
        for d in &deliveries {
            if !self.exists(&mut known, &d.channel).await? {
                continue;
            }
            let values = (&d.channel, &d.event.id, d.next_at, body(d));
            if applied(self.exec(&self.st.channels.queue, values).await?)? {
                queued += 1;
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
        let rows: Vec<(String, i64, Option<String>)> = self.rows(&st.queued, (channel,)).await?;
        let mut due: Vec<Delivery> = Vec::new();
        for (state, next_at, b) in rows {
            if state == "queued"
                && next_at <= now
                && let Some(b) = b
            {
                due.push(parse(&b)?);
            }
        }
        Delivery::sort(&mut due);
        let mut taken = Vec::new();
        for mut d in due {
            if taken.len() == limit {
                break;
            }
            let was = d.next_at;
            d.next_at = until;
            let values = (until, body(&d), channel, &d.event.id, was);
            if applied(self.exec(&st.claim, values).await?)? {
                taken.push(d);
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
            match s.outcome {
                Outcome::Retry => {
                    let values = (d.next_at, body(d), &d.channel, &d.event.id);
                    self.exec(&st.retry, values).await?;
                }
                Outcome::Delivered | Outcome::Failed => {
                    let values = (s.outcome.as_str(), d.next_at, &d.channel, &d.event.id);
                    self.exec(&st.settle, values).await?;
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
        let rows: Vec<(String, i64, Option<String>)> =
            self.rows(&self.st.channels.queued, (channel,)).await?;
        Ok(rows
            .iter()
            .filter(|(state, _, _)| state == "queued")
            .count() as u64)
    }
}
