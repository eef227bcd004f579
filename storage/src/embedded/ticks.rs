//! Ticks (`id ‖ start`), each flow's latest status (by flow key), events (`time ‖ id`) and
//! the alarm outbox in the embedded store.

use async_trait::async_trait;

use super::*;

impl Inner {
    /// `f` of the outbox's keys, read whole the first time.
    fn with_outbox<T>(
        &self,
        f: impl FnOnce(&std::collections::BTreeSet<Vec<u8>>) -> T,
    ) -> Result<T> {
        if let Some(outbox) = &self.views().outbox {
            return Ok(f(outbox));
        }
        // Under the write lock: no event is queued or removed between the scan and keeping it.
        let _w = self.lock();
        let keys = self
            .outbox
            .iter()
            .map(|item| item.key().map(|k| k.to_vec()).map_err(backend))
            .collect::<Result<_>>()?;
        let mut views = self.views();
        Ok(f(views.outbox.insert(keys)))
    }
}

#[async_trait]
impl crate::TickStore for EmbeddedStore {
    async fn write_ticks(&self, ticks: Vec<StoredTick>) -> Result<WriteOutcome> {
        self.blocking(move |i| {
            let ids = i.ids_creating(ticks.iter().map(|t| &t.flow))?;
            let mut newest = i.lock();
            let mut out = WriteOutcome::default();
            let mut b = i.batch();
            // Latest tick per flow (by id) within this batch, to move the status once.
            let mut latest: std::collections::HashMap<u64, &StoredTick> = Default::default();
            for (t, &id) in ticks.iter().zip(&ids) {
                let key = id_time_key(id, t.start);
                let new = Newest::is_new(&mut newest.ticks, &i.ticks, u128::from_be_bytes(key))?;
                if !new && let Some(old) = i.ticks.get(key).map_err(backend)? {
                    let old = keys::decode_tick(t.flow.clone(), &old)?;
                    if old.epoch > t.epoch {
                        out.stale += 1;
                        continue;
                    }
                }
                b.insert(&i.ticks, &key[..], keys::tick_value(t));
                out.written += 1;
                let e = latest.entry(id).or_insert(t);
                if t.start > e.start {
                    *e = t;
                }
            }
            let mut moved = Vec::new();
            for t in latest.into_values() {
                let mut fk = Vec::new();
                flow_key(&t.flow, &mut fk);
                let newer = match i.status.get(&fk).map_err(backend)? {
                    Some(v) => keys::decode_tick(t.flow.clone(), &v)?.start <= t.start,
                    None => true,
                };
                if newer {
                    b.insert(&i.status, fk, keys::tick_value(t));
                    moved.push(t);
                }
            }
            b.commit().map_err(backend)?;
            if let Some(latest) = &mut i.views().latest {
                for t in moved {
                    latest.insert(t.flow.clone(), t.clone());
                }
            }
            Ok(out)
        })
        .await
    }

    async fn read_ticks(
        &self,
        flow: &FlowId,
        from: Instant,
        to: Instant,
    ) -> Result<Vec<StoredTick>> {
        let flow = flow.clone();
        self.blocking(move |i| {
            let mut out = Vec::new();
            let Some(id) = i.id(&flow)? else {
                return Ok(out);
            };
            Inner::scan_flow_range(&i.ticks, id, from, to, |_, v| {
                out.push(keys::decode_tick(flow.clone(), v)?);
                Ok(())
            })?;
            Ok(out)
        })
        .await
    }

    async fn latest_statuses(&self) -> Result<Vec<StoredTick>> {
        self.blocking(|i| {
            if let Some(latest) = &i.views().latest {
                return Ok(latest.values().cloned().collect());
            }
            // Filled under the write lock: no write moves a status in between.
            let _w = i.lock();
            let mut latest = std::collections::BTreeMap::new();
            for item in i.status.iter() {
                let (k, v) = item.into_inner().map_err(backend)?;
                let (flow, _) = decode_flow_key(&k)?;
                latest.insert(flow.clone(), keys::decode_tick(flow, &v)?);
            }
            let out = latest.values().cloned().collect();
            i.views().latest = Some(latest);
            Ok(out)
        })
        .await
    }

    async fn latest_statuses_in(&self, scope: Scope<'_>) -> Result<Vec<StoredTick>> {
        let scope = OwnedScope::of(scope);
        self.blocking(move |i| {
            i.scoped(
                scope.get(),
                |v| v.latest.as_ref(),
                &i.status,
                keys::decode_tick,
            )
        })
        .await
    }

    async fn append_events(&self, events: Vec<Event>) -> Result<()> {
        self.blocking(move |i| {
            let _w = i.lock();
            let mut b = i.batch();
            let mut seen = std::collections::HashSet::new();
            let mut queued = Vec::new();
            for e in &events {
                if !seen.insert(e.id.as_str())
                    || i.event_ids.contains_key(&e.id).map_err(backend)?
                {
                    continue;
                }
                let key = event_key(e.time, &e.id);
                if e.alarmed() {
                    b.insert(&i.outbox, key.clone(), []);
                    queued.push(key.clone());
                }
                if !e.keeps_acknowledgement() {
                    let mut flow = Vec::new();
                    flow_key(&e.flow, &mut flow);
                    b.remove(&i.flow_acks, flow);
                }
                b.insert(&i.events, key, json(e));
                b.insert(
                    &i.event_ids,
                    e.id.as_bytes().to_vec(),
                    time(e.time).to_vec(),
                );
            }
            b.commit().map_err(backend)?;
            if let Some(outbox) = &mut i.views().outbox {
                outbox.extend(queued);
            }
            Ok(())
        })
        .await
    }

    async fn event(&self, id: &str) -> Result<Option<Event>> {
        let id = id.to_owned();
        self.blocking(move |i| i.event(&id)).await
    }

    async fn query_events(&self, q: EventQuery) -> Result<EventPage> {
        self.blocking(move |i| {
            let limit = q.limit.max(1);
            let lo = time(q.from.unwrap_or(Instant::MIN)).to_vec();
            let hi = match &q.cursor {
                Some(c) => {
                    let (t, id) = decode_cursor(c)?;
                    event_key(t, &id)
                }
                None => time(q.to.unwrap_or(Instant::MAX)).to_vec(),
            };
            let mut events = Vec::new();
            for item in i.events.range(lo..hi).rev() {
                let v = item.value().map_err(backend)?;
                let e: Event = serde_json::from_slice(&v).map_err(|e| corrupt("events", e))?;
                if !q.admits(&e) {
                    continue;
                }
                events.push(e);
                if events.len() > limit {
                    break;
                }
            }
            Ok(EventPage::from_overfetch(events, limit))
        })
        .await
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<Event>> {
        self.blocking(move |i| {
            let keys: Vec<Vec<u8>> = i.with_outbox(|o| o.iter().take(limit).cloned().collect())?;
            let mut out = Vec::new();
            for key in keys {
                // Expired with its event only; the outbox never outlives it.
                if let Some(v) = i.events.get(&key).map_err(backend)? {
                    out.push(serde_json::from_slice(&v).map_err(|e| corrupt("events", e))?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn outbox_done(&self, ids: Vec<String>) -> Result<()> {
        self.blocking(move |i| {
            let _w = i.lock();
            let mut b = i.batch();
            let mut done = Vec::new();
            for id in &ids {
                if let Some(t) = i.event_ids.get(id).map_err(backend)? {
                    let key = event_key(decode_time(&t)?, id);
                    b.remove(&i.outbox, key.clone());
                    done.push(key);
                }
            }
            b.commit().map_err(backend)?;
            if let Some(outbox) = &mut i.views().outbox {
                for k in &done {
                    outbox.remove(k);
                }
            }
            Ok(())
        })
        .await
    }

    async fn outbox_len(&self) -> Result<u64> {
        self.blocking(|i| i.with_outbox(|o| o.len() as u64)).await
    }
}
