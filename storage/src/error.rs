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
    /// The backend's server could not be reached (refused, timed out, a host name that does
    /// not resolve): nothing was read or written.
    #[error("{backend}: cannot connect to {target}: {detail}")]
    Connect {
        /// Which backend.
        backend: &'static str,
        /// The `host:port` (or several, comma-separated) it tried.
        target: String,
        /// What the driver said, its causes included.
        detail: String,
        /// The driver's error.
        #[source]
        source: Source,
    },
    /// The backend failed (I/O, server error, a connection lost).
    #[error("{backend}: {detail}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// What it said, its causes included.
        detail: String,
        /// The driver's error.
        #[source]
        source: Source,
    },
}

/// The error of a driver (or of the file system), kept as the source of an [`Error`].
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Error {
    /// A failure of `backend`, its message the driver's with every cause.
    pub(crate) fn backend(backend: &'static str, source: impl Into<Source>) -> Error {
        let source = source.into();
        Error::Backend {
            backend,
            detail: with_causes(source.as_ref()),
            source,
        }
    }

    /// `backend` could not reach `target`.
    pub(crate) fn connect(
        backend: &'static str,
        target: impl Into<String>,
        source: impl Into<Source>,
    ) -> Error {
        let source = source.into();
        Error::Connect {
            backend,
            target: target.into(),
            detail: with_causes(source.as_ref()),
            source,
        }
    }
}

/// `e` and its causes on one line (`a: b: c`), a cause left out when the text so far already
/// says it (drivers often repeat their source in their own message).
pub(crate) fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

/// A storage result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A driver's error: its message, and a cause it may or may not repeat.
    #[derive(Debug)]
    struct Driver {
        message: &'static str,
        cause: std::io::Error,
    }

    impl std::fmt::Display for Driver {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.message)
        }
    }

    impl std::error::Error for Driver {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.cause)
        }
    }

    fn driver(message: &'static str) -> Driver {
        Driver {
            message,
            cause: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        }
    }

    #[test]
    fn a_backend_error_says_each_cause_once_and_keeps_the_drivers_error() {
        let e = Error::backend("postgres", driver("error connecting"));
        assert_eq!(e.to_string(), "postgres: error connecting: refused");
        let e = Error::backend("postgres", driver("error connecting: refused"));
        assert_eq!(e.to_string(), "postgres: error connecting: refused");
        let source = std::error::Error::source(&e).expect("kept");
        assert_eq!(
            source.downcast_ref::<Driver>().map(|d| d.message),
            Some("error connecting: refused")
        );
        let e = Error::connect("scylla", "a:1,b:2", driver("pool broken"));
        assert_eq!(
            e.to_string(),
            "scylla: cannot connect to a:1,b:2: pool broken: refused"
        );
        assert!(std::error::Error::source(&e).is_some_and(|s| s.is::<Driver>()));
    }
}
