//! The actors of a worker.

pub mod flow_actor;
pub mod flow_supervisor;
