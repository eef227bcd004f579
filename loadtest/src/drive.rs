//! Load drivers: each runs one scenario against a running flowwatch (or, for JetStream, the
//! worker's own ingest path in this process) and returns its figures.
//!
//! The traffic is synthetic and simple on purpose: `flows` inputs `CZ/LOAD/input/L000000…`,
//! one record per flow and second, so a figure depends on the system, not on the data set.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant as WallInstant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use flowwatch_core::record::{Batch, CSV_HEADER, Record};
use flowwatch_core::time::{Instant, parse_rfc3339, utc_string};
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_gateway::client::{Connection, authority};
use flowwatch_proto::pb;
use flowwatch_proto::pb::flow_watch_client::FlowWatchClient;
use futures_util::StreamExt;
use serde_json::{Value, json};

/// A running flowwatch: its HTTP address and an API key (root, to ingest).
#[derive(clap::Args, Debug, Clone)]
pub struct Server {
    /// The flowwatch HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A root API key (`POST /api/v1/login` or `POST /api/v1/users` issues one).
    #[arg(long, env = "FLOWWATCH_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

/// The synthetic flows.
#[derive(Debug, Clone, Copy)]
pub struct Flows(pub usize);

impl Flows {
    /// The name of flow `i`.
    pub fn name(i: usize) -> String {
        format!("L{i:06}")
    }

    /// Flow `i`.
    pub fn id(i: usize) -> FlowId {
        FlowId::new("CZ", "LOAD", FlowKind::Input, &Flows::name(i)).expect("a valid id")
    }

    /// A CSV body: records `from..to`, record `i` being flow `i % flows` at `start + i / flows`.
    pub fn csv(&self, start: Instant, from: usize, to: usize, bytes: u64) -> Vec<u8> {
        self.csv_every(start, 1, from, to, bytes)
    }

    /// As [`Flows::csv`], each flow's records `step` seconds apart: record `i` at
    /// `start + (i / flows) · step`.
    pub fn csv_every(
        &self,
        start: Instant,
        step: Instant,
        from: usize,
        to: usize,
        bytes: u64,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity((to - from) * 48 + 40);
        out.extend_from_slice(CSV_HEADER.as_bytes());
        out.push(b'\n');
        let mut time = String::new();
        let mut time_of = usize::MAX;
        for i in from..to {
            let round = i / self.0;
            if round != time_of {
                time = utc_string(start + round as Instant * step);
                time_of = round;
            }
            out.extend_from_slice(time.as_bytes());
            out.extend_from_slice(b",CZ,LOAD,input,");
            out.extend_from_slice(Flows::name(i % self.0).as_bytes());
            out.push(b',');
            out.extend_from_slice(bytes.to_string().as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// The records `from..to` (as [`Flows::csv`]), by flow.
    pub fn records(&self, start: Instant, from: usize, to: usize, bytes: u64) -> Batch {
        (from..to)
            .map(|i| Record {
                time: start + (i / self.0) as Instant,
                flow: Flows::id(i % self.0),
                bytes,
            })
            .collect()
    }
}

/// Percentiles of durations, in milliseconds.
pub fn percentiles(mut samples: Vec<Duration>) -> Value {
    if samples.is_empty() {
        return Value::Null;
    }
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1000.0
    };
    json!({"count": samples.len(), "p50": at(0.5), "p99": at(0.99), "max": at(1.0)})
}

/// Unix seconds now, with the fraction.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// One connection that sends ingest bodies (CSV, header first) and tells how many records
/// the server took.
pub(crate) trait Sender: Send + 'static {
    /// Sends one body; the records accepted.
    fn send(&mut self, body: &[u8]) -> impl Future<Output = Result<u64>> + Send;
}

/// `POST /api/v1/ingest` over one keep-alive connection.
struct HttpSender {
    connection: Connection,
    key: String,
}

impl Sender for HttpSender {
    async fn send(&mut self, body: &[u8]) -> Result<u64> {
        let r = self
            .connection
            .request(
                "POST",
                "/api/v1/ingest",
                &[("Content-Type", "text/csv"), ("X-API-Key", &self.key)],
                body,
            )
            .await?;
        let answer: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        ensure!(r.status == 200, "ingest answered {}: {answer}", r.status);
        Ok(answer["accepted"].as_u64().unwrap_or(0))
    }
}

/// The gRPC `Ingest` call, one call a body, the body in chunks of at most 1 MiB.
struct GrpcSender {
    client: FlowWatchClient<tonic::transport::Channel>,
    key: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl Sender for GrpcSender {
    async fn send(&mut self, body: &[u8]) -> Result<u64> {
        let chunks: Vec<pb::IngestChunk> = body
            .chunks(1 << 20)
            .map(|data| pb::IngestChunk {
                format: pb::IngestFormat::Csv as i32,
                data: data.to_vec(),
            })
            .collect();
        let mut request = tonic::Request::new(futures_util::stream::iter(chunks));
        request.metadata_mut().insert("x-api-key", self.key.clone());
        let reply = self
            .client
            .ingest(request)
            .await
            .map_err(|s| anyhow::anyhow!("Ingest answered {:?}: {}", s.code(), s.message()))?
            .into_inner();
        ensure!(
            reply.refused == 0,
            "Ingest refused lines: {:?}",
            reply.errors
        );
        Ok(reply.accepted)
    }
}

/// Holds sends to a target rate: send `k` of `batch` records starts `k · batch / rate`
/// seconds after the first (no pacing without a rate).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    start: tokio::time::Instant,
    seconds_per_send: Option<f64>,
}

impl Pace {
    /// `batch` records a send at `rate` records a second, from now.
    pub(crate) fn new(rate: Option<f64>, batch: usize) -> Pace {
        Pace {
            start: tokio::time::Instant::now(),
            seconds_per_send: rate.filter(|r| *r > 0.0).map(|r| batch as f64 / r),
        }
    }

    /// Waits for send `k`'s turn.
    pub(crate) async fn wait(&self, k: usize) {
        if let Some(s) = self.seconds_per_send {
            tokio::time::sleep_until(self.start + Duration::from_secs_f64(k as f64 * s)).await;
        }
    }
}

/// What a run of sends did.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Each send's latency.
    pub latencies: Vec<Duration>,
    /// Each send's end, in seconds from the start, and the records it got accepted.
    pub done: Vec<(f64, u64)>,
}

impl Sent {
    /// Records accepted in all.
    pub(crate) fn accepted(&self) -> u64 {
        self.done.iter().map(|d| d.1).sum()
    }
}

/// Records per second in each second of a run, from `(end in seconds, records)` pairs.
pub fn timeline(done: &[(f64, u64)]) -> Value {
    let seconds = done.iter().map(|d| d.0).fold(0.0, f64::max).ceil() as usize;
    let last = seconds.max(1) - 1;
    let mut per = vec![0u64; last + 1];
    for &(at, n) in done {
        per[(at as usize).min(last)] += n;
    }
    per.iter()
        .enumerate()
        .map(|(s, n)| json!([s + 1, n]))
        .collect()
}

/// Sends `bodies` in order over the `senders` at once, each taking the next body, paced by
/// `pace`.
async fn send_all<S: Sender>(
    senders: Vec<S>,
    bodies: Arc<Vec<Vec<u8>>>,
    pace: Pace,
) -> Result<Sent> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = WallInstant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let (bodies, next) = (bodies.clone(), next.clone());
            tokio::spawn(async move {
                let mut sent = Sent::default();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(k) else { break };
                    pace.wait(k).await;
                    let t = WallInstant::now();
                    let accepted = sender.send(body).await?;
                    sent.latencies.push(t.elapsed());
                    sent.done.push((start.elapsed().as_secs_f64(), accepted));
                }
                anyhow::Ok(sent)
            })
        })
        .collect();
    let mut sent = Sent::default();
    for t in tasks {
        let other = t.await??;
        sent.latencies.extend(other.latencies);
        sent.done.extend(other.done);
    }
    Ok(sent)
}

/// POSTs CSV bodies to `/api/v1/ingest` over `connections` keep-alive connections, the
/// bodies taken in order; returns the records accepted and each request's latency.
pub(crate) async fn post_all(
    server: &Server,
    bodies: Arc<Vec<Vec<u8>>>,
    connections: usize,
) -> Result<(u64, Vec<Duration>)> {
    let sent = send_all(
        http_senders(server, connections).await?,
        bodies,
        Pace::new(None, 1),
    )
    .await?;
    Ok((sent.accepted(), sent.latencies))
}

async fn http_senders(server: &Server, connections: usize) -> Result<Vec<HttpSender>> {
    let host = authority(&server.url)?;
    let mut senders = Vec::new();
    for _ in 0..connections.max(1) {
        senders.push(HttpSender {
            connection: Connection::open(host)
                .await
                .with_context(|| format!("cannot connect to {host}"))?,
            key: server.api_key.clone(),
        });
    }
    Ok(senders)
}

async fn grpc_senders(server: &Server, connections: usize) -> Result<Vec<GrpcSender>> {
    let key = server
        .api_key
        .parse()
        .context("the API key is not valid in gRPC metadata")?;
    let mut senders = Vec::new();
    for _ in 0..connections.max(1) {
        // A channel each: one HTTP/2 connection per sender, as with HTTP/1.1.
        let channel = tonic::transport::Channel::from_shared(server.url.clone())
            .with_context(|| format!("invalid URL {}", server.url))?
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", server.url))?;
        senders.push(GrpcSender {
            client: FlowWatchClient::new(channel),
            key: tonic::metadata::MetadataValue::clone(&key),
        });
    }
    Ok(senders)
}

/// What to ingest.
#[derive(Debug, Clone, Copy)]
pub struct IngestLoad {
    /// Flows.
    pub flows: usize,
    /// Records in all.
    pub records: usize,
    /// Records per request.
    pub batch: usize,
    /// Concurrent connections (or publishers).
    pub connections: usize,
    /// Time of the first record.
    pub start: Instant,
    /// Records a second to send at (`None`: as fast as the server takes them).
    pub rate: Option<f64>,
}

impl IngestLoad {
    fn ranges(&self) -> impl Iterator<Item = (usize, usize)> {
        ranges(self.records, self.batch)
    }
}

/// `0..records` cut into ranges of `batch`.
fn ranges(records: usize, batch: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..records)
        .step_by(batch.max(1))
        .map(move |from| (from, (from + batch).min(records)))
}

/// Ingest over HTTP (`POST /api/v1/ingest`) or gRPC (`Ingest`), as fast as the server takes it
/// or at the load's rate: records per second, request latency, records per second over the run.
pub async fn ingest(server: &Server, grpc: bool, load: IngestLoad) -> Result<Value> {
    let flows = Flows(load.flows);
    let bodies: Vec<Vec<u8>> = load
        .ranges()
        .map(|(from, to)| flows.csv(load.start, from, to, 1000))
        .collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let bodies = Arc::new(bodies);
    let t = WallInstant::now();
    let sent = match grpc {
        false => {
            let senders = http_senders(server, load.connections).await?;
            send_all(senders, bodies, Pace::new(load.rate, load.batch)).await?
        }
        true => {
            let senders = grpc_senders(server, load.connections).await?;
            send_all(senders, bodies, Pace::new(load.rate, load.batch)).await?
        }
    };
    let seconds = t.elapsed().as_secs_f64();
    let accepted = sent.accepted();
    ensure!(
        accepted == load.records as u64,
        "{accepted} of {} records accepted",
        load.records
    );
    Ok(json!({
        "scenario": if grpc { "ingest-grpc" } else { "ingest-http" },
        "flows": load.flows, "records": accepted, "batch": load.batch,
        "connections": load.connections, "bodyBytes": bytes, "targetRate": load.rate,
        "seconds": seconds, "recordsPerSecond": accepted as f64 / seconds,
        "requestLatencyMs": percentiles(sent.latencies),
        "timeline": timeline(&sent.done),
    }))
}

/// A supervisor on an embedded store in a temporary directory, its clock a minute after the
/// load's last record: the worker of the in-process ingest benchmarks.
pub(crate) struct InProcess {
    pub store: Arc<dyn flowwatch_storage::Store>,
    pub supervisor: ractor::ActorRef<flowwatch_worker::actors::flow_supervisor::SupervisorMsg>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    pub async fn start(load: &IngestLoad) -> Result<InProcess> {
        use flowwatch_storage::embedded::EmbeddedStore;
        use flowwatch_worker::actors::flow_supervisor::{FlowSupervisor, SupervisorArgs, fixed};
        use flowwatch_worker::{Clock, WorkerSettings};
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn flowwatch_storage::Store> =
            Arc::new(EmbeddedStore::open(dir.path()).await?);
        let clock = Clock::starting_at(load.start + (load.records / load.flows) as Instant + 60);
        let (supervisor, _) = ractor::Actor::spawn(
            None,
            FlowSupervisor,
            SupervisorArgs {
                config: fixed(flowwatch_core::config::Config::default()),
                store: store.clone(),
                clock,
                settings: Arc::new(WorkerSettings::default()),
                alarms: tokio::sync::broadcast::channel(1024).0,
                ownership: None,
            },
        )
        .await?;
        Ok(InProcess {
            store,
            supervisor,
            _dir: dir,
        })
    }
}

/// Ingest through the JetStream partitions in this process: a publisher, one durable consumer
/// per partition, the supervisor and an embedded store in a temporary directory. Records per
/// second from the first publish until every record is stored.
pub async fn ingest_jetstream(nats_url: &str, partitions: u32, load: IngestLoad) -> Result<Value> {
    use flowwatch_worker::ingest::{JetStreamIngest, PartitionConsumer};
    use flowwatch_worker::metrics::METRICS;

    let worker = InProcess::start(&load).await?;
    let (store, supervisor) = (worker.store.clone(), worker.supervisor.clone());
    let client = async_nats::connect(nats_url)
        .await
        .with_context(|| format!("cannot connect to {nats_url}"))?;
    let publisher = Arc::new(
        JetStreamIngest::new(client.clone(), partitions)
            .await
            .map_err(anyhow::Error::msg)?,
    );
    ensure!(
        ingest_stream_messages(&client).await? == 0,
        "the ingest stream on {nats_url} is not empty: use a fresh nats-server"
    );
    let js = async_nats::jetstream::new(client);
    let consumers: Vec<_> = (0..partitions)
        .map(|p| {
            let c = PartitionConsumer {
                js: js.clone(),
                partition: p,
                supervisor: supervisor.clone(),
                store: store.clone(),
                ack_wait: Duration::from_secs(30),
            };
            tokio::spawn(c.run(Default::default()))
        })
        .collect();
    let flows = Flows(load.flows);
    let batches: Vec<Batch> = load
        .ranges()
        .map(|(from, to)| flows.records(load.start, from, to, 1000))
        .collect();
    let before = METRICS.ingest_records.get();
    let t = WallInstant::now();
    let pace = Pace::new(load.rate, load.batch);
    let mut publishers = publish_all(publisher, batches, load.connections, pace);
    // Stored records, sampled every 20 ms while the publishers run and until all are stored.
    let total = load.records as u64;
    let mut stored = Vec::new();
    let mut published = None;
    loop {
        let n = METRICS.ingest_records.get() - before;
        stored.push((t.elapsed().as_secs_f64(), n));
        if published.is_none() && publishers.iter().all(|p| p.is_finished()) {
            published = Some(t.elapsed().as_secs_f64());
            for p in publishers.drain(..) {
                p.await??;
            }
        }
        if n >= total && published.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        ensure!(
            t.elapsed() < Duration::from_secs(600),
            "not everything was stored in 10 minutes"
        );
    }
    let published = published.unwrap_or_default();
    let done: Vec<(f64, u64)> = stored
        .windows(2)
        .map(|w| (w[1].0, w[1].1 - w[0].1))
        .collect();
    let seconds = t.elapsed().as_secs_f64();
    for c in consumers {
        c.abort();
    }
    supervisor.stop(None);
    Ok(json!({
        "scenario": "ingest-jetstream",
        "flows": load.flows, "records": total, "batch": load.batch,
        "partitions": partitions, "publishers": load.connections,
        "publishSeconds": published, "seconds": seconds, "targetRate": load.rate,
        "recordsPerSecond": total as f64 / seconds, "timeline": timeline(&done),
    }))
}

/// Messages in the JetStream ingest stream (created if missing).
pub(crate) async fn ingest_stream_messages(client: &async_nats::Client) -> Result<u64> {
    let js = async_nats::jetstream::new(client.clone());
    let mut s = flowwatch_worker::ingest::ingest_stream(&js)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(s.info().await?.state.messages)
}

/// Publishes `batches` to the ingest partitions from `publishers` tasks at once, at `pace`.
pub(crate) fn publish_all(
    publisher: Arc<flowwatch_worker::ingest::JetStreamIngest>,
    batches: Vec<Batch>,
    publishers: usize,
    pace: Pace,
) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    let next = Arc::new(AtomicUsize::new(0));
    let batches = Arc::new(batches);
    (0..publishers.max(1))
        .map(|_| {
            let (publisher, batches, next) = (publisher.clone(), batches.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(b) = batches.get(k) else { break };
                    pace.wait(k).await;
                    publisher.publish(b).await.map_err(anyhow::Error::msg)?;
                }
                anyhow::Ok(())
            })
        })
        .collect()
}

/// A `/proc/PID/status` field in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(status: &str, field: &str) -> Result<u64> {
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field}"))?;
    Ok(kb * 1024)
}

/// Resident and peak resident bytes of a process, from `/proc`.
pub(crate) fn process_memory(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("no process {pid}"))?;
    Ok((
        status_bytes(&status, "VmRSS")?,
        status_bytes(&status, "VmHWM")?,
    ))
}

/// CPU seconds and resident bytes of a process, from `/proc`.
fn process_usage(pid: u32) -> Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("no process {pid}"))?;
    // Fields after the command (which may hold spaces) start at the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap_or(0) + 2..]
        .split(' ')
        .collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // USER_HZ is 100 on every Linux architecture flowwatch builds for.
    Ok((ticks as f64 / 100.0, process_memory(pid)?.0))
}

/// The body of `GET url/path` on a new connection.
async fn get(server: &Server, path: &str) -> Result<Vec<u8>> {
    let mut c = Connection::open(authority(&server.url)?).await?;
    let r = c
        .request("GET", path, &[("X-API-Key", &server.api_key)], b"")
        .await?;
    ensure!(
        r.status == 200,
        "GET {path} answered {}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    Ok(r.body)
}

/// The server's clock (`time` of `/api/v1/status`), in Unix seconds.
pub(crate) async fn server_time(server: &Server) -> Result<Instant> {
    let v: Value = serde_json::from_slice(&get(server, "/api/v1/status").await?)?;
    v["time"]
        .as_str()
        .and_then(|t| parse_rfc3339(t).ok())
        .context("no time in /api/v1/status")
}

/// Reads one sample of a metric from `/metrics`.
pub(crate) async fn metric(server: &Server, name: &str) -> Result<f64> {
    let body = get(server, "/metrics").await?;
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .with_context(|| format!("no metric {name}"))
}

/// Steady live load on a running flowwatch (process `pid`, configured with 1-minute ticks):
/// every `every` one record per flow, timestamped with the server's now. After a warm-up (every
/// flow's actor started, and a minute), the process's CPU over
/// `minutes` minutes as a share of one core, the ticks evaluated, and resident memory per flow.
pub async fn steady(
    server: &Server,
    pid: u32,
    flows: usize,
    minutes: u64,
    every: u64,
) -> Result<Value> {
    let f = Flows(flows);
    let (_, rss_before) = process_usage(pid)?;
    // Records carry the server's time (it may run with --start-time).
    let offset = server_time(server).await? - unix_now() as Instant;
    let round = async |f: &Flows| {
        let now = unix_now() as Instant + offset;
        post_all(server, Arc::new(vec![f.csv(now, 0, flows, 1000)]), 1).await
    };
    // Warm-up: every flow's actor has started, then a minute more.
    let t = WallInstant::now();
    let mut started = None;
    while started.is_none_or(|s: WallInstant| s.elapsed() < Duration::from_secs(60)) {
        round(&f).await?;
        if started.is_none() && metric(server, "flowwatch_worker_flows").await? >= flows as f64 {
            started = Some(WallInstant::now());
        }
        tokio::time::sleep(Duration::from_secs(every)).await;
    }
    let warmup = t.elapsed().as_secs_f64();
    let (cpu0, _) = process_usage(pid)?;
    let ticks0 = metric(server, "flowwatch_worker_ticks_total").await?;
    let t0 = WallInstant::now();
    let mut latencies = Vec::new();
    while t0.elapsed() < Duration::from_secs(minutes * 60) {
        let (_, l) = round(&f).await?;
        latencies.extend(l);
        tokio::time::sleep(Duration::from_secs(every)).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let (cpu1, rss) = process_usage(pid)?;
    let ticks = metric(server, "flowwatch_worker_ticks_total").await? - ticks0;
    Ok(json!({
        "scenario": "steady",
        "flows": flows, "recordsEverySeconds": every, "warmupSeconds": warmup, "seconds": wall,
        "cpuSeconds": cpu1 - cpu0, "coreShare": (cpu1 - cpu0) / wall,
        "ticksPerMinute": ticks / wall * 60.0,
        "residentBytes": rss, "residentBytesPerFlow": rss.saturating_sub(rss_before) / flows as u64,
        "ingestLatencyMs": percentiles(latencies),
    }))
}

/// Alarm latency on a running flowwatch configured with 1-minute ticks and `grace` seconds of
/// grace, publishing to `nats_url`: loads `history_days` of history, feeds every flow live each
/// second, then stops all of them. For every alarm of the silence: the time from its tick's end
/// plus grace until a NATS subscriber has it.
pub async fn alarm_latency(
    server: &Server,
    nats_url: &str,
    flows: usize,
    history_days: u64,
    grace: i64,
) -> Result<Value> {
    let f = Flows(flows);
    let now = unix_now() as Instant;
    let history_start = now - now.rem_euclid(60) - history_days as Instant * 86_400;
    let records = (now - history_start) as usize * flows / 60;
    // One record per flow and minute, at half past; few large requests: each batch makes
    // every actor re-evaluate from its first late tick.
    let bodies: Vec<Vec<u8>> = ranges(records, 3_000_000)
        .map(|(from, to)| f.csv_every(history_start + 30, 60, from, to, 6000))
        .collect();
    post_all(server, Arc::new(bodies), 1).await?;
    let nc = async_nats::connect(nats_url)
        .await
        .with_context(|| format!("cannot connect to {nats_url}"))?;
    let mut alarms = nc.subscribe("flowwatch.alarms.>").await?;
    nc.flush().await?;
    // Live: every second, the second that just ended (100 bytes a second: the history's
    // rate). A slow answer skips seconds rather than sending ever older ones: live traffic
    // that falls behind the clock would be late data, another workload.
    let live = Duration::from_secs(90);
    // The worker stores a request while its actors take the one before, and stores the next
    // only once they did: when the second live second is answered, every history request has
    // been evaluated, and the live phase's 90 s start.
    let mut sent = unix_now() as Instant - 1;
    for _ in 0..2 {
        post_all(server, Arc::new(vec![f.csv(sent, 0, flows, 100)]), 1).await?;
        sent += 1;
    }
    let t = WallInstant::now();
    while t.elapsed() < live {
        sent = unix_now() as Instant - 1;
        let body = f.csv(sent, 0, flows, 100);
        post_all(server, Arc::new(vec![body]), 1).await?;
        let wait = (sent + 2) as f64 - unix_now();
        tokio::time::sleep(Duration::from_secs_f64(wait.max(0.0))).await;
    }
    let second = sent + 1;
    // Silence from `second` on: the tick holding it has less traffic, the next has none.
    let stop_minute = second - second.rem_euclid(60);
    let mut latencies = Vec::new();
    let mut outages = std::collections::HashSet::new();
    let deadline = WallInstant::now() + Duration::from_secs(300);
    while outages.len() < flows {
        let remaining = deadline.saturating_duration_since(WallInstant::now());
        let Ok(Some(m)) = tokio::time::timeout(remaining, alarms.next()).await else {
            bail!(
                "{} of {flows} flows raised OUTAGE in 5 minutes",
                outages.len()
            );
        };
        let received = unix_now();
        let v: Value = serde_json::from_slice(&m.payload)?;
        let tick = v["tickTime"]
            .as_str()
            .and_then(|s| parse_rfc3339(s).ok())
            .context("an alarm without tickTime")?;
        if tick < stop_minute {
            continue; // the live phase's own changes
        }
        let due = (tick + 60 + grace) as f64;
        latencies.push(Duration::from_secs_f64((received - due).max(0.0)));
        if v["newStatus"] == "OUTAGE" {
            outages.insert(v["flowName"].as_str().unwrap_or_default().to_owned());
        }
    }
    Ok(json!({
        "scenario": "alarm-latency",
        "flows": flows, "historyDays": history_days, "historyRecords": records,
        "graceSeconds": grace,
        "alarmLatencyMs": percentiles(latencies),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_bodies_are_valid_ingest_csv() {
        let f = Flows(3);
        let body = String::from_utf8(f.csv(1_486_339_200, 2, 5, 7)).unwrap();
        assert_eq!(
            body,
            "time,country,lob,kind,flow,bytes\n\
             2017-02-06T00:00:00Z,CZ,LOAD,input,L000002,7\n\
             2017-02-06T00:00:01Z,CZ,LOAD,input,L000000,7\n\
             2017-02-06T00:00:01Z,CZ,LOAD,input,L000001,7\n"
        );
        let parsed = flowwatch_core::record::body::parse_body(
            flowwatch_core::record::body::BodyFormat::Csv,
            &body,
            &flowwatch_core::config::Config::default(),
        )
        .unwrap();
        assert_eq!(parsed.batch, f.records(1_486_339_200, 2, 5, 7));
    }

    #[test]
    fn each_flow_s_records_are_a_step_apart() {
        let body = String::from_utf8(Flows(2).csv_every(1_486_339_230, 60, 1, 4, 6000)).unwrap();
        assert_eq!(
            body,
            "time,country,lob,kind,flow,bytes\n\
             2017-02-06T00:00:30Z,CZ,LOAD,input,L000001,6000\n\
             2017-02-06T00:01:30Z,CZ,LOAD,input,L000000,6000\n\
             2017-02-06T00:01:30Z,CZ,LOAD,input,L000001,6000\n"
        );
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let p = percentiles((1..=100).map(ms).collect());
        assert_eq!(p["p50"], 50.0);
        assert_eq!(p["p99"], 99.0);
        assert_eq!(p["max"], 100.0);
        assert_eq!(percentiles(vec![]), Value::Null);
    }

    #[test]
    fn reads_this_process_usage() {
        let (cpu, rss) = process_usage(std::process::id()).unwrap();
        assert!(cpu >= 0.0);
        assert!(rss > 1 << 20, "{rss}");
        let (rss, peak) = process_memory(std::process::id()).unwrap();
        assert!(rss > 1 << 20 && peak >= rss, "{rss} {peak}");
    }
}
