import { describe, expect, it } from "vitest";
import type { Channel } from "./api";
import {
  attemptTime,
  brokerList,
  channelBody,
  channelForm,
  channelProblems,
  channelScope,
  channelScopeText,
  fieldError,
  fieldOf,
  newChannelForm,
  outcomeStatus,
  recipients,
  targetDetail,
  targetSummary,
} from "./notifications";
import type { ChannelForm } from "./notifications";

const form = (over: Partial<ChannelForm> = {}): ChannelForm => ({ ...newChannelForm(), name: "ops", ...over });

const saved = (over: Partial<Channel> = {}): Channel =>
  ({
    name: "ops",
    type: "webhook",
    target: { url: "https://hooks.example.com:8443/flowwatch", secret: "…" },
    minStatus: "OUTAGE",
    updatedAt: "2026-12-02T20:00:00Z",
    updatedBy: "root",
    pending: 0,
    lastAttempt: null,
    ...over,
  }) as Channel;

describe("the channel form's body", () => {
  it("splits the recipients by commas, semicolons, spaces and lines, dropping empties", () => {
    expect(recipients("a@x.cz, b@x.cz\nc@x.cz  d@x.cz;e@x.cz,,\n\n")).toEqual(["a@x.cz", "b@x.cz", "c@x.cz", "d@x.cz", "e@x.cz"]);
    expect(recipients(" \n , ")).toEqual([]);
    expect(recipients("ops@x.cz")).toEqual(["ops@x.cz"]);
  });
  it("joins the brokers with commas", () => {
    expect(brokerList(" kafka1:9092, kafka2:9092 kafka3:9092,\n")).toBe("kafka1:9092,kafka2:9092,kafka3:9092");
  });
  it("sends only the target of the chosen type, trimmed, the secret as typed", () => {
    const f = form({ url: " http://127.0.0.1:9/hook ", secret: " s3cret", smtp: "smtp://mail:25", topic: "alarms", minStatus: "OUTAGE" });
    expect(channelBody(f)).toEqual({ type: "webhook", target: { url: "http://127.0.0.1:9/hook", secret: " s3cret" }, minStatus: "OUTAGE" });
    expect(channelBody({ ...f, type: "slack" })).toEqual({ type: "slack", target: { url: "http://127.0.0.1:9/hook" }, minStatus: "OUTAGE" });
    expect(channelBody({ ...f, type: "kafka", brokers: "k1:9092 k2:9092", topic: " alarms " })).toEqual({
      type: "kafka",
      target: { brokers: "k1:9092,k2:9092", topic: "alarms" },
      minStatus: "OUTAGE",
    });
    expect(channelBody(form({ type: "email", smtp: " smtp://ops:…@mail:587 ", from: " fw@x.cz ", to: "a@x.cz,\n b@x.cz, ", minStatus: "WARNING" }))).toEqual({
      type: "email",
      target: { smtp: "smtp://ops:…@mail:587", from: "fw@x.cz", to: ["a@x.cz", "b@x.cz"] },
      minStatus: "WARNING",
    });
  });
  it("sends a scope only when one is given, of its given parts", () => {
    expect(channelScope(form())).toBeUndefined();
    expect(channelScope(form({ country: " ", lob: "" }))).toBeUndefined();
    expect(channelScope(form({ country: "CZ" }))).toEqual({ country: "CZ" });
    expect(channelScope(form({ country: "CZ", lob: " GSM ", kind: "forward", flow: "A:X" }))).toEqual({
      country: "CZ",
      lob: "GSM",
      kind: "forward",
      flow: "A:X",
    });
    // A part without its country is sent, for the server to name what is missing.
    expect(channelScope(form({ lob: "GSM" }))).toEqual({ country: "", lob: "GSM" });
    expect(channelBody(form({ url: "http://h/", secret: "s", country: "CZ", lob: "GSM" })).scope).toEqual({ country: "CZ", lob: "GSM" });
    expect("scope" in channelBody(form({ url: "http://h/", secret: "s" }))).toBe(false);
  });
});

describe("the channel form's problems", () => {
  const ok = form({ url: "http://127.0.0.1:9/hook", secret: "s3cret" });
  it("are none for a complete form", () => {
    expect(channelProblems(ok, ["other"])).toEqual({});
    expect(channelProblems(form({ type: "email", smtp: "smtp://mail:25", from: "fw@x.cz", to: "a@x.cz" }), [])).toEqual({});
    expect(channelProblems(form({ type: "kafka", brokers: "k:9092", topic: "t", country: "CZ", lob: "GSM", kind: "input" }), [])).toEqual({});
  });
  it("check the name as the server does, and that a new one is free", () => {
    const name = "1 to 64 letters, digits, '-', '_' or '.'";
    expect(channelProblems({ ...ok, name: "" }, [])).toEqual({ name });
    expect(channelProblems({ ...ok, name: "ops team" }, [])).toEqual({ name });
    expect(channelProblems({ ...ok, name: "x".repeat(65) }, [])).toEqual({ name });
    expect(channelProblems({ ...ok, name: "x".repeat(64) }, [])).toEqual({});
    expect(channelProblems({ ...ok, name: "ops_1.eu-west" }, [])).toEqual({});
    expect(channelProblems({ ...ok, name: ".." }, [])).toEqual({ name: "not a name a URL can hold" });
    expect(channelProblems(ok, ["ops"])).toEqual({ name: "a channel of this name exists: edit it" });
    // Edited: the name is its own.
    expect(channelProblems(ok, null)).toEqual({});
  });
  it("ask for the target fields of the chosen type only", () => {
    expect(channelProblems({ ...ok, url: " ", secret: "" }, [])).toEqual({ url: "the URL to POST to", secret: "the key the signature is made with" });
    expect(channelProblems({ ...ok, type: "slack", url: "" }, [])).toEqual({ url: "the incoming webhook's URL" });
    expect(channelProblems({ ...ok, type: "email", to: " , \n" }, [])).toEqual({
      smtp: "smtp://[user:password@]host:port",
      from: "the sender's address",
      to: "at least one recipient",
    });
    expect(channelProblems({ ...ok, type: "kafka" }, [])).toEqual({ brokers: "host:port, comma-separated", topic: "the topic to send to" });
  });
  it("check the scope's parts need what they belong to", () => {
    expect(channelProblems({ ...ok, lob: "GSM" }, [])).toEqual({ country: "a LoB, kind or flow needs its country" });
    expect(channelProblems({ ...ok, country: "CZ", kind: "input" }, [])).toEqual({ lob: "a kind or a flow needs its LoB" });
    expect(channelProblems({ ...ok, country: "CZ", lob: "GSM", flow: "A" }, [])).toEqual({ kind: "a flow needs its kind (input or forward)" });
  });
});

describe("a saved channel edited", () => {
  it("fills the form with its target, scope and secrets as the API shows them", () => {
    expect(channelForm(saved())).toEqual({
      ...newChannelForm(),
      name: "ops",
      url: "https://hooks.example.com:8443/flowwatch",
      secret: "…",
      minStatus: "OUTAGE",
    });
    const email = saved({
      type: "email",
      target: { smtp: "smtp://ops:…@mail:587?starttls=required", from: "fw@x.cz", to: ["a@x.cz", "b@x.cz"] },
      scope: { country: "CZ", lob: "GSM", kind: "input", flow: "A" },
      minStatus: "WARNING",
    } as Partial<Channel>);
    expect(channelForm(email)).toMatchObject({
      type: "email",
      smtp: "smtp://ops:…@mail:587?starttls=required",
      from: "fw@x.cz",
      to: "a@x.cz, b@x.cz",
      country: "CZ",
      lob: "GSM",
      kind: "input",
      flow: "A",
      minStatus: "WARNING",
    });
    expect(channelForm(saved({ type: "kafka", target: { brokers: "k1:9092,k2:9092", topic: "alarms" } } as Partial<Channel>))).toMatchObject({
      type: "kafka",
      brokers: "k1:9092,k2:9092",
      topic: "alarms",
      url: "",
    });
  });
  it("sends back what it was given: the redacted secret keeps the stored one", () => {
    for (const c of [
      saved({ scope: { country: "CZ", lob: "GSM" } }),
      saved({ type: "email", target: { smtp: "smtp://ops:…@mail:587", from: "fw@x.cz", to: ["a@x.cz", "b@x.cz"] } } as Partial<Channel>),
      saved({ type: "slack", target: { url: "https://hooks.slack.com/services/T/B/X" } } as Partial<Channel>),
      saved({ type: "kafka", target: { brokers: "k1:9092,k2:9092", topic: "alarms" }, scope: { country: "CZ", lob: "GSM", kind: "forward" } } as Partial<Channel>),
    ]) {
      const { type, target, scope, minStatus } = c;
      expect(channelBody(channelForm(c))).toEqual({ type, target, ...(scope ? { scope } : {}), minStatus });
    }
  });
});

describe("a refused channel", () => {
  it("names the form's field of the path", () => {
    expect(fieldOf("target.url")).toBe("url");
    expect(fieldOf("target.secret")).toBe("secret");
    expect(fieldOf("target.smtp")).toBe("smtp");
    expect(fieldOf("target.from")).toBe("from");
    expect(fieldOf("target.to")).toBe("to");
    expect(fieldOf("target.to[1]")).toBe("to");
    expect(fieldOf("target.brokers")).toBe("brokers");
    expect(fieldOf("target.topic")).toBe("topic");
    expect(fieldOf("minStatus")).toBe("minStatus");
    expect(fieldOf("type")).toBe("type");
    expect(fieldOf("name")).toBe("name");
    expect(fieldOf("scope.country")).toBe("country");
    expect(fieldOf("scope.lob")).toBe("lob");
    expect(fieldOf("scope.kind")).toBe("kind");
    expect(fieldOf("scope.flow")).toBe("flow");
    expect(fieldOf("target")).toBeNull();
    expect(fieldOf("constructor")).toBeNull();
    expect(fieldOf(undefined)).toBeNull();
  });
  it("is shown beside the field without the path the message starts with", () => {
    expect(fieldError({ path: "target.to[1]", message: 'target.to[1]: "b@" is not an e-mail address' })).toEqual({
      field: "to",
      message: '"b@" is not an e-mail address',
    });
    expect(fieldError({ path: "minStatus", message: "unknown variant `INFO`" })).toEqual({ field: "minStatus", message: "unknown variant `INFO`" });
    expect(fieldError({ path: "target", message: "missing field `url`" })).toBeNull();
    expect(fieldError({ message: "no such channel" })).toBeNull();
  });
});

describe("a channel listed", () => {
  it("says where it sends, short and in full", () => {
    expect(targetSummary(saved())).toBe("hooks.example.com:8443");
    expect(targetSummary(saved({ type: "slack", target: { url: "https://hooks.slack.com/services/T/B/X" } } as Partial<Channel>))).toBe("hooks.slack.com");
    expect(targetSummary(saved({ target: { url: "not a url", secret: "…" } }))).toBe("not a url");
    const email = (to: string[]) => saved({ type: "email", target: { smtp: "smtp://mail:25", from: "fw@x.cz", to } } as Partial<Channel>);
    expect(targetSummary(email(["a@x.cz"]))).toBe("a@x.cz");
    expect(targetSummary(email(["a@x.cz", "b@x.cz"]))).toBe("a@x.cz, b@x.cz");
    expect(targetSummary(email(["a@x.cz", "b@x.cz", "c@x.cz", "d@x.cz"]))).toBe("a@x.cz, b@x.cz +2 more");
    const kafka = saved({ type: "kafka", target: { brokers: "k1:9092,k2:9092", topic: "alarms" } } as Partial<Channel>);
    expect(targetSummary(kafka)).toBe("alarms");
    expect(targetDetail(kafka)).toBe("alarms on k1:9092,k2:9092");
    expect(targetDetail(email(["a@x.cz", "b@x.cz"]))).toBe("from fw@x.cz to a@x.cz, b@x.cz via smtp://mail:25");
    expect(targetDetail(saved())).toBe("https://hooks.example.com:8443/flowwatch");
  });
  it("says which flows it takes", () => {
    expect(channelScopeText(undefined)).toBe("all flows");
    expect(channelScopeText({ country: "CZ" })).toBe("CZ");
    expect(channelScopeText({ country: "CZ", lob: "GSM" })).toBe("CZ / GSM");
    expect(channelScopeText({ country: "CZ", lob: "GSM", kind: "forward" })).toBe("CZ / GSM / every forward");
    expect(channelScopeText({ country: "CZ", lob: "GSM", kind: "input" })).toBe("CZ / GSM / every input");
    expect(channelScopeText({ country: "CZ", lob: "GSM", kind: "input", flow: "A" })).toBe("CZ / GSM / A");
    expect(channelScopeText({ country: "CZ", lob: "GSM", kind: "forward", flow: "A:X" })).toBe("CZ / GSM / A:X (forward)");
  });
});

describe("a delivery attempt", () => {
  it("takes the colour of a status by its outcome", () => {
    expect(outcomeStatus("delivered")).toBe("OK");
    expect(outcomeStatus("retry")).toBe("WARNING");
    expect(outcomeStatus("failed")).toBe("OUTAGE");
  });
  it("is timed to the second in the zone", () => {
    expect(attemptTime({ at: "2026-12-02T20:14:36.789Z" }, "Europe/Prague")).toBe("2026-12-02 21:14:36 CET");
    expect(attemptTime({ at: "2026-07-02T23:59:05.001Z" }, "Europe/Prague")).toBe("2026-07-03 01:59:05 CEST");
    expect(attemptTime({ at: "2026-12-02T20:14:06Z" }, "UTC")).toBe("2026-12-02 20:14:06 UTC");
  });
});
