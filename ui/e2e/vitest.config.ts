import { defineConfig } from "vitest/config";

// The end-to-end tests: a real `flowwatch run --demo` and Debian's Chromium, one file, in order.
export default defineConfig({
  test: {
    // `npm run bench` runs the chart benchmark instead.
    include: [process.env.FLOWWATCH_E2E === "bench" ? "e2e/**/*.bench.ts" : "e2e/**/*.e2e.ts"],
    testTimeout: 120_000,
    hookTimeout: 240_000,
    fileParallelism: false,
    sequence: { concurrent: false },
    reporters: ["verbose"],
  },
});
