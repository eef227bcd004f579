import { describe, expect, it } from "vitest";
import type { LobFlow, Status, StatusEvent } from "../api";
import { statusEvent } from "../testing";
import { actionable, merge, passes } from "../components/EventLog";
import { worst } from "./Dashboard";
import { lobValue, ordered, sortedFlows } from "./Lob";
import { flappingValue } from "./Flapping";
import { sortRows } from "../sort";
import { listsOf, marksOf } from "./Settings";
import { kafkaLag, moving, workerSource } from "./SystemStatus";
import { keySummary } from "./Users";
import { rootName } from "./Incidents";

const flow = (kind: "input" | "forward", name: string, input: string | null = null): LobFlow => ({
  kind,
  name,
  input,
  shown: "OK",
  config: {} as LobFlow["config"],
  latest: null,
});

const event = (id: string, over: Partial<StatusEvent> = {}): StatusEvent =>
  statusEvent(id, { lobName: "SMS", tickTime: "2026-11-26T10:00:00Z", time: "2026-11-26T11:02:00Z", ...over });

describe("the LoB table", () => {
  it("lists each input followed by its forwards, orphan forwards last", () => {
    const rows = ordered([
      flow("forward", "B:X", "B"),
      flow("input", "B"),
      flow("forward", "Z:Y", "Z"),
      flow("input", "A"),
      flow("forward", "A:X", "A"),
      flow("forward", "A:W", "A"),
    ]);
    expect(rows.map((r) => `${r.depth}${r.flow.name}`)).toEqual(["0A", "1A:W", "1A:X", "0B", "1B:X", "0Z:Y"]);
  });
});

describe("the LoB table sorted", () => {
  const f = (kind: "input" | "forward", name: string, over: Partial<LobFlow> = {}, granularity = "1h"): LobFlow => ({
    ...flow(kind, name, kind === "forward" ? name.split(":")[0] : null),
    config: { granularity, softAlarmLevel: 0.8, hardAlarmLevel: 0.5, enabled: true, flappingChanges: 6 } as LobFlow["config"],
    ...over,
  });
  const flows = [
    f("input", "B", { changes24h: 2, shown: "WARNING" }),
    f("forward", "B:X", { changes24h: 12, flapping: true }),
    f("input", "A", { changes24h: 0, shown: "OUTAGE" }),
    f("forward", "A:X", { changes24h: 2, shown: "DISABLED" }),
    f("input", "C", { shown: "N_A" }),
  ];
  const names = (rows: { flow: LobFlow; depth: number }[]) => rows.map((r) => `${r.depth}${r.flow.name}`);
  it("by flow keeps each input with its forwards, either way", () => {
    expect(names(sortedFlows(flows, { key: "flow", dir: "ascending" }))).toEqual(["0A", "1A:X", "0B", "1B:X", "0C"]);
    expect(names(sortedFlows(flows, { key: "flow", dir: "descending" }))).toEqual(["0C", "0B", "1B:X", "0A", "1A:X"]);
  });
  it("by changes in 24 h is flat, the unknown last, ties in the flow order", () => {
    expect(names(sortedFlows(flows, { key: "changes", dir: "descending" }))).toEqual(["0B:X", "0A:X", "0B", "0A", "0C"]);
    expect(names(sortedFlows(flows, { key: "changes", dir: "ascending" }))).toEqual(["0A", "0A:X", "0B", "0B:X", "0C"]);
  });
  it("by status puts the worst first", () => {
    // OUTAGE, WARNING, N/A, OK, DISABLED.
    expect(names(sortedFlows(flows, { key: "status", dir: "descending" }))).toEqual(["0A", "0B", "0C", "0B:X", "0A:X"]);
  });
  it("compares the last tick as a rate across tick lengths", () => {
    const tick = (actual: number) => ({ actual, difference: 1 }) as LobFlow["latest"];
    const hourly = f("input", "H", { latest: tick(3600) });
    const daily = f("input", "D", { latest: tick(86_400 * 2) }, "1d");
    expect(lobValue(hourly, "last")).toBe(1);
    expect(lobValue(daily, "last")).toBe(2);
    expect(lobValue(f("input", "N"), "last")).toBeNull();
    expect(lobValue(hourly, "granularity")).toBe(3600);
  });
});

describe("the flapping flows", () => {
  it("sort by changes, their limit or their name", () => {
    const list = [
      { country: "CZ", lob: "DATA", kind: "input" as const, flow: "A", changes24h: 9, flappingChanges: 6 },
      { country: "AT", lob: "GSM", kind: "forward" as const, flow: "B:X", changes24h: 14, flappingChanges: 10 },
      { country: "CZ", lob: "DATA", kind: "input" as const, flow: "C", changes24h: 7, flappingChanges: 4 },
    ];
    expect(sortRows(list, (x) => flappingValue(x, "changes"), "descending").map((x) => x.flow)).toEqual(["B:X", "A", "C"]);
    expect(sortRows(list, (x) => flappingValue(x, "limit"), "ascending").map((x) => x.flow)).toEqual(["C", "A", "B:X"]);
    expect(sortRows(list, (x) => flappingValue(x, "flow"), "ascending").map((x) => x.flow)).toEqual(["B:X", "A", "C"]);
  });
});

describe("the dashboard tile", () => {
  it("takes the colour of its worst status", () => {
    expect(worst({ OK: 5, WARNING: 1, OUTAGE: 1, N_A: 0, DISABLED: 0 })).toBe("OUTAGE");
    expect(worst({ OK: 5, WARNING: 1, OUTAGE: 0, N_A: 3, DISABLED: 0 })).toBe("WARNING");
    expect(worst({ OK: 0, WARNING: 0, OUTAGE: 0, N_A: 0, DISABLED: 2 })).toBe("DISABLED");
  });
});

describe("the event log", () => {
  it("filters live changes as the server filters pages", () => {
    const f = { status: "" as const, onlyOutages: false, country: "", actionable: false };
    expect(passes(event("1"), f)).toBe(true);
    expect(passes(event("1", { newStatus: "WARNING" }), { ...f, onlyOutages: true })).toBe(false);
    expect(passes(event("1", { newStatus: "OK" }), { ...f, status: "OK" })).toBe(true);
    expect(passes(event("1"), { ...f, status: "WARNING" })).toBe(false);
    expect(passes(event("1"), { ...f, country: "DE" })).toBe(false);
    expect(passes(event("1"), f, "GSM")).toBe(false);
  });
  it("opens on the changes to act on: to or from WARNING/OUTAGE, as they happened", () => {
    const change = (previousStatus: Status, newStatus: Status, revision = false) => event("1", { previousStatus, newStatus, revision });
    expect(actionable(change("OK", "OUTAGE"))).toBe(true);
    expect(actionable(change("OUTAGE", "OK"))).toBe(true);
    expect(actionable(change("OK", "WARNING"))).toBe(true);
    expect(actionable(change("WARNING", "N_A"))).toBe(true);
    expect(actionable(change("N_A", "OK"))).toBe(false);
    expect(actionable(change("OK", "N_A"))).toBe(false);
    expect(actionable(change("OK", "OUTAGE", true))).toBe(false);
    const f = { status: "" as const, onlyOutages: false, country: "", actionable: true };
    expect(passes(change("N_A", "OK"), f)).toBe(false);
    expect(passes(change("OK", "OUTAGE"), f)).toBe(true);
    expect(passes(change("N_A", "OK"), { ...f, actionable: false })).toBe(true);
  });
  it("keeps each event once, newest first", () => {
    const out = merge([event("3"), event("2")], [event("2"), event("1")]);
    expect(out.map((e) => e.id)).toEqual(["3", "2", "1"]);
  });
});

describe("the incidents", () => {
  it("name their cause: a flow, most of a LoB, most of a country", () => {
    expect(rootName({ country: "CZ", lob: "GSM", kind: "input", flow: "A" })).toBe("CZ / GSM / A");
    expect(rootName({ country: "CZ", lob: "GSM", kind: "forward", flow: "A:BILL" })).toBe("CZ / GSM / A:BILL (forward)");
    expect(rootName({ country: "CZ", lob: "GSM" })).toBe("CZ / GSM — most of the LoB");
    expect(rootName({ country: "CZ" })).toBe("CZ — most of the country");
  });
});

describe("the country calendar", () => {
  it("turns lists into marks and back, sorted", () => {
    const marks = marksOf({ holidays: ["2026-12-25", "2026-01-01"], lazyDays: ["2026-12-28"] });
    expect(marks.get("2026-01-01")).toBe("holiday");
    expect(marks.get("2026-12-28")).toBe("lazy");
    marks.set("2026-12-24", "lazy");
    expect(listsOf(marks)).toEqual({ holidays: ["2026-01-01", "2026-12-25"], lazyDays: ["2026-12-24", "2026-12-28"] });
  });
});

describe("a user's keys", () => {
  it("are summed up per kind: how many, the newest, the last to expire", () => {
    const key = (kind: string, createdAt: string, expiresAt: string | null) => ({ kind, createdAt, expiresAt });
    expect(
      keySummary([
        key("login", "2026-11-26T10:00:00Z", "2026-11-26T22:00:00Z"),
        key("login", "2026-11-26T12:00:00Z", "2026-11-27T00:00:00Z"),
        key("issued", "2026-11-01T00:00:00Z", null),
        key("login", "2026-11-26T11:00:00Z", "2026-11-26T23:00:00Z"),
      ]),
    ).toEqual([
      { kind: "login", count: 3, newest: "2026-11-26T12:00:00Z", expires: "2026-11-27T00:00:00Z" },
      { kind: "issued", count: 1, newest: "2026-11-01T00:00:00Z", expires: null },
    ]);
    expect(keySummary([key("issued", "a", "2026-01-01T00:00:00Z"), key("issued", "b", null)])[0].expires).toBeNull();
  });
});

describe("a cluster member", () => {
  it("is moving while it runs an older plan than it was given", () => {
    const term = 2 ** 32;
    expect(moving({ planEpoch: 3 * term + 5, appliedEpoch: 3 * term + 4 })).toBe(true);
    expect(moving({ planEpoch: 3 * term + 5, appliedEpoch: 3 * term + 5 })).toBe(false);
    // A new leader's first plans are above what the worker ran under the last one.
    expect(moving({ planEpoch: 4 * term + 1, appliedEpoch: 3 * term + 9 })).toBe(true);
    expect(moving({ planEpoch: 0, appliedEpoch: 3 * term })).toBe(false);
  });
});

describe("the worker card's source", () => {
  const worker = { flows: 0, ticks: 0, actorFailures: 0, lastEvaluation: null };
  it("says whose figures these are, or why they are unknown", () => {
    expect(workerSource({ ...worker, source: "in process", workers: null, error: null })).toBe("this process");
    expect(workerSource({ ...worker, source: "cluster", workers: 3, error: null })).toBe("3 workers of the cluster");
    expect(workerSource({ ...worker, source: "cluster", workers: 1, error: null })).toBe("1 worker of the cluster");
    expect(workerSource({ ...worker, source: "unknown", workers: null, error: "no coordinator configured" })).toBe(
      "unknown: no coordinator configured",
    );
  });
});

describe("kafkaLag", () => {
  it("sums what every partition's reader has not stored", () => {
    const part = (partition: number, position: number, highWatermark: number) => ({
      topic: "cdr",
      partition,
      position,
      highWatermark,
      lag: highWatermark - position,
    });
    expect(kafkaLag([])).toBe(0);
    expect(kafkaLag([part(0, 10, 25), part(1, 7, 7), part(2, 0, 3)])).toBe(18);
  });
});
