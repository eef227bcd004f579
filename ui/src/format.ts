// How numbers and instants are written everywhere in the UI: metric prefixes on bytes, the
// difference as a percentage, times in the flow's country's zone with the zone named.

const PREFIXES = ["", "k", "M", "G", "T", "P", "E"];

/** A metric number: `9 M`, `1.2 G`, `532 k`, `0`; one decimal below 10, none above. */
export function metric(n: number): string {
  if (!Number.isFinite(n)) return "–";
  const sign = n < 0 ? "-" : "";
  let v = Math.abs(n);
  let k = 0;
  while (v >= 999.5 && k < PREFIXES.length - 1) {
    v /= 1000;
    k++;
  }
  // 999.5 and above went up a prefix, so the rounded number has at most three digits.
  const text = v < 9.95 && (k > 0 || v % 1 !== 0) ? v.toFixed(1).replace(/\.0$/, "") : v.toFixed(0);
  return `${sign}${text}${PREFIXES[k] ? ` ${PREFIXES[k]}` : ""}`;
}

/** Bytes with a metric prefix: `9 MB`, `1.2 GB`, `0 B`. */
export function bytes(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return "–";
  const m = metric(n);
  return /[a-zA-Z]$/.test(m) ? `${m}B` : `${m} B`;
}

/** A granularity (`"15m"`, `"1h"`, `"30s"`, `"1d"`, or minutes as an integer) in seconds. */
export function granularitySeconds(g: string | number): number | null {
  if (typeof g === "number") return Number.isInteger(g) && g > 0 ? g * 60 : null;
  const m = /^(\d+)([smhd])$/.exec(g.trim());
  if (!m) return /^\d+$/.test(g.trim()) ? Number(g) * 60 : null;
  const n = Number(m[1]);
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as "s" | "m" | "h" | "d"];
  return n > 0 ? n * unit : null;
}

/** Bytes per tick as a rate: `1.2 GB/h`, `40 MB/15 min`, `3 GB/d`. */
export function rate(n: number | null | undefined, granularity: string): string {
  const s = granularitySeconds(granularity);
  if (s == null) return bytes(n);
  return `${bytes(n)}/${per(s)}`;
}

function per(s: number): string {
  if (s === 86_400) return "d";
  if (s === 3600) return "h";
  if (s === 60) return "min";
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

/** A difference (actual against expected, 1 = as expected) as a percentage: `97.3 %`. */
export function percent(d: number | null | undefined): string {
  if (d == null || !Number.isFinite(d)) return "–";
  const p = d * 100;
  return `${Math.abs(p) >= 1000 ? p.toFixed(0) : p.toFixed(1)} %`;
}

/** A length of time: `45 s`, `12 min`, `2 h 8 min`, `1 d 7 h`. */
export function duration(seconds: number): string {
  const s = Math.round(Math.abs(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) {
    const m = Math.floor((s % 3600) / 60);
    return `${Math.floor(s / 3600)} h${m ? ` ${m} min` : ""}`;
  }
  const h = Math.floor((s % 86_400) / 3600);
  return `${Math.floor(s / 86_400)} d${h ? ` ${h} h` : ""}`;
}

/** How long before `now` an instant was: `27 s ago`, `2 h 8 min ago`. */
export function ago(at: string | number | Date, now: Date = new Date()): string {
  const t = at instanceof Date ? at.getTime() : typeof at === "number" ? at * 1000 : Date.parse(at);
  const s = (now.getTime() - t) / 1000;
  return s < 0 ? `in ${duration(-s)}` : `${duration(s)} ago`;
}

const formats = new Map<string, Intl.DateTimeFormat>();

function format(zone: string): Intl.DateTimeFormat {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZoneName: "short",
    });
    formats.set(zone, f);
  }
  return f;
}

/** The parts of an instant in a zone: local date, local time and the zone's short name. */
export function zoned(at: string | number | Date, zone: string) {
  const date = at instanceof Date ? at : new Date(typeof at === "number" ? at * 1000 : at);
  const parts: Record<string, string> = {};
  for (const p of format(zone).formatToParts(date)) parts[p.type] = p.value;
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    time: `${parts.hour}:${parts.minute}`,
    zone: parts.timeZoneName ?? zone,
  };
}

/** An instant in a zone, the zone named: `2026-11-26 12:00 CET`. */
export function localTime(at: string | number | Date, zone: string): string {
  const z = zoned(at, zone);
  return `${z.date} ${z.time} ${z.zone}`;
}

/** A time axis label in a zone, 24-hour: the date (`11-24`) at midnight, else the time. */
export function axisTime(t: number, zone: string): string {
  const z = zoned(t, zone);
  return z.time === "00:00" ? z.date.slice(5) : z.time;
}

/** The local date (YYYY-MM-DD) of an instant in a zone. */
export function localDate(at: string | number | Date, zone: string): string {
  return zoned(at, zone).date;
}

/** `days` after a date (YYYY-MM-DD), as a date. */
export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** Partitions as sorted ranges: `0-3,7,9-10`; none: `–`. */
export function partitionRanges(partitions: readonly number[]): string {
  const sorted = [...new Set(partitions)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i];
    while (i + 1 < sorted.length && sorted[i + 1] === sorted[i] + 1) i++;
    out.push(start === sorted[i] ? String(start) : `${start}-${sorted[i]}`);
  }
  return out.length ? out.join(",") : "–";
}

/** A cluster epoch (`term << 32` plus the term's plan count) as `term.count`: `5.3`. */
export function epoch(e: number): string {
  const term = Math.floor(e / 2 ** 32);
  return `${term}.${e - term * 2 ** 32}`;
}

/** A short length of time given in milliseconds: `120 ms`, `1.5 s`, `12 s`, `3 min`. */
export function millis(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  if (Math.abs(Math.round(ms)) < 1000) return `${Math.round(ms)} ms`;
  if (Math.abs(ms) < 10_000) return `${(ms / 1000).toFixed(1).replace(/\.0$/, "")} s`;
  return duration(ms / 1000);
}

/** An instant as the wall clock of a zone shows it, as a `datetime-local` input holds it:
 * `2026-11-26T12:00`. */
export function wallClock(at: string | number | Date, zone: string): string {
  const z = zoned(at, zone);
  return `${z.date}T${z.time}`;
}

/** The zone's offset from UTC at an instant, in milliseconds (whole minutes). */
function offset(t: number, zone: string): number {
  const z = zoned(new Date(t), zone);
  const local = Date.parse(`${z.date}T${z.time}:00Z`);
  return local - (t - (((t % 60_000) + 60_000) % 60_000));
}

/**
 * The instant a wall-clock time (`YYYY-MM-DDTHH:MM`) of a zone names, or null if the text is
 * not one. A time skipped by a DST change is read with the offset before the change (02:30 on
 * a spring-forward day is 03:30); a repeated one is its first occurrence.
 */
export function fromWallClock(text: string, zone: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::\d{2})?$/.exec(text.trim());
  if (!m) return null;
  const [y, mo, d, h, mi] = m.slice(1).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59) return null;
  const guess = Date.UTC(y, mo - 1, d, h, mi);
  if (new Date(guess).getUTCDate() !== d) return null;
  // The offset an hour or so either side may differ (a DST change): take the earlier
  // occurrence that reads back as the text, else the offset before the change.
  const before = offset(guess - 86_400_000 / 2, zone);
  const after = offset(guess + 86_400_000 / 2, zone);
  for (const o of [before, after]) {
    const t = guess - o;
    if (wallClock(new Date(t), zone) === `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}`) return new Date(t);
  }
  return new Date(guess - before);
}

/** The weekday of a date (YYYY-MM-DD): 0 = Monday … 6 = Sunday. */
export function weekday(date: string): number {
  return (new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7;
}
