//! Conformance: Ticks, latest statuses, events and the alarm outbox.

use super::*;

/// Ticks are upserts by flow and start; a lower epoch than the stored one is refused.
pub async fn ticks_upsert_and_fence_by_epoch(fx: Fixture) {
    let s = fx.store();
    let a = flow("A");
    let out = s
        .write_ticks(vec![
            tick(&a, T0 + 3600, Status::Ok, 2),
            tick(&a, T0, Status::NotAvailable, 2),
        ])
        .await
        .unwrap();
    assert_eq!((out.written, out.stale), (2, 0));
    let read = s.read_ticks(&a, T0, T0 + 7200).await.unwrap();
    assert_eq!(
        read,
        vec![
            tick(&a, T0, Status::NotAvailable, 2),
            tick(&a, T0 + 3600, Status::Ok, 2)
        ]
    );
    // Re-evaluation by the same owner replaces.
    s.write_ticks(vec![tick(&a, T0, Status::Warning, 2)])
        .await
        .unwrap();
    assert_eq!(
        s.read_ticks(&a, T0, T0 + 1).await.unwrap()[0].status,
        Status::Warning
    );
    // An older owner is fenced off; a newer one is not.
    let out = s
        .write_ticks(vec![
            tick(&a, T0, Status::Outage, 1),
            tick(&a, T0 + 7200, Status::Ok, 1),
        ])
        .await
        .unwrap();
    assert_eq!((out.written, out.stale), (1, 1));
    assert_eq!(
        s.read_ticks(&a, T0, T0 + 1).await.unwrap()[0].status,
        Status::Warning
    );
    let out = s
        .write_ticks(vec![tick(&a, T0, Status::Outage, 3)])
        .await
        .unwrap();
    assert_eq!((out.written, out.stale), (1, 0));
    assert_eq!(
        s.read_ticks(&a, T0, T0 + 1).await.unwrap()[0].status,
        Status::Outage
    );
    assert_eq!(
        s.read_ticks(&a, T0 + 1, T0 + 3600).await.unwrap().len(),
        0,
        "start in [from, to)"
    );
}

/// The latest status of every flow in one call; a re-evaluated older tick does not move it back.
pub async fn latest_status_moves_forward_only(fx: Fixture) {
    let s = fx.store();
    // Names of different lengths, so the order by flow is not an accident of key layout.
    let flows: Vec<FlowId> = (0..300).map(|i| flow(&format!("F{i}"))).collect();
    let ticks: Vec<StoredTick> = flows
        .iter()
        .flat_map(|f| {
            [
                tick(f, T0, Status::Ok, 1),
                tick(f, T0 + 3600, Status::Outage, 1),
            ]
        })
        .collect();
    s.write_ticks(ticks).await.unwrap();
    s.write_ticks(vec![tick(&flows[0], T0, Status::Warning, 1)])
        .await
        .unwrap();
    let latest = s.latest_statuses().await.unwrap();
    assert_eq!(latest.len(), 300);
    assert!(
        latest
            .iter()
            .all(|t| t.start == T0 + 3600 && t.status == Status::Outage)
    );
    let names: Vec<&str> = latest.iter().map(|t| t.flow.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ordered by flow");
    s.write_ticks(vec![tick(&flows[7], T0 + 7200, Status::Ok, 1)])
        .await
        .unwrap();
    let latest = s.latest_statuses().await.unwrap();
    let f7 = latest.iter().find(|t| t.flow == flows[7]).unwrap();
    assert_eq!((f7.start, f7.status), (T0 + 7200, Status::Ok));
    // After a full read too, an older tick does not move it back; a new flow appears.
    s.write_ticks(vec![
        tick(&flows[7], T0, Status::Warning, 2),
        tick(&flow("New"), T0, Status::Ok, 1),
    ])
    .await
    .unwrap();
    let latest = s.latest_statuses().await.unwrap();
    let f7 = latest.iter().find(|t| t.flow == flows[7]).unwrap();
    assert_eq!((f7.start, f7.status), (T0 + 7200, Status::Ok));
    assert_eq!(latest.len(), 301);
}

/// Events: an id is stored once; queries filter and page newest first.
pub async fn events_dedupe_filter_and_page_newest_first(fx: Fixture) {
    let s = fx.store();
    let cz = flow("A");
    let de = FlowId::new("DE", "SMS", FlowKind::Input, "B").expect("valid id");
    let mut events = Vec::new();
    for i in 0..50 {
        let f = if i % 2 == 0 { &cz } else { &de };
        let status = if i % 5 == 0 {
            Status::Outage
        } else {
            Status::Warning
        };
        events.push(event(&format!("ev-{i:02}"), f, T0 + i * 60, status));
    }
    // Two events in the same second are both kept, ordered by id.
    events.push(event("ev-same", &cz, T0 + 49 * 60, Status::Ok));
    s.append_events(events.clone()).await.unwrap();
    s.append_events(events[..10].to_vec()).await.unwrap();
    let mut dup = events[3].clone();
    dup.actual = 999;
    s.append_events(vec![dup]).await.unwrap();

    let all = s
        .query_events(EventQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.events.len(), 51, "repeats dropped");
    assert!(all.next.is_none());
    assert!(
        all.events
            .windows(2)
            .all(|w| (w[0].time, &w[0].id) > (w[1].time, &w[1].id)),
        "newest first"
    );
    assert_eq!(
        all.events.iter().find(|e| e.id == "ev-03").unwrap().actual,
        1,
        "first write wins"
    );

    let outages = s
        .query_events(EventQuery {
            statuses: vec![Status::Outage],
            country: Some("CZ".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        outages
            .events
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["ev-40", "ev-30", "ev-20", "ev-10", "ev-00"]
    );
    let by_lob = s
        .query_events(EventQuery {
            lob: Some("SMS".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_lob.events.len(), 25);
    let window = s
        .query_events(EventQuery {
            from: Some(T0 + 600),
            to: Some(T0 + 1200),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(window.events.len(), 10, "from inclusive, to exclusive");

    // Paging through everything with pages of 7 returns each event once, in order.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .query_events(EventQuery {
                limit: 7,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.events.len() <= 7);
        seen.extend(page.events.into_iter().map(|e| e.id));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(
        seen,
        all.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
    let bad = s
        .query_events(EventQuery {
            limit: 7,
            cursor: Some("zz".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(bad, Err(Error::Invalid { .. })), "{bad:?}");
}

/// Only the changes a person acts on: to or from `WARNING`/`OUTAGE`, not revisions; paged
/// past the many that are not, with the other filters.
pub async fn actionable_events_are_changes_to_or_from_an_alarm(fx: Fixture) {
    let s = fx.store();
    let (a, b) = (flow("A"), flow("B"));
    let change =
        |id: &str, f: &FlowId, minute: i64, from: Status, to: Status, revision: bool| Event {
            previous_status: from,
            revision,
            ..event(id, f, T0 + minute * 60, to)
        };
    let (na, ok, outage, warning) = (
        Status::NotAvailable,
        Status::Ok,
        Status::Outage,
        Status::Warning,
    );
    let mut events = vec![
        change("down", &a, 1, ok, outage, false),
        change("back", &a, 2, outage, ok, false),
        change("warn", &b, 3, ok, warning, false),
        change("worse", &b, 4, warning, outage, false),
        change("late", &a, 5, ok, outage, true),
        change("gone", &b, 6, outage, na, false),
    ];
    // A daily flow's flips between N_A and OK, many of them, newer than all of the above.
    for i in 0..30 {
        let (from, to) = if i % 2 == 0 { (na, ok) } else { (ok, na) };
        events.push(change(&format!("flip-{i:02}"), &a, 10 + i, from, to, false));
    }
    s.append_events(events).await.unwrap();
    let ids =
        |page: &EventPage| -> Vec<String> { page.events.iter().map(|e| e.id.clone()).collect() };
    let q = EventQuery {
        actionable: true,
        limit: 2,
        ..Default::default()
    };
    let first = s.query_events(q.clone()).await.unwrap();
    assert_eq!(ids(&first), ["gone", "worse"]);
    let second = s
        .query_events(EventQuery {
            cursor: first.next.clone(),
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(ids(&second), ["warn", "back"]);
    let third = s
        .query_events(EventQuery {
            cursor: second.next.clone(),
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(ids(&third), ["down"]);
    assert!(third.next.is_none());
    // With the other filters: the changes back to OK in flow A's country that a person acts on.
    let back = s
        .query_events(EventQuery {
            statuses: vec![ok],
            country: Some(a.country.clone()),
            limit: 100,
            ..q
        })
        .await
        .unwrap();
    assert_eq!(ids(&back), ["back"]);
    // Without the filter everything is there.
    let all = s
        .query_events(EventQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.events.len(), 36);
}

/// New alarms wait in the outbox, oldest first, until marked done; revisions and repeated ids
/// are never queued; an expired event leaves the outbox too.
pub async fn outbox_queues_alarms_until_done(fx: Fixture) {
    let s = fx.store();
    let a = flow("A");
    assert!(s.outbox_pending(10).await.unwrap().is_empty());
    let mut revision = event("r", &a, T0 + 50, Status::Ok);
    revision.revision = true;
    s.append_events(vec![
        event("e2", &a, T0 + 20, Status::Outage),
        event("e1", &a, T0 + 10, Status::Warning),
        revision,
    ])
    .await
    .unwrap();
    // A repeat of a stored id (a rebuild that found the same change) is not queued again.
    s.append_events(vec![event("e1", &a, T0 + 10, Status::Warning)])
        .await
        .unwrap();
    let ids = |v: Vec<Event>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(s.outbox_pending(10).await.unwrap()), ["e1", "e2"]);
    assert_eq!(ids(s.outbox_pending(1).await.unwrap()), ["e1"]);
    assert_eq!(s.outbox_len().await.unwrap(), 2);
    assert_eq!(
        s.outbox_pending(1).await.unwrap()[0],
        event("e1", &a, T0 + 10, Status::Warning),
        "the whole event comes back"
    );
    s.outbox_done(vec!["e1".into(), "unknown".into()])
        .await
        .unwrap();
    assert_eq!(ids(s.outbox_pending(10).await.unwrap()), ["e2"]);
    s.outbox_done(vec!["e1".into()]).await.unwrap();
    assert_eq!(s.outbox_len().await.unwrap(), 1);
    s.append_events(vec![event("e3", &a, T0 + 5 * DAY, Status::Ok)])
        .await
        .unwrap();
    s.expire(Series::Events, T0 + DAY).await.unwrap();
    assert_eq!(ids(s.outbox_pending(10).await.unwrap()), ["e3"]);
    s.outbox_done(vec!["e3".into()]).await.unwrap();
    assert!(s.outbox_pending(10).await.unwrap().is_empty());
    assert_eq!(s.outbox_len().await.unwrap(), 0);
}

/// The latest ticks of one country or one LoB are those of the full read (ordered by flow),
/// before and after it, and move forward with later writes.
pub async fn latest_statuses_of_a_country_or_a_lob(fx: Fixture) {
    let s = fx.store();
    let flows = scattered_flows();
    let latest = |n: usize, f: &FlowId| {
        tick(
            f,
            T0 + 3600,
            [Status::Ok, Status::Warning, Status::Outage][n % 3],
            1,
        )
    };
    let ticks: Vec<StoredTick> = flows
        .iter()
        .enumerate()
        .flat_map(|(n, f)| [tick(f, T0, Status::Ok, 1), latest(n, f)])
        .collect();
    s.write_ticks(ticks).await.unwrap();
    let mut all: Vec<StoredTick> = flows
        .iter()
        .enumerate()
        .map(|(n, f)| latest(n, f))
        .collect();
    all.sort_by(|a, b| a.flow.cmp(&b.flow));
    let statuses_in = async |scope| s.latest_statuses_in(scope).await.unwrap();
    let flow: fn(&StoredTick) -> &FlowId = |t| &t.flow;
    // Before anything read every status (some keep them in memory after), then after.
    reads_each_scope(&all, flow, statuses_in).await;
    assert_eq!(s.latest_statuses().await.unwrap(), all);
    reads_each_scope(&all, flow, statuses_in).await;
    assert_eq!(
        s.latest_statuses_in(Scope::country("CZ"))
            .await
            .unwrap()
            .len(),
        18
    );
    // A later tick moves a flow's status; an older one does not move it back.
    let later = tick(&flows[1], T0 + 7200, Status::Outage, 1);
    s.write_ticks(vec![later.clone(), tick(&flows[2], T0, Status::Outage, 1)])
        .await
        .unwrap();
    for t in &mut all {
        if t.flow == later.flow {
            *t = later.clone();
        }
    }
    reads_each_scope(&all, flow, statuses_in).await;
}
