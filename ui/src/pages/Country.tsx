// A country: its LoBs with their flows per status; root adds, disables and removes LoBs.

import { useState } from "react";
import type { FormEvent } from "react";
import { ApiError } from "../api";
import type { CountryCalendar, FlowSettings, TreeCountry } from "../api";
import { changeConfig, ErrorBox, useAction, Link, Loading, SHOWN, useApp, useLiveReload, useLoad, useTitle, useZone } from "../app";
import { EventLog } from "../components/EventLog";
import { localTime } from "../format";
import { worst } from "./Dashboard";

interface Loaded {
  tree: TreeCountry | undefined;
  calendar: CountryCalendar | null;
  /** The configured LoBs' own `enabled` (absent: inherited). */
  enabled: Record<string, boolean | undefined>;
}

export function Country({ country }: { country: string }) {
  useTitle(country);
  const { api, session } = useApp();
  const zone = useZone(country);
  const root = session.role === "root";
  const c = encodeURIComponent(country);
  const d = useLoad<Loaded>(async () => {
    const [tree, calendar] = await Promise.all([
      api.get<{ countries: TreeCountry[] }>("/flows"),
      api.get<CountryCalendar>(`/config/countries/${c}`).catch((e) => {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }),
    ]);
    const lobs = await Promise.all(
      (calendar?.lobs ?? []).map((l) =>
        api.get<{ settings: FlowSettings }>(`/config/countries/${c}/lobs/${encodeURIComponent(l)}`).then((x) => [l, x.settings.enabled] as const),
      ),
    );
    return { tree: tree.countries.find((x) => x.code === country), calendar, enabled: Object.fromEntries(lobs) };
  }, [country]);
  useLiveReload(d.reload, (e) => e.country === country);
  const { error, act } = useAction(d.reload);
  const [name, setName] = useState("");

  const lobPath = (lob: string) => `/config/countries/${c}/lobs/${encodeURIComponent(lob)}`;
  const add = (e: FormEvent) => {
    e.preventDefault();
    const lob = name.trim();
    if (!lob) return;
    void act(async () => {
      await changeConfig(api, country, "PUT", lobPath(lob), { settings: {} });
      setName("");
    });
  };

  if (!d.data) return d.error ? <ErrorBox error={d.error} /> : <Loading />;
  const { tree, calendar, enabled } = d.data;
  const names = [...new Set([...(tree?.lobs.map((l) => l.name) ?? []), ...(calendar?.lobs ?? [])])].sort();
  return (
    <>
      <nav className="crumbs" aria-label="Breadcrumbs">
        <Link to="/">Dashboard</Link> / <span>{country}</span>
      </nav>
      <h1>
        {country} <span className="muted small">{zone} · {localTime(new Date(), zone)}</span>
      </h1>
      <ErrorBox error={error} />
      <table className="table">
        <thead>
          <tr>
            <th scope="col">LoB</th>
            {SHOWN.map((s) => (
              <th key={s} scope="col" className="num">
                {s === "N_A" ? "N/A" : s}
              </th>
            ))}
            <th scope="col">Enabled</th>
            {root ? <th scope="col">Actions</th> : null}
          </tr>
        </thead>
        <tbody>
          {names.map((lob) => {
            const node = tree?.lobs.find((l) => l.name === lob);
            const configured = calendar?.lobs.includes(lob) ?? false;
            const on = enabled[lob] !== false;
            return (
              <tr key={lob} data-lob={lob} className={node ? `row-${worst(node.counts)}` : undefined}>
                <th scope="row">
                  <Link to={`/lob/${c}/${encodeURIComponent(lob)}`}>{lob}</Link>
                </th>
                {SHOWN.map((s) => (
                  <td key={s} className={`num count-${s}`}>
                    {node?.counts[s] ?? 0}
                  </td>
                ))}
                <td>{on ? "yes" : <span className="tag">disabled</span>}</td>
                {root ? (
                  <td>
                  <div className="actions">
                    <button
                      type="button"
                      className="secondary"
                      onClick={() => void act(() => changeConfig(api, country, "PATCH", lobPath(lob), { settings: { enabled: !on } }))}
                    >
                      {on ? "Disable" : "Enable"}
                    </button>
                    {configured ? (
                      <button
                        type="button"
                        className="danger"
                        onClick={() => {
                          if (confirm(`Remove LoB ${country}/${lob} and its flows' settings? Their traffic and ticks stay.`))
                            void act(() => changeConfig(api, country, "DELETE", lobPath(lob)));
                        }}
                      >
                        Remove
                      </button>
                    ) : null}
                  </div>
                </td>
                ) : null}
              </tr>
            );
          })}
        </tbody>
      </table>
      {root ? (
        <form className="inline" onSubmit={add}>
          <label>
            New LoB
            <input value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. SMS" />
          </label>
          <button type="submit">Add LoB</button>
        </form>
      ) : null}
      <EventLog country={country} title={`Events of ${country}`} />
    </>
  );
}
