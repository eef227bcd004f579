//! Instants, dates and the local → UTC rule of SPEC §2.
//!
//! An instant is an `i64` of Unix seconds (fractions are floored: tick bounds are whole seconds,
//! so `bound <= t` holds exactly when `bound <= floor(t)`). A local day is a [`NaiveDate`];
//! detection works on [`EpochDay`] numbers for cheap arithmetic.

use crate::InputError;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

/// Unix seconds.
pub type Instant = i64;

/// Days since 1970-01-01 (that day is 0).
pub type EpochDay = i32;

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// The [`EpochDay`] of a date.
pub fn epoch_day(date: NaiveDate) -> EpochDay {
    date.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
}

/// The date of an [`EpochDay`]. Panics only for days outside chrono's ±262 000 years.
pub fn date_of(day: EpochDay) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day + UNIX_EPOCH_DAYS_FROM_CE)
        .expect("epoch day within chrono's range")
}

/// Monday = 0 … Sunday = 6.
pub fn weekday(day: EpochDay) -> u8 {
    // 1970-01-01 was a Thursday (3).
    (day + 3).rem_euclid(7) as u8
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let slice = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Parses an RFC 3339 timestamp (`2017-02-01T08:15:03Z`, `…+01:00`, optional fraction, `t`/`z`
/// or a space accepted) into Unix seconds, flooring any fraction. Hand-written: the replay of
/// millions of records parses one per line.
pub fn parse_rfc3339(s: &str) -> Result<Instant, InputError> {
    let bad = |why: &'static str| InputError::Time {
        input: s.to_owned(),
        why,
    };
    let b = s.as_bytes();
    let date_err = || bad("expected RFC 3339 like 2017-02-01T08:15:03Z");
    let year = digits(b, 0, 4).ok_or_else(date_err)? as i64;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(date_err());
    }
    let month = digits(b, 5, 2).ok_or_else(date_err)?;
    let day = digits(b, 8, 2).ok_or_else(date_err)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return Err(date_err());
    }
    let hour = digits(b, 11, 2).ok_or_else(date_err)?;
    let minute = digits(b, 14, 2).ok_or_else(date_err)?;
    let second = digits(b, 17, 2).ok_or_else(date_err)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return Err(date_err());
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    // RFC 3339 allows a leap second (60); it counts as the next second.
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad("no such time of day"));
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad("empty fraction of a second"));
        }
    }
    let offset: i64 = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let oh = digits(b, i + 1, 2).ok_or_else(|| bad("invalid offset"))?;
            let om = digits(b, i + 4, 2).ok_or_else(|| bad("invalid offset"))?;
            if oh > 23 || om > 59 {
                return Err(bad("invalid offset"));
            }
            let o = (oh * 3600 + om * 60) as i64;
            if sign == b'+' { o } else { -o }
        }
        None => return Err(bad("missing offset (Z or ±HH:MM)")),
        _ => return Err(bad("invalid offset: expected Z or ±HH:MM")),
    };
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset)
}

/// Appends `t` as RFC 3339 UTC with `Z`, e.g. `2017-02-01T08:00:00Z`. Digits are written by
/// hand: replay writes millions of them.
pub fn write_utc(t: Instant, out: &mut String) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400) as u32;
    let date = date_of(days as EpochDay);
    let (y, mo, d) = (date.year(), date.month(), date.day());
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if !(0..=9999).contains(&y) {
        use std::fmt::Write;
        write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
            .expect("writing to a String cannot fail");
        return;
    }
    let y = y as u32;
    let two = |v: u32| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
    let mut b = [0u8; 20];
    b[..4].copy_from_slice(&[
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
    ]);
    b[4] = b'-';
    b[5..7].copy_from_slice(&two(mo));
    b[7] = b'-';
    b[8..10].copy_from_slice(&two(d));
    b[10] = b'T';
    b[11..13].copy_from_slice(&two(h));
    b[13] = b':';
    b[14..16].copy_from_slice(&two(mi));
    b[16] = b':';
    b[17..19].copy_from_slice(&two(s));
    b[19] = b'Z';
    out.push_str(std::str::from_utf8(&b).expect("ASCII"));
}

/// `t` as RFC 3339 UTC with `Z`.
pub fn utc_string(t: Instant) -> String {
    let mut s = String::with_capacity(20);
    write_utc(t, &mut s);
    s
}

/// The instant of a local wall-clock time in `tz`, by SPEC §2: a time that exists once maps to
/// that instant, one that exists twice (autumn fold) to the earlier one, one that does not exist
/// (spring gap) to the instant at which the gap begins.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> Instant {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.timestamp(),
        chrono::LocalResult::Ambiguous(a, b) => a.timestamp().min(b.timestamp()),
        chrono::LocalResult::None => gap_start(tz, local),
    }
}

/// Wall-clock seconds (as if UTC) of instant `t` in `tz`.
fn wall_seconds(tz: Tz, t: Instant) -> i64 {
    let utc = chrono::DateTime::from_timestamp(t, 0).expect("instant within chrono's range");
    t + tz
        .offset_from_utc_datetime(&utc.naive_utc())
        .fix()
        .local_minus_utc() as i64
}

/// For a local time inside a gap: the transition instant, i.e. the first instant whose wall
/// clock reads later than `local`. Wall-clock time is increasing around a gap, so a binary
/// search over ±26 h (more than any UTC offset) finds it.
fn gap_start(tz: Tz, local: NaiveDateTime) -> Instant {
    let target = local.and_utc().timestamp();
    let (mut lo, mut hi) = (target - 26 * 3600, target + 26 * 3600);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall_seconds(tz, mid) > target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// The local date in `tz` of instant `t`.
pub fn local_day(tz: Tz, t: Instant) -> EpochDay {
    wall_seconds(tz, t).div_euclid(86_400) as EpochDay
}

/// The minute of the local day (0–1439) in `tz` of instant `t`.
pub fn local_minute(tz: Tz, t: Instant) -> u16 {
    (wall_seconds(tz, t).rem_euclid(86_400) / 60) as u16
}

/// The instant of local midnight starting `day` in `tz` (SPEC §2 rules apply).
pub fn local_midnight(tz: Tz, day: EpochDay) -> Instant {
    local_to_utc(
        tz,
        date_of(day).and_hms_opt(0, 0, 0).expect("midnight exists"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Prague;

    fn ndt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn parses_rfc3339_forms() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2017-02-01T08:15:03Z"), Ok(1_485_936_903));
        assert_eq!(
            parse_rfc3339("2017-02-01T09:15:03+01:00"),
            Ok(1_485_936_903)
        );
        assert_eq!(
            parse_rfc3339("2017-02-01t07:15:03.999-01:00"),
            Ok(1_485_936_903)
        );
        assert_eq!(parse_rfc3339("2017-02-01 08:15:03z"), Ok(1_485_936_903));
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z"),
            parse_rfc3339("2017-01-01T00:00:00Z")
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.5Z"), Ok(-1));
    }

    #[test]
    fn rejects_malformed_times_with_reasons() {
        let cases = [
            ("2017-02-30T00:00:00Z", "no such date"),
            ("2017-13-01T00:00:00Z", "no such date"),
            ("2017-02-01T24:00:00Z", "no such time of day"),
            ("2017-02-01T08:15:03", "missing offset"),
            ("2017-02-01T08:15:03+0100", "invalid offset"),
            ("2017-02-01T08:15:03.Z", "empty fraction"),
            ("01.02.2017 08:15:03", "expected RFC 3339"),
            ("", "expected RFC 3339"),
        ];
        for (input, why) in cases {
            let err = parse_rfc3339(input).unwrap_err().to_string();
            assert!(err.contains(why), "{input}: {err}");
            assert!(
                err.contains(&format!("\"{input}\"")),
                "{err} names the input"
            );
        }
    }

    #[test]
    fn matches_chrono_on_many_instants() {
        for t in (-2_000_000_000i64..4_000_000_000).step_by(7_777_777) {
            let s = utc_string(t);
            assert_eq!(parse_rfc3339(&s), Ok(t));
            let c = chrono::DateTime::from_timestamp(t, 0).unwrap();
            assert_eq!(s, c.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
    }

    proptest::proptest! {
        #[test]
        fn utc_writing_matches_chrono(t in -62_135_596_800i64..253_402_300_799) {
            let c = chrono::DateTime::from_timestamp(t, 0).unwrap();
            proptest::prop_assert_eq!(utc_string(t), c.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
    }

    #[test]
    fn local_to_utc_follows_the_spec_rules() {
        // Plain winter time: +01:00.
        assert_eq!(
            local_to_utc(Prague, ndt("2017-02-01 09:15:03")),
            1_485_936_903
        );
        // Spring gap 2017-03-26 02:00 → 03:00: the gap maps to its start, 01:00Z.
        let gap_start = parse_rfc3339("2017-03-26T01:00:00Z").unwrap();
        assert_eq!(local_to_utc(Prague, ndt("2017-03-26 02:00:00")), gap_start);
        assert_eq!(local_to_utc(Prague, ndt("2017-03-26 02:59:59")), gap_start);
        assert_eq!(local_to_utc(Prague, ndt("2017-03-26 03:00:00")), gap_start);
        // Autumn fold 2016-10-30 03:00 → 02:00: the earlier instant (still +02:00).
        let fold = parse_rfc3339("2016-10-30T00:30:00Z").unwrap();
        assert_eq!(local_to_utc(Prague, ndt("2016-10-30 02:30:00")), fold);
        assert_eq!(
            local_to_utc(Prague, ndt("2016-10-30 03:00:00")),
            parse_rfc3339("2016-10-30T02:00:00Z").unwrap()
        );
    }

    #[test]
    fn gap_at_midnight_maps_to_the_transition() {
        // São Paulo skipped 2016-10-16 00:00–01:00; the day began at 03:00Z.
        let tz = chrono_tz::America::Sao_Paulo;
        let day = epoch_day(NaiveDate::from_ymd_opt(2016, 10, 16).unwrap());
        assert_eq!(
            local_midnight(tz, day),
            parse_rfc3339("2016-10-16T03:00:00Z").unwrap()
        );
        assert_eq!(
            local_day(tz, parse_rfc3339("2016-10-16T03:00:00Z").unwrap()),
            day
        );
        assert_eq!(
            local_day(tz, parse_rfc3339("2016-10-16T02:59:59Z").unwrap()),
            day - 1
        );
    }

    #[test]
    fn weekdays() {
        let monday = epoch_day(NaiveDate::from_ymd_opt(2017, 2, 6).unwrap());
        assert_eq!(weekday(monday), 0);
        assert_eq!(weekday(monday + 6), 6);
        assert_eq!(weekday(monday - 1), 6);
        assert_eq!(
            date_of(epoch_day(NaiveDate::from_ymd_opt(1900, 3, 1).unwrap())).year(),
            1900
        );
    }
}
