//! The configuration in force: the newest valid stored version, published on a watch channel
//! that every part of a process reads (the gateway's parsing, the worker's supervisor), and
//! followed in the store as other processes (gateways) save new ones.

use std::sync::Arc;
use std::time::Duration;

use flowwatch_core::config::Config;
use flowwatch_storage::{ConfigVersion, Store};
use tokio::sync::watch;

/// The configuration in force and its stored version (0: none saved yet).
#[derive(Debug, Clone)]
pub struct InForce {
    /// The stored version.
    pub version: u64,
    /// The validated document.
    pub config: Arc<Config>,
}

/// Puts `in_force` in force if it is newer than the version in force; whether it was. Two
/// saves racing (or a save and [`follow`]): the newer version stays whichever comes last.
pub fn publish(config: &watch::Sender<InForce>, in_force: InForce) -> bool {
    config.send_if_modified(|current| {
        let newer = in_force.version > current.version;
        if newer {
            *current = in_force;
        }
        newer
    })
}

/// How often [`follow`] reads the newest stored version: a process takes what another one
/// (on the same store) saved within this.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// Keeps `config` on the newest stored version, whoever saved it (a gateway of a cluster):
/// every `every` it looks for a version after the one in force and puts the newest in force.
/// A stored version that does not validate is logged once and not applied (the one in force
/// stays; a later valid version is taken). Ends when `stop` completes.
pub async fn follow(
    store: Arc<dyn Store>,
    config: watch::Sender<InForce>,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refused = 0;
    let mut failing = false;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        let current = config.borrow().version;
        let latest = async {
            // Versions are numbered without gaps: while the one after those seen is missing,
            // nothing newer exists, and no document (it may be large) is read.
            match store.config_version(current.max(refused) + 1).await? {
                None => Ok(None),
                Some(_) => store.config_latest().await,
            }
        };
        let latest = match latest.await {
            Ok(latest) => {
                failing = false;
                latest
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!("cannot read the stored configuration, retrying: {e}");
                }
                continue;
            }
        };
        match newer(current, latest) {
            Some(Ok(in_force)) => {
                let version = in_force.version;
                if publish(&config, in_force) {
                    tracing::info!(version, "configuration saved elsewhere put in force");
                }
            }
            Some(Err((version, why))) if version != refused => {
                tracing::error!(
                    version,
                    "the stored configuration is invalid, not applied: {why}"
                );
                refused = version;
            }
            // Nothing newer, or the invalid version already logged.
            None | Some(Err(_)) => {}
        }
    }
}

/// What the newest stored version `latest` changes over version `current` in force: nothing
/// (not newer), a configuration to put in force, or the version and why it is invalid.
fn newer(current: u64, latest: Option<ConfigVersion>) -> Option<Result<InForce, (u64, String)>> {
    let latest = latest.filter(|v| v.version > current)?;
    Some(
        Config::from_json(&latest.document.to_string())
            .map(|config| InForce {
                version: latest.version,
                config: Arc::new(config),
            })
            .map_err(|e| (latest.version, e.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn stored(version: u64, document: Value) -> Option<ConfigVersion> {
        Some(ConfigVersion {
            version,
            document,
            saved_at: 0,
            author: "another gateway".into(),
        })
    }

    #[test]
    fn only_a_newer_valid_version_is_followed() {
        let valid = serde_json::to_value(Config::default().document()).unwrap();
        assert!(newer(3, None).is_none(), "nothing stored");
        assert!(
            newer(3, stored(3, valid.clone())).is_none(),
            "already in force"
        );
        assert!(newer(3, stored(2, valid.clone())).is_none(), "older");
        let taken = newer(3, stored(4, valid)).unwrap().unwrap();
        assert_eq!(taken.version, 4);
        let (version, why) = newer(3, stored(5, json!({"colour": 1})))
            .unwrap()
            .unwrap_err();
        assert_eq!(version, 5);
        assert!(why.contains("colour"), "{why}");
    }

    #[test]
    fn publishing_keeps_the_newest() {
        let at = |version| InForce {
            version,
            config: Arc::new(Config::default()),
        };
        let (config, _) = watch::channel(at(2));
        assert!(!publish(&config, at(1)));
        assert!(!publish(&config, at(2)));
        assert!(publish(&config, at(3)));
        assert_eq!(config.borrow().version, 3);
    }
}
