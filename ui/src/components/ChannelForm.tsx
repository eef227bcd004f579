// The form of a notification channel (SPEC §12), new or edited (its name fixed): the type, which
// switches the target's fields, the flows it takes (none given: every flow) and the least
// status it sends. Problems are checked before sending; the server's are shown next to the
// field its `error.path` names. An edited channel's secrets are shown as the API shows them
// (`…`): sent back unchanged, they keep the stored ones.

import { useEffect, useMemo, useRef, useState } from "react";
import type { FormEvent, ReactNode } from "react";
import type { Channel, ChannelType, MinStatus } from "../api";
import { ApiError, ErrorBox, useAction, useApp } from "../app";
import {
  CHANNEL_TYPES,
  channelBody,
  channelProblems,
  channelScope,
  channelScopeText,
  fieldError,
  newChannelForm,
  REDACTED,
  TARGET_FIELDS,
  TYPE_NAMES,
} from "../notifications";
import type { ChannelField, ChannelForm as Form } from "../notifications";

export function ChannelForm(props: {
  /** The form of the channel edited; none: a new channel. */
  initial?: Form;
  /** The names in use (a new channel's must be free). */
  taken: string[];
  onSaved: (c: Channel) => void;
  onCancel: () => void;
}) {
  const { api, zones } = useApp();
  const editing = props.initial !== undefined;
  const [form, setForm] = useState<Form>(() => props.initial ?? newChannelForm());
  const [tried, setTried] = useState(false);
  const { error, busy, act } = useAction();
  const set = (f: Partial<Form>) => setForm((old) => ({ ...old, ...f }));
  const ref = useRef<HTMLFormElement>(null);
  useEffect(() => {
    ref.current?.scrollIntoView?.({ block: "nearest" });
  }, []);

  const problems = channelProblems(form, editing ? null : props.taken);
  const shownFields: ChannelField[] = ["name", "type", "minStatus", ...TARGET_FIELDS[form.type], "country", "lob", "kind", "flow"];
  const refused = error instanceof ApiError ? fieldError(error) : null;
  // A refusal of a field not shown now (the type was switched since) is shown above.
  const server = refused && shownFields.includes(refused.field) ? refused : null;
  const shown = (f: ChannelField): string | undefined => {
    if (server?.field === f) return server.message;
    return tried ? problems[f] : undefined;
  };

  const countries = useMemo(() => [...new Set([...Object.keys(zones), form.country])].filter(Boolean).sort(), [zones, form.country]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTried(true);
    if (Object.keys(problems).length) return;
    void act(async () => {
      const saved = await api.putChannel(form.name.trim(), channelBody(form));
      props.onSaved(saved);
    });
  };

  // A field with its problem under it, tied to it for screen readers.
  const field = (f: ChannelField, label: ReactNode, input: (invalid: boolean, describedBy?: string) => ReactNode, className?: string) => {
    const p = shown(f);
    const id = `channel-${f}-error`;
    return (
      <label className={className}>
        {label}
        {input(p !== undefined, p !== undefined ? id : undefined)}
        {p !== undefined ? (
          <span className="field-error" id={id} data-field={f}>
            {p}
          </span>
        ) : null}
      </label>
    );
  };
  const inv = (invalid: boolean, describedBy?: string) => ({ "aria-invalid": invalid || undefined, "aria-describedby": describedBy });
  const text = (f: "url" | "smtp" | "from" | "brokers" | "topic", label: string, placeholder: string, className?: string) =>
    field(
      f,
      label,
      (i, d) => <input name={f} value={form[f]} onChange={(e) => set({ [f]: e.target.value })} placeholder={placeholder} {...inv(i, d)} />,
      className,
    );

  return (
    <form ref={ref} className="form-panel channel-form" onSubmit={submit} aria-label={editing ? `Edit channel ${form.name}` : "New channel"} noValidate>
      <h2>{editing ? `Edit channel ${form.name}` : "New channel"}</h2>
      <div className="controls">
        {field("name", editing ? "Name" : "Name (letters, digits, - _ .)", (i, d) => (
          <input
            name="name"
            value={form.name}
            onChange={(e) => set({ name: e.target.value })}
            readOnly={editing}
            maxLength={64}
            placeholder="e.g. ops-webhook"
            {...inv(i, d)}
          />
        ))}
        {field("type", "Type", (i, d) => (
          <select name="type" value={form.type} onChange={(e) => set({ type: e.target.value as ChannelType })} {...inv(i, d)}>
            {CHANNEL_TYPES.map((t) => (
              <option key={t} value={t}>
                {TYPE_NAMES[t]}
              </option>
            ))}
          </select>
        ))}
        {field("minStatus", "Min status", (i, d) => (
          <select name="minStatus" value={form.minStatus} onChange={(e) => set({ minStatus: e.target.value as MinStatus })} {...inv(i, d)}>
            <option value="WARNING">WARNING and OUTAGE</option>
            <option value="OUTAGE">OUTAGE only</option>
          </select>
        ))}
      </div>
      <div className="controls" data-target={form.type}>
        {form.type === "webhook" ? (
          <>
            {text("url", "URL (signed POST of the alarm)", "https://hooks.example.com/flowwatch", "wide")}
            {field("secret", "Secret (signs X-Flowwatch-Signature)", (i, d) => (
              <input
                type="password"
                name="secret"
                autoComplete="new-password"
                value={form.secret}
                onChange={(e) => set({ secret: e.target.value })}
                {...inv(i, d)}
              />
            ))}
          </>
        ) : null}
        {form.type === "slack" ? text("url", "Incoming webhook URL", "https://hooks.slack.com/services/…", "wide") : null}
        {form.type === "email" ? (
          <>
            {text("smtp", "SMTP server", "smtp://user:password@mail.example.com:587?starttls=required", "wide")}
            {text("from", "From", "flowwatch@example.com")}
            {field(
              "to",
              "To (separated by commas or lines)",
              (i, d) => (
                <textarea name="to" rows={2} value={form.to} onChange={(e) => set({ to: e.target.value })} placeholder="ops@example.com, noc@example.com" {...inv(i, d)} />
              ),
              "wide",
            )}
          </>
        ) : null}
        {form.type === "kafka" ? (
          <>
            {text("brokers", "Brokers (host:port, comma-separated)", "kafka1:9092,kafka2:9092", "wide")}
            {text("topic", "Topic", "flowwatch-alarms")}
          </>
        ) : null}
      </div>
      {editing && (form.secret.includes(REDACTED) || form.smtp.includes(REDACTED)) ? (
        <p className="muted small">
          The stored secret is shown as {REDACTED}: left as it is, it is kept.
        </p>
      ) : null}
      <div className="controls">
        {field("country", "Country (empty: all flows)", (i, d) => (
          <select name="country" value={form.country} onChange={(e) => set({ country: e.target.value })} {...inv(i, d)}>
            <option value="">all flows</option>
            {countries.map((c) => (
              <option key={c}>{c}</option>
            ))}
          </select>
        ))}
        {field("lob", "LoB (empty: every LoB)", (i, d) => (
          <input name="lob" value={form.lob} onChange={(e) => set({ lob: e.target.value })} placeholder="every LoB" {...inv(i, d)} />
        ))}
        {field("kind", "Kind", (i, d) => (
          <select name="kind" value={form.kind} onChange={(e) => set({ kind: e.target.value as Form["kind"] })} {...inv(i, d)}>
            <option value="">any</option>
            <option value="input">input (with its forwards)</option>
            <option value="forward">forward</option>
          </select>
        ))}
        {field("flow", "Flow (empty: every one)", (i, d) => (
          <input name="flow" value={form.flow} onChange={(e) => set({ flow: e.target.value })} placeholder="every flow" {...inv(i, d)} />
        ))}
      </div>
      <p className="small" data-testid="channel-covers">
        Takes: <strong>{channelScopeText(channelScope(form))}</strong>
      </p>
      {error && !server ? <ErrorBox error={error} /> : null}
      <div className="buttons">
        <button type="submit" disabled={busy}>
          {busy ? "Saving…" : editing ? "Save channel" : "Create channel"}
        </button>
        <button type="button" className="ghost" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
