import { describe, expect, it } from "vitest";
import { backtestBody, change, daysBetween, lastDays, rangeProblem } from "./backtest";

describe("backtest", () => {
  it("defaults to the last days up to today included", () => {
    expect(lastDays("2026-03-10", 14)).toEqual({ from: "2026-02-25", to: "2026-03-11" });
    expect(daysBetween("2026-02-25", "2026-03-11")).toBe(14);
    // Across a month and a DST change the days are calendar days.
    expect(lastDays("2026-03-31", 1)).toEqual({ from: "2026-03-31", to: "2026-04-01" });
  });

  it("refuses a range the API would refuse", () => {
    expect(rangeProblem("2026-01-01", "2026-01-15")).toBeNull();
    expect(rangeProblem("2026-01-01", "2026-04-03")).toBeNull();
    expect(rangeProblem("2026-01-01", "2026-04-04")).toBe("93 days: at most 92");
    expect(rangeProblem("2026-01-02", "2026-01-02")).toBe("the end must be after the start");
    expect(rangeProblem("", "2026-01-02")).toBe("pick both dates");
  });

  it("asks for the candidate in place of the scope's own settings", () => {
    const scope = { country: "CZ", lob: "GSM" };
    expect(backtestBody("2026-01-01", "2026-01-15", scope, { softAlarmLevel: 0.7 })).toEqual({
      from: "2026-01-01",
      to: "2026-01-15",
      scope,
      candidate: { softAlarmLevel: 0.7 },
      replace: true,
    });
  });

  it("writes a change as the command line does", () => {
    expect(change(4, 6)).toBe("+50.0 %");
    expect(change(3, 1)).toBe("-66.7 %");
    expect(change(2, 2)).toBe("0.0 %");
    expect(change(0, 3)).toBe("+3");
    expect(change(0, 0)).toBe("=");
  });
});
