import { describe, expect, it } from "vitest";
import { SseParser } from "./live";

describe("the event stream parser", () => {
  it("dispatches named events at blank lines, in any chunking", () => {
    const text =
      'event: components\ndata: {"a":1}\n\n: keep-alive\n\nevent: status\ndata: {"id":"x",\ndata: "b":2}\n\ndata: plain\n\n';
    const whole = new SseParser().push(text);
    expect(whole).toEqual([
      { event: "components", data: '{"a":1}' },
      { event: "status", data: '{"id":"x",\n"b":2}' },
      { event: "message", data: "plain" },
    ]);
    for (const size of [1, 2, 3, 7, 13]) {
      const p = new SseParser();
      const got = [];
      for (let i = 0; i < text.length; i += size) got.push(...p.push(text.slice(i, i + size)));
      expect(got).toEqual(whole);
    }
  });
  it("takes CRLF and CR line ends, a CRLF split between chunks included", () => {
    const p = new SseParser();
    expect(p.push("event: a\r\ndata: 1\r")).toEqual([]);
    expect(p.push("\n\r\n")).toEqual([{ event: "a", data: "1" }]);
    // A CR at the end of a chunk waits: it may be the first half of a CRLF.
    expect(p.push("data:2\r\r")).toEqual([]);
    expect(p.push("data: 3")).toEqual([{ event: "message", data: "2" }]);
  });
  it("holds an unfinished event until its blank line", () => {
    const p = new SseParser();
    expect(p.push("event: status\ndata: {}\n")).toEqual([]);
    expect(p.push("\n")).toEqual([{ event: "status", data: "{}" }]);
  });
  it("drops an event with no data and resets the name", () => {
    const p = new SseParser();
    expect(p.push("event: lagged\n\ndata: x\n\n")).toEqual([{ event: "message", data: "x" }]);
  });
});
