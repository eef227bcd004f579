//! `flowwatch-proto`: flowwatch's gRPC API — the protobuf definitions
//! (`proto/flowwatch/v1/flowwatch.proto`, package `flowwatch.v1`), the tonic client and server
//! generated from them, and the conversions between their messages and the domain types.
//!
//! Layout:
//! - [`pb`]: the generated messages, the client `pb::flow_watch_client::FlowWatchClient` and
//!   the server `pb::flow_watch_server::{FlowWatch, FlowWatchServer}`.
//! - [`convert`]: a message into a domain type (`TryFrom`, validating: a failure is
//!   `Status::invalid_argument` whose message starts with the field's path) and a domain type
//!   into a message (`From`).
//!
//! Protobuf types stop here and in the gateway: `flowwatch-core` never sees them.

pub mod convert;

/// The messages and the service of `flowwatch.v1`, generated at build time (`build.rs`); each
/// is documented in the `.proto` file.
pub mod pb {
    tonic::include_proto!("flowwatch.v1");
}
