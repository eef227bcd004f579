//! The error of every backend.

use std::path::PathBuf;

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `config_put` with a version that is not the newest: someone saved in between.
    #[error("configuration version conflict: expected version {expected}, the newest is {current}")]
    Conflict {
        /// The version the writer based its change on.
        expected: u64,
        /// The newest stored version.
        current: u64,
    },
    /// Another process has the embedded data directory open.
    #[error("data directory {} is locked by another flowwatch process", path.display())]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// The store was written by a newer flowwatch.
    #[error(
        "unknown schema version {found} in {place}: this flowwatch understands versions up to {supported}"
    )]
    SchemaVersion {
        /// Where.
        place: String,
        /// The stored version.
        found: u32,
        /// The newest this build knows.
        supported: u32,
    },
    /// Stored bytes that do not decode.
    #[error("corrupt data in {place}: {detail}")]
    Corrupt {
        /// Where.
        place: String,
        /// What.
        detail: String,
    },
    /// An argument the store cannot use (e.g. a malformed page cursor).
    #[error("{what}")]
    Invalid {
        /// What is wrong.
        what: String,
    },
    /// A storage URI that names no backend.
    #[error("invalid storage URI \"{uri}\": {why}")]
    InvalidUri {
        /// The URI.
        uri: String,
        /// Why.
        why: String,
    },
    /// The backend failed (I/O, connection, server error).
    #[error("{backend}: {detail}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// What it said.
        detail: String,
    },
}

/// A storage result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
