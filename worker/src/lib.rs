//! `flowwatch-worker`: one long-lived actor per flow, evaluating its ticks as traffic and time
//! arrive, and storing ticks and status changes.
//!
//! Layout:
//! - [`clock`]: the wall clock, shiftable (`--start-time`) and pausable in tests.
//! - [`actors::flow_supervisor`]: owns the flow actors of this worker, routes records to them,
//!   spawns one on a flow's first record.
//! - [`actors::flow_actor`]: one flow: stores its traffic, keeps its `LiveFlow`, evaluates
//!   due ticks on its own timer, rebuilds from storage on late data, emits events.
//! - [`settings`]: the worker's tunables.
//!
//! Every decision is made by `flowwatch_core::live`; the actors only hold state and do I/O.

pub mod actors;
pub mod clock;
pub mod settings;

pub use clock::Clock;
pub use settings::WorkerSettings;
