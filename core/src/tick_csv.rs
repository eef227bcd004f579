//! The tick CSV of SPEC §6, written by `flowwatch replay`.

use crate::csv::write_field;
use crate::detection::TickEvaluation;
use crate::id::FlowId;
use crate::time::{Instant, write_utc};

/// The header line.
pub const HEADER: &str = "country,lob,kind,flow,tick_start,tick_end,actual,expected,day_average,tick_difference,day_difference,difference,status";

/// The columns after [`HEADER`]'s in a file of ticks where the adaptive detector rates some
/// flows (SPEC §10): the band and evidence of [`crate::detection::Band`], empty for the seed
/// mode's rows and for `N_A`.
pub const BAND_COLUMNS: &str = "lower,outage_below,evidence,spread";

/// The header of a file with ([`BAND_COLUMNS`]) or without the adaptive detector's columns.
pub fn header(band: bool) -> String {
    if band {
        format!("{HEADER},{BAND_COLUMNS}")
    } else {
        HEADER.to_owned()
    }
}

/// Writes the rows of one flow. Numbers are plain decimals, the shortest that read back as the
/// same `f64` (never exponent notation); `N_A` leaves the numbers after `actual` empty.
pub struct RowWriter {
    /// `country,lob,kind,flow,` quoted where needed, built once.
    prefix: String,
    /// Whether rows end with [`BAND_COLUMNS`].
    band: bool,
}

impl RowWriter {
    /// A writer for `flow`'s rows of SPEC §6's columns.
    pub fn new(flow: &FlowId) -> RowWriter {
        RowWriter::with_band(flow, false)
    }

    /// A writer for `flow`'s rows, with [`BAND_COLUMNS`] if `band`.
    pub fn with_band(flow: &FlowId, band: bool) -> RowWriter {
        let mut prefix = String::new();
        for part in [&*flow.country, &*flow.lob, flow.kind.as_str(), &*flow.name] {
            write_field(&mut prefix, part);
            prefix.push(',');
        }
        RowWriter { prefix, band }
    }

    /// Appends one line (with `\n`).
    pub fn write(&self, out: &mut String, start: Instant, end: Instant, e: &TickEvaluation) {
        out.push_str(&self.prefix);
        write_utc(start, out);
        out.push(',');
        write_utc(end, out);
        out.push(',');
        out.push_str(itoa(e.actual, &mut [0u8; 20]));
        match &e.values {
            Some(v) => {
                for x in [
                    v.expected,
                    v.day_average,
                    v.tick_difference,
                    v.day_difference,
                    v.difference,
                ] {
                    out.push(',');
                    write_f64(out, x);
                }
                out.push(',');
            }
            None => out.push_str(",,,,,,"),
        }
        out.push_str(e.status.as_str());
        if self.band {
            match e.values.and_then(|v| v.band) {
                Some(b) => {
                    for x in [b.lower, b.outage_below, b.evidence, b.spread] {
                        out.push(',');
                        write_f64(out, x);
                    }
                }
                None => out.push_str(",,,,"),
            }
        }
        out.push('\n');
    }
}

fn itoa(mut v: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).expect("ASCII digits")
}

/// `f64` as std's `Display` writes it (shortest round-trip, plain decimal), by Ryu where Ryu
/// writes the same digits without an exponent.
///
/// Where two shortest forms are equally near (possible only with 16 or more significant
/// digits), Ryu and std break the tie differently: those go through std.
pub fn write_f64(out: &mut String, v: f64) {
    let a = v.abs();
    if v.is_finite() && (a == 0.0 || (1e-5..1e16).contains(&a)) {
        let mut buf = ryu::Buffer::new();
        let s = buf.format_finite(v);
        let s = s.strip_suffix(".0").unwrap_or(s);
        if significant_digits(s) < 16 {
            out.push_str(s);
            return;
        }
    }
    use std::fmt::Write;
    write!(out, "{v}").expect("writing to a String cannot fail");
}

/// Significant digits of a plain decimal.
fn significant_digits(s: &str) -> usize {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .skip_while(|&b| b == b'0')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlowKind;
    use crate::detection::{Status, TickValues};
    use crate::time::parse_rfc3339;
    use proptest::prelude::*;

    #[test]
    fn rows() {
        let flow = FlowId::new("CZ", "G,SM", FlowKind::Input, "A").unwrap();
        let w = RowWriter::new(&flow);
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
                band: None,
            }),
        };
        w.write(&mut out, start, start + 3600, &ok);
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
        w.write(&mut out, start, start + 3600, &na);
        assert!(out.ends_with(",0,,,,,,N_A\n"), "{out}");
        assert_eq!(
            out.matches(',').count(),
            HEADER.matches(',').count() + 1,
            "one quoted comma"
        );
    }

    #[test]
    fn ties_between_shortest_forms_are_broken_as_std_breaks_them() {
        // Exactly …104.125: "…104.12" and "…104.13" both read back as it.
        let v = f64::from_bits(14_040_006_750_346_824_200);
        let mut s = String::new();
        write_f64(&mut s, v);
        assert_eq!(s, format!("{v}"));
        assert_eq!(significant_digits("-0.000123"), 3);
        assert_eq!(significant_digits("120.5"), 4);
    }

    proptest! {
        #[test]
        fn floats_are_written_as_display_writes_them(bits in any::<u64>(), scale in -30i32..30) {
            let v = f64::from_bits(bits);
            let v = if v.is_finite() { v } else { 1.5 };
            for x in [v, (bits % 1_000_000_007) as f64 * 10f64.powi(scale), -0.0, 0.0] {
                let mut s = String::new();
                write_f64(&mut s, x);
                prop_assert_eq!(s, format!("{x}"));
            }
        }

        #[test]
        fn integers(v in any::<u64>()) {
            let mut buf = [0u8; 20];
            prop_assert_eq!(itoa(v, &mut buf), v.to_string());
        }
    }
}
