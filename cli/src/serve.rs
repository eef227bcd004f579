//! What the services share: the flag groups several roles flatten ([`ApiArgs`] of `run` and
//! `gateway`, [`ClockArgs`] of every role, [`PartitionArgs`] of `gateway` and `coordinator`),
//! starting and serving a gateway, NATS, listening, signals.
//!
//! Each shared flag comes from its role's environment variable (`FLOWWATCH_RUN__HTTP`,
//! `FLOWWATCH_GATEWAY__HTTP`): a derive attribute can name only one, so [`role_env`] sets them
//! on the command before it parses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use flowwatch_core::config::Config;
use flowwatch_core::time::{Instant, parse_rfc3339, utc_string};
use flowwatch_gateway::Gateway;
use flowwatch_gateway::auth::Auth;
use flowwatch_notify::ops::OpsEmail;
use flowwatch_ports::Clock;
use flowwatch_ports::InForce;
use flowwatch_ports::Ingest;
use flowwatch_storage::Store;
use flowwatch_worker::ingest::DEFAULT_PARTITIONS;
use flowwatch_worker::kafka::{KafkaIngest, KafkaSource};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// The flag groups several roles share, and the roles that flatten each.
fn shared() -> [(clap::Command, &'static [&'static str]); 5] {
    fn flags<A: clap::Args>() -> clap::Command {
        A::augment_args(clap::Command::new("shared"))
    }
    [
        (flags::<ApiArgs>(), &["run", "gateway"]),
        // SPEC §7: every role accepts `--start-time`.
        (
            flags::<ClockArgs>(),
            &["run", "gateway", "coordinator", "worker"],
        ),
        (flags::<PartitionArgs>(), &["gateway", "coordinator"]),
        (flags::<KafkaArgs>(), &["run", "gateway", "worker"]),
        (flags::<OpsArgs>(), &["run", "worker"]),
    ]
}

/// `--start-time`: the clock every role reads.
#[derive(clap::Args, Debug, Serialize)]
pub struct ClockArgs {
    /// Start the clock at this instant (RFC 3339) and run forward in real time.
    #[arg(long, value_parser = parse_rfc3339)]
    #[serde(serialize_with = "utc_option")]
    pub start_time: Option<Instant>,
}

impl ClockArgs {
    /// The clock, started now: the system's, or reading `--start-time` now.
    pub fn start(&self) -> Clock {
        self.start_time
            .map_or_else(Clock::system, Clock::starting_at)
    }
}

/// An optional instant as RFC 3339 UTC, for `--dump-config`.
fn utc_option<S: serde::Serializer>(t: &Option<Instant>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&utc_string(*t)),
        None => s.serialize_none(),
    }
}

/// `--partitions`: how many partitions the flows hash into.
#[derive(clap::Args, Debug, Serialize)]
pub struct PartitionArgs {
    /// How many partitions flows are hashed into (one JetStream ingest subject each): the same
    /// number on every coordinator and gateway of a cluster.
    #[arg(
        long,
        default_value_t = DEFAULT_PARTITIONS,
        value_parser = clap::value_parser!(u32).range(1..=4096)
    )]
    pub partitions: u32,
}

/// `--ops-email`: the operators' mail when alarms cannot be published (SPEC §12).
#[derive(clap::Args, Debug, Serialize)]
pub struct OpsArgs {
    /// `smtp://[user:password@]host:port/ops@example.com[,…][?from=…&starttls=required]`:
    /// when alarms cannot be published on NATS for two minutes, one e-mail there says so, and
    /// one when they are published again.
    #[arg(long, value_parser = ops_email)]
    #[serde(serialize_with = "crate::gateway::redacted_option")]
    pub ops_email: Option<String>,
}

impl OpsArgs {
    /// Where the operators are mailed, if anywhere.
    pub fn parsed(&self) -> Option<OpsEmail> {
        let url = self.ops_email.as_deref()?;
        Some(OpsEmail::parse(url).expect("checked by clap"))
    }
}

fn ops_email(url: &str) -> Result<String, String> {
    OpsEmail::parse(url).map(|_| url.to_owned())
}

/// `--kafka-brokers`, `--kafka-topic`, `--kafka-group`: traffic read from Kafka (SPEC §12).
#[derive(clap::Args, Debug, Serialize)]
pub struct KafkaArgs {
    /// Kafka brokers to read traffic from, `host:port`, comma-separated: seed messages or
    /// traffic CSV lines on `--kafka-topic`, each counted once (positions are kept in the store).
    #[arg(long, value_delimiter = ',', requires = "kafka_topic")]
    pub kafka_brokers: Vec<String>,
    /// The topic read (every partition).
    #[arg(long, requires = "kafka_brokers")]
    pub kafka_topic: Option<String>,
    /// The name of this reader's positions in the store: readers of one group share the
    /// topic's records, two groups each read all of them.
    #[arg(long, default_value = "flowwatch")]
    pub kafka_group: String,
}

impl KafkaArgs {
    /// What to read, when the flags ask for it.
    pub fn source(&self) -> Option<KafkaSource> {
        Some(KafkaSource {
            brokers: self.kafka_brokers.clone(),
            topic: self.kafka_topic.clone()?,
            group: self.kafka_group.clone(),
        })
    }

    /// Starts reading into `ingest` (its lag noted in `gateway`), when the flags ask for it.
    pub fn start(&self, gateway: &Gateway, ingest: Arc<dyn Ingest>) {
        if let Some(source) = self.source() {
            tracing::info!(
                topic = source.topic,
                group = source.group,
                "reading traffic from Kafka {}",
                source.brokers.join(",")
            );
            let reader = KafkaIngest {
                source,
                ingest,
                config: gateway.config.subscribe(),
                lag: gateway.kafka.clone(),
            };
            let stop = CancellationToken::new();
            let stopping = stop.clone();
            let mut stopped = gateway.stopping.subscribe();
            tokio::spawn(async move {
                let _ = stopped.wait_for(|s| *s).await;
                stopping.cancel();
            });
            tokio::spawn(reader.run(stop));
        }
    }
}

/// The flags of the HTTP and gRPC APIs, authentication and the clock.
#[derive(clap::Args, Debug, Serialize)]
pub struct ApiArgs {
    /// Address of the HTTP API, and of the gRPC API (HTTP/2).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// A second address serving only the gRPC API (it is always on `--http` too).
    #[arg(long)]
    pub grpc: Option<SocketAddr>,
    /// The clock.
    #[command(flatten)]
    #[serde(flatten)]
    pub clock: ClockArgs,
    /// The largest request body taken, in MiB (an ingest of 1 M records is about 50 MiB of
    /// CSV; memory while it is handled grows with it).
    #[arg(long, default_value_t = 256)]
    pub max_body: usize,
    /// The password of the `root` user created on first start (without it, a random one is
    /// printed once to standard error). Ignored once a root user exists.
    #[arg(long, env = "FLOWWATCH_ROOT_PASSWORD", hide_env_values = true)]
    #[serde(skip)]
    pub root_password: Option<String>,
    /// Switch off visitor login (read-only keys without credentials); visitor keys already
    /// issued stop working.
    #[arg(long)]
    pub no_visitor: bool,
    /// How long a key issued by a login lives, in hours.
    #[arg(long, default_value_t = 12)]
    pub session_hours: u32,
    /// The built web UI (`npm --prefix ui run build` writes it to `ui/dist`), served at every
    /// path the API does not take; default: the `ui/dist` of the source tree this binary was
    /// built from.
    #[arg(long, default_value = flowwatch_gateway::ui::BUILT_IN_DIR)]
    pub ui_dir: PathBuf,
}

/// `command` with every flag of the [`shared`] groups that has no environment variable of its
/// own given its role's `FLOWWATCH_<ROLE>__<FLAG>`.
pub fn role_env(mut command: clap::Command) -> clap::Command {
    for (flags, roles) in shared() {
        let ids: Vec<String> = flags
            .get_arguments()
            .filter(|a| a.get_env().is_none() && a.get_long().is_some())
            .map(|a| a.get_id().to_string())
            .collect();
        for role in roles {
            command = command.mut_subcommand(role, |mut sub| {
                for id in &ids {
                    let env = format!("FLOWWATCH_{}__{}", role.to_uppercase(), id.to_uppercase());
                    sub = sub.mut_arg(id, |a| a.env(env));
                }
                sub
            });
        }
    }
    command
}

impl ApiArgs {
    /// Authentication as the flags set it.
    pub fn auth(&self) -> Auth {
        Auth::new(!self.no_visitor, i64::from(self.session_hours) * 3600)
    }

    /// The web UI as `--ui-dir` names it; says so in the log when it is not built.
    pub fn web_ui(&self) -> flowwatch_gateway::ui::WebUi {
        let ui = flowwatch_gateway::ui::WebUi::new(&self.ui_dir);
        if !ui.is_built() {
            tracing::warn!(
                "no built web UI in {} (npm --prefix ui ci && npm --prefix ui run build): the API is served, the pages say how to build it",
                self.ui_dir.display()
            );
        }
        ui
    }

    /// The largest request body in bytes.
    pub fn max_body(&self) -> usize {
        self.max_body << 20
    }

    /// Creates the `root` user on a fresh store (with `--root-password`, else a random
    /// password printed once to standard error).
    pub async fn ensure_root(&self, store: &dyn Store) -> Result<()> {
        if let Some(password) =
            flowwatch_gateway::auth::ensure_root(store, self.root_password.clone()).await?
        {
            eprintln!(
                "flowwatch: created user \"root\" with password {password}\n\
                 flowwatch: it is shown this once: log in (POST /api/v1/login) and change it \
                 (PATCH /api/v1/users/root), or set FLOWWATCH_ROOT_PASSWORD on a fresh store"
            );
        }
        Ok(())
    }

    /// Serves `gateway` on `--http` (HTTP and gRPC) and `--grpc` (gRPC only) until SIGINT or
    /// SIGTERM, then lets the requests in flight finish. Prints `listening on http://ADDR` as
    /// the first line of standard output once the address is bound (tests and scripts read
    /// the address from it, with `--http 127.0.0.1:0`); nothing else goes to standard output.
    pub async fn serve(&self, gateway: Arc<Gateway>) -> Result<()> {
        let (listener, addr) = listen(self.http, "--http").await?;
        tracing::info!(clock = %utc_string(gateway.clock.now()), "flowwatch serving on http://{addr}");
        let grpc = match self.grpc {
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
                Some(tokio::spawn(flowwatch_proto::server::serve(
                    listener, router, stopped,
                )))
            }
            None => None,
        };
        // Incident messages on NATS, when there is NATS.
        tokio::spawn(flowwatch_gateway::incident_relay::run(gateway.clone()));
        // The HTTP API, and the gRPC API on the same address (HTTP/2).
        let router = flowwatch_gateway::router(gateway.clone());
        let shutdown = async move {
            shutdown_signal().await;
            gateway.stop();
        };
        flowwatch_proto::server::serve(listener, router, shutdown).await?;
        if let Some(grpc) = grpc {
            grpc.await??;
        }
        Ok(())
    }
}

/// A connection to the NATS server at `url` (`--nats-url`). A server away at start is waited
/// for (and later outages reconnected) by async-nats; only an unusable URL fails here.
pub async fn nats(url: &str) -> Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(url)
        .await
        .with_context(|| format!("invalid --nats-url {url}"))
}

/// Binds `at` (given by `flag`) and prints `listening on http://ADDR` as the first line of
/// standard output (tests and scripts read the address from it when the port is 0).
pub async fn listen(at: SocketAddr, flag: &str) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .with_context(|| format!("cannot listen on {at} ({flag})"))?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    Ok((listener, addr))
}

/// The configuration to start with: `file` (saved as a new version when it differs from the
/// stored one), else the stored one, else the built-in defaults.
pub async fn configuration(store: &dyn Store, file: Option<&PathBuf>) -> Result<InForce> {
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

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn shared_flags_take_their_roles_environment() {
        let command = role_env(crate::Cli::command());
        let env = |role: &str, flag: &str| {
            let sub = command.find_subcommand(role).unwrap();
            let arg = sub
                .get_arguments()
                .find(|a| a.get_long() == Some(flag))
                .unwrap_or_else(|| panic!("{role} has no --{flag}"));
            arg.get_env().map(|e| e.to_string_lossy().into_owned())
        };
        let takes = |roles: &[&str], flag: &str| {
            let id = flag.replace('-', "_").to_uppercase();
            for role in roles {
                let expected = format!("FLOWWATCH_{}__{id}", role.to_uppercase());
                assert_eq!(env(role, flag), Some(expected), "{role} --{flag}");
            }
        };
        for flag in ["http", "grpc", "max-body", "no-visitor", "session-hours"] {
            takes(&["run", "gateway"], flag);
        }
        takes(&["run", "gateway", "coordinator", "worker"], "start-time");
        takes(&["gateway", "coordinator"], "partitions");
        takes(&["run", "worker"], "ops-email");
        assert_eq!(
            env("gateway", "root-password").as_deref(),
            Some("FLOWWATCH_ROOT_PASSWORD")
        );
        assert_eq!(
            env("gateway", "storage").as_deref(),
            Some("FLOWWATCH_GATEWAY__STORAGE")
        );
    }

    #[test]
    fn start_time_is_an_instant_shown_in_utc() {
        let command = role_env(crate::Cli::command());
        let start = |value: &str| {
            let matches = command.clone().try_get_matches_from([
                "flowwatch",
                "coordinator",
                "--nats-url",
                "nats://x",
                "--start-time",
                value,
            ])?;
            let (_, sub) = matches.subcommand().expect("a subcommand");
            let clock = <ClockArgs as clap::FromArgMatches>::from_arg_matches(sub)?;
            Ok::<_, clap::Error>(clock)
        };
        let clock = start("2017-02-06T11:00:00+01:00").unwrap();
        assert_eq!(clock.start_time, Some(1_486_375_200));
        assert_eq!(
            serde_json::to_value(&clock).unwrap(),
            serde_json::json!({"start_time": "2017-02-06T10:00:00Z"})
        );
        let err = start("yesterday").unwrap_err().to_string();
        assert!(
            err.contains("--start-time") && err.contains("invalid time \"yesterday\""),
            "{err}"
        );
    }
}
