//! `flowwatch-storage`: what flowwatch keeps, behind one trait, on three backends.
//!
//! [`Store`] holds traffic (per flow, sums per 1-second bucket), evaluated ticks and each flow's
//! latest status, status-change events, the flow registry, the versioned configuration document
//! and users. Every backend passes the same conformance suite ([`testsuite`]).
//!
//! Layout:
//! - [`model`]: the stored types.
//! - [`error`]: [`Error`], one for every backend.
//! - [`embedded`]: the default backend, a `fjall` LSM tree in a data directory.
//! - [`postgres`]: PostgreSQL, for mid-size operators and the cluster tests.
//! - [`scylla`]: ScyllaDB, for large clusters.
//! - [`testsuite`]: the conformance suite every backend runs (feature `testsuite`).
//! - [`open`]: a backend from a storage URI (`embedded:///path`, `postgres://…`, `scylla://…`).

pub mod embedded;
pub mod error;
mod keys;
pub mod model;
pub mod postgres;
pub mod scylla;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

use std::sync::Arc;

use async_trait::async_trait;
use flowwatch_core::FlowId;
use flowwatch_core::time::Instant;

pub use error::{Error, Result};
pub use model::*;

/// Everything the services keep. Every call is atomic: it is fully applied or not at all.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- traffic ----

    /// Adds traffic to the stored buckets (bytes and records are summed). With a `mark`, the
    /// batch is applied only if its position is past the stored position of its source, and
    /// the position moves in the same atomic write: a batch delivered again after a crash is
    /// counted once. Returns whether it was applied. Durable when it returns.
    async fn add_buckets(&self, batch: Vec<FlowBuckets>, mark: Option<IngestMark>) -> Result<bool>;

    /// The position of the last batch applied from an ingest `source`.
    async fn ingest_position(&self, source: &str) -> Result<Option<u64>>;

    /// The buckets of `flow` with `from <= second < to`, in time order.
    async fn read_buckets(&self, flow: &FlowId, from: Instant, to: Instant) -> Result<Vec<Bucket>>;

    /// Deletes the data of `series` older than `before`; returns how many rows went.
    async fn expire(&self, series: Series, before: Instant) -> Result<u64>;

    // ---- ticks ----

    /// Stores evaluated ticks (an upsert by flow and tick start) and moves each flow's latest
    /// status forward. A tick whose `epoch` is lower than the stored one is refused (a newer
    /// owner of the flow wrote it); the outcome counts both.
    async fn write_ticks(&self, ticks: Vec<StoredTick>) -> Result<WriteOutcome>;

    /// The ticks of `flow` starting in `[from, to)`, in time order.
    async fn read_ticks(
        &self,
        flow: &FlowId,
        from: Instant,
        to: Instant,
    ) -> Result<Vec<StoredTick>>;

    /// The latest tick of every flow (the dashboard), ordered by flow.
    async fn latest_statuses(&self) -> Result<Vec<StoredTick>>;

    // ---- events ----

    /// Appends status changes (an event with an id already stored is left as it is) and
    /// queues the new ones that are not revisions in the alarm outbox, in the same write.
    async fn append_events(&self, events: Vec<Event>) -> Result<()>;

    /// Events matching `query`, newest first, one page at a time.
    async fn query_events(&self, query: EventQuery) -> Result<EventPage>;

    // ---- alarm outbox ----
    // `append_events` queues every new event that is not a revision; a relay publishes them
    // and marks them done, so an alarm is never lost while the message bus is away.

    /// Up to `limit` queued alarms, oldest first (by event time, then id).
    async fn outbox_pending(&self, limit: usize) -> Result<Vec<Event>>;

    /// Removes published alarms from the outbox (ids not queued are ignored).
    async fn outbox_done(&self, ids: Vec<String>) -> Result<()>;

    /// How many alarms are queued.
    async fn outbox_len(&self) -> Result<u64>;

    // ---- flow registry ----

    /// Registers flows; a flow already known keeps the earlier first-seen time.
    async fn register_flows(&self, flows: Vec<FlowEntry>) -> Result<()>;

    /// Every known flow, ordered by flow.
    async fn flows(&self) -> Result<Vec<FlowEntry>>;

    /// How many flows are known (what the coordinator watches; backends that can count
    /// without reading every entry do).
    async fn flow_count(&self) -> Result<u64> {
        Ok(self.flows().await?.len() as u64)
    }

    // ---- configuration ----

    /// The newest version of the configuration document, if any was saved.
    async fn config_latest(&self) -> Result<Option<ConfigVersion>>;

    /// A given version of the configuration document.
    async fn config_version(&self, version: u64) -> Result<Option<ConfigVersion>>;

    /// Saves a new version if the newest is `expected` (0: none saved yet); otherwise
    /// [`Error::Conflict`] and nothing is written.
    async fn config_put(
        &self,
        expected: u64,
        document: serde_json::Value,
        author: &str,
    ) -> Result<ConfigVersion>;

    // ---- users ----

    /// Creates or replaces a user.
    async fn put_user(&self, user: User) -> Result<()>;

    /// A user by name.
    async fn user(&self, name: &str) -> Result<Option<User>>;

    /// Every user, ordered by name.
    async fn users(&self) -> Result<Vec<User>>;

    /// Deletes a user and its API keys; whether it existed.
    async fn delete_user(&self, name: &str) -> Result<bool>;

    /// Stores an API key of an existing user ([`Error::Invalid`] if the user is unknown).
    async fn put_api_key(&self, key: ApiKey) -> Result<()>;

    /// The API key whose hash is `hash`.
    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>>;

    /// A user's API keys, oldest first.
    async fn api_keys(&self, user: &str) -> Result<Vec<ApiKey>>;

    /// Deletes an API key; whether it existed.
    async fn delete_api_key(&self, hash: &str) -> Result<bool>;

    // ---- audit ----

    /// Appends to the audit log.
    async fn audit_append(&self, entry: AuditEntry) -> Result<()>;

    /// Up to `limit` entries, newest first, older than `before` (`(at, id)`) if given.
    async fn audit(&self, before: Option<(i64, String)>, limit: usize) -> Result<Vec<AuditEntry>>;
}

/// A storage URI without the password it may hold (`postgres://user:secret@host/db` →
/// `postgres://user:***@host/db`), to show in messages and settings dumps.
pub fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => uri.to_owned(),
    }
}

/// Opens the backend a storage URI names: `embedded:///var/lib/flowwatch` (or a bare path),
/// `postgres://user@host:5432/db`, `scylla://host:9042/keyspace`.
pub async fn open(uri: &str) -> Result<Arc<dyn Store>> {
    let invalid = |why: &str| Error::InvalidUri {
        uri: redact_uri(uri),
        why: why.to_owned(),
    };
    if let Some(path) = uri.strip_prefix("embedded://") {
        if path.is_empty() {
            return Err(invalid("expected embedded:///path/to/data-dir"));
        }
        return Ok(Arc::new(embedded::EmbeddedStore::open(path).await?));
    }
    if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PostgresStore::connect(uri).await?));
    }
    if uri.contains("://") {
        return Err(invalid(
            "unknown scheme: expected embedded:///path or postgres://…",
        ));
    }
    Ok(Arc::new(embedded::EmbeddedStore::open(uri).await?))
}

/// The wall clock in Unix seconds (when a configuration version is saved).
pub(crate) fn now() -> Instant {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as Instant)
}

/// A count or size as the signed 64-bit integer SQL and CQL columns hold.
pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Invalid {
        what: format!("{what} {v} does not fit a signed 64-bit column"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_left_out_of_storage_uris() {
        assert_eq!(
            redact_uri("postgres://fw:s3cr:et@db:5432/flowwatch"),
            "postgres://fw:***@db:5432/flowwatch"
        );
        for kept in [
            "postgres://root@127.0.0.1:5432/test",
            "scylla://a:9042,b:9042/ks?rf=3",
            "embedded:///var/lib/flowwatch",
            "./data",
        ] {
            assert_eq!(redact_uri(kept), kept);
        }
    }

    #[tokio::test]
    async fn an_unknown_scheme_is_refused_without_the_password() {
        let e = open("mysql://fw:secret@db/flowwatch").await.err().unwrap();
        let text = e.to_string();
        assert!(text.contains("mysql://fw:***@db/flowwatch"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
