// Editing a flow's own settings as JSON: what the flow sets itself, validation with messages
// that name the field (what SPEC §5 rejects, checked before the server is asked), and the
// settings that would be in force.

import type { EffectiveConfig, FlowSettings } from "./api";
import { granularitySeconds } from "./format";

type Field = keyof FlowSettings;

/** What each field takes. */
const FIELDS: Record<Field, (v: unknown) => string | null> = {
  granularity: (v) => {
    if (typeof v !== "string" && typeof v !== "number") return 'must be a tick length like "15m", "1h", "1d" or minutes';
    const s = granularitySeconds(v);
    if (s == null) return `invalid granularity ${JSON.stringify(v)}: expected e.g. "30s", "15m", "2h", "1d"`;
    if (86_400 % s !== 0) return `invalid granularity ${JSON.stringify(v)}: must divide one day`;
    return null;
  },
  softAlarmLevel: (v) => level(v),
  hardAlarmLevel: (v) => level(v),
  difference: (v) => (v === "day" || v === "tick" ? null : 'must be "day" or "tick"'),
  enabled: (v) => (typeof v === "boolean" ? null : "must be true or false"),
  independentDays: (v) =>
    Array.isArray(v) && v.every((d) => Number.isInteger(d) && d >= 0 && d <= 6)
      ? null
      : "must be a list of weekdays, 0 (Monday) to 6 (Sunday)",
  minimalExpectation: (v) => (typeof v === "number" && v > 0 ? null : "must be a number of bytes greater than 0"),
  lazyDayDecrease: (v) => (typeof v === "number" && v > 0 ? null : "must be a factor greater than 0"),
  medianDays: (v) => count(v, 1),
  lookbackDays: (v) => count(v, 1),
  minHistoryDays: (v) => count(v, 1),
  graceSeconds: (v) => count(v, 0),
  detector: (v) => (v === "seed" || v === "adaptive" ? null : 'must be "seed" or "adaptive"'),
  flappingChanges: (v) => count(v, 0),
};

/** Every field a flow may set, in the order SPEC §5 lists them (flap damping last). */
export const FIELD_NAMES = Object.keys(FIELDS) as Field[];

function level(v: unknown): string | null {
  return typeof v === "number" && v > 0 ? null : "must be a number greater than 0";
}

function count(v: unknown, min: number): string | null {
  return Number.isInteger(v) && (v as number) >= min ? null : `must be a whole number, ${min} or more`;
}

export interface Problem {
  /** The field's path (`hardAlarmLevel`), or "" for the document. */
  path: string;
  message: string;
}

export type Checked = { ok: true; settings: FlowSettings } | { ok: false; problems: Problem[] };

/** The flow's own settings: the effective ones whose source is the flow itself. */
export function ownSettings(e: EffectiveConfig): FlowSettings {
  const own: Record<string, unknown> = {};
  for (const f of FIELD_NAMES) if (e.sources[f] === "own") own[f] = e.config[f];
  return own as FlowSettings;
}

/** The line and column of a character offset of `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}

/** The offset a JSON.parse error names, if it names one. */
function errorOffset(text: string, message: string): number | null {
  const at = /position (\d+)/.exec(message);
  if (at) return Number(at[1]);
  const lc = /line (\d+) column (\d+)/.exec(message);
  if (lc) {
    const lines = text.split("\n");
    let off = 0;
    for (let i = 0; i < Number(lc[1]) - 1 && i < lines.length; i++) off += lines[i].length + 1;
    return off + Number(lc[2]) - 1;
  }
  return null;
}

/**
 * Checks the editor's text as a flow's own settings as the server does (gateway: core's
 * config validation), the cross-field rules against the settings it inherits
 * ([`inheritedSettings`]). Every problem is listed, not just the first.
 */
export function check(text: string, inherited: FlowSettings = {}): Checked {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message;
    const off = errorOffset(text, message);
    const where = off == null ? "" : (({ line, column }) => ` at line ${line}, column ${column}`)(lineColumn(text, off));
    return { ok: false, problems: [{ path: "", message: `not valid JSON${where}: ${message}` }] };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, problems: [{ path: "", message: "must be a JSON object of settings, e.g. {\"softAlarmLevel\": 0.7}" }] };
  }
  const problems: Problem[] = [];
  for (const [k, v] of Object.entries(value)) {
    const rule = FIELDS[k as Field];
    if (!rule) {
      problems.push({ path: k, message: `unknown field "${k}": expected one of ${FIELD_NAMES.join(", ")}` });
      continue;
    }
    const wrong = rule(v);
    if (wrong) problems.push({ path: k, message: `${k}: ${wrong}` });
  }
  const settings = value as FlowSettings;
  if (problems.length === 0) {
    const soft = settings.softAlarmLevel ?? inherited.softAlarmLevel;
    const hard = settings.hardAlarmLevel ?? inherited.hardAlarmLevel;
    if (soft !== undefined && hard !== undefined && hard > soft) {
      const path = settings.hardAlarmLevel !== undefined ? "hardAlarmLevel" : "softAlarmLevel";
      problems.push({ path, message: `levels must keep 0 < hard <= soft: hard ${hard} is above soft ${soft}` });
    }
    const min = settings.minHistoryDays ?? inherited.minHistoryDays;
    const median = settings.medianDays ?? inherited.medianDays;
    if (min !== undefined && median !== undefined && min > median) {
      const path = settings.minHistoryDays !== undefined ? "minHistoryDays" : "medianDays";
      problems.push({ path, message: `minHistoryDays (${min}) must not exceed medianDays (${median}): every tick would be N_A` });
    }
  }
  return problems.length ? { ok: false, problems } : { ok: true, settings };
}

/** The settings the flow inherits and does not override (known without asking the server). */
export function inheritedSettings(e: EffectiveConfig): FlowSettings {
  const out: Record<string, unknown> = {};
  for (const f of FIELD_NAMES) if (e.sources[f] !== "own") out[f] = e.config[f];
  return out as FlowSettings;
}

/** The editor's text of some settings: fields in SPEC order, two-space indent. */
export function settingsText(s: FlowSettings): string {
  const ordered: Record<string, unknown> = {};
  for (const f of FIELD_NAMES) if (s[f] !== undefined) ordered[f] = s[f];
  return JSON.stringify(ordered, null, 2);
}
