import { describe, expect, it } from "vitest";
import { addDays, ago, axisTime, bytes, duration, epoch, fromWallClock, granularitySeconds, localDate, localTime, metric, millis, partitionRanges, percent, rate, wallClock, weekday } from "./format";

describe("metric prefixes", () => {
  it("writes bytes with one decimal below ten and none above", () => {
    expect(bytes(0)).toBe("0 B");
    expect(bytes(5)).toBe("5 B");
    expect(bytes(999)).toBe("999 B");
    expect(bytes(9_040_000)).toBe("9 MB");
    expect(bytes(1_230_000_000)).toBe("1.2 GB");
    expect(bytes(12_400_000)).toBe("12 MB");
    expect(bytes(532_000)).toBe("532 kB");
    expect(bytes(2.5e15)).toBe("2.5 PB");
  });
  it("carries a rounding into the next prefix", () => {
    expect(metric(999_600)).toBe("1 M");
    expect(metric(9_960)).toBe("10 k");
    expect(metric(999_499)).toBe("999 k");
  });
  it("keeps signs, fractions and missing values", () => {
    expect(metric(-1500)).toBe("-1.5 k");
    expect(metric(0.5)).toBe("0.5");
    expect(bytes(null)).toBe("–");
    expect(bytes(Number.NaN)).toBe("–");
  });
  it("writes a tick's bytes as a rate of its granularity", () => {
    expect(rate(1_200_000_000, "1h")).toBe("1.2 GB/h");
    expect(rate(40_000_000, "15m")).toBe("40 MB/15 min");
    expect(rate(3e9, "1d")).toBe("3 GB/d");
    expect(rate(1000, "30s")).toBe("1 kB/30 s");
    expect(rate(1000, "2h")).toBe("1 kB/2 h");
    expect(rate(1000, "nonsense")).toBe("1 kB");
  });
});

describe("granularities", () => {
  it("reads SPEC §5's forms", () => {
    expect(granularitySeconds("30s")).toBe(30);
    expect(granularitySeconds("15m")).toBe(900);
    expect(granularitySeconds("2h")).toBe(7200);
    expect(granularitySeconds("1d")).toBe(86_400);
    expect(granularitySeconds("20")).toBe(1200);
    expect(granularitySeconds(20)).toBe(1200);
    expect(granularitySeconds("0m")).toBeNull();
    expect(granularitySeconds("1w")).toBeNull();
    expect(granularitySeconds(1.5)).toBeNull();
  });
});

describe("numbers and lengths", () => {
  it("writes differences as percentages", () => {
    expect(percent(0.973)).toBe("97.3 %");
    expect(percent(1)).toBe("100.0 %");
    expect(percent(12.5)).toBe("1250 %");
    expect(percent(null)).toBe("–");
  });
  it("writes durations in the two largest units", () => {
    expect(duration(45)).toBe("45 s");
    expect(duration(12 * 60 + 5)).toBe("12 min");
    expect(duration(2 * 3600 + 8 * 60)).toBe("2 h 8 min");
    expect(duration(3600)).toBe("1 h");
    expect(duration(86_400 + 7 * 3600 + 59)).toBe("1 d 7 h");
  });
});

describe("relative times", () => {
  it("say how long ago, or in how long", () => {
    const now = new Date("2026-11-26T12:00:00Z");
    expect(ago("2026-11-26T11:59:33Z", now)).toBe("27 s ago");
    expect(ago("2026-11-26T09:52:00Z", now)).toBe("2 h 8 min ago");
    expect(ago("2026-11-26T12:05:00Z", now)).toBe("in 5 min");
  });
});

describe("local time of the flow's country", () => {
  it("names the zone and follows daylight saving time", () => {
    expect(localTime("2026-11-26T11:00:00Z", "Europe/Prague")).toBe("2026-11-26 12:00 CET");
    expect(localTime("2026-07-01T11:00:00Z", "Europe/Prague")).toBe("2026-07-01 13:00 CEST");
    // The spring change: 01:59:59 UTC+1 is followed by 03:00 UTC+2.
    expect(localTime("2017-03-26T01:00:00Z", "Europe/Prague")).toBe("2017-03-26 03:00 CEST");
    expect(localTime(0, "UTC")).toBe("1970-01-01 00:00 UTC");
  });
  it("gives the local date, which may differ from the UTC one", () => {
    expect(localDate("2026-11-25T23:30:00Z", "Europe/Prague")).toBe("2026-11-26");
    expect(localDate("2026-11-25T23:30:00Z", "UTC")).toBe("2026-11-25");
  });
  it("labels a time axis with dates at midnight and 24-hour times", () => {
    expect(axisTime(Date.parse("2026-11-24T23:00:00Z") / 1000, "Europe/Prague")).toBe("11-25");
    expect(axisTime(Date.parse("2026-11-25T14:00:00Z") / 1000, "Europe/Prague")).toBe("15:00");
  });
  it("counts days across month and year ends", () => {
    expect(addDays("2026-12-31", 1)).toBe("2027-01-01");
    expect(addDays("2024-03-01", -1)).toBe("2024-02-29");
    expect(addDays("2026-03-29", 1)).toBe("2026-03-30");
  });
});

describe("the cluster", () => {
  it("writes partitions as sorted ranges", () => {
    expect(partitionRanges([9, 0, 1, 2, 3, 7, 10])).toBe("0-3,7,9-10");
    expect(partitionRanges([5])).toBe("5");
    expect(partitionRanges([4, 3, 3])).toBe("3-4");
    expect(partitionRanges([])).toBe("–");
  });
  it("writes an epoch as its term and the term's plan count", () => {
    expect(epoch(5 * 2 ** 32 + 3)).toBe("5.3");
    expect(epoch(2 ** 32)).toBe("1.0");
    expect(epoch(0)).toBe("0.0");
  });
  it("writes a heartbeat's age in milliseconds, then seconds", () => {
    expect(millis(120)).toBe("120 ms");
    expect(millis(999.6)).toBe("1 s");
    expect(millis(1500)).toBe("1.5 s");
    expect(millis(2000)).toBe("2 s");
    expect(millis(12_000)).toBe("12 s");
    expect(millis(180_000)).toBe("3 min");
    expect(millis(Number.NaN)).toBe("–");
  });
});

describe("wall-clock times of a zone", () => {
  it("read back as the instants they name", () => {
    expect(wallClock("2026-12-02T20:14:00Z", "Europe/Prague")).toBe("2026-12-02T21:14");
    expect(fromWallClock("2026-12-02T21:14", "Europe/Prague")?.toISOString()).toBe("2026-12-02T20:14:00.000Z");
    expect(fromWallClock("2026-07-02T21:14", "Europe/Prague")?.toISOString()).toBe("2026-07-02T19:14:00.000Z");
    expect(fromWallClock("2026-07-02T09:00", "America/New_York")?.toISOString()).toBe("2026-07-02T13:00:00.000Z");
    expect(fromWallClock("2026-07-02T09:00", "UTC")?.toISOString()).toBe("2026-07-02T09:00:00.000Z");
  });
  it("take a time a DST change skips as after it, a repeated one as its first", () => {
    // Prague springs forward at 02:00 on 2026-03-29 and falls back at 03:00 on 2026-10-25.
    expect(fromWallClock("2026-03-29T02:30", "Europe/Prague")?.toISOString()).toBe("2026-03-29T01:30:00.000Z");
    expect(fromWallClock("2026-03-29T10:00", "Europe/Prague")?.toISOString()).toBe("2026-03-29T08:00:00.000Z");
    expect(fromWallClock("2026-10-25T02:30", "Europe/Prague")?.toISOString()).toBe("2026-10-25T00:30:00.000Z");
    expect(fromWallClock("2026-10-25T10:00", "Europe/Prague")?.toISOString()).toBe("2026-10-25T09:00:00.000Z");
  });
  it("refuse what is not one", () => {
    expect(fromWallClock("", "UTC")).toBeNull();
    expect(fromWallClock("2026-02-30T10:00", "UTC")).toBeNull();
    expect(fromWallClock("2026-12-02 10:00", "UTC")).toBeNull();
    expect(fromWallClock("2026-12-02T24:00", "UTC")).toBeNull();
  });
  it("name their weekday, Monday first", () => {
    expect(weekday("2026-11-30")).toBe(0);
    expect(weekday("2026-12-06")).toBe(6);
  });
});
