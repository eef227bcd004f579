use super::*;
use crate::time::parse_rfc3339;
use chrono_tz::Europe::Prague;

fn flow(kind: FlowKind, name: &str) -> FlowId {
    FlowId::new("CZ", "SMS", kind, name).unwrap()
}

fn scope(lob: Option<&str>, kind: Option<FlowKind>, flow: Option<&str>) -> FlowScope {
    FlowScope {
        country: "CZ".into(),
        lob: lob.map(Into::into),
        kind,
        flow: flow.map(Into::into),
    }
}

fn at(s: &str) -> Instant {
    parse_rfc3339(s).unwrap()
}

fn silence(scope: FlowScope, from: &str, to: &str, weekly: Option<Weekly>) -> Silence {
    Silence {
        id: "s1".into(),
        scope,
        from: at(from),
        to: at(to),
        weekly,
        comment: "maintenance".into(),
        created_by: "root".into(),
        created_at: at(from),
        ended_at: None,
    }
}

#[test]
fn an_inputs_scope_takes_in_its_forwards_and_nothing_else() {
    let input = scope(Some("SMS"), Some(FlowKind::Input), Some("MSSBRN1A"));
    assert!(input.covers(&flow(FlowKind::Input, "MSSBRN1A")));
    assert!(input.covers(&flow(FlowKind::Forward, "MSSBRN1A:CZFOX")));
    assert!(!input.covers(&flow(FlowKind::Input, "MSSBRN1B")));
    assert!(!input.covers(&flow(FlowKind::Forward, "MSSBRN1B:CZFOX")));
    let other_lob = FlowId::new("CZ", "GSM", FlowKind::Input, "MSSBRN1A").unwrap();
    assert!(!input.covers(&other_lob));

    let forward = scope(Some("SMS"), Some(FlowKind::Forward), Some("MSSBRN1A:CZFOX"));
    assert!(forward.covers(&flow(FlowKind::Forward, "MSSBRN1A:CZFOX")));
    assert!(!forward.covers(&flow(FlowKind::Input, "MSSBRN1A")));
    assert!(!forward.covers(&flow(FlowKind::Forward, "MSSBRN1A:OTHER")));

    let lob = scope(Some("SMS"), None, None);
    assert!(lob.covers(&flow(FlowKind::Forward, "X:Y")));
    assert!(!lob.covers(&other_lob));
    let country = scope(None, None, None);
    assert!(country.covers(&other_lob));
    let sk = FlowId::new("SK", "SMS", FlowKind::Input, "MSSBRN1A").unwrap();
    assert!(!country.covers(&sk));
}

#[test]
fn a_scope_names_something_or_says_which_part_does_not() {
    let field = |s: FlowScope| s.validate().unwrap_err().field;
    assert_eq!(field(scope(None, Some(FlowKind::Input), None)), "scope.lob");
    assert_eq!(field(scope(Some("SMS"), None, Some("A"))), "scope.kind");
    assert_eq!(field(scope(Some(" "), None, None)), "scope.lob");
    let mut blank = scope(None, None, None);
    blank.country = String::new();
    assert_eq!(field(blank), "scope.country");
    assert!(
        scope(Some("SMS"), Some(FlowKind::Input), Some("A"))
            .validate()
            .is_ok()
    );
}

#[test]
fn a_one_off_silence_covers_the_ticks_that_start_inside_it() {
    let f = flow(FlowKind::Input, "A");
    let mut s = silence(
        scope(None, None, None),
        "2016-11-01T10:00:00Z",
        "2016-11-01T12:00:00Z",
        None,
    );
    assert!(
        !s.covers(&f, at("2016-11-01T09:00:00Z"), Prague),
        "starts before"
    );
    assert!(s.covers(&f, at("2016-11-01T10:00:00Z"), Prague));
    assert!(s.covers(&f, at("2016-11-01T11:59:59Z"), Prague));
    assert!(
        !s.covers(&f, at("2016-11-01T12:00:00Z"), Prague),
        "to is open"
    );
    // Ended early: ticks that started before the end stay covered.
    s.ended_at = Some(at("2016-11-01T10:30:00Z"));
    assert!(s.covers(&f, at("2016-11-01T10:00:00Z"), Prague));
    assert!(!s.covers(&f, at("2016-11-01T11:00:00Z"), Prague));
    assert_eq!(s.until(), at("2016-11-01T10:30:00Z"));
    // Ending it after its end changes nothing.
    s.ended_at = Some(at("2016-11-02T00:00:00Z"));
    assert_eq!(s.until(), s.to);
}

#[test]
fn a_weekly_window_follows_the_countrys_wall_clock_across_midnight_and_dst() {
    // Saturdays 22:00 – 02:00 (Sunday) Prague time, all of November and into April.
    let weekly = Weekly::parse(&[5], "22:00", "02:00").unwrap();
    let s = silence(
        scope(None, None, None),
        "2016-10-01T00:00:00Z",
        "2017-06-01T00:00:00Z",
        Some(weekly),
    );
    let f = flow(FlowKind::Input, "A");
    let covers = |t: &str| s.covers(&f, at(t), Prague);
    // 2016-11-05 is a Saturday; Prague is UTC+1 in winter.
    assert!(!covers("2016-11-05T20:59:00Z"), "21:59 local");
    assert!(covers("2016-11-05T21:00:00Z"), "22:00 local");
    assert!(covers("2016-11-06T00:30:00Z"), "01:30 Sunday");
    assert!(!covers("2016-11-06T01:00:00Z"), "02:00 Sunday");
    assert!(!covers("2016-11-06T21:00:00Z"), "Sunday 22:00");
    assert!(!covers("2016-11-04T21:00:00Z"), "Friday 22:00");
    // 2017-04-01 is a Saturday in summer time (UTC+2): 22:00 local is 20:00 UTC.
    assert!(covers("2017-04-01T20:00:00Z"));
    assert!(!covers("2017-04-01T19:59:00Z"));
}

#[test]
fn weekly_windows_refuse_what_is_not_a_window_naming_the_field() {
    let field =
        |days: &[i64], start: &str, end: &str| Weekly::parse(days, start, end).unwrap_err().field;
    assert_eq!(field(&[], "01:00", "02:00"), "weekly.days");
    assert_eq!(field(&[7], "01:00", "02:00"), "weekly.days");
    assert_eq!(field(&[-1], "01:00", "02:00"), "weekly.days");
    assert_eq!(field(&[1], "1:00", "02:00"), "weekly.start");
    assert_eq!(field(&[1], "24:00", "02:00"), "weekly.start");
    assert_eq!(field(&[1], "01:60", "02:00"), "weekly.start");
    assert_eq!(field(&[1], "01:00", "24:01"), "weekly.end");
    assert_eq!(field(&[1], "01:00", "01:00"), "weekly.end");
    let w = Weekly::parse(&[6, 0, 6], "23:00", "24:00").unwrap();
    assert_eq!(
        (w.days.as_slice(), w.end_text().as_str()),
        (&[0, 6][..], "00:00")
    );
    // Stored and read back as the API writes it.
    let json = serde_json::to_value(&w).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"days": [0, 6], "start": "23:00", "end": "00:00"})
    );
    assert_eq!(serde_json::from_value::<Weekly>(json).unwrap(), w);
}

#[test]
fn silences_in_force_keep_those_that_can_still_decide_a_tick() {
    let mk = |id: &str, to: &str| {
        let mut s = silence(scope(None, None, None), "2016-11-01T00:00:00Z", to, None);
        s.id = id.into();
        s
    };
    let now = at("2016-11-10T00:00:00Z");
    let kept = Silences::in_force(
        vec![
            mk("old", "2016-11-02T00:00:00Z"),
            mk("recent", "2016-11-09T12:00:00Z"),
            mk("open", "2016-12-01T00:00:00Z"),
        ],
        now,
        86_400,
    );
    let ids: Vec<&str> = kept.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["open", "recent"]);
    let f = flow(FlowKind::Input, "A");
    assert!(kept.covers(&f, at("2016-11-09T11:00:00Z"), Prague));
    assert!(!kept.covers(&f, at("2016-12-01T00:00:00Z"), Prague));
}
