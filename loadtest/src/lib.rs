//! `flowwatch-loadtest`: flowwatch under load, and how well it detects: the load drivers, the
//! benchmarks and the detection scorer, on the data of `flowwatch-generator` (the
//! deterministic traffic with labelled outages, which `flowwatch-loadtest generate` writes).
//!
//! Layout:
//! - [`drive`]: the load drivers (HTTP ingest, JetStream ingest, steady live load, alarm
//!   latency), each returning its figures as JSON, over the gateway's own HTTP client
//!   (`flowwatch_gateway::client`).
//! - [`kafka`]: Kafka ingest: seed messages or CSV lines produced to a topic, then read and
//!   stored by flowwatch's Kafka reader.
//! - [`cluster`]: the cluster benchmark: a coordinator and worker processes, a million flows
//!   registered, a worker killed, a cold start.
//! - [`api`]: the read API under load (a flow's 28 days of ticks, the dashboard, many clients).
//! - [`score`]: the detection scorer: event recall, detection delay and false alarms per
//!   flow-month of a tick CSV or a running flowwatch, against the labels of `flowwatch_generator`.
//! - [`quality`]: the detection quality report: several seeds of realistic generated data,
//!   seed vs adaptive detector, scored side by side.
//! - [`svg`]: small hand-written SVG charts (bars, lines) for the reports.

pub mod api;
pub mod cluster;
pub mod drive;
pub mod incidents;
pub mod kafka;
pub mod quality;
pub mod score;
pub mod suggestions;
pub mod svg;
