//! The embedded backend: a `fjall` LSM tree in a data directory (ADR 0003).
//!
//! One keyspace per kind of data; keys are order-preserving (`keys.rs`). Flows get a numeric id
//! on first write, so a bucket or tick key is `id ‖ time` (16 bytes) and a flow's range is one
//! range scan. Traffic is kept per flow and minute: one entry holds that minute's occupied
//! seconds (ADR 0003), so a batch of 1 000 buckets touches a few dozen entries. Every write is one atomic batch, fsynced before it returns, so a
//! write that returned survives `kill -9` and none is half-visible. fjall locks the directory:
//! a second process gets [`Error::Locked`]. Writes that must read first (tick epochs, config
//! versions, the registry) are serialised by one mutex; the directory lock makes it global.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use flowwatch_core::time::Instant;
use flowwatch_core::{FlowId, FlowMap};

use crate::Store;
use crate::error::{Error, Result};
use crate::keys::{self, decode_cursor, decode_flow_key, decode_time, event_key, flow_key, time};
use crate::model::*;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 1;

/// Rows deleted per batch by `expire`.
const DELETE_BATCH: usize = 10_000;

/// The embedded store.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    db: Database,
    meta: Keyspace,
    traffic: Keyspace,
    ticks: Keyspace,
    status: Keyspace,
    events: Keyspace,
    event_ids: Keyspace,
    flows: Keyspace,
    /// Flow key → its numeric id: traffic and ticks are keyed `id ‖ time` (16 bytes).
    flow_ids: Keyspace,
    config: Keyspace,
    users: Keyspace,
    /// API key hash → the [`ApiKey`] (JSON).
    keys: Keyspace,
    /// `event_key(at in ms, id)` → the [`AuditEntry`] (JSON).
    audit: Keyspace,
    /// Alarms not yet published: `event_key(time, id)` → nothing (the event is in `events`).
    outbox: Keyspace,
    /// Ingest source → the position of the last batch applied from it.
    ingest: Keyspace,
    /// Serialises read-then-write operations, and holds what makes most of them blind.
    write: Mutex<Newest>,
    /// Ids of flows seen so far (a cache of `flow_ids`).
    ids: Mutex<FlowMap<u64>>,
    /// The latest status and the registry in memory, filled on their first full read and
    /// kept by every write after (this process is the only writer): the dashboard reads them
    /// whole, and a scan of a keyspace rewritten every tick is slow.
    views: Mutex<Views>,
}

/// The newest row key written per flow id in the `id ‖ time` keyspaces written with a
/// read-then-write (upper bounds: deletes leave them, so a row after it cannot exist): a row
/// after it is written without the read, and data arriving in time order (history imports,
/// live minutes, evaluated ticks) nearly always is.
#[derive(Default)]
struct Newest {
    traffic: std::collections::HashMap<u64, u128>,
    ticks: std::collections::HashMap<u64, u128>,
}

impl Newest {
    /// Whether `key` (`id ‖ time`) is after every row of its flow in `ks` (whose newest keys
    /// `newest` holds), counting it written from now on.
    fn is_new(
        newest: &mut std::collections::HashMap<u64, u128>,
        ks: &Keyspace,
        key: u128,
    ) -> Result<bool> {
        let id = (key >> 64) as u64;
        let last = match newest.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let last = match ks.prefix(id.to_be_bytes()).next_back() {
                    None => u128::from(id) << 64,
                    Some(item) => {
                        let k = item.key().map_err(backend)?;
                        u128::from_be_bytes(
                            k.as_ref()
                                .try_into()
                                .map_err(|_| corrupt("series", "a key is not 16 bytes"))?,
                        )
                    }
                };
                e.insert(last)
            }
        };
        let new = key > *last;
        *last = key.max(*last);
        Ok(new)
    }
}

/// In-memory copies of whole keyspaces, in flow order (`None`: not read yet).
#[derive(Default)]
struct Views {
    latest: Option<std::collections::BTreeMap<FlowId, StoredTick>>,
    flows: Option<std::collections::BTreeMap<FlowId, FlowEntry>>,
    /// The outbox's keys: the relay takes the oldest after every alarm, and a scan of the
    /// keyspace would step over every key it removed since the last flush.
    outbox: Option<std::collections::BTreeSet<Vec<u8>>>,
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend {
        backend: "embedded",
        detail: e.to_string(),
    }
}

fn corrupt(place: &str, detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        place: place.into(),
        detail: detail.to_string(),
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<EmbeddedStore> {
        let path = path.as_ref().to_owned();
        tokio::task::spawn_blocking(move || Inner::open(path))
            .await
            .map_err(backend)?
            .map(|inner| EmbeddedStore {
                inner: Arc::new(inner),
            })
    }

    /// Bytes the store uses on disk (journal included).
    pub async fn disk_space(&self) -> Result<u64> {
        self.blocking(|i| i.db.disk_space().map_err(backend)).await
    }

    /// Flushes the memtables of the time series to disk and compacts them fully (maintenance:
    /// reclaims the space of overwritten and expired rows).
    pub async fn compact(&self) -> Result<()> {
        self.blocking(|i| {
            for ks in [&i.traffic, &i.ticks, &i.status, &i.events] {
                ks.rotate_memtable_and_wait().map_err(backend)?;
                ks.major_compact().map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(backend)?
    }
}

impl Inner {
    fn open(path: PathBuf) -> Result<Inner> {
        std::fs::create_dir_all(&path).map_err(|e| {
            backend(format!(
                "cannot create data directory {}: {e}",
                path.display()
            ))
        })?;
        // One background worker: with more, fjall 3.1's worker 0 re-queues every compaction
        // message it receives and spins while another worker compacts (a core lost on a
        // 2-core machine; ADR 0003).
        let db = Database::builder(&path)
            .worker_threads(1)
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => Error::Locked { path: path.clone() },
                e => corrupt(
                    &format!("data directory {}", path.display()),
                    format!("cannot open: {e}"),
                ),
            })?;
        let ks = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(backend)
        };
        let inner = Inner {
            meta: ks("meta")?,
            // Buckets are only ever read by range: bloom filters would cost compaction time and
            // disk for no read they could speed up.
            traffic: db
                .keyspace("traffic", || {
                    KeyspaceCreateOptions::default()
                        .filter_policy(fjall::config::FilterPolicy::disabled())
                })
                .map_err(backend)?,
            ticks: ks("ticks")?,
            status: ks("status")?,
            events: ks("events")?,
            event_ids: ks("event_ids")?,
            flows: ks("flows")?,
            flow_ids: ks("flow_ids")?,
            config: ks("config")?,
            users: ks("users")?,
            keys: ks("keys")?,
            audit: ks("audit")?,
            outbox: ks("outbox")?,
            ingest: ks("ingest")?,
            write: Mutex::new(Newest::default()),
            ids: Mutex::new(FlowMap::default()),
            views: Mutex::new(Views::default()),
            db,
            path,
        };
        inner.check_schema()?;
        Ok(inner)
    }

    fn check_schema(&self) -> Result<()> {
        let place = format!("data directory {}", self.path.display());
        match self.meta.get("schema_version").map_err(backend)? {
            None => {
                let mut b = self.batch();
                b.insert(
                    &self.meta,
                    "schema_version",
                    SCHEMA_VERSION.to_be_bytes().to_vec(),
                );
                b.commit().map_err(backend)
            }
            Some(v) => {
                let v: [u8; 4] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| corrupt(&place, "schema version is not 4 bytes"))?;
                let found = u32::from_be_bytes(v);
                if found > SCHEMA_VERSION {
                    return Err(Error::SchemaVersion {
                        place,
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                Ok(())
            }
        }
    }

    /// An atomic batch, fsynced on commit.
    fn batch(&self) -> fjall::OwnedWriteBatch {
        self.db.batch().durability(Some(PersistMode::SyncAll))
    }

    fn views(&self) -> std::sync::MutexGuard<'_, Views> {
        // Updated only after a batch committed, whole entries at a time.
        self.views.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Newest> {
        // A panic while holding it cannot leave the store inconsistent: batches are atomic.
        self.write.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of `flow`, if it has one.
    fn id(&self, flow: &FlowId) -> Result<Option<u64>> {
        if let Some(&id) = self.ids.lock().unwrap_or_else(|p| p.into_inner()).get(flow) {
            return Ok(Some(id));
        }
        let mut k = Vec::new();
        flow_key(flow, &mut k);
        let Some(v) = self.flow_ids.get(&k).map_err(backend)? else {
            return Ok(None);
        };
        let id = u64::from_be_bytes(
            v.as_ref()
                .try_into()
                .map_err(|_| corrupt("flow_ids", "id is not 8 bytes"))?,
        );
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(flow.clone(), id);
        Ok(Some(id))
    }

    /// The ids of `flows`, giving new flows the next free ids (committed before they are used,
    /// so no data is ever keyed by an id that was not stored).
    fn ids_creating<'f>(&self, flows: impl IntoIterator<Item = &'f FlowId>) -> Result<Vec<u64>> {
        let flows: Vec<&FlowId> = flows.into_iter().collect();
        // Ids start at 1: 0 marks a flow not in the cache.
        let mut out: Vec<u64> = {
            let cache = self.ids.lock().unwrap_or_else(|p| p.into_inner());
            flows
                .iter()
                .map(|f| cache.get(*f).copied().unwrap_or(0))
                .collect()
        };
        let mut unknown = Vec::new();
        for (n, f) in flows.iter().enumerate() {
            if out[n] == 0 {
                match self.id(f)? {
                    Some(id) => out[n] = id,
                    None => unknown.push(n),
                }
            }
        }
        if unknown.is_empty() {
            return Ok(out);
        }
        let _w = self.lock();
        let mut next = match self.meta.get("next_flow_id").map_err(backend)? {
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| corrupt("meta", "next_flow_id is not 8 bytes"))?,
            ),
            None => 1,
        };
        let mut b = self.batch();
        let mut assigned: FlowMap<u64> = FlowMap::default();
        for n in unknown {
            let f = flows[n];
            if let Some(&id) = assigned.get(f) {
                out[n] = id;
                continue;
            }
            // Another writer may have assigned it since we looked.
            if let Some(id) = self.id(f)? {
                out[n] = id;
                continue;
            }
            let mut k = Vec::new();
            flow_key(f, &mut k);
            b.insert(&self.flow_ids, k, next.to_be_bytes().to_vec());
            assigned.insert(f.clone(), next);
            out[n] = next;
            next += 1;
        }
        b.insert(&self.meta, "next_flow_id", next.to_be_bytes().to_vec());
        b.commit().map_err(backend)?;
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(assigned);
        Ok(out)
    }

    fn scan_flow_range(
        ks: &Keyspace,
        id: u64,
        from: Instant,
        to: Instant,
        mut f: impl FnMut(Instant, &[u8]) -> Result<()>,
    ) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        for item in ks.range(id_time_key(id, from)..id_time_key(id, to)) {
            let (k, v) = item.into_inner().map_err(backend)?;
            f(decode_time(&k[8..])?, &v)?;
        }
        Ok(())
    }

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

    /// Every value of `ks`, parsed, in key order.
    fn all_json<T: serde::de::DeserializeOwned>(
        &self,
        ks: &Keyspace,
        place: &str,
    ) -> Result<Vec<T>> {
        ks.iter()
            .map(|item| {
                serde_json::from_slice(&item.value().map_err(backend)?)
                    .map_err(|e| corrupt(place, e))
            })
            .collect()
    }

    /// The API keys of `user`, oldest first (a scan: keys are few).
    fn keys_of(&self, user: &str) -> Result<Vec<ApiKey>> {
        let mut keys: Vec<ApiKey> = self.all_json(&self.keys, "keys")?;
        keys.retain(|k| k.user == user);
        keys.sort_by(|a, b| (a.created_at, &a.hash).cmp(&(b.created_at, &b.hash)));
        Ok(keys)
    }

    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        ks: &Keyspace,
        key: &[u8],
        place: &str,
    ) -> Result<Option<T>> {
        match ks.get(key).map_err(backend)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| corrupt(place, e)),
        }
    }
}

/// The start of the minute holding `t`.
fn minute_of(t: Instant) -> Instant {
    t.div_euclid(60).saturating_mul(60)
}

/// `id ‖ time`: the 16-byte key of a traffic minute or a tick.
fn id_time_key(id: u64, t: Instant) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8..].copy_from_slice(&time(t));
    k
}

fn json(v: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(v).expect("stored types serialize")
}

#[async_trait]
impl Store for EmbeddedStore {
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
                if !e.revision {
                    b.insert(&i.outbox, key.clone(), []);
                    queued.push(key.clone());
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
                if q.country.as_ref().is_some_and(|c| *c != e.flow.country)
                    || q.lob.as_ref().is_some_and(|l| *l != e.flow.lob)
                    || (!q.statuses.is_empty() && !q.statuses.contains(&e.new_status))
                {
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

    async fn register_flows(&self, flows: Vec<FlowEntry>) -> Result<()> {
        self.blocking(move |i| {
            let _w = i.lock();
            let mut merged: std::collections::BTreeMap<Vec<u8>, FlowEntry> = Default::default();
            for f in flows {
                let mut k = Vec::new();
                flow_key(&f.flow, &mut k);
                let entry = match merged.remove(&k) {
                    Some(m) => FlowEntry {
                        first_seen: m.first_seen.min(f.first_seen),
                        ..m
                    },
                    None => match i.get_json::<FlowEntry>(&i.flows, &k, "flows")? {
                        Some(old) => FlowEntry {
                            first_seen: old.first_seen.min(f.first_seen),
                            ..old
                        },
                        None => f,
                    },
                };
                merged.insert(k, entry);
            }
            let mut b = i.batch();
            for (k, f) in &merged {
                b.insert(&i.flows, k.clone(), json(f));
            }
            b.commit().map_err(backend)?;
            if let Some(flows) = &mut i.views().flows {
                for f in merged.into_values() {
                    flows.insert(f.flow.clone(), f);
                }
            }
            Ok(())
        })
        .await
    }

    async fn flows(&self) -> Result<Vec<FlowEntry>> {
        self.blocking(|i| {
            if let Some(flows) = &i.views().flows {
                return Ok(flows.values().cloned().collect());
            }
            let _w = i.lock();
            let all: Vec<FlowEntry> = i.all_json(&i.flows, "flows")?;
            let flows: std::collections::BTreeMap<FlowId, FlowEntry> =
                all.into_iter().map(|f| (f.flow.clone(), f)).collect();
            let out = flows.values().cloned().collect();
            i.views().flows = Some(flows);
            Ok(out)
        })
        .await
    }

    async fn config_latest(&self) -> Result<Option<ConfigVersion>> {
        self.blocking(|i| match i.config.last_key_value() {
            None => Ok(None),
            Some(g) => serde_json::from_slice(&g.value().map_err(backend)?)
                .map(Some)
                .map_err(|e| corrupt("config", e)),
        })
        .await
    }

    async fn config_version(&self, version: u64) -> Result<Option<ConfigVersion>> {
        self.blocking(move |i| i.get_json(&i.config, &version.to_be_bytes(), "config"))
            .await
    }

    async fn config_put(
        &self,
        expected: u64,
        document: serde_json::Value,
        author: &str,
    ) -> Result<ConfigVersion> {
        let author = author.to_owned();
        self.blocking(move |i| {
            let _w = i.lock();
            let current = match i.config.last_key_value() {
                None => 0,
                Some(g) => {
                    let k = g.key().map_err(backend)?;
                    u64::from_be_bytes(
                        k.as_ref()
                            .try_into()
                            .map_err(|_| corrupt("config", "version key is not 8 bytes"))?,
                    )
                }
            };
            let saved = ConfigVersion::successor(current, expected, document, &author)?;
            let mut b = i.batch();
            b.insert(
                &i.config,
                saved.version.to_be_bytes().to_vec(),
                json(&saved),
            );
            b.commit().map_err(backend)?;
            Ok(saved)
        })
        .await
    }

    async fn put_user(&self, user: User) -> Result<()> {
        self.blocking(move |i| {
            let mut b = i.batch();
            b.insert(&i.users, user.name.as_bytes().to_vec(), json(&user));
            b.commit().map_err(backend)
        })
        .await
    }

    async fn user(&self, name: &str) -> Result<Option<User>> {
        let name = name.to_owned();
        self.blocking(move |i| i.get_json(&i.users, name.as_bytes(), "users"))
            .await
    }

    async fn users(&self) -> Result<Vec<User>> {
        self.blocking(|i| i.all_json(&i.users, "users")).await
    }

    async fn delete_user(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.blocking(move |i| {
            let _w = i.lock();
            if i.users.get(name.as_bytes()).map_err(backend)?.is_none() {
                return Ok(false);
            }
            let mut b = i.batch();
            for key in i.keys_of(&name)? {
                b.remove(&i.keys, key.hash.into_bytes());
            }
            b.remove(&i.users, name.into_bytes());
            b.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn put_api_key(&self, key: ApiKey) -> Result<()> {
        self.blocking(move |i| {
            let _w = i.lock();
            if i.users.get(key.user.as_bytes()).map_err(backend)?.is_none() {
                return Err(Error::Invalid {
                    what: format!("API key of unknown user {:?}", key.user),
                });
            }
            let mut b = i.batch();
            b.insert(&i.keys, key.hash.as_bytes().to_vec(), json(&key));
            b.commit().map_err(backend)
        })
        .await
    }

    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let hash = hash.to_owned();
        self.blocking(move |i| i.get_json(&i.keys, hash.as_bytes(), "keys"))
            .await
    }

    async fn api_keys(&self, user: &str) -> Result<Vec<ApiKey>> {
        let user = user.to_owned();
        self.blocking(move |i| i.keys_of(&user)).await
    }

    async fn delete_api_key(&self, hash: &str) -> Result<bool> {
        let hash = hash.to_owned();
        self.blocking(move |i| {
            let _w = i.lock();
            if i.keys.get(hash.as_bytes()).map_err(backend)?.is_none() {
                return Ok(false);
            }
            let mut b = i.batch();
            b.remove(&i.keys, hash.into_bytes());
            b.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn audit_append(&self, entry: AuditEntry) -> Result<()> {
        self.blocking(move |i| {
            let mut b = i.batch();
            b.insert(&i.audit, event_key(entry.at, &entry.id), json(&entry));
            b.commit().map_err(backend)
        })
        .await
    }

    async fn audit(&self, before: Option<(i64, String)>, limit: usize) -> Result<Vec<AuditEntry>> {
        self.blocking(move |i| {
            let hi = match &before {
                Some((at, id)) => event_key(*at, id),
                None => time(Instant::MAX).to_vec(),
            };
            i.audit
                .range(..hi)
                .rev()
                .take(limit)
                .map(|item| {
                    serde_json::from_slice(&item.value().map_err(backend)?)
                        .map_err(|e| corrupt("audit", e))
                })
                .collect()
        })
        .await
    }
}
