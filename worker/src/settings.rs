//! The worker's tunables.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono_tz::Tz;
use flowwatch_core::FlowId;
use flowwatch_core::silence::Silences;
use flowwatch_core::time::Instant;

/// Settings shared by a worker's flow actors.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// A status change of a tick older than this (seconds before now) is a revision: stored,
    /// never alarmed. Importing history must not page anyone.
    pub alarm_window: i64,
    /// The assignment epoch the worker writes ticks with: its plan's, in a cluster.
    pub epoch: Epoch,
    /// The silences in force (followed in the store by the evaluation).
    pub silences: SilenceBook,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            alarm_window: 24 * 3600,
            epoch: Epoch::new(1),
            silences: SilenceBook::default(),
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

/// The silences in force, shared by a worker's flow actors and replaced whole as the store's
/// change ([`crate::evaluation`] follows them).
#[derive(Debug, Clone, Default)]
pub struct SilenceBook(Arc<RwLock<Arc<Silences>>>);

impl SilenceBook {
    /// Whether a silence covers the tick of `flow` starting at `tick_start` (`tz`: its
    /// country's zone).
    pub fn covers(&self, flow: &FlowId, tick_start: Instant, tz: Tz) -> bool {
        self.get().covers(flow, tick_start, tz)
    }

    /// The silences now.
    pub fn get(&self) -> Arc<Silences> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `silences` in force; whether they differ from those before.
    pub fn set(&self, silences: Silences) -> bool {
        let mut current = self.0.write().unwrap_or_else(|p| p.into_inner());
        let changed = **current != silences;
        if changed {
            *current = Arc::new(silences);
        }
        changed
    }
}
