// Suggested calendars (`GET /api/v1/suggestions`): days a country's calendar seems to miss and
// weekdays that differ from the rest of their profile week after week, found in the stored
// traffic — the answer's shape, each suggestion in words with its evidence, and the request
// that applies it (the configuration's compare-and-set, sent as the server wrote it).

import { ApiError } from "./api";
import type { Kind } from "./api";
import { daysBetween, rangeProblem } from "./backtest";
import { bytes, weekday } from "./format";
import { DAY_NAMES, daysText } from "./operator";

/** Below this share of its similar days a flow's day is clearly low (core's `suggest::LOW`). */
export const LOW = 0.85;

/** The most local days one request reads (the API refuses more). */
export const MAX_DAYS = 190;

export const WEEKDAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/** The request that applies a suggestion: send it as it is (its body carries the version). */
export interface Apply {
  method: string;
  /** The path from the server's root (`/api/v1/config/...`). */
  path: string;
  body: Record<string, unknown>;
}

/** A day most of the country's flows carried clearly less than on their similar days. */
export interface DaySuggestion {
  date: string;
  kind: "holiday" | "lazyDay";
  evidence: {
    /** Flows with a ratio that day, and of them those clearly low (below `LOW`). */
    flows: number;
    low: number;
    /** The median of the flows' ratios to their similar days. */
    ratio: number;
    /** The median of the flows' ratios to the nearby Sundays. */
    sundayRatio: number | null;
    /** The country's bytes that day, and the median of its similar days'. */
    bytes: number;
    usualBytes: number;
    /** The similar days compared. */
    compared: string[];
  };
  apply: Apply;
}

/** A weekday to compare only with itself (`independentDays`), of a LoB or of one flow. */
export interface WeekdaySuggestion {
  lob: string;
  /** The flow, when only it (not most of its LoB) shows it. */
  flow?: { kind: Kind; name: string; input: string | null };
  /** 0 = Monday … 6 = Sunday. */
  weekday: number;
  evidence: {
    /** The weekdays it was compared with (the rest of its profile). */
    peers: number[];
    /** The median ratio of its traffic to its peers' in the same week. */
    ratio: number;
    /** Weeks compared, and of them those beyond the factor the same way (for a LoB: summed
     * over its flows that agree). */
    weeks: number;
    consistent: number;
    /** Flows that agree, and flows with enough weeks. */
    flows: number;
    of: number;
  };
  apply: Apply;
}

export interface Suggestions {
  country: string;
  /** First local day read, and the first not read. */
  from: string;
  to: string;
  /** The configuration version the suggestions were computed on. */
  version: number;
  days: DaySuggestion[];
  weekdays: WeekdaySuggestion[];
}

/** The query of a country's suggestions, over the server's default (the last eight weeks)
 * unless a range is given. */
export function suggestionsPath(country: string, range?: { from: string; to: string }): string {
  const q = new URLSearchParams({ country });
  if (range) {
    q.set("from", range.from);
    q.set("to", range.to);
  }
  return `/suggestions?${q}`;
}

/** Why a range cannot be read, or null. */
export function suggestionsRangeProblem(from: string, to: string): string | null {
  return rangeProblem(from, to, MAX_DAYS);
}

/** `apply.path` under the API's base, as `Api.request` takes it. */
export function apiPath(path: string, base = "/api/v1"): string {
  return path.startsWith(`${base}/`) ? path.slice(base.length) : path;
}

/** Whether applying failed because the configuration changed since (409: reload them). */
export function stale(e: unknown): boolean {
  return e instanceof ApiError && e.status === 409;
}

/** A stable key of a suggestion. */
export function suggestionKey(s: DaySuggestion | WeekdaySuggestion): string {
  if ("date" in s) return `day/${s.date}/${s.kind}`;
  return `weekday/${s.lob}/${s.flow ? `${s.flow.kind}/${s.flow.name}` : ""}/${s.weekday}`;
}

/** A date with its weekday: `Wed 2017-01-25`. */
export function dayName(date: string): string {
  return `${DAY_NAMES[weekday(date)]} ${date}`;
}

/** A ratio as a whole percentage: `45 %`. */
export function share(ratio: number): string {
  return `${Math.round(ratio * 100)} %`;
}

/** The days read, first and last included: `2026-10-07 to 2026-12-01 (8 weeks)`. */
export function periodText(from: string, to: string): string {
  const days = daysBetween(from, to);
  const last = new Date(Date.parse(`${to}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
  const span = days % 7 === 0 ? `${days / 7} week${days === 7 ? "" : "s"}` : `${days} day${days === 1 ? "" : "s"}`;
  return `${from} to ${last} (${span})`;
}

const KIND_TEXT = { holiday: "a holiday", lazyDay: "a lazy day" } as const;

/** `Wed 2017-01-25 looks like a holiday`. */
export function dayHeadline(s: Pick<DaySuggestion, "date" | "kind">): string {
  return `${dayName(s.date)} looks like ${KIND_TEXT[s.kind]}`;
}

/** The evidence of a day: how many flows were low, how low, against Sundays, what it was
 * compared with. */
export function dayEvidence(s: Pick<DaySuggestion, "kind" | "evidence">): string {
  const e = s.evidence;
  const parts = [
    `${e.low} of ${e.flows} flow${e.flows === 1 ? "" : "s"} below ${share(LOW)} of their similar days, median ${share(e.ratio)} (${bytes(e.bytes)}, usually ${bytes(e.usualBytes)})`,
  ];
  if (e.sundayRatio === null) parts.push("no Sunday nearby to compare with");
  else parts.push(`${s.kind === "holiday" ? "as low as a Sunday" : "above a Sunday"} (${share(e.sundayRatio)} of the nearby Sundays)`);
  if (e.compared.length) parts.push(`compared with: ${e.compared.map(dayName).join(", ")}`);
  return parts.join("; ");
}

/** A day suggestion in one sentence. */
export function dayText(s: Pick<DaySuggestion, "date" | "kind" | "evidence">): string {
  return `${dayHeadline(s)}: ${dayEvidence(s)}`;
}

/** What a weekday suggestion is about: the LoB, or one flow of it. */
function subject(s: Pick<WeekdaySuggestion, "lob" | "flow">): string {
  if (!s.flow) return s.lob;
  return `${s.lob} / ${s.flow.name}${s.flow.kind === "forward" ? " (forward)" : ""}`;
}

/** Weekdays in words: one spelled out (`Saturday`), several as runs (`Mon–Thu`). */
function peersText(peers: number[]): string {
  return peers.length === 1 ? WEEKDAY_NAMES[peers[0]] ?? "?" : daysText(peers);
}

/** `GSM: Friday differs from Mon–Thu`. */
export function weekdayHeadline(s: Pick<WeekdaySuggestion, "lob" | "flow" | "weekday" | "evidence">): string {
  return `${subject(s)}: ${WEEKDAY_NAMES[s.weekday] ?? "?"} differs from ${peersText(s.evidence.peers)}`;
}

/** `1.40× in 6 of 6 weeks`; for a LoB, weeks counted per flow and how many of its flows agree. */
export function weekdayEvidence(s: Pick<WeekdaySuggestion, "flow" | "evidence">): string {
  const e = s.evidence;
  const ratio = `${e.ratio.toFixed(2)}×`;
  if (s.flow || e.of <= 1) return `${ratio} in ${e.consistent} of ${e.weeks} weeks`;
  const flows = e.flows === e.of ? `all ${e.of} flows` : `${e.flows} of ${e.of} flows`;
  return `${ratio} in ${e.consistent} of ${e.weeks} weeks (counted per flow), ${flows}`;
}

/** A weekday suggestion in one sentence. */
export function weekdayText(s: Pick<WeekdaySuggestion, "lob" | "flow" | "weekday" | "evidence">): string {
  return `${weekdayHeadline(s)}: ${weekdayEvidence(s)}`;
}

/** What applying changes, in words. */
export function applyText(s: DaySuggestion | WeekdaySuggestion, country: string): string {
  if ("date" in s) return `Applying adds ${s.date} to the ${s.kind === "holiday" ? "holidays" : "lazy days"} of ${country}.`;
  const days = (s.apply.body.settings as { independentDays?: number[] } | undefined)?.independentDays;
  const where = s.flow ? `the flow ${s.flow.name}` : `the LoB ${s.lob}`;
  const name = WEEKDAY_NAMES[s.weekday] ?? "?";
  return `Applying sets independentDays ${JSON.stringify(days ?? [s.weekday])} on ${where}: ${name}s are compared only with ${name}s.`;
}
