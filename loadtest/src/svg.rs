//! Small self-contained SVG charts for reports: a bar chart (a histogram of detection delays)
//! and a line chart (a rate over a run: x in seconds, y in records per second).
//!
//! Written by hand so the reports need no plotting crate: one `<svg>` document with a title,
//! axis labels, a few round-numbered grid lines, only generic font families (no external
//! fonts, images or scripts), and every text escaped for XML.

use std::fmt::Write;

/// Width of a chart, in pixels.
const WIDTH: f64 = 640.0;
/// Height of a chart, in pixels.
const HEIGHT: f64 = 400.0;
/// Margins around the plotting area: left, right, top, bottom.
const MARGIN: (f64, f64, f64, f64) = (72.0, 24.0, 48.0, 64.0);
/// Colour of bars and lines.
const INK: &str = "#3b6ea5";

/// The texts around a chart.
#[derive(Debug, Clone, Copy)]
pub struct Chart<'a> {
    /// Title, above the chart.
    pub title: &'a str,
    /// Label of the x axis.
    pub x_label: &'a str,
    /// Label of the y axis.
    pub y_label: &'a str,
}

impl Chart<'_> {
    /// A bar chart: one bar per `(category, value)`, in order, with its value above it.
    /// Negative and non-finite values are drawn as 0 (their number is still written).
    pub fn bars(&self, bars: &[(String, f64)]) -> String {
        let (left, top, width, height) = area();
        let clean = |v: f64| if v.is_finite() { v.max(0.0) } else { 0.0 };
        let max = bars.iter().map(|b| clean(b.1)).fold(0.0, f64::max);
        let whole = bars.iter().all(|b| b.1.fract() == 0.0);
        // Headroom above the highest bar for its number.
        let ticks = axis_ticks(0.0, (max * 1.08).max(1.0), whole);
        let top_value = ticks.last().copied().unwrap_or(1.0);
        let y = |v: f64| top + height - v / top_value * height;
        let mut out = self.frame();
        y_axis(&mut out, &ticks, y);
        let slot = width / bars.len().max(1) as f64;
        for (i, (category, value)) in bars.iter().enumerate() {
            let x = left + slot * i as f64;
            let bar_top = y(clean(*value));
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{bar_top:.1}" width="{:.1}" height="{:.1}" fill="{INK}"/>"#,
                x + slot * 0.15,
                slot * 0.7,
                top + height - bar_top
            );
            out.push('\n');
            text(
                &mut out,
                x + slot / 2.0,
                bar_top - 5.0,
                "middle",
                12,
                &number(*value),
            );
            text(
                &mut out,
                x + slot / 2.0,
                top + height + 18.0,
                "middle",
                12,
                category,
            );
        }
        out.push_str("</svg>\n");
        out
    }

    /// A line chart of `points` `(x, y)` in the order given, both axes scaled to the data (y
    /// from 0 unless it goes below). Points with a non-finite coordinate are left out.
    pub fn line(&self, points: &[(f64, f64)]) -> String {
        let (left, top, width, height) = area();
        let points: Vec<(f64, f64)> = points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        let mut out = self.frame();
        if points.is_empty() {
            text(
                &mut out,
                left + width / 2.0,
                top + height / 2.0,
                "middle",
                14,
                "no data",
            );
            out.push_str("</svg>\n");
            return out;
        }
        let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut y0, mut y1) = (0.0f64, f64::NEG_INFINITY);
        for &(x, y) in &points {
            (x0, x1) = (x0.min(x), x1.max(x));
            (y0, y1) = (y0.min(y), y1.max(y));
        }
        if x1 <= x0 {
            (x0, x1) = (x0 - 1.0, x1 + 1.0);
        }
        if y1 <= y0 {
            y1 = y0 + 1.0;
        }
        let xs = axis_ticks(x0, x1, false);
        let ys = axis_ticks(y0, y1, false);
        let (x_lo, x_hi) = (x0.min(xs[0]), x1.max(xs[xs.len() - 1]));
        let (y_lo, y_hi) = (y0.min(ys[0]), y1.max(ys[ys.len() - 1]));
        let px = |v: f64| left + (v - x_lo) / (x_hi - x_lo) * width;
        let py = |v: f64| top + height - (v - y_lo) / (y_hi - y_lo) * height;
        y_axis(&mut out, &ys, py);
        for &t in &xs {
            let x = px(t);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/>"##,
                top + height,
                top + height + 5.0
            );
            text(&mut out, x, top + height + 18.0, "middle", 12, &number(t));
        }
        out.push_str(r#"<polyline fill="none" stroke-width="2" stroke=""#);
        out.push_str(INK);
        out.push_str(r#"" points=""#);
        for (i, &(x, y)) in points.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{:.1},{:.1}", px(x), py(y));
        }
        out.push_str("\"/>\n</svg>\n");
        out
    }

    /// The document's head: the `<svg>` element, a white background, the title and the axis
    /// labels (left open for the chart's own elements).
    fn frame(&self) -> String {
        let (left, top, width, height) = area();
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">"#
        );
        let _ = writeln!(out, "<title>{}</title>", escape(self.title));
        let _ = writeln!(
            out,
            r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
        );
        text(&mut out, WIDTH / 2.0, 28.0, "middle", 16, self.title);
        text(
            &mut out,
            left + width / 2.0,
            HEIGHT - 16.0,
            "middle",
            13,
            self.x_label,
        );
        let (x, y) = (20.0, top + height / 2.0);
        let _ = writeln!(
            out,
            r#"<text x="{x}" y="{y}" text-anchor="middle" font-size="13" transform="rotate(-90 {x} {y})">{}</text>"#,
            escape(self.y_label)
        );
        out
    }
}

/// The plotting area: left, top, width, height.
fn area() -> (f64, f64, f64, f64) {
    let (left, right, top, bottom) = MARGIN;
    (left, top, WIDTH - left - right, HEIGHT - top - bottom)
}

/// Horizontal grid lines with their values, and the two axes.
fn y_axis(out: &mut String, ticks: &[f64], y: impl Fn(f64) -> f64) {
    let (left, top, width, height) = area();
    for &t in ticks {
        let at = y(t);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="#ddd"/>"##,
            left + width
        );
        text(out, left - 6.0, at + 4.0, "end", 12, &number(t));
    }
    let (right, bottom) = (left + width, top + height);
    let _ = writeln!(
        out,
        r##"<path d="M{left} {top} V{bottom} H{right}" fill="none" stroke="#333"/>"##
    );
}

/// One `<text>` element.
fn text(out: &mut String, x: f64, y: f64, anchor: &str, size: u32, s: &str) {
    let _ = writeln!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}">{}</text>"#,
        escape(s)
    );
}

/// `s` with the five XML special characters escaped, fit for text and attribute values.
/// Control characters XML does not allow are dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A number as a chart writes it: whole numbers plainly, large ones with k/M, others with up
/// to three decimals.
fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        trim(format!("{v:.3}"))
    }
}

/// Round-numbered ticks (steps of 1, 2 or 5 times a power of ten, about five of them) from
/// at or below `lo` to at or above `hi`; whole steps only if `whole`.
fn axis_ticks(lo: f64, hi: f64, whole: bool) -> Vec<f64> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    if whole {
        step = step.max(1.0).round();
    }
    let first = (lo / step).floor();
    let last = (hi / step).ceil();
    // At most a dozen: `step` is at least a fifth of the span.
    (0..=((last - first) as usize).min(12))
        .map(|i| (first + i as f64) * step)
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks that `svg` is well-formed enough: every tag closed in order, attributes quoted,
    /// every `&` an entity, and one root `<svg>` element. Returns the error, if any.
    pub(crate) fn check_xml(svg: &str) -> Result<(), String> {
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = svg.trim_start();
        if let Some(after) = rest.strip_prefix("<?xml") {
            let end = after.find("?>").ok_or("unterminated XML declaration")?;
            rest = &after[end + 2..];
        }
        while !rest.is_empty() {
            let Some(open) = rest.find('<') else {
                check_text(rest)?;
                break;
            };
            check_text(&rest[..open])?;
            if stack.is_empty() && !rest[..open].trim().is_empty() {
                return Err(format!("text outside the root: {:?}", &rest[..open]));
            }
            let close = rest[open..]
                .find('>')
                .ok_or("unterminated tag")?
                .checked_add(open)
                .ok_or("overflow")?;
            let tag = &rest[open + 1..close];
            rest = &rest[close + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
                continue;
            }
            let self_closing = tag.ends_with('/');
            let body = tag.trim_end_matches('/');
            let name = body.split_whitespace().next().ok_or("empty tag")?;
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(format!("bad tag name {name:?}"));
            }
            let attrs = &body[name.len()..];
            if !attrs.matches('"').count().is_multiple_of(2) || attrs.contains('<') {
                return Err(format!("bad attributes in <{tag}>"));
            }
            check_text(attrs)?;
            if stack.is_empty() {
                roots += 1;
            }
            if !self_closing {
                stack.push(name);
            }
        }
        match (stack.is_empty(), roots) {
            (true, 1) => Ok(()),
            (false, _) => Err(format!("unclosed {stack:?}")),
            (true, n) => Err(format!("{n} root elements")),
        }
    }

    /// Every `&` starts one of the five entities.
    fn check_text(s: &str) -> Result<(), String> {
        for (i, _) in s.match_indices('&') {
            let entity = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"];
            if !entity.iter().any(|e| s[i..].starts_with(e)) {
                return Err(format!("a bare & in {s:?}"));
            }
        }
        Ok(())
    }

    #[test]
    fn the_checker_catches_what_it_should() {
        assert!(check_xml("<svg><a></a><b/></svg>").is_ok());
        assert!(check_xml("<svg><a></svg>").is_err());
        assert!(check_xml("<svg>a & b</svg>").is_err());
        assert!(check_xml("<svg></svg><svg></svg>").is_err());
        assert!(check_xml(r#"<svg x="1></svg>"#).is_err());
    }

    #[test]
    fn bar_chart_is_well_formed_and_shows_each_count() {
        let chart = Chart {
            title: "Delays <OUTAGE> & \"co\"",
            x_label: "delay ≤",
            y_label: "events",
        };
        let bars = vec![
            ("≤15 min".to_owned(), 7.0),
            ("≤1 h".to_owned(), 0.0),
            (">1 d".to_owned(), 13.0),
        ];
        let svg = chart.bars(&bars);
        check_xml(&svg).unwrap();
        assert!(svg.contains(">7</text>"), "{svg}");
        assert!(svg.contains(">0</text>"), "{svg}");
        assert!(svg.contains(">13</text>"), "{svg}");
        assert!(svg.contains("&gt;1 d"), "{svg}");
        assert!(
            svg.contains("Delays &lt;OUTAGE&gt; &amp; &quot;co&quot;"),
            "{svg}"
        );
        assert_eq!(svg.matches(&format!("fill=\"{INK}\"")).count(), 3);
        // Self-contained: nothing fetched from elsewhere.
        assert!(!svg.contains("href") && !svg.contains("<script") && !svg.contains("@import"));
        // Integer counts give integer grid lines, topped at or above the highest bar.
        assert!(
            svg.contains(">14</text>") || svg.contains(">15</text>"),
            "{svg}"
        );
        assert!(!svg.contains(">2.5</text>"), "{svg}");
    }

    #[test]
    fn empty_bar_chart_is_well_formed() {
        let chart = Chart {
            title: "t",
            x_label: "x",
            y_label: "y",
        };
        check_xml(&chart.bars(&[])).unwrap();
    }

    #[test]
    fn line_chart_is_well_formed_and_scaled() {
        let chart = Chart {
            title: "Ingest rate",
            x_label: "seconds",
            y_label: "records/s",
        };
        let points: Vec<(f64, f64)> = (0..60)
            .map(|i| (i as f64, 120_000.0 + 1000.0 * i as f64))
            .chain([(61.0, f64::NAN)])
            .collect();
        let svg = chart.line(&points);
        check_xml(&svg).unwrap();
        assert_eq!(svg.matches("<polyline").count(), 1);
        let coordinates = svg
            .split("points=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap();
        assert_eq!(
            coordinates.split(' ').count(),
            60,
            "the NaN point is left out"
        );
        assert!(!svg.contains("NaN"));
        assert!(
            svg.contains(">200k</text>") || svg.contains(">180k</text>"),
            "{svg}"
        );
        check_xml(&chart.line(&[])).unwrap();
        check_xml(&chart.line(&[(5.0, 5.0)])).unwrap();
    }

    #[test]
    fn ticks_and_numbers_are_round() {
        assert_eq!(axis_ticks(0.0, 13.0, true), vec![0.0, 5.0, 10.0, 15.0]);
        assert_eq!(axis_ticks(0.0, 3.0, true), vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(axis_ticks(0.0, 1.0, false).len(), 6);
        assert_eq!(number(12.0), "12");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(150_000.0), "150k");
        assert_eq!(number(2_500_000.0), "2.5M");
        assert_eq!(escape("a<b>&'\"\u{7}"), "a&lt;b&gt;&amp;&apos;&quot;");
    }
}
