//! Connections to the cluster's servers: one channel per address, connected when first used
//! (and again after a failure, by tonic), shared by every call to that address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// The channels to one kind of server (`what` names it in errors), each call bounded by
/// `timeout` (connecting included).
pub struct Channels {
    what: &'static str,
    timeout: Duration,
    open: Mutex<HashMap<String, Channel>>,
}

/// An address no channel can be made to.
#[derive(Debug, thiserror::Error)]
#[error("invalid {what} address {address:?}: {source}")]
pub struct InvalidAddress {
    /// What it was to reach (`coordinator`, `worker`).
    pub what: &'static str,
    /// The address.
    pub address: String,
    /// Why.
    #[source]
    pub source: tonic::transport::Error,
}

impl Channels {
    /// No channel yet.
    pub fn new(what: &'static str, timeout: Duration) -> Channels {
        Channels {
            what,
            timeout,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The channel to `address` (`http://host:port`).
    pub fn get(&self, address: &str) -> Result<Channel, InvalidAddress> {
        let mut open = self.open.lock().expect("no panic holds the channels lock");
        if let Some(c) = open.get(address) {
            return Ok(c.clone());
        }
        let channel = Endpoint::from_shared(address.to_owned())
            .map_err(|source| InvalidAddress {
                what: self.what,
                address: address.to_owned(),
                source,
            })?
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .connect_lazy();
        open.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }
}
