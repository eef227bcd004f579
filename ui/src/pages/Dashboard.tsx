// The dashboard: a tile per country with its flows per status and how many of its alarmed
// flows are acknowledged, and the event log.

import type { Counts, Shown } from "../api";
import { Link, Loading, ErrorBox, SHOWN, useApp, useLiveReload, useLoad, useTitle } from "../app";
import { EventLog } from "../components/EventLog";
import { localTime } from "../format";
import { ackSummary } from "../operator";

/** The worst status with a flow in it: what colours the tile. */
export function worst(c: Counts): Shown {
  for (const s of ["OUTAGE", "WARNING", "N_A", "OK"] as const) if (c[s] > 0) return s;
  return "DISABLED";
}

export function Dashboard() {
  useTitle("Dashboard");
  const { api, zones } = useApp();
  const d = useLoad(() => api.get<{ countries: Record<string, Counts>; acknowledged?: Record<string, number> }>("/dashboard"), []);
  useLiveReload(d.reload);
  if (!d.data) return d.error ? <ErrorBox error={d.error} /> : <Loading />;
  const countries = Object.entries(d.data.countries);
  const acked = d.data.acknowledged ?? {};
  return (
    <>
      <h1>Dashboard</h1>
      <ErrorBox error={d.error} />
      <div className="tiles" role="list">
        {countries.map(([code, counts]) => {
          const alarmed = counts.WARNING + counts.OUTAGE;
          const summary = ackSummary(acked[code] ?? 0, alarmed);
          return (
            <div key={code} role="listitem" data-country={code}>
              <Link to={`/country/${encodeURIComponent(code)}`} className={`tile tile-${worst(counts)}`}>
                <div className="tile-head">
                  <span className="tile-code">{code}</span>
                  <span className="muted small">{zones[code] ? localTime(new Date(), zones[code]) : ""}</span>
                </div>
                <dl className="counts">
                  {SHOWN.map((s) => (
                    <div key={s} className={`count count-${s}`}>
                      <dt>{s === "N_A" ? "N/A" : s}</dt>
                      <dd data-count={s}>{counts[s]}</dd>
                    </div>
                  ))}
                </dl>
                <div
                  className={`tile-ack${alarmed > 0 && (acked[code] ?? 0) < alarmed ? " open" : ""}`}
                  data-acknowledged={acked[code] ?? 0}
                  title="Flows in WARNING or OUTAGE that a person acknowledged"
                >
                  {summary || "no flow in WARNING or OUTAGE"}
                </div>
              </Link>
            </div>
          );
        })}
        {countries.length === 0 ? <p className="muted">No flows yet: ingest traffic or add a country in Settings.</p> : null}
      </div>
      <EventLog countries={countries.map(([c]) => c)} onAcknowledged={d.reload} />
    </>
  );
}
