//! The worker's error: every failure keeps what it came from (a storage error stays one).

use flowwatch_ports::error::{ErrorKind, HasKind};
use flowwatch_ports::{AlarmError, BoxError, IngestError};

/// What can go wrong in a worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error("{what}: {source}")]
    Store {
        /// What was attempted (`outbox`, `read the flow registry`).
        what: &'static str,
        /// The store's error.
        #[source]
        source: flowwatch_storage::Error,
    },
    /// Alarms were not published.
    #[error(transparent)]
    Alarm(#[from] AlarmError),
    /// Records were not taken.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// Ticks were not stored (one group commit failed for every actor in it).
    #[error("ticks not stored: {0}")]
    TickWrite(#[source] std::sync::Arc<flowwatch_storage::Error>),
    /// A task of this worker is gone (it is stopping).
    #[error("{0} stopped")]
    Stopped(&'static str),
    /// The message bus failed.
    #[error("{what}: {source}")]
    Nats {
        /// What was attempted (`fetch`, `consumer flowwatch-ingest-3`).
        what: String,
        /// What the client said.
        #[source]
        source: BoxError,
    },
    /// A message on the ingest stream that flowwatch did not write (line 1 is its header).
    #[error("not an ingest message: line {line}: {source}")]
    Foreign {
        /// The line of the message.
        line: usize,
        /// What is wrong with it.
        #[source]
        source: flowwatch_core::InputError,
    },
    /// The Kafka brokers failed.
    #[error("kafka: {what}: {source}")]
    Kafka {
        /// What was attempted (`connect to host:9092`, `list the topics`).
        what: String,
        /// What the client said.
        #[source]
        source: BoxError,
    },
    /// A message on the ingest stream whose header flowwatch did not write.
    #[error("not an ingest message: header {0} is missing or malformed")]
    Header(&'static str),
    /// A message on the ingest stream that is not text.
    #[error("not an ingest message: not UTF-8: {0}")]
    NotUtf8(#[source] std::str::Utf8Error),
    /// A socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An actor of this worker did not answer or did not start.
    #[error("{what}: {source}")]
    Actor {
        /// What was asked of it.
        what: &'static str,
        /// What ractor said.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// A store failure while doing `what`.
    pub fn store(what: &'static str) -> impl FnOnce(flowwatch_storage::Error) -> Error {
        move |source| Error::Store { what, source }
    }

    /// A message bus failure while doing `what`.
    pub fn nats(what: impl Into<String>, source: impl Into<BoxError>) -> Error {
        Error::Nats {
            what: what.into(),
            source: source.into(),
        }
    }

    /// A failure of the Kafka brokers while doing `what`.
    pub fn kafka(what: impl Into<String>, source: impl Into<BoxError>) -> Error {
        Error::Kafka {
            what: what.into(),
            source: source.into(),
        }
    }

    /// An actor that failed to do `what`.
    pub fn actor(what: &'static str, source: impl Into<BoxError>) -> Error {
        Error::Actor {
            what,
            source: source.into(),
        }
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Store { source, .. } => source.kind(),
            Error::TickWrite(e) => e.kind(),
            Error::Ingest(e) => e.kind(),
            Error::Foreign { .. } | Error::NotUtf8(_) | Error::Header(_) => ErrorKind::Invalid,
            Error::Alarm(_)
            | Error::Stopped(_)
            | Error::Nats { .. }
            | Error::Kafka { .. }
            | Error::Io { .. }
            | Error::Actor { .. } => ErrorKind::Unavailable,
        }
    }
}

/// A worker result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
