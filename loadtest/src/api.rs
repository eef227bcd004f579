//! Load on the read API (issue 5): one flow's ticks over 28 days, the dashboard, and many
//! clients at once, against a running flowwatch loaded with `flows` flows of history.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as WallInstant};

use anyhow::{Context, Result, ensure};
use flowwatch_core::time::{Instant, utc_string};
use serde_json::{Value, json};

use crate::drive::{Flows, Server, metric, percentiles, post_all, server_time};
use flowwatch_gateway::client::{Connection, authority};
use flowwatch_generator::rng::Rng;

/// The read load.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiLoad {
    /// Flows (the dashboard counts them all).
    #[arg(long, default_value_t = 4500)]
    pub flows: usize,
    /// Days of history (one record per flow and hour) before the server's day.
    #[arg(long, default_value_t = 35)]
    pub days: i64,
    /// Requests of each kind measured one at a time.
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Concurrent clients of the mixed phase.
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Seconds of the mixed phase.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
}

/// The 28 local days before the server's day, as a ticks query of flow `i`.
fn ticks_path(i: usize, to_day: Instant) -> String {
    let day = |t: Instant| utc_string(t)[..10].to_owned();
    format!(
        "/api/v1/flows/CZ/LOAD/input/{}/ticks?from={}&to={}",
        Flows::name(i),
        day(to_day - 28 * 86_400),
        day(to_day)
    )
}

/// One GET; its latency, or what was wrong with the answer.
async fn timed(c: &mut Connection, key: &str, path: &str) -> Result<(Duration, Vec<u8>)> {
    let t = WallInstant::now();
    let r = c.request("GET", path, &[("X-API-Key", key)], b"").await?;
    let took = t.elapsed();
    ensure!(
        r.status == 200,
        "GET {path} answered {}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    Ok((took, r.body))
}

/// Loads the history, waits until it is evaluated, then measures.
pub async fn api(server: &Server, load: ApiLoad) -> Result<Value> {
    let now = server_time(server).await?;
    let today = now.div_euclid(86_400) * 86_400;
    let start = today - load.days * 86_400;
    let hours = ((now - start) / 3600) as usize;
    let flows = Flows(load.flows);
    let records = load.flows * hours;
    let batch = 500_000;
    let bodies: Vec<Vec<u8>> = (0..records)
        .step_by(batch)
        .map(|from| flows.csv_every(start, 3600, from, (from + batch).min(records), 1000))
        .collect();
    let t = WallInstant::now();
    let ticks0 = metric(server, "flowwatch_worker_ticks_total").await?;
    let (accepted, _) = post_all(server, Arc::new(bodies), 1).await?;
    ensure!(
        accepted == records as u64,
        "{accepted} of {records} records taken"
    );
    // Every flow evaluates its ticks up to the clock: wait until the count stops growing.
    let mut last = -1.0;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ticks = metric(server, "flowwatch_worker_ticks_total").await? - ticks0;
        if ticks == last && ticks >= records as f64 * 0.9 {
            break;
        }
        last = ticks;
    }
    let loaded = t.elapsed().as_secs_f64();

    let host = authority(&server.url)?.to_owned();
    let key = server.api_key.as_str();
    let mut rng = Rng::new(7);
    let mut c = Connection::open(&host).await?;
    let mut ticks_latency = Vec::with_capacity(load.samples);
    for _ in 0..load.samples {
        let path = ticks_path(rng.below(load.flows), today);
        let (took, body) = timed(&mut c, key, &path).await?;
        let answer: Value = serde_json::from_slice(&body)?;
        let n = answer["ticks"].as_array().map_or(0, Vec::len);
        ensure!(n >= 28 * 23, "{path}: {n} ticks");
        ticks_latency.push(took);
    }
    let mut dashboard_latency = Vec::with_capacity(load.samples);
    for _ in 0..load.samples {
        let (took, body) = timed(&mut c, key, "/api/v1/dashboard").await?;
        let answer: Value = serde_json::from_slice(&body)?;
        let counted: u64 = answer["countries"]["CZ"]
            .as_object()
            .context("no CZ in the dashboard")?
            .values()
            .filter_map(Value::as_u64)
            .sum();
        ensure!(
            counted >= load.flows as u64,
            "the dashboard counts {counted} flows"
        );
        dashboard_latency.push(took);
    }

    // Many clients at once, each a keep-alive connection looping over a mix of reads.
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for client in 0..load.clients {
        let (host, key, stop) = (host.clone(), server.api_key.clone(), stop.clone());
        let flows = load.flows;
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(client as u64 + 100);
            let mut latencies = Vec::new();
            let mut errors: Vec<String> = Vec::new();
            let mut c = Connection::open(&host).await?;
            let mut k = client;
            while !stop.load(Ordering::Relaxed) {
                let path = match k % 5 {
                    0 => "/api/v1/dashboard".to_owned(),
                    1 => ticks_path(rng.below(flows), today),
                    2 => "/api/v1/events?limit=50".to_owned(),
                    3 => "/api/v1/status".to_owned(),
                    _ => format!(
                        "/api/v1/flows/CZ/LOAD/input/{}/config",
                        Flows::name(rng.below(flows))
                    ),
                };
                k += 1;
                match timed(&mut c, &key, &path).await {
                    Ok((took, _)) => latencies.push(took),
                    Err(e) => {
                        errors.push(e.to_string());
                        c = Connection::open(&host).await?;
                    }
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    tokio::time::sleep(Duration::from_secs(load.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut errors) = (Vec::new(), Vec::new());
    for t in tasks {
        let (l, e) = t.await??;
        latencies.extend(l);
        errors.extend(e);
    }
    let requests = latencies.len() + errors.len();
    errors.truncate(5);
    Ok(json!({
        "scenario": "api",
        "flows": load.flows, "historyDays": load.days, "historyRecords": records,
        "loadSeconds": loaded,
        "ticks28DaysMs": percentiles(ticks_latency),
        "dashboardMs": percentiles(dashboard_latency),
        "mixed": {
            "clients": load.clients, "seconds": load.seconds,
            "requests": requests, "errors": requests - latencies.len(),
            "requestsPerSecond": requests as f64 / load.seconds as f64,
            "latencyMs": percentiles(latencies),
            "firstErrors": errors,
        },
    }))
}
