// A flow's ticks as the charts draw them: one x per tick start (Unix seconds) and the last end, the
// traffic series, the difference series and the spans of WARNING and OUTAGE ticks to shade.

import type { Status, Tick } from "./api";

/**
 * uPlot's aligned data: x, then one array per series (`null`: no point). Each tick is a step
 * from its start; one more point at the last tick's end closes the last step.
 */
export type Aligned = [number[], ...(number | null)[][]];

export interface Span {
  from: number;
  to: number;
  status: "WARNING" | "OUTAGE";
}

export interface ChartData {
  /** x, actual, expected, day average. */
  traffic: Aligned;
  /** x, the difference decided on, the tick difference, the day difference. */
  difference: Aligned;
  /** Consecutive WARNING / OUTAGE ticks, from the first one's start to the last one's end. */
  spans: Span[];
  /** Ticks per status. */
  counts: Record<Status, number>;
}

const seconds = (t: string) => Date.parse(t) / 1000;

/** The charts' data of `ticks` (in any order; drawn by start). */
export function chartData(ticks: Tick[]): ChartData {
  const sorted = [...ticks].sort((a, b) => seconds(a.tickStart) - seconds(b.tickStart));
  const x: number[] = [];
  const actual: (number | null)[] = [];
  const expected: (number | null)[] = [];
  const dayAverage: (number | null)[] = [];
  const difference: (number | null)[] = [];
  const tickDifference: (number | null)[] = [];
  const dayDifference: (number | null)[] = [];
  const spans: Span[] = [];
  const counts: Record<Status, number> = { OK: 0, WARNING: 0, OUTAGE: 0, N_A: 0 };
  for (const t of sorted) {
    x.push(seconds(t.tickStart));
    actual.push(t.actual);
    expected.push(t.expected);
    dayAverage.push(t.dayAverage);
    difference.push(t.difference);
    tickDifference.push(t.tickDifference);
    dayDifference.push(t.dayDifference);
    counts[t.status]++;
    if (t.status === "WARNING" || t.status === "OUTAGE") {
      const from = seconds(t.tickStart);
      const to = seconds(t.tickEnd);
      const last = spans[spans.length - 1];
      if (last && last.status === t.status && last.to === from) last.to = to;
      else spans.push({ from, to, status: t.status });
    }
  }
  // A tick's value holds until its end: the last one's end closes the steps.
  const last = sorted[sorted.length - 1];
  if (last) {
    x.push(seconds(last.tickEnd));
    for (const series of [actual, expected, dayAverage, difference, tickDifference, dayDifference])
      series.push(series[series.length - 1]);
  }
  return {
    traffic: [x, actual, expected, dayAverage],
    difference: [x, difference, tickDifference, dayDifference],
    spans,
    counts,
  };
}

/** How two runs of the same flow differ, for the simulation's summary. */
export interface Comparison {
  /** Ticks whose status differs between the runs (matched by start). */
  changed: number;
  before: Record<Status, number>;
  after: Record<Status, number>;
}

export function compare(before: Tick[], after: Tick[]): Comparison {
  const was = new Map(before.map((t) => [t.tickStart, t.status]));
  let changed = 0;
  for (const t of after) {
    const s = was.get(t.tickStart);
    if (s === undefined || s !== t.status) changed++;
  }
  // A tick of the old run with no counterpart (another granularity) changed too.
  const now = new Set(after.map((t) => t.tickStart));
  for (const t of before) if (!now.has(t.tickStart)) changed++;
  return { changed, before: chartData(before).counts, after: chartData(after).counts };
}

/** The tick containing the instant `at` (RFC 3339), if any. */
export function tickAt(ticks: Tick[], at: string): Tick | undefined {
  const s = seconds(at);
  return ticks.find((t) => seconds(t.tickStart) <= s && s < seconds(t.tickEnd));
}
