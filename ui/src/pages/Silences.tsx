// Silences (maintenance windows, SPEC §11): what keeps flows quiet now, what will, what did;
// each with its scope in words, its window in the country's zone, why and who. Root creates
// them and ends the active and scheduled ones early.

import { useState } from "react";
import type { FlowScope, Silence, SilenceState } from "../api";
import { EmptyRow, ErrorBox, Link, Loading, useAction, useApp, useEvery, useLoad, useTitle } from "../app";
import { SilenceForm } from "../components/SilenceForm";
import { localTime } from "../format";
import { byState, scopeText, STATE_ORDER, stateText, windowText } from "../operator";
import { flowHref, href } from "../route";

const HEADINGS: Record<SilenceState, [string, string]> = {
  active: ["Active", "No silence keeps flows quiet now."],
  scheduled: ["Scheduled", "No silence starts later."],
  ended: ["Ended", "No silence has ended yet."],
};

/** The ended silences shown before "Show all". */
const ENDED_SHOWN = 20;

/** The scope's page: the flow's, the LoB's or the country's. */
function scopeHref(s: FlowScope): string {
  if (s.lob && s.flow && s.kind) return flowHref({ country: s.country, lob: s.lob, kind: s.kind, flow: s.flow });
  if (s.lob) return href({ page: "lob", country: s.country, lob: s.lob });
  return href({ page: "country", country: s.country });
}

export function Silences() {
  useTitle("Silences");
  const { api, session, zones } = useApp();
  const root = session.role === "root";
  const list = useLoad(() => api.get<{ silences: Silence[] }>("/silences").then((x) => x.silences), []);
  // Silences start and end by the clock: read them again every minute.
  const [now, setNow] = useState(() => new Date());
  useEvery(() => {
    setNow(new Date());
    list.reload();
  }, 60_000);
  const ended = useAction(list.reload);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<Silence | null>(null);
  const [allEnded, setAllEnded] = useState(false);

  const end = (s: Silence) => {
    if (confirm(`End the silence of ${scopeText(s.scope)} now? Status changes from now on are alarmed again.`))
      void ended.act(() => api.request("DELETE", `/silences/${encodeURIComponent(s.id)}`));
  };
  const countries = Object.keys(zones).sort();

  return (
    <section aria-labelledby="silences-title">
      <div className="section-head">
        <h1 id="silences-title">Silences</h1>
        {root && !creating ? (
          <button
            type="button"
            onClick={() => {
              setCreated(null);
              setCreating(true);
            }}
          >
            New silence
          </button>
        ) : null}
      </div>
      <p className="muted">
        Maintenance windows: status changes of the flows in scope are stored and listed, marked silenced, but not alarmed. An input's silence
        covers its forwards. Times are the country's.
      </p>
      {creating ? (
        <SilenceForm
          scope={{ country: countries[0] ?? "" }}
          onCancel={() => setCreating(false)}
          onCreated={(s) => {
            setCreating(false);
            setCreated(s);
            list.reload();
          }}
        />
      ) : null}
      {created ? (
        <p className="ok-text" role="status">
          Silence of {scopeText(created.scope)} created.
        </p>
      ) : null}
      <ErrorBox error={ended.error} />
      {list.error ? <ErrorBox error={list.error} /> : null}
      {!list.data ? (
        list.error ? null : <Loading />
      ) : (
        STATE_ORDER.map((state) => {
          const all = byState(list.data!)[state];
          const shown = state === "ended" && !allEnded ? all.slice(0, ENDED_SHOWN) : all;
          const columns = root && state !== "ended" ? 5 : 4;
          return (
            <section key={state} aria-labelledby={`silences-${state}`} data-silences={state}>
              <h2 id={`silences-${state}`}>
                {HEADINGS[state][0]} <span className="muted">({all.length})</span>
              </h2>
              <table className="table silences-table">
                <thead>
                  <tr>
                    <th scope="col">Scope</th>
                    <th scope="col">Window</th>
                    <th scope="col">Reason</th>
                    <th scope="col">Created</th>
                    {columns === 5 ? <th scope="col">Actions</th> : null}
                  </tr>
                </thead>
                <tbody>
                  {shown.map((s) => {
                    const zone = zones[s.scope.country] ?? "UTC";
                    return (
                      <tr key={s.id} data-silence={s.id} data-state={s.state} className={`silence-${s.state}`}>
                        <th scope="row">
                          <Link to={scopeHref(s.scope)}>{scopeText(s.scope)}</Link>
                        </th>
                        <td>
                          {windowText(s, zone)}
                          <div className={`small ${s.state === "active" ? "" : "muted"}`}>
                            <span className={`tag tag-${s.state}`}>{s.state}</span> {stateText(s, now, zone)}
                          </div>
                        </td>
                        <td className="reason">{s.comment}</td>
                        <td className="small">
                          {s.createdBy}
                          <div className="muted">{localTime(s.createdAt, zone)}</div>
                        </td>
                        {columns === 5 ? (
                          <td>
                            <button type="button" className="danger small" onClick={() => end(s)} aria-label={`End the silence of ${scopeText(s.scope)} now`}>
                              End now
                            </button>
                          </td>
                        ) : null}
                      </tr>
                    );
                  })}
                  {all.length === 0 ? <EmptyRow columns={columns}>{HEADINGS[state][1]}</EmptyRow> : null}
                </tbody>
              </table>
              {shown.length < all.length ? (
                <button type="button" className="secondary" onClick={() => setAllEnded(true)}>
                  Show all {all.length} ended
                </button>
              ) : null}
            </section>
          );
        })
      )}
    </section>
  );
}
