// Incidents (SPEC §11): flows that left OK together because of one cause — an input with its
// forwards, most of a LoB or of a country — as one row each, open first; every flow links to
// its page at the incident's start. Root acknowledges an open incident whole: each of its
// flows still in WARNING or OUTAGE.

import type { FlowRef, Status } from "../api";
import { EmptyRow, ErrorBox, Link, Loading, StatusPill, useApp, useLoad, useTitle } from "../app";
import { localTime } from "../format";
import { flowHref } from "../route";
import { AcknowledgeButton } from "../components/Acknowledge";

export interface IncidentRoot {
  country: string;
  lob?: string;
  kind?: FlowRef["kind"];
  flow?: string;
}

export interface Incident {
  id: string;
  root: IncidentRoot;
  flows: { country: string; lob: string; kind: FlowRef["kind"]; flow: string }[];
  start: string;
  end?: string;
  worstStatus: Status;
}

/** What an incident is about, in words: a flow, a LoB or a country. */
export function rootName(r: IncidentRoot): string {
  if (r.flow) return `${r.country} / ${r.lob} / ${r.flow}${r.kind === "forward" ? " (forward)" : ""}`;
  if (r.lob) return `${r.country} / ${r.lob} — most of the LoB`;
  return `${r.country} — most of the country`;
}

export function Incidents() {
  useTitle("Incidents");
  const { api, zones, session } = useApp();
  const root = session.role === "root";
  // The last seven days; open incidents first (the API's order).
  const from = new Date(Date.now() - 7 * 86_400_000).toISOString();
  const list = useLoad(() => api.get<{ incidents: Incident[] }>(`/incidents?from=${encodeURIComponent(from)}`), []);
  if (list.error) return <ErrorBox error={list.error} />;
  if (!list.data) return <Loading />;
  const incidents = list.data.incidents;
  return (
    <section aria-labelledby="incidents-title">
      <h1 id="incidents-title">Incidents</h1>
      <p className="muted">
        Flows that left OK together because of one cause: an input with its forwards in the same or the next tick, most of a LoB's or a
        country's inputs at once. The last seven days, open first.
      </p>
      <table className="table incidents-table">
        <thead>
          <tr>
            <th scope="col">Cause</th>
            <th scope="col">Worst</th>
            <th scope="col">Start (local)</th>
            <th scope="col">End</th>
            <th scope="col">Flows</th>
            {root ? <th scope="col">Acknowledge</th> : null}
          </tr>
        </thead>
        <tbody>
          {incidents.map((i) => {
            const zone = zones[i.root.country] ?? "UTC";
            return (
              <tr key={i.id} data-incident={i.id} data-open={i.end ? "false" : "true"}>
                <td>{rootName(i.root)}</td>
                <td>
                  <StatusPill status={i.worstStatus} />
                </td>
                <td>{localTime(i.start, zone)}</td>
                <td>{i.end ? localTime(i.end, zone) : <span className="tag">open</span>}</td>
                <td>
                  {i.flows.map((f) => (
                    <Link key={`${f.kind}/${f.flow}`} to={flowHref({ country: f.country, lob: f.lob, kind: f.kind, flow: f.flow }, { at: i.start })}>
                      {f.flow}{" "}
                    </Link>
                  ))}
                </td>
                {root ? (
                  <td>
                    {i.end ? null : (
                      <AcknowledgeButton<{ acknowledged: string[] }>
                        event={{ id: i.id, flowName: rootName(i.root) }}
                        path={`/incidents/${encodeURIComponent(i.id)}/ack`}
                        label="Acknowledge all"
                        onDone={() => list.reload()}
                      />
                    )}
                  </td>
                ) : null}
              </tr>
            );
          })}
          {incidents.length === 0 ? <EmptyRow columns={root ? 6 : 5}>No incident in the last seven days.</EmptyRow> : null}
        </tbody>
      </table>
    </section>
  );
}
