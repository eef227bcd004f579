//! What kind of failure an error is, whichever crate it comes from: the one classification the
//! gateway's table turns into an HTTP status and a gRPC code (`flowwatch_gateway::error`), so a
//! client's mistake is never answered as the server's and a storage conflict stays a conflict.

/// The kind of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is wrong (a bad field, a malformed body or query).
    Invalid,
    /// The body is in a format that is not taken.
    UnsupportedMediaType,
    /// No valid credentials.
    Unauthenticated,
    /// Valid credentials without the right to do this.
    Forbidden,
    /// What the request names does not exist.
    NotFound,
    /// The path does not take this method.
    MethodNotAllowed,
    /// The request was based on a state that changed meanwhile (compare-and-set).
    Conflict,
    /// The request is larger than the server takes.
    TooLarge,
    /// Too many requests (login attempts).
    RateLimited,
    /// A dependency (store, message bus, worker, coordinator) is away: try again.
    Unavailable,
    /// The server is wrong (corrupt data, a bug).
    Internal,
}

/// An error that knows its [`ErrorKind`].
pub trait HasKind {
    /// Its kind.
    fn kind(&self) -> ErrorKind;
}

impl HasKind for flowwatch_storage::Error {
    fn kind(&self) -> ErrorKind {
        use flowwatch_storage::Error as E;
        match self {
            E::Conflict { .. } => ErrorKind::Conflict,
            E::Invalid { .. } | E::InvalidUri { .. } => ErrorKind::Invalid,
            E::Locked { .. } | E::Backend { .. } | E::Connect { .. } => ErrorKind::Unavailable,
            E::SchemaVersion { .. } | E::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_conflict_or_bad_argument_is_the_callers_not_an_outage() {
        use flowwatch_storage::Error as E;
        let conflict = E::Conflict {
            expected: 1,
            current: 2,
        };
        assert_eq!(conflict.kind(), ErrorKind::Conflict);
        let cursor = E::Invalid {
            what: "malformed cursor".into(),
        };
        assert_eq!(cursor.kind(), ErrorKind::Invalid);
        let away = E::Backend {
            backend: "postgres",
            detail: "connection refused".into(),
            source: "connection refused".into(),
        };
        assert_eq!(away.kind(), ErrorKind::Unavailable);
    }
}
