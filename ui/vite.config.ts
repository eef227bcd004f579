import { defineConfig } from "vite";

// `npm run dev` serves the UI with hot reload and sends the API to a running flowwatch
// (FLOWWATCH_URL, default http://127.0.0.1:8080); `npm run build` writes ui/dist, which the
// gateway serves.
export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 600 },
  server: {
    proxy: { "/api": process.env.FLOWWATCH_URL ?? "http://127.0.0.1:8080" },
  },
});
