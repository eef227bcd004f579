// What every page shares: the API, the session, navigation, the countries' zones and the live
// stream, and the small pieces every page draws (links, status pills, errors).

import { createContext, useCallback, useContext, useEffect, useRef, useState } from "react";
import type { ReactNode, MouseEvent } from "react";
import { Api, ApiError } from "./api";
import type { Session, Shown, StatusEvent } from "./api";

export interface Live {
  /** Calls `f` with each status change as it arrives; returns the unsubscribe. */
  onStatus(f: (e: StatusEvent) => void): () => void;
  /** Calls `f` with each component report (`GET /api/v1/status`'s answer). */
  onComponents(f: (c: unknown) => void): () => void;
  /** Calls `f` when the views should reload (reconnected, or the stream skipped changes). */
  onReload(f: () => void): () => void;
}

export interface AppContext {
  api: Api;
  session: Session;
  navigate: (to: string, replace?: boolean) => void;
  /** Each country's time zone. */
  zones: Record<string, string>;
  /** Reloads the zones (after a settings change). */
  reloadZones: () => void;
  live: Live;
  connected: boolean;
}

export const Ctx = createContext<AppContext | null>(null);

export function useApp(): AppContext {
  const c = useContext(Ctx);
  if (!c) throw new Error("useApp outside the app");
  return c;
}

/** A country's zone, UTC until the zones are loaded. */
export function useZone(country: string): string {
  return useApp().zones[country] ?? "UTC";
}

/**
 * A link that navigates inside the UI (a new tab with a modifier key, as any link); `current`
 * marks the page or tab shown (styled `.active`, `aria-current` for screen readers).
 */
export function Link(props: {
  to: string;
  children: ReactNode;
  className?: string;
  title?: string;
  current?: boolean;
  "aria-label"?: string;
}) {
  const { navigate } = useApp();
  const click = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a
      href={props.to}
      onClick={click}
      className={[props.className, props.current ? "active" : ""].filter(Boolean).join(" ") || undefined}
      title={props.title}
      aria-label={props["aria-label"]}
      aria-current={props.current ? "page" : undefined}
    >
      {props.children}
    </a>
  );
}

export function StatusPill({ status }: { status: Shown }) {
  return <span className={`pill pill-${status}`}>{status === "N_A" ? "N/A" : status}</span>;
}

export const SHOWN: Shown[] = ["OK", "WARNING", "OUTAGE", "N_A", "DISABLED"];

/** The one row of a table with nothing to list, saying why. */
export function EmptyRow({ columns, children }: { columns: number; children: ReactNode }) {
  return (
    <tr>
      <td colSpan={columns} className="muted">
        {children}
      </td>
    </tr>
  );
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error as ApiError;
  return (
    <div className="error" role="alert">
      {e.message ?? String(error)}
      {e.path ? <span className="error-path"> (at {e.path})</span> : null}
    </div>
  );
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  reload: () => void;
}

/** Loads `f()` now and whenever `deps` change; `reload` loads again keeping the old data. */
export function useLoad<T>(f: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>();
  const [n, setN] = useState(0);
  const latest = useRef(0);
  useEffect(() => {
    const mine = ++latest.current;
    f().then(
      (d) => {
        if (mine !== latest.current) return;
        setData(d);
        setError(undefined);
      },
      (e) => {
        if (mine !== latest.current) return;
        setError(e);
      },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, n]);
  const reload = useCallback(() => setN((x) => x + 1), []);
  return { data, error, reload };
}

export interface Action {
  /** The last action's error, until the next one starts. */
  error: unknown;
  busy: boolean;
  /** Runs `f`; then `after` (a reload) if it succeeded. Whether it succeeded. */
  act: (f: () => Promise<unknown>) => Promise<boolean>;
}

/** A user's action (a save, a delete): busy while it runs, its error kept to show. */
export function useAction(after?: () => void): Action {
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const then = useRef(after);
  then.current = after;
  const act = useCallback(async (f: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await f();
      then.current?.();
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  return { error, busy, act };
}

/** Calls `f` at most once per `ms` while `trigger` keeps being called. */
export function useThrottled(f: () => void, ms: number): () => void {
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const fn = useRef(f);
  fn.current = f;
  useEffect(() => () => {
    if (timer.current) clearTimeout(timer.current);
  }, []);
  return useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      fn.current();
    }, ms);
  }, [ms]);
}

/** Reloads with `reload` on every live status change (throttled) and when the stream asks. */
export function useLiveReload(reload: () => void, wants: (e: StatusEvent) => boolean = () => true) {
  const { live } = useApp();
  const throttled = useThrottled(reload, 300);
  const want = useRef(wants);
  want.current = wants;
  useEffect(() => {
    const a = live.onStatus((e) => {
      if (want.current(e)) throttled();
    });
    const b = live.onReload(throttled);
    return () => {
      a();
      b();
    };
  }, [live, throttled]);
}

/** Calls `f` every `ms` while `on` (new ticks of a flow arrive without status changes). */
export function useEvery(f: () => void, ms: number, on = true) {
  const fn = useRef(f);
  fn.current = f;
  useEffect(() => {
    if (!on) return;
    const t = setInterval(() => fn.current(), ms);
    return () => clearInterval(t);
  }, [ms, on]);
}

/** How often a page showing the latest ticks reads them again. */
export const REFRESH_MS = 60_000;

/** The page's title in the browser's tab. */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = `${title} · flowwatch`;
  }, [title]);
}

export function Loading() {
  return (
    <div className="loading" aria-live="polite">
      Loading…
    </div>
  );
}

/**
 * The configuration's version, which every change is based on: read with the country's
 * calendar (small), or with the whole document when the country has no entry yet.
 */
export async function configVersion(api: Api, country: string): Promise<number> {
  try {
    return (await api.get<{ version: number }>(`/config/countries/${encodeURIComponent(country)}`)).version;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
    return (await api.get<{ version: number }>("/config")).version;
  }
}

/** A change of the configuration of `country`, based on its newest version. */
export async function changeConfig(
  api: Api,
  country: string,
  method: string,
  path: string,
  body?: Record<string, unknown>,
): Promise<unknown> {
  const version = await configVersion(api, country);
  if (body === undefined) return api.request(method, `${path}${path.includes("?") ? "&" : "?"}version=${version}`);
  return api.request(method, path, { version, ...body });
}

export { ApiError };
