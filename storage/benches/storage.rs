//! Storage speed and size, embedded and PostgreSQL:
//! - upserts in batches of 1 000 buckets (throughput),
//! - reading 28 days of one flow with 5-minute data,
//! - the latest status of 100 000 flows,
//! - disk use per stored bucket (printed).
//!
//! `cargo bench -p flowwatch-storage --bench storage` (PostgreSQL from
//! `FLOWWATCH_TEST_POSTGRES`, default `postgres://root@127.0.0.1:5432/test`; a database is
//! created for the run and dropped after).

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowwatch_core::detection::{Status, TickValues};
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_storage::embedded::EmbeddedStore;
use flowwatch_storage::postgres::PostgresStore;
use flowwatch_storage::{Bucket, FlowBuckets, Store, StoredTick};
use tokio::runtime::Runtime;

const T0: i64 = 1_485_900_000;

fn flow(i: usize) -> FlowId {
    FlowId::new("CZ", "GSM", FlowKind::Input, &format!("MSSBRN{i:06}")).expect("valid id")
}

/// Batch `n` of 1 000 buckets: 10 flows × 100 consecutive seconds.
fn batch(n: i64) -> Vec<FlowBuckets> {
    (0..10)
        .map(|k| FlowBuckets {
            flow: flow(k),
            buckets: (0..100)
                .map(|s| Bucket {
                    second: T0 + n * 100 + s,
                    bytes: 18_838_553 + s as u64,
                    records: 3,
                })
                .collect(),
        })
        .collect()
}

fn tick(f: FlowId, start: i64) -> StoredTick {
    StoredTick {
        flow: f,
        start,
        end: start + 3600,
        actual: 1_000_000,
        status: Status::Ok,
        values: Some(TickValues {
            expected: 1e6,
            day_average: 9e5,
            tick_difference: 1.0,
            day_difference: 1.1,
            difference: 1.1,
            band: None,
        }),
        evaluated_at: start + 3720,
        epoch: 1,
    }
}

fn admin_uri() -> String {
    std::env::var("FLOWWATCH_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

async fn admin(sql: &str) {
    let (client, conn) = tokio_postgres::connect(&admin_uri(), tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL runs");
    tokio::spawn(conn);
    client.batch_execute(sql).await.expect("admin statement");
}

fn backend(
    c: &mut Criterion,
    rt: &Runtime,
    name: &str,
    store: Arc<dyn Store>,
    disk: &dyn Fn() -> u64,
    settle: &dyn Fn(),
) {
    let mut group = c.benchmark_group(format!("storage/{name}"));
    group.sample_size(10);
    let mut n = 0i64;
    group.throughput(Throughput::Elements(1000));
    group.bench_function("add a batch of 1000 buckets", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(store.add_buckets(batch(n), None))
                .expect("write");
        })
    });
    let written = n * 1000;

    // 28 days of 5-minute data for one flow: 8 064 buckets.
    let reader = flow(999_999);
    let buckets: Vec<Bucket> = (0..28 * 288)
        .map(|i| Bucket {
            second: T0 + i * 300,
            bytes: 5_000_000,
            records: 2,
        })
        .collect();
    for chunk in buckets.chunks(1000) {
        rt.block_on(store.add_buckets(
            vec![FlowBuckets {
                flow: reader.clone(),
                buckets: chunk.to_vec(),
            }],
            None,
        ))
        .expect("write");
    }
    group.throughput(Throughput::Elements(8064));
    group.bench_function("read 28 days of one flow (5-minute data)", |b| {
        b.iter(|| {
            let read = rt
                .block_on(store.read_buckets(&reader, T0, T0 + 28 * 86_400))
                .expect("read");
            assert_eq!(read.len(), 8064);
        })
    });

    // The latest status of 100 000 flows.
    let flows: Vec<FlowId> = (0..100_000).map(flow).collect();
    for chunk in flows.chunks(5000) {
        rt.block_on(store.write_ticks(chunk.iter().map(|f| tick(f.clone(), T0)).collect()))
            .expect("write");
    }
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("latest status of 100k flows", |b| {
        b.iter(|| {
            let latest = rt.block_on(store.latest_statuses()).expect("read");
            assert_eq!(latest.len(), 100_000);
        })
    });
    group.finish();
    let stored = written + 8064;
    let report = |when: &str, bytes: u64| {
        println!(
            "storage/{name}: {bytes} bytes on disk {when} ({stored} buckets, 100 000 ticks and statuses): ≈ {:.1} bytes per stored row",
            bytes as f64 / (stored + 200_000) as f64
        )
    };
    report("right after writing", disk());
    settle();
    report("after compaction", disk());
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let dir = tempfile::tempdir().expect("temp dir");
    let embedded = rt.block_on(EmbeddedStore::open(dir.path())).expect("open");
    let disk = {
        let e = embedded.clone();
        let rt = &rt;
        move || rt.block_on(e.disk_space()).expect("disk space")
    };
    let settle = || rt.block_on(embedded.compact()).expect("compact");
    backend(
        c,
        &rt,
        "embedded",
        Arc::new(embedded.clone()),
        &disk,
        &settle,
    );

    let db = format!("flowwatch_bench_{}", std::process::id());
    rt.block_on(admin(&format!("CREATE DATABASE {db}")));
    let uri = format!(
        "{}/{db}",
        admin_uri().rsplit_once('/').expect("uri with a database").0
    );
    let pg: Arc<dyn Store> = Arc::new(rt.block_on(PostgresStore::connect(&uri)).expect("connect"));
    let pg_disk = || {
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&uri, tokio_postgres::NoTls).await.expect("connect");
            tokio::spawn(conn);
            let row = client
                .query_one(
                    "SELECT pg_total_relation_size('traffic') + pg_total_relation_size('ticks') + pg_total_relation_size('flow_status')",
                    &[],
                )
                .await
                .expect("size");
            row.get::<_, i64>(0) as u64
        })
    };
    let vacuum = || {
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&uri, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(conn);
            for table in ["traffic", "ticks", "flow_status"] {
                // VACUUM cannot run in the implicit transaction of a multi-statement batch.
                client
                    .batch_execute(&format!("VACUUM FULL {table}"))
                    .await
                    .expect("vacuum");
            }
        })
    };
    backend(c, &rt, "postgres", pg.clone(), &pg_disk, &vacuum);
    drop(pg);
    rt.block_on(admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")));
}

criterion_group!(benches, bench);
criterion_main!(benches);
