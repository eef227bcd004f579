// A flow: traffic and difference charts over a range (deep-linked), the tick an event named,
// its ticks, its effective settings and an editor of its own with a simulation preview and a
// backtest; whether it is silenced, and its alarm with who acknowledged it (root silences it
// and acknowledges the alarm here).

import { useEffect, useMemo, useState } from "react";
import type { FormEvent } from "react";
import { flowPath, query } from "../api";
import type { EffectiveConfig, FlowRef, FlowSettings, LobFlow, Silence, StatusEvent, Tick } from "../api";
import { changeConfig, EmptyRow, ErrorBox, REFRESH_MS, useAction, useEvery, Link, Loading, StatusPill, useApp, useLiveReload, useLoad, useTitle, useZone } from "../app";
import { chartData, compare, tickAt } from "../chartData";
import type { Comparison } from "../chartData";
import { check, FIELD_NAMES, inheritedSettings, ownSettings, settingsText } from "../configEdit";
import { explain, type Levels } from "../explain";
import { backtestBody, rangeProblem } from "../backtest";
import type { BacktestResult } from "../backtest";
import { BacktestSummary } from "../components/Backtest";
import { Chart } from "../components/Chart";
import { JsonEditor } from "../components/JsonEditor";
import { AcknowledgeButton } from "../components/Acknowledge";
import { SilenceForm } from "../components/SilenceForm";
import { ackText, covers, inWindow, latestOfFlows, scopeText, stateText, windowText } from "../operator";
import { addDays, bytes, localDate, localTime, percent, rate } from "../format";
import { flowHref, range } from "../route";
import type { FlowView } from "../route";

const GRANULARITIES = ["", "5m", "15m", "30m", "1h", "2h", "6h", "1d"];
const RANGES: [string, number][] = [
  ["1 day", 1],
  ["3 days", 3],
  ["7 days", 7],
  ["28 days", 28],
];

export function Flow({ flow, view }: { flow: FlowRef; view: FlowView }) {
  useTitle(flow.flow);
  const { api, session, navigate } = useApp();
  const zone = useZone(flow.country);
  const root = session.role === "root";
  const { from, to } = range(view, zone);
  const path = flowPath(flow);
  const go = (v: FlowView) => navigate(flowHref(flow, v), true);

  const ticks = useLoad(
    () => api.get<{ ticks: Tick[] }>(`/flows/${path}/ticks${query({ from, to, granularity: view.granularity })}`).then((t) => t.ticks),
    [path, from, to, view.granularity],
  );
  const config = useLoad(() => api.get<EffectiveConfig>(`/flows/${path}/config`), [path]);
  const siblings = useLoad(
    () =>
      api
        .get<{ flows: LobFlow[] }>(`/flows/${encodeURIComponent(flow.country)}/${encodeURIComponent(flow.lob)}`)
        .then((x) => x.flows, () => [] as LobFlow[]),
    [flow.country, flow.lob],
  );
  const me = (e: { country: string; lobName: string; kind: string; flowName: string }) =>
    e.country === flow.country && e.lobName === flow.lob && e.kind === flow.kind && e.flowName === flow.flow;
  useLiveReload(ticks.reload, me);
  useLiveReload(siblings.reload, me);
  const silences = useLoad(() => api.get<{ silences: Silence[] }>("/silences").then((x) => x.silences), []);
  const [silencing, setSilencing] = useState(false);
  // A range reaching today grows by a tick every tick, with or without a status change.
  useEvery(ticks.reload, REFRESH_MS, to > localDate(new Date(), zone));

  const [preview, setPreview] = useState<{ ticks: Tick[]; comparison: Comparison } | null>(null);
  const [saved, setSaved] = useState<number | null>(null);
  // A preview is of one range and tick length: another one shows the stored ticks again.
  useEffect(() => setPreview(null), [from, to, view.granularity]);
  const shown = preview?.ticks ?? ticks.data ?? [];
  const data = useMemo(() => chartData(shown), [shown]);
  const at = view.at ? tickAt(shown, view.at) : undefined;
  const effective = config.data?.config;
  const g = view.granularity || String(effective?.granularity ?? "1h");
  const marker = useMemo(() => (at ? { from: Date.parse(at.tickStart) / 1000, to: Date.parse(at.tickEnd) / 1000 } : undefined), [at]);
  const latest = ticks.data?.length ? ticks.data[ticks.data.length - 1] : undefined;

  const mine = siblings.data?.find((f) => f.kind === flow.kind && f.name === flow.flow);
  const alarmed = mine?.shown === "WARNING" || mine?.shown === "OUTAGE";
  // The change that put the flow in its alarm: what an acknowledgement is of.
  const alarm = useLoad<StatusEvent | null>(async () => {
    if (!alarmed || mine?.acknowledged) return null;
    const lobEvents = await api.get<{ events: StatusEvent[] }>(
      `/events${query({ country: flow.country, lob: flow.lob, status: "WARNING,OUTAGE", limit: 500 })}`,
    );
    const own = lobEvents.events.filter(me);
    const latest = latestOfFlows(own);
    return own.find((e) => latest.has(e.id)) ?? null;
  }, [path, alarmed, mine?.acknowledged?.eventId]);
  const covering = (silences.data ?? []).filter((s) => s.state !== "ended" && covers(s.scope, flow));
  const related =
    flow.kind === "input"
      ? (siblings.data ?? []).filter((f) => f.kind === "forward" && f.input === flow.flow)
      : (siblings.data ?? []).filter((f) => f.kind === "input" && f.name === mine?.input);

  return (
    <>
      <nav className="crumbs" aria-label="Breadcrumbs">
        <Link to="/">Dashboard</Link> / <Link to={`/country/${encodeURIComponent(flow.country)}`}>{flow.country}</Link> /{" "}
        <Link to={`/lob/${encodeURIComponent(flow.country)}/${encodeURIComponent(flow.lob)}`}>{flow.lob}</Link> / <span>{flow.flow}</span>
      </nav>
      <div className="section-head">
        <h1 className="flow-title">
          {flow.flow} <span className="tag">{flow.kind}</span> {mine ? <StatusPill status={mine.shown} /> : null}
        </h1>
        {root && !silencing ? (
          <button
            type="button"
            className="secondary"
            onClick={() => setSilencing(true)}
            title={flow.kind === "input" ? "Keep this input and its forwards from alarming for a while" : "Keep this forward from alarming for a while"}
          >
            Silence…
          </button>
        ) : null}
      </div>
      {silencing ? (
        <SilenceForm
          scope={{ country: flow.country, lob: flow.lob, kind: flow.kind, flow: flow.flow }}
          title={`Silence ${flow.flow}${flow.kind === "input" ? " with its forwards" : ""}`}
          onCancel={() => setSilencing(false)}
          onCreated={() => {
            setSilencing(false);
            silences.reload();
          }}
        />
      ) : null}
      {covering.map((s) => (
        <div key={s.id} className={`banner silence-banner${s.state === "scheduled" ? " later" : ""}`} data-testid="silenced" data-silence={s.id}>
          <strong>{s.state === "active" && (!s.weekly || inWindow(s.weekly, new Date(), zone)) ? "Silenced" : "Silence"}</strong>{" "}
          ({scopeText(s.scope)}): {windowText(s, zone)}, {stateText(s, new Date(), zone)}. <span className="muted">“{s.comment}” — {s.createdBy}.</span>{" "}
          <Link to="/silences">All silences</Link>
        </div>
      ))}
      {alarmed && mine ? (
        <div className="banner alarm-banner" data-status={mine.shown} data-testid="alarm">
          {mine.acknowledged ? (
            <span data-testid="acknowledged">
              <StatusPill status={mine.shown} /> <strong>Acknowledged</strong> by {ackText(mine.acknowledged, zone)}
            </span>
          ) : (
            <>
              <StatusPill status={mine.shown} /> <strong>Not acknowledged.</strong>{" "}
              {alarm.data ? (
                <>
                  <span className="muted">
                    Since the tick at {localTime(alarm.data.tickTime, zone)} ({alarm.data.previousStatus === "N_A" ? "N/A" : alarm.data.previousStatus} →{" "}
                    {alarm.data.newStatus}).
                  </span>{" "}
                  {root ? (
                    <AcknowledgeButton
                      event={alarm.data}
                      onDone={() => {
                        siblings.reload();
                        alarm.reload();
                      }}
                    />
                  ) : null}
                </>
              ) : alarm.data === null ? (
                <span className="muted">The change that raised it is not among the LoB's recent events.</span>
              ) : null}
              <ErrorBox error={alarm.error} />
            </>
          )}
        </div>
      ) : null}
      <p className="related">
        {flow.kind === "input" ? "Forwards: " : "Input: "}
        {related.length === 0 ? <span className="muted">none</span> : null}
        {related.map((f) => (
          <Link key={f.name} to={flowHref({ ...flow, kind: f.kind, flow: f.name }, { from, to })} className="related-link">
            {f.name} <StatusPill status={f.shown} />
          </Link>
        ))}
      </p>
      <RangeControls
        from={from}
        to={to}
        granularity={view.granularity ?? ""}
        onChange={(r) => go({ ...view, ...r, at: view.at })}
      />
      <ErrorBox error={ticks.error} />
      {preview ? (
        <div className="banner" role="status" data-testid="preview-banner">
          <strong>Preview with the edited settings</strong> (nothing saved): {preview.comparison.changed} ticks change status —
          OUTAGE {preview.comparison.before.OUTAGE} → {preview.comparison.after.OUTAGE}, WARNING {preview.comparison.before.WARNING} →{" "}
          {preview.comparison.after.WARNING}.{" "}
          <button type="button" className="secondary small" onClick={() => setPreview(null)}>
            Show stored ticks
          </button>
        </div>
      ) : null}
      {ticks.data === undefined && !ticks.error ? (
        <Loading />
      ) : (
        <>
          <p className="muted small" data-testid="tick-counts">
            {shown.length} ticks of {g} in {zone}: {data.counts.OUTAGE} OUTAGE, {data.counts.WARNING} WARNING, {data.counts.OK} OK,{" "}
            {data.counts.N_A} N/A
            {latest ? ` · latest ${localTime(latest.tickStart, zone)}: ${rate(latest.actual, g)}` : ""}
          </p>
          {view.at ? <AtTick tick={at} at={view.at} zone={zone} g={g} levels={effective} /> : null}
          <Chart
            title={`Traffic per tick (${zone})`}
            data={data.traffic}
            spans={data.spans}
            marker={marker}
            zone={zone}
            sync="flow"
            yValue={bytes}
            series={[
              { label: "Actual", color: "--series-actual", width: 2, steps: true },
              { label: "Expected", color: "--series-expected", dash: [6, 3], steps: true },
              { label: "Day average", color: "--series-average", dash: [2, 3] },
            ]}
          />
          <Chart
            title={`Difference (1 = as expected; decided on the ${effective?.difference ?? "day"} difference)`}
            data={data.difference}
            spans={data.spans}
            marker={marker}
            zone={zone}
            sync="flow"
            height={200}
            fromZero
            yValue={(v) => `${Math.round(v * 100)} %`}
            levels={
              effective
                ? [
                    { value: effective.softAlarmLevel, label: `soft ${effective.softAlarmLevel}`, color: "--warning" },
                    { value: effective.hardAlarmLevel, label: `hard ${effective.hardAlarmLevel}`, color: "--outage" },
                  ]
                : []
            }
            series={[
              { label: "Difference", color: "--series-actual", width: 2, steps: true },
              { label: "Tick difference", color: "--series-expected", width: 1, dash: [4, 3], steps: true },
              { label: "Day difference", color: "--series-average", width: 1, dash: [2, 3], steps: true },
            ]}
          />
        </>
      )}
      <nav className="tabs" aria-label="Views">
        <Link to={flowHref(flow, { ...view, tab: undefined })} current={!view.tab}>
          Ticks
        </Link>
        <Link to={flowHref(flow, { ...view, tab: "config" })} current={view.tab === "config"}>
          Configuration
        </Link>
      </nav>
      {view.tab === "config" ? (
        config.data ? (
          <ConfigPanel
            key={JSON.stringify(config.data)}
            effective={config.data}
            root={root}
            saved={saved}
            onEdit={() => setSaved(null)}
            onPreview={async (settings) => {
              // Shown at another tick length, the preview is at that length too (unless edited).
              const tried = view.granularity ? { granularity: view.granularity, ...settings } : settings;
              const r = await api.request<{ ticks: Tick[] }>("POST", `/flows/${path}/simulate`, { from, to, settings: tried, replace: true });
              setPreview({ ticks: r.ticks, comparison: compare(ticks.data ?? [], r.ticks) });
            }}
            range={{ from, to }}
            onBacktest={(settings) =>
              api.request<BacktestResult>(
                "POST",
                "/backtest",
                backtestBody(from, to, { country: flow.country, lob: flow.lob, kind: flow.kind, flow: flow.flow }, settings),
              )
            }
            onSave={async (settings) => {
              const saved = (await changeConfig(api, flow.country, "PUT", `/config/flows/${path}`, { settings })) as { version: number };
              setPreview(null);
              setSaved(saved.version);
              config.reload();
              ticks.reload();
              siblings.reload();
            }}
          />
        ) : (
          <ErrorBox error={config.error} />
        )
      ) : (
        <TickTable ticks={shown} zone={zone} g={g} levels={effective} />
      )}
    </>
  );
}

function RangeControls(p: { from: string; to: string; granularity: string; onChange: (r: FlowView) => void }) {
  const [from, setFrom] = useState(p.from);
  const [to, setTo] = useState(p.to);
  useEffect(() => {
    setFrom(p.from);
    setTo(p.to);
  }, [p.from, p.to]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (from < to) p.onChange({ from, to, granularity: p.granularity || undefined });
  };
  return (
    <form className="controls" onSubmit={submit} aria-label="Range">
      <label>
        From
        <input type="date" value={from} onChange={(e) => setFrom(e.target.value)} required />
      </label>
      <label>
        To (excluded)
        <input type="date" value={to} onChange={(e) => setTo(e.target.value)} required />
      </label>
      <button type="submit" className="secondary" disabled={!(from < to)}>
        Show
      </button>
      <span className="quick" role="group" aria-label="Quick ranges">
        {RANGES.map(([label, days]) => (
          <button
            key={label}
            type="button"
            className="ghost"
            onClick={() => p.onChange({ from: addDays(p.to, -days), to: p.to, granularity: p.granularity || undefined })}
          >
            {label}
          </button>
        ))}
      </span>
      <label>
        Granularity
        <select value={p.granularity} onChange={(e) => p.onChange({ from: p.from, to: p.to, granularity: e.target.value || undefined })}>
          {GRANULARITIES.map((g) => (
            <option key={g} value={g}>
              {g || "as configured"}
            </option>
          ))}
        </select>
      </label>
    </form>
  );
}

function AtTick({ tick, at, zone, g, levels }: { tick: Tick | undefined; at: string; zone: string; g: string; levels?: Levels }) {
  if (!tick)
    return (
      <p className="banner" data-testid="at-tick">
        No tick at {localTime(at, zone)} in this range.
      </p>
    );
  return (
    <div className="banner at-tick" data-testid="at-tick" data-status={tick.status}>
      Tick {localTime(tick.tickStart, zone)} – {localTime(tick.tickEnd, zone).slice(11)}: <StatusPill status={tick.status} /> actual{" "}
      {rate(tick.actual, g)}, expected {tick.expected == null ? "–" : rate(tick.expected, g)}, difference {percent(tick.difference)}
      <div className="muted" data-testid="why">
        {explain(tick, levels, g)}
      </div>
    </div>
  );
}

function TickTable({ ticks, zone, g, levels }: { ticks: Tick[]; zone: string; g: string; levels?: Levels }) {
  const [all, setAll] = useState(false);
  const rows = [...ticks].reverse().filter((t) => all || t.status !== "OK");
  return (
    <section>
      <label className="check">
        <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> show OK ticks too
      </label>
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Tick ({zone})</th>
            <th scope="col" className="num">
              Actual
            </th>
            <th scope="col" className="num">
              Expected
            </th>
            <th scope="col" className="num">
              Tick diff.
            </th>
            <th scope="col" className="num">
              Day diff.
            </th>
            <th scope="col">Status</th>
            <th scope="col">Why</th>
          </tr>
        </thead>
        <tbody>
          {rows.slice(0, 500).map((t) => (
            <tr key={t.tickStart}>
              <td>{localTime(t.tickStart, zone)}</td>
              <td className="num">{rate(t.actual, g)}</td>
              <td className="num">{t.expected == null ? "–" : rate(t.expected, g)}</td>
              <td className="num">{percent(t.tickDifference)}</td>
              <td className="num">{percent(t.dayDifference)}</td>
              <td>
                <StatusPill status={t.status} />
              </td>
              <td className="muted">{explain(t, levels, g)}</td>
            </tr>
          ))}
          {rows.length === 0 ? <EmptyRow columns={7}>{all ? "No ticks in this range." : "Every tick in this range is OK."}</EmptyRow> : null}
        </tbody>
      </table>
    </section>
  );
}

const SOURCE_NAMES: Record<string, string> = {
  builtIn: "built-in default",
  defaults: "defaults",
  lob: "LoB",
  input: "its input",
  own: "this flow",
};

function ConfigPanel(p: {
  effective: EffectiveConfig;
  root: boolean;
  /** The version the last save made, until the text is edited again. */
  saved: number | null;
  onEdit: () => void;
  onPreview: (s: FlowSettings) => Promise<void>;
  /** The shown days, which a backtest replays. */
  range: { from: string; to: string };
  onBacktest: (s: FlowSettings) => Promise<BacktestResult>;
  onSave: (s: FlowSettings) => Promise<void>;
}) {
  const initial = useMemo(() => settingsText(ownSettings(p.effective)), [p.effective]);
  const [text, setText] = useState(initial);
  const { error, busy, act: run } = useAction();
  const [tested, setTested] = useState<{ result: BacktestResult; from: string; to: string } | null>(null);
  const rangeWrong = rangeProblem(p.range.from, p.range.to);
  const checked = check(text, inheritedSettings(p.effective));
  return (
    <section className="config-panel">
      <div>
        <h2>Effective configuration</h2>
        <table className="table compact" data-testid="effective-config">
          <thead>
            <tr>
              <th scope="col">Field</th>
              <th scope="col">Value</th>
              <th scope="col">From</th>
            </tr>
          </thead>
          <tbody>
            {FIELD_NAMES.map((f) => (
              <tr key={f} className={p.effective.sources[f] === "own" ? "own" : undefined}>
                <th scope="row">
                  <code>{f}</code>
                </th>
                <td>
                  <code>{JSON.stringify(p.effective.config[f])}</code>
                </td>
                <td>{SOURCE_NAMES[p.effective.sources[f]] ?? p.effective.sources[f]}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div>
        <h2>This flow's own settings</h2>
        <p className="muted small">A field left out is inherited. Preview runs the detection over the shown range with these settings.</p>
        <JsonEditor
          id="flow-config"
          label="Own settings (JSON)"
          value={text}
          onChange={(t) => {
            setText(t);
            p.onEdit();
          }}
          problems={checked.ok ? [] : checked.problems}
          readOnly={!p.root}
        />
        <ErrorBox error={error} />
        {p.saved !== null ? (
          <p className="ok-text" role="status" data-testid="saved">
            Saved: configuration version {p.saved}.
          </p>
        ) : null}
        <div className="buttons">
          <button type="button" className="secondary" disabled={!checked.ok || busy} onClick={() => checked.ok && void run(() => p.onPreview(checked.settings))}>
            Preview
          </button>
          <button
            type="button"
            className="secondary"
            disabled={!checked.ok || busy || rangeWrong !== null}
            title={rangeWrong ?? "Count the OUTAGE and WARNING episodes and status changes over the shown days with these settings and with those in force"}
            onClick={() =>
              checked.ok &&
              void run(async () => {
                setTested(null);
                setTested({ result: await p.onBacktest(checked.settings), ...p.range });
              })
            }
          >
            Backtest
          </button>
          {p.root ? (
            <button
              type="button"
              disabled={!checked.ok || busy || text === initial}
              onClick={() => checked.ok && void run(() => p.onSave(checked.settings))}
            >
              Save
            </button>
          ) : null}
        </div>
        {tested ? <BacktestSummary result={tested.result} from={tested.from} to={tested.to} perFlow={false} /> : null}
      </div>
    </section>
  );
}
