//! Traffic in the embedded store: one entry per flow and minute (`id ‖ minute`), the
//! ingest positions, and retention of every series.

use async_trait::async_trait;

use super::*;

impl Inner {
    /// Deletes rows of an `id ‖ time` keyspace older than `before`, flow by flow (seeking from
    /// one flow's id to the next instead of scanning everything).
    fn expire_flow_series(&self, ks: &Keyspace, before: Instant) -> Result<u64> {
        let mut removed = 0;
        let mut id = 0u64;
        loop {
            let Some(item) = ks.range(id.to_be_bytes().to_vec()..).next() else {
                break;
            };
            let key = item.key().map_err(backend)?;
            id = u64::from_be_bytes(
                key[..8]
                    .try_into()
                    .map_err(|_| corrupt("series", "short key"))?,
            );
            let old: Vec<_> = ks
                .range(id_time_key(id, Instant::MIN)..id_time_key(id, before))
                .map(|i| i.key().map_err(backend))
                .collect::<Result<_>>()?;
            for chunk in old.chunks(DELETE_BATCH) {
                let mut b = self.batch();
                for k in chunk {
                    b.remove(ks, k.clone());
                }
                b.commit().map_err(backend)?;
                removed += chunk.len() as u64;
            }
            match id.checked_add(1) {
                Some(n) => id = n,
                None => break,
            }
        }
        Ok(removed)
    }

    /// Expires traffic: whole minutes before `before` go; the minute holding `before` loses
    /// its earlier seconds. Counts buckets, not minutes.
    fn expire_traffic(&self, before: Instant) -> Result<u64> {
        let mut removed = 0;
        let mut id = 0u64;
        loop {
            let Some(item) = self.traffic.range(id.to_be_bytes().to_vec()..).next() else {
                break;
            };
            let key = item.key().map_err(backend)?;
            id = u64::from_be_bytes(
                key[..8]
                    .try_into()
                    .map_err(|_| corrupt("traffic", "short key"))?,
            );
            let mut b = self.batch();
            let mut pending = 0;
            for item in self
                .traffic
                .range(id_time_key(id, Instant::MIN)..id_time_key(id, minute_of(before) + 1))
            {
                let (k, v) = item.into_inner().map_err(backend)?;
                let minute = decode_time(&k[8..])?;
                let mut m = keys::decode_minute(&v)?;
                let mut left = 0;
                for (o, slot) in m.iter_mut().enumerate() {
                    if slot.is_some() {
                        if minute + (o as Instant) < before {
                            *slot = None;
                            removed += 1;
                        } else {
                            left += 1;
                        }
                    }
                }
                if left == 0 {
                    b.remove(&self.traffic, k);
                } else {
                    b.insert(&self.traffic, k, keys::minute_value(&m));
                }
                pending += 1;
                if pending == DELETE_BATCH {
                    std::mem::replace(&mut b, self.batch())
                        .commit()
                        .map_err(backend)?;
                    pending = 0;
                }
            }
            b.commit().map_err(backend)?;
            match id.checked_add(1) {
                Some(n) => id = n,
                None => break,
            }
        }
        Ok(removed)
    }

    /// The stored position of an ingest source.
    fn position(&self, source: &str) -> Result<Option<u64>> {
        self.ingest
            .get(source)
            .map_err(backend)?
            .map(|v| {
                v.as_ref()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| corrupt("ingest", "position is not 8 bytes"))
            })
            .transpose()
    }
}

#[async_trait]
impl crate::TrafficStore for EmbeddedStore {
    async fn add_buckets(&self, batch: Vec<FlowBuckets>, mark: Option<IngestMark>) -> Result<bool> {
        self.blocking(move |i| {
            let ids = i.ids_creating(batch.iter().map(|fb| &fb.flow))?;
            // Every bucket as (row key as an integer, second in its minute), sorted: a row's
            // buckets are then adjacent. Sparse on purpose: a history import has one record a
            // flow-minute, and a dense 60-slot minute per record cost 1.4 KB each.
            let mut buckets: Vec<(u128, u8, u64, u64)> =
                Vec::with_capacity(batch.iter().map(|fb| fb.buckets.len()).sum());
            // Flows in id order, each flow's buckets in the order given: nearly always in time
            // order already, so the whole list is sorted without sorting it.
            let mut flows: Vec<(u64, &FlowBuckets)> = ids.into_iter().zip(&batch).collect();
            flows.sort_by_key(|f| f.0);
            for (id, fb) in flows {
                for b in &fb.buckets {
                    let minute = minute_of(b.second);
                    let key = u128::from_be_bytes(id_time_key(id, minute));
                    buckets.push((key, (b.second - minute) as u8, b.bytes, b.records));
                }
            }
            drop(batch);
            if !buckets.is_sorted_by_key(|&(key, offset, ..)| (key, offset)) {
                buckets.sort_unstable_by_key(|&(key, offset, ..)| (key, offset));
            }
            // Read-add-write: serialised, so two writers of one minute cannot lose a record.
            let mut newest = i.lock();
            let mut b = i.batch();
            if let Some(mark) = &mark {
                if i.position(&mark.source)?
                    .is_some_and(|p| p >= mark.position)
                {
                    return Ok(false);
                }
                b.insert(
                    &i.ingest,
                    mark.source.as_bytes().to_vec(),
                    mark.position.to_be_bytes().to_vec(),
                );
            }
            for row in buckets.chunk_by(|x, y| x.0 == y.0) {
                let key = row[0].0.to_be_bytes();
                let mut merged = match Newest::is_new(&mut newest.traffic, &i.traffic, row[0].0)? {
                    true => [None; 60],
                    false => match i.traffic.get(key).map_err(backend)? {
                        Some(old) => keys::decode_minute(&old)?,
                        None => [None; 60],
                    },
                };
                for &(_, offset, bytes, records) in row {
                    let (b0, r0) = merged[offset as usize].unwrap_or((0, 0));
                    merged[offset as usize] = Some((b0 + bytes, r0 + records));
                }
                b.insert(&i.traffic, &key[..], keys::minute_value(&merged));
            }
            b.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn ingest_position(&self, source: &str) -> Result<Option<u64>> {
        let source = source.to_owned();
        self.blocking(move |i| i.position(&source)).await
    }

    async fn read_buckets(&self, flow: &FlowId, from: Instant, to: Instant) -> Result<Vec<Bucket>> {
        let flow = flow.clone();
        self.blocking(move |i| {
            let mut out = Vec::new();
            let Some(id) = i.id(&flow)? else {
                return Ok(out);
            };
            if from >= to {
                return Ok(out);
            }
            Inner::scan_flow_range(
                &i.traffic,
                id,
                minute_of(from),
                minute_of(to - 1) + 1,
                |minute, v| {
                    let m = keys::decode_minute(v)?;
                    out.extend(
                        keys::minute_buckets(minute, &m)
                            .filter(|b| b.second >= from && b.second < to),
                    );
                    Ok(())
                },
            )?;
            Ok(out)
        })
        .await
    }

    async fn expire(&self, series: Series, before: Instant) -> Result<u64> {
        self.blocking(move |i| {
            let _w = i.lock();
            match series {
                Series::Traffic => i.expire_traffic(before),
                Series::Ticks => i.expire_flow_series(&i.ticks, before),
                Series::Events => {
                    let old: Vec<_> = i
                        .events
                        .range(..time(before).to_vec())
                        .map(|g| g.key().map_err(backend))
                        .collect::<Result<_>>()?;
                    for chunk in old.chunks(DELETE_BATCH) {
                        let mut b = i.batch();
                        for k in chunk {
                            b.remove(&i.events, k.clone());
                            b.remove(&i.outbox, k.clone());
                            b.remove(&i.event_ids, k[8..].to_vec());
                        }
                        b.commit().map_err(backend)?;
                        if let Some(outbox) = &mut i.views().outbox {
                            for k in chunk {
                                outbox.remove(k.as_ref());
                            }
                        }
                    }
                    Ok(old.len() as u64)
                }
            }
        })
        .await
    }
}
