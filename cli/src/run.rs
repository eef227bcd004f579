//! `flowwatch run`: every role in one process on the embedded store.
//!
//! The worker's supervisor (its mailbox is the ingest queue), the alarm relay (to NATS with
//! `--nats-url`, else to the log) and the gateway's HTTP and gRPC APIs (on one address). SIGINT
//! or SIGTERM stops taking requests, lets those in flight finish (each answers once its records
//! are stored), publishes what the outbox holds, and exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use flowwatch_core::config::Config;
use flowwatch_core::time::{Instant, parse_rfc3339, utc_string};
use flowwatch_gateway::auth::Auth;
use flowwatch_gateway::{Gateway, InForce};
use flowwatch_storage::Store;
use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_worker::actors::flow_supervisor::{FlowSupervisor, SupervisorArgs, SupervisorMsg};
use flowwatch_worker::alarms::{Relay, Sink};
use flowwatch_worker::ingest::IngestFront;
use flowwatch_worker::{Clock, WorkerSettings};
use ractor::Actor;
use serde::Serialize;
use tokio::sync::broadcast;

/// `flowwatch run` flags (each also `FLOWWATCH_RUN__<FLAG>`).
#[derive(clap::Args, Debug, Serialize)]
pub struct Args {
    /// Where the embedded store keeps its data.
    #[arg(
        long,
        env = "FLOWWATCH_RUN__DATA_DIR",
        default_value = "flowwatch-data"
    )]
    data_dir: PathBuf,
    /// Address of the HTTP API, and of the gRPC API (HTTP/2).
    #[arg(long, env = "FLOWWATCH_RUN__HTTP", default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// A second address serving only the gRPC API (it is always on `--http` too).
    #[arg(long, env = "FLOWWATCH_RUN__GRPC")]
    grpc: Option<SocketAddr>,
    /// NATS server for alarms (left out: alarms go to the log).
    #[arg(long, env = "FLOWWATCH_RUN__NATS_URL")]
    nats_url: Option<String>,
    /// A configuration document (JSON, SPEC §5) to apply at start (saved as a new version
    /// when it differs from the stored one).
    #[arg(long, env = "FLOWWATCH_RUN__CONFIG")]
    config: Option<PathBuf>,
    /// Start the clock at this instant (RFC 3339) and run forward in real time.
    #[arg(long, env = "FLOWWATCH_RUN__START_TIME")]
    start_time: Option<String>,
    /// A status change of a tick older than this many seconds is a revision, never alarmed.
    #[arg(long, env = "FLOWWATCH_RUN__ALARM_WINDOW", default_value_t = 86_400)]
    alarm_window: i64,
    /// The largest request body taken, in MiB (an ingest of 1 M records is about 50 MiB of
    /// CSV; memory while it is stored grows with it).
    #[arg(long, env = "FLOWWATCH_RUN__MAX_BODY", default_value_t = 256)]
    max_body: usize,
    /// The password of the `root` user created on first start (without it, a random one is
    /// printed once to standard error). Ignored once a root user exists.
    #[arg(long, env = "FLOWWATCH_ROOT_PASSWORD", hide_env_values = true)]
    #[serde(skip)]
    root_password: Option<String>,
    /// Switch off visitor login (read-only keys without credentials); visitor keys already
    /// issued stop working.
    #[arg(long, env = "FLOWWATCH_RUN__NO_VISITOR")]
    no_visitor: bool,
    /// How long a key issued by a login lives, in hours.
    #[arg(long, env = "FLOWWATCH_RUN__SESSION_HOURS", default_value_t = 12)]
    session_hours: u32,
    /// Print the effective settings as JSON and exit.
    #[arg(long)]
    #[serde(skip)]
    dump_config: bool,
}

/// The configuration to run with: `--config` (saved when new), else the stored one, else the
/// built-in defaults.
async fn configuration(store: &dyn Store, file: Option<&PathBuf>) -> Result<InForce> {
    let latest = store.config_latest().await?;
    let Some(path) = file else {
        let (version, config) = match latest {
            Some(v) => (
                v.version,
                Config::from_json(&v.document.to_string())
                    .context("the stored configuration is invalid")?,
            ),
            None => (0, Config::default()),
        };
        return Ok(InForce {
            version,
            config: Arc::new(config),
        });
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let config =
        Config::from_json(&text).with_context(|| format!("invalid config {}", path.display()))?;
    let document = serde_json::to_value(config.document())?;
    let version = match latest {
        Some(v) if v.document == document => v.version,
        latest => {
            let expected = latest.map_or(0, |v| v.version);
            let saved = store
                .config_put(expected, document, &format!("file {}", path.display()))
                .await?;
            tracing::info!(
                version = saved.version,
                "configuration saved from {}",
                path.display()
            );
            saved.version
        }
    };
    Ok(InForce {
        version,
        config: Arc::new(config),
    })
}

/// Puts every configuration the gateway saves in force in the worker (from each flow's next
/// tick). Ends when the gateway is gone.
async fn reconfigure(
    mut saved: tokio::sync::watch::Receiver<InForce>,
    supervisor: ractor::ActorRef<SupervisorMsg>,
) {
    while saved.changed().await.is_ok() {
        let config = saved.borrow_and_update().config.clone();
        if let Err(e) = supervisor
            .call(|r| SupervisorMsg::Reconfigure(config, r), None)
            .await
        {
            tracing::error!("the worker did not take the new configuration: {e}");
        }
    }
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(args: Args) -> Result<()> {
    if args.dump_config {
        println!("{}", serde_json::to_string_pretty(&args)?);
        return Ok(());
    }
    let clock = match &args.start_time {
        Some(t) => {
            Clock::starting_at(parse_rfc3339(t).map_err(|e| anyhow::anyhow!("--start-time: {e}"))?)
        }
        None => Clock::system(),
    };
    if args.alarm_window < 0 {
        bail!("--alarm-window must not be negative");
    }
    let store: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(&args.data_dir)
            .await
            .with_context(|| format!("cannot open the store in {}", args.data_dir.display()))?,
    );
    if let Some(password) =
        flowwatch_gateway::auth::ensure_root(store.as_ref(), args.root_password.clone()).await?
    {
        eprintln!(
            "flowwatch: created user \"root\" with password {password}\n\
             flowwatch: it is shown this once: log in (POST /api/v1/login) and change it \
             (PATCH /api/v1/users/root), or set FLOWWATCH_ROOT_PASSWORD on a fresh store"
        );
    }
    let in_force = configuration(store.as_ref(), args.config.as_ref()).await?;
    let (alarms, _) = broadcast::channel(4096);
    let settings = Arc::new(WorkerSettings {
        alarm_window: args.alarm_window,
        ..WorkerSettings::default()
    });
    let (supervisor, supervisor_task) = Actor::spawn(
        None,
        FlowSupervisor,
        SupervisorArgs {
            config: in_force.config.clone(),
            store: store.clone(),
            clock,
            settings,
            alarms: alarms.clone(),
        },
    )
    .await
    .context("the worker did not start")?;

    let nats = match &args.nats_url {
        Some(url) => Some(
            async_nats::ConnectOptions::new()
                .retry_on_initial_connect()
                .connect(url.as_str())
                .await
                .with_context(|| format!("invalid --nats-url {url}"))?,
        ),
        None => None,
    };
    let sink = nats.clone().map_or(Sink::Log, Sink::nats);
    let relay = Relay::new(store.clone(), sink, &alarms);
    let relay_status = relay.status();
    let relay_task = tokio::spawn(relay.run());

    let (config, saved) = tokio::sync::watch::channel(in_force);
    tokio::spawn(reconfigure(saved, supervisor.clone()));
    let gateway = Arc::new(Gateway {
        ingest: IngestFront::Local(supervisor.clone()),
        config,
        store: store.clone(),
        relay: Some(relay_status),
        nats,
        clock,
        max_body: args.max_body << 20,
        auth: Auth::new(!args.no_visitor, i64::from(args.session_hours) * 3600),
        changes: alarms.clone(),
        stopping: tokio::sync::watch::channel(false).0,
    });
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .with_context(|| format!("cannot listen on {}", args.http))?;
    let addr = listener.local_addr()?;
    let now: Instant = clock.now();
    tracing::info!(clock = %utc_string(now), "flowwatch serving on http://{addr}");
    // Tests and scripts read the bound address (with --http 127.0.0.1:0) from this line.
    println!("listening on http://{addr}");
    let grpc = match args.grpc {
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} (--grpc)"))?;
            tracing::info!("gRPC API on {}", listener.local_addr()?);
            let (router, g) = (
                flowwatch_gateway::grpc::router(gateway.clone()),
                gateway.clone(),
            );
            let stopped = async move { g.stopped().await };
            Some(tokio::spawn(flowwatch_gateway::serve(
                listener, router, stopped,
            )))
        }
        None => None,
    };
    // The HTTP API, and the gRPC API on the same address (HTTP/2).
    let router = flowwatch_gateway::router(gateway.clone());
    let shutdown = async move {
        shutdown_signal().await;
        gateway.stop();
    };
    flowwatch_gateway::serve(listener, router, shutdown).await?;
    if let Some(grpc) = grpc {
        grpc.await??;
    }

    tracing::info!("stopping: requests finished, evaluating what they brought, flushing alarms");
    // Draining (not stopping) lets the actors finish the batches already taken.
    if supervisor.drain().is_err() {
        supervisor.stop(None);
    }
    supervisor_task.await?;
    drop(alarms); // the relay publishes what is left, then stops
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), relay_task).await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
