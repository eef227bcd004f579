// The header of a sortable column: a button (keyboard and screen readers reach it like any
// other) that sorts by the column, its first way or the other way; `aria-sort` on the column
// sorted by.

import type { ReactNode } from "react";
import { toggle } from "../sort";
import type { Direction, Sort } from "../sort";

export function SortHeader<K extends string>(p: {
  column: K;
  sort: Sort<K>;
  onSort: (s: Sort<K>) => void;
  children: ReactNode;
  /** The way a first click sorts: names A→Z (default), counts most first. */
  first?: Direction;
  /** `num` for a column of numbers. */
  className?: string;
  title?: string;
}) {
  const active = p.sort.key === p.column;
  const next = toggle(p.sort, p.column, p.first);
  return (
    <th scope="col" className={["sortable", p.className].filter(Boolean).join(" ")} aria-sort={active ? p.sort.dir : undefined} data-column={p.column}>
      <button
        type="button"
        className="sort"
        onClick={() => p.onSort(next)}
        title={`${p.title ? `${p.title}. ` : ""}Sort ${next.dir === "ascending" ? "ascending" : "descending"}`}
      >
        {p.children}
        <span className="sort-mark" aria-hidden="true">
          {active ? (p.sort.dir === "ascending" ? "▲" : "▼") : "↕"}
        </span>
      </button>
    </th>
  );
}
