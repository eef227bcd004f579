//! The worker's tunables.

/// Settings shared by a worker's flow actors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// A status change of a tick older than this (seconds before now) is a revision: stored,
    /// never alarmed. Importing history must not page anyone.
    pub alarm_window: i64,
    /// The assignment epoch the worker writes ticks with.
    pub epoch: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            alarm_window: 24 * 3600,
            epoch: 1,
        }
    }
}
