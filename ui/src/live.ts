// `GET /api/v1/live`: Server-Sent Events read over fetch (EventSource cannot send the
// X-API-Key header), parsed as the HTML standard says, reconnecting after a drop.

import type { Api } from "./api";

export interface SseMessage {
  event: string;
  data: string;
}

/** Turns the text of an event stream, chunk by chunk, into its messages. */
export class SseParser {
  private buffer = "";
  private event = "";
  private data: string[] = [];

  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      // A lone \r at the end may be the first half of \r\n: wait for more.
      if (!m || (m[0] === "\r" && m.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.line(line, out);
    }
    return out;
  }

  private line(line: string, out: SseMessage[]) {
    if (line === "") {
      if (this.data.length > 0) out.push({ event: this.event || "message", data: this.data.join("\n") });
      this.event = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return; // a comment: keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
  }
}

export interface LiveHandlers {
  /** A named event with its JSON data. */
  onEvent: (event: string, data: unknown) => void;
  /** Connected (true) or lost (false). */
  onConnection?: (up: boolean) => void;
}

/** Follows the live stream (`query`: `?country=&onlyOutages=`) until `signal` aborts. */
export async function follow(api: Api, query: string, h: LiveHandlers, signal: AbortSignal): Promise<void> {
  let wait = 500;
  while (!signal.aborted) {
    try {
      const r = await fetch(api.url(`/live${query}`), { headers: api.headers(), signal });
      if (r.status === 401) return;
      if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
      h.onConnection?.(true);
      wait = 500;
      const parser = new SseParser();
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const m of parser.push(value)) {
          let data: unknown = m.data;
          try {
            data = JSON.parse(m.data);
          } catch {
            // not JSON: passed on as text
          }
          h.onEvent(m.event, data);
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    h.onConnection?.(false);
    await new Promise((res) => setTimeout(res, wait));
    wait = Math.min(wait * 2, 10_000);
  }
}
