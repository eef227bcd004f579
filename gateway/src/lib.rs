//! `flowwatch-gateway`: the HTTP API in front of the workers.
//!
//! Layout:
//! - [`rest`]: the route table (every route, its access, checked against `openapi.json`),
//!   health, ingest, status, time and `/metrics`.
//! - [`error`]: the JSON error every route answers with, and the one table from a kind of
//!   failure to its HTTP status and gRPC code.
//! - [`auth`]: API keys and roles on every route, login, visitor login, users, the audit log.
//! - [`config`]: the configuration document and a flow's own settings, compare-and-set; the
//!   newest stored version followed when other gateways save.
//! - [`live`]: `GET /api/v1/live`, Server-Sent Events of status changes and components; the
//!   workers' alarms from NATS as status changes.
//! - [`cluster`]: `GET /api/v1/cluster`, the leading coordinator's view of the cluster (or
//!   that there is none: one process).
//! - [`views`]: dashboard, events, the flow tree, a flow's ticks, traffic, effective config
//!   and simulation.
//! - [`channels`]: notification channels (SPEC §12): their documents, a test message, their
//!   latest deliveries (the senders run in the workers, `flowwatch_notify`).
//! - [`backtest`]: `POST /api/v1/backtest`, candidate settings at a country, LoB or flow
//!   against the configuration in force, over the stored traffic of its flows.
//! - [`grpc`]: the gRPC API for services (`flowwatch.v1.FlowWatch`: ticks, statuses, a
//!   stream of status changes, an ingest stream), served beside the HTTP routes.
//! - [`ingest`]: taking an ingest body, shared by `POST /api/v1/ingest` and the gRPC `Ingest`.
//! - [`ui`]: the built web UI (`ui/dist`) at every path the API does not take.
//! - [`client`]: a minimal keep-alive HTTP/1.1 client of this API (`flowwatch import`, the
//!   load drivers).
//! - [`status`]: the status source of a gateway in front of a cluster (alarms from NATS, the
//!   workers' health from the leading coordinator).
//! - [`Gateway`]: what the routes share.
//!
//! The gateway parses and validates; the workers (in this process, or behind JetStream) store
//! and evaluate. It sees them only through the ports of `flowwatch_ports`: [`Ingest`] for
//! records, [`StatusSource`] for status changes and their health; `cli` plugs in the adapters.

pub mod auth;
pub mod backtest;
pub mod channels;
pub mod client;
pub mod cluster;
pub mod config;
pub mod error;
pub mod grpc;
pub mod incident_relay;
pub mod incidents;
pub mod ingest;
pub mod live;
pub mod operator;
pub mod rest;
pub mod status;
pub mod suggestions;
pub mod ui;
pub mod views;

use std::sync::Arc;

use flowwatch_core::config::Config;
use flowwatch_ports::{Clock, InForce, Ingest, StatusSource};
use flowwatch_storage::Store;
use tokio::sync::watch;

/// What the routes share.
pub struct Gateway {
    /// Where ingested records go: this process's workers, or the JetStream ingest stream.
    pub ingest: Arc<dyn Ingest>,
    /// The configuration in force (countries and their zones, for parsing). A saved change is
    /// published here; whoever runs the workers listens (in `flowwatch run`, a task that
    /// reconfigures the supervisor). A gateway beside others on one store also publishes here
    /// what they save ([`flowwatch_ports::in_force::follow`]).
    pub config: watch::Sender<InForce>,
    /// The store (status reads it).
    pub store: Arc<dyn Store>,
    /// Status changes and the workers' health (live views, the status view, the gRPC watch):
    /// this process's workers in `flowwatch run`, the cluster's in `flowwatch gateway`
    /// ([`status::ClusterStatus`]).
    pub status: Arc<dyn StatusSource>,
    /// The NATS connection, if configured.
    pub nats: Option<async_nats::Client>,
    /// How far this process's Kafka readers are behind their partitions (empty without
    /// `--kafka-brokers`).
    pub kafka: Arc<flowwatch_ports::ingest::SourceLag>,
    /// The cluster's coordinators (`--coordinator`), if configured: `GET /api/v1/cluster`
    /// asks the leader among them.
    pub coordinators: Option<flowwatch_proto::cluster::Coordinators>,
    /// The clock (shifted by `--start-time`).
    pub clock: Clock,
    /// The largest request body taken, in bytes.
    pub max_body: usize,
    /// Authentication settings and login limits.
    pub auth: auth::Auth,
    /// The web UI served at every path the API does not take.
    pub ui: ui::WebUi,
    /// Turns true when the server shuts down: endless responses (live streams) end then.
    pub stopping: watch::Sender<bool>,
}

impl Gateway {
    /// Tells endless responses to end: the server is shutting down.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once the server is shutting down.
    pub async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        let _ = stopping.wait_for(|s| *s).await;
    }

    /// The configuration in force now.
    pub fn in_force(&self) -> Arc<Config> {
        self.config.borrow().config.clone()
    }
}

/// The HTTP API ([`rest::router`]) and the gRPC API ([`grpc::router`]) on one router, for one
/// address: gRPC calls are HTTP/2 requests to `/flowwatch.v1.FlowWatch/…`; every other path is
/// the HTTP API's (its JSON 404 included).
pub fn router(gateway: Arc<Gateway>) -> axum::Router {
    rest::router(gateway.clone()).merge(grpc::router(gateway))
}
