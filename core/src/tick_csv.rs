//! The tick CSV of SPEC §6, written by `flowwatch replay`.

use std::fmt::Write;

use crate::detection::TickEvaluation;
use crate::id::FlowId;
use crate::time::{Instant, write_utc};

/// The header line.
pub const HEADER: &str = "country,lob,kind,flow,tick_start,tick_end,actual,expected,day_average,tick_difference,day_difference,difference,status";

/// Appends one line (with `\n`). Numbers are plain decimals, the shortest that read back as the
/// same `f64` (never exponent notation); `N_A` leaves the numbers after `actual` empty.
pub fn write_row(
    out: &mut String,
    flow: &FlowId,
    start: Instant,
    end: Instant,
    e: &TickEvaluation,
) {
    for part in [&*flow.country, &*flow.lob, flow.kind.as_str(), &*flow.name] {
        write_field(out, part);
        out.push(',');
    }
    write_utc(start, out);
    out.push(',');
    write_utc(end, out);
    write!(out, ",{}", e.actual).expect("writing to a String cannot fail");
    match &e.values {
        Some(v) => write!(
            out,
            ",{},{},{},{},{},",
            v.expected, v.day_average, v.tick_difference, v.day_difference, v.difference
        )
        .expect("writing to a String cannot fail"),
        None => out.push_str(",,,,,,"),
    }
    out.push_str(e.status.as_str());
    out.push('\n');
}

/// A field, quoted only if it holds a comma, quote or line break.
fn write_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlowKind;
    use crate::detection::{Status, TickValues};
    use crate::time::parse_rfc3339;

    #[test]
    fn rows() {
        let flow = FlowId::new("CZ", "G,SM", FlowKind::Input, "A").unwrap();
        let start = parse_rfc3339("2017-02-01T08:00:00Z").unwrap();
        let mut out = String::new();
        let ok = TickEvaluation {
            index: 9,
            actual: 12,
            status: Status::Warning,
            values: Some(TickValues {
                expected: 15.0,
                day_average: 1e-7,
                tick_difference: 0.8,
                day_difference: 1e21,
                difference: 0.1 + 0.2,
            }),
        };
        write_row(&mut out, &flow, start, start + 3600, &ok);
        assert_eq!(
            out,
            "CZ,\"G,SM\",input,A,2017-02-01T08:00:00Z,2017-02-01T09:00:00Z,12,15,0.0000001,0.8,1000000000000000000000,0.30000000000000004,WARNING\n"
        );
        out.clear();
        let na = TickEvaluation {
            index: 0,
            actual: 0,
            status: Status::NotAvailable,
            values: None,
        };
        write_row(&mut out, &flow, start, start + 3600, &na);
        assert!(out.ends_with(",0,,,,,,N_A\n"), "{out}");
        assert_eq!(
            out.matches(',').count(),
            HEADER.matches(',').count() + 1,
            "one quoted comma"
        );
    }
}
