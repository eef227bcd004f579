//! The alarm sink port: where the worker's outbox relay sends status changes (NATS JetStream,
//! the log; notification channels are more sinks). A sink publishes a whole slice or fails;
//! the relay retries with backoff, so delivery is at least once and the event id dedups.

use async_trait::async_trait;
use flowwatch_core::event::Event;

use crate::BoxError;

/// Publishes alarms.
#[async_trait]
pub trait AlarmSink: Send + Sync {
    /// Gets ready to publish (e.g. makes sure a stream exists); idempotent. Called before the
    /// first publish, until it succeeds.
    async fn prepare(&self) -> Result<(), AlarmError> {
        Ok(())
    }

    /// Publishes `events`; succeeds when every one is accepted by the other side.
    async fn publish(&self, events: &[Event]) -> Result<(), AlarmError>;
}

/// Why alarms were not published.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct AlarmError {
    /// What was attempted (`publish CZ/GSM/input/A@…`).
    pub what: String,
    /// What the other side said.
    #[source]
    pub source: BoxError,
}

impl AlarmError {
    /// `what` failed because of `source`.
    pub fn new(what: impl Into<String>, source: impl Into<BoxError>) -> AlarmError {
        AlarmError {
            what: what.into(),
            source: source.into(),
        }
    }
}
