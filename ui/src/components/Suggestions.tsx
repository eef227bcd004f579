// A country's suggested calendar changes (`GET /suggestions`): the days its calendar seems to
// miss and the weekdays that differ from the rest of their profile week after week, each in
// words with its evidence. Reading them takes a while (every flow's ticks): progress shows.
// Root applies one with the request the server wrote (compare-and-set on the version they
// were computed on): then they and the calendar are read again; a change made meanwhile is
// refused (409) and offers to read them again.

import { useEffect, useState } from "react";
import { ErrorBox, Link, useAction, useApp, useEvery } from "../app";
import { flowHref, href } from "../route";
import {
  apiPath,
  applyText,
  dayEvidence,
  dayHeadline,
  periodText,
  stale,
  suggestionKey,
  suggestionsPath,
  suggestionsRangeProblem,
  weekdayEvidence,
  weekdayHeadline,
} from "../suggest";
import type { DaySuggestion, Suggestions as Answer, WeekdaySuggestion } from "../suggest";

type Range = { from: string; to: string };

interface Read {
  data?: Answer;
  error?: unknown;
  loading: boolean;
  /** When the read in progress started (ms). */
  started: number;
}

export function Suggestions(p: {
  country: string;
  root: boolean;
  /** The calendar has unsaved changes (applying reloads it). */
  dirty: boolean;
  /** After a suggestion was applied: read the calendar again. */
  onApplied: () => void;
}) {
  const { api } = useApp();
  // The days asked (the server's default, the last eight weeks, until some are picked) and
  // those in the form.
  const [asked, setAsked] = useState<Range | undefined>();
  const [form, setForm] = useState<Range | null>(null);
  const [reads, setReads] = useState(0);
  const [read, setRead] = useState<Read>(() => ({ loading: true, started: Date.now() }));
  const [now, setNow] = useState(() => Date.now());
  useEvery(() => setNow(Date.now()), 1000, read.loading);

  useEffect(() => {
    let current = true;
    const started = Date.now();
    setNow(started);
    setRead((old) => ({ ...old, loading: true, started }));
    api.get<Answer>(suggestionsPath(p.country, asked)).then(
      (data) => {
        if (!current) return;
        setRead({ data, loading: false, started });
        setForm((f) => f ?? { from: data.from, to: data.to });
      },
      (error) => {
        if (current) setRead((old) => ({ ...old, error, loading: false }));
      },
    );
    return () => {
      current = false;
    };
  }, [api, p.country, asked, reads]);
  const again = () => setReads((n) => n + 1);

  const applying = useAction();
  const [busy, setBusy] = useState<string | null>(null);
  const [applied, setApplied] = useState<string | null>(null);
  const [conflict, setConflict] = useState<number | null>(null);

  const apply = async (s: DaySuggestion | WeekdaySuggestion, headline: string) => {
    setBusy(suggestionKey(s));
    setApplied(null);
    setConflict(null);
    let answer: unknown;
    const ok = await applying.act(async () => {
      try {
        answer = await api.request(s.apply.method, apiPath(s.apply.path), s.apply.body);
      } catch (e) {
        if (stale(e)) setConflict((s.apply.body.version as number | undefined) ?? read.data?.version ?? 0);
        throw e;
      }
    });
    setBusy(null);
    if (!ok) return;
    const version = (answer as { version?: number } | null)?.version;
    setApplied(`Applied: ${headline}.${version !== undefined ? ` Configuration version ${version}.` : ""}`);
    again();
    p.onApplied();
  };

  const problem = form ? suggestionsRangeProblem(form.from, form.to) : null;
  const data = read.data;
  const elapsed = Math.max(0, Math.round((now - read.started) / 1000));

  return (
    <section aria-labelledby="suggestions-title" className="suggestions-view">
      <h2 id="suggestions-title">Suggestions from the traffic</h2>
      <p className="muted">
        Days most of {p.country}'s flows carried clearly less than on their similar days (a holiday or a lazy day the calendar misses), and
        weekdays whose traffic differs from the rest of their profile week after week (to compare only with themselves:{" "}
        <code>independentDays</code>). Nothing changes until a suggestion is applied.
      </p>
      <div className="controls">
        <label>
          From
          <input type="date" name="suggest-from" value={form?.from ?? ""} onChange={(e) => setForm({ from: e.target.value, to: form?.to ?? "" })} />
        </label>
        <label>
          to (excluded)
          <input type="date" name="suggest-to" value={form?.to ?? ""} onChange={(e) => setForm({ from: form?.from ?? "", to: e.target.value })} />
        </label>
        <button type="button" className="secondary" disabled={!form || problem !== null || read.loading} onClick={() => form && setAsked({ ...form })}>
          Look again
        </button>
        {problem ? <span className="muted small">{problem}</span> : null}
      </div>
      {applied ? (
        <p className="ok-text" role="status" data-testid="applied">
          {applied}
        </p>
      ) : null}
      {conflict !== null ? (
        <div className="banner stale-banner" role="alert" data-testid="stale">
          The configuration changed since these suggestions were computed (on version {conflict}): nothing was applied.{" "}
          <button type="button" className="secondary small" onClick={again} disabled={read.loading}>
            Reload suggestions
          </button>
        </div>
      ) : (
        <ErrorBox error={applying.error} />
      )}
      {p.root && p.dirty ? (
        <p className="muted small">The calendar has unsaved changes: applying a suggestion reads it again and discards them.</p>
      ) : null}
      {read.loading ? (
        <div className="progress-line" role="status" data-testid="suggestions-loading">
          <progress aria-label="Looking for suggestions" />
          <span>
            Reading the stored traffic of {p.country}'s flows{asked ? ` from ${periodText(asked.from, asked.to)}` : ""}…{elapsed ? ` ${elapsed} s` : ""}
          </span>
        </div>
      ) : (
        <ErrorBox error={read.error} />
      )}
      {data && !read.loading ? (
        <div data-testid="suggestions" data-version={data.version}>
          <p className="muted small">
            From the traffic of {periodText(data.from, data.to)}, on configuration version {data.version}.
          </p>
          {data.days.length === 0 && data.weekdays.length === 0 ? (
            <p className="empty-note" data-testid="no-suggestions">
              No suggestions: every day of these weeks looks as the calendar says, and no weekday differs from the rest of its profile week after
              week.
            </p>
          ) : (
            <>
              <h3>
                Days the calendar seems to miss <span className="muted">({data.days.length})</span>
              </h3>
              {data.days.length ? (
                <ul className="suggestions">
                  {data.days.map((s) => {
                    const headline = dayHeadline(s);
                    return (
                      <Item
                        key={suggestionKey(s)}
                        id={suggestionKey(s)}
                        kind={s.kind}
                        tag={s.kind === "holiday" ? "holiday" : "lazy day"}
                        headline={headline}
                        evidence={dayEvidence(s)}
                        change={applyText(s, p.country)}
                        apply={p.root ? () => void apply(s, headline) : undefined}
                        busy={busy === suggestionKey(s)}
                        disabled={applying.busy || read.loading}
                      />
                    );
                  })}
                </ul>
              ) : (
                <p className="muted">None: every day looks as the calendar says.</p>
              )}
              <h3>
                Weekdays to compare only with themselves <span className="muted">({data.weekdays.length})</span>
              </h3>
              {data.weekdays.length ? (
                <ul className="suggestions">
                  {data.weekdays.map((s) => {
                    const headline = weekdayHeadline(s);
                    const settings = s.flow
                      ? flowHref({ country: p.country, lob: s.lob, kind: s.flow.kind, flow: s.flow.name }, { tab: "config" })
                      : href({ page: "lob", country: p.country, lob: s.lob, tab: "config" });
                    return (
                      <Item
                        key={suggestionKey(s)}
                        id={suggestionKey(s)}
                        kind="weekday"
                        tag={s.flow ? s.flow.kind : "LoB"}
                        headline={headline}
                        evidence={weekdayEvidence(s)}
                        change={applyText(s, p.country)}
                        settings={settings}
                        apply={p.root ? () => void apply(s, headline) : undefined}
                        busy={busy === suggestionKey(s)}
                        disabled={applying.busy || read.loading}
                      />
                    );
                  })}
                </ul>
              ) : (
                <p className="muted">None: no weekday differs from the rest of its profile week after week.</p>
              )}
            </>
          )}
        </div>
      ) : null}
    </section>
  );
}

function Item(p: {
  id: string;
  kind: string;
  tag: string;
  headline: string;
  evidence: string;
  change: string;
  /** The page of the settings it changes. */
  settings?: string;
  /** Root only. */
  apply?: () => void;
  busy: boolean;
  disabled: boolean;
}) {
  return (
    <li className="suggestion" data-suggestion={p.id} data-kind={p.kind}>
      <div className="suggestion-text">
        <div>
          <span className={`tag tag-${p.kind}`}>{p.tag}</span> <strong>{p.headline}</strong>
        </div>
        <div className="evidence">{p.evidence}</div>
        <div className="muted small">
          {p.change}
          {p.settings ? (
            <>
              {" "}
              <Link to={p.settings}>Its settings</Link>
            </>
          ) : null}
        </div>
      </div>
      {p.apply ? (
        <button type="button" disabled={p.disabled} onClick={p.apply} aria-label={`Apply: ${p.headline}`}>
          {p.busy ? "Applying…" : "Apply"}
        </button>
      ) : null}
    </li>
  );
}
