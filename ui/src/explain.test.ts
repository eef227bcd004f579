import { describe, expect, it } from "vitest";
import type { Tick } from "./api";
import { explain } from "./explain";

const base: Tick = {
  tickStart: "2017-02-08T09:00:00Z",
  tickEnd: "2017-02-08T10:00:00Z",
  actual: 600,
  expected: 1000,
  dayAverage: 1000,
  tickDifference: 0.6,
  dayDifference: 0.6,
  difference: 0.6,
  status: "WARNING",
};
const levels = { softAlarmLevel: 0.8, hardAlarmLevel: 0.5 };

describe("why a tick has its status", () => {
  it("says which seed level the difference crossed", () => {
    expect(explain({ ...base, status: "OK", difference: 0.9 }, levels, "1h")).toBe("Difference 90.0 % is at or above the soft level 80.0 %.");
    expect(explain(base, levels, "1h")).toBe("Difference 60.0 % is below the soft level 80.0 % once.");
    expect(explain({ ...base, status: "OUTAGE", difference: 0.3 }, levels, "1h")).toMatch(/below the hard level 50.0 %/);
    expect(explain({ ...base, status: "OUTAGE" }, levels, "1h")).toMatch(/second tick in a row/);
  });
  it("shows the adaptive detector's band and evidence", () => {
    // The worked example of core/src/detection/README.md, 10:00 and 11:00.
    const warned = { ...base, lower: 616.2, outageBelow: 500, evidence: 2.254, spread: 0.1044 };
    expect(explain(warned, levels, "1h")).toBe(
      "Adaptive: 600 B/h is below the flow's band here: not OK below 616 B/h, OUTAGE below 500 B/h; evidence 2.3 (2 warns, 4 alarms).",
    );
    const outage = { ...warned, status: "OUTAGE" as const, lower: 779.7, outageBelow: 632.7, evidence: 4.509 };
    expect(explain(outage, levels, "1h")).toMatch(/^Adaptive: 600 B\/h is below .* OUTAGE below 633 B\/h; evidence 4.5\.$/);
    const held = { ...outage, actual: 790, outageBelow: 700, evidence: 3.1 };
    expect(explain(held, levels, "1h")).toMatch(/an outage holds while its evidence lasts \(evidence 3.1/);
    expect(explain({ ...warned, status: "OK", actual: 900 }, undefined, "1h")).toMatch(/^Adaptive: 900 B\/h is within/);
  });
  it("says why there is no expectation", () => {
    expect(explain({ ...base, status: "N_A" }, levels, "1h")).toMatch(/minHistoryDays/);
  });
});
