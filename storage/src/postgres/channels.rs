//! Notification channels and their delivery queue in PostgreSQL: a delivery row per channel
//! and alarm, `queued` until settled (then its body goes and the row stays, so the alarm is
//! not queued again); senders claim due rows with `FOR UPDATE SKIP LOCKED`, so two processes
//! never take the same one.

use async_trait::async_trait;

use super::*;

fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(corrupt)
}

fn value(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).expect("stored types serialize")
}

/// Keeps the latest [`ATTEMPTS_KEPT`] attempts of channel `$1`.
const TRIM_ATTEMPTS: &str = "DELETE FROM delivery_attempts WHERE channel = $1 AND (at_ms, seq) <
    (SELECT at_ms, seq FROM delivery_attempts WHERE channel = $1
     ORDER BY at_ms DESC, seq DESC OFFSET $2 LIMIT 1)";

/// Logs an attempt of a channel that exists.
const LOG_ATTEMPT: &str = "INSERT INTO delivery_attempts (channel, at_ms, body)
    SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM channels WHERE name = $1)";

const KEPT: i64 = ATTEMPTS_KEPT as i64 - 1;

#[async_trait]
impl crate::ChannelStore for PostgresStore {
    async fn put_channel(&self, channel: StoredChannel) -> Result<bool> {
        let row = (self.client().await)
            .query_one(
                "INSERT INTO channels (name, body) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body
                 RETURNING (xmax = 0)",
                &[&channel.name, &value(&channel)],
            )
            .await
            .map_err(pg)?;
        Ok(row.get(0))
    }

    async fn channel(&self, name: &str) -> Result<Option<StoredChannel>> {
        let row = (self.client().await)
            .query_opt("SELECT body FROM channels WHERE name = $1", &[&name])
            .await
            .map_err(pg)?;
        row.map(|r| parse(r.get(0))).transpose()
    }

    async fn channels(&self) -> Result<Vec<StoredChannel>> {
        let rows = (self.client().await)
            .query("SELECT body FROM channels ORDER BY name COLLATE \"C\"", &[])
            .await
            .map_err(pg)?;
        rows.into_iter().map(|r| parse(r.get(0))).collect()
    }

    async fn delete_channel(&self, name: &str) -> Result<bool> {
        let mut c = self.client().await;
        let tx = c.transaction().await.map_err(pg)?;
        let gone = tx
            .execute("DELETE FROM channels WHERE name = $1", &[&name])
            .await
            .map_err(pg)?;
        for table in ["deliveries", "delivery_attempts"] {
            tx.execute(&format!("DELETE FROM {table} WHERE channel = $1"), &[&name])
                .await
                .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(gone == 1)
    }

    async fn queue_deliveries(&self, deliveries: Vec<Delivery>) -> Result<usize> {
        let channels: Vec<&str> = deliveries.iter().map(|d| d.channel.as_str()).collect();
        let ids: Vec<&str> = deliveries.iter().map(|d| d.event.id.as_str()).collect();
        let times: Vec<i64> = deliveries.iter().map(|d| d.event.time).collect();
        let next: Vec<i64> = deliveries.iter().map(|d| d.next_at).collect();
        let bodies: Vec<serde_json::Value> = deliveries.iter().map(value).collect();
        let n = (self.client().await)
            .execute(
                "INSERT INTO deliveries (channel, event_id, event_time, state, next_at, body)
                 SELECT u.channel, u.event_id, u.event_time, 'queued', u.next_at, u.body
                 FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::jsonb[])
                      AS u(channel, event_id, event_time, next_at, body)
                 WHERE EXISTS (SELECT 1 FROM channels c WHERE c.name = u.channel)
                 ON CONFLICT (channel, event_id) DO NOTHING",
                &[&channels, &ids, &times, &next, &bodies],
            )
            .await
            .map_err(pg)?;
        Ok(n as usize)
    }

    async fn claim_deliveries(
        &self,
        channel: &str,
        now: Instant,
        until: Instant,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let limit = to_i64(limit as u64, "limit")?;
        let rows = (self.client().await)
            .query(
                "UPDATE deliveries d SET next_at = $3,
                        body = jsonb_set(d.body, '{nextAt}', to_jsonb($3::bigint))
                 FROM (SELECT channel, event_id FROM deliveries
                       WHERE channel = $1 AND state = 'queued' AND next_at <= $2
                       ORDER BY event_time, event_id COLLATE \"C\" LIMIT $4
                       FOR UPDATE SKIP LOCKED) due
                 WHERE d.channel = due.channel AND d.event_id = due.event_id
                 RETURNING d.body",
                &[&channel, &now, &until, &limit],
            )
            .await
            .map_err(pg)?;
        let mut due: Vec<Delivery> = rows
            .into_iter()
            .map(|r| parse(r.get(0)))
            .collect::<Result<_>>()?;
        Delivery::sort(&mut due);
        Ok(due)
    }

    async fn settle_deliveries(&self, settlements: Vec<Settlement>) -> Result<()> {
        let mut c = self.client().await;
        let tx = c.transaction().await.map_err(pg)?;
        let mut logged = std::collections::BTreeSet::new();
        for s in &settlements {
            let d = &s.delivery;
            let (state, body) = match s.outcome {
                Outcome::Retry => ("queued", Some(value(d))),
                Outcome::Delivered => ("delivered", None),
                Outcome::Failed => ("failed", None),
            };
            tx.execute(
                "UPDATE deliveries SET state = $3, next_at = $4, body = $5
                 WHERE channel = $1 AND event_id = $2 AND state = 'queued'",
                &[&d.channel, &d.event.id, &state, &d.next_at, &body],
            )
            .await
            .map_err(pg)?;
            if let Some(a) = &s.attempt {
                tx.execute(LOG_ATTEMPT, &[&a.channel, &a.at_ms, &value(a)])
                    .await
                    .map_err(pg)?;
                logged.insert(a.channel.clone());
            }
        }
        for channel in &logged {
            tx.execute(TRIM_ATTEMPTS, &[channel, &KEPT])
                .await
                .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)
    }

    async fn log_attempt(&self, attempt: DeliveryAttempt) -> Result<()> {
        let mut c = self.client().await;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute(
            LOG_ATTEMPT,
            &[&attempt.channel, &attempt.at_ms, &value(&attempt)],
        )
        .await
        .map_err(pg)?;
        tx.execute(TRIM_ATTEMPTS, &[&attempt.channel, &KEPT])
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)
    }

    async fn delivery_attempts(&self, channel: &str, limit: usize) -> Result<Vec<DeliveryAttempt>> {
        let limit = to_i64(limit as u64, "limit")?;
        let rows = (self.client().await)
            .query(
                "SELECT body FROM delivery_attempts WHERE channel = $1
                 ORDER BY at_ms DESC, seq DESC LIMIT $2",
                &[&channel, &limit],
            )
            .await
            .map_err(pg)?;
        rows.into_iter().map(|r| parse(r.get(0))).collect()
    }

    async fn pending_deliveries(&self, channel: &str) -> Result<u64> {
        let row = (self.client().await)
            .query_one(
                "SELECT count(*) FROM deliveries WHERE channel = $1 AND state = 'queued'",
                &[&channel],
            )
            .await
            .map_err(pg)?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}
