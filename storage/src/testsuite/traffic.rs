//! Conformance: Traffic: buckets, exactly-once marks, range reads, retention.

use super::*;

/// Added traffic sums into the stored buckets; a marked batch is applied once per position
/// of its source, and the position only moves forward.
pub async fn buckets_add_up_and_marks_apply_once(fx: Fixture) {
    let s = fx.store();
    let a = flow("A");
    let batch = vec![buckets(&a, [T0, T0 + 1, T0 + 5], 100)];
    assert!(s.add_buckets(batch.clone(), None).await.unwrap());
    assert!(s.add_buckets(batch.clone(), None).await.unwrap());
    let read = s.read_buckets(&a, T0, T0 + 10).await.unwrap();
    let doubled: Vec<Bucket> = batch[0]
        .buckets
        .iter()
        .map(|b| Bucket {
            bytes: 2 * b.bytes,
            records: 2,
            ..*b
        })
        .collect();
    assert_eq!(read, doubled);
    // Two buckets of one second in one batch add up too.
    let same_second = |bytes| Bucket {
        second: T0 + 1,
        bytes,
        records: 1,
    };
    s.add_buckets(
        vec![FlowBuckets {
            flow: a.clone(),
            buckets: vec![same_second(7), same_second(3)],
        }],
        None,
    )
    .await
    .unwrap();
    let read = s.read_buckets(&a, T0, T0 + 10).await.unwrap();
    assert_eq!(read.len(), 3);
    assert_eq!(
        read[1],
        Bucket {
            second: T0 + 1,
            bytes: 2 * batch[0].buckets[1].bytes + 10,
            records: 4
        }
    );

    let m = flow("M");
    let mark = |position| {
        Some(IngestMark {
            source: "flowwatch.ingest.3".into(),
            position,
        })
    };
    assert_eq!(s.ingest_position("flowwatch.ingest.3").await.unwrap(), None);
    assert!(
        s.add_buckets(vec![buckets(&m, [T0], 10)], mark(5))
            .await
            .unwrap()
    );
    assert!(
        !s.add_buckets(vec![buckets(&m, [T0], 10)], mark(5))
            .await
            .unwrap(),
        "a repeat"
    );
    assert!(
        !s.add_buckets(vec![buckets(&m, [T0], 10)], mark(4))
            .await
            .unwrap(),
        "an older one"
    );
    assert!(
        s.add_buckets(vec![buckets(&m, [T0], 10)], mark(9))
            .await
            .unwrap()
    );
    assert_eq!(
        s.ingest_position("flowwatch.ingest.3").await.unwrap(),
        Some(9)
    );
    assert_eq!(s.ingest_position("flowwatch.ingest.4").await.unwrap(), None);
    let read = s.read_buckets(&m, T0, T0 + 1).await.unwrap();
    assert_eq!(read[0].records, 2, "applied twice: positions 5 and 9");
}

/// Buckets come back in time order, within `[from, to)`, across days, never another flow's
/// (not even one whose name extends this one's).
pub async fn buckets_read_in_order_within_range_and_flow(fx: Fixture) {
    let s = fx.store();
    let (a, ab) = (flow("A"), flow("AB"));
    let seconds: Vec<Instant> = (0..40).rev().map(|i| T0 + i * DAY / 4).collect();
    s.add_buckets(
        vec![buckets(&a, seconds.clone(), 10), buckets(&ab, [T0 + 3], 99)],
        None,
    )
    .await
    .unwrap();
    let all = s.read_buckets(&a, T0 - DAY, T0 + 20 * DAY).await.unwrap();
    assert_eq!(all.len(), 40);
    assert!(all.windows(2).all(|w| w[0].second < w[1].second));
    let part = s.read_buckets(&a, T0 + DAY, T0 + 3 * DAY).await.unwrap();
    assert_eq!(part.first().unwrap().second, T0 + DAY, "from is inclusive");
    assert_eq!(
        part.last().unwrap().second,
        T0 + 3 * DAY - DAY / 4,
        "to is exclusive"
    );
    assert_eq!(part.len(), 8);
    assert_eq!(s.read_buckets(&ab, T0, T0 + DAY).await.unwrap().len(), 1);
    assert!(
        s.read_buckets(&flow("B"), T0, T0 + DAY)
            .await
            .unwrap()
            .is_empty()
    );
    // Ranges that cut through minutes.
    let c = flow("C");
    s.add_buckets(vec![buckets(&c, T0 + 50..T0 + 130, 1)], None)
        .await
        .unwrap();
    let cut = s.read_buckets(&c, T0 + 59, T0 + 121).await.unwrap();
    assert_eq!(cut.first().unwrap().second, T0 + 59);
    assert_eq!(cut.last().unwrap().second, T0 + 120);
    assert_eq!(cut.len(), 62);
    assert!(
        s.read_buckets(&a, T0 + DAY, T0).await.unwrap().is_empty(),
        "empty range"
    );
    // Times before 1970 sort before later ones.
    s.add_buckets(vec![buckets(&a, [-5, 5], 1)], None)
        .await
        .unwrap();
    let early = s.read_buckets(&a, -10, 10).await.unwrap();
    assert_eq!(
        early.iter().map(|b| b.second).collect::<Vec<_>>(),
        vec![-5, 5]
    );
}

/// A batch of 100 000 buckets, and eight writers on different flows at once.
pub async fn large_batches_and_concurrent_writers(fx: Fixture) {
    let s = fx.store.clone().expect("open");
    let big = flow("BIG");
    s.add_buckets(vec![buckets(&big, (0..100_000).map(|i| T0 + i), 5)], None)
        .await
        .unwrap();
    assert_eq!(
        s.read_buckets(&big, T0, T0 + 100_000).await.unwrap().len(),
        100_000
    );
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let f = flow(&format!("W{w}"));
            for round in 0..20 {
                let start = T0 + round * 100;
                s.add_buckets(vec![buckets(&f, start..start + 100, w)], None)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for w in 0..8 {
        let read = s
            .read_buckets(&flow(&format!("W{w}")), T0, T0 + 2000)
            .await
            .unwrap();
        assert_eq!(read.len(), 2000, "writer {w}");
    }
}

/// `expire` removes exactly the rows older than the cut, in every series and every flow.
pub async fn retention_expires_only_older_data(fx: Fixture) {
    let s = fx.store();
    let flows: Vec<FlowId> = (0..5).map(|i| flow(&format!("F{i}"))).collect();
    for f in &flows {
        s.add_buckets(vec![buckets(f, (0..10).map(|d| T0 + d * DAY), 1)], None)
            .await
            .unwrap();
        s.write_ticks(
            (0..10)
                .map(|d| tick(f, T0 + d * DAY, Status::Ok, 1))
                .collect(),
        )
        .await
        .unwrap();
    }
    let events: Vec<Event> = (0..10)
        .map(|d| event(&format!("e{d}"), &flows[0], T0 + d * DAY, Status::Outage))
        .collect();
    s.append_events(events).await.unwrap();
    let cut = T0 + 4 * DAY;
    assert_eq!(s.expire(Series::Traffic, cut).await.unwrap(), 5 * 4);
    assert_eq!(s.expire(Series::Ticks, cut).await.unwrap(), 5 * 4);
    assert_eq!(s.expire(Series::Events, cut).await.unwrap(), 4);
    for f in &flows {
        let b = s.read_buckets(f, i64::MIN, i64::MAX).await.unwrap();
        assert_eq!(b.len(), 6);
        assert_eq!(b[0].second, cut);
        assert_eq!(s.read_ticks(f, i64::MIN, i64::MAX).await.unwrap().len(), 6);
    }
    // A cut inside a minute keeps that minute's later seconds.
    let g = flow("G");
    let mid = T0 + 20 * DAY + 30;
    s.add_buckets(vec![buckets(&g, mid - 5..mid + 5, 1)], None)
        .await
        .unwrap();
    assert_eq!(s.expire(Series::Traffic, mid).await.unwrap(), 5 + 5 * 6);
    let left = s.read_buckets(&g, i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(
        left.iter().map(|b| b.second).collect::<Vec<_>>(),
        (mid..mid + 5).collect::<Vec<_>>()
    );
    let page = s
        .query_events(EventQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.events.len(), 6);
    assert_eq!(
        s.expire(Series::Traffic, cut).await.unwrap(),
        0,
        "nothing left to expire"
    );
    // An expired event id may be appended again (it is gone).
    s.append_events(vec![event("e0", &flows[0], T0, Status::Outage)])
        .await
        .unwrap();
    assert_eq!(
        s.query_events(EventQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .events
        .len(),
        7
    );
}
