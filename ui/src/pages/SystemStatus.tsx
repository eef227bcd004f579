// The state of every component (store, worker, ingest, alarms, NATS), kept live by the
// stream's `components` event.

import { useEffect, useState } from "react";
import { ErrorBox, Loading, useApp, useLoad, useTitle } from "../app";
import { duration, localTime, metric } from "../format";

interface Components {
  time: string;
  components: {
    store: { ok: boolean; error: string | null };
    worker: { flows: number; ticks: number; actorFailures: number; lastEvaluation: string | null };
    ingest: { batches: number; records: number; refused: number; lagSeconds: number | null; newestRecord: string | null };
    alarms: { outbox: number; relay: { healthy: boolean; published: number; failures: number } | null };
    nats: unknown;
  };
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
        <Card title="Worker" ok={c.worker.actorFailures === 0}>
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
      </div>
    </>
  );
}
