//! The worker's tunables.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Settings shared by a worker's flow actors.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// A status change of a tick older than this (seconds before now) is a revision: stored,
    /// never alarmed. Importing history must not page anyone.
    pub alarm_window: i64,
    /// The assignment epoch the worker writes ticks with: its plan's, in a cluster.
    pub epoch: Epoch,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            alarm_window: 24 * 3600,
            epoch: Epoch::new(1),
        }
    }
}

/// The epoch of the plan a worker runs, shared by its flow actors: every tick they store
/// carries it, and storage refuses a tick from an older epoch than the one that wrote it.
#[derive(Debug, Clone, Default)]
pub struct Epoch(Arc<AtomicU64>);

impl Epoch {
    /// An epoch starting at `value`.
    pub fn new(value: u64) -> Epoch {
        Epoch(Arc::new(AtomicU64::new(value)))
    }

    /// The epoch now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Moves to a new plan's epoch.
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Release);
    }
}
