// The shell: login or the pages, the navigation bar, the theme, the one live stream.

import { StrictMode, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import "uplot/dist/uPlot.min.css";
import "./styles.css";
import { Api } from "./api";
import type { Session, StatusEvent } from "./api";
import { Ctx, Link } from "./app";
import type { AppContext, Live } from "./app";
import { follow } from "./live";
import { href, parse } from "./route";
import type { Route } from "./route";
import { Login } from "./pages/Login";
import { Dashboard } from "./pages/Dashboard";
import { Country } from "./pages/Country";
import { Lob } from "./pages/Lob";
import { Flow } from "./pages/Flow";
import { Settings } from "./pages/Settings";
import { Users } from "./pages/Users";
import { Incidents } from "./pages/Incidents";
import { Silences } from "./pages/Silences";
import { Notifications } from "./pages/Notifications";
import { Flapping } from "./pages/Flapping";
import { SystemStatus } from "./pages/SystemStatus";

const api = new Api();

type Theme = "light" | "dark";

function initialTheme(): Theme {
  const saved = localStorage.getItem("flowwatch.theme");
  if (saved === "light" || saved === "dark") return saved;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function currentRoute(): Route {
  return parse(location.pathname, location.search);
}

/** Subscribers of the live stream's events. */
class Hub implements Live {
  status = new Set<(e: StatusEvent) => void>();
  components = new Set<(c: unknown) => void>();
  reload = new Set<() => void>();
  onStatus(f: (e: StatusEvent) => void) {
    this.status.add(f);
    return () => void this.status.delete(f);
  }
  onComponents(f: (c: unknown) => void) {
    this.components.add(f);
    return () => void this.components.delete(f);
  }
  onReload(f: () => void) {
    this.reload.add(f);
    return () => void this.reload.delete(f);
  }
}

function App() {
  const [session, setSession] = useState<Session | null>(api.session);
  const [route, setRoute] = useState<Route>(currentRoute);
  const [theme, setTheme] = useState<Theme>(initialTheme);
  const [zones, setZones] = useState<Record<string, string>>({});
  const [connected, setConnected] = useState(false);
  const hub = useRef(new Hub()).current;

  useEffect(() => api.onSession(setSession), []);
  useEffect(() => {
    const pop = () => setRoute(currentRoute());
    addEventListener("popstate", pop);
    return () => removeEventListener("popstate", pop);
  }, []);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("flowwatch.theme", theme);
  }, [theme]);

  const navigate = useCallback((to: string, replace = false) => {
    if (replace) history.replaceState(null, "", to);
    else history.pushState(null, "", to);
    setRoute(currentRoute());
    if (!replace) scrollTo(0, 0);
  }, []);

  const loadZones = useCallback(() => {
    api
      .get<{ countries: Record<string, unknown> }>("/dashboard")
      .then((d) =>
        Promise.all(
          Object.keys(d.countries).map((c) =>
            api
              .get<{ timezone: string }>(`/config/countries/${encodeURIComponent(c)}`)
              .then((x) => [c, x.timezone] as const, () => [c, "UTC"] as const),
          ),
        ),
      )
      .then((pairs) => setZones(Object.fromEntries(pairs)), () => undefined);
  }, []);

  // One live stream for every page while logged in.
  useEffect(() => {
    if (!session) return;
    loadZones();
    const stop = new AbortController();
    let reconnect = false;
    follow(
      api,
      "",
      {
        onEvent: (name, data) => {
          if (name === "status") for (const f of hub.status) f(data as StatusEvent);
          else if (name === "components") for (const f of hub.components) f(data);
          else if (name === "lagged") for (const f of hub.reload) f();
        },
        onConnection: (up) => {
          setConnected(up);
          if (up && reconnect) for (const f of hub.reload) f();
          if (up) reconnect = true;
        },
      },
      stop.signal,
    );
    return () => stop.abort();
  }, [session, hub, loadZones]);

  // Logged out: every page but the login page sends there, and back after logging in.
  useEffect(() => {
    if (!session && route.page !== "login") navigate(href({ page: "login", next: location.pathname + location.search }), true);
    if (session && route.page === "login") navigate(route.next && route.next.startsWith("/") ? route.next : "/", true);
  }, [session, route, navigate]);

  const ctx: AppContext | null = useMemo(
    () => (session ? { api, session, navigate, zones, reloadZones: loadZones, live: hub, connected } : null),
    [session, navigate, zones, loadZones, hub, connected],
  );

  if (!session || !ctx) return <Login api={api} />;
  const root = session.role === "root";
  const nav: [string, string, boolean][] = [
    ["/", "Dashboard", route.page === "dashboard" || route.page === "country" || route.page === "lob" || route.page === "flow"],
    ["/incidents", "Incidents", route.page === "incidents"],
    ["/silences", "Silences", route.page === "silences"],
    ["/notifications", "Notifications", route.page === "notifications"],
    ["/flapping", "Flapping", route.page === "flapping"],
    ["/settings", "Settings", route.page === "settings"],
    ...(root ? [["/users", "Users", route.page === "users"] as [string, string, boolean]] : []),
    ["/status", "System", route.page === "status"],
  ];
  return (
    <Ctx.Provider value={ctx}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="bar">
        <Link to="/" className="brand">
          flowwatch
        </Link>
        <nav aria-label="Main">
          {nav.map(([to, label, active]) => (
            <Link key={to} to={to} current={active}>
              {label}
            </Link>
          ))}
        </nav>
        <span className={`live-dot ${connected ? "up" : "down"}`} title={connected ? "Live updates connected" : "Live updates reconnecting"} role="status">
          {connected ? "live" : "offline"}
        </span>
        <button type="button" className="ghost" onClick={() => setTheme(theme === "dark" ? "light" : "dark")} aria-label="Switch theme">
          {theme === "dark" ? "☀ Light" : "☾ Dark"}
        </button>
        <span className="who" data-testid="who">
          {session.user ?? "visitor"} · {root ? "root" : "read-only"}
        </span>
        <button type="button" className="ghost" onClick={() => api.logout()}>
          Log out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} />
      </main>
    </Ctx.Provider>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case "dashboard":
      return <Dashboard />;
    case "country":
      return <Country country={route.country} />;
    case "lob":
      return <Lob key={`${route.country}/${route.lob}`} country={route.country} lob={route.lob} tab={route.tab} />;
    case "flow":
      return <Flow key={JSON.stringify(route.flow)} flow={route.flow} view={route.view} />;
    case "settings":
      return <Settings country={route.country} tab={route.tab} />;
    case "users":
      return <Users />;
    case "incidents":
      return <Incidents />;
    case "silences":
      return <Silences />;
    case "notifications":
      return <Notifications channel={route.channel} />;
    case "flapping":
      return <Flapping />;
    case "status":
      return <SystemStatus />;
    case "login":
      return null;
    case "notFound":
      return (
        <section>
          <h1>Not found</h1>
          <p>
            No page at <code>{route.path}</code>. <Link to="/">Back to the dashboard</Link>
          </p>
        </section>
      );
  }
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
