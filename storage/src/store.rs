//! What the services keep, one trait per concern, and [`Store`]: all of them, the one handle
//! callers hold (`Arc<dyn Store>`). Every call is atomic: it is fully applied or not at all.
//!
//! A caller with an `Arc<dyn Store>` calls any method without importing anything; code that
//! holds a backend's own type imports the traits with `use flowwatch_storage::prelude::*`.

use async_trait::async_trait;
use flowwatch_core::FlowId;
use flowwatch_core::time::Instant;

use crate::error::Result;
use crate::model::*;

/// Traffic: per flow, sums per 1-second bucket, added exactly once per ingest position.
#[async_trait]
pub trait TrafficStore: Send + Sync + 'static {
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
}

/// Evaluated ticks and each flow's latest status; status changes (events) and the alarm outbox.
#[async_trait]
pub trait TickStore: Send + Sync + 'static {
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

    /// The latest tick of every flow in `scope` (a country or a LoB), ordered by flow: a read
    /// of those flows only, whatever the number of flows stored.
    async fn latest_statuses_in(&self, scope: Scope<'_>) -> Result<Vec<StoredTick>>;

    /// Appends status changes (an event with an id already stored is left as it is) and
    /// queues the new ones that are not revisions in the alarm outbox, in the same write.
    async fn append_events(&self, events: Vec<Event>) -> Result<()>;

    /// The event with `id`, if one is stored.
    async fn event(&self, id: &str) -> Result<Option<Event>>;

    /// Events matching `query`, newest first, one page at a time.
    async fn query_events(&self, query: EventQuery) -> Result<EventPage>;

    // The alarm outbox: `append_events` queues every new event that is not a revision; a
    // relay publishes them and marks them done, so an alarm is never lost while the message
    // bus is away.

    /// Up to `limit` queued alarms, oldest first (by event time, then id).
    async fn outbox_pending(&self, limit: usize) -> Result<Vec<Event>>;

    /// Removes published alarms from the outbox (ids not queued are ignored).
    async fn outbox_done(&self, ids: Vec<String>) -> Result<()>;

    /// How many alarms are queued.
    async fn outbox_len(&self) -> Result<u64>;
}

/// The flow registry: every flow seen, when first, and its ingest partition.
#[async_trait]
pub trait RegistryStore: Send + Sync + 'static {
    /// Registers flows; a flow already known keeps the earlier first-seen time.
    async fn register_flows(&self, flows: Vec<FlowEntry>) -> Result<()>;

    /// Every known flow, ordered by flow.
    async fn flows(&self) -> Result<Vec<FlowEntry>>;

    /// One flow's entry, if it is known.
    async fn flow(&self, flow: &FlowId) -> Result<Option<FlowEntry>>;

    /// The known flows in `scope` (a country or a LoB), ordered by flow: a read of those
    /// flows only, whatever the number of flows stored.
    async fn flows_in(&self, scope: Scope<'_>) -> Result<Vec<FlowEntry>>;

    /// How many flows are known (what the coordinator watches; backends that can count
    /// without reading every entry do).
    async fn flow_count(&self) -> Result<u64> {
        Ok(self.flows().await?.len() as u64)
    }
}

/// The versioned configuration document.
#[async_trait]
pub trait ConfigStore: Send + Sync + 'static {
    /// The newest version of the configuration document, if any was saved.
    async fn config_latest(&self) -> Result<Option<ConfigVersion>>;

    /// A given version of the configuration document.
    async fn config_version(&self, version: u64) -> Result<Option<ConfigVersion>>;

    /// Saves a new version if the newest is `expected` (0: none saved yet); otherwise
    /// [`crate::Error::Conflict`] and nothing is written.
    async fn config_put(
        &self,
        expected: u64,
        document: serde_json::Value,
        author: &str,
    ) -> Result<ConfigVersion>;
}

/// Who may do what: users, their API keys, and the audit log of changes.
#[async_trait]
pub trait AccessStore: Send + Sync + 'static {
    /// Creates or replaces a user.
    async fn put_user(&self, user: User) -> Result<()>;

    /// A user by name.
    async fn user(&self, name: &str) -> Result<Option<User>>;

    /// Every user, ordered by name.
    async fn users(&self) -> Result<Vec<User>>;

    /// Deletes a user and its API keys; whether it existed.
    async fn delete_user(&self, name: &str) -> Result<bool>;

    /// Stores an API key of an existing user ([`crate::Error::Invalid`] if the user is
    /// unknown).
    async fn put_api_key(&self, key: ApiKey) -> Result<()>;

    /// The API key whose hash is `hash`.
    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>>;

    /// A user's API keys, oldest first.
    async fn api_keys(&self, user: &str) -> Result<Vec<ApiKey>>;

    /// Deletes an API key; whether it existed.
    async fn delete_api_key(&self, hash: &str) -> Result<bool>;

    /// Appends to the audit log.
    async fn audit_append(&self, entry: AuditEntry) -> Result<()>;

    /// Up to `limit` entries, newest first, older than `before` (`(at, id)`) if given.
    async fn audit(&self, before: Option<(i64, String)>, limit: usize) -> Result<Vec<AuditEntry>>;
}

/// What operators do about alarms (SPEC §11): silences, and acknowledgements of events.
#[async_trait]
pub trait OperatorStore: Send + Sync + 'static {
    /// Creates a silence, or replaces the one with its id (ending it early).
    async fn put_silence(&self, silence: Silence) -> Result<()>;

    /// The silence with `id`, if there is one.
    async fn silence(&self, id: &str) -> Result<Option<Silence>>;

    /// Every silence, ordered by id.
    async fn silences(&self) -> Result<Vec<Silence>>;

    /// Acknowledges the event `id`: the event carries `ack` from now on, and its flow counts
    /// as acknowledged until a change as it happens leaves `WARNING`/`OUTAGE` or starts a new
    /// episode ([`Event::keeps_acknowledgement`]; `append_events` drops it in the same write).
    /// A later acknowledgement replaces an earlier one. Returns the event, `None` if no event
    /// has that id (nothing is written then).
    async fn acknowledge(&self, id: &str, ack: Acknowledgement) -> Result<Option<Event>>;

    /// The flows acknowledged now, ordered by flow.
    async fn flow_acknowledgements(&self) -> Result<Vec<FlowAcknowledgement>>;

    /// Which of the incident messages `ids` were published (marked by
    /// [`OperatorStore::mark_published`]), in no particular order.
    async fn published(&self, ids: Vec<String>) -> Result<Vec<String>>;

    /// Marks incident messages published at `at`, so a restart does not send them again.
    async fn mark_published(&self, ids: Vec<String>, at: Instant) -> Result<()>;
}

/// Notification channels (SPEC §12) and their delivery queue: each alarm a channel takes is
/// queued once per channel, claimed by a sender, and settled (delivered, retried later, given
/// up); the latest attempts are kept per channel.
#[async_trait]
pub trait ChannelStore: Send + Sync + 'static {
    /// Creates or replaces a channel; whether it is new.
    async fn put_channel(&self, channel: StoredChannel) -> Result<bool>;

    /// The channel called `name`, if there is one.
    async fn channel(&self, name: &str) -> Result<Option<StoredChannel>>;

    /// Every channel, ordered by name.
    async fn channels(&self) -> Result<Vec<StoredChannel>>;

    /// Deletes a channel with its queue and its attempts; whether it existed.
    async fn delete_channel(&self, name: &str) -> Result<bool>;

    /// Queues deliveries. One whose channel and event id are queued already, or were settled
    /// as delivered or failed, is left as it is: an alarm goes to a channel once; one of a
    /// channel not stored is dropped. Returns how many were queued.
    async fn queue_deliveries(&self, deliveries: Vec<Delivery>) -> Result<usize>;

    /// Takes up to `limit` queued deliveries of `channel` due at `now` (`next_at <= now`),
    /// oldest alarm first (by event time, then id), and holds them until `until` (their
    /// `next_at` moves there, so no other sender takes them meanwhile; one that is not settled
    /// by then is due again).
    async fn claim_deliveries(
        &self,
        channel: &str,
        now: Instant,
        until: Instant,
        limit: usize,
    ) -> Result<Vec<Delivery>>;

    /// Settles deliveries: delivered and failed ones leave the queue (and are remembered, so
    /// they are not queued again), retried ones wait for their `next_at`; the attempts are
    /// logged (the latest [`ATTEMPTS_KEPT`] per channel are kept). Settling a delivery of a
    /// channel deleted meanwhile only logs nothing.
    async fn settle_deliveries(&self, settlements: Vec<Settlement>) -> Result<()>;

    /// Logs an attempt that settles no queued delivery (a test message).
    async fn log_attempt(&self, attempt: DeliveryAttempt) -> Result<()>;

    /// The latest `limit` attempts of `channel`, newest first.
    async fn delivery_attempts(&self, channel: &str, limit: usize) -> Result<Vec<DeliveryAttempt>>;

    /// How many deliveries of `channel` are queued.
    async fn pending_deliveries(&self, channel: &str) -> Result<u64>;
}

/// Everything the services keep: every concern's trait. Each backend implements the seven;
/// this follows.
pub trait Store:
    TrafficStore + TickStore + RegistryStore + ConfigStore + AccessStore + OperatorStore + ChannelStore
{
}

impl<T> Store for T where
    T: TrafficStore
        + TickStore
        + RegistryStore
        + ConfigStore
        + AccessStore
        + OperatorStore
        + ChannelStore
        + ?Sized
{
}
