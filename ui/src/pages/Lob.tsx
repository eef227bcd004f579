// A LoB: its inputs, each with its forwards, their settings, traffic level and status, which
// are acknowledged, which silenced and which flapping (status changes in 24 h), sortable by
// any column; root toggles flows, silences the LoB and edits its own settings.

import { useEffect, useMemo, useState } from "react";
import type { FormEvent } from "react";
import type { FlowSettings, LobFlow, Shown, Silence } from "../api";
import { changeConfig, ErrorBox, REFRESH_MS, useAction, useEvery, Link, Loading, StatusPill, useApp, useLiveReload, useLoad, useTitle, useZone } from "../app";
import { check, settingsText } from "../configEdit";
import type { Problem } from "../configEdit";
import { JsonEditor } from "../components/JsonEditor";
import { granularitySeconds, localDate, localTime, percent, rate } from "../format";
import { backtestBody, lastDays, rangeProblem } from "../backtest";
import type { BacktestResult } from "../backtest";
import { BacktestSummary } from "../components/Backtest";
import { SilenceForm } from "../components/SilenceForm";
import { SortHeader } from "../components/SortHeader";
import { sortRows } from "../sort";
import type { Direction, Sort, SortValue } from "../sort";
import { ackSummary, ackText, scopeText, silencing, windowText } from "../operator";
import { flowHref, href } from "../route";

interface LobConfig {
  settings: FlowSettings;
  inputs: Record<string, { config: FlowSettings }>;
  forwards: Record<string, { config: FlowSettings }>;
}

/** Inputs in name order, each followed by its forwards; forwards of unknown inputs last. */
export function ordered(flows: LobFlow[]): { flow: LobFlow; depth: number }[] {
  const inputs = flows.filter((f) => f.kind === "input").sort((a, b) => a.name.localeCompare(b.name));
  const forwards = flows.filter((f) => f.kind === "forward").sort((a, b) => a.name.localeCompare(b.name));
  const out: { flow: LobFlow; depth: number }[] = [];
  const placed = new Set<string>();
  for (const i of inputs) {
    out.push({ flow: i, depth: 0 });
    for (const f of forwards) {
      if (f.input === i.name) {
        out.push({ flow: f, depth: 1 });
        placed.add(f.name);
      }
    }
  }
  for (const f of forwards) if (!placed.has(f.name)) out.push({ flow: f, depth: 0 });
  return out;
}

/** The columns the flow table sorts by. */
export type LobColumn = "flow" | "granularity" | "soft" | "hard" | "level" | "last" | "status" | "changes" | "enabled";

/** The way a first click sorts each column: names A→Z, the lowest traffic level first, the
 * biggest tick, the worst status and the most changes first, disabled flows first. */
const FIRST: Record<LobColumn, Direction> = {
  flow: "ascending",
  granularity: "ascending",
  soft: "ascending",
  hard: "ascending",
  level: "ascending",
  last: "descending",
  status: "descending",
  changes: "descending",
  enabled: "ascending",
};

/** Statuses from the least to the most alarming (the dashboard tile's order, reversed). */
const SEVERITY: Record<Shown, number> = { DISABLED: 0, OK: 1, N_A: 2, WARNING: 3, OUTAGE: 4 };

/** What a flow is sorted by in a column: the last tick as bytes per second, so that flows of
 * different tick lengths compare. */
export function lobValue(f: LobFlow, column: LobColumn): SortValue {
  switch (column) {
    case "flow":
      return f.name;
    case "granularity":
      return granularitySeconds(f.config.granularity);
    case "soft":
      return f.config.softAlarmLevel;
    case "hard":
      return f.config.hardAlarmLevel;
    case "level":
      return f.latest?.difference ?? null;
    case "last": {
      const s = granularitySeconds(f.config.granularity);
      return f.latest && s ? f.latest.actual / s : null;
    }
    case "status":
      return SEVERITY[f.shown];
    case "changes":
      return f.changes24h ?? null;
    case "enabled":
      return f.config.enabled;
  }
}

/**
 * The table's rows: by flow, the inputs A→Z (or Z→A) each followed by its forwards; by any
 * other column flat, in that column's order, ties in the flow order.
 */
export function sortedFlows(flows: LobFlow[], sort: Sort<LobColumn>): { flow: LobFlow; depth: number }[] {
  const tree = ordered(flows);
  if (sort.key === "flow") {
    if (sort.dir === "ascending") return tree;
    const groups: { flow: LobFlow; depth: number }[][] = [];
    for (const row of tree) {
      if (row.depth === 0 || groups.length === 0) groups.push([row]);
      else groups[groups.length - 1].push(row);
    }
    return groups.reverse().flat();
  }
  return sortRows(
    tree.map((r) => r.flow),
    (f) => lobValue(f, sort.key),
    sort.dir,
  ).map((flow) => ({ flow, depth: 0 }));
}

export function Lob({ country, lob, tab }: { country: string; lob: string; tab?: "config" }) {
  useTitle(`${country} / ${lob}`);
  const { api, session, navigate } = useApp();
  const zone = useZone(country);
  const root = session.role === "root";
  const path = `${encodeURIComponent(country)}/${encodeURIComponent(lob)}`;
  const lobConfig = `/config/countries/${encodeURIComponent(country)}/lobs/${encodeURIComponent(lob)}`;
  const d = useLoad(() => api.get<{ flows: LobFlow[] }>(`/flows/${path}`), [path]);
  const cfg = useLoad<LobConfig | null>(
    () => api.get<LobConfig>(lobConfig).catch(() => null),
    [path],
  );
  const silences = useLoad(() => api.get<{ silences: Silence[] }>("/silences").then((x) => x.silences), []);
  useLiveReload(d.reload, (e) => e.country === country && e.lobName === lob);
  useEvery(() => {
    d.reload();
    silences.reload();
  }, REFRESH_MS);
  const [silencingLob, setSilencingLob] = useState(false);
  const [sort, setSort] = useState<Sort<LobColumn>>({ key: "flow", dir: "ascending" });
  const header = (column: LobColumn, label: string, className?: string, title?: string) => (
    <SortHeader column={column} sort={sort} onSort={setSort} first={FIRST[column]} className={className} title={title}>
      {label}
    </SortHeader>
  );
  const quietNow = (f: LobFlow) => silencing(silences.data ?? [], { country, lob, kind: f.kind, flow: f.name }, new Date(), zone);
  const { error, act } = useAction(() => {
    d.reload();
    cfg.reload();
  });
  const flowConfig = (f: LobFlow) =>
    `/config/flows/${path}/${f.kind}/${encodeURIComponent(f.name)}`;
  const own = (f: LobFlow) => (f.kind === "input" ? cfg.data?.inputs : cfg.data?.forwards)?.[f.name];

  return (
    <>
      <nav className="crumbs" aria-label="Breadcrumbs">
        <Link to="/">Dashboard</Link> / <Link to={`/country/${encodeURIComponent(country)}`}>{country}</Link> / <span>{lob}</span>
      </nav>
      <div className="section-head">
        <h1>
          {country} / {lob}
        </h1>
        {root && !silencingLob ? (
          <button type="button" className="secondary" onClick={() => setSilencingLob(true)} title="Keep the LoB's flows from alarming for a while">
            Silence…
          </button>
        ) : null}
      </div>
      {silencingLob ? (
        <SilenceForm
          scope={{ country, lob }}
          title={`Silence ${country} / ${lob}`}
          onCancel={() => setSilencingLob(false)}
          onCreated={() => {
            setSilencingLob(false);
            silences.reload();
          }}
        />
      ) : null}
      <nav className="tabs" aria-label="Views">
        <Link to={href({ page: "lob", country, lob })} current={!tab}>
          Flows
        </Link>
        <Link to={href({ page: "lob", country, lob, tab: "config" })} current={tab === "config"}>
          LoB config
        </Link>
      </nav>
      <ErrorBox error={error ?? d.error} />
      {!tab && d.data ? <AlarmSummary flows={d.data.flows} silenced={d.data.flows.filter((f) => quietNow(f)).length} /> : null}
      {tab === "config" ? (
        cfg.data === undefined ? (
          <Loading />
        ) : (
          <LobSettings
            settings={cfg.data?.settings ?? {}}
            root={root}
            today={localDate(new Date(), zone)}
            backtest={(from, to, candidate) =>
              api.request<BacktestResult>("POST", "/backtest", backtestBody(from, to, { country, lob }, candidate))
            }
            save={(s) =>
              act(() => changeConfig(api, country, "PUT", lobConfig, { settings: s })).then(() =>
                navigate(href({ page: "lob", country, lob, tab: "config" }), true),
              )
            }
          />
        )
      ) : !d.data ? (
        <Loading />
      ) : (
        <table className="table flows-table">
          <thead>
            <tr>
              {header("flow", "Flow", undefined, "Inputs by name, each followed by its forwards")}
              {header("granularity", "Granularity")}
              {header("soft", "Soft", "num", "The soft alarm level")}
              {header("hard", "Hard", "num", "The hard alarm level")}
              {header("level", "Traffic level", undefined, "The latest tick's difference")}
              {header("last", "Last tick", "num", "The latest tick's bytes, as a rate")}
              {header("status", "Status", undefined, "The worst first")}
              {header("changes", "Changes 24 h", "num", "Status changes in ticks of the last 24 hours; more than the flow's flappingChanges: flapping")}
              {header("enabled", "Enabled")}
              {root ? <th scope="col">Remove</th> : null}
            </tr>
          </thead>
          <tbody>
            {sortedFlows(d.data.flows, sort).map(({ flow: f, depth }) => {
              const level = f.latest?.difference ?? null;
              const quiet = quietNow(f);
              return (
                <tr key={`${f.kind}/${f.name}`} data-flow={f.name} data-flapping={f.flapping ? "true" : undefined} className={f.kind}>
                  <th scope="row" style={{ paddingLeft: `${0.5 + depth * 1.5}rem` }}>
                    <Link to={flowHref({ country, lob, kind: f.kind, flow: f.name })}>{f.name}</Link>
                    {f.kind === "forward" ? <span className="tag">forward</span> : null}
                  </th>
                  <td>{String(f.config.granularity)}</td>
                  <td className="num">{f.config.softAlarmLevel}</td>
                  <td className="num">{f.config.hardAlarmLevel}</td>
                  <td>
                    <span className="level" title={f.latest ? `difference of the tick at ${localTime(f.latest.tickStart, zone)}` : "no tick yet"}>
                      <span
                        className={`level-bar level-${f.latest?.status ?? "N_A"}`}
                        style={{ width: `${Math.max(0, Math.min(1.5, level ?? 0)) * (100 / 1.5)}%` }}
                      />
                      <span className="level-text">{percent(level)}</span>
                    </span>
                  </td>
                  <td className="num">{f.latest ? rate(f.latest.actual, String(f.config.granularity)) : "–"}</td>
                  <td>
                    <StatusPill status={f.shown} />
                    {f.acknowledged ? (
                      <span className="tag tag-ack" data-acknowledged="true" title={`Acknowledged by ${ackText(f.acknowledged, zone)}`}>
                        acknowledged
                      </span>
                    ) : null}
                    {quiet ? (
                      <span className="tag tag-silenced" data-silenced="true" title={`Silenced (${scopeText(quiet.scope)}), ${windowText(quiet, zone)}: ${quiet.comment}`}>
                        silenced
                      </span>
                    ) : null}
                  </td>
                  <td className="num changes" data-changes={f.changes24h ?? ""}>
                    {f.flapping ? (
                      <span
                        className="tag tag-flapping"
                        title={`More than ${f.config.flappingChanges} status changes in 24 h: its changes are stored and listed but not alarmed until it settles (${Math.floor(f.config.flappingChanges / 2)} or fewer)`}
                      >
                        flapping
                      </span>
                    ) : null}{" "}
                    {f.changes24h ?? "–"}
                  </td>
                  <td>
                    {root ? (
                      <input
                        type="checkbox"
                        aria-label={`${f.name} enabled`}
                        checked={f.config.enabled}
                        onChange={(e) =>
                          void act(() => changeConfig(api, country, "PATCH", flowConfig(f), { settings: { enabled: e.target.checked } }))
                        }
                      />
                    ) : f.config.enabled ? (
                      "yes"
                    ) : (
                      "no"
                    )}
                  </td>
                  {root ? (
                    <td>
                      {own(f) ? (
                        <button
                          type="button"
                          className="danger small"
                          aria-label={`Remove ${f.name}`}
                          title="Remove the flow from the configuration with its own settings; its traffic and ticks stay, and traffic still arriving brings it back with inherited settings"
                          onClick={() => {
                            if (
                              confirm(
                                `Remove ${f.name} from the configuration? Its own settings go; its traffic and ticks stay, and traffic still arriving brings it back with inherited settings (disable it to silence it).`,
                              )
                            )
                              void act(() => changeConfig(api, country, "DELETE", flowConfig(f)));
                          }}
                        >
                          Remove
                        </button>
                      ) : (
                        <span className="muted" title="Seen in traffic, not in the configuration">
                          discovered
                        </span>
                      )}
                    </td>
                  ) : null}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {root && !tab && d.data ? <AddFlow inputs={d.data.flows.filter((f) => f.kind === "input").map((f) => f.name)} add={(kind, name) => act(() => changeConfig(api, country, "PUT", `/config/flows/${path}/${kind}/${encodeURIComponent(name)}`, { settings: {} }))} /> : null}
    </>
  );
}

/** How many of the LoB's flows are alarmed, how many of those acknowledged, how many silenced. */
function AlarmSummary({ flows, silenced }: { flows: LobFlow[]; silenced: number }) {
  const alarmed = flows.filter((f) => f.shown === "WARNING" || f.shown === "OUTAGE");
  const acked = alarmed.filter((f) => f.acknowledged).length;
  if (alarmed.length === 0 && silenced === 0) return null;
  return (
    <p className="muted small" data-testid="lob-alarms">
      {alarmed.length ? `${alarmed.length} in WARNING or OUTAGE, ${ackSummary(acked, alarmed.length)}` : "No flow in WARNING or OUTAGE"}
      {silenced ? ` · ${silenced} silenced now` : ""}
    </p>
  );
}

/** Adds an input, or a forward (`INPUT:TARGET`) of one, to the configuration. */
function AddFlow({ inputs, add }: { inputs: string[]; add: (kind: "input" | "forward", name: string) => Promise<boolean> }) {
  const [input, setInput] = useState("");
  const [of, setOf] = useState("");
  const [target, setTarget] = useState("");
  const submit = (kind: "input" | "forward") => async (e: FormEvent) => {
    e.preventDefault();
    const name = kind === "input" ? input.trim() : `${of || inputs[0]}:${target.trim()}`;
    if (await add(kind, name)) {
      setInput("");
      setTarget("");
    }
  };
  return (
    <div className="add-flows">
      <form className="inline" onSubmit={submit("input")} aria-label="Add an input">
        <label>
          New input
          <input value={input} onChange={(e) => setInput(e.target.value)} required pattern="[^:]+" title="An input name has no colon (a forward is INPUT:TARGET)" placeholder="e.g. MSSBRN1A" />
        </label>
        <button type="submit">Add input</button>
      </form>
      {inputs.length ? (
        <form className="inline" onSubmit={submit("forward")} aria-label="Add a forward">
          <label>
            Forward of
            <select value={of || inputs[0]} onChange={(e) => setOf(e.target.value)}>
              {inputs.map((i) => (
                <option key={i}>{i}</option>
              ))}
            </select>
          </label>
          <label>
            to
            <input value={target} onChange={(e) => setTarget(e.target.value)} required placeholder="e.g. CZFOX-SMS" />
          </label>
          <button type="submit">Add forward</button>
        </form>
      ) : null}
    </div>
  );
}

function LobSettings(p: {
  settings: FlowSettings;
  root: boolean;
  /** The LoB's country's date. */
  today: string;
  save: (s: FlowSettings) => Promise<void>;
  backtest: (from: string, to: string, candidate: FlowSettings) => Promise<BacktestResult>;
}) {
  const initial = useMemo(() => settingsText(p.settings), [p.settings]);
  const [text, setText] = useState(initial);
  useEffect(() => setText(initial), [initial]);
  const checked = check(text);
  const problems: Problem[] = checked.ok ? [] : checked.problems;
  const [range, setRange] = useState(() => lastDays(p.today, 14));
  const [result, setResult] = useState<{ result: BacktestResult; from: string; to: string } | null>(null);
  const tested = useAction();
  const rangeWrong = rangeProblem(range.from, range.to);
  const run = (s: FlowSettings) =>
    tested.act(async () => {
      setResult(null);
      setResult({ result: await p.backtest(range.from, range.to, s), ...range });
    });
  return (
    <section>
      <p className="muted">
        The LoB's own settings (SPEC §5): every input and forward of the LoB inherits them unless it sets its own.{" "}
        <code>{"{\"enabled\": false}"}</code> disables every flow of the LoB.
      </p>
      <JsonEditor id="lob-config" label="LoB settings (JSON)" value={text} onChange={setText} problems={problems} readOnly={!p.root} />
      <div className="buttons">
        {p.root ? (
          <button type="button" disabled={!checked.ok || text === initial} onClick={() => checked.ok && void p.save(checked.settings)}>
            Save LoB settings
          </button>
        ) : null}
        <label>
          Backtest from
          <input type="date" name="backtest-from" value={range.from} onChange={(e) => setRange({ ...range, from: e.target.value })} />
        </label>
        <label>
          to (excluded)
          <input type="date" name="backtest-to" value={range.to} onChange={(e) => setRange({ ...range, to: e.target.value })} />
        </label>
        <button
          type="button"
          className="secondary"
          disabled={!checked.ok || rangeWrong !== null || tested.busy}
          title={rangeWrong ?? "Replay the LoB's flows over these days with these settings and with those in force; nothing is saved"}
          onClick={() => checked.ok && void run(checked.settings)}
        >
          {tested.busy ? "Backtesting…" : "Backtest"}
        </button>
        {rangeWrong ? <span className="muted small">{rangeWrong}</span> : null}
      </div>
      <ErrorBox error={tested.error} />
      {result ? <BacktestSummary result={result.result} from={result.from} to={result.to} perFlow /> : null}
    </section>
  );
}
