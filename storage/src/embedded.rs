//! The embedded backend: a `fjall` LSM tree in a data directory (ADR 0003).
//!
//! One keyspace per kind of data; keys are order-preserving (`keys.rs`). Flows get a numeric id
//! on first write, so a bucket or tick key is `id ‖ time` (16 bytes) and a flow's range is one
//! range scan. Entries kept per flow (the registry, the latest status) are keyed by the flow
//! key, which starts with the country and then the LoB: a country's or a LoB's flows are one
//! prefix scan. Traffic is kept per flow and minute: one entry holds that minute's occupied
//! seconds (ADR 0003), so a batch of 1 000 buckets touches a few dozen entries. Every write is
//! one atomic batch, fsynced before it returns, so a write that returned survives `kill -9`
//! and none is half-visible. fjall locks the directory: a second process gets
//! [`Error::Locked`]. Writes that must read first (tick epochs, config versions, the registry)
//! are serialised by one mutex; the directory lock makes it global.
//!
//! Layout: this file opens the store and holds what the concerns share; each concern's trait
//! is implemented in its own file: [`traffic`] (and retention), [`ticks`] (statuses, events,
//! outbox), [`registry`], [`config`], [`access`] (users, keys, audit), [`operator`] (silences,
//! acknowledgements), [`channels`] (notification channels, their delivery queue).

mod access;
mod channels;
mod config;
mod operator;
mod registry;
mod ticks;
mod traffic;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use flowwatch_core::time::Instant;
use flowwatch_core::{FlowId, FlowKind, FlowMap};

use crate::error::{Error, Result};
use crate::keys::{self, decode_cursor, decode_flow_key, decode_time, event_key, flow_key, time};
use crate::model::*;

/// The schema version this build writes and understands: 2 adds the adaptive detector's band
/// after a tick's value (version 1 values read as they are).
pub const SCHEMA_VERSION: u32 = 2;

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
    /// Silence id → the [`Silence`] (JSON).
    silences: Keyspace,
    /// Flow key → its [`FlowAcknowledgement`] (JSON), while it lasts.
    flow_acks: Keyspace,
    /// Incident message id → when it was published.
    published: Keyspace,
    /// Channel name → the [`StoredChannel`] (JSON).
    channels: Keyspace,
    /// `channel ‖ event id` → the queued [`Delivery`] (JSON).
    deliveries: Keyspace,
    /// `channel ‖ event id` → when it was settled (delivered or given up).
    delivered: Keyspace,
    /// `channel ‖ at ‖ event id ‖ attempt` → the [`DeliveryAttempt`] (JSON).
    attempts: Keyspace,
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

fn backend(e: impl Into<crate::error::Source>) -> Error {
    Error::backend("embedded", e)
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
        std::fs::create_dir_all(&path).map_err(|e| Error::Backend {
            backend: "embedded",
            detail: format!("cannot create data directory {}: {e}", path.display()),
            source: Box::new(e),
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
            silences: ks("silences")?,
            flow_acks: ks("flow_acks")?,
            published: ks("published")?,
            channels: ks("channels")?,
            deliveries: ks("deliveries")?,
            delivered: ks("delivered")?,
            attempts: ks("attempts")?,
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
                if found < SCHEMA_VERSION {
                    // Older values read as they are: only the version moves on, so an older
                    // flowwatch refuses the store instead of misreading newer values.
                    let mut b = self.batch();
                    b.insert(
                        &self.meta,
                        "schema_version",
                        SCHEMA_VERSION.to_be_bytes().to_vec(),
                    );
                    b.commit().map_err(backend)?;
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

impl Inner {
    /// The values of `ks` (keyed by flow key) of the flows in `scope`, in flow order: a range
    /// of the in-memory copy `view` picks when there is one, else one prefix scan.
    fn scoped<T: Clone>(
        &self,
        scope: Scope<'_>,
        view: impl FnOnce(&Views) -> Option<&BTreeMap<FlowId, T>>,
        ks: &Keyspace,
        decode: impl Fn(FlowId, &[u8]) -> Result<T>,
    ) -> Result<Vec<T>> {
        if let Some(copy) = view(&self.views()) {
            let first = FlowId {
                country: scope.country.to_owned(),
                lob: scope.lob.unwrap_or_default().to_owned(),
                kind: FlowKind::Forward,
                name: String::new(),
            };
            return Ok(copy
                .range(first..)
                .take_while(|(f, _)| scope.contains(f))
                .map(|(_, v)| v.clone())
                .collect());
        }
        let mut prefix = Vec::new();
        keys::scope_key(scope, &mut prefix);
        let mut out = Vec::new();
        for item in ks.prefix(prefix) {
            let (k, v) = item.into_inner().map_err(backend)?;
            let (flow, _) = decode_flow_key(&k)?;
            out.push((flow.clone(), decode(flow, &v)?));
        }
        // Keys are length-prefixed: their order is not the flows'.
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out.into_iter().map(|(_, v)| v).collect())
    }
}

/// A [`Scope`] the blocking pool can take.
struct OwnedScope {
    country: String,
    lob: Option<String>,
}

impl OwnedScope {
    fn of(scope: Scope<'_>) -> OwnedScope {
        OwnedScope {
            country: scope.country.to_owned(),
            lob: scope.lob.map(str::to_owned),
        }
    }

    fn get(&self) -> Scope<'_> {
        Scope {
            country: &self.country,
            lob: self.lob.as_deref(),
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
