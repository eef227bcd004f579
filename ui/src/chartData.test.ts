import { describe, expect, it } from "vitest";
import type { Status, Tick } from "./api";
import { chartData, compare, tickAt } from "./chartData";

const H = 3600;
const T0 = Date.parse("2026-11-26T00:00:00Z") / 1000;
const iso = (s: number) => new Date(s * 1000).toISOString().replace(".000Z", "Z");

function tick(i: number, status: Status, actual = 100, expected: number | null = 100): Tick {
  return {
    tickStart: iso(T0 + i * H),
    tickEnd: iso(T0 + (i + 1) * H),
    actual,
    expected,
    dayAverage: expected === null ? null : 90,
    tickDifference: expected === null ? null : actual / expected,
    dayDifference: expected === null ? null : 1,
    difference: expected === null ? null : actual / expected,
    status,
  };
}

describe("chart data", () => {
  it("puts ticks in time order with one x per tick start and the last end", () => {
    const d = chartData([tick(2, "OK", 30), tick(0, "OK", 10), tick(1, "N_A", 20, null)]);
    expect(d.traffic[0]).toEqual([T0, T0 + H, T0 + 2 * H, T0 + 3 * H]);
    expect(d.traffic[1]).toEqual([10, 20, 30, 30]);
    expect(d.traffic[2]).toEqual([100, null, 100, 100]);
    expect(d.traffic[3]).toEqual([90, null, 90, 90]);
    expect(d.difference).toEqual([
      [T0, T0 + H, T0 + 2 * H, T0 + 3 * H],
      [0.1, null, 0.3, 0.3],
      [0.1, null, 0.3, 0.3],
      [1, null, 1, 1],
    ]);
    expect(d.counts).toEqual({ OK: 2, WARNING: 0, OUTAGE: 0, N_A: 1 });
  });
  it("draws nothing of no ticks", () => {
    expect(chartData([]).traffic).toEqual([[], [], [], []]);
    expect(chartData([]).difference).toEqual([[], [], [], []]);
  });
  it("shades runs of the same alarm status from first start to last end", () => {
    const statuses: Status[] = ["OK", "OUTAGE", "OUTAGE", "WARNING", "OK", "WARNING", "OUTAGE"];
    const d = chartData(statuses.map((s, i) => tick(i, s)));
    expect(d.spans).toEqual([
      { from: T0 + H, to: T0 + 3 * H, status: "OUTAGE" },
      { from: T0 + 3 * H, to: T0 + 4 * H, status: "WARNING" },
      { from: T0 + 5 * H, to: T0 + 6 * H, status: "WARNING" },
      { from: T0 + 6 * H, to: T0 + 7 * H, status: "OUTAGE" },
    ]);
  });
  it("does not join alarms across a missing tick", () => {
    const d = chartData([tick(0, "OUTAGE"), tick(2, "OUTAGE")]);
    expect(d.spans).toHaveLength(2);
  });
  it("finds the tick holding an instant", () => {
    const ticks = [tick(0, "OK"), tick(1, "OUTAGE")];
    expect(tickAt(ticks, iso(T0 + H))?.status).toBe("OUTAGE");
    expect(tickAt(ticks, iso(T0 + H + 1799))?.status).toBe("OUTAGE");
    expect(tickAt(ticks, iso(T0 + 2 * H))).toBeUndefined();
  });
  it("counts the ticks a simulation changes", () => {
    const before = [tick(0, "OK"), tick(1, "OUTAGE"), tick(2, "WARNING")];
    const after = [tick(0, "OK"), tick(1, "WARNING"), tick(2, "WARNING")];
    const c = compare(before, after);
    expect(c.changed).toBe(1);
    expect(c.before.OUTAGE).toBe(1);
    expect(c.after.OUTAGE).toBe(0);
    expect(c.after.WARNING).toBe(2);
    // Another granularity: nothing matches, every tick of both runs changed.
    expect(compare(before, [{ ...tick(0, "OK"), tickStart: iso(T0 + 60) }]).changed).toBe(4);
  });
});
