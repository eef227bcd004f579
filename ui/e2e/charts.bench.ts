// How fast the flow page draws its charts as the ticks grow (uPlot on canvas), and how fast
// the cursor follows the mouse over them: `FLOWWATCH_BIN=target/release/flowwatch npm run
// bench` prints a Markdown table (figures in docs/benchmarks.md). Not part of `npm run check`.

import { afterAll, beforeAll, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { Client, launch, ROOT_PASSWORD, startFlowwatch, until } from "./harness";
import type { Flowwatch } from "./harness";

let fw: Flowwatch;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  fw = await startFlowwatch(40);
  const api = await new Client(fw.url).login("root", ROOT_PASSWORD);
  await until("the demo evaluated", async () =>
    Object.values((await api.get("/api/v1/dashboard")).countries).every((c: any) => c.N_A === 0),
  );
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1366, height: 768 } })).newPage();
  await page.goto(fw.url + "/");
  await page.fill("input[name=username]", "root");
  await page.fill("input[name=password]", ROOT_PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForSelector("[data-country]");
});

afterAll(async () => {
  await browser?.close();
  await fw?.stop();
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

it("draws thousands of ticks per series without lag", async () => {
  const api = await new Client(fw.url).login("root", ROOT_PASSWORD);
  const lob = await api.get("/api/v1/flows/CZ/GSM");
  const input = lob.flows.find((f: any) => f.kind === "input").name;
  const today = new Date().toISOString().slice(0, 10);
  const from = new Date(Date.now() - 21 * 86_400_000).toISOString().slice(0, 10);
  const rows: string[] = [];
  for (const g of ["1h", "15m", "5m", "1m"]) {
    const load: number[] = [];
    const client: number[] = [];
    let points = 0;
    for (let run = 0; run < 3; run++) {
      const url = `${fw.url}/flow/CZ/GSM/input/${encodeURIComponent(input)}?from=${from}&to=${today}&granularity=${g}`;
      await page.goto("about:blank");
      const t0 = Date.now();
      await page.goto(url);
      await page.waitForSelector(".chart-box[data-points]:not([data-points='0'])", { timeout: 120_000 });
      load.push(Date.now() - t0);
      const timing = await page.evaluate(() => {
        const ticks = performance.getEntriesByType("resource").filter((e) => e.name.includes("/ticks?")).pop() as PerformanceResourceTiming;
        const drawn = performance.getEntriesByName("flowwatch:chart-drawn").pop()!;
        return { client: drawn.startTime - ticks.responseEnd, points: Number(document.querySelector(".chart-box")!.getAttribute("data-points")) };
      });
      client.push(timing.client);
      points = timing.points;
    }
    // The cursor: 200 moves across the traffic chart, each answered before the next is sent.
    const box = (await page.locator(".chart-box canvas").first().boundingBox())!;
    const t0 = Date.now();
    for (let i = 0; i < 200; i++) await page.mouse.move(box.x + (box.width * i) / 200, box.y + box.height / 2);
    const perMove = (Date.now() - t0) / 200;
    expect(points).toBeGreaterThan(0);
    rows.push(`| ${g} | ${points - 1} | ${median(load)} ms | ${median(client).toFixed(0)} ms | ${perMove.toFixed(1)} ms |`);
  }
  console.log(
    ["| granularity | ticks (21 days) | page load to charts drawn (median of 3) | of it in the browser: ticks received → drawn | cursor move over 3 series |", "| --- | --- | --- | --- | --- |", ...rows].join("\n"),
  );
}, 600_000);
