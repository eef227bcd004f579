// The state of every component (store, worker, ingest, alarms, NATS), kept live by the
// stream's `components` event; the cluster as its leading coordinator sees it (or one
// process), read every few seconds.

import { useEffect, useState } from "react";
import type { Cluster, ClusterMember } from "../api";
import { ErrorBox, Loading, useApp, useEvery, useLoad, useTitle } from "../app";
import { bytes, duration, epoch, localTime, metric, millis, partitionRanges } from "../format";

/** How often the cluster view is read again. */
const CLUSTER_MS = 3000;

interface Components {
  time: string;
  components: {
    store: { ok: boolean; error: string | null };
    worker: {
      /** Where the figures come from: this process, the sum of a cluster's workers, or unknown (`error` says why). */
      source: "in process" | "cluster" | "unknown";
      workers: number | null;
      error: string | null;
      flows: number;
      ticks: number;
      actorFailures: number;
      lastEvaluation: string | null;
    };
    ingest: { batches: number; records: number; refused: number; lagSeconds: number | null; newestRecord: string | null };
    alarms: { outbox: number; relay: { healthy: boolean; published: number; failures: number } | null };
    nats: unknown;
    /** This process's Kafka readers, one per partition (absent from older servers). */
    kafka?: KafkaPartition[];
  };
}

/** A Kafka partition's reader: the next offset to read, the partition's end, what is left. */
export interface KafkaPartition {
  topic: string;
  partition: number;
  position: number;
  highWatermark: number;
  lag: number;
}

/** Records of Kafka not stored yet, in all; a reader is healthy below this many. */
export const KAFKA_LAG_LIMIT = 100_000;

/** The total lag of the Kafka readers. */
export function kafkaLag(parts: KafkaPartition[]): number {
  return parts.reduce((sum, p) => sum + p.lag, 0);
}

/** Where the worker figures come from, in words. */
export function workerSource(w: Components["components"]["worker"]): string {
  if (w.source === "cluster") return `${w.workers ?? 0} worker${w.workers === 1 ? "" : "s"} of the cluster`;
  if (w.source === "unknown") return `unknown: ${w.error ?? "no answer"}`;
  return "this process";
}

function Card(p: { title: string; ok: boolean; children: React.ReactNode }) {
  return (
    <section className={`card ${p.ok ? "card-ok" : "card-bad"}`} aria-label={p.title}>
      <h2>
        <span className={`dot ${p.ok ? "up" : "down"}`} aria-hidden="true" /> {p.title}{" "}
        <span className="muted small">{p.ok ? "healthy" : "needs attention"}</span>
      </h2>
      <dl>{p.children}</dl>
    </section>
  );
}

function Row({ k, v }: { k: string; v: React.ReactNode }) {
  return (
    <div className="kv">
      <dt>{k}</dt>
      <dd>{v}</dd>
    </div>
  );
}

/** Whether a worker's partitions are moving: it has not yet confirmed its newest plan. */
export function moving(m: Pick<ClusterMember, "planEpoch" | "appliedEpoch">): boolean {
  return m.appliedEpoch < m.planEpoch;
}

function Members({ members }: { members: ClusterMember[] }) {
  if (members.length === 0) return <p className="muted">No worker has joined.</p>;
  return (
    <table className="table compact">
      <thead>
        <tr>
          <th scope="col">Worker</th>
          <th scope="col">State</th>
          <th scope="col" className="num">
            Flows
          </th>
          <th scope="col">Partitions</th>
          <th scope="col" className="num">
            Memory
          </th>
          <th scope="col" className="num">
            Heartbeat
          </th>
          <th scope="col" className="num">
            Ingest lag
          </th>
        </tr>
      </thead>
      <tbody>
        {members.map((m) => (
          <tr key={m.worker} data-worker={m.worker}>
            <th scope="row" title={m.address}>
              {m.worker}
            </th>
            <td>
              {m.state}
              {moving(m) ? (
                <span className="tag" data-moving title={`runs plan ${epoch(m.appliedEpoch)}, given plan ${epoch(m.planEpoch)}`}>
                  moving
                </span>
              ) : null}
            </td>
            <td className="num">{metric(m.flows)}</td>
            <td data-partitions>{partitionRanges(m.partitions)}</td>
            <td className="num">{m.memoryBytes > 0 ? bytes(m.memoryBytes) : "–"}</td>
            <td className="num">{millis(m.lastHeartbeatMillis)} ago</td>
            <td className="num">{duration(m.ingestLagSeconds)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The leader's view of the cluster; one process; or why the view is unavailable. */
function ClusterSection() {
  const { api } = useApp();
  const d = useLoad(() => api.get<Cluster>("/cluster"), []);
  useEvery(d.reload, CLUSTER_MS);
  const c = d.data;
  const shape = !c ? "loading" : c.clustered ? "clustered" : c.inProcess ? "one-process" : "no-coordinator";
  return (
    <section aria-label="Cluster" data-cluster={shape}>
      <h2>Cluster</h2>
      {d.error ? (
        <div className="error" role="alert" data-cluster-error>
          Cluster view unavailable: {(d.error as Error).message ?? String(d.error)}
          {c ? <span className="muted small"> (below: as last seen)</span> : null}
        </div>
      ) : null}
      {!c ? (
        d.error ? null : <Loading />
      ) : c.clustered ? (
        <>
          <p>
            Leader <strong>{c.coordinator}</strong> <span className="muted small">{c.leaderAddress}</span>, epoch {epoch(c.epoch)},{" "}
            {c.partitionCount} partitions
            {c.moving.length ? `, ${c.moving.length} moving (${partitionRanges(c.moving)})` : ", none moving"}.
          </p>
          <Members members={c.members} />
        </>
      ) : c.inProcess ? (
        <p>One process (no coordinator): ingest, evaluation and the API all run here.</p>
      ) : (
        <p>
          No coordinator configured: this gateway was started without <code>--coordinator</code>, so it does not know where the flows
          run.
        </p>
      )}
      <p className="muted small">Read every {CLUSTER_MS / 1000} s while this page is open.</p>
    </section>
  );
}

export function SystemStatus() {
  useTitle("System status");
  const { api, live } = useApp();
  const first = useLoad(() => api.get<Components>("/status"), []);
  const [now, setNow] = useState<Components | undefined>();
  useEffect(() => live.onComponents((c) => setNow(c as Components)), [live]);
  const s = now ?? first.data;
  if (!s) return first.error ? <ErrorBox error={first.error} /> : <Loading />;
  const c = s.components;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const at = (t: string | null) => (t ? localTime(t, zone) : "never");
  const nats = typeof c.nats === "string" ? c.nats : JSON.stringify(c.nats);
  return (
    <>
      <h1>System status</h1>
      <p className="muted small" data-time={s.time}>
        As of {localTime(s.time, zone)}; updated every 5 s while this page is open.
      </p>
      <div className="cards">
        <Card title="Store" ok={c.store.ok}>
          <Row k="state" v={c.store.ok ? "reachable" : c.store.error} />
        </Card>
        <Card title="Worker" ok={c.worker.source !== "unknown" && c.worker.actorFailures === 0}>
          <Row k="source" v={workerSource(c.worker)} />
          <Row k="flows" v={metric(c.worker.flows)} />
          <Row k="ticks evaluated" v={metric(c.worker.ticks)} />
          <Row k="last evaluation" v={at(c.worker.lastEvaluation)} />
          <Row k="actor failures" v={c.worker.actorFailures} />
        </Card>
        <Card title="Ingest" ok={(c.ingest.lagSeconds ?? 0) < 300}>
          <Row k="lag" v={c.ingest.lagSeconds == null ? "–" : duration(c.ingest.lagSeconds)} />
          <Row k="records" v={metric(c.ingest.records)} />
          <Row k="refused" v={metric(c.ingest.refused)} />
          <Row k="newest record" v={at(c.ingest.newestRecord)} />
        </Card>
        <Card title="Alarms" ok={c.alarms.outbox < 1000 && (c.alarms.relay?.healthy ?? true)}>
          <Row k="outbox" v={metric(c.alarms.outbox)} />
          <Row k="published" v={c.alarms.relay ? metric(c.alarms.relay.published) : "–"} />
          <Row k="relay failures" v={c.alarms.relay ? c.alarms.relay.failures : "–"} />
        </Card>
        <Card title="NATS" ok={!/error|down|unreachable/i.test(nats)}>
          <Row k="state" v={nats} />
        </Card>
        {c.kafka && c.kafka.length > 0 && (
          <Card title="Kafka ingest" ok={kafkaLag(c.kafka) < KAFKA_LAG_LIMIT}>
            <Row k="lag" v={`${metric(kafkaLag(c.kafka))} records`} />
            {c.kafka.map((p) => (
              <Row
                key={`${p.topic}/${p.partition}`}
                k={`${p.topic} #${p.partition}`}
                v={`${metric(p.lag)} behind (${metric(p.position)} of ${metric(p.highWatermark)})`}
              />
            ))}
          </Card>
        )}
      </div>
      <ClusterSection />
    </>
  );
}
