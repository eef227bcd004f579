// A real flowwatch (`run --demo` on a fresh embedded store, a free loopback port, this
// checkout's built UI) and Debian's Chromium driven by playwright-core. Nothing is downloaded.

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import type { Browser, Page } from "playwright-core";

const ui = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const SCREENSHOTS = join(ui, "e2e", "screenshots");
export const ROOT_PASSWORD = "e2e-root-password";

/** The flowwatch binary: FLOWWATCH_BIN, else this workspace's debug build. */
function binary(): string {
  const bin = process.env.FLOWWATCH_BIN ?? resolve(ui, "..", "target", "debug", "flowwatch");
  if (!existsSync(bin)) throw new Error(`no flowwatch binary at ${bin}: run \`cargo build -p flowwatch-cli\` first, or set FLOWWATCH_BIN`);
  return bin;
}

export interface Flowwatch {
  url: string;
  process: ChildProcess;
  log: () => string;
  stop: () => Promise<void>;
}

/** Starts `flowwatch run --demo` on a free port; resolves once it serves. */
export async function startFlowwatch(flows: number): Promise<Flowwatch> {
  const dist = join(ui, "dist");
  if (!existsSync(join(dist, "index.html"))) throw new Error(`no built UI in ${dist}: run \`npm run build\` first`);
  const dir = mkdtempSync(join(tmpdir(), "flowwatch-e2e-"));
  const child = spawn(
    binary(),
    ["run", "--demo", "--demo-flows", String(flows), "--data-dir", join(dir, "data"), "--http", "127.0.0.1:0", "--ui-dir", dist],
    { env: { ...process.env, FLOWWATCH_ROOT_PASSWORD: ROOT_PASSWORD, RUST_LOG: "warn" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stderr!.on("data", (d) => (err = (err + d).slice(-20_000)));
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`flowwatch did not serve within 120 s:\n${err}`)), 120_000);
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    child.on("exit", (code) => rej(new Error(`flowwatch exited with ${code}:\n${err}`)));
  });
  return {
    url,
    process: child,
    log: () => err,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((res) => child.on("exit", res));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((res) => setTimeout(res, 10_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The API as a client other than the browser sees it. */
export class Client {
  constructor(
    readonly url: string,
    public key = "",
  ) {}

  async login(username: string, password: string): Promise<this> {
    const r = await this.call<{ apiKey: string }>("POST", "/api/v1/login", { username, password });
    this.key = r.apiKey;
    return this;
  }

  async call<T = any>(method: string, path: string, body?: unknown, type = "application/json"): Promise<T> {
    const r = await fetch(this.url + path, {
      method,
      headers: { "X-API-Key": this.key, ...(body === undefined ? {} : { "Content-Type": type }) },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : (undefined as T);
  }

  get<T = any>(path: string): Promise<T> {
    return this.call<T>("GET", path);
  }
}

/** Debian's Chromium, headless, as the project's tests run it. */
export function launch(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(executablePath)) throw new Error(`no Chromium at ${executablePath}: apt-get install -y chromium`);
  return chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
}

/** Every console error and uncaught exception of the pages opened through it, but those a
 * test expects (`expect`). */
export class ConsoleErrors {
  readonly errors: string[] = [];
  private expected = new Map<Page, RegExp[]>();
  watch(page: Page): Page {
    page.on("console", (m) => {
      if (m.type() !== "error") return;
      const expected = this.expected.get(page) ?? [];
      const i = expected.findIndex((re) => re.test(m.text()));
      if (i >= 0) expected.splice(i, 1);
      else this.errors.push(`${page.url()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => this.errors.push(`${page.url()}: ${e.message}`));
    return page;
  }
  /** One console error matching `re` on `page` is expected (the browser logs a refused
   * request the test provokes). */
  expect(page: Page, re: RegExp) {
    this.expected.set(page, [...(this.expected.get(page) ?? []), re]);
  }
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Polls `f` until it returns something truthy, or fails after `ms`. */
export async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, ms = 60_000, every = 250): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last}` : ""}`);
    await new Promise((r) => setTimeout(r, every));
  }
}
