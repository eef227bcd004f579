//! The stored types.

use flowwatch_core::FlowId;
use flowwatch_core::detection::{Status, TickValues};
use flowwatch_core::time::Instant;
use serde::{Deserialize, Serialize};

pub use flowwatch_core::event::{Acknowledgement, Event};
pub use flowwatch_core::silence::{FlowScope, Silence};

/// Traffic of one flow in one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// The second (Unix seconds).
    pub second: Instant,
    /// Sum of the records' bytes.
    pub bytes: u64,
    /// Number of records.
    pub records: u64,
}

/// Buckets of one flow, to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowBuckets {
    /// The flow.
    pub flow: FlowId,
    /// Its buckets (amounts to add).
    pub buckets: Vec<Bucket>,
}

impl FlowBuckets {
    /// `records` (time, bytes) of `flow` as buckets to add, one record each.
    pub fn of_records(flow: FlowId, records: &[(Instant, u64)]) -> FlowBuckets {
        FlowBuckets {
            flow,
            buckets: records
                .iter()
                .map(|&(second, bytes)| Bucket {
                    second,
                    bytes,
                    records: 1,
                })
                .collect(),
        }
    }
}

/// Where a batch of traffic came from, for exactly-once ingest: a source (one partition of the
/// ingest stream) and the batch's position in it (its last stream sequence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestMark {
    /// The source, e.g. `flowwatch.ingest.7`.
    pub source: String,
    /// The position, increasing within the source.
    pub position: u64,
}

/// The series [`crate::Store::expire`] can trim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// Traffic buckets, by second.
    Traffic,
    /// Ticks, by tick start.
    Ticks,
    /// Events, by time.
    Events,
}

/// An evaluated tick as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTick {
    /// The flow.
    pub flow: FlowId,
    /// Real start.
    pub start: Instant,
    /// Real end.
    pub end: Instant,
    /// Bytes in the tick.
    pub actual: u64,
    /// Status.
    pub status: Status,
    /// Numbers; `None` for `N_A`.
    pub values: Option<TickValues>,
    /// When it was evaluated.
    pub evaluated_at: Instant,
    /// Assignment epoch of the worker that evaluated it.
    pub epoch: u64,
}

/// How many ticks a write stored, and how many it refused for a stale epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Stored.
    pub written: u64,
    /// Refused: a higher epoch had written the tick.
    pub stale: u64,
}

/// Which events to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Events with `time >= from`.
    pub from: Option<Instant>,
    /// Events with `time < to`.
    pub to: Option<Instant>,
    /// Only this country.
    pub country: Option<String>,
    /// Only this LoB.
    pub lob: Option<String>,
    /// Only these new statuses (empty: all).
    pub statuses: Vec<Status>,
    /// Only the changes a person acts on ([`Event::actionable`]).
    pub actionable: bool,
    /// Page size (at least 1).
    pub limit: usize,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

impl EventQuery {
    /// Whether `e` passes the filters on its content (country, LoB, statuses, actionable); the
    /// time range and the cursor are the backend's.
    pub fn admits(&self, e: &Event) -> bool {
        self.country.as_ref().is_none_or(|c| *c == e.flow.country)
            && self.lob.as_ref().is_none_or(|l| *l == e.flow.lob)
            && (self.statuses.is_empty() || self.statuses.contains(&e.new_status))
            && (!self.actionable || e.actionable())
    }
}

/// A page of events, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The events.
    pub events: Vec<Event>,
    /// Cursor of the next page, if there is more.
    pub next: Option<String>,
}

impl EventPage {
    /// A page from up to `limit + 1` matching events, newest first: the extra one only says
    /// there is more, and the cursor points after the last event kept.
    pub(crate) fn from_overfetch(mut events: Vec<Event>, limit: usize) -> EventPage {
        let next = (events.len() > limit).then(|| {
            events.truncate(limit);
            let last = events.last().expect("limit is at least 1");
            crate::keys::encode_cursor(&crate::keys::event_key(last.time, &last.id))
        });
        EventPage { events, next }
    }
}

/// A known flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowEntry {
    /// The flow.
    pub flow: FlowId,
    /// Time of its first record.
    pub first_seen: Instant,
    /// Its ingest partition.
    pub partition: u32,
}

/// A saved version of the configuration document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigVersion {
    /// 1, 2, …
    pub version: u64,
    /// The SPEC §5 document.
    pub document: serde_json::Value,
    /// When it was saved.
    pub saved_at: Instant,
    /// Who saved it.
    pub author: String,
}

impl ConfigVersion {
    /// The version after `current`, if the writer based its change on `current`
    /// (`expected`); otherwise [`crate::Error::Conflict`].
    pub(crate) fn successor(
        current: u64,
        expected: u64,
        document: serde_json::Value,
        author: &str,
    ) -> crate::Result<ConfigVersion> {
        if current != expected {
            return Err(crate::Error::Conflict { expected, current });
        }
        Ok(ConfigVersion {
            version: current + 1,
            document,
            saved_at: crate::now(),
            author: author.to_owned(),
        })
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Everything.
    Root,
    /// Read only.
    ReadOnly,
}

impl Role {
    /// The name stored in SQL and CQL columns (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::ReadOnly => "readOnly",
        }
    }

    /// The role a stored name stands for.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Root, Role::ReadOnly]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Unique name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Password hash (PHC string), if the user can log in with a password.
    pub password_hash: Option<String>,
}

/// How an API key was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyKind {
    /// By a root user, for a service or a script; lives until reset.
    Issued,
    /// By a login with a password; expires.
    Login,
    /// By a visitor login (read-only, no credentials); expires.
    Visitor,
}

impl KeyKind {
    /// The name stored in SQL and CQL columns.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Issued => "issued",
            KeyKind::Login => "login",
            KeyKind::Visitor => "visitor",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(s: &str) -> Option<KeyKind> {
        [KeyKind::Issued, KeyKind::Login, KeyKind::Visitor]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// An API key as stored: its hash (never the key), whose it is, and until when it works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// Hash of the key (the key itself is shown once and never stored).
    pub hash: String,
    /// The user it belongs to.
    pub user: String,
    /// How it was issued.
    pub kind: KeyKind,
    /// When (Unix seconds).
    pub created_at: Instant,
    /// When it stops working (Unix seconds), if ever.
    pub expires_at: Option<Instant>,
}

/// One change, in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// When (Unix milliseconds).
    pub at: i64,
    /// Unique among entries of the same millisecond.
    pub id: String,
    /// Who made it (a user name).
    pub user: String,
    /// What was done, e.g. `user.create`, `config.save`.
    pub action: String,
    /// What it was done to, e.g. a user name or a configuration version.
    pub target: String,
    /// The details (JSON).
    pub detail: serde_json::Value,
}

/// The flows of one country, or of one LoB of a country: what the point reads of the registry
/// and of the latest statuses take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// The country.
    pub country: &'a str,
    /// Only this LoB of it.
    pub lob: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// Every flow of `country`.
    pub fn country(country: &'a str) -> Scope<'a> {
        Scope { country, lob: None }
    }

    /// The flows of one LoB of `country`.
    pub fn lob(country: &'a str, lob: &'a str) -> Scope<'a> {
        Scope {
            country,
            lob: Some(lob),
        }
    }

    /// Whether `flow` is one of them.
    pub fn contains(&self, flow: &FlowId) -> bool {
        flow.country == self.country && self.lob.is_none_or(|l| l == flow.lob)
    }
}

/// A flow acknowledged now: the event acknowledged and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowAcknowledgement {
    /// The flow.
    pub flow: FlowId,
    /// The event acknowledged.
    pub event_id: String,
    /// Who, when, why.
    pub ack: Acknowledgement,
}

pub use flowwatch_core::channel::Channel;

/// A notification channel as stored (SPEC §12): its name, its document, who saved it and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredChannel {
    /// The name in `/channels/{name}`.
    pub name: String,
    /// The document.
    pub channel: Channel,
    /// When it was saved.
    pub updated_at: Instant,
    /// Who saved it.
    pub updated_by: String,
}

/// One alarm queued for one channel, until it is delivered or given up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The channel's name.
    pub channel: String,
    /// The alarm.
    pub event: Event,
    /// When it was queued.
    pub queued_at: Instant,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not tried before this time (a retry's backoff, or a sender's hold on it).
    pub next_at: Instant,
}

impl Delivery {
    /// Puts deliveries in the order they are sent: oldest alarm first (by time, then id).
    pub fn sort(deliveries: &mut [Delivery]) {
        deliveries.sort_by(|a, b| (a.event.time, &a.event.id).cmp(&(b.event.time, &b.event.id)));
    }
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The receiver took it: it leaves the queue.
    Delivered,
    /// It waits for its `next_at` to be tried again.
    Retry,
    /// Given up (refused for good, or retried too long): it leaves the queue.
    Failed,
}

impl Outcome {
    /// As the API says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "retry",
            Outcome::Failed => "failed",
        }
    }
}

/// One attempt to deliver, as `GET /channels/{name}/deliveries` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    /// The channel's name.
    pub channel: String,
    /// When it was made, in Unix milliseconds.
    pub at_ms: i64,
    /// The alarm's id (a test message's own id for a test).
    pub event_id: String,
    /// Which attempt of this alarm (1 for the first).
    pub attempt: u32,
    /// Whether it was a test message (`POST /channels/{name}/test`).
    pub test: bool,
    /// What became of it.
    pub outcome: Outcome,
    /// What the receiver answered, or why it could not be reached.
    pub response: String,
    /// How long it took.
    pub duration_ms: u64,
}

/// The state a delivery is left in after an attempt (or a release), with the attempt to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    /// The delivery as it is now (its attempts and `next_at` moved on).
    pub delivery: Delivery,
    /// Whether it stays queued.
    pub outcome: Outcome,
    /// The attempt made, if one was (a release of an untried delivery has none).
    pub attempt: Option<DeliveryAttempt>,
}

/// The attempts kept per channel: older ones are dropped as new ones come.
pub const ATTEMPTS_KEPT: usize = 100;
