//! `flowwatch-loadtest`: realistic mediation traffic for tests, demos and benchmarks.
//!
//! Layout:
//! - [`generator`]: a deterministic traffic generator (countries, LoBs, inputs and their
//!   forwards, diurnal and weekly shapes, holidays, lazy days, batchy and late arrivals, DST)
//!   with labelled injected outages, and the configuration document that goes with it.
//! - [`rng`]: the small seeded random number generator it uses.
//! - [`drive`]: the load drivers (HTTP ingest, JetStream ingest, steady live load, alarm
//!   latency), each returning its figures as JSON, over the gateway's own HTTP client
//!   (`flowwatch_gateway::client`).
//! - [`api`]: the read API under load (a flow's 28 days of ticks, the dashboard, many clients).

pub mod api;
pub mod drive;
pub mod generator;
pub mod rng;
