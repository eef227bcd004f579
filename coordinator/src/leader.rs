//! Which coordinator leads: a lease in NATS JetStream KV.
//!
//! The bucket `flowwatch_coordinator` keeps entries for `ttl`; its key `leader` holds the
//! leader's name and gRPC address. A coordinator that finds the key absent creates it (only one
//! create can succeed) and leads; the leader rewrites it every `ttl / 4`, each time against the
//! revision it wrote last (a write against another revision fails: someone else leads). The
//! leader stops leading when it could not rewrite the key for `ttl * 3 / 4`: before the entry
//! expires and a standby can take over. A leader that stops cleanly deletes the key, so a
//! standby leads at its next look.
//!
//! The revision of the create is the leadership's *term*: JetStream sequences only grow, so
//! every leader's term is above every earlier one's (the epochs of its plans start there).

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// The bucket of the lease.
pub const BUCKET: &str = "flowwatch_coordinator";
const KEY: &str = "leader";

/// Who leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leader {
    /// Its name.
    pub name: String,
    /// Its gRPC address.
    pub address: String,
}

/// This coordinator's view of the leadership.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Leadership {
    /// This coordinator leads in this term.
    pub term: Option<u64>,
    /// The leader, when known (this coordinator or another).
    pub leader: Option<Leader>,
}

/// The lease bucket, created if needed.
pub async fn bucket(client: async_nats::Client, ttl: Duration) -> Result<kv::Store> {
    let js = jetstream::new(client);
    js.create_key_value(kv::Config {
        bucket: BUCKET.into(),
        description: "the leading flowwatch coordinator".into(),
        history: 1,
        max_age: ttl,
        ..Default::default()
    })
    .await
    .map_err(|e| Error::Nats(format!("cannot open the KV bucket {BUCKET}: {e}")))
}

/// Publishes `new` on `view` if it differs from what is there.
fn show(view: &watch::Sender<Leadership>, new: Leadership) {
    view.send_if_modified(|l| {
        let changed = *l != new;
        *l = new;
        changed
    });
}

/// Campaigns for the lease and keeps it while it can, publishing the leadership on `view`,
/// until `shutdown`; then gives the lease up if it holds it.
pub async fn campaign(
    store: kv::Store,
    me: Leader,
    ttl: Duration,
    view: watch::Sender<Leadership>,
    shutdown: CancellationToken,
) {
    let value: bytes::Bytes = serde_json::to_vec(&me)
        .expect("a name and an address serialise")
        .into();
    let every = ttl / 4;
    // (term, revision written last, when)
    let mut held: Option<(u64, u64, Instant)> = None;
    loop {
        held = match held {
            None => match store.create(KEY, value.clone()).await {
                Ok(revision) => {
                    tracing::info!(term = revision, "leading the cluster");
                    Some((revision, revision, Instant::now()))
                }
                Err(_) => {
                    // Someone leads (or NATS is away): say who, when known.
                    let leader = match store.get(KEY).await {
                        Ok(Some(v)) => serde_json::from_slice(&v).ok(),
                        _ => None,
                    };
                    show(&view, Leadership { term: None, leader });
                    None
                }
            },
            Some((term, revision, written)) => {
                match store.update(KEY, value.clone(), revision).await {
                    Ok(revision) => Some((term, revision, Instant::now())),
                    Err(e) if written.elapsed() < ttl * 3 / 4 => {
                        tracing::warn!("cannot renew the leader lease: {e}");
                        Some((term, revision, written))
                    }
                    Err(e) => {
                        tracing::warn!("leadership lost: {e}");
                        None
                    }
                }
            }
        };
        if let Some((term, ..)) = held {
            let leader = Some(me.clone());
            show(
                &view,
                Leadership {
                    term: Some(term),
                    leader,
                },
            );
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    view.send_replace(Leadership::default());
    if let Some((_, revision, _)) = held {
        // Only our own entry: another leader's would have another revision.
        if let Err(e) = store.delete_expect_revision(KEY, Some(revision)).await {
            tracing::warn!("could not give up the leader lease: {e}");
        }
    }
}
