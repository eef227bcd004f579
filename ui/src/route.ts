// The UI's pages and their URLs: every page is deep-linkable, a flow's page with its range.

import type { FlowRef, Kind } from "./api";
import { addDays, localDate } from "./format";

export interface FlowView {
  /** First local day shown (YYYY-MM-DD). */
  from?: string;
  /** First local day not shown. */
  to?: string;
  /** Another tick length to compute the ticks at (nothing is saved). */
  granularity?: string;
  /** A tick to mark (RFC 3339 start), e.g. from an event. */
  at?: string;
  /** The tab: charts (default) or configuration. */
  tab?: "config";
}

export type Route =
  | { page: "login"; next?: string }
  | { page: "dashboard" }
  | { page: "country"; country: string }
  | { page: "lob"; country: string; lob: string; tab?: "config" }
  | { page: "flow"; flow: FlowRef; view: FlowView }
  | { page: "settings"; country?: string; tab?: "suggestions" }
  | { page: "users" }
  | { page: "incidents" }
  | { page: "silences" }
  | { page: "notifications"; channel?: string }
  | { page: "flapping" }
  | { page: "status" }
  | { page: "notFound"; path: string };

const enc = encodeURIComponent;

function decode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/** The page a path and query name. */
export function parse(pathname: string, search = ""): Route {
  const q = new URLSearchParams(search);
  const raw = pathname.split("/").filter((p) => p !== "");
  const parts = raw.map(decode);
  if (parts.some((p) => p === null)) return { page: "notFound", path: pathname };
  const p = parts as string[];
  const opt = (k: string) => q.get(k) || undefined;
  switch (p[0]) {
    case undefined:
      return { page: "dashboard" };
    case "login":
      return p.length === 1 ? { page: "login", next: opt("next") } : notFound(pathname);
    case "country":
      return p.length === 2 ? { page: "country", country: p[1] } : notFound(pathname);
    case "lob":
      return p.length === 3
        ? { page: "lob", country: p[1], lob: p[2], ...(q.get("tab") === "config" ? { tab: "config" } : {}) }
        : notFound(pathname);
    case "flow": {
      if (p.length !== 5 || (p[3] !== "input" && p[3] !== "forward")) return notFound(pathname);
      const view: FlowView = {};
      for (const k of ["from", "to", "granularity", "at"] as const) {
        const v = opt(k);
        if (v) view[k] = v;
      }
      if (q.get("tab") === "config") view.tab = "config";
      return { page: "flow", flow: { country: p[1], lob: p[2], kind: p[3] as Kind, flow: p[4] }, view };
    }
    case "settings":
      if (p.length > 2) return notFound(pathname);
      return { page: "settings", country: p[1], ...(p[1] && q.get("tab") === "suggestions" ? { tab: "suggestions" as const } : {}) };
    case "users":
      return p.length === 1 ? { page: "users" } : notFound(pathname);
    case "incidents":
      return p.length === 1 ? { page: "incidents" } : notFound(pathname);
    case "silences":
      return p.length === 1 ? { page: "silences" } : notFound(pathname);
    case "notifications":
      return p.length === 1 ? { page: "notifications", ...(opt("channel") ? { channel: opt("channel") } : {}) } : notFound(pathname);
    case "flapping":
      return p.length === 1 ? { page: "flapping" } : notFound(pathname);
    case "status":
      return p.length === 1 ? { page: "status" } : notFound(pathname);
    default:
      return notFound(pathname);
  }
}

function notFound(path: string): Route {
  return { page: "notFound", path };
}

/** The URL of a page (path and query). */
export function href(r: Route): string {
  switch (r.page) {
    case "login":
      return r.next ? `/login?next=${enc(r.next)}` : "/login";
    case "dashboard":
      return "/";
    case "country":
      return `/country/${enc(r.country)}`;
    case "lob":
      return `/lob/${enc(r.country)}/${enc(r.lob)}${r.tab ? `?tab=${r.tab}` : ""}`;
    case "flow": {
      const f = r.flow;
      const q = new URLSearchParams();
      for (const k of ["from", "to", "granularity", "at", "tab"] as const) {
        const v = r.view[k];
        if (v) q.set(k, v);
      }
      const s = q.toString();
      return `/flow/${enc(f.country)}/${enc(f.lob)}/${f.kind}/${enc(f.flow)}${s ? `?${s}` : ""}`;
    }
    case "settings":
      return r.country ? `/settings/${enc(r.country)}${r.tab ? `?tab=${r.tab}` : ""}` : "/settings";
    case "users":
      return "/users";
    case "incidents":
      return "/incidents";
    case "silences":
      return "/silences";
    case "notifications":
      return r.channel ? `/notifications?channel=${enc(r.channel)}` : "/notifications";
    case "flapping":
      return "/flapping";
    case "status":
      return "/status";
    case "notFound":
      return r.path;
  }
}

/** The page of a flow, at a tick or over a range. */
export function flowHref(flow: FlowRef, view: FlowView = {}): string {
  return href({ page: "flow", flow, view });
}

/** The local days shown: as the URL says, around the marked tick, or the last three days. */
export function range(view: FlowView, zone: string, now = new Date()): { from: string; to: string } {
  if (view.from && view.to) return { from: view.from, to: view.to };
  const around = view.at ? localDate(view.at, zone) : localDate(now, zone);
  if (view.at) return { from: view.from ?? addDays(around, -1), to: view.to ?? addDays(around, 2) };
  return { from: view.from ?? addDays(around, -2), to: view.to ?? addDays(around, 1) };
}
