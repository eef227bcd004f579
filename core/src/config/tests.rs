use super::*;
use proptest::prelude::*;

const SPEC_EXAMPLE: &str = r#"{
  "defaults": { "granularity": "1h", "softAlarmLevel": 0.8, "hardAlarmLevel": 0.5 },
  "countries": {
    "CZ": {
      "timezone": "Europe/Prague",
      "holidays": ["2016-10-28", "2016-11-17"],
      "lazyDays": ["2016-11-16", "2016-11-18"],
      "lobs": {
        "SMS": {
          "config": { "granularity": "30m" },
          "inputs":   { "MSSBRN1A": { "config": { "independentDays": [4, 6] } } },
          "forwards": { "MSSBRN1A:CZFOX-SMS": { "config": {} } }
        }
      }
    }
  }
}"#;

fn flow(country: &str, lob: &str, kind: FlowKind, name: &str) -> FlowId {
    FlowId::new(country, lob, kind, name).unwrap()
}

fn errors_of(json: &str) -> Vec<String> {
    Config::from_json(json)
        .unwrap_err()
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn spec_example_inherits_field_by_field() {
    let cfg = Config::from_json(SPEC_EXAMPLE).unwrap();
    let input = cfg.flow_config(&flow("CZ", "SMS", FlowKind::Input, "MSSBRN1A"));
    assert_eq!(input.0.granularity.to_string(), "30m");
    assert_eq!(input.0.independent_days, vec![4, 6]);
    assert_eq!(input.0.soft_alarm_level, 0.8);
    assert_eq!(input.0.median_days, 5);
    assert_eq!(input.1.granularity, Layer::Lob);
    assert_eq!(input.1.independent_days, Layer::Own);
    assert_eq!(input.1.soft_alarm_level, Layer::Defaults);
    assert_eq!(input.1.median_days, Layer::BuiltIn);

    // The forward inherits its input's independent days.
    let fwd = cfg.flow_config(&flow("CZ", "SMS", FlowKind::Forward, "MSSBRN1A:CZFOX-SMS"));
    assert_eq!(fwd.0.independent_days, vec![4, 6]);
    assert_eq!(fwd.1.independent_days, Layer::Input);
}

#[test]
fn discovered_flows_inherit() {
    let cfg = Config::from_json(SPEC_EXAMPLE).unwrap();
    // An unknown input of a known LoB takes the LoB's settings.
    let (c, s) = cfg.flow_config(&flow("CZ", "SMS", FlowKind::Input, "NEW"));
    assert_eq!(c.granularity.to_string(), "30m");
    assert_eq!(s.granularity, Layer::Lob);
    // An unknown forward of a known input takes the input's settings.
    let (c, s) = cfg.flow_config(&flow("CZ", "SMS", FlowKind::Forward, "MSSBRN1A:NEWTARGET"));
    assert_eq!(c.independent_days, vec![4, 6]);
    assert_eq!(s.independent_days, Layer::Input);
    // A flow of an unknown country takes the defaults.
    let (c, _) = cfg.flow_config(&flow("DE", "GSM", FlowKind::Input, "X"));
    assert_eq!(c.granularity, Granularity::HOUR);
    assert!(cfg.calendar("DE").is_some(), "built-in zone for DE");
    assert!(cfg.calendar("PL").is_none());
}

#[test]
fn disabled_lob_disables_every_flow() {
    let cfg = Config::from_json(
        r#"{"countries":{"CZ":{"lobs":{"GSM":{"config":{"enabled":false},
            "inputs":{"A":{"config":{"enabled":true}}}}}}}}"#,
    )
    .unwrap();
    let (c, s) = cfg.flow_config(&flow("CZ", "GSM", FlowKind::Input, "A"));
    assert!(!c.enabled);
    assert_eq!(s.enabled, Layer::Lob);
    assert!(
        !cfg.flow_config(&flow("CZ", "GSM", FlowKind::Forward, "A:B"))
            .0
            .enabled
    );
    // A disabled flow in an enabled LoB is disabled; its siblings are not.
    let cfg = Config::from_json(
        r#"{"countries":{"CZ":{"lobs":{"GSM":{"inputs":{"A":{"config":{"enabled":false}}}}}}}}"#,
    )
    .unwrap();
    assert!(
        !cfg.flow_config(&flow("CZ", "GSM", FlowKind::Input, "A"))
            .0
            .enabled
    );
    assert!(
        cfg.flow_config(&flow("CZ", "GSM", FlowKind::Input, "B"))
            .0
            .enabled
    );
}

#[test]
fn configured_flows_of_a_country_or_a_lob() {
    let cfg = Config::from_json(
        r#"{"countries": {
            "CZ": {"timezone": "Europe/Prague", "lobs": {
                "GSM": {"inputs": {"B": {}}, "forwards": {"B:X": {}}},
                "GSMX": {"inputs": {"A": {}}}}},
            "CZE": {"timezone": "Europe/Prague", "lobs": {"GSM": {"inputs": {"C": {}}}}}}}"#,
    )
    .unwrap();
    let all = cfg.configured_flows();
    assert_eq!(all.len(), 4);
    assert!(all.is_sorted());
    let of = |country: &str, lob: Option<&str>| -> Vec<FlowId> {
        all.iter()
            .filter(|f| f.country == country && lob.is_none_or(|l| f.lob == l))
            .cloned()
            .collect()
    };
    for (country, lob) in [
        ("CZ", None),
        ("CZ", Some("GSM")),
        ("CZ", Some("GSMX")),
        ("CZE", None),
        ("CZ", Some("SMS")),
        ("XX", None),
    ] {
        assert_eq!(
            cfg.configured_flows_in(country, lob),
            of(country, lob),
            "{country} {lob:?}"
        );
    }
    assert_eq!(cfg.configured_flows_in("CZ", Some("GSM")).len(), 2);
}

#[test]
fn export_round_trips() {
    let cfg = Config::from_json(SPEC_EXAMPLE).unwrap();
    let again = Config::from_json(&cfg.to_json()).unwrap();
    assert_eq!(cfg.document(), again.document());
    assert_eq!(cfg.configured_flows().len(), 2);
    // The empty config object of the forward survives, and unset fields stay unset.
    assert!(cfg.to_json().contains("\"MSSBRN1A:CZFOX-SMS\""));
    assert!(!cfg.to_json().contains("medianDays"));
}

#[test]
fn each_validation_names_its_path() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"countries":{"CZ":{"lobs":{"SMS":{"config":{"granularity":"7m"}}}}}}"#,
            "invalid granularity \"7m\" at countries.CZ.lobs.SMS.config.granularity: must divide one day",
        ),
        (
            r#"{"defaults":{"granularty":"1h"}}"#,
            "unknown field `granularty`, expected one of",
        ),
        (
            r#"{"countries":{"CZ":{"lobs":{"SMS":{"inputs":{"A":{"config":{"foo":1}}}}}}}}"#,
            "at countries.CZ.lobs.SMS.inputs.A.config.foo",
        ),
        (
            r#"{"defaults":{"softAlarmLevel":0.4}}"#,
            "invalid softAlarmLevel 0.4 at defaults.softAlarmLevel: levels must satisfy 0 < hardAlarmLevel (0.5) <= softAlarmLevel (0.4)",
        ),
        (
            r#"{"countries":{"CZ":{"lobs":{"G":{"config":{"hardAlarmLevel":0.9}}}}}}"#,
            "invalid hardAlarmLevel 0.9 at countries.CZ.lobs.G.config.hardAlarmLevel: levels must satisfy",
        ),
        (
            r#"{"defaults":{"hardAlarmLevel":0}}"#,
            "invalid hardAlarmLevel 0 at defaults.hardAlarmLevel: must be a number greater than 0",
        ),
        (
            r#"{"defaults":{"softAlarmLevel":-1}}"#,
            "invalid softAlarmLevel -1 at defaults.softAlarmLevel: must be a number greater than 0",
        ),
        (
            r#"{"countries":{"CZ":{"timezone":"Europe/Prag"}}}"#,
            "unknown time zone \"Europe/Prag\" at countries.CZ.timezone: expected an IANA name",
        ),
        (
            r#"{"countries":{"PL":{}}}"#,
            "missing timezone at countries.PL.timezone: country \"PL\" has no built-in zone",
        ),
        (
            r#"{"countries":{"CZ":{"holidays":["2016-10-28","2016-02-30"]}}}"#,
            "invalid date \"2016-02-30\" at countries.CZ.holidays[1]: expected an existing date as YYYY-MM-DD",
        ),
        (
            r#"{"countries":{"CZ":{"lazyDays":["2016-1-5"]}}}"#,
            "invalid date \"2016-1-5\" at countries.CZ.lazyDays[0]",
        ),
        (
            r#"{"countries":{"CZ":{"lobs":{"S":{"forwards":{"NOCOLON":{}}}}}}}"#,
            "invalid forward name \"NOCOLON\" at countries.CZ.lobs.S.forwards.NOCOLON: expected INPUT:TARGET",
        ),
        (
            r#"{"defaults":{"independentDays":[1,7]}}"#,
            "invalid weekday 7 at defaults.independentDays[1]: expected 0 (Monday)",
        ),
        (
            r#"{"defaults":{"medianDays":0}}"#,
            "invalid medianDays 0 at defaults.medianDays: must be at least 1",
        ),
        (
            r#"{"defaults":{"minHistoryDays":6}}"#,
            "invalid minHistoryDays 6 at defaults.minHistoryDays: minHistoryDays (6) must not exceed medianDays (5)",
        ),
        (
            r#"{"defaults":{"difference":"week"}}"#,
            "unknown variant `week`, expected `day` or `tick` at defaults.difference",
        ),
        (
            r#"{"defaults":{"medianDays":-2}}"#,
            "invalid value at defaults.medianDays: integer `-2`, expected u32",
        ),
        (
            r#"{"defaults":{"granularity":true}}"#,
            "invalid granularity at defaults.granularity: expected a string",
        ),
        (
            r#"{"defaults":"#,
            "invalid JSON at defaults: EOF while parsing a value at line 1 column 12",
        ),
        (r#"[1]"#, "invalid document: expected a JSON object"),
        ("", "invalid document: expected a JSON object"),
    ];
    for (json, expected) in cases {
        let errors = errors_of(json);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{json}\n  expected: {expected}\n  got: {errors:?}"
        );
    }
}

#[test]
fn a_candidate_changes_one_flow_and_is_validated() {
    let c = Config::from_json(SPEC_EXAMPLE).unwrap();
    let sms = flow("CZ", "SMS", FlowKind::Forward, "MSSBRN1A:CZFOX-SMS");
    let new = flow("DE", "GSM", FlowKind::Input, "NEW");
    let quarter = c
        .with_flow_settings(&sms, |s| {
            s.granularity = Some(Granularity::parse("15m").unwrap())
        })
        .unwrap();
    assert_eq!(quarter.flow_config(&sms).0.granularity.seconds(), 900);
    let input = flow("CZ", "SMS", FlowKind::Input, "MSSBRN1A");
    assert_eq!(
        quarter.flow_config(&input),
        c.flow_config(&input),
        "others unchanged"
    );
    assert_eq!(
        c.flow_config(&sms).0.granularity.seconds(),
        1800,
        "never saved"
    );
    // Merged settings: those given win, the flow's others stay.
    let merged = c
        .with_flow_settings(&input, |s| {
            s.merge(&FlowSettings {
                median_days: Some(3),
                ..FlowSettings::default()
            })
        })
        .unwrap();
    let (cfg, src) = merged.flow_config(&input);
    assert_eq!((cfg.median_days, src.median_days), (3, Layer::Own));
    assert_eq!(cfg.independent_days, [4, 6]);
    // Removed: the flow inherits everything again; a flow with nothing of its own: None.
    let inherited = quarter.without_flow_settings(&sms).unwrap().unwrap();
    assert_eq!(inherited.flow_config(&sms).0.granularity.seconds(), 1800);
    assert!(inherited.without_flow_settings(&sms).is_none());
    // A flow not in the document (DE is built in) is added with its setting.
    let off = c
        .with_flow_settings(&new, |s| s.enabled = Some(false))
        .unwrap();
    assert!(!off.flow_config(&new).0.enabled);
    let bad = c
        .with_flow_settings(&sms, |s| s.hard_alarm_level = Some(0.9))
        .unwrap_err();
    assert!(
        bad.errors[0]
            .path
            .starts_with("countries.CZ.lobs.SMS.forwards.MSSBRN1A:CZFOX-SMS.config"),
        "{bad}"
    );
    assert!(bad.to_string().contains("levels must satisfy"), "{bad}");
}

#[test]
fn a_candidate_changes_the_lobs_named_and_is_validated() {
    let c = Config::from_json(SPEC_EXAMPLE).unwrap();
    let input = flow("CZ", "SMS", FlowKind::Input, "MSSBRN1A");
    let other = flow("CZ", "GSM", FlowKind::Input, "A");
    let elsewhere = flow("DE", "SMS", FlowKind::Input, "A");
    let soft = |s: &mut FlowSettings| s.soft_alarm_level = Some(0.9);
    let both = c.with_lob_settings("CZ", ["SMS", "GSM"], soft).unwrap();
    for f in [&input, &other] {
        let (cfg, src) = both.flow_config(f);
        assert_eq!(
            (cfg.soft_alarm_level, src.soft_alarm_level),
            (0.9, Layer::Lob)
        );
    }
    // The LoB's other settings stay; other countries and the saved document are unchanged.
    assert_eq!(both.flow_config(&input).0.granularity.seconds(), 1800);
    assert_eq!(both.flow_config(&elsewhere), c.flow_config(&elsewhere));
    assert_eq!(c.flow_config(&input).0.soft_alarm_level, 0.8);
    let bad = c
        .with_lob_settings("CZ", ["SMS"], |s| s.hard_alarm_level = Some(0.95))
        .unwrap_err();
    assert!(
        bad.errors[0]
            .path
            .starts_with("countries.CZ.lobs.SMS.config"),
        "{bad}"
    );
}

#[test]
fn reports_every_problem_at_once() {
    let errors = errors_of(
        r#"{"countries":{"CZ":{"timezone":"Mars/Base","holidays":["x"],
            "lobs":{"S":{"config":{"lookbackDays":0}}}}}}"#,
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
}

#[test]
fn inherited_violation_is_reported_once_where_written() {
    // The LoB lowers soft below the default hard; its flows inherit that but are not blamed.
    let errors = errors_of(
        r#"{"countries":{"CZ":{"lobs":{"S":{"config":{"softAlarmLevel":0.3},
            "inputs":{"A":{},"B":{}}}}}}}"#,
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("countries.CZ.lobs.S.config.softAlarmLevel"));
}

proptest! {
    /// Whatever each layer sets, the effective value is the deepest layer that sets it.
    #[test]
    fn deepest_layer_wins(layers in proptest::collection::vec(proptest::option::of(1u32..50), 4)) {
        let field = |v: Option<u32>| v.map(|v| format!(r#""lookbackDays":{v}"#)).unwrap_or_default();
        let json = format!(
            r#"{{"defaults":{{{}}},"countries":{{"CZ":{{"lobs":{{"L":{{"config":{{{}}},
                "inputs":{{"I":{{"config":{{{}}}}}}},"forwards":{{"I:T":{{"config":{{{}}}}}}}}}}}}}}}}}"#,
            field(layers[0]), field(layers[1]), field(layers[2]), field(layers[3])
        );
        let cfg = Config::from_json(&json).unwrap();
        let (c, s) = cfg.flow_config(&flow("CZ", "L", FlowKind::Forward, "I:T"));
        let tags = [Layer::Defaults, Layer::Lob, Layer::Input, Layer::Own];
        let deepest = layers.iter().zip(tags).rev().find_map(|(v, t)| v.map(|v| (v, t)));
        let (value, layer) = deepest.unwrap_or((56, Layer::BuiltIn));
        prop_assert_eq!(c.lookback_days, value);
        prop_assert_eq!(s.lookback_days, layer);
    }
}
