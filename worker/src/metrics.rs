//! Every metric of the worker, process-wide (as Prometheus client libraries keep them), and
//! their Prometheus text form.

use flowwatch_proto::server::write_metric;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets it.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Raises it to `v` if `v` is higher.
    pub fn raise(&self, v: i64) {
        self.0.fetch_max(v, Ordering::Relaxed);
    }

    /// Adds `d` (may be negative).
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }

    /// The value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The worker's metrics.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    /// Records stored.
    pub ingest_records: Counter,
    /// Records refused by the worker (a country without a zone).
    pub ingest_refused: Counter,
    /// Batches stored.
    pub ingest_batches: Counter,
    /// Batches that were repeats of stored ones (delivered again after a crash).
    pub ingest_repeats: Counter,
    /// The time of the newest record stored (Unix seconds; 0 before the first).
    pub newest_record: Gauge,
    /// Flow actors running.
    pub flows: Gauge,
    /// Ticks evaluated and stored.
    pub ticks: Counter,
    /// When (Unix seconds, on the worker's clock) a tick was last stored.
    pub last_evaluation: Gauge,
    /// Status changes stored.
    pub events: Counter,
    /// History rebuilds from storage (start, late data, configuration change).
    pub rebuilds: Counter,
    /// Flow actors that failed (restarted from storage after a pause).
    pub actor_failures: Counter,
    /// Kafka messages or lines refused (not a record).
    pub kafka_refused: Counter,
}

/// The process's worker metrics.
pub static METRICS: WorkerMetrics = WorkerMetrics {
    ingest_records: Counter(AtomicU64::new(0)),
    ingest_refused: Counter(AtomicU64::new(0)),
    ingest_batches: Counter(AtomicU64::new(0)),
    ingest_repeats: Counter(AtomicU64::new(0)),
    newest_record: Gauge(AtomicI64::new(0)),
    flows: Gauge(AtomicI64::new(0)),
    ticks: Counter(AtomicU64::new(0)),
    last_evaluation: Gauge(AtomicI64::new(0)),
    events: Counter(AtomicU64::new(0)),
    rebuilds: Counter(AtomicU64::new(0)),
    actor_failures: Counter(AtomicU64::new(0)),
    kafka_refused: Counter(AtomicU64::new(0)),
};

impl WorkerMetrics {
    /// Appends every metric in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let m = self;
        let counters = [
            (
                "flowwatch_ingest_records_total",
                "Records stored.",
                &m.ingest_records,
            ),
            (
                "flowwatch_ingest_refused_total",
                "Records refused by the worker.",
                &m.ingest_refused,
            ),
            (
                "flowwatch_ingest_batches_total",
                "Batches stored.",
                &m.ingest_batches,
            ),
            (
                "flowwatch_ingest_repeated_batches_total",
                "Batches delivered again and not stored twice.",
                &m.ingest_repeats,
            ),
            (
                "flowwatch_worker_ticks_total",
                "Ticks evaluated and stored.",
                &m.ticks,
            ),
            (
                "flowwatch_worker_events_total",
                "Status changes stored.",
                &m.events,
            ),
            (
                "flowwatch_worker_rebuilds_total",
                "History rebuilds from storage.",
                &m.rebuilds,
            ),
            (
                "flowwatch_worker_actor_failures_total",
                "Flow actors that failed and were restarted.",
                &m.actor_failures,
            ),
            (
                "flowwatch_kafka_refused_total",
                "Kafka messages or lines that are not records.",
                &m.kafka_refused,
            ),
        ];
        for (name, help, c) in counters {
            write_metric(out, name, "counter", help, c.get());
        }
        write_metric(
            out,
            "flowwatch_ingest_newest_record_seconds",
            "gauge",
            "Time of the newest record stored (Unix seconds).",
            m.newest_record.get(),
        );
        write_metric(
            out,
            "flowwatch_worker_flows",
            "gauge",
            "Flow actors running.",
            m.flows.get(),
        );
        write_metric(
            out,
            "flowwatch_worker_last_evaluation_seconds",
            "gauge",
            "When a tick was last stored (Unix seconds, worker clock).",
            m.last_evaluation.get(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_prometheus_text_format() {
        let m = WorkerMetrics::default();
        m.ingest_records.add(5);
        m.flows.set(3);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains(
            "# HELP flowwatch_ingest_records_total Records stored.\n\
             # TYPE flowwatch_ingest_records_total counter\n\
             flowwatch_ingest_records_total 5\n"
        ));
        assert!(out.contains("\nflowwatch_worker_flows 3\n"));
        // Every sample line is `name value`.
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.split_once(' ').unwrap();
            assert!(name.starts_with("flowwatch_"));
            value.parse::<i64>().unwrap();
        }
    }
}
