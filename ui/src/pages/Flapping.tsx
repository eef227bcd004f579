// Flapping flows (flap damping): those whose status changed more than their
// `flappingChanges` times in ticks of the last 24 h, most changes first, each linking to its
// page and its LoB's. The change that made a flow flap was alarmed; the next are stored and
// listed, held; one summary is alarmed when it settles.

import { useState } from "react";
import type { FlappingFlow } from "../api";
import { EmptyRow, ErrorBox, Link, Loading, REFRESH_MS, useApp, useEvery, useLiveReload, useLoad, useTitle } from "../app";
import { SortHeader } from "../components/SortHeader";
import { flowHref, href } from "../route";
import { sortRows } from "../sort";
import type { Sort, SortValue } from "../sort";

export type FlappingColumn = "flow" | "changes" | "limit";

/** What a flapping flow is sorted by in a column. */
export function flappingValue(f: FlappingFlow, column: FlappingColumn): SortValue {
  switch (column) {
    case "flow":
      return `${f.country} / ${f.lob} / ${f.flow}`;
    case "changes":
      return f.changes24h;
    case "limit":
      return f.flappingChanges;
  }
}

export function Flapping() {
  useTitle("Flapping");
  const { api } = useApp();
  const list = useLoad(() => api.get<{ flows: FlappingFlow[] }>("/flapping").then((x) => x.flows), []);
  useLiveReload(list.reload);
  useEvery(list.reload, REFRESH_MS);
  // The API's order: most changes first.
  const [sort, setSort] = useState<Sort<FlappingColumn>>({ key: "changes", dir: "descending" });
  const flows = list.data ? sortRows(list.data, (f) => flappingValue(f, sort.key), sort.dir) : [];
  return (
    <section aria-labelledby="flapping-title">
      <h1 id="flapping-title">
        Flapping {list.data ? <span className="muted">({list.data.length})</span> : null}
      </h1>
      <p className="muted">
        Flows whose status changed more than their <code>flappingChanges</code> times in ticks of the last 24 h. The change that made a flow
        flap was alarmed; the next are stored and listed in the event log, held, not alarmed. When the flow settles (half as many changes in
        24 h or fewer) one change is alarmed if its status differs from the last one alarmed.
      </p>
      <ErrorBox error={list.error} />
      {!list.data ? (
        list.error ? null : <Loading />
      ) : (
        <table className="table flapping-table">
          <thead>
            <tr>
              <SortHeader column="flow" sort={sort} onSort={setSort}>
                Flow
              </SortHeader>
              <SortHeader column="changes" sort={sort} onSort={setSort} first="descending" className="num" title="Status changes in ticks of the last 24 hours">
                Changes 24 h
              </SortHeader>
              <SortHeader column="limit" sort={sort} onSort={setSort} first="descending" className="num" title="The flow's flappingChanges: more changes in 24 h make it flap">
                Flaps above
              </SortHeader>
              <th scope="col">Settles at</th>
            </tr>
          </thead>
          <tbody>
            {flows.map((f) => (
              <tr key={`${f.country}/${f.lob}/${f.kind}/${f.flow}`} data-flapping-flow={`${f.country}/${f.lob}/${f.kind}/${f.flow}`}>
                <th scope="row">
                  <Link to={href({ page: "lob", country: f.country, lob: f.lob })} title="The LoB's flows">
                    {f.country} / {f.lob}
                  </Link>{" "}
                  / <Link to={flowHref(f)}>{f.flow}</Link>
                  {f.kind === "forward" ? <span className="tag">forward</span> : null}
                </th>
                <td className="num changes" data-changes={f.changes24h}>
                  {f.changes24h}
                </td>
                <td className="num">{f.flappingChanges}</td>
                <td className="muted">
                  {Math.floor(f.flappingChanges / 2)} or fewer changes in 24 h
                </td>
              </tr>
            ))}
            {flows.length === 0 ? <EmptyRow columns={4}>No flow is flapping: none changed status more than its flappingChanges times in the last 24 h.</EmptyRow> : null}
          </tbody>
        </table>
      )}
    </section>
  );
}
