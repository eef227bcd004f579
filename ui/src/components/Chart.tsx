// A time-series chart (uPlot: canvas, thousands of points without lag) in the flow's zone,
// with WARNING / OUTAGE ticks shaded, level lines and a marked instant.

import { useEffect, useRef } from "react";
import uPlot from "uplot";
import type { Aligned, Span } from "../chartData";
import { axisTime } from "../format";

export interface SeriesSpec {
  label: string;
  /** A CSS variable holding its colour. */
  color: string;
  dash?: number[];
  width?: number;
  /** Drawn as steps (a tick's value holds for the whole tick). */
  steps?: boolean;
}

export interface Level {
  value: number;
  label: string;
  color: string;
}

export interface ChartProps {
  title: string;
  data: Aligned;
  series: SeriesSpec[];
  spans: Span[];
  levels?: Level[];
  /** A tick (Unix seconds, start and end) to outline: the one an event named. */
  marker?: { from: number; to: number };
  yValue: (v: number) => string;
  zone: string;
  height?: number;
  /** Charts with the same key move their cursors together. */
  sync?: string;
  /** The y axis starts at 0 and reaches every level (the difference chart). */
  fromZero?: boolean;
}

function themeColour(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

/** The spans as the chart shades them, for tests and screen readers: `OUTAGE:from-to;…`. */
export function spansAttribute(spans: Span[]): string {
  return spans.map((s) => `${s.status}:${s.from}-${s.to}`).join(";");
}

export function Chart(p: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const props = useRef(p);
  props.current = p;

  useEffect(() => {
    const el = box.current!;
    const build = () => {
      plot.current?.destroy();
      // The theme's colours, read once per build (a theme change rebuilds), not on every draw.
      const colours = new Map<string, string>();
      const css = (name: string) => {
        let c = colours.get(name);
        if (c === undefined) colours.set(name, (c = themeColour(name)));
        return c;
      };
      const axis = css("--fg-muted");
      const grid = css("--grid");
      const shade = (u: uPlot) => {
        const { spans } = props.current;
        const ctx = u.ctx;
        ctx.save();
        for (const s of spans) {
          const a = u.valToPos(s.from, "x", true);
          const b = u.valToPos(s.to, "x", true);
          const left = Math.max(a, u.bbox.left);
          const right = Math.min(b, u.bbox.left + u.bbox.width);
          if (right <= left) continue;
          ctx.fillStyle = css(s.status === "OUTAGE" ? "--shade-outage" : "--shade-warning");
          ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
        }
        ctx.restore();
      };
      const overlay = (u: uPlot) => {
        const { levels = [], marker } = props.current;
        const ctx = u.ctx;
        ctx.save();
        ctx.setLineDash([6, 4]);
        ctx.lineWidth = 1.5 * devicePixelRatio;
        ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
        for (const l of levels) {
          const y = u.valToPos(l.value, "y", true);
          if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
          ctx.strokeStyle = css(l.color);
          ctx.fillStyle = css(l.color);
          ctx.beginPath();
          ctx.moveTo(u.bbox.left, y);
          ctx.lineTo(u.bbox.left + u.bbox.width, y);
          ctx.stroke();
          ctx.textAlign = "right";
          ctx.fillText(l.label, u.bbox.left + u.bbox.width - 4 * devicePixelRatio, y - 3 * devicePixelRatio);
        }
        if (marker !== undefined) {
          const a = u.valToPos(marker.from, "x", true);
          const b = u.valToPos(marker.to, "x", true);
          ctx.setLineDash([]);
          ctx.strokeStyle = css("--accent");
          ctx.lineWidth = 2 * devicePixelRatio;
          ctx.strokeRect(a, u.bbox.top + 1, Math.max(b - a, 2), u.bbox.height - 2);
        }
        ctx.restore();
      };
      // What was drawn, for tests and the chart benchmark (ui/e2e/charts.bench.ts): the number
      // of points on the box, the time as the last `flowwatch:chart-drawn` mark.
      const drawn = (u: uPlot) => {
        el.dataset.points = String(u.data[0].length);
        performance.clearMarks("flowwatch:chart-drawn");
        performance.mark("flowwatch:chart-drawn");
      };
      const { series, yValue, zone, height = 260, sync, data } = props.current;
      const opts: uPlot.Options = {
        width: Math.max(320, el.clientWidth),
        height,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), zone),
        cursor: sync ? { sync: { key: sync } } : {},
        legend: { live: true },
        scales: {
          x: { time: true },
          ...(props.current.fromZero
            ? {
                y: {
                  range: (_u: uPlot, _min: number, max: number): uPlot.Range.MinMax => [
                    0,
                    Math.max(max, ...(props.current.levels ?? []).map((l) => l.value)) * 1.08 || 1,
                  ],
                },
              }
            : {}),
        },
        axes: [
          { stroke: axis, grid: { stroke: grid }, values: (_u, splits) => splits.map((t) => axisTime(t, zone)) },
          { stroke: axis, grid: { stroke: grid }, size: 70, values: (_u, splits) => splits.map(yValue) },
        ],
        series: [
          { label: "Time" },
          ...series.map((s) => ({
            label: s.label,
            stroke: css(s.color),
            width: s.width ?? 1.5,
            dash: s.dash,
            spanGaps: false,
            points: { show: false },
            value: (_u: uPlot, v: number | null) => (v == null ? "–" : yValue(v)),
            ...(s.steps ? { paths: uPlot.paths.stepped!({ align: 1 }) } : {}),
          })),
        ],
        hooks: { drawClear: [shade], draw: [overlay, drawn] },
      };
      plot.current = new uPlot(opts, data as uPlot.AlignedData, el);
    };
    build();
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(320, el.clientWidth), height: props.current.height ?? 260 }));
    resize.observe(el);
    // A theme change redraws with the new colours.
    const theme = new MutationObserver(build);
    theme.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    return () => {
      resize.disconnect();
      theme.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [p.zone, p.series.length]);

  useEffect(() => {
    plot.current?.setData(p.data as uPlot.AlignedData);
  }, [p.data]);
  useEffect(() => {
    plot.current?.redraw(false);
  }, [p.spans, p.levels, p.marker]);

  return (
    <figure className="chart">
      <figcaption>{p.title}</figcaption>
      <div ref={box} className="chart-box" data-shaded={spansAttribute(p.spans)} role="img" aria-label={`${p.title}: ${p.spans.length} shaded spans`} />
    </figure>
  );
}
