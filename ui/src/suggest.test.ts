import { describe, expect, it } from "vitest";
import { ApiError } from "./api";
import {
  apiPath,
  applyText,
  dayName,
  dayText,
  periodText,
  share,
  stale,
  suggestionKey,
  suggestionsPath,
  suggestionsRangeProblem,
  weekdayText,
} from "./suggest";
import type { DaySuggestion, WeekdaySuggestion } from "./suggest";

const day = (over: Partial<DaySuggestion> = {}, evidence: Partial<DaySuggestion["evidence"]> = {}): DaySuggestion => ({
  date: "2017-01-25",
  kind: "holiday",
  evidence: {
    flows: 4,
    low: 4,
    ratio: 0.452,
    sundayRatio: 0.97,
    bytes: 4_100_000_000,
    usualBytes: 9_060_000_000,
    compared: ["2017-01-18", "2017-02-01"],
    ...evidence,
  },
  apply: { method: "PATCH", path: "/api/v1/config/countries/CZ", body: { version: 7, holidays: ["2017-01-01", "2017-01-25"] } },
  ...over,
});

const weekdays = (over: Partial<WeekdaySuggestion> = {}, evidence: Partial<WeekdaySuggestion["evidence"]> = {}): WeekdaySuggestion => ({
  lob: "GSM",
  weekday: 4,
  evidence: { peers: [0, 1, 2, 3], ratio: 1.4, weeks: 24, consistent: 24, flows: 4, of: 4, ...evidence },
  apply: { method: "PATCH", path: "/api/v1/config/countries/CZ/lobs/GSM", body: { version: 7, settings: { independentDays: [4, 6] } } },
  ...over,
});

describe("a day suggestion", () => {
  it("says what the day looks like, with its evidence", () => {
    expect(dayText(day())).toBe(
      "Wed 2017-01-25 looks like a holiday: 4 of 4 flows below 85 % of their similar days, median 45 % (4.1 GB, usually 9.1 GB); " +
        "as low as a Sunday (97 % of the nearby Sundays); compared with: Wed 2017-01-18, Wed 2017-02-01",
    );
  });
  it("says a lazy day is above a Sunday, and when no Sunday was near", () => {
    expect(dayText(day({ kind: "lazyDay" }, { low: 3, sundayRatio: 1.62, compared: [] }))).toBe(
      "Wed 2017-01-25 looks like a lazy day: 3 of 4 flows below 85 % of their similar days, median 45 % (4.1 GB, usually 9.1 GB); " +
        "above a Sunday (162 % of the nearby Sundays)",
    );
    expect(dayText(day({}, { flows: 1, low: 1, sundayRatio: null, compared: ["2017-01-18"] }))).toMatch(
      /1 of 1 flow below .*; no Sunday nearby to compare with; compared with: Wed 2017-01-18$/,
    );
  });
  it("names a date with its weekday", () => {
    expect(dayName("2026-12-06")).toBe("Sun 2026-12-06");
    expect(share(0.845)).toBe("85 %");
  });
});

describe("a weekday suggestion", () => {
  it("says which weekday of a LoB differs from which, how much and how consistently", () => {
    expect(weekdayText(weekdays())).toBe("GSM: Friday differs from Mon–Thu: 1.40× in 24 of 24 weeks (counted per flow), all 4 flows");
    expect(weekdayText(weekdays({ weekday: 6 }, { peers: [5], ratio: 0.8146, weeks: 33, consistent: 30, flows: 10, of: 11 }))).toBe(
      "GSM: Sunday differs from Saturday: 0.81× in 30 of 33 weeks (counted per flow), 10 of 11 flows",
    );
  });
  it("names the flow when only it shows it", () => {
    const flow = weekdays({ lob: "MMS", weekday: 6, flow: { kind: "forward", name: "CZMMS25:CZ-FOX", input: "CZMMS25" } }, {
      peers: [5],
      ratio: 0.866,
      weeks: 3,
      consistent: 3,
      flows: 1,
      of: 1,
    });
    expect(weekdayText(flow)).toBe("MMS / CZMMS25:CZ-FOX (forward): Sunday differs from Saturday: 0.87× in 3 of 3 weeks");
    expect(applyText({ ...flow, apply: { ...flow.apply, body: { version: 1, settings: { independentDays: [6] } } } }, "CZ")).toBe(
      "Applying sets independentDays [6] on the flow CZMMS25:CZ-FOX: Sundays are compared only with Sundays.",
    );
  });
});

describe("applying a suggestion", () => {
  it("says what changes", () => {
    expect(applyText(day(), "CZ")).toBe("Applying adds 2017-01-25 to the holidays of CZ.");
    expect(applyText(day({ kind: "lazyDay" }), "CZ")).toBe("Applying adds 2017-01-25 to the lazy days of CZ.");
    expect(applyText(weekdays(), "CZ")).toBe("Applying sets independentDays [4,6] on the LoB GSM: Fridays are compared only with Fridays.");
  });
  it("sends the server's request under the API's base", () => {
    expect(apiPath("/api/v1/config/countries/CZ")).toBe("/config/countries/CZ");
    expect(apiPath("/api/v1/config/flows/CZ/MMS/forward/CZMMS25%3ACZ-FOX")).toBe("/config/flows/CZ/MMS/forward/CZMMS25%3ACZ-FOX");
    expect(apiPath("/config/countries/CZ")).toBe("/config/countries/CZ");
  });
  it("knows a refusal because the configuration changed since", () => {
    expect(stale(new ApiError(409, "version_conflict", "configuration version conflict"))).toBe(true);
    expect(stale(new ApiError(400, "invalid_config", "invalid weekday 9"))).toBe(false);
    expect(stale(new Error("boom"))).toBe(false);
  });
  it("keys each suggestion apart", () => {
    const keys = [
      suggestionKey(day()),
      suggestionKey(day({ kind: "lazyDay" })),
      suggestionKey(weekdays()),
      suggestionKey(weekdays({ flow: { kind: "input", name: "A", input: null } })),
    ];
    expect(new Set(keys).size).toBe(4);
  });
});

describe("the suggestions asked", () => {
  it("cover the server's default or the days given", () => {
    expect(suggestionsPath("CZ")).toBe("/suggestions?country=CZ");
    expect(suggestionsPath("C Z", { from: "2026-10-07", to: "2026-12-02" })).toBe("/suggestions?country=C+Z&from=2026-10-07&to=2026-12-02");
    expect(periodText("2026-10-07", "2026-12-02")).toBe("2026-10-07 to 2026-12-01 (8 weeks)");
    expect(periodText("2026-12-01", "2026-12-02")).toBe("2026-12-01 to 2026-12-01 (1 day)");
    expect(periodText("2026-11-01", "2026-12-02")).toBe("2026-11-01 to 2026-12-01 (31 days)");
  });
  it("refuse a range the API would refuse", () => {
    expect(suggestionsRangeProblem("2026-06-01", "2026-12-01")).toBeNull();
    expect(suggestionsRangeProblem("2026-01-01", "2026-12-01")).toBe("334 days: at most 190");
    expect(suggestionsRangeProblem("2026-12-01", "2026-12-01")).toBe("the end must be after the start");
  });
});
