import { describe, expect, it } from "vitest";
import { flowHref, href, parse, range } from "./route";
import type { Route } from "./route";

describe("routes", () => {
  it("round-trip through their URLs", () => {
    const routes: Route[] = [
      { page: "dashboard" },
      { page: "login", next: "/flow/CZ/SMS/input/A?from=2026-01-01" },
      { page: "country", country: "CZ" },
      { page: "lob", country: "CZ", lob: "SMS" },
      { page: "lob", country: "CZ", lob: "SMS", tab: "config" },
      {
        page: "flow",
        flow: { country: "CZ", lob: "SMS", kind: "forward", flow: "MSS/BRN1A:CZ FOX?" },
        view: { from: "2026-11-01", to: "2026-11-04", granularity: "15m", at: "2026-11-02T10:00:00Z", tab: "config" },
      },
      { page: "settings" },
      { page: "settings", country: "NL" },
      { page: "settings", country: "NL", tab: "suggestions" },
      { page: "users" },
      { page: "incidents" },
      { page: "silences" },
      { page: "notifications" },
      { page: "notifications", channel: "ops-webhook_1.eu" },
      { page: "flapping" },
      { page: "status" },
    ];
    for (const r of routes) {
      const url = new URL(href(r), "http://x");
      expect(parse(url.pathname, url.search)).toEqual(r);
    }
  });
  it("encode every part of a flow's address", () => {
    expect(flowHref({ country: "CZ", lob: "SMS", kind: "forward", flow: "A:B/C" }, { at: "2026-11-02T10:00:00Z" })).toBe(
      "/flow/CZ/SMS/forward/A%3AB%2FC?at=2026-11-02T10%3A00%3A00Z",
    );
  });
  it("send unknown and malformed paths to not-found", () => {
    expect(parse("/nowhere").page).toBe("notFound");
    expect(parse("/flow/CZ/SMS/sideways/A").page).toBe("notFound");
    expect(parse("/flow/CZ/SMS/input").page).toBe("notFound");
    expect(parse("/country/%E0%A4%A").page).toBe("notFound");
    expect(parse("/silences/s-1").page).toBe("notFound");
    expect(parse("/flapping/CZ").page).toBe("notFound");
    expect(parse("/notifications/ops").page).toBe("notFound");
    // No channel chosen: the list alone.
    expect(parse("/notifications", "?channel=")).toEqual({ page: "notifications" });
    // A tab of no country is no tab.
    expect(parse("/settings", "?tab=suggestions")).toEqual({ page: "settings", country: undefined });
  });
});

describe("a flow page's range", () => {
  const now = new Date("2026-11-26T23:30:00Z"); // already the 27th in Prague
  it("is the last three local days by default", () => {
    expect(range({}, "Europe/Prague", now)).toEqual({ from: "2026-11-25", to: "2026-11-28" });
    expect(range({}, "UTC", now)).toEqual({ from: "2026-11-24", to: "2026-11-27" });
  });
  it("surrounds the tick an event names", () => {
    expect(range({ at: "2026-11-02T23:00:00Z" }, "Europe/Prague", now)).toEqual({ from: "2026-11-02", to: "2026-11-05" });
  });
  it("is what the URL says when it says it", () => {
    expect(range({ from: "2026-01-01", to: "2026-02-01", at: "2026-11-02T23:00:00Z" }, "UTC", now)).toEqual({
      from: "2026-01-01",
      to: "2026-02-01",
    });
  });
});
