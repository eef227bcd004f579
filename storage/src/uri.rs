//! Storage URIs: the one table of schemes and the backends they open ([`BACKENDS`]), behind
//! [`parse`] and [`open`].
//!
//! A URI is parsed first (a malformed one is [`Error::InvalidUri`], before anything is
//! reached) and then opened: a server that cannot be reached is [`Error::Connect`], naming
//! its `host:port`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::embedded::EmbeddedStore;
use crate::error::{Error, Result};
use crate::postgres::{PostgresStore, PostgresUri};
use crate::scylla::{ScyllaStore, ScyllaUri};
use crate::store::Store;

/// A backend as storage URIs name it.
pub struct Backend {
    /// Its name, as errors say it.
    pub name: &'static str,
    /// The schemes that name it (`postgres` for `postgres://…`).
    pub schemes: &'static [&'static str],
    /// A URI of it, as the documentation shows one.
    pub example: &'static str,
    /// Parses one of its URIs.
    parse: fn(&str) -> Result<Location>,
}

/// Every backend, by scheme. A bare path (no `scheme://`) is an embedded store's directory.
pub const BACKENDS: [Backend; 3] = [
    Backend {
        name: "embedded",
        schemes: &["embedded"],
        example: "embedded:///var/lib/flowwatch",
        parse: |uri| match uri.strip_prefix("embedded://") {
            Some("") | None => Err(Error::InvalidUri {
                uri: redact_uri(uri),
                why: "expected embedded:///path/to/data-dir".into(),
            }),
            Some(path) => Ok(Location::Embedded(path.into())),
        },
    },
    Backend {
        name: "postgres",
        schemes: &["postgres", "postgresql"],
        example: "postgres://user@host:5432/db",
        parse: |uri| PostgresUri::parse(uri).map(Location::Postgres),
    },
    Backend {
        name: "scylla",
        schemes: &["scylla"],
        example: "scylla://host:9042,host2:9042/keyspace?consistency=LOCAL_QUORUM&rf=3&ttl_days=90",
        parse: |uri| ScyllaUri::parse(uri).map(Location::Scylla),
    },
];

/// Where a storage URI points: a backend and what it needs to open the store.
#[derive(Debug, Clone)]
pub enum Location {
    /// An embedded store's data directory.
    Embedded(PathBuf),
    /// A PostgreSQL database.
    Postgres(PostgresUri),
    /// A ScyllaDB keyspace.
    Scylla(ScyllaUri),
}

impl Location {
    /// Opens the store (creating the directory, the schema or the keyspace if needed).
    pub async fn open(self) -> Result<Arc<dyn Store>> {
        Ok(match self {
            Location::Embedded(path) => Arc::new(EmbeddedStore::open(path).await?),
            Location::Postgres(uri) => Arc::new(PostgresStore::connect_to(&uri).await?),
            Location::Scylla(uri) => Arc::new(ScyllaStore::connect_to(&uri).await?),
        })
    }
}

/// Parses a storage URI: `embedded:///var/lib/flowwatch` (or a bare path),
/// `postgres://user@host:5432/db` (or `postgresql://`), `scylla://host:9042/keyspace`.
pub fn parse(uri: &str) -> Result<Location> {
    let Some((scheme, _)) = uri.split_once("://") else {
        if uri.is_empty() {
            return Err(Error::InvalidUri {
                uri: String::new(),
                why: "empty: expected a data directory or scheme://…".into(),
            });
        }
        return Ok(Location::Embedded(uri.into()));
    };
    match BACKENDS.iter().find(|b| b.schemes.contains(&scheme)) {
        Some(backend) => (backend.parse)(uri),
        None => {
            let schemes: Vec<String> = BACKENDS
                .iter()
                .flat_map(|b| b.schemes)
                .map(|s| format!("{s}://"))
                .collect();
            let examples: Vec<&str> = BACKENDS.iter().map(|b| b.example).collect();
            Err(Error::InvalidUri {
                uri: redact_uri(uri),
                why: format!(
                    "unknown scheme \"{scheme}\": expected {} or a data directory (e.g. {})",
                    schemes.join(", "),
                    examples.join(", ")
                ),
            })
        }
    }
}

/// Opens the backend a storage URI names ([`parse`], then [`Location::open`]).
pub async fn open(uri: &str) -> Result<Arc<dyn Store>> {
    parse(uri)?.open().await
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

    #[test]
    fn every_scheme_parses_its_example_to_its_backend() {
        for backend in &BACKENDS {
            for scheme in backend.schemes {
                let uri = backend.example.replacen(backend.schemes[0], scheme, 1);
                let location = parse(&uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
                let name = match location {
                    Location::Embedded(_) => "embedded",
                    Location::Postgres(_) => "postgres",
                    Location::Scylla(_) => "scylla",
                };
                assert_eq!(name, backend.name, "{uri}");
            }
        }
        assert!(matches!(parse("./data"), Ok(Location::Embedded(p)) if p.ends_with("data")));
        assert!(matches!(
            parse("embedded:///var/lib/flowwatch"),
            Ok(Location::Embedded(p)) if p == std::path::Path::new("/var/lib/flowwatch")
        ));
    }

    #[test]
    fn an_unknown_scheme_lists_the_tables_schemes_without_the_password() {
        let e = parse("mysql://fw:secret@db/flowwatch").unwrap_err();
        assert!(matches!(e, Error::InvalidUri { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains("mysql://fw:***@db/flowwatch"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        for backend in &BACKENDS {
            for scheme in backend.schemes {
                assert!(text.contains(&format!("{scheme}://")), "{text}");
            }
            assert!(text.contains(backend.example), "{text}");
        }
    }

    #[test]
    fn malformed_uris_are_invalid_before_anything_is_reached() {
        for (bad, why) in [
            ("", "empty"),
            ("embedded://", "expected embedded:///path"),
            ("postgres://root@127.0.0.1:notaport/db", "invalid"),
            ("postgres:///db", "no host"),
            ("scylla://127.0.0.1:9042", "missing /keyspace"),
        ] {
            match parse(bad) {
                Err(e @ Error::InvalidUri { .. }) => {
                    assert!(e.to_string().contains(why), "{bad}: {e}")
                }
                Err(e) => panic!("{bad}: not an invalid URI: {e}"),
                Ok(l) => panic!("{bad}: parsed as {l:?}"),
            }
        }
    }

    #[test]
    fn a_postgres_uri_names_its_servers() {
        let servers = |uri| match parse(uri) {
            Ok(Location::Postgres(p)) => p.servers(),
            other => panic!("{uri}: {other:?}"),
        };
        assert_eq!(servers("postgres://u@db:6432/x"), "db:6432");
        assert_eq!(servers("postgresql://u@db/x"), "db:5432");
        assert_eq!(servers("postgres://u@a:1,b:2/x"), "a:1,b:2");
    }
}
