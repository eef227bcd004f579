//! A country's calendar: its IANA zone, national holidays and lazy days (all local dates).
//!
//! Detection reads only the lists in the configuration document; [`holidays`] generates the
//! built-in national holidays of CZ, DE, AT and NL for any year so a user can fill the list.

pub mod holidays;

use std::collections::HashSet;

use chrono_tz::Tz;

use crate::time::{EpochDay, weekday};

/// The zone of a country code that flowwatch knows without configuration.
pub fn default_timezone(country: &str) -> Option<Tz> {
    match country {
        "CZ" => Some(chrono_tz::Europe::Prague),
        "DE" => Some(chrono_tz::Europe::Berlin),
        "AT" => Some(chrono_tz::Europe::Vienna),
        "NL" => Some(chrono_tz::Europe::Amsterdam),
        _ => None,
    }
}

/// What detection needs to know about one local day of a country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayKind {
    /// `e(D)`: the weekday (Monday = 0), or 6 on a holiday.
    pub weekday_class: u8,
    /// A lazy day of the country.
    pub lazy: bool,
    /// A holiday of the country.
    pub holiday: bool,
}

impl DayKind {
    /// Whether the lazy-day decrease applies: a lazy day that is not a holiday.
    pub fn lazy_factor_applies(self) -> bool {
        self.lazy && !self.holiday
    }
}

/// A country's zone, holidays and lazy days.
#[derive(Debug, Clone)]
pub struct CountryCalendar {
    tz: Tz,
    holidays: HashSet<EpochDay>,
    lazy_days: HashSet<EpochDay>,
}

impl CountryCalendar {
    /// A calendar from a zone and lists of local days.
    pub fn new(
        tz: Tz,
        holidays: impl IntoIterator<Item = EpochDay>,
        lazy_days: impl IntoIterator<Item = EpochDay>,
    ) -> CountryCalendar {
        CountryCalendar {
            tz,
            holidays: holidays.into_iter().collect(),
            lazy_days: lazy_days.into_iter().collect(),
        }
    }

    /// The country's zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Its holidays (local days, in no order).
    pub fn holidays(&self) -> impl Iterator<Item = EpochDay> + '_ {
        self.holidays.iter().copied()
    }

    /// Its lazy days (local days, in no order).
    pub fn lazy_days(&self) -> impl Iterator<Item = EpochDay> + '_ {
        self.lazy_days.iter().copied()
    }

    /// The kind of local `day`.
    pub fn day_kind(&self, day: EpochDay) -> DayKind {
        let holiday = self.holidays.contains(&day);
        DayKind {
            weekday_class: if holiday { 6 } else { weekday(day) },
            lazy: self.lazy_days.contains(&day),
            holiday,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::epoch_day;
    use chrono::NaiveDate;

    fn day(y: i32, m: u32, d: u32) -> EpochDay {
        epoch_day(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    #[test]
    fn holiday_is_a_sunday_and_lazy_factor_needs_a_work_day() {
        let wednesday = day(2016, 9, 28);
        let friday = day(2016, 11, 18);
        let cal = CountryCalendar::new(chrono_tz::Europe::Prague, [wednesday], [wednesday, friday]);
        let k = cal.day_kind(wednesday);
        assert_eq!(k.weekday_class, 6);
        assert!(k.lazy && !k.lazy_factor_applies());
        let f = cal.day_kind(friday);
        assert_eq!(f.weekday_class, 4);
        assert!(f.lazy_factor_applies());
        assert_eq!(cal.day_kind(friday + 1).weekday_class, 5);
    }

    #[test]
    fn known_zones() {
        assert_eq!(default_timezone("NL"), Some(chrono_tz::Europe::Amsterdam));
        assert_eq!(default_timezone("XX"), None);
    }
}
