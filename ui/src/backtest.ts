// Backtests (`POST /api/v1/backtest`): candidate settings at a LoB or a flow against the
// configuration in force, over the stored traffic of its flows — the request and how the
// counts read.

import type { FlowRef, FlowSettings, Kind } from "./api";
import { addDays } from "./format";

/** What one configuration raised (SPEC §10's summary of `replay --compare`). */
export interface Episodes {
  outage: number;
  warning: number;
  changes: number;
}

/** A flow whose counts differ, with both. */
export interface BacktestFlow extends FlowRef {
  current: Episodes;
  candidate: Episodes;
}

export interface BacktestResult {
  /** Flows of the scope with stored traffic, replayed. */
  flowCount: number;
  /** Of those, with a tick under the configuration in force / under the candidate. */
  currentFlows: number;
  candidateFlows: number;
  current: Episodes;
  candidate: Episodes;
  /** The flows whose counts differ, most first. */
  flows: BacktestFlow[];
}

/** A LoB (`lob`) or one flow (`lob`, `kind`, `flow`) of a country. */
export interface BacktestScope {
  country: string;
  lob?: string;
  kind?: Kind;
  flow?: string;
}

/** The most local days one backtest replays (the API refuses more). */
export const MAX_DAYS = 92;

/** The counts compared, in the order shown. */
export const MEASURES: [keyof Episodes, string][] = [
  ["outage", "OUTAGE episodes"],
  ["warning", "WARNING episodes"],
  ["changes", "status changes"],
];

/** The last `days` local days up to `today` (YYYY-MM-DD) included, as `[from, to)`. */
export function lastDays(today: string, days: number): { from: string; to: string } {
  const to = addDays(today, 1);
  return { from: addDays(to, -days), to };
}

/** Whole days from `from` to `to` (YYYY-MM-DD). */
export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/** Why a range cannot be backtested (read), or null: `max` days at most. */
export function rangeProblem(from: string, to: string, max = MAX_DAYS): string | null {
  const dates = /^\d{4}-\d{2}-\d{2}$/;
  if (!dates.test(from) || !dates.test(to) || Number.isNaN(daysBetween(from, to))) return "pick both dates";
  const days = daysBetween(from, to);
  if (days <= 0) return "the end must be after the start";
  if (days > max) return `${days} days: at most ${max}`;
  return null;
}

/**
 * The request: `candidate` replaces the scope's own settings (what saving them would do: a
 * field left out is inherited).
 */
export function backtestBody(from: string, to: string, scope: BacktestScope, candidate: FlowSettings) {
  return { from, to, scope, candidate, replace: true };
}

/** How a count changes, as `replay --compare` writes it: `+50.0 %`; from zero `+3` or `=`. */
export function change(current: number, candidate: number): string {
  if (current === 0) return candidate === 0 ? "=" : `+${candidate}`;
  const p = ((candidate - current) / current) * 100;
  return `${p > 0 ? "+" : ""}${p.toFixed(1)} %`;
}
