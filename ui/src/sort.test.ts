import { describe, expect, it } from "vitest";
import { sortRows, toggle } from "./sort";

describe("a sortable table", () => {
  it("sorts a column its first way, then the other way, then another column its first way", () => {
    const first = toggle(null, "changes", "descending");
    expect(first).toEqual({ key: "changes", dir: "descending" });
    expect(toggle(first, "changes", "descending")).toEqual({ key: "changes", dir: "ascending" });
    expect(toggle(toggle(first, "changes"), "changes")).toEqual({ key: "changes", dir: "descending" });
    expect(toggle(first, "flow")).toEqual({ key: "flow", dir: "ascending" });
  });
  it("orders numbers by size and names naturally, either way", () => {
    expect(sortRows([3, 12, 0, 7], (n) => n, "descending")).toEqual([12, 7, 3, 0]);
    expect(sortRows([3, 12, 0, 7], (n) => n, "ascending")).toEqual([0, 3, 7, 12]);
    expect(sortRows(["A10", "a2", "B1"], (s) => s, "ascending")).toEqual(["a2", "A10", "B1"]);
    expect(sortRows([true, false, true], (b) => b, "ascending")).toEqual([false, true, true]);
  });
  it("lists rows without a value last either way and keeps ties in their order", () => {
    const rows = [
      { n: "a", v: 2 },
      { n: "b", v: null },
      { n: "c", v: 2 },
      { n: "d", v: Number.NaN },
      { n: "e", v: 5 },
    ];
    expect(sortRows(rows, (r) => r.v, "descending").map((r) => r.n)).toEqual(["e", "a", "c", "b", "d"]);
    expect(sortRows(rows, (r) => r.v, "ascending").map((r) => r.n)).toEqual(["a", "c", "e", "b", "d"]);
  });
});
