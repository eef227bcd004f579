//! `flowwatch-proto`: flowwatch's gRPC APIs — the protobuf definitions (package
//! `flowwatch.v1`: `proto/flowwatch/v1/flowwatch.proto`, the gateway's API for services;
//! `cluster.proto`, the coordinator's and the worker's services inside a cluster), the tonic
//! clients and servers generated from them, the conversions between their messages and the
//! domain types, and what every server shares.
//!
//! Layout:
//! - [`pb`]: the generated messages, clients and servers: `pb::flow_watch_client::FlowWatchClient`
//!   and `pb::flow_watch_server::{FlowWatch, FlowWatchServer}`; `pb::coordinator_client`,
//!   `pb::coordinator_server`, `pb::worker_client`, `pb::worker_server`.
//! - [`convert`]: a message into a domain type (`TryFrom`, validating: a failure is
//!   `Status::invalid_argument` whose message starts with the field's path) and a domain type
//!   into a message (`From`).
//! - [`client`]: channels to the cluster's servers, one per address, reused.
//! - [`cluster`]: the leading coordinator found among those configured, and its view of the
//!   cluster as JSON (`flowwatch admin cluster --json`, the gateway's `GET /api/v1/cluster`).
//! - [`server`]: serving gRPC and HTTP routes on one address, health and reflection, the
//!   Prometheus text format.
//! - [`trace`]: trace context across processes (W3C headers in gRPC metadata, NATS and HTTP
//!   headers).
//!
//! Protobuf types stop here and in the gateway: `flowwatch-core` never sees them.

pub mod client;
pub mod cluster;
pub mod convert;
pub mod server;
pub mod trace;

/// The messages and the services of `flowwatch.v1`, generated at build time (`build.rs`); each
/// is documented in the `.proto` file.
pub mod pb {
    tonic::include_proto!("flowwatch.v1");
}
