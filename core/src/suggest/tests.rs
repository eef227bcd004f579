use super::*;
use crate::FlowKind;
use crate::time::{epoch_day, weekday};
use chrono::NaiveDate;

fn day(s: &str) -> EpochDay {
    epoch_day(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
}

/// Ten weeks from Monday 2017-01-02 of ten GSM and ten SMS flows: work days 1 000 bytes,
/// GSM's weekend 500, SMS's Friday 1 300, Saturday 700 and Sunday 400; ±4 % noise. Wednesday
/// 2017-02-01 is as low as a Sunday everywhere, Thursday 2017-02-16 at 70 %; Monday 2017-01-30
/// is a listed holiday (low too); GSM flow 3 is down all of Tuesday 2017-01-24 alone; GSM flow
/// 0 carries half again as much on Mondays.
fn country() -> Country {
    let start = day("2017-01-02");
    let mut flows = Vec::new();
    for (lob, n) in [("GSM", 10), ("SMS", 10)] {
        for i in 0..n {
            let flow = FlowId::new("CZ", lob, FlowKind::Input, &format!("F{i}")).unwrap();
            let mut totals = BTreeMap::new();
            for d in start..start + 70 {
                let w = weekday(d);
                let mut bytes = match (lob, w) {
                    ("GSM", 5 | 6) => 500.0,
                    ("SMS", 4) => 1300.0,
                    ("SMS", 5) => 700.0,
                    ("SMS", 6) => 400.0,
                    _ => 1000.0,
                };
                if lob == "GSM" && i == 0 && w == 0 {
                    bytes *= 1.5;
                }
                if d == day("2017-02-01") || d == day("2017-01-30") {
                    bytes = if lob == "GSM" { 520.0 } else { 420.0 };
                }
                if d == day("2017-02-16") {
                    bytes *= 0.7;
                }
                if lob == "GSM" && i == 3 && d == day("2017-01-24") {
                    bytes = 0.0;
                }
                let noise = 1.0 + 0.04 * (((d * 7 + i * 13) % 9) as f64 - 4.0) / 4.0;
                totals.insert(d, bytes * noise);
            }
            flows.push(FlowDays {
                flow,
                independent: vec![],
                totals,
            });
        }
    }
    Country {
        code: "CZ".into(),
        holidays: [day("2017-01-30")].into_iter().collect(),
        lazy_days: HashSet::new(),
        flows,
    }
}

#[test]
fn a_day_most_flows_miss_is_suggested_as_a_holiday_or_a_lazy_day_with_its_evidence() {
    let c = country();
    let start = day("2017-01-02");
    let found = c.missing_days(start..start + 70);
    let days: Vec<(EpochDay, DayKind)> = found.iter().map(|s| (s.day, s.kind)).collect();
    assert_eq!(
        days,
        [
            (day("2017-02-01"), DayKind::Holiday),
            (day("2017-02-16"), DayKind::LazyDay)
        ],
        "not the listed holiday, not one flow's outage: {found:?}"
    );
    let holiday = &found[0];
    assert_eq!((holiday.flows, holiday.low), (20, 20));
    assert!((0.4..0.55).contains(&holiday.ratio), "{holiday:?}");
    assert!(holiday.sunday_ratio.unwrap() <= 1.25);
    assert!(holiday.bytes < 0.6 * holiday.usual_bytes);
    // Compared with the work days around it that no list holds.
    assert!(holiday.compared.contains(&day("2017-02-02")));
    assert!(!holiday.compared.contains(&day("2017-01-30")));
    assert!(holiday.compared.iter().all(|d| weekday(*d) < 5));
    let lazy = &found[1];
    assert!((0.65..0.75).contains(&lazy.ratio), "{lazy:?}");
}

#[test]
fn a_weekday_that_differs_week_after_week_is_suggested_for_its_lob_or_its_flow() {
    let c = country();
    let start = day("2017-01-02");
    let found = c.independent_weekdays(start..start + 70);
    let got: Vec<(&str, Option<&str>, u8)> = (found.iter())
        .map(|s| {
            (
                s.lob.as_str(),
                s.flow.as_ref().map(|f| f.name.as_str()),
                s.weekday,
            )
        })
        .collect();
    assert_eq!(
        got,
        [("GSM", Some("F0"), 0), ("SMS", None, 4), ("SMS", None, 6)],
        "{found:?}"
    );
    let friday = &found[1];
    assert_eq!((friday.flows, friday.of), (10, 10));
    assert_eq!(friday.peers, [0, 1, 2, 3]);
    assert!((1.25..1.35).contains(&friday.ratio));
    assert_eq!(found[2].peers, [5]);
    assert!(found[2].ratio < 0.65);
    // Already independent: not suggested again.
    let mut configured = country();
    for f in &mut configured.flows {
        f.independent = vec![4, 6];
    }
    let again = configured.independent_weekdays(start..start + 70);
    assert!(again.iter().all(|s| s.lob != "SMS"), "{again:?}");
}
