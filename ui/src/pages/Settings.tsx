// Per country: the time zone, holidays (filled from the built-in calendar on request) and
// lazy days, on a calendar of the year; and, on their own tab, the calendar changes its
// traffic suggests.

import { useEffect, useMemo, useState } from "react";
import type { CountryCalendar } from "../api";
import { changeConfig, ErrorBox, Link, Loading, useAction, useApp, useLoad, useTitle } from "../app";
import { Calendar, nextMark } from "../components/Calendar";
import type { Mark } from "../components/Calendar";
import { Suggestions } from "../components/Suggestions";
import { localDate } from "../format";
import { href } from "../route";

const ZONES: string[] = (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.("timeZone") ?? [];

/** The marks of a calendar, and back. */
export function marksOf(c: Pick<CountryCalendar, "holidays" | "lazyDays">): Map<string, Mark> {
  const m = new Map<string, Mark>();
  for (const d of c.lazyDays) m.set(d, "lazy");
  for (const d of c.holidays) m.set(d, "holiday");
  return m;
}

export function listsOf(marks: Map<string, Mark>): { holidays: string[]; lazyDays: string[] } {
  const all = [...marks.entries()].sort(([a], [b]) => a.localeCompare(b));
  return {
    holidays: all.filter(([, m]) => m === "holiday").map(([d]) => d),
    lazyDays: all.filter(([, m]) => m === "lazy").map(([d]) => d),
  };
}

export function Settings({ country, tab }: { country?: string; tab?: "suggestions" }) {
  useTitle("Settings");
  const { api, zones, navigate } = useApp();
  const countries = Object.keys(zones).sort();
  useEffect(() => {
    if (!country && countries.length) navigate(`/settings/${encodeURIComponent(countries[0])}`, true);
  }, [country, countries, navigate]);
  return (
    <>
      <h1>Settings</h1>
      <nav className="tabs" aria-label="Countries">
        {countries.map((c) => (
          <Link key={c} to={href({ page: "settings", country: c, tab })} current={c === country}>
            {c}
          </Link>
        ))}
      </nav>
      {country ? (
        <CountrySettings key={country} country={country} api={api} tab={tab} />
      ) : countries.length ? (
        <Loading />
      ) : (
        <p className="muted">No countries yet.</p>
      )}
    </>
  );
}

function CountrySettings({ country, api, tab }: { country: string; api: ReturnType<typeof useApp>["api"]; tab?: "suggestions" }) {
  const { session, reloadZones } = useApp();
  const root = session.role === "root";
  const path = `/config/countries/${encodeURIComponent(country)}`;
  const d = useLoad(() => api.get<CountryCalendar>(path), [path]);
  const [zone, setZone] = useState("");
  const [marks, setMarks] = useState<Map<string, Mark>>(new Map());
  const [year, setYear] = useState(() => Number(new Date().toISOString().slice(0, 4)));
  const { error, act: run } = useAction(() => {
    d.reload();
    reloadZones();
  });
  const [done, setDone] = useState<string | null>(null);
  useEffect(() => {
    if (!d.data) return;
    setZone(d.data.timezone);
    setMarks(marksOf(d.data));
  }, [d.data]);
  const saved = useMemo(() => (d.data ? JSON.stringify(listsOf(marksOf(d.data))) : ""), [d.data]);
  const dirty = d.data !== undefined && (JSON.stringify(listsOf(marks)) !== saved || zone !== d.data.timezone);

  const act = async (what: string, f: () => Promise<unknown>) => {
    setDone(null);
    if (await run(f)) setDone(what);
  };
  if (!d.data) return d.error ? <ErrorBox error={d.error} /> : <Loading />;
  const inYear = [...marks.entries()].filter(([date]) => date.startsWith(String(year)));
  const views = (
    <nav className="tabs" aria-label="Views">
      <Link to={href({ page: "settings", country })} current={!tab}>
        Calendar
      </Link>
      <Link to={href({ page: "settings", country, tab: "suggestions" })} current={tab === "suggestions"}>
        Suggestions
      </Link>
    </nav>
  );
  if (tab === "suggestions")
    return (
      <section aria-label={`Suggestions for ${country}`}>
        {views}
        <Suggestions
          country={country}
          root={root}
          dirty={dirty}
          onApplied={() => {
            setDone(null);
            d.reload();
            reloadZones();
          }}
        />
      </section>
    );
  return (
    <section aria-label={`Settings of ${country}`}>
      {views}
      <ErrorBox error={error} />
      {done ? (
        <p className="ok-text" role="status">
          {done}
        </p>
      ) : null}
      <div className="controls">
        <label>
          Time zone
          <input list="zones" value={zone} onChange={(e) => setZone(e.target.value)} readOnly={!root} aria-describedby="zone-source" />
        </label>
        <datalist id="zones">
          {ZONES.map((z) => (
            <option key={z} value={z} />
          ))}
        </datalist>
        <span id="zone-source" className="muted small">
          from {d.data.timezoneSource === "builtIn" ? "the built-in table" : "the configuration"} · now {localDate(new Date(), zone || "UTC")}
        </span>
      </div>
      <div className="controls">
        <button type="button" className="ghost" onClick={() => setYear(year - 1)} aria-label="Previous year">
          ◀
        </button>
        <strong className="year">{year}</strong>
        <button type="button" className="ghost" onClick={() => setYear(year + 1)} aria-label="Next year">
          ▶
        </button>
        <span className="legend">
          <span className="swatch holiday" /> holiday ({inYear.filter(([, m]) => m === "holiday").length})
          <span className="swatch lazy" /> lazy day ({inYear.filter(([, m]) => m === "lazy").length})
        </span>
        {root ? (
          <>
            <button
              type="button"
              className="secondary"
              onClick={() =>
                void act(`Built-in holidays of ${year} added.`, () => changeConfig(api, country, "POST", `${path}/fill-holidays`, { from: year, to: year }))
              }
            >
              Fill {year} from built-in calendar
            </button>
            <button
              type="button"
              disabled={!dirty}
              onClick={() =>
                void act("Saved.", () => changeConfig(api, country, "PATCH", path, { timezone: zone, ...listsOf(marks) }))
              }
            >
              Save
            </button>
          </>
        ) : null}
      </div>
      {root ? <p className="muted small">Click a day: holiday → lazy day → normal. Nothing is saved until Save.</p> : null}
      <Calendar
        year={year}
        marks={marks}
        today={localDate(new Date(), zone || "UTC")}
        onToggle={
          root
            ? (date) =>
                setMarks((old) => {
                  const m = new Map(old);
                  const n = nextMark(m.get(date));
                  if (n) m.set(date, n);
                  else m.delete(date);
                  return m;
                })
            : undefined
        }
      />
    </section>
  );
}
