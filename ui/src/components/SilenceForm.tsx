// The form of a new silence (maintenance window): its scope (prefilled from the page it was
// opened on), from/to on the country's wall clock (now → +2 h by default), an optional weekly
// recurrence and the required reason. Problems are checked before sending; the server's are
// shown next to the field its `error.path` names.

import { useEffect, useMemo, useRef, useState } from "react";
import type { FormEvent, ReactNode } from "react";
import type { FlowScope, Silence, TreeCountry } from "../api";
import { ApiError, ErrorBox, useAction, useApp, useLoad } from "../app";
import { fromWallClock, wallClock } from "../format";
import { DAY_NAMES, formScope, newSilenceForm, overnight, rezone, scopeText, silenceBody, silenceProblems } from "../operator";
import type { SilenceForm as Form } from "../operator";

/** The fields a server error can name, shown next to them; any other is shown above. */
const FIELDS = ["scope", "scope.country", "scope.lob", "scope.kind", "scope.flow", "from", "to", "weekly.days", "weekly.start", "weekly.end", "comment"];

const QUICK: [string, number][] = [
  ["1 h", 1],
  ["2 h", 2],
  ["8 h", 8],
  ["1 day", 24],
  ["1 week", 168],
];

/** The message without its leading `path: ` (the field is named by where it is shown). */
function bare(message: string, path: string): string {
  return message.startsWith(`${path}: `) ? message.slice(path.length + 2) : message;
}

export function SilenceForm(props: { scope: FlowScope; onCreated: (s: Silence) => void; onCancel?: () => void; title?: ReactNode }) {
  const { api, zones } = useApp();
  const [form, setForm] = useState<Form>(() => newSilenceForm(props.scope, new Date(), zones[props.scope.country] ?? "UTC"));
  const [tried, setTried] = useState(false);
  const { error, busy, act } = useAction();
  const tree = useLoad(() => api.get<{ countries: TreeCountry[] }>("/flows").then((t) => t.countries), []);
  const zone = zones[form.country] ?? "UTC";
  const set = (f: Partial<Form>) => setForm((old) => ({ ...old, ...f }));
  // The times are the instants they were on the zone's clock: when the zone changes (the zones
  // arrive, another country), they are shown on the new one.
  const shownZone = useRef(zone);
  useEffect(() => {
    const old = shownZone.current;
    if (old === zone) return;
    shownZone.current = zone;
    setForm((f) => ({ ...f, from: rezone(f.from, old, zone), to: rezone(f.to, old, zone) }));
  }, [zone]);

  const problems = silenceProblems(form, zone);
  const server = error instanceof ApiError && error.path && FIELDS.includes(error.path) ? error : null;
  const shown = (path: string): string | undefined => {
    if (server?.path === path) return bare(server.message, path);
    return tried ? problems[path] : undefined;
  };

  const countries = useMemo(() => [...new Set([...Object.keys(zones), form.country])].filter(Boolean).sort(), [zones, form.country]);
  const lobs = tree.data?.find((c) => c.code === form.country)?.lobs ?? [];
  const lob = lobs.find((l) => l.name === form.lob);
  const flows = (lob?.inputs ?? []).flatMap((i) => [
    ...(form.kind !== "forward" ? [i.name] : []),
    ...(form.kind !== "input" ? (i.forwards ?? []).map((f) => f.name) : []),
  ]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTried(true);
    if (Object.keys(problems).length) return;
    void act(async () => {
      const created = await api.request<Silence>("POST", "/silences", silenceBody(form, zone));
      props.onCreated(created);
    });
  };
  const lasting = (hours: number) => {
    const from = fromWallClock(form.from, zone);
    if (from) set({ to: wallClock(new Date(from.getTime() + hours * 3_600_000), zone) });
  };

  // A field with its problem under it, tied to it for screen readers.
  const field = (path: string, label: ReactNode, input: (invalid: boolean, describedBy?: string) => ReactNode, className?: string) => {
    const p = shown(path);
    const id = `silence-${path.replace(".", "-")}-error`;
    return (
      <label className={className}>
        {label}
        {input(p !== undefined, p !== undefined ? id : undefined)}
        {p !== undefined ? (
          <span className="field-error" id={id} data-field={path}>
            {p}
          </span>
        ) : null}
      </label>
    );
  };
  const inv = (invalid: boolean, describedBy?: string) => ({ "aria-invalid": invalid || undefined, "aria-describedby": describedBy });

  return (
    <form className="form-panel silence-form" onSubmit={submit} aria-label="New silence" noValidate>
      <h2>{props.title ?? "New silence"}</h2>
      <p className="muted small">
        Status changes of the flows in scope are still stored and listed, marked silenced, but not alarmed. A flow still not OK when the silence
        ends is alarmed then.
      </p>
      <div className="controls">
        {field("scope.country", "Country", (i, d) => (
          <select name="country" value={form.country} onChange={(e) => set({ country: e.target.value, lob: "", flow: "" })} {...inv(i, d)}>
            {countries.map((c) => (
              <option key={c}>{c}</option>
            ))}
          </select>
        ))}
        {field("scope.lob", "LoB (empty: every LoB)", (i, d) => (
          <input name="lob" list="silence-lobs" value={form.lob} onChange={(e) => set({ lob: e.target.value })} placeholder="every LoB" {...inv(i, d)} />
        ))}
        <datalist id="silence-lobs">
          {lobs.map((l) => (
            <option key={l.name} value={l.name} />
          ))}
        </datalist>
        {field("scope.kind", "Kind", (i, d) => (
          <select name="kind" value={form.kind} onChange={(e) => set({ kind: e.target.value as Form["kind"] })} {...inv(i, d)}>
            <option value="">any</option>
            <option value="input">input (with its forwards)</option>
            <option value="forward">forward</option>
          </select>
        ))}
        {field("scope.flow", "Flow (empty: every one)", (i, d) => (
          <input name="flow" list="silence-flows" value={form.flow} onChange={(e) => set({ flow: e.target.value })} placeholder="every flow" {...inv(i, d)} />
        ))}
        <datalist id="silence-flows">
          {flows.map((f) => (
            <option key={f} value={f} />
          ))}
        </datalist>
      </div>
      <p className="small" data-testid="silence-covers">
        Covers: <strong>{form.country ? scopeText(formScope(form)) : "–"}</strong>
        {shown("scope") ? (
          <span className="field-error" data-field="scope">
            {" — "}
            {shown("scope")}
          </span>
        ) : null}
      </p>
      <div className="controls">
        {field(`from`, `From (${zone})`, (i, d) => (
          <input type="datetime-local" name="from" value={form.from} onChange={(e) => set({ from: e.target.value })} {...inv(i, d)} />
        ))}
        {field(`to`, `To (${zone})`, (i, d) => (
          <input type="datetime-local" name="to" value={form.to} onChange={(e) => set({ to: e.target.value })} {...inv(i, d)} />
        ))}
        <span className="quick" role="group" aria-label="Lasting">
          {QUICK.map(([label, hours]) => (
            <button key={label} type="button" className="ghost" onClick={() => lasting(hours)} title={`Until ${label} after From`}>
              {label}
            </button>
          ))}
        </span>
      </div>
      <label className="check">
        <input type="checkbox" name="weekly" checked={form.weekly} onChange={(e) => set({ weekly: e.target.checked })} />
        repeat weekly, only within these hours (between From and To)
      </label>
      {form.weekly ? (
        <div className="controls">
          <fieldset className="days" aria-describedby={shown("weekly.days") ? "silence-weekly-days-error" : undefined}>
            <legend>Days</legend>
            {DAY_NAMES.map((name, d) => (
              <label key={name} className="check">
                <input
                  type="checkbox"
                  checked={form.days.includes(d)}
                  onChange={(e) => set({ days: e.target.checked ? [...form.days, d] : form.days.filter((x) => x !== d) })}
                />
                {name}
              </label>
            ))}
            {shown("weekly.days") ? (
              <span className="field-error" id="silence-weekly-days-error" data-field="weekly.days">
                {shown("weekly.days")}
              </span>
            ) : null}
          </fieldset>
          {field("weekly.start", `Start (${zone})`, (i, d) => (
            <input type="time" name="weekly-start" value={form.start} onChange={(e) => set({ start: e.target.value })} {...inv(i, d)} />
          ))}
          {field("weekly.end", "End", (i, d) => (
            <input type="time" name="weekly-end" value={form.end} onChange={(e) => set({ end: e.target.value })} {...inv(i, d)} />
          ))}
          <span className="muted small">{overnight(form) ? "ends the next day" : "an end not after the start ends the next day"}</span>
        </div>
      ) : null}
      <div className="controls">
        {field(
          "comment",
          "Reason (required)",
          (i, d) => (
            <input
              name="comment"
              value={form.comment}
              onChange={(e) => set({ comment: e.target.value })}
              placeholder="e.g. switch upgrade, change CHG-1234"
              required
              {...inv(i, d)}
            />
          ),
          "wide",
        )}
      </div>
      {error && !server ? <ErrorBox error={error} /> : null}
      <div className="buttons">
        <button type="submit" disabled={busy}>
          {busy ? "Creating…" : "Create silence"}
        </button>
        {props.onCancel ? (
          <button type="button" className="ghost" onClick={props.onCancel}>
            Cancel
          </button>
        ) : null}
      </div>
    </form>
  );
}
