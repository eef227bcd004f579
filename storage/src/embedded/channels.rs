//! Notification channels and their delivery queue in the embedded store. Every key of a
//! channel's rows starts with [`channel_prefix`] (its name, length-prefixed), so a channel's
//! queue, its settled ids and its attempts are one prefix scan each.

use async_trait::async_trait;

use super::*;

/// The start of every key of the channel `name`: its length (2 bytes) and its bytes.
fn channel_prefix(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 2);
    k.extend_from_slice(&(name.len() as u16).to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

/// `channel ‖ event id`: a queued or settled delivery.
fn delivery_key(channel: &str, event_id: &str) -> Vec<u8> {
    let mut k = channel_prefix(channel);
    k.extend_from_slice(event_id.as_bytes());
    k
}

/// `channel ‖ at ‖ event id ‖ 0 ‖ attempt`: attempts in time order.
fn attempt_key(a: &DeliveryAttempt) -> Vec<u8> {
    let mut k = channel_prefix(&a.channel);
    k.extend_from_slice(&time(a.at_ms));
    k.extend_from_slice(a.event_id.as_bytes());
    k.push(0);
    k.extend_from_slice(&a.attempt.to_be_bytes());
    k
}

impl Inner {
    fn has_channel(&self, name: &str) -> Result<bool> {
        self.channels.contains_key(name.as_bytes()).map_err(backend)
    }

    /// The keys of `ks` under `prefix`.
    fn keys_under(ks: &Keyspace, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        ks.prefix(prefix)
            .map(|item| Ok(item.key().map_err(backend)?.to_vec()))
            .collect()
    }

    /// Drops the oldest attempts of `channel` beyond [`ATTEMPTS_KEPT`] (committed attempts).
    fn trim_attempts(&self, channel: &str) -> Result<()> {
        let keys = Inner::keys_under(&self.attempts, &channel_prefix(channel))?;
        if keys.len() <= ATTEMPTS_KEPT {
            return Ok(());
        }
        let mut b = self.batch();
        for k in &keys[..keys.len() - ATTEMPTS_KEPT] {
            b.remove(&self.attempts, k.clone());
        }
        b.commit().map_err(backend)
    }
}

#[async_trait]
impl crate::ChannelStore for EmbeddedStore {
    async fn put_channel(&self, channel: StoredChannel) -> Result<bool> {
        self.blocking(move |i| {
            let _w = i.lock();
            let new = !i.has_channel(&channel.name)?;
            let mut b = i.batch();
            b.insert(
                &i.channels,
                channel.name.as_bytes().to_vec(),
                json(&channel),
            );
            b.commit().map_err(backend)?;
            Ok(new)
        })
        .await
    }

    async fn channel(&self, name: &str) -> Result<Option<StoredChannel>> {
        let name = name.to_owned();
        self.blocking(move |i| i.get_json(&i.channels, name.as_bytes(), "channels"))
            .await
    }

    async fn channels(&self) -> Result<Vec<StoredChannel>> {
        self.blocking(|i| i.all_json(&i.channels, "channels")).await
    }

    async fn delete_channel(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.blocking(move |i| {
            let _w = i.lock();
            if !i.has_channel(&name)? {
                return Ok(false);
            }
            let prefix = channel_prefix(&name);
            let mut b = i.batch();
            b.remove(&i.channels, name.as_bytes().to_vec());
            for ks in [&i.deliveries, &i.delivered, &i.attempts] {
                for k in Inner::keys_under(ks, &prefix)? {
                    b.remove(ks, k);
                }
            }
            b.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn queue_deliveries(&self, deliveries: Vec<Delivery>) -> Result<usize> {
        self.blocking(move |i| {
            let _w = i.lock();
            let mut b = i.batch();
            let mut queued = std::collections::HashSet::new();
            for d in &deliveries {
                let k = delivery_key(&d.channel, &d.event.id);
                if queued.contains(&k)
                    || !i.has_channel(&d.channel)?
                    || i.deliveries.contains_key(&k).map_err(backend)?
                    || i.delivered.contains_key(&k).map_err(backend)?
                {
                    continue;
                }
                b.insert(&i.deliveries, k.clone(), json(d));
                queued.insert(k);
            }
            b.commit().map_err(backend)?;
            Ok(queued.len())
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        channel: &str,
        now: Instant,
        until: Instant,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let channel = channel.to_owned();
        self.blocking(move |i| {
            let _w = i.lock();
            let mut due = Vec::new();
            for item in i.deliveries.prefix(channel_prefix(&channel)) {
                let d: Delivery = serde_json::from_slice(&item.value().map_err(backend)?)
                    .map_err(|e| corrupt("deliveries", e))?;
                if d.next_at <= now {
                    due.push(d);
                }
            }
            Delivery::sort(&mut due);
            due.truncate(limit);
            let mut b = i.batch();
            for d in &mut due {
                d.next_at = until;
                b.insert(&i.deliveries, delivery_key(&channel, &d.event.id), json(d));
            }
            b.commit().map_err(backend)?;
            Ok(due)
        })
        .await
    }

    async fn settle_deliveries(&self, settlements: Vec<Settlement>) -> Result<()> {
        self.blocking(move |i| {
            let _w = i.lock();
            let mut b = i.batch();
            let mut logged = std::collections::BTreeSet::new();
            for s in &settlements {
                let d = &s.delivery;
                if !i.has_channel(&d.channel)? {
                    continue;
                }
                let k = delivery_key(&d.channel, &d.event.id);
                match s.outcome {
                    Outcome::Retry => b.insert(&i.deliveries, k, json(d)),
                    Outcome::Delivered | Outcome::Failed => {
                        b.remove(&i.deliveries, k.clone());
                        b.insert(&i.delivered, k, time(d.next_at).to_vec());
                    }
                }
                if let Some(a) = &s.attempt {
                    b.insert(&i.attempts, attempt_key(a), json(a));
                    logged.insert(a.channel.clone());
                }
            }
            b.commit().map_err(backend)?;
            for channel in logged {
                i.trim_attempts(&channel)?;
            }
            Ok(())
        })
        .await
    }

    async fn log_attempt(&self, attempt: DeliveryAttempt) -> Result<()> {
        self.blocking(move |i| {
            let _w = i.lock();
            if !i.has_channel(&attempt.channel)? {
                return Ok(());
            }
            let mut b = i.batch();
            b.insert(&i.attempts, attempt_key(&attempt), json(&attempt));
            b.commit().map_err(backend)?;
            i.trim_attempts(&attempt.channel)
        })
        .await
    }

    async fn delivery_attempts(&self, channel: &str, limit: usize) -> Result<Vec<DeliveryAttempt>> {
        let channel = channel.to_owned();
        self.blocking(move |i| {
            i.attempts
                .prefix(channel_prefix(&channel))
                .rev()
                .take(limit)
                .map(|item| {
                    serde_json::from_slice(&item.value().map_err(backend)?)
                        .map_err(|e| corrupt("attempts", e))
                })
                .collect()
        })
        .await
    }

    async fn pending_deliveries(&self, channel: &str) -> Result<u64> {
        let channel = channel.to_owned();
        self.blocking(move |i| {
            Ok(Inner::keys_under(&i.deliveries, &channel_prefix(&channel))?.len() as u64)
        })
        .await
    }
}
