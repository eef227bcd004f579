//! Why an input is refused: a time, a granularity, a flow id, a traffic CSV line, a seed
//! message. The message says what and where (`invalid time "2017-02-30T00:00:00Z": no such
//! date`); the ingest paths list it per line, the configuration per field path.

/// Why an input is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A time that does not parse (RFC 3339, or the seed's local `DD.MM.YYYY HH:MM:SS`).
    #[error("invalid time \"{input}\": {why}")]
    Time {
        /// The text.
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A granularity that is not a tick length.
    #[error("invalid granularity \"{input}\": {why}")]
    Granularity {
        /// The text.
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A number of seconds that does not divide one day.
    #[error("{0} s does not divide one day (86400 s)")]
    NotADivisor(u32),
    /// An empty part of a flow id (`country`, `lob`, `flow name`).
    #[error("empty {0}")]
    Empty(&'static str),
    /// A forward's name that is not `INPUT:TARGET`.
    #[error("invalid forward name \"{0}\": expected INPUT:TARGET")]
    ForwardName(String),
    /// A kind that is not `input` or `forward`.
    #[error("invalid kind \"{0}\": expected input or forward")]
    Kind(String),
    /// A seed message's type that is not `inputs` or `forwards`.
    #[error("invalid type \"{0}\": expected inputs or forwards")]
    SeedType(String),
    /// A byte count that is not one.
    #[error("invalid bytes \"{input}\": {why}")]
    Bytes {
        /// The text.
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A traffic line without six fields.
    #[error("expected 6 fields, found {0}")]
    Fields(usize),
    /// A CSV line whose quoting is broken.
    #[error("{0}")]
    Quoting(&'static str),
    /// A traffic CSV whose first line is not the header.
    #[error("invalid header \"{found}\": expected \"{expected}\"")]
    Header {
        /// The first line.
        found: String,
        /// The header.
        expected: &'static str,
    },
    /// A JSON record or seed message that does not parse.
    #[error("invalid {what}: {why}")]
    Json {
        /// `record`, `seed message`.
        what: &'static str,
        /// What the JSON parser said.
        why: String,
    },
    /// A record of a country the configuration has no time zone for.
    #[error("unknown country \"{0}\": add it to the configuration with its timezone")]
    UnknownCountry(String),
}
