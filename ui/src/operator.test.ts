import { describe, expect, it } from "vitest";
import type { FlowRef, Silence } from "./api";
import { statusEvent } from "./testing";
import {
  ackSummary,
  ackText,
  byState,
  canAcknowledge,
  covers,
  flappingSettled,
  daysText,
  inWindow,
  latestOfFlows,
  newSilenceForm,
  rezone,
  scopeText,
  silenceBody,
  silenceEnded,
  silenceProblems,
  silencing,
  sortSilences,
  stateText,
  weeklyText,
  windowText,
} from "./operator";

const flow = (kind: FlowRef["kind"], name: string, lob = "GSM", country = "CZ"): FlowRef => ({ country, lob, kind, flow: name });

const silence = (id: string, over: Partial<Silence> = {}): Silence => ({
  id,
  scope: { country: "CZ", lob: "GSM" },
  from: "2026-12-02T20:00:00Z",
  to: "2026-12-02T22:00:00Z",
  comment: "maintenance",
  createdBy: "root",
  createdAt: "2026-12-02T19:55:00Z",
  state: "active",
  ...over,
});

const event = statusEvent;

describe("a silence's scope", () => {
  it("is said in words", () => {
    expect(scopeText({ country: "CZ" })).toBe("CZ — every flow of the country");
    expect(scopeText({ country: "CZ", lob: "GSM" })).toBe("CZ / GSM — every flow of the LoB");
    expect(scopeText({ country: "CZ", lob: "GSM", kind: "input", flow: "A" })).toBe("CZ / GSM / A with its forwards");
    expect(scopeText({ country: "CZ", lob: "GSM", kind: "forward", flow: "A:FOX" })).toBe("CZ / GSM / A:FOX (forward)");
    expect(scopeText({ country: "CZ", lob: "GSM", kind: "forward" })).toBe("CZ / GSM — every forward");
    expect(scopeText({ country: "CZ", lob: "GSM", kind: "input" })).toBe("CZ / GSM — every input with its forwards");
  });
  it("covers what the server's covers: an input with its forwards", () => {
    const input = { country: "CZ", lob: "GSM", kind: "input" as const, flow: "A" };
    expect(covers(input, flow("input", "A"))).toBe(true);
    expect(covers(input, flow("forward", "A:FOX"))).toBe(true);
    expect(covers(input, flow("forward", "AB:FOX"))).toBe(false);
    expect(covers(input, flow("input", "B"))).toBe(false);
    expect(covers(input, flow("input", "A", "SMS"))).toBe(false);
    const forward = { country: "CZ", lob: "GSM", kind: "forward" as const, flow: "A:FOX" };
    expect(covers(forward, flow("forward", "A:FOX"))).toBe(true);
    expect(covers(forward, flow("input", "A"))).toBe(false);
    expect(covers({ country: "CZ", lob: "GSM", kind: "forward" }, flow("input", "A"))).toBe(false);
    expect(covers({ country: "CZ", lob: "GSM", kind: "forward" }, flow("forward", "A:X"))).toBe(true);
    expect(covers({ country: "CZ", lob: "GSM", kind: "input" }, flow("forward", "A:X"))).toBe(true);
    expect(covers({ country: "CZ" }, flow("forward", "A:X", "SMS"))).toBe(true);
    expect(covers({ country: "CZ" }, flow("input", "A", "SMS", "DE"))).toBe(false);
  });
});

describe("a silence's window", () => {
  it("writes weekdays as runs", () => {
    expect(daysText([0, 1, 2, 3, 4])).toBe("Mon–Fri");
    expect(daysText([3, 1])).toBe("Tue, Thu");
    expect(daysText([5, 6])).toBe("Sat, Sun");
    expect(daysText([0, 2, 3, 4, 6])).toBe("Mon, Wed–Fri, Sun");
    expect(daysText([0, 1, 2, 3, 4, 5, 6])).toBe("every day");
  });
  it("says when a weekly window ends the next day", () => {
    expect(weeklyText({ days: [0, 1, 2, 3, 4], start: "22:00", end: "06:00" })).toBe("Mon–Fri 22:00–06:00 (next day)");
    expect(weeklyText({ days: [5], start: "01:00", end: "05:30" })).toBe("Sat 01:00–05:30");
    expect(weeklyText({ days: [5], start: "22:00", end: "00:00" })).toBe("Sat 22:00–00:00 (next day)");
  });
  it("is written in the country's zone, the end's date left out on the same day", () => {
    expect(windowText(silence("s"), "Europe/Prague")).toBe("2026-12-02 21:00 → 23:00 CET (2 h)");
    expect(windowText(silence("s", { to: "2026-12-03T01:30:00Z" }), "Europe/Prague")).toBe(
      "2026-12-02 21:00 CET → 2026-12-03 02:30 CET (5 h 30 min)",
    );
    expect(windowText(silence("s", { weekly: { days: [1, 3], start: "22:00", end: "02:00" } }), "UTC")).toBe(
      "Tue, Thu 22:00–02:00 (next day), 2026-12-02 20:00 → 22:00 UTC (2 h)",
    );
  });
  it("knows whether now is inside a weekly window, past midnight included", () => {
    const w = { days: [1], start: "22:00", end: "02:00" }; // Tuesday night
    // 2026-12-01 is a Tuesday; Prague is UTC+1 in December.
    expect(inWindow(w, new Date("2026-12-01T21:30:00Z"), "Europe/Prague")).toBe(true); // Tue 22:30
    expect(inWindow(w, new Date("2026-12-02T00:30:00Z"), "Europe/Prague")).toBe(true); // Wed 01:30
    expect(inWindow(w, new Date("2026-12-02T01:30:00Z"), "Europe/Prague")).toBe(false); // Wed 02:30
    expect(inWindow(w, new Date("2026-12-01T20:30:00Z"), "Europe/Prague")).toBe(false); // Tue 21:30
    expect(inWindow({ days: [1], start: "08:00", end: "10:00" }, new Date("2026-12-01T08:59:00Z"), "UTC")).toBe(true);
    expect(inWindow({ days: [1], start: "08:00", end: "10:00" }, new Date("2026-12-01T10:00:00Z"), "UTC")).toBe(false);
  });
  it("says where a silence stands", () => {
    const now = new Date("2026-12-02T20:15:00Z");
    expect(stateText(silence("s"), now, "UTC")).toBe("ends in 1 h 45 min");
    expect(stateText(silence("s", { state: "scheduled", from: "2026-12-02T21:15:00Z" }), now, "UTC")).toBe("starts in 1 h");
    expect(stateText(silence("s", { state: "ended", endedAt: "2026-12-02T20:05:00Z" }), now, "UTC")).toBe("ended 10 min ago (early)");
    expect(stateText(silence("s", { state: "ended", to: "2026-12-02T19:15:00Z" }), now, "UTC")).toBe("ended 1 h ago");
    expect(stateText(silence("s", { weekly: { days: [2], start: "20:00", end: "21:00" } }), now, "UTC")).toBe("in a window now, ends in 1 h 45 min");
    expect(stateText(silence("s", { weekly: { days: [3], start: "20:00", end: "21:00" } }), now, "UTC")).toBe("between windows, ends in 1 h 45 min");
  });
});

describe("the silences listed", () => {
  it("come active first, then scheduled, then ended, each in the server's order", () => {
    const list = [
      silence("e1", { state: "ended" }),
      silence("s1", { state: "scheduled" }),
      silence("a1"),
      silence("e2", { state: "ended" }),
      silence("a2"),
    ];
    expect(sortSilences(list).map((s) => s.id)).toEqual(["a1", "a2", "s1", "e1", "e2"]);
    expect(byState(list).scheduled.map((s) => s.id)).toEqual(["s1"]);
  });
  it("name the one keeping a flow quiet now", () => {
    const now = new Date("2026-12-02T21:00:00Z");
    const list = [
      silence("ended", { state: "ended" }),
      silence("other", { scope: { country: "CZ", lob: "SMS" } }),
      silence("weekly-off", { weekly: { days: [0], start: "00:00", end: "01:00" } }),
      silence("lob"),
    ];
    expect(silencing(list, flow("forward", "A:X"), now, "UTC")?.id).toBe("lob");
    expect(silencing(list.slice(0, 3), flow("input", "A"), now, "UTC")).toBeUndefined();
  });
});

describe("the silence form", () => {
  const now = new Date("2026-12-02T20:14:28Z");
  it("starts now (its minute) and lasts two hours, on the country's wall clock", () => {
    const f = newSilenceForm({ country: "CZ", lob: "GSM", kind: "input", flow: "A" }, now, "Europe/Prague");
    expect(f).toMatchObject({ country: "CZ", lob: "GSM", kind: "input", flow: "A", from: "2026-12-02T21:14", to: "2026-12-02T23:14", weekly: false, comment: "" });
    expect(newSilenceForm({ country: "CZ" }, now, "UTC")).toMatchObject({ lob: "", kind: "", flow: "" });
  });
  it("keeps its instants when its zone changes", () => {
    expect(rezone("2026-12-02T20:14", "UTC", "Europe/Prague")).toBe("2026-12-02T21:14");
    expect(rezone("2026-07-02T21:14", "Europe/Prague", "UTC")).toBe("2026-07-02T19:14");
    expect(rezone("", "UTC", "Europe/Prague")).toBe("");
  });
  it("finds the problems the server would, by the same field names", () => {
    const ok = { ...newSilenceForm({ country: "CZ", lob: "GSM" }, now, "UTC"), comment: "switch upgrade" };
    expect(silenceProblems(ok, "UTC")).toEqual({});
    expect(silenceProblems({ ...ok, comment: "  " }, "UTC")).toEqual({ comment: "say why the flows are silenced" });
    expect(silenceProblems({ ...ok, to: ok.from }, "UTC")).toEqual({ to: "not after from" });
    expect(silenceProblems({ ...ok, from: "" }, "UTC")).toEqual({ from: "not a date and time" });
    expect(silenceProblems({ ...ok, lob: "", flow: "A", kind: "input" }, "UTC")).toEqual({ "scope.lob": "a kind or a flow needs its LoB" });
    expect(silenceProblems({ ...ok, flow: "A" }, "UTC")).toEqual({ "scope.kind": "a flow needs its kind (input or forward)" });
    expect(silenceProblems({ ...ok, country: "" }, "UTC")).toEqual({ "scope.country": "choose a country" });
    const weekly = { ...ok, weekly: true };
    expect(silenceProblems(weekly, "UTC")).toEqual({});
    expect(silenceProblems({ ...weekly, days: [] }, "UTC")).toEqual({ "weekly.days": "choose at least one day" });
    expect(silenceProblems({ ...weekly, start: "25:00" }, "UTC")).toEqual({ "weekly.start": "not a time of day (HH:MM)" });
    expect(silenceProblems({ ...weekly, end: weekly.start }, "UTC")).toEqual({ "weekly.end": "the window is empty (end = start)" });
    // The weekly fields count only when the silence repeats.
    expect(silenceProblems({ ...ok, days: [] }, "UTC")).toEqual({});
  });
  it("sends the scope's given parts and the times in UTC", () => {
    const f = { ...newSilenceForm({ country: "CZ", lob: "GSM", kind: "forward", flow: "A:X" }, now, "Europe/Prague"), comment: " upgrade " };
    expect(silenceBody(f, "Europe/Prague")).toEqual({
      scope: { country: "CZ", lob: "GSM", kind: "forward", flow: "A:X" },
      from: "2026-12-02T20:14:00Z",
      to: "2026-12-02T22:14:00Z",
      comment: "upgrade",
    });
    const weekly = { ...newSilenceForm({ country: "CZ" }, now, "UTC"), comment: "nightly", weekly: true, days: [4, 0] };
    expect(silenceBody(weekly, "UTC")).toEqual({
      scope: { country: "CZ" },
      from: "2026-12-02T20:14:00Z",
      to: "2026-12-02T22:14:00Z",
      comment: "nightly",
      weekly: { days: [0, 4], start: "22:00", end: "06:00" },
    });
  });
});

describe("acknowledging", () => {
  it("is offered on the latest listed change of a flow to WARNING or OUTAGE, once", () => {
    const events = [
      event("a-ok", { tickTime: "2026-12-02T12:00:00Z", previousStatus: "OUTAGE", newStatus: "OK" }),
      event("a-out", { tickTime: "2026-12-02T11:00:00Z" }),
      event("b-warn", { flowName: "B", newStatus: "WARNING" }),
      event("c-out", { flowName: "C", acknowledged: { by: "root", at: "2026-12-02T12:00:00Z", comment: "on it" } }),
      event("d-out", { flowName: "A", kind: "forward" }),
    ];
    const latest = latestOfFlows(events);
    expect([...latest].sort()).toEqual(["a-ok", "b-warn", "c-out", "d-out"]);
    expect(events.filter((e) => canAcknowledge(e, latest)).map((e) => e.id)).toEqual(["b-warn", "d-out"]);
  });
  it("takes the later detection of the same tick as the latest", () => {
    const events = [event("first", { time: "2026-12-02T11:00:00Z" }), event("second", { time: "2026-12-02T11:05:00Z", newStatus: "WARNING" })];
    expect([...latestOfFlows(events)]).toEqual(["second"]);
  });
  it("says who, when and why, and how many of a country's alarms", () => {
    expect(ackText({ by: "root", at: "2026-12-02T20:14:36Z", comment: "on it" }, "Europe/Prague")).toBe("root, 2026-12-02 21:14 CET: on it");
    expect(ackSummary(2, 5)).toBe("2 of 5 acknowledged");
    expect(ackSummary(0, 3)).toBe("0 of 3 acknowledged");
    expect(ackSummary(0, 0)).toBe("");
  });
  it("knows the alarm sent at a silence's end", () => {
    expect(silenceEnded(event("CZ/GSM/input/A@2026-12-02T10:00:00Z:OK>OUTAGE:silence-ended"))).toBe(true);
    expect(silenceEnded(event("CZ/GSM/input/A@2026-12-02T10:00:00Z:OK>OUTAGE"))).toBe(false);
  });
  it("knows the summary sent when a flapping flow settled", () => {
    expect(flappingSettled(event("CZ/GSM/input/A@2026-12-02T10:00:00Z:WARNING>OK:flapping-settled"))).toBe(true);
    expect(flappingSettled(event("CZ/GSM/input/A@2026-12-02T10:00:00Z:WARNING>OK"))).toBe(false);
    expect(silenceEnded(event("CZ/GSM/input/A@2026-12-02T10:00:00Z:WARNING>OK:flapping-settled"))).toBe(false);
  });
});
