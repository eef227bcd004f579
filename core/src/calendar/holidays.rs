//! Built-in national holidays of CZ, DE, AT and NL, computed for any year (Gregorian).
//!
//! Fixed dates plus the movable feasts counted from Easter Sunday (Meeus/Jones/Butcher). Only
//! nation-wide days off are listed; regional holidays (German Länder, Austrian states) are left
//! to the user, since one country entry has one list.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::Serialize;

/// One holiday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holiday {
    /// The local date.
    pub date: NaiveDate,
    /// Its English name.
    pub name: &'static str,
}

/// Countries with a built-in holiday generator.
pub const COUNTRIES: [&str; 4] = ["AT", "CZ", "DE", "NL"];

/// Easter Sunday of `year` (anonymous Gregorian algorithm).
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("Easter is a valid date")
}

/// The built-in holidays of `country` in `year`, sorted by date; `None` for a country without a
/// generator.
pub fn national_holidays(country: &str, year: i32) -> Option<Vec<Holiday>> {
    let fixed = |m: u32, d: u32, name: &'static str| Holiday {
        date: NaiveDate::from_ymd_opt(year, m, d).expect("fixed holiday is a valid date"),
        name,
    };
    let easter = easter_sunday(year);
    let movable = |days: i64, name: &'static str| Holiday {
        date: easter + Duration::days(days),
        name,
    };
    let mut list = match country {
        "CZ" => {
            let mut v = vec![
                fixed(
                    1,
                    1,
                    "New Year's Day / Restoration Day of the Independent Czech State",
                ),
                movable(1, "Easter Monday"),
                fixed(5, 1, "Labour Day"),
                fixed(5, 8, "Liberation Day"),
                fixed(7, 5, "Saints Cyril and Methodius Day"),
                fixed(7, 6, "Jan Hus Day"),
                fixed(9, 28, "St. Wenceslas Day"),
                fixed(10, 28, "Independent Czechoslovak State Day"),
                fixed(11, 17, "Struggle for Freedom and Democracy Day"),
                fixed(12, 24, "Christmas Eve"),
                fixed(12, 25, "Christmas Day"),
                fixed(12, 26, "St. Stephen's Day"),
            ];
            if year >= 2016 {
                v.push(movable(-2, "Good Friday"));
            }
            v
        }
        "DE" => {
            let mut v = vec![
                fixed(1, 1, "New Year's Day"),
                movable(-2, "Good Friday"),
                movable(1, "Easter Monday"),
                fixed(5, 1, "Labour Day"),
                movable(39, "Ascension Day"),
                movable(50, "Whit Monday"),
                fixed(10, 3, "Day of German Unity"),
                fixed(12, 25, "Christmas Day"),
                fixed(12, 26, "Second Day of Christmas"),
            ];
            if year == 2017 {
                v.push(fixed(10, 31, "Reformation Day (500th anniversary)"));
            }
            v
        }
        "AT" => vec![
            fixed(1, 1, "New Year's Day"),
            fixed(1, 6, "Epiphany"),
            movable(1, "Easter Monday"),
            fixed(5, 1, "Labour Day"),
            movable(39, "Ascension Day"),
            movable(50, "Whit Monday"),
            movable(60, "Corpus Christi"),
            fixed(8, 15, "Assumption Day"),
            fixed(10, 26, "National Day"),
            fixed(11, 1, "All Saints' Day"),
            fixed(12, 8, "Immaculate Conception"),
            fixed(12, 25, "Christmas Day"),
            fixed(12, 26, "St. Stephen's Day"),
        ],
        "NL" => {
            // King's Day (from 2014) / Queen's Day: moved to the Saturday before when it falls
            // on a Sunday.
            let (m, d, name) = if year >= 2014 {
                (4, 27, "King's Day")
            } else {
                (4, 30, "Queen's Day")
            };
            let mut royal = fixed(m, d, name);
            if royal.date.weekday() == Weekday::Sun {
                royal.date -= Duration::days(1);
            }
            vec![
                fixed(1, 1, "New Year's Day"),
                movable(0, "Easter Sunday"),
                movable(1, "Easter Monday"),
                royal,
                fixed(5, 5, "Liberation Day"),
                movable(39, "Ascension Day"),
                movable(49, "Whit Sunday"),
                movable(50, "Whit Monday"),
                fixed(12, 25, "Christmas Day"),
                fixed(12, 26, "Second Day of Christmas"),
            ]
        }
        _ => return None,
    };
    list.sort_by_key(|h| h.date);
    Some(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn easter_dates() {
        // Known Easter Sundays.
        for (y, m, day) in [
            (2016, 3, 27),
            (2017, 4, 16),
            (2018, 4, 1),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2038, 4, 25),
            (2285, 3, 22),
        ] {
            assert_eq!(easter_sunday(y), d(y, m, day), "{y}");
        }
    }

    #[test]
    fn czech_2017() {
        let h = national_holidays("CZ", 2017).unwrap();
        let dates: Vec<_> = h.iter().map(|h| h.date).collect();
        assert_eq!(dates.len(), 13);
        assert!(dates.contains(&d(2017, 4, 14)), "Good Friday");
        assert!(dates.contains(&d(2017, 4, 17)), "Easter Monday");
        assert!(dates.contains(&d(2017, 11, 17)));
        assert!(
            dates.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        assert_eq!(
            national_holidays("CZ", 2015).unwrap().len(),
            12,
            "no Good Friday before 2016"
        );
    }

    #[test]
    fn movable_feasts_of_2017() {
        let de = national_holidays("DE", 2017).unwrap();
        assert!(
            de.iter()
                .any(|h| h.date == d(2017, 5, 25) && h.name == "Ascension Day")
        );
        assert!(
            de.iter()
                .any(|h| h.date == d(2017, 6, 5) && h.name == "Whit Monday")
        );
        assert!(de.iter().any(|h| h.date == d(2017, 10, 31)));
        assert!(
            !national_holidays("DE", 2018)
                .unwrap()
                .iter()
                .any(|h| h.date == d(2018, 10, 31))
        );
        let at = national_holidays("AT", 2017).unwrap();
        assert!(
            at.iter()
                .any(|h| h.date == d(2017, 6, 15) && h.name == "Corpus Christi")
        );
    }

    #[test]
    fn kings_day_moves_off_sunday() {
        // 27 April 2025 is a Sunday: King's Day is Saturday the 26th.
        let nl = national_holidays("NL", 2025).unwrap();
        assert!(
            nl.iter()
                .any(|h| h.date == d(2025, 4, 26) && h.name == "King's Day")
        );
        let nl = national_holidays("NL", 2013).unwrap();
        assert!(
            nl.iter()
                .any(|h| h.date == d(2013, 4, 30) && h.name == "Queen's Day")
        );
    }

    #[test]
    fn unknown_country() {
        assert!(national_holidays("XX", 2017).is_none());
    }
}
