import { describe, expect, it } from "vitest";
import { monthGrid, nextMark } from "./Calendar";

describe("the calendar", () => {
  it("lays a month out in Monday-first weeks", () => {
    // November 2026 starts on a Sunday and has 30 days.
    const weeks = monthGrid(2026, 10);
    expect(weeks[0]).toEqual([null, null, null, null, null, null, "2026-11-01"]);
    expect(weeks[1][0]).toBe("2026-11-02");
    expect(weeks.flat().filter(Boolean)).toHaveLength(30);
    expect(weeks.every((w) => w.length === 7)).toBe(true);
    // February of a leap year; a month starting on Monday has no leading blanks.
    expect(monthGrid(2024, 1).flat().filter(Boolean)).toHaveLength(29);
    expect(monthGrid(2027, 1)[0][0]).toBe("2027-02-01");
  });
  it("cycles a clicked day through holiday and lazy day", () => {
    expect(nextMark(undefined)).toBe("holiday");
    expect(nextMark("holiday")).toBe("lazy");
    expect(nextMark("lazy")).toBeUndefined();
  });
});
