// What operators do about alarms (SPEC §11), as the UI writes and checks it: silences (scope in
// words, window text, state order, covering a flow, the form's checks and body) and
// acknowledgements (which change can be acknowledged, who did it, how many of a country's);
// flap damping (the summary sent when a flapping flow settles).

import type { Acknowledgement, FlowRef, FlowScope, Silence, SilenceState, Status, StatusEvent, Weekly } from "./api";
import { ago, duration, fromWallClock, localTime, wallClock, weekday, zoned } from "./format";

export const DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/** The states in the order they are listed: what silences now, what will, what did. */
export const STATE_ORDER: SilenceState[] = ["active", "scheduled", "ended"];

/** The input a forward (`INPUT:TARGET`) belongs to. */
export function inputOf(forward: string): string | null {
  const i = forward.indexOf(":");
  return i < 0 ? null : forward.slice(0, i);
}

/** What a scope covers, in words: `CZ / GSM / CZGSM01 with its forwards`. */
export function scopeText(s: FlowScope): string {
  if (!s.lob) return `${s.country} — every flow of the country`;
  const lob = `${s.country} / ${s.lob}`;
  if (s.flow) return s.kind === "forward" ? `${lob} / ${s.flow} (forward)` : `${lob} / ${s.flow} with its forwards`;
  if (s.kind === "forward") return `${lob} — every forward`;
  if (s.kind === "input") return `${lob} — every input with its forwards`;
  return `${lob} — every flow of the LoB`;
}

/** Whether a scope covers a flow (as the server decides: an input's scope takes in its
 * forwards; a scope of every input takes in every forward). */
export function covers(s: FlowScope, f: FlowRef): boolean {
  if (f.country !== s.country || (s.lob !== undefined && s.lob !== f.lob)) return false;
  if (!s.kind) return true;
  if (!s.flow) return s.kind === "input" || f.kind === "forward";
  if (s.kind === "forward") return f.kind === "forward" && f.flow === s.flow;
  return f.kind === "input" ? f.flow === s.flow : inputOf(f.flow) === s.flow;
}

/** Weekdays as ranges where they run on: `Mon–Fri`, `Tue, Thu`, `Sat–Sun`, `every day`. */
export function daysText(days: number[]): string {
  const sorted = [...new Set(days)].filter((d) => d >= 0 && d <= 6).sort((a, b) => a - b);
  if (sorted.length === 7) return "every day";
  const out: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i];
    while (i + 1 < sorted.length && sorted[i + 1] === sorted[i] + 1) i++;
    const end = sorted[i];
    if (start === end) out.push(DAY_NAMES[start]);
    else if (end === start + 1) out.push(DAY_NAMES[start], DAY_NAMES[end]);
    else out.push(`${DAY_NAMES[start]}–${DAY_NAMES[end]}`);
  }
  return out.join(", ");
}

/** Minutes of the day of `HH:MM`, or null. */
function clockMinutes(t: string): number | null {
  const m = /^(\d{2}):(\d{2})$/.exec(t);
  if (!m) return null;
  const total = Number(m[1]) * 60 + Number(m[2]);
  return Number(m[2]) < 60 && total <= 1440 ? total : null;
}

/** Whether a weekly window's end is on the next day (not after its start). */
export function overnight(w: Pick<Weekly, "start" | "end">): boolean {
  const s = clockMinutes(w.start);
  const e = clockMinutes(w.end);
  return s !== null && e !== null && e <= s && e !== 1440;
}

/** A weekly window in words: `Mon–Fri 22:00–06:00 (next day)`. */
export function weeklyText(w: Weekly): string {
  return `${daysText(w.days)} ${w.start}–${w.end}${overnight(w) ? " (next day)" : ""}`;
}

/** The times a silence covers, in the zone: `2026-12-02 21:00 → 23:00 CET (2 h)`, the date
 * of the end left out on the same day; weekly windows after it. */
export function windowText(s: Pick<Silence, "from" | "to" | "weekly">, zone: string): string {
  const a = zoned(s.from, zone);
  const b = zoned(s.to, zone);
  const end = a.date === b.date && a.zone === b.zone ? `${b.time} ${b.zone}` : localTime(s.to, zone);
  const from = a.date === b.date && a.zone === b.zone ? `${a.date} ${a.time}` : localTime(s.from, zone);
  const span = `${from} → ${end} (${duration((Date.parse(s.to) - Date.parse(s.from)) / 1000)})`;
  return s.weekly ? `${weeklyText(s.weekly)}, ${span}` : span;
}

/** Whether `now` is inside one of a weekly window's times (the country's wall clock). */
export function inWindow(w: Weekly, now: Date, zone: string): boolean {
  const z = zoned(now, zone);
  const day = weekday(z.date);
  const minute = clockMinutes(z.time)!;
  const start = clockMinutes(w.start);
  const end = clockMinutes(w.end);
  if (start === null || end === null) return false;
  const on = (d: number) => w.days.includes(d);
  if (end > start) return on(day) && start <= minute && minute < end;
  return (on(day) && minute >= start) || (on((day + 6) % 7) && minute < end);
}

/** Where a silence stands now, as the list says it: `ends in 1 h 45 min`, `starts in 2 d`,
 * `ended 3 h ago (early)`. */
export function stateText(s: Silence, now: Date, zone: string): string {
  switch (s.state) {
    case "active": {
      const left = `ends ${ago(s.to, now)}`;
      if (!s.weekly) return left;
      return `${inWindow(s.weekly, now, zone) ? "in a window now" : "between windows"}, ${left}`;
    }
    case "scheduled":
      return `starts ${ago(s.from, now)}`;
    case "ended": {
      const early = s.endedAt !== undefined && Date.parse(s.endedAt) < Date.parse(s.to);
      return `ended ${ago(early ? s.endedAt! : s.to, now)}${early ? " (early)" : ""}`;
    }
  }
}

/** Silences by state (active, scheduled, ended), each group in the server's order. */
export function byState(list: Silence[]): Record<SilenceState, Silence[]> {
  const out: Record<SilenceState, Silence[]> = { active: [], scheduled: [], ended: [] };
  for (const s of list) out[s.state]?.push(s);
  return out;
}

/** The silences in the order they are listed: by state, the server's order within one. */
export function sortSilences(list: Silence[]): Silence[] {
  const g = byState(list);
  return STATE_ORDER.flatMap((s) => g[s]);
}

/** The silence keeping a flow quiet now, if one does (weekly ones only inside a window). */
export function silencing(list: Silence[], f: FlowRef, now: Date, zone: string): Silence | undefined {
  return list.find((s) => s.state === "active" && covers(s.scope, f) && (!s.weekly || inWindow(s.weekly, now, zone)));
}

/** What the silence form holds: times as the country's wall clock (`datetime-local`). */
export interface SilenceForm {
  country: string;
  lob: string;
  kind: "" | FlowRef["kind"];
  flow: string;
  from: string;
  to: string;
  weekly: boolean;
  days: number[];
  start: string;
  end: string;
  comment: string;
}

/** A form for a scope, from `now` (its minute: in force at once) to two hours later (wall
 * clock of `zone`), a weekly window of weekday nights offered. */
export function newSilenceForm(scope: FlowScope, now: Date, zone: string): SilenceForm {
  const minute = new Date(Math.floor(now.getTime() / 60_000) * 60_000);
  const wall = (d: Date) => wallClock(d, zone);
  return {
    country: scope.country,
    lob: scope.lob ?? "",
    kind: scope.kind ?? "",
    flow: scope.flow ?? "",
    from: wall(minute),
    to: wall(new Date(minute.getTime() + 2 * 3_600_000)),
    weekly: false,
    days: [0, 1, 2, 3, 4],
    start: "22:00",
    end: "06:00",
    comment: "",
  };
}

/** A wall-clock time of one zone as the wall clock of another shows the same instant (the
 * form's times when its zone changes); text that is no time stays as it is. */
export function rezone(text: string, from: string, to: string): string {
  const at = fromWallClock(text, from);
  return at ? wallClock(at, to) : text;
}

/** The form's problems, by the field the server would name (`scope.lob`, `from`, `to`,
 * `comment`, `weekly.days`, `weekly.start`, `weekly.end`); empty: it can be sent. */
export function silenceProblems(f: SilenceForm, zone: string): Record<string, string> {
  const p: Record<string, string> = {};
  if (!f.country.trim()) p["scope.country"] = "choose a country";
  if (!f.lob.trim() && (f.kind || f.flow.trim())) p["scope.lob"] = "a kind or a flow needs its LoB";
  if (f.flow.trim() && !f.kind) p["scope.kind"] = "a flow needs its kind (input or forward)";
  const from = fromWallClock(f.from, zone);
  const to = fromWallClock(f.to, zone);
  if (!from) p.from = "not a date and time";
  if (!to) p.to = "not a date and time";
  else if (from && to.getTime() <= from.getTime()) p.to = "not after from";
  if (f.weekly) {
    if (f.days.length === 0) p["weekly.days"] = "choose at least one day";
    const s = clockMinutes(f.start);
    const e = clockMinutes(f.end);
    if (s === null || s === 1440) p["weekly.start"] = "not a time of day (HH:MM)";
    if (e === null) p["weekly.end"] = "not a time of day (HH:MM)";
    else if (s !== null && e === s) p["weekly.end"] = "the window is empty (end = start)";
  }
  if (!f.comment.trim()) p.comment = "say why the flows are silenced";
  return p;
}

/** The scope a form names: the parts given, trimmed. */
export function formScope(f: Pick<SilenceForm, "country" | "lob" | "kind" | "flow">): FlowScope {
  const scope: FlowScope = { country: f.country.trim() };
  if (f.lob.trim()) scope.lob = f.lob.trim();
  if (f.kind) scope.kind = f.kind;
  if (f.flow.trim()) scope.flow = f.flow.trim();
  return scope;
}

/** The body of `POST /silences` of a form without problems. */
export function silenceBody(f: SilenceForm, zone: string): { scope: FlowScope; from: string; to: string; comment: string; weekly?: Weekly } {
  const scope = formScope(f);
  const iso = (t: string) => fromWallClock(t, zone)!.toISOString().replace(".000Z", "Z");
  return {
    scope,
    from: iso(f.from),
    to: iso(f.to),
    comment: f.comment.trim(),
    ...(f.weekly ? { weekly: { days: [...f.days].sort((a, b) => a - b), start: f.start, end: f.end } } : {}),
  };
}

const alarm = (s: Status) => s === "WARNING" || s === "OUTAGE";

const flowKey = (e: Pick<StatusEvent, "country" | "lobName" | "kind" | "flowName">) => `${e.country}/${e.lobName}/${e.kind}/${e.flowName}`;

/** The id of each listed flow's latest change (by tick, then by detection). */
export function latestOfFlows(events: StatusEvent[]): Set<string> {
  const latest = new Map<string, StatusEvent>();
  for (const e of events) {
    const k = flowKey(e);
    const l = latest.get(k);
    if (!l || e.tickTime > l.tickTime || (e.tickTime === l.tickTime && e.time > l.time)) latest.set(k, e);
  }
  return new Set([...latest.values()].map((e) => e.id));
}

/**
 * Whether a listed change is offered for acknowledging: a change to WARNING or OUTAGE, not yet
 * acknowledged, the latest listed of its flow (a later change means the flow moved on; the
 * server still refuses one whose flow is no longer alarmed).
 */
export function canAcknowledge(e: StatusEvent, latest: Set<string>): boolean {
  return alarm(e.newStatus) && !e.acknowledged && latest.has(e.id);
}

/** The alarm sent when a flow was still not OK at the end of its silence. */
export function silenceEnded(e: Pick<StatusEvent, "id">): boolean {
  return e.id.endsWith(":silence-ended");
}

/** The summary sent when a flapping flow settled (its changes held meanwhile), with the status
 * it settled in. */
export function flappingSettled(e: Pick<StatusEvent, "id">): boolean {
  return e.id.endsWith(":flapping-settled");
}

/** Who acknowledged, when (in the zone) and why: `root, 2026-12-02 21:14 CET: on it`. */
export function ackText(a: Acknowledgement, zone: string): string {
  return `${a.by}, ${localTime(a.at, zone)}: ${a.comment}`;
}

/** How many of a country's alarmed (WARNING/OUTAGE) flows are acknowledged: `2 of 5
 * acknowledged`; nothing without alarmed flows. */
export function ackSummary(acknowledged: number, alarmed: number): string {
  if (alarmed <= 0) return "";
  return `${Math.min(acknowledged, alarmed)} of ${alarmed} acknowledged`;
}
