// The event log: status changes newest first, filtered, a page at a time, with new ones
// arriving live; every row links to its flow's page at the tick. By default it lists the
// changes a person acts on (to or from WARNING/OUTAGE, as they happened); N/A flips and
// revisions are one click away. Changes a silence covered and those held while their flow
// flapped are marked, as is the summary sent when it settled; root acknowledges the
// latest change of a flow to WARNING/OUTAGE, and everyone sees who did it and why.

import { useEffect, useRef, useState } from "react";
import { query } from "../api";
import type { FlowRef, Status, StatusEvent } from "../api";
import { EmptyRow, ErrorBox, Link, StatusPill, useAction, useApp, useEvery, useLoad, useThrottled } from "../app";
import { ago, localTime, percent } from "../format";
import { canAcknowledge, flappingSettled, latestOfFlows, silenceEnded } from "../operator";
import { flowHref } from "../route";
import { AckNote, AcknowledgeButton } from "./Acknowledge";

const PAGE = 50;
const KEEP = 1000;

export interface EventFilter {
  status: "" | Status;
  onlyOutages: boolean;
  country: string;
  /** Only the changes a person acts on (`actionable` of the API). */
  actionable: boolean;
}

const alarm = (s: Status) => s === "WARNING" || s === "OUTAGE";

/** A change a person acts on: to or from WARNING/OUTAGE, not a revision (the API's
 * `actionable`). */
export function actionable(e: StatusEvent): boolean {
  return !e.revision && (alarm(e.previousStatus) || alarm(e.newStatus));
}

/** Whether a change passes the filter (the server applies the same to a page). */
export function passes(e: StatusEvent, f: EventFilter, lob?: string, flow?: FlowRef): boolean {
  if (f.actionable && !actionable(e)) return false;
  if (f.onlyOutages && e.newStatus !== "OUTAGE") return false;
  if (f.status && e.newStatus !== f.status) return false;
  if (f.country && e.country !== f.country) return false;
  if (lob && e.lobName !== lob) return false;
  if (flow && (e.country !== flow.country || e.lobName !== flow.lob || e.kind !== flow.kind || e.flowName !== flow.flow)) return false;
  return true;
}

/** The newest first, each id once, at most `KEEP`. */
export function merge(newer: StatusEvent[], older: StatusEvent[]): StatusEvent[] {
  const seen = new Set<string>();
  const out: StatusEvent[] = [];
  for (const e of [...newer, ...older]) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    out.push(e);
    if (out.length >= KEEP) break;
  }
  return out;
}

export function EventLog(props: {
  countries?: string[];
  country?: string;
  lob?: string;
  title?: string;
  /** Called after a change was acknowledged here (counts elsewhere on the page changed). */
  onAcknowledged?: () => void;
}) {
  const { api, live, zones, session } = useApp();
  const root = session.role === "root";
  // Every change (N/A flips, revisions) is a choice that lasts across visits.
  const [filter, setFilter] = useState<EventFilter>(() => ({
    status: "",
    onlyOutages: false,
    country: props.country ?? "",
    actionable: localStorage.getItem("flowwatch.everyChange") !== "1",
  }));
  useEffect(() => localStorage.setItem("flowwatch.everyChange", filter.actionable ? "0" : "1"), [filter.actionable]);
  const [events, setEvents] = useState<StatusEvent[]>([]);
  const [next, setNext] = useState<string | undefined>();
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  // "27 s ago" stays true: redraw every 15 s.
  const [now, setNow] = useState(() => new Date());
  useEvery(() => setNow(new Date()), 15_000);

  const page = (cursor?: string) =>
    api.get<{ events: StatusEvent[]; next?: string }>(
      `/events${query({
        limit: PAGE,
        status: filter.status,
        onlyOutages: filter.onlyOutages,
        actionable: filter.actionable,
        country: filter.country,
        lob: props.lob,
        cursor,
      })}`,
    );

  // The newest page, again whenever the filter changes or the stream asks; older pages and
  // live changes are merged into what it gave.
  const first = useLoad(page, [filter, props.lob]);
  useEffect(() => {
    if (!first.data) return;
    setEvents(first.data.events);
    setNext(first.data.next);
  }, [first.data]);
  const older = useAction();

  // A live change says nothing of silences or flapping: the newest page, read again shortly after, does
  // (merged in unless the filter changed meanwhile).
  const asked = useRef(filter);
  asked.current = filter;
  const refresh = useThrottled(() => {
    const mine = asked.current;
    page().then(
      (p) => {
        if (mine === asked.current) setEvents((old) => merge(p.events, old));
      },
      () => undefined,
    );
  }, 1000);

  useEffect(() => {
    const a = live.onStatus((e) => {
      if (!passes(e, filter, props.lob)) return;
      setEvents((old) => merge([e], old));
      setFresh((f) => new Set(f).add(e.id));
      if (e.silenced === undefined) refresh();
    });
    const b = live.onReload(first.reload);
    return () => {
      a();
      b();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [live, filter, props.lob]);

  const more = () =>
    older.act(async () => {
      const p = await page(next);
      setEvents((old) => merge(old, p.events));
      setNext(p.next);
    });

  const set = (f: Partial<EventFilter>) => setFilter((old) => ({ ...old, ...f }));
  const latest = latestOfFlows(events);
  const acknowledged = (answer: StatusEvent) => {
    setEvents((old) => old.map((e) => (e.id === answer.id ? { ...e, ...answer } : e)));
    props.onAcknowledged?.();
  };

  return (
    <section className="events" aria-labelledby="events-title">
      <div className="section-head">
        <h2 id="events-title">{props.title ?? "Event log"}</h2>
        <div className="filters" role="group" aria-label="Filter events">
          <label>
            Status
            <select value={filter.status} disabled={filter.onlyOutages} onChange={(e) => set({ status: e.target.value as EventFilter["status"] })}>
              <option value="">any</option>
              <option value="OUTAGE">OUTAGE</option>
              <option value="WARNING">WARNING</option>
              <option value="OK">OK</option>
              <option value="N_A">N/A</option>
            </select>
          </label>
          <label className="check">
            <input type="checkbox" checked={filter.onlyOutages} onChange={(e) => set({ onlyOutages: e.target.checked })} />
            only outages
          </label>
          <label className="check" title="Also N/A changes (a daily flow between its files) and revisions (a late record re-deciding a tick already evaluated)">
            <input type="checkbox" checked={!filter.actionable} onChange={(e) => set({ actionable: !e.target.checked })} />
            every change
          </label>
          {props.countries && !props.country ? (
            <label>
              Country
              <select value={filter.country} onChange={(e) => set({ country: e.target.value })}>
                <option value="">all</option>
                {props.countries.map((c) => (
                  <option key={c}>{c}</option>
                ))}
              </select>
            </label>
          ) : null}
        </div>
      </div>
      <ErrorBox error={first.error ?? older.error} />
      <table className="table events-table">
        <thead>
          <tr>
            <th scope="col">Tick (local)</th>
            <th scope="col">Flow</th>
            <th scope="col">Change</th>
            <th scope="col" className="num">
              Difference
            </th>
            <th scope="col">Detected</th>
            <th scope="col">Acknowledged</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => {
            const zone = zones[e.country] ?? "UTC";
            const flow: FlowRef = { country: e.country, lob: e.lobName, kind: e.kind, flow: e.flowName };
            return (
              <tr
                key={e.id}
                className={[fresh.has(e.id) ? "fresh" : "", e.silenced ? "silenced" : "", e.flapping ? "held" : ""].filter(Boolean).join(" ") || undefined}
                data-event={e.id}
                data-silenced={e.silenced ? "true" : undefined}
                data-flapping={e.flapping ? "true" : undefined}
              >
                <td>{localTime(e.tickTime, zone)}</td>
                <td>
                  <Link to={flowHref(flow, { at: e.tickTime })} title="Open the flow at this tick">
                    {e.country} / {e.lobName} / {e.flowName}
                  </Link>
                  {e.kind === "forward" ? <span className="tag">forward</span> : null}
                  {e.revision ? (
                    <span className="tag" title="A late record changed an already evaluated tick">
                      revised
                    </span>
                  ) : null}
                  {e.silenced ? (
                    <span className="tag tag-silenced" title="A silence covered this tick: stored and listed, not alarmed">
                      silenced
                    </span>
                  ) : null}
                  {e.flapping ? (
                    <span className="tag tag-silenced" title="The flow was flapping (too many status changes in 24 h): stored and listed, not alarmed">
                      held: flapping
                    </span>
                  ) : null}
                  {flappingSettled(e) ? (
                    <span className="tag tag-alarm" title="Alarmed when the flapping flow settled: its status now, after the changes held meanwhile">
                      flapping ended
                    </span>
                  ) : null}
                  {silenceEnded(e) ? (
                    <span className="tag tag-alarm" title="Alarmed when the flow's silence ended: it was still not OK">
                      silence ended
                    </span>
                  ) : null}
                </td>
                <td className="change">
                  <StatusPill status={e.previousStatus} /> → <StatusPill status={e.newStatus} />
                </td>
                <td className="num">{percent(e.difference)}</td>
                <td className="muted">
                  {localTime(e.time, zone)} <span className="small">({ago(e.time, now)})</span>
                </td>
                <td className="ack">
                  {e.acknowledged ? (
                    <AckNote ack={e.acknowledged} zone={zone} now={now} />
                  ) : root && canAcknowledge(e, latest) ? (
                    <AcknowledgeButton event={e} onDone={acknowledged} />
                  ) : null}
                </td>
              </tr>
            );
          })}
          {events.length === 0 ? (
            <EmptyRow columns={6}>
              {filter.actionable ? (
                <>
                  No changes to act on.{" "}
                  <button type="button" className="secondary" onClick={() => set({ actionable: false })}>
                    Show every change
                  </button>
                </>
              ) : (
                "No status changes match."
              )}
            </EmptyRow>
          ) : null}
        </tbody>
      </table>
      {next ? (
        <button type="button" className="secondary" onClick={() => void more()}>
          Older events
        </button>
      ) : null}
    </section>
  );
}
