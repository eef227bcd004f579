// Sortable tables: which column and which way (as `aria-sort` says it), the next sort after a
// click on a header, and the rows in that order.

export type Direction = "ascending" | "descending";

export interface Sort<K extends string = string> {
  key: K;
  dir: Direction;
}

/** What a row is sorted by: a number, a text, a yes/no; nothing (null, undefined, NaN) when
 * unknown, listed last either way. */
export type SortValue = number | string | boolean | null | undefined;

/** The sort after a click on the header of `key`: the other way on the column sorted by, else
 * that column its first way (`first`: names A→Z, counts most first). */
export function toggle<K extends string>(current: Sort<K> | null, key: K, first: Direction = "ascending"): Sort<K> {
  if (current && current.key === key) return { key, dir: current.dir === "ascending" ? "descending" : "ascending" };
  return { key, dir: first };
}

function missing(v: SortValue): boolean {
  return v === null || v === undefined || (typeof v === "number" && Number.isNaN(v));
}

const text = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

/** Compares two known values: numbers and yes/no by size (no before yes), texts by natural
 * order (`A2` before `A10`). */
function compare(a: Exclude<SortValue, null | undefined>, b: Exclude<SortValue, null | undefined>): number {
  if (typeof a === "string" && typeof b === "string") return text.compare(a, b);
  return Number(a) - Number(b);
}

/** The rows ordered by `value` in `dir`; rows without a value last either way; ties keep
 * their order. */
export function sortRows<T>(rows: readonly T[], value: (row: T) => SortValue, dir: Direction): T[] {
  const keyed = rows.map((row, i) => ({ row, i, v: value(row) }));
  const sign = dir === "ascending" ? 1 : -1;
  keyed.sort((a, b) => {
    const ma = missing(a.v);
    const mb = missing(b.v);
    if (ma || mb) return ma === mb ? a.i - b.i : ma ? 1 : -1;
    return sign * compare(a.v as string | number | boolean, b.v as string | number | boolean) || a.i - b.i;
  });
  return keyed.map((k) => k.row);
}
