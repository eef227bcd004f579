//! `flowwatch-storage`: what flowwatch keeps, behind one trait per concern, on three backends.
//!
//! [`Store`] is every concern's trait at once, the handle callers hold (`Arc<dyn Store>`):
//! traffic (per flow, sums per 1-second bucket; [`TrafficStore`]), evaluated ticks, each
//! flow's latest status, status-change events and the alarm outbox ([`TickStore`]), the flow
//! registry ([`RegistryStore`]), the versioned configuration document ([`ConfigStore`]), and
//! users, API keys and the audit log ([`AccessStore`]). Every backend passes the same
//! conformance suite ([`testsuite`]).
//!
//! Layout:
//! - [`store`]: the traits; [`prelude`] imports them all.
//! - [`model`]: the stored types.
//! - [`error`]: [`Error`], one for every backend.
//! - [`uri`]: storage URIs, the table of schemes and backends behind [`open`].
//! - [`embedded`]: the default backend, a `fjall` LSM tree in a data directory.
//! - [`postgres`]: PostgreSQL, for mid-size operators and the cluster tests.
//! - [`scylla`]: ScyllaDB, for large clusters.
//! - [`testsuite`]: the conformance suite every backend runs (feature `testsuite`).
//!
//! Each backend is a directory with one file per concern (`embedded/traffic.rs`, …).

pub mod embedded;
pub mod error;
mod keys;
pub mod model;
pub mod postgres;
pub mod scylla;
pub mod store;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;
pub mod uri;

pub use error::{Error, Result};
pub use model::*;
pub use store::{
    AccessStore, ChannelStore, ConfigStore, OperatorStore, RegistryStore, Store, TickStore,
    TrafficStore,
};
pub use uri::{BACKENDS, Backend, Location, open, parse, redact_uri};

use flowwatch_core::time::Instant;

/// Every storage trait, for code that calls a backend's own type (`EmbeddedStore`, …) rather
/// than an `Arc<dyn Store>`: `use flowwatch_storage::prelude::*;`.
pub mod prelude {
    pub use crate::store::{
        AccessStore, ChannelStore, ConfigStore, OperatorStore, RegistryStore, Store, TickStore,
        TrafficStore,
    };
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
