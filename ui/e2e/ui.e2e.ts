// The web UI end to end: a real `flowwatch run --demo` served to Debian's Chromium. Screenshots
// of every page go to e2e/screenshots/.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { Client, ConsoleErrors, launch, ROOT_PASSWORD, screenshot, startFlowwatch, until } from "./harness";
import type { Flowwatch } from "./harness";
import { suggestionKey } from "../src/suggest";
import type { DaySuggestion, Suggestions, WeekdaySuggestion } from "../src/suggest";

const FLOWS = 160;
const STATUSES = ["OK", "WARNING", "OUTAGE", "N_A", "DISABLED"] as const;
type Counts = Record<(typeof STATUSES)[number], number>;

let fw: Flowwatch;
let browser: Browser;
let api: Client;
const consoleErrors = new ConsoleErrors();
const contexts: BrowserContext[] = [];

async function page(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  contexts.push(context);
  return consoleErrors.watch(await context.newPage());
}

async function asRoot(): Promise<Page> {
  const p = await page();
  await p.goto(fw.url + "/");
  await p.fill("input[name=username]", "root");
  await p.fill("input[name=password]", ROOT_PASSWORD);
  await p.click("button[type=submit]");
  await p.waitForSelector("[data-country]");
  return p;
}

async function tiles(p: Page): Promise<Record<string, Counts>> {
  return p.$$eval("[data-country]", (els) =>
    Object.fromEntries(
      els.map((el) => [
        el.getAttribute("data-country"),
        Object.fromEntries([...el.querySelectorAll("[data-count]")].map((c) => [c.getAttribute("data-count"), Number(c.textContent)])),
      ]),
    ),
  );
}

const dashboard = () => api.get<{ countries: Record<string, Counts> }>("/api/v1/dashboard").then((d) => d.countries);

/** An hour-aligned instant `hours` before now, in Unix seconds. */
const hoursAgo = (hours: number) => Math.floor(Date.now() / 3_600_000) * 3600 - hours * 3600;
const iso = (s: number) => new Date(s * 1000).toISOString().replace(".000Z", "Z");

beforeAll(async () => {
  fw = await startFlowwatch(FLOWS);
  api = await new Client(fw.url).login("root", ROOT_PASSWORD);
  browser = await launch();
  // The demo evaluates its history by itself: wait until no flow is N_A.
  await until(
    "every demo flow evaluated",
    async () => {
      const c = await dashboard();
      return Object.values(c).every((x) => x.N_A === 0);
    },
    120_000,
  );
});

afterAll(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  await fw?.stop();
});

describe("the web UI", () => {
  it("lets a visitor see every country with the API's counts and offers no edit control", async () => {
    const p = await page();
    await p.goto(fw.url + "/country/CZ");
    // Logged out: the login page, and back to the asked page after logging in.
    await p.waitForSelector("text=Continue as visitor");
    await screenshot(p, "login");
    await p.click("text=Continue as visitor");
    await p.waitForSelector("h1:has-text('CZ')");
    expect(new URL(p.url()).pathname).toBe("/country/CZ");
    expect(await p.textContent("[data-testid=who]")).toContain("read-only");
    expect(await p.$("text=Add LoB")).toBeNull();
    expect(await p.$("button:has-text('Disable')")).toBeNull();
    expect(await p.$("nav >> text=Users")).toBeNull();

    await p.click("text=Dashboard");
    await p.waitForSelector("[data-country]");
    await until("the tiles to match the API", async () => {
      const before = await dashboard();
      const shown = await tiles(p);
      const after = await dashboard();
      const same = (a: Record<string, Counts>) =>
        Object.keys(a).every((c) => STATUSES.every((s) => a[c][s] === shown[c]?.[s])) && Object.keys(a).length === Object.keys(shown).length;
      return Object.keys(shown).sort().join() === "AT,CZ,DE,NL" && (same(before) || same(after));
    }, 10_000);
    await screenshot(p, "dashboard-visitor");

    const lob = await api.get<{ flows: { kind: string; name: string }[] }>("/api/v1/flows/CZ/GSM");
    await p.goto(fw.url + "/lob/CZ/GSM");
    await p.waitForSelector(`[data-flow="${lob.flows[0].name}"]`);
    expect(await p.$$("input[type=checkbox]")).toHaveLength(0);
    expect(await p.$("button:has-text('Remove')")).toBeNull();
    expect(await p.$("text=Add input")).toBeNull();
    const input = lob.flows.find((f) => f.kind === "input")!;
    await p.goto(`${fw.url}/flow/CZ/GSM/input/${encodeURIComponent(input.name)}?tab=config`);
    await p.waitForSelector("#flow-config");
    expect(await p.$eval("#flow-config", (t) => (t as HTMLTextAreaElement).readOnly)).toBe(true);
    expect(await p.$("button:has-text('Save')")).toBeNull();
    expect(await p.$("button:has-text('Preview')")).not.toBeNull();
    await p.goto(fw.url + "/settings/CZ");
    await p.waitForSelector(".calendar");
    expect(await p.$$(".calendar button")).toHaveLength(0);
    expect(await p.$("text=Fill")).toBeNull();
    // Suggestions are read, not applied.
    await p.click("nav[aria-label=Views] >> text=Suggestions");
    await p.waitForSelector("[data-testid=suggestions]", { timeout: 60_000 });
    expect(await p.$("li.suggestion button")).toBeNull();
    await p.click("nav >> text=Flapping");
    await p.waitForSelector("table.flapping-table tbody tr");
  });

  it("is usable from the keyboard and fits 1366×768", async () => {
    const p = await asRoot();
    await p.keyboard.press("Tab");
    expect(await p.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    let reached = "";
    for (let i = 0; i < 20 && !reached; i++) {
      await p.keyboard.press("Tab");
      reached = await p.evaluate(() => document.activeElement?.closest("[data-country]")?.getAttribute("data-country") ?? "");
    }
    expect(reached).toBe("AT");
    await p.keyboard.press("Enter");
    await p.waitForSelector("h1:has-text('AT')");
    const lob = await api.get<{ flows: { kind: string; name: string }[] }>("/api/v1/flows/CZ/GSM");
    const input = encodeURIComponent(lob.flows.find((f) => f.kind === "input")!.name);
    const flow = `/flow/CZ/GSM/input/${input}`;
    for (const path of ["/", "/country/CZ", "/lob/CZ/GSM", flow, `${flow}?tab=config`, "/settings/CZ", "/users", "/silences", "/notifications", "/flapping", "/status"]) {
      await p.goto(fw.url + path);
      await p.waitForSelector("main h1");
      const wide = await p.evaluate(() => document.documentElement.scrollWidth);
      expect(wide, `${path} scrolls sideways`).toBeLessThanOrEqual(1366);
    }
    await p.goto(fw.url + "/settings/CZ?tab=suggestions");
    await p.waitForSelector("[data-testid=suggestions]", { timeout: 60_000 });
    expect(await p.evaluate(() => document.documentElement.scrollWidth), "the suggestions scroll sideways").toBeLessThanOrEqual(1366);
    // A sortable column sorts from the keyboard.
    await p.goto(fw.url + "/lob/CZ/GSM");
    await p.waitForSelector("tr[data-flow]");
    await p.focus("th[data-column=status] button");
    await p.keyboard.press("Enter");
    expect(await p.getAttribute("th[data-column=status]", "aria-sort")).toBe("descending");
    await p.keyboard.press("Space");
    expect(await p.getAttribute("th[data-column=status]", "aria-sort")).toBe("ascending");
    expect(await p.getAttribute("th[data-column=flow]", "aria-sort")).toBeNull();
  });

  it("shows an outage caused by an ingest on the dashboard within 2 s, without reload", async () => {
    const p = await asRoot();
    const cz = () => tiles(p).then((t) => t.CZ.OUTAGE);
    await until("the CZ tile", () => cz().then((n) => n >= 0));
    const before = await cz();
    // Fifteen days of steady traffic of a new flow that stopped three hours ago.
    let csv = "time,country,lob,kind,flow,bytes\n";
    for (let t = hoursAgo(15 * 24); t < hoursAgo(3); t += 300) csv += `${iso(t)},CZ,E2E,input,E2E-1,100000\n`;
    const marker = await p.evaluate(() => ((window as any).__notReloaded = true));
    const answer = await api.call("POST", "/api/v1/ingest", csv, "text/csv");
    const stored = Date.now();
    expect(answer.refused).toBe(0);
    await p.waitForFunction((n) => Number(document.querySelector('[data-country="CZ"] [data-count="OUTAGE"]')?.textContent) > n, before, {
      timeout: 2_000,
      polling: 50,
    });
    const elapsed = Date.now() - stored;
    expect(elapsed).toBeLessThanOrEqual(2_000);
    expect(await p.evaluate(() => (window as any).__notReloaded)).toBe(marker);
    const latest = await api.get("/api/v1/flows/CZ/E2E");
    expect(latest.flows[0].shown).toBe("OUTAGE");
    // The event log got the change live too.
    await p.waitForSelector("tr[data-event*='E2E-1'] >> text=OUTAGE", { timeout: 2_000 });
    await screenshot(p, "dashboard-outage");
    console.log(`outage on the dashboard ${elapsed} ms after the ingest was stored`);
  });

  it("lists the ingested outage as an open incident of its input, linking to the flow", async () => {
    const p = await asRoot();
    await p.click("nav >> text=Incidents");
    // The outage of the ingested flow E2E-1 (the test before): an incident rooted at it, open.
    await p.waitForURL(/\/incidents$/);
    const row = p.locator("tr[data-incident^='CZ/E2E/input/E2E-1@']");
    await row.waitFor();
    expect(await row.getAttribute("data-open")).toBe("true");
    expect(await row.textContent()).toContain("OUTAGE");
    const fromApi = await api.get<{ incidents: { id: string; end?: string }[] }>("/api/v1/incidents");
    const mine = fromApi.incidents.filter((i) => i.id.startsWith("CZ/E2E/input/E2E-1@"));
    expect(mine).toHaveLength(1);
    expect(mine[0].end).toBeUndefined();
    await screenshot(p, "incidents");
    // Root acknowledges it whole: its flow counts as acknowledged.
    await row.locator("button", { hasText: "Acknowledge all" }).click();
    await row.locator("input[name=ack-comment]").fill("e2e: on it");
    await row.locator("form button[type=submit]").click();
    await until("E2E-1 acknowledged through its incident", async () => {
      const lob = await api.get<{ flows: { name: string; acknowledged?: { comment: string } }[] }>("/api/v1/flows/CZ/E2E");
      return lob.flows.find((f) => f.name === "E2E-1")?.acknowledged?.comment === "e2e: on it";
    });
    await row.locator("a", { hasText: "E2E-1" }).click();
    await p.waitForSelector("[data-testid=at-tick]");
    expect(new URL(p.url()).pathname).toBe("/flow/CZ/E2E/input/E2E-1");
  });

  it("opens an outage from the event log at its shaded tick", async () => {
    const p = await asRoot();
    // The log opens on the changes to act on: each to or from WARNING/OUTAGE, no revision.
    // Every change (the demo's daily flows flip between N/A and OK) is one click away.
    const changes = () => p.$$eval("tr[data-event] td.change", (cells) => cells.map((c) => c.textContent ?? ""));
    await p.waitForSelector("tr[data-event]");
    expect((await changes()).every((c) => /WARNING|OUTAGE/.test(c))).toBe(true);
    expect(await p.$$("tr[data-event] >> text=revised")).toHaveLength(0);
    await p.check("text=every change");
    await until("an N/A change listed", () => changes().then((cs) => cs.some((c) => !/WARNING|OUTAGE/.test(c))));
    await screenshot(p, "event-log-every-change");
    await p.uncheck("text=every change");
    await until("only changes to act on again", () => changes().then((cs) => cs.length > 0 && cs.every((c) => /WARNING|OUTAGE/.test(c))));
    await p.check("text=only outages");
    const row = p.locator("tr[data-event*='E2E-1']").first();
    await row.waitFor();
    const id = await row.getAttribute("data-event");
    await row.locator("a").click();
    await p.waitForSelector("[data-testid=at-tick]");
    const url = new URL(p.url());
    expect(url.pathname).toBe("/flow/CZ/E2E/input/E2E-1");
    const at = url.searchParams.get("at")!;
    expect(id).toContain(at);
    expect(await p.getAttribute("[data-testid=at-tick]", "data-status")).toBe("OUTAGE");
    // It says why (this flow runs the seed mode: which level its difference crossed).
    expect(await p.textContent("[data-testid=why]")).toMatch(/^Difference .* (below the hard level|for the second tick in a row)/);
    // The charts shade a span holding the tick.
    const start = Date.parse(at) / 1000;
    const shaded = await p.getAttribute(".chart-box", "data-shaded");
    const spans = shaded!.split(";").map((s) => /^(\w+):(\d+)-(\d+)$/.exec(s)!);
    expect(spans.some((m) => m[1] === "OUTAGE" && Number(m[2]) <= start && start < Number(m[3]))).toBe(true);
    // A deep link to the same page gives the same page.
    const again = await page();
    await again.goto(p.url());
    await again.fill("input[name=username]", "root");
    await again.fill("input[name=password]", ROOT_PASSWORD);
    await again.click("button[type=submit]");
    await again.waitForSelector("[data-testid=at-tick][data-status=OUTAGE]");
    await screenshot(p, "flow-outage");
  });

  it("silences a flow from its page, lists the silence as active and ends it", async () => {
    const lob = await api.get<{ flows: { kind: string; name: string }[] }>("/api/v1/flows/CZ/GSM");
    const input = lob.flows.find((f) => f.kind === "input")!;
    const p = await asRoot();
    await p.goto(`${fw.url}/flow/CZ/GSM/input/${encodeURIComponent(input.name)}`);
    await p.click("button:has-text('Silence…')");
    const form = p.locator("form.silence-form");
    await form.waitFor();
    // The scope is the flow's, with its forwards; the window now → +2 h on the country's clock
    // (checked in what is created).
    expect(await form.locator("select[name=country]").inputValue()).toBe("CZ");
    expect(await form.locator("input[name=lob]").inputValue()).toBe("GSM");
    expect(await form.locator("select[name=kind]").inputValue()).toBe("input");
    expect(await form.locator("input[name=flow]").inputValue()).toBe(input.name);
    expect(await p.textContent("[data-testid=silence-covers]")).toContain(`CZ / GSM / ${input.name} with its forwards`);
    expect(await form.locator("input[name=from]").inputValue()).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/);
    // A reason is required: checked before anything is sent.
    const before = (await api.get<{ silences: unknown[] }>("/api/v1/silences")).silences.length;
    await form.locator("button:has-text('Create silence')").click();
    await p.waitForSelector(".field-error[data-field=comment]");
    expect((await api.get<{ silences: unknown[] }>("/api/v1/silences")).silences).toHaveLength(before);
    await form.locator("input[name=comment]").fill("e2e: switch upgrade");
    await form.locator("button:has-text('Create silence')").click();
    const banner = p.locator("[data-testid=silenced]");
    await banner.waitFor();
    expect(await banner.textContent()).toContain("e2e: switch upgrade");
    const silences = (await api.get<{ silences: any[] }>("/api/v1/silences")).silences;
    const mine = silences.find((s) => s.comment === "e2e: switch upgrade");
    expect(mine).toMatchObject({ scope: { country: "CZ", lob: "GSM", kind: "input", flow: input.name }, state: "active", createdBy: "root" });
    expect(Date.parse(mine.to) - Date.parse(mine.from)).toBe(2 * 3_600_000);
    expect(Math.abs(Date.parse(mine.from) - Date.now())).toBeLessThan(120_000);

    // Listed as active on the Silences page, with its scope in words.
    await p.click("nav >> text=Silences");
    await p.waitForURL(/\/silences$/);
    const row = p.locator(`section[data-silences=active] tr[data-silence="${mine.id}"]`);
    await row.waitFor();
    expect(await row.getAttribute("data-state")).toBe("active");
    expect(await row.textContent()).toContain(`CZ / GSM / ${input.name} with its forwards`);
    expect(await row.textContent()).toContain("e2e: switch upgrade");
    await screenshot(p, "silences");

    // A read-only user sees it, and no control to end or create one.
    const visitor = await page();
    await visitor.goto(fw.url + "/silences");
    await visitor.click("text=Continue as visitor");
    await visitor.waitForSelector(`tr[data-silence="${mine.id}"]`);
    expect(await visitor.$("button:has-text('End now')")).toBeNull();
    expect(await visitor.$("button:has-text('New silence')")).toBeNull();

    // Ended now, after a confirmation: listed as ended.
    p.once("dialog", (d) => d.accept());
    await row.locator("button:has-text('End now')").click();
    await p.waitForSelector(`section[data-silences=ended] tr[data-silence="${mine.id}"][data-state=ended]`);
    const ended = (await api.get<{ silences: any[] }>("/api/v1/silences")).silences.find((s) => s.id === mine.id);
    expect(ended.state).toBe("ended");
    expect(ended.endedAt).toBeDefined();
  });

  it("creates a webhook channel, sends it a test, shows its deliveries, edits and deletes it", async () => {
    type Channel = { name: string; type: string; target: Record<string, unknown>; scope?: unknown; minStatus: string; updatedBy: string };
    const channels = async () => (await api.get<{ channels: Channel[] }>("/api/v1/channels")).channels;
    const p = await asRoot();
    await p.click("nav >> text=Notifications");
    await p.waitForURL(/\/notifications$/);
    await p.waitForSelector("table.channels-table");
    await p.click("button:has-text('New channel')");
    const form = p.locator("form.channel-form");
    await form.waitFor();
    expect(await form.locator("select[name=type]").inputValue()).toBe("webhook");
    // A name, the URL and the secret are asked for before anything is sent.
    await form.locator("button:has-text('Create channel')").click();
    await p.waitForSelector(".field-error[data-field=name]");
    expect(await form.locator(".field-error[data-field=url]").count()).toBe(1);
    expect(await form.locator(".field-error[data-field=secret]").count()).toBe(1);
    expect((await channels()).map((c) => c.name)).not.toContain("e2e-hook");
    await form.locator("input[name=name]").fill("e2e-hook");
    await form.locator("input[name=secret]").fill("s3cret");
    await form.locator("select[name=minStatus]").selectOption("OUTAGE");
    // Refused by the server (400): its message beside the field the error's path names.
    consoleErrors.expect(p, /400/);
    await form.locator("input[name=url]").fill("ftp://127.0.0.1/hook");
    await form.locator("button:has-text('Create channel')").click();
    await form.locator(".field-error[data-field=url]").waitFor();
    expect(await form.locator(".field-error[data-field=url]").textContent()).toMatch(/http/);
    expect((await channels()).map((c) => c.name)).not.toContain("e2e-hook");
    await form.locator("input[name=url]").fill("http://127.0.0.1:9/hook");
    await form.locator("button:has-text('Create channel')").click();
    await p.waitForSelector("[data-testid=channel-saved]");
    expect(await p.textContent("[data-testid=channel-saved]")).toContain("e2e-hook created");
    const row = p.locator('tr[data-channel="e2e-hook"]');
    await row.waitFor();
    expect(await row.getAttribute("data-min-status")).toBe("OUTAGE");
    expect(await row.textContent()).toContain("127.0.0.1:9");
    expect(await row.textContent()).toContain("all flows");
    const created = await api.get<Channel>("/api/v1/channels/e2e-hook");
    expect(created).toMatchObject({
      name: "e2e-hook",
      type: "webhook",
      target: { url: "http://127.0.0.1:9/hook", secret: "…" },
      minStatus: "OUTAGE",
      updatedBy: "root",
    });
    expect(created.scope).toBeUndefined();
    await screenshot(p, "notifications-created");

    // A test message to a port nobody listens on: not delivered, and the answer says why.
    await row.locator("button:has-text('Send test')").click();
    const result = p.locator('tr[data-test-result="e2e-hook"] [data-testid=test-result][data-outcome]');
    await result.waitFor({ timeout: 60_000 });
    expect(["failed", "retry"]).toContain(await result.getAttribute("data-outcome"));
    expect(await result.locator(".response").textContent()).toMatch(/connect/i);
    await screenshot(p, "notifications-tested");

    // Chosen, the channel shows its deliveries: the test among them.
    await row.locator("a", { hasText: "e2e-hook" }).click();
    await p.waitForURL(/\/notifications\?channel=e2e-hook$/);
    const tests = p.locator('section[data-deliveries="e2e-hook"] tr[data-attempt][data-test=true]');
    await tests.first().waitFor();
    expect(["failed", "retry"]).toContain(await tests.first().getAttribute("data-outcome"));
    expect(await tests.first().textContent()).toMatch(/connect/i);
    expect(await tests.first().locator(".tag-test").count()).toBe(1);
    await p.waitForSelector("[data-testid=deliveries-pending]");
    const fromApi = await api.get<{ pending: number; deliveries: { test: boolean; outcome: string }[] }>("/api/v1/channels/e2e-hook/deliveries?limit=50");
    expect(fromApi.deliveries.some((d) => d.test && (d.outcome === "failed" || d.outcome === "retry"))).toBe(true);
    await screenshot(p, "notifications-deliveries");

    // A read-only user sees the channel and its deliveries, and no control to change them.
    const visitor = await page();
    await visitor.goto(fw.url + "/notifications?channel=e2e-hook");
    await visitor.click("text=Continue as visitor");
    await visitor.waitForSelector('section[data-deliveries="e2e-hook"] tr[data-attempt]');
    expect(await visitor.$('tr[data-channel="e2e-hook"]')).not.toBeNull();
    for (const label of ["New channel", "Send test", "Edit", "Delete"]) expect(await visitor.$(`button:has-text('${label}')`)).toBeNull();
    await visitor.close();

    // Edited: the name fixed, the secret shown as the API shows it and kept; WARNING from now on.
    await row.locator("button:has-text('Edit')").click();
    const edit = p.locator("form.channel-form");
    await edit.waitFor();
    expect(await edit.locator("input[name=name]").inputValue()).toBe("e2e-hook");
    expect(await edit.locator("input[name=name]").getAttribute("readonly")).not.toBeNull();
    expect(await edit.locator("input[name=url]").inputValue()).toBe("http://127.0.0.1:9/hook");
    expect(await edit.locator("input[name=secret]").inputValue()).toBe("…");
    expect(await edit.locator("select[name=minStatus]").inputValue()).toBe("OUTAGE");
    await edit.locator("select[name=minStatus]").selectOption("WARNING");
    await edit.locator("button:has-text('Save channel')").click();
    await p.waitForSelector('tr[data-channel="e2e-hook"][data-min-status=WARNING]');
    expect(await p.textContent("[data-testid=channel-saved]")).toContain("e2e-hook saved");
    expect(await api.get<Channel>("/api/v1/channels/e2e-hook")).toMatchObject({
      type: "webhook",
      target: { url: "http://127.0.0.1:9/hook", secret: "…" },
      minStatus: "WARNING",
    });

    // Deleted after a confirmation (its deliveries closed first: nothing reads them after).
    await p.click("nav >> text=Notifications");
    await p.waitForURL(/\/notifications$/);
    p.once("dialog", (d) => d.accept());
    await row.locator("button:has-text('Delete')").click();
    await row.waitFor({ state: "detached" });
    expect((await channels()).map((c) => c.name)).not.toContain("e2e-hook");
  });

  it("acknowledges an alarm in the event log and shows who and why everywhere", async () => {
    // A flow in WARNING or OUTAGE now and the change that put it there (the demo has some).
    type Event = { id: string; country: string; lobName: string; kind: string; flowName: string; tickTime: string; time: string; newStatus: string; acknowledged?: unknown };
    const events = (await api.get<{ events: Event[] }>("/api/v1/events?actionable=true&limit=1000")).events;
    const latest = new Map<string, Event>();
    for (const e of events) {
      const k = `${e.country}/${e.lobName}/${e.kind}/${e.flowName}`;
      const l = latest.get(k);
      if (!l || e.tickTime > l.tickTime || (e.tickTime === l.tickTime && e.time > l.time)) latest.set(k, e);
    }
    // Of a configured LoB: the LoB page of one only seen in traffic reads its missing
    // configuration (a 404 in the console).
    const configured = new Map<string, string[]>();
    const lobsOf = async (country: string) => {
      if (!configured.has(country)) configured.set(country, (await api.get(`/api/v1/config/countries/${encodeURIComponent(country)}`)).lobs);
      return configured.get(country)!;
    };
    const candidates: Event[] = [];
    for (const e of [...latest.values()].filter((e) => /WARNING|OUTAGE/.test(e.newStatus) && !e.acknowledged)) {
      if (!(await lobsOf(e.country)).includes(e.lobName)) continue;
      const lob = await api.get<{ flows: { kind: string; name: string; shown: string }[] }>(
        `/api/v1/flows/${encodeURIComponent(e.country)}/${encodeURIComponent(e.lobName)}`,
      );
      const f = lob.flows.find((x) => x.kind === e.kind && x.name === e.flowName);
      if (f && f.shown === e.newStatus) candidates.push(e);
    }
    if (candidates.length === 0) {
      console.log("no flow in WARNING or OUTAGE in the demo: nothing to acknowledge");
      return;
    }
    candidates.sort((a, b) => (a.newStatus === "OUTAGE" ? 0 : 1) - (b.newStatus === "OUTAGE" ? 0 : 1));
    const e = candidates[0];
    const p = await asRoot();
    await p.selectOption("select:near(:text('Country'))", e.country);
    const row = p.locator(`tr[data-event="${e.id}"]`);
    await until(
      "the change listed",
      async () => {
        if (await row.count()) return true;
        const older = p.locator("button:has-text('Older events')");
        if (await older.count()) await older.click();
        return false;
      },
      30_000,
    );
    await row.locator("button:has-text('Acknowledge')").click();
    await row.locator("input[name=ack-comment]").fill("e2e: on it, INC-42");
    await row.locator("button[type=submit]:has-text('Acknowledge')").click();
    await row.locator("[data-testid=ack-note]").waitFor();
    expect(await row.locator("[data-testid=ack-note]").textContent()).toContain("e2e: on it, INC-42");
    expect(await row.locator("button:has-text('Acknowledge')").count()).toBe(0);
    const fromApi = (await api.get<{ events: Event[] }>(`/api/v1/events?country=${e.country}&lob=${encodeURIComponent(e.lobName)}&limit=1000`)).events.find(
      (x) => x.id === e.id,
    );
    expect(fromApi?.acknowledged).toMatchObject({ by: "root", comment: "e2e: on it, INC-42" });
    // The country's tile counts it.
    const acked = (await api.get<{ acknowledged: Record<string, number> }>("/api/v1/dashboard")).acknowledged[e.country];
    expect(acked).toBeGreaterThanOrEqual(1);
    await p.waitForSelector(`[data-country="${e.country}"] .tile-ack[data-acknowledged="${acked}"]`);
    expect(await p.textContent(`[data-country="${e.country}"] .tile-ack`)).toMatch(new RegExp(`^${acked} of \\d+ acknowledged$`));
    await screenshot(p, "acknowledged");

    // The LoB page marks the flow, the comment on hover; its page says who and why.
    await p.goto(`${fw.url}/lob/${encodeURIComponent(e.country)}/${encodeURIComponent(e.lobName)}`);
    const tag = p.locator(`tr[data-flow="${e.flowName}"] .tag-ack`);
    await tag.waitFor();
    expect(await tag.getAttribute("title")).toContain("e2e: on it, INC-42");
    await p.goto(`${fw.url}/flow/${encodeURIComponent(e.country)}/${encodeURIComponent(e.lobName)}/${e.kind}/${encodeURIComponent(e.flowName)}`);
    await p.waitForSelector("[data-testid=acknowledged]");
    expect(await p.textContent("[data-testid=acknowledged]")).toContain("e2e: on it, INC-42");

    // Another alarmed flow is acknowledged from its own page.
    const other = candidates[1];
    if (!other) return;
    await p.goto(`${fw.url}/flow/${encodeURIComponent(other.country)}/${encodeURIComponent(other.lobName)}/${other.kind}/${encodeURIComponent(other.flowName)}`);
    const alarm = p.locator("[data-testid=alarm]");
    await alarm.locator("button:has-text('Acknowledge')").click();
    await alarm.locator("input[name=ack-comment]").fill("e2e: from the flow page");
    await alarm.locator("button[type=submit]").click();
    await p.waitForSelector("[data-testid=acknowledged]");
    expect(await p.textContent("[data-testid=acknowledged]")).toContain("e2e: from the flow page");
    await screenshot(p, "acknowledged-flow");
  });

  it("previews an edited flow configuration, refuses invalid ones, saves a new version", async () => {
    const p = await asRoot();
    const before = (await api.get("/api/v1/config")).version;
    await p.goto(fw.url + "/flow/CZ/E2E/input/E2E-1?tab=config");
    await p.waitForSelector("[data-testid=effective-config]");
    const editor = p.locator("#flow-config");
    await editor.fill('{"minHistoryDays": 3,}');
    await p.waitForSelector(".problems >> text=not valid JSON");
    expect(await p.isDisabled("button:has-text('Preview')")).toBe(true);
    await editor.fill('{"minHistoryDay": 30}');
    await p.waitForSelector('.problems >> text=unknown field "minHistoryDay"');
    await editor.fill('{"hardAlarmLevel": 0.9}');
    await p.waitForSelector(".problems >> text=0 < hard <= soft");
    await editor.fill('{"minHistoryDays": 30}');
    await p.waitForSelector(".problems >> text=must not exceed medianDays");
    // Similar days looked for only two days back: too few, every tick N_A, the outage gone.
    await editor.fill('{"lookbackDays": 2}');
    expect(await p.$$(".problems li")).toHaveLength(0);
    const counts = () => p.textContent("[data-testid=tick-counts]");
    const stored = await counts();
    await p.click("button:has-text('Preview')");
    const banner = await p.waitForSelector("[data-testid=preview-banner]");
    expect(await banner.textContent()).toMatch(/OUTAGE [1-9]\d* → 0/);
    expect(await counts()).not.toBe(stored);
    expect(await counts()).toMatch(/0 OUTAGE, 0 WARNING, 0 OK/);
    await screenshot(p, "flow-preview");
    expect((await api.get("/api/v1/config")).version).toBe(before);
    await p.click("button:has-text('Save')");
    await p.waitForSelector("[data-testid=saved]");
    const after = await api.get("/api/v1/config");
    expect(after.version).toBeGreaterThan(before);
    expect(after.document.countries.CZ.lobs.E2E.inputs["E2E-1"].config).toEqual({ lookbackDays: 2 });
    const effective = await api.get("/api/v1/flows/CZ/E2E/input/E2E-1/config");
    expect(effective.sources.lookbackDays).toBe("own");
    await p.waitForSelector("[data-testid=effective-config] tr.own >> text=lookbackDays");
  });

  it("adds an input and a forward to a LoB and removes one", async () => {
    const p = await asRoot();
    await p.goto(fw.url + "/lob/CZ/E2E");
    await p.waitForSelector('[data-flow="E2E-1"]');
    await p.fill("input[placeholder='e.g. MSSBRN1A']", "E2E-2");
    await p.click("button:has-text('Add input')");
    await p.waitForSelector('[data-flow="E2E-2"] >> text=N/A');
    await p.selectOption("select:near(:text('Forward of'))", "E2E-1");
    await p.fill("input[placeholder='e.g. CZFOX-SMS']", "CZ-BILL");
    await p.click("button:has-text('Add forward')");
    await p.waitForSelector('tr.forward[data-flow="E2E-1:CZ-BILL"]');
    const lob = await api.get("/api/v1/config/countries/CZ/lobs/E2E");
    expect(Object.keys(lob.inputs).sort()).toEqual(["E2E-1", "E2E-2"]);
    expect(Object.keys(lob.forwards)).toEqual(["E2E-1:CZ-BILL"]);
    p.once("dialog", (d) => d.accept());
    await p.click("button[aria-label='Remove E2E-2']");
    await p.waitForSelector('[data-flow="E2E-2"]', { state: "detached" });
    expect(Object.keys((await api.get("/api/v1/config/countries/CZ/lobs/E2E")).inputs)).toEqual(["E2E-1"]);
  });

  it("backtests edited LoB settings over the last 14 days and lists the flows that differ", async () => {
    const p = await asRoot();
    const before = (await api.get("/api/v1/config")).version;
    await p.goto(fw.url + "/lob/CZ/GSM?tab=config");
    const editor = p.locator("#lob-config");
    await editor.waitFor();
    // A soft level of 0.99: nearly every dip of the demo's traffic is a warning.
    await editor.fill('{"softAlarmLevel": 0.99}');
    expect(await p.inputValue("input[name=backtest-from]")).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    await p.click("button:has-text('Backtest')");
    const table = await p.waitForSelector("[data-testid=backtest-flows]", { timeout: 60_000 });
    const rows = await table.$$("tbody tr");
    expect(rows.length).toBeGreaterThan(0);
    const warnings = await p.$$eval("[data-testid=backtest-totals] tr[data-measure=warning] td", (tds) => tds.map((td) => td.textContent));
    expect(Number(warnings[1])).toBeGreaterThan(Number(warnings[0]));
    // Every flow listed is of the LoB, and links to its page over the same days.
    const links = await table.$$eval("tbody th a", (as) => as.map((a) => a.getAttribute("href")));
    for (const l of links) expect(l).toMatch(/^\/flow\/CZ\/GSM\/(input|forward)\/.+from=\d{4}-\d{2}-\d{2}&to=/);
    await screenshot(p, "lob-backtest");
    // Nothing was saved.
    expect((await api.get("/api/v1/config")).version).toBe(before);
  });

  it("lists the flapping flows and sorts them and a LoB's flows by changes in 24 h", async () => {
    type Flap = { country: string; lob: string; kind: string; flow: string; changes24h: number; flappingChanges: number };
    const flapping = (await api.get<{ flows: Flap[] }>("/api/v1/flapping")).flows;
    const p = await asRoot();
    await p.click("nav >> text=Flapping");
    await p.waitForURL(/\/flapping$/);
    await p.waitForSelector("table.flapping-table tbody tr");
    const shown = (rows: string) => p.$$eval(`${rows} td.changes`, (tds) => tds.map((td) => Number(td.getAttribute("data-changes"))));
    const descending = (ns: number[]) => ns.every((n, i) => i === 0 || ns[i - 1] >= n);
    const ascending = (ns: number[]) => ns.every((n, i) => i === 0 || ns[i - 1] <= n);
    if (flapping.length === 0) {
      console.log("no flow of the demo flaps: the flapping view is empty");
      expect(await p.textContent("table.flapping-table tbody")).toContain("No flow is flapping");
    } else {
      // Most changes first, as the API lists them; every flow flaps above its limit.
      await p.waitForSelector("tr[data-flapping-flow]");
      expect(await p.getAttribute("th[data-column=changes]", "aria-sort")).toBe("descending");
      expect(descending(await shown("tr[data-flapping-flow]"))).toBe(true);
      const limits = await p.$$eval("tr[data-flapping-flow] td:nth-child(3)", (tds) => tds.map((td) => Number(td.textContent)));
      (await shown("tr[data-flapping-flow]")).forEach((n, i) => expect(n).toBeGreaterThan(limits[i]));
      await p.click("th[data-column=changes] button");
      expect(await p.getAttribute("th[data-column=changes]", "aria-sort")).toBe("ascending");
      expect(ascending(await shown("tr[data-flapping-flow]"))).toBe(true);
      await p.click("th[data-column=changes] button");
      const top = flapping[0];
      const link = p.locator(`tr[data-flapping-flow="${top.country}/${top.lob}/${top.kind}/${top.flow}"] a`, { hasText: top.flow });
      expect(await link.getAttribute("href")).toBe(`/flow/${top.country}/${top.lob}/${top.kind}/${encodeURIComponent(top.flow)}`);
    }
    await screenshot(p, "flapping");

    // The LoB of the flow flapping most (or any): its flows by changes in 24 h, most first.
    const [country, lob] = flapping.length ? [flapping[0].country, flapping[0].lob] : ["CZ", "GSM"];
    await p.goto(`${fw.url}/lob/${encodeURIComponent(country)}/${encodeURIComponent(lob)}`);
    await p.waitForSelector("tr[data-flow]");
    expect(await p.getAttribute("th[data-column=flow]", "aria-sort")).toBe("ascending");
    await p.click("th[data-column=changes] button");
    expect(await p.getAttribute("th[data-column=changes]", "aria-sort")).toBe("descending");
    expect(await p.getAttribute("th[data-column=flow]", "aria-sort")).toBeNull();
    const most = await shown("tr[data-flow]");
    expect(most.length).toBeGreaterThan(0);
    expect(descending(most)).toBe(true);
    const fromApi = (await api.get<{ flows: { name: string; changes24h: number; flapping: boolean }[] }>(
      `/api/v1/flows/${encodeURIComponent(country)}/${encodeURIComponent(lob)}`,
    )).flows;
    expect(Math.max(...most)).toBe(Math.max(...fromApi.map((f) => f.changes24h)));
    for (const f of fromApi.filter((x) => x.flapping)) expect(await p.$(`tr[data-flow="${f.name}"][data-flapping=true] .tag-flapping`)).not.toBeNull();
    await screenshot(p, "flapping-lob");
    await p.click("th[data-column=changes] button");
    expect(await p.getAttribute("th[data-column=changes]", "aria-sort")).toBe("ascending");
    expect(ascending(await shown("tr[data-flow]"))).toBe(true);

    // The event log marks the changes held while a flow flapped.
    const held = (await api.get<{ events: { flapping: boolean }[] }>(`/api/v1/events?limit=50&actionable=true&country=${encodeURIComponent(country)}`)).events.filter(
      (e) => e.flapping,
    );
    if (held.length) {
      await p.goto(`${fw.url}/country/${encodeURIComponent(country)}`);
      await p.waitForSelector("tr[data-flapping=true] >> text=held: flapping");
    }
  });

  it("suggests calendar changes from a country's traffic, refuses a stale one and applies one as root", async () => {
    const country = "DE";
    const p = await asRoot();
    await p.goto(`${fw.url}/settings/${country}`);
    await p.waitForSelector(".calendar button");
    await p.click("nav[aria-label=Views] >> text=Suggestions");
    await p.waitForURL(/tab=suggestions$/);
    await p.waitForSelector("[data-testid=suggestions]", { timeout: 60_000 });
    await screenshot(p, "suggestions");
    const read = () => api.get<Suggestions>(`/api/v1/suggestions?country=${country}`);
    const first = await read();
    const all = (s: Suggestions) => [...s.days, ...s.weekdays];
    if (all(first).length === 0) {
      console.log(`the demo suggests nothing for ${country}: the empty state`);
      await p.waitForSelector("[data-testid=no-suggestions]");
      expect(await p.$$("li.suggestion")).toHaveLength(0);
      return;
    }
    expect(await p.$$("li.suggestion")).toHaveLength(all(first).length);
    expect(await p.textContent("li.suggestion")).toMatch(/looks like a (holiday|lazy day)|differs from/);

    // Another change meanwhile: refused (409), nothing applied, the suggestions offered again.
    const calendar = await api.get(`/api/v1/config/countries/${country}`);
    const bumped = (await api.call("PATCH", `/api/v1/config/countries/${country}`, { version: calendar.version, lazyDays: calendar.lazyDays })).version;
    expect(bumped).toBeGreaterThan(first.version);
    // The browser logs the refused request.
    consoleErrors.expect(p, /409/);
    await p.locator("li.suggestion").first().locator("button:has-text('Apply')").click();
    await p.waitForSelector("[data-testid=stale]");
    expect((await api.get("/api/v1/config")).version).toBe(bumped);
    await p.click("button:has-text('Reload suggestions')");
    await p.waitForSelector(`[data-testid=suggestions][data-version="${bumped}"]`, { timeout: 60_000 });

    // Applied: the configuration says what the suggestion said, and it is no longer suggested.
    const item = p.locator("li.suggestion").first();
    const key = await item.getAttribute("data-suggestion");
    const s = all(await read()).find((x) => suggestionKey(x) === key);
    expect(s, `${key} suggested by the API`).toBeDefined();
    await item.locator("button:has-text('Apply')").click();
    await p.waitForSelector("[data-testid=applied]");
    const after = await api.get("/api/v1/config");
    expect(after.version).toBeGreaterThan(bumped);
    const doc = after.document.countries[country];
    if ("date" in s!) {
      const day = s as DaySuggestion;
      expect(doc[day.kind === "holiday" ? "holidays" : "lazyDays"]).toContain(day.date);
    } else {
      const w = s as WeekdaySuggestion;
      const lob = doc.lobs[w.lob];
      const own = w.flow ? lob[w.flow.kind === "input" ? "inputs" : "forwards"][w.flow.name].config : lob.config;
      expect(own.independentDays).toContain(w.weekday);
    }
    await p.waitForSelector(`[data-testid=suggestions][data-version="${after.version}"]`, { timeout: 60_000 });
    expect(await p.$(`li.suggestion[data-suggestion="${key}"]`)).toBeNull();
    await screenshot(p, "suggestions-applied");
  });

  it("draws every page in the light and the dark theme", async () => {
    const p = await asRoot();
    const lob = await api.get<{ flows: { kind: string; name: string }[] }>("/api/v1/flows/CZ/GSM");
    const input = lob.flows.find((f) => f.kind === "input")!;
    const pages: [string, string, string][] = [
      ["dashboard", "/", "[data-country]"],
      ["country", "/country/CZ", "tr[data-lob=GSM]"],
      ["lob", "/lob/CZ/GSM", `[data-flow="${input.name}"]`],
      ["lob-config", "/lob/CZ/GSM?tab=config", "#lob-config"],
      ["flow", `/flow/CZ/GSM/input/${encodeURIComponent(input.name)}`, ".chart-box canvas"],
      ["flow-config", `/flow/CZ/GSM/input/${encodeURIComponent(input.name)}?tab=config`, "#flow-config"],
      ["settings", "/settings/CZ", ".calendar button"],
      ["users", "/users", "tr[data-user=root]"],
      ["incidents", "/incidents", "#incidents-title"],
      ["silences", "/silences", "#silences-title"],
      ["notifications", "/notifications", "#notifications-title"],
      ["flapping", "/flapping", "table.flapping-table tbody tr"],
      ["suggestions", "/settings/CZ?tab=suggestions", "[data-testid=suggestions]"],
      ["status", "/status", ".cards"],
    ];
    for (const theme of ["light", "dark"]) {
      if ((await p.getAttribute("html", "data-theme")) !== theme) await p.click("button[aria-label='Switch theme']");
      expect(await p.getAttribute("html", "data-theme")).toBe(theme);
      for (const [name, path, ready] of pages) {
        await p.goto(fw.url + path);
        await p.waitForSelector(ready);
        await screenshot(p, `${name}-${theme}`);
      }
    }
  });

  it("fills a country's holidays from the built-in calendar and saves a lazy day", async () => {
    const p = await asRoot();
    await p.goto(fw.url + "/settings/NL");
    await p.waitForSelector(".calendar button");
    const year = Number(await p.textContent(".year"));
    const nl = () => api.get("/api/v1/config/countries/NL");
    const had: string[] = (await nl()).holidays;
    await p.click(`button:has-text('Fill ${year} from built-in calendar')`);
    await p.waitForSelector("text=Built-in holidays");
    const filled: string[] = (await nl()).holidays;
    expect(filled).toContain(`${year}-12-25`);
    expect(filled.length).toBeGreaterThanOrEqual(had.length);
    // A working day made lazy: one click a holiday, two a lazy day.
    const day = `${year}-06-10`;
    await p.click(`button[data-date="${day}"]`);
    await p.click(`button[data-date="${day}"]`);
    expect(await p.getAttribute(`button[data-date="${day}"]`, "aria-label")).toBe(`${day}: lazy day`);
    await p.click("button:has-text('Save')");
    await p.waitForSelector("text=Saved.");
    expect((await nl()).lazyDays).toContain(day);
  });

  it("keeps the system status live without reload", async () => {
    const p = await asRoot();
    await p.goto(fw.url + "/status");
    await p.waitForSelector(".cards");
    const asOf = () => p.getAttribute("[data-time]", "data-time");
    const first = await asOf();
    // The stream sends the components every 5 s.
    await p.waitForFunction((t) => document.querySelector("[data-time]")?.getAttribute("data-time") !== t, first, { timeout: 12_000 });
    expect(await asOf()).not.toBe(first);
    expect(await p.textContent(".cards")).toContain("reachable");
  });

  it("shows one process, no coordinator, in the system status page's cluster section", async () => {
    expect(await api.get("/api/v1/cluster")).toEqual({ clustered: false, inProcess: true, members: [] });
    const p = await asRoot();
    await p.goto(fw.url + "/status");
    await p.waitForSelector("section[aria-label=Cluster][data-cluster=one-process]");
    expect(await p.textContent("section[aria-label=Cluster]")).toContain("One process (no coordinator)");
    expect(await p.$("[data-cluster-error]")).toBeNull();
    expect(await p.$("section[aria-label=Cluster] table")).toBeNull();
  });

  it("logs out to the login page", async () => {
    const p = await asRoot();
    await p.click("text=Log out");
    await p.waitForSelector("input[name=username]");
    expect(await p.evaluate(() => localStorage.getItem("flowwatch.session"))).toBeNull();
  });

  it("wrote no error to any page's console", () => {
    expect(consoleErrors.errors).toEqual([]);
  });
});
