//! Tests of the generator: determinism, shapes, holidays, arrivals, labels.

use super::*;
use flowwatch_core::config::Config;
use flowwatch_core::record::{check_csv_header, parse_csv_line};

fn small() -> Spec {
    Spec {
        days: 40,
        flows: 30,
        unusual_zones: true,
        ..Spec::default()
    }
}

#[test]
fn a_day_in_parts_is_the_day_whole() {
    let data = Dataset::generate(&Spec {
        days: 2,
        flows: 300,
        ..small()
    });
    let parts = data.parts(50);
    assert!(parts.len() >= 5, "{parts:?}");
    assert_eq!(parts[0].start, 0);
    assert_eq!(parts.last().unwrap().end, 300);
    for w in parts.windows(2) {
        assert_eq!(w[0].end, w[1].start);
        assert!(
            data.flows[w[1].start].input.is_none(),
            "a part starts at an input"
        );
    }
    let day = epoch_day(small().start) + 1;
    let key = |a: &Arrival| (a.flow, a.time, a.bytes, a.arrival);
    let mut whole: Vec<_> = data.day_arrivals(day).iter().map(key).collect();
    let mut pieces: Vec<_> = parts
        .into_iter()
        .flat_map(|p| data.day_arrivals_of(day, p))
        .map(|a| key(&a))
        .collect();
    whole.sort();
    pieces.sort();
    assert_eq!(whole, pieces);
}

#[test]
fn batches_hold_every_record_in_arrival_steps() {
    let data = Dataset::generate(&Spec { days: 1, ..small() });
    let n = data.write_csv(std::io::sink()).unwrap();
    let batches = data.day_traffic(small().start, Instant::MIN, 60).later;
    assert_eq!(batches.iter().map(|(_, b)| b.len() as u64).sum::<u64>(), n);
    assert!(
        batches.windows(2).all(|w| w[0].0 < w[1].0),
        "one batch a step, in order"
    );
    assert!(batches.iter().all(|(step, _)| step % 60 == 0));
    // A record arrives at or after its time (late files), never before.
    for (step, batch) in &batches {
        assert!(batch.records().all(|(_, t, _)| t < step + 60));
    }
}

#[test]
fn deterministic_valid_and_configured() {
    let spec = small();
    let a = Dataset::generate(&spec);
    let mut csv_a = Vec::new();
    let n = a.write_csv(&mut csv_a).unwrap();
    let mut csv_b = Vec::new();
    Dataset::generate(&spec).write_csv(&mut csv_b).unwrap();
    assert_eq!(csv_a, csv_b, "same seed, same bytes");
    assert_eq!(a.flow_count(), 30);
    let text = String::from_utf8(csv_a).unwrap();
    let mut lines = text.lines();
    check_csv_header(lines.next().unwrap()).unwrap();
    let mut count = 0;
    for line in lines {
        parse_csv_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        count += 1;
    }
    assert_eq!(count, n);
    Config::from_json(&a.config().to_string()).expect("the generated config is valid");
}

#[test]
fn weekends_are_quieter_for_gsm_and_outages_are_labelled() {
    let spec = Spec {
        days: 28,
        flows: 2,
        outages_per_flow_month: 0.0,
        ..Spec::default()
    };
    let d = Dataset::generate(&spec);
    assert!(d.outages().is_empty());
    let mut csv = Vec::new();
    d.write_csv(&mut csv).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let mut per_weekday = [0f64; 7];
    for line in text.lines().skip(1) {
        let r = parse_csv_line(line).unwrap();
        if r.kind == FlowKind::Input {
            let day = local_day(chrono_tz::Europe::Prague, r.time);
            per_weekday[weekday(day) as usize] += r.bytes as f64;
        }
    }
    let workday = per_weekday[1];
    let sunday = per_weekday[6];
    assert!(
        (sunday / workday - 0.45).abs() < 0.1,
        "GSM Sunday at ~45 %: {}",
        sunday / workday
    );
    let with = Dataset::generate(&Spec {
        outages_per_flow_month: 3.0,
        days: 60,
        ..spec
    });
    assert!(!with.outages().is_empty());
    for o in with.outages() {
        assert!(o.start < o.end);
    }
}

/// Bytes of every flow's records per local day, from the generated days.
fn daily_bytes(data: &Dataset) -> Vec<std::collections::HashMap<EpochDay, f64>> {
    let mut out = vec![std::collections::HashMap::new(); data.flows.len()];
    for day in data.day_range() {
        for a in data.day_arrivals(day) {
            let tz = data.countries[data.flows[a.flow as usize].country].tz;
            *out[a.flow as usize]
                .entry(local_day(tz, a.time))
                .or_insert(0.0) += a.bytes as f64;
        }
    }
    out
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[test]
fn every_line_of_business_has_its_weekly_shape() {
    // February 2017: no holiday, no lazy day in any of the four countries.
    let spec = Spec {
        start: date("2017-02-06"),
        days: 21,
        flows: 80,
        outages_per_flow_month: 0.0,
        ..Spec::default()
    };
    let data = Dataset::generate(&spec);
    let bytes = daily_bytes(&data);
    let mut seen = std::collections::HashSet::new();
    for (fi, flow) in data.flows.iter().enumerate() {
        if flow.input.is_some() || data.countries[flow.country].code != "CZ" {
            continue;
        }
        let lob = &LOBS[flow.lob];
        seen.insert(lob.name);
        let mean = |weekdays: &[u8]| -> f64 {
            let days: Vec<f64> = data
                .day_range()
                .filter(|d| weekdays.contains(&weekday(*d)))
                .map(|d| bytes[fi].get(&d).copied().unwrap_or(0.0))
                .collect();
            days.iter().sum::<f64>() / days.len() as f64
        };
        let workday = mean(&[0, 1, 2, 3]);
        for (name, weekday, ratio) in [
            ("Friday", 4, lob.friday),
            ("Saturday", 5, lob.saturday),
            ("Sunday", 6, lob.sunday),
        ] {
            let measured = mean(&[weekday]) / workday;
            assert!(
                (measured / ratio - 1.0).abs() < 0.1,
                "{}: {name} at {measured:.3} of a workday, shape {ratio}",
                flow.id
            );
        }
    }
    assert_eq!(seen.len(), LOBS.len(), "CZ has every LoB: {seen:?}");
    // Weekend drops from −8 % (data) to −97 % (VoIP Sundays).
    let weekend = LOBS.iter().flat_map(|l| [l.saturday, l.sunday]);
    assert_eq!(weekend.clone().fold(0.0, f64::max), 0.92);
    assert_eq!(weekend.fold(1.0, f64::min), 0.03);
}

#[test]
fn holidays_are_sundays_lazy_days_quieter_christmas_low() {
    let spec = Spec {
        start: date("2016-12-01"),
        days: 40,
        flows: 1,
        outages_per_flow_month: 0.0,
        ..Spec::default()
    };
    let data = Dataset::generate(&spec);
    assert_eq!(data.flows[0].id.to_string(), "CZ/GSM/input/CZGSM01");
    let bytes = &daily_bytes(&data)[0];
    let day = |s: &str| bytes[&epoch_day(date(s))];
    // Ordinary Mondays to Thursdays of December (no holiday, no lazy day).
    let workday = [
        "2016-12-05",
        "2016-12-06",
        "2016-12-07",
        "2016-12-12",
        "2016-12-13",
    ]
    .iter()
    .map(|d| day(d))
    .sum::<f64>()
        / 5.0;
    let sunday = ["2016-12-04", "2016-12-11", "2016-12-18"]
        .iter()
        .map(|d| day(d))
        .sum::<f64>()
        / 3.0;
    let near = |what: &str, measured: f64, expected: f64| {
        assert!(
            (measured / expected - 1.0).abs() < 0.12,
            "{what}: {measured:.3}, expected {expected:.3}"
        );
    };
    near("a Sunday", sunday / workday, 0.45);
    // Monday 26 December: a holiday (as a Sunday) at Christmas (60 %).
    near("26 Dec", day("2016-12-26") / workday, 0.45 * 0.6);
    // Wednesday 28 December: a lazy day between Christmas and New Year.
    near("28 Dec", day("2016-12-28") / workday, 0.7);
    // Sunday 1 January: a holiday on a Sunday.
    near("1 Jan", day("2017-01-01") / sunday, 1.0);
}

#[test]
fn labels_say_what_happened_to_the_traffic() {
    let spec = Spec {
        days: 42,
        flows: 80,
        outages_per_flow_month: 4.0,
        ..Spec::default()
    };
    let data = Dataset::generate(&spec);
    let mut clean = Dataset::generate(&spec);
    clean.outages.clear();
    clean.by_flow.iter_mut().for_each(Vec::clear);
    let kinds: std::collections::HashSet<OutageKind> =
        data.outages.iter().map(|o| o.kind).collect();
    assert_eq!(kinds.len(), 7, "every shape is injected: {kinds:?}");
    // (flow, time) → bytes, both data sets, every day.
    // Two files of a forward may share a second: their bytes are summed.
    let records = |d: &Dataset| -> std::collections::HashMap<(u32, Instant), u64> {
        let mut out = std::collections::HashMap::new();
        for a in d.day_range().flat_map(|day| d.day_arrivals(day)) {
            *out.entry((a.flow, a.time)).or_insert(0) += a.bytes;
        }
        out
    };
    let (with, without) = (records(&data), records(&clean));
    let ids: std::collections::HashMap<&FlowId, u32> = (data.flows.iter())
        .enumerate()
        .map(|(n, f)| (&f.id, n as u32))
        .collect();
    let index = |id: &FlowId| ids[id];
    // Each flow's clean records by time.
    let mut of_flow: std::collections::HashMap<u32, Vec<(Instant, u64)>> = Default::default();
    for (&(f, t), &b) in &without {
        of_flow.entry(f).or_default().push((t, b));
    }
    of_flow.values_mut().for_each(|v| v.sort_unstable());
    // The outages that may change flow `fi` at `t` (its own, a move to it, its input's).
    let affecting = |fi: u32, t: Instant| -> usize {
        let hit = |f: &FlowId| {
            let n = index(f);
            n == fi
                || data.flows[fi as usize]
                    .input
                    .is_some_and(|(input, _)| n == input as u32)
        };
        data.outages
            .iter()
            .filter(|o| hit(&o.flow) || o.to.as_ref().is_some_and(hit))
            .filter(|o| t >= o.start_t - 90 && t < o.end_t + 90)
            .count()
    };
    let mut changed = 0;
    for (&(fi, t), &clean_bytes) in &without {
        if with.get(&(fi, t)).copied().unwrap_or(0) != clean_bytes {
            let flow = &data.flows[fi as usize].id;
            assert!(
                affecting(fi, t) > 0,
                "{flow} changed at {} with no label",
                utc_string(t)
            );
            changed += 1;
        }
    }
    assert!(changed > 1000, "{changed}");
    // Records of flow `fi` in `o`'s window that `outages` outages touch: (time, with, without).
    let within = |o: &Outage, fi: u32, outages: usize| -> Vec<(Instant, f64, f64)> {
        let records = of_flow.get(&fi).map_or(&[][..], Vec::as_slice);
        let from = records.partition_point(|r| r.0 < o.start_t);
        records[from..]
            .iter()
            .take_while(|r| r.0 < o.end_t)
            .filter(|r| affecting(fi, r.0) == outages)
            .map(|&(t, b)| (t, with.get(&(fi, t)).copied().unwrap_or(0) as f64, b as f64))
            .collect()
    };
    let (mut inputs_untouched, mut moved_in) = (0, 0);
    for o in &data.outages {
        let fi = index(&o.flow);
        let tz = data.countries[data.flows[fi as usize].country].tz;
        for (t, bytes, clean) in within(o, fi, 1) {
            let (hour, _) = local_hour(tz, t);
            let factor = match o.kind {
                OutageKind::Stop | OutageKind::MovedTraffic | OutageKind::ForwardStop => 0.0,
                OutageKind::PartialDrop => 0.3,
                OutageKind::ModerateDrop => 0.6,
                OutageKind::LongDrop => 0.35,
                OutageKind::NightStop if hour < 6.0 => 0.0,
                OutageKind::NightStop => 1.0,
                OutageKind::SlowDecline => {
                    assert!(
                        bytes <= clean && bytes >= 0.19 * clean,
                        "{o:?}: {bytes} of {clean}"
                    );
                    continue;
                }
            };
            assert!(
                (bytes - factor * clean).abs() <= 1.0 + 1e-3 * clean,
                "{o:?} at {}: {bytes} of {clean}",
                utc_string(t)
            );
        }
        if let Some(to) = &o.to {
            assert_eq!(o.kind, OutageKind::MovedTraffic);
            assert_eq!(
                (&to.country, &to.lob, to.kind),
                (&o.flow.country, &o.flow.lob, FlowKind::Input)
            );
            let gained = within(o, index(to), 1);
            assert!(gained.iter().all(|(_, b, c)| b > c), "{o:?}");
            moved_in += gained.len();
        }
        // A forward's outage leaves its input alone.
        if o.kind == OutageKind::ForwardStop {
            let (input, _) = data.flows[fi as usize].input.expect("a forward");
            let untouched = within(o, input as u32, 0);
            assert!(untouched.iter().all(|(_, b, c)| b == c), "{o:?}");
            inputs_untouched += untouched.len();
        }
    }
    assert!(moved_in > 0, "moved traffic arrived at other inputs");
    assert!(
        inputs_untouched > 0,
        "forwards stopped while their inputs carried on"
    );
}

/// The realistic shapes are in the traffic, and switching them on changes no other draw: the
/// plain data set's outages stay, long drops come on top.
#[test]
fn realistic_shapes_show_in_the_traffic_and_change_nothing_else() {
    let plain = Spec {
        days: 63,
        flows: 160,
        ..Spec::default()
    };
    let real = Spec {
        realism: Realism::realistic(),
        ..plain.clone()
    };
    let (a, mut b) = (Dataset::generate(&plain), Dataset::generate(&real));
    let key = |o: &Outage| (o.flow.clone(), o.start.clone(), o.end.clone(), o.kind);
    let kept: Vec<_> = (b.outages.iter())
        .filter(|o| o.kind != OutageKind::LongDrop)
        .map(key)
        .collect();
    assert_eq!(a.outages.iter().map(key).collect::<Vec<_>>(), kept);
    assert!(b.outages.iter().any(|o| o.kind == OutageKind::LongDrop));
    let shapes: Vec<FlowShape> = b.flow_shapes().map(|(_, s)| s).collect();
    for s in [
        FlowShape::Steady,
        FlowShape::Noisy,
        FlowShape::Late,
        FlowShape::Daily,
    ] {
        assert!(shapes.contains(&s), "{s:?} in {shapes:?}");
    }
    // From here on the traffic without outages.
    b.outages.clear();
    b.by_flow.iter_mut().for_each(Vec::clear);
    let inputs: Vec<usize> = (0..b.flows.len())
        .filter(|&f| b.flows[f].input.is_none())
        .collect();
    // Per input: its files' times, and its bytes per local day and hour.
    let mut times: Vec<Vec<Instant>> = vec![Vec::new(); b.flows.len()];
    let mut hourly: std::collections::HashMap<(usize, EpochDay, u32), f64> = Default::default();
    let mut daily: std::collections::HashMap<(usize, EpochDay), f64> = Default::default();
    for day in b.day_range() {
        for r in b.day_arrivals(day) {
            let fi = r.flow as usize;
            let tz = b.countries[b.flows[fi].country].tz;
            let (hour, local) = local_hour(tz, r.time);
            *daily.entry((b.flows[fi].country, local)).or_default() += r.bytes as f64;
            if b.flows[fi].input.is_none() {
                times[fi].push(r.time);
                *hourly.entry((fi, local, hour as u32)).or_default() += r.bytes as f64;
            }
        }
    }
    // Noisy inputs vary more from one week to the next, hour by hour, than steady ones.
    let variation = |shape: FlowShape| -> f64 {
        let mut logs = Vec::new();
        for &fi in inputs.iter().filter(|&&f| b.flows[f].traits.shape == shape) {
            for day in b.day_range().skip(7) {
                for hour in 9..18 {
                    let now = hourly.get(&(fi, day, hour));
                    let before = hourly.get(&(fi, day - 7, hour));
                    if let (Some(n), Some(w)) = (now, before) {
                        logs.push((n / w).ln().abs());
                    }
                }
            }
        }
        logs.sort_by(f64::total_cmp);
        logs[logs.len() / 2]
    };
    let (noisy, steady) = (variation(FlowShape::Noisy), variation(FlowShape::Steady));
    assert!(noisy > 1.5 * steady, "noisy {noisy} vs steady {steady}");
    // Late inputs leave holes of two periods where a file was held back; others never do.
    let holes = |shape: FlowShape| -> f64 {
        let (mut holes, mut gaps) = (0, 0);
        for &fi in inputs.iter().filter(|&&f| b.flows[f].traits.shape == shape) {
            let period = b.flows[fi].batch_seconds as f64;
            let mut t = times[fi].clone();
            t.sort_unstable();
            for w in t.windows(2) {
                gaps += 1;
                holes += usize::from((w[1] - w[0]) as f64 >= 1.7 * period);
            }
        }
        holes as f64 / gaps as f64
    };
    assert!(holes(FlowShape::Late) > 0.05, "{}", holes(FlowShape::Late));
    assert!(
        holes(FlowShape::Steady) < 0.001,
        "{}",
        holes(FlowShape::Steady)
    );
    // On an unlisted day a whole country is at its factor of the same weekday a week before.
    let unlisted: Vec<(usize, EpochDay, f64)> = (b.countries.iter().enumerate())
        .flat_map(|(ci, c)| c.unlisted.iter().map(move |&(d, f)| (ci, d, f)))
        .filter(|&(_, d, _)| b.day_range().contains(&(d - 7)))
        .collect();
    assert!(!unlisted.is_empty(), "some unlisted days in two months");
    for (ci, day, factor) in unlisted {
        let c = &b.countries[ci];
        let k = c.calendar.day_kind(day - 7);
        if k.holiday || k.lazy || c.unlisted.iter().any(|&(d, _)| d == day - 7) {
            continue;
        }
        let ratio = daily[&(ci, day)] / daily[&(ci, day - 7)];
        assert!(
            (ratio / factor - 1.0).abs() < 0.15,
            "{} on day {day}: {ratio} vs {factor}",
            c.code
        );
    }
}
