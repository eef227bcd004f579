// The REST API of the gateway (gateway/openapi.json), with the key of the session.

export type Status = "OK" | "WARNING" | "OUTAGE" | "N_A";
export type Shown = Status | "DISABLED";
export type Counts = Record<Shown, number>;
export type Role = "root" | "readOnly";
export type Kind = "input" | "forward";

export interface Session {
  apiKey: string;
  user: string | null;
  role: Role;
  expiresAt: string | null;
}

/** A flow's address. */
export interface FlowRef {
  country: string;
  lob: string;
  kind: Kind;
  flow: string;
}

export interface Tick {
  tickStart: string;
  tickEnd: string;
  actual: number;
  expected: number | null;
  dayAverage: number | null;
  tickDifference: number | null;
  dayDifference: number | null;
  difference: number | null;
  status: Status;
  /** The adaptive detector's band (SPEC §10): bytes below which the tick is not OK. */
  lower?: number;
  /** Bytes below which the tick is OUTAGE. */
  outageBelow?: number;
  /** Evidence after the tick, in spreads. */
  evidence?: number;
  /** The flow's spread at this tick (a log ratio). */
  spread?: number;
}

/** A status change (SPEC §8) as listed or streamed. */
export interface StatusEvent {
  id: string;
  country: string;
  lobName: string;
  kind: Kind;
  flowName: string;
  tickTime: string;
  time: string;
  previousStatus: Status;
  newStatus: Status;
  actual: number;
  expected: number | null;
  difference: number | null;
  revision?: boolean;
  /** A silence covered the tick: stored and listed, not alarmed (SPEC §11). Absent from the
   * live stream's changes until the list is read again. */
  silenced?: boolean;
  /** The flow was flapping (more changes in 24 h than its `flappingChanges`): stored and
   * listed, not alarmed, until it settles. */
  flapping?: boolean;
  /** Who acknowledged the change, when and why. */
  acknowledged?: Acknowledgement;
}

/** A person's word that an alarm is being handled (`POST /events/{id}/ack`). */
export interface Acknowledgement {
  by: string;
  /** RFC 3339. */
  at: string;
  comment: string;
}

/** Which flows a silence is about: a country, a LoB of it, a kind of flow in it, or one flow
 * (an input with its forwards). */
export interface FlowScope {
  country: string;
  lob?: string;
  kind?: Kind;
  flow?: string;
}

/** A weekly window of a silence, on the country's wall clock: `days` 0 = Monday … 6 = Sunday;
 * an `end` not after `start` ends the next day. */
export interface Weekly {
  days: number[];
  /** `HH:MM`. */
  start: string;
  /** `HH:MM`. */
  end: string;
}

export type SilenceState = "active" | "scheduled" | "ended";

/** A silence (maintenance window) as `GET /silences` lists it. */
export interface Silence {
  id: string;
  scope: FlowScope;
  from: string;
  to: string;
  weekly?: Weekly;
  comment: string;
  createdBy: string;
  createdAt: string;
  /** When it was ended early. */
  endedAt?: string;
  state: SilenceState;
}

/** The settings of SPEC §5, effective (every field) or own (some). */
export interface FlowSettings {
  granularity?: string | number;
  softAlarmLevel?: number;
  hardAlarmLevel?: number;
  difference?: "day" | "tick";
  enabled?: boolean;
  independentDays?: number[];
  minimalExpectation?: number;
  lazyDayDecrease?: number;
  medianDays?: number;
  lookbackDays?: number;
  minHistoryDays?: number;
  graceSeconds?: number;
  /** SPEC §10: `seed` (§3–4 exactly) or `adaptive`. */
  detector?: "seed" | "adaptive";
  /** More status changes than this within 24 h make a flow flapping: its alarms are held
   * until it settles (`0`: never). */
  flappingChanges?: number;
}

export type Source = "builtIn" | "defaults" | "lob" | "input" | "own";

export interface EffectiveConfig {
  config: Required<FlowSettings>;
  sources: Record<keyof FlowSettings, Source>;
}

export interface LobFlow {
  kind: Kind;
  name: string;
  input: string | null;
  shown: Shown;
  config: Required<FlowSettings>;
  latest: Tick | null;
  /** While the flow is in WARNING/OUTAGE and someone acknowledged it. */
  acknowledged?: Acknowledgement & { eventId: string };
  /** Status changes (as they happened) in ticks of the last 24 h. */
  changes24h?: number;
  /** More changes than its `flappingChanges`: its alarms are held until it settles. */
  flapping?: boolean;
}

/** A flow flapping now (`GET /flapping`). */
export interface FlappingFlow extends FlowRef {
  changes24h: number;
  flappingChanges: number;
}

export interface TreeFlow {
  name: string;
  status?: Shown;
  forwards?: TreeFlow[];
}

export interface TreeCountry {
  code: string;
  counts: Counts;
  lobs: { name: string; counts: Counts; inputs: TreeFlow[] }[];
}

export interface CountryCalendar {
  country: string;
  timezone: string;
  timezoneSource: string;
  holidays: string[];
  lazyDays: string[];
  lobs: string[];
  version: number;
}

/** A worker of the cluster as the leading coordinator sees it (`GET /cluster`). */
export interface ClusterMember {
  worker: string;
  address: string;
  state: "live" | "draining" | "joining";
  planEpoch: number;
  appliedEpoch: number;
  partitions: number[];
  lastHeartbeatMillis: number;
  flows: number;
  ingestLagSeconds: number;
  memoryBytes: number;
}

/** `GET /cluster`: the leader's view, or one process (no coordinator). */
export type Cluster =
  | {
      clustered: true;
      coordinator: string;
      leader: boolean;
      leaderAddress: string;
      epoch: number;
      partitionCount: number;
      moving: number[];
      owners: string[];
      members: ClusterMember[];
    }
  | { clustered: false; inProcess: boolean; members: [] };

export interface User {
  name: string;
  role: Role;
}

/** Where a notification channel sends (SPEC §12). */
export type ChannelType = "webhook" | "email" | "slack" | "kafka";

/** The least status a change must reach (or leave) for a channel to send it. */
export type MinStatus = "WARNING" | "OUTAGE";

/** A webhook's target: a signed POST of the alarm's JSON. The secret is shown as `…`. */
export interface WebhookTarget {
  url: string;
  secret: string;
}

/** An e-mail channel's target: `smtp://[user:password@]host:port[?starttls=required]`, the
 * password shown as `…`. */
export interface EmailTarget {
  smtp: string;
  from: string;
  to: string[];
}

/** A Slack-compatible incoming webhook. */
export interface SlackTarget {
  url: string;
}

/** A Kafka topic: `brokers` is `host:port`, comma-separated. */
export interface KafkaTarget {
  brokers: string;
  topic: string;
}

/** A channel's document, as `PUT /channels/{name}` takes it: the target by its type, the flows
 * (every flow without a scope), the least status. */
export type ChannelDocument = (
  | { type: "webhook"; target: WebhookTarget }
  | { type: "email"; target: EmailTarget }
  | { type: "slack"; target: SlackTarget }
  | { type: "kafka"; target: KafkaTarget }
) & { scope?: FlowScope; minStatus: MinStatus };

export type Outcome = "delivered" | "retry" | "failed";

/** One attempt to deliver an alarm (or a test message) to a channel. */
export interface Attempt {
  /** RFC 3339, milliseconds. */
  at: string;
  eventId: string;
  /** 1 for the first attempt of the alarm. */
  attempt: number;
  test: boolean;
  outcome: Outcome;
  /** What the receiver answered, or why it could not be reached. */
  response: string;
  durationMs: number;
}

/** A channel as `GET /channels` lists it (secrets redacted), with its queue and last attempt. */
export type Channel = ChannelDocument & {
  name: string;
  /** RFC 3339. */
  updatedAt: string;
  updatedBy: string;
  /** Alarms queued, not yet delivered or given up. */
  pending: number;
  lastAttempt: Attempt | null;
};

/** `GET /channels/{name}/deliveries`: the queue's length and the latest attempts, newest first. */
export interface Deliveries {
  pending: number;
  deliveries: Attempt[];
}

/** An error the API answered (`{"error": {"code", "message", "path"?}}`) or a failed request. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

const KEY = "flowwatch.session";

/** The flow's path under `/api/v1/flows/` (each part percent-encoded). */
export function flowPath(f: FlowRef): string {
  return [f.country, f.lob, f.kind, f.flow].map(encodeURIComponent).join("/");
}

/** A query string of the given parameters, the empty ones left out. */
export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "" && v !== false) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** A channel's path under `/api/v1`. */
export function channelPath(name: string): string {
  return `/channels/${encodeURIComponent(name)}`;
}

type Listener = (s: Session | null) => void;

/** The API with the session's key; the session lives in localStorage across reloads. */
export class Api {
  session: Session | null;
  private listeners = new Set<Listener>();

  constructor(private readonly base = "/api/v1") {
    this.session = Api.stored();
  }

  private static stored(): Session | null {
    try {
      const s = JSON.parse(localStorage.getItem(KEY) ?? "null") as Session | null;
      if (s && s.expiresAt && Date.parse(s.expiresAt) <= Date.now()) return null;
      return s;
    } catch {
      return null;
    }
  }

  /** Calls `l` whenever the session starts or ends; returns the unsubscribe. */
  onSession(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private setSession(s: Session | null) {
    this.session = s;
    if (s) localStorage.setItem(KEY, JSON.stringify(s));
    else localStorage.removeItem(KEY);
    for (const l of this.listeners) l(s);
  }

  async login(username: string, password: string): Promise<Session> {
    const s = await this.request<Session>("POST", "/login", { username, password }, false);
    this.setSession(s);
    return s;
  }

  async visitor(): Promise<Session> {
    const s = await this.request<Session>("POST", "/visitor-login", undefined, false);
    this.setSession({ ...s, user: s.user ?? null, role: s.role ?? "readOnly" });
    return this.session!;
  }

  async logout(): Promise<void> {
    try {
      if (this.session) await this.request("POST", "/logout");
    } finally {
      this.setSession(null);
    }
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  /** The notification channels (SPEC §12), by name. */
  channels(): Promise<Channel[]> {
    return this.get<{ channels: Channel[] }>("/channels").then((x) => x.channels);
  }

  channel(name: string): Promise<Channel> {
    return this.get<Channel>(channelPath(name));
  }

  /** Creates or replaces a channel (root); a secret sent back as `…` keeps the stored one. */
  putChannel(name: string, document: ChannelDocument): Promise<Channel> {
    return this.request<Channel>("PUT", channelPath(name), document);
  }

  deleteChannel(name: string): Promise<void> {
    return this.request<void>("DELETE", channelPath(name));
  }

  /** Sends a test message now (root); how it went. */
  testChannel(name: string): Promise<Attempt> {
    return this.request<Attempt>("POST", `${channelPath(name)}/test`);
  }

  /** A channel's latest attempts, newest first, and how many alarms wait in its queue. */
  deliveries(name: string, limit = 50): Promise<Deliveries> {
    return this.get<Deliveries>(`${channelPath(name)}/deliveries${query({ limit })}`);
  }

  /** The headers of an authenticated request. */
  headers(): Record<string, string> {
    return this.session ? { "X-API-Key": this.session.apiKey } : {};
  }

  url(path: string): string {
    return this.base + path;
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const headers: Record<string, string> = auth ? this.headers() : {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let r: Response;
    try {
      r = await fetch(this.url(path), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, "unreachable", `flowwatch did not answer: ${(e as Error).message}`);
    }
    const text = await r.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: reported below when the status is an error
    }
    if (!r.ok) {
      const e = (json as { error?: { code: string; message: string; path?: string } } | null)?.error;
      if (r.status === 401 && auth) this.setSession(null);
      throw new ApiError(r.status, e?.code ?? "http", e?.message ?? `${method} ${path}: HTTP ${r.status}`, e?.path);
    }
    return json as T;
  }
}
