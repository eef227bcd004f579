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
//! - [`cluster`]: the cluster benchmark: a coordinator and worker processes, a million flows
//!   registered, a worker killed, a cold start.
//! - [`api`]: the read API under load (a flow's 28 days of ticks, the dashboard, many clients).
//! - [`score`]: the detection scorer: event recall, detection delay and false alarms per
//!   flow-month of a tick CSV or a running flowwatch, against the generator's labels.
//! - [`svg`]: small hand-written SVG charts (bars, lines) for the reports.

pub mod api;
pub mod cluster;
pub mod drive;
pub mod generator;
pub mod rng;
pub mod score;
pub mod svg;
