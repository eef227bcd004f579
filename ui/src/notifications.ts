// Notification channels (SPEC §12) as the UI shows and edits them: the form and the body of
// `PUT /channels/{name}` it makes (recipients split, the scope's given parts), a channel's
// target and scope in words, the form of a saved channel (its secrets as the API shows them),
// the field a refused document names, an attempt's outcome as a status colour.

import type { Attempt, ChannelDocument, ChannelType, FlowScope, Kind, MinStatus, Outcome, Status } from "./api";
import { zoned } from "./format";
import { formScope } from "./operator";

export const CHANNEL_TYPES: ChannelType[] = ["webhook", "email", "slack", "kafka"];

export const TYPE_NAMES: Record<ChannelType, string> = { webhook: "Webhook", email: "E-mail", slack: "Slack", kafka: "Kafka" };

/** What the API shows in place of a secret (a webhook's, an SMTP password); sent back, it keeps
 * the stored one. */
export const REDACTED = "…";

/** A channel name: what `/channels/{name}` takes. */
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** What the channel form holds: every type's target fields (switching the type keeps what was
 * typed), the recipients as typed, the scope's parts (all empty: every flow). */
export interface ChannelForm {
  name: string;
  type: ChannelType;
  /** Webhook and Slack. */
  url: string;
  /** Webhook. */
  secret: string;
  /** E-mail. */
  smtp: string;
  from: string;
  /** Recipients separated by commas, semicolons, spaces or lines. */
  to: string;
  /** Kafka. */
  brokers: string;
  topic: string;
  country: string;
  lob: string;
  kind: "" | Kind;
  flow: string;
  minStatus: MinStatus;
}

export type ChannelField = keyof ChannelForm;

/** The target fields of each type, in the form's order. */
export const TARGET_FIELDS: Record<ChannelType, ChannelField[]> = {
  webhook: ["url", "secret"],
  email: ["smtp", "from", "to"],
  slack: ["url"],
  kafka: ["brokers", "topic"],
};

/** An empty form: a webhook for every flow, WARNING and OUTAGE. */
export function newChannelForm(): ChannelForm {
  return {
    name: "",
    type: "webhook",
    url: "",
    secret: "",
    smtp: "",
    from: "",
    to: "",
    brokers: "",
    topic: "",
    country: "",
    lob: "",
    kind: "",
    flow: "",
    minStatus: "WARNING",
  };
}

/** The form of a saved channel, to edit: its secrets as the API shows them (`…`), which keep
 * the stored ones when sent back unchanged. */
export function channelForm(c: ChannelDocument & { name: string }): ChannelForm {
  const f: ChannelForm = {
    ...newChannelForm(),
    name: c.name,
    type: c.type,
    country: c.scope?.country ?? "",
    lob: c.scope?.lob ?? "",
    kind: c.scope?.kind ?? "",
    flow: c.scope?.flow ?? "",
    minStatus: c.minStatus,
  };
  switch (c.type) {
    case "webhook":
      return { ...f, url: c.target.url, secret: c.target.secret };
    case "email":
      return { ...f, smtp: c.target.smtp, from: c.target.from, to: c.target.to.join(", ") };
    case "slack":
      return { ...f, url: c.target.url };
    case "kafka":
      return { ...f, brokers: c.target.brokers, topic: c.target.topic };
  }
}

/** The addresses of a recipients field: split by commas, semicolons, spaces and lines, the
 * empty ones dropped. */
export function recipients(text: string): string[] {
  return text.split(/[\s,;]+/).filter((a) => a !== "");
}

/** The brokers of a field as the API takes them: `host:port,host:port` (commas or spaces
 * between them in the field). */
export function brokerList(text: string): string {
  return text
    .split(/[\s,]+/)
    .filter((b) => b !== "")
    .join(",");
}

/** The scope a form names, or none (every flow) when all its parts are empty. */
export function channelScope(f: Pick<ChannelForm, "country" | "lob" | "kind" | "flow">): FlowScope | undefined {
  if (!f.country.trim() && !f.lob.trim() && !f.kind && !f.flow.trim()) return undefined;
  return formScope(f);
}

/** The body of `PUT /channels/{name}`: the target of the form's type only, trimmed (the secret
 * as typed), the scope if one is given. */
export function channelBody(f: ChannelForm): ChannelDocument {
  const scope = channelScope(f);
  const rest = { ...(scope ? { scope } : {}), minStatus: f.minStatus };
  switch (f.type) {
    case "webhook":
      return { type: "webhook", target: { url: f.url.trim(), secret: f.secret }, ...rest };
    case "email":
      return { type: "email", target: { smtp: f.smtp.trim(), from: f.from.trim(), to: recipients(f.to) }, ...rest };
    case "slack":
      return { type: "slack", target: { url: f.url.trim() }, ...rest };
    case "kafka":
      return { type: "kafka", target: { brokers: brokerList(f.brokers), topic: f.topic.trim() }, ...rest };
  }
}

/** The form's problems by field; empty: it can be sent (the server checks the rest: URLs,
 * addresses, brokers). `taken`: the names in use, when a new channel is named (not when one is
 * edited). */
export function channelProblems(f: ChannelForm, taken: string[] | null): Partial<Record<ChannelField, string>> {
  const p: Partial<Record<ChannelField, string>> = {};
  const name = f.name.trim();
  if (!NAME.test(name)) p.name = "1 to 64 letters, digits, '-', '_' or '.'";
  else if (name === "." || name === "..") p.name = "not a name a URL can hold";
  else if (taken?.includes(name)) p.name = "a channel of this name exists: edit it";
  const required: Partial<Record<ChannelField, string>> = {
    url: f.type === "slack" ? "the incoming webhook's URL" : "the URL to POST to",
    secret: "the key the signature is made with",
    smtp: "smtp://[user:password@]host:port",
    from: "the sender's address",
    brokers: "host:port, comma-separated",
    topic: "the topic to send to",
  };
  for (const field of TARGET_FIELDS[f.type]) {
    if (field === "to") {
      if (recipients(f.to).length === 0) p.to = "at least one recipient";
    } else if (field === "secret" ? f.secret === "" : !String(f[field]).trim()) p[field] = required[field];
  }
  if (!f.country.trim() && (f.lob.trim() || f.kind || f.flow.trim())) p.country = "a LoB, kind or flow needs its country";
  if (!f.lob.trim() && (f.kind || f.flow.trim())) p.lob = "a kind or a flow needs its LoB";
  if (f.flow.trim() && !f.kind) p.kind = "a flow needs its kind (input or forward)";
  return p;
}

/** The form's field of each path a refused document names. */
const FIELDS = new Map<string, ChannelField>([
  ["name", "name"],
  ["type", "type"],
  ["minStatus", "minStatus"],
  ["target.url", "url"],
  ["target.secret", "secret"],
  ["target.smtp", "smtp"],
  ["target.from", "from"],
  ["target.to", "to"],
  ["target.brokers", "brokers"],
  ["target.topic", "topic"],
  ["scope", "country"],
  ["scope.country", "country"],
  ["scope.lob", "lob"],
  ["scope.kind", "kind"],
  ["scope.flow", "flow"],
]);

/** The form's field a refused document's `path` names (`target.to[1]`: the recipients), or
 * null (shown above the form). */
export function fieldOf(path: string | undefined): ChannelField | null {
  if (!path) return null;
  return FIELDS.get(path.replace(/\[\d+\]/g, "")) ?? null;
}

/** Where a refusal is shown: the field its path names and its message without the leading
 * `path: ` (the field says it); null when it names no field of the form. */
export function fieldError(e: { path?: string; message: string }): { field: ChannelField; message: string } | null {
  const field = fieldOf(e.path);
  if (!field) return null;
  const message = e.message.startsWith(`${e.path}: `) ? e.message.slice(e.path!.length + 2) : e.message;
  return { field, message };
}

/** The host of a URL (with its port), or the text when it is no URL. */
function host(url: string): string {
  try {
    return new URL(url).host || url;
  } catch {
    return url;
  }
}

/** The recipients listed before `+N more`. */
const RECIPIENTS_SHOWN = 2;

/** Where a channel sends, short: a webhook's or Slack's host, the recipients, the topic. */
export function targetSummary(c: ChannelDocument): string {
  switch (c.type) {
    case "webhook":
    case "slack":
      return host(c.target.url);
    case "email": {
      const more = c.target.to.length - RECIPIENTS_SHOWN;
      return c.target.to.slice(0, RECIPIENTS_SHOWN).join(", ") + (more > 0 ? ` +${more} more` : "");
    }
    case "kafka":
      return c.target.topic;
  }
}

/** Where a channel sends, in full (the summary's hover): the URL, who sends to whom through
 * which server, the topic on which brokers. */
export function targetDetail(c: ChannelDocument): string {
  switch (c.type) {
    case "webhook":
    case "slack":
      return c.target.url;
    case "email":
      return `from ${c.target.from} to ${c.target.to.join(", ")} via ${c.target.smtp}`;
    case "kafka":
      return `${c.target.topic} on ${c.target.brokers}`;
  }
}

/** The flows a channel takes, short: `all flows`, `CZ`, `CZ / GSM`, `CZ / GSM / every
 * forward`, `CZ / GSM / A` (an input, with its forwards), `CZ / GSM / A:X (forward)`. */
export function channelScopeText(s: FlowScope | undefined): string {
  if (!s) return "all flows";
  if (!s.lob) return s.country;
  const lob = `${s.country} / ${s.lob}`;
  if (s.flow) return s.kind === "forward" ? `${lob} / ${s.flow} (forward)` : `${lob} / ${s.flow}`;
  if (s.kind) return `${lob} / every ${s.kind}`;
  return lob;
}

const OUTCOME_STATUS: Record<Outcome, Status> = { delivered: "OK", retry: "WARNING", failed: "OUTAGE" };

/** The status whose colour an outcome takes: delivered OK, retry WARNING, failed OUTAGE. */
export function outcomeStatus(o: Outcome): Status {
  return OUTCOME_STATUS[o] ?? "N_A";
}

/** When an attempt was made, to the second, in the zone: `2026-12-02 21:14:36 CET`. */
export function attemptTime(a: Pick<Attempt, "at">, zone: string): string {
  const at = new Date(a.at);
  const z = zoned(at, zone);
  return `${z.date} ${z.time}:${String(at.getUTCSeconds()).padStart(2, "0")} ${z.zone}`;
}
