//! Conformance: notification channels, their delivery queue and their attempts.

use super::*;
use crate::{ATTEMPTS_KEPT, Delivery, DeliveryAttempt, Outcome, Settlement, StoredChannel};
use flowwatch_core::channel::{Channel, MinStatus, Target, Webhook};
use flowwatch_core::silence::FlowScope;

fn channel(name: &str, url: &str) -> StoredChannel {
    StoredChannel {
        name: name.into(),
        channel: Channel {
            target: Target::Webhook(Webhook {
                url: url.into(),
                secret: "s3cret".into(),
            }),
            scope: Some(FlowScope {
                country: "CZ".into(),
                lob: Some("GSM".into()),
                kind: None,
                flow: None,
            }),
            min_status: MinStatus::Outage,
        },
        updated_at: T0,
        updated_by: "root".into(),
    }
}

fn delivery(channel: &str, id: &str, time: Instant) -> Delivery {
    Delivery {
        channel: channel.into(),
        event: event(id, &flow("A"), time, Status::Outage),
        queued_at: T0,
        attempts: 0,
        next_at: T0,
    }
}

fn attempt(d: &Delivery, at_ms: i64, outcome: Outcome) -> DeliveryAttempt {
    DeliveryAttempt {
        channel: d.channel.clone(),
        at_ms,
        event_id: d.event.id.clone(),
        attempt: d.attempts,
        test: false,
        outcome,
        response: format!(
            "HTTP {}",
            if outcome == Outcome::Delivered {
                200
            } else {
                503
            }
        ),
        duration_ms: 12,
    }
}

fn ids(ds: &[Delivery]) -> Vec<&str> {
    ds.iter().map(|d| d.event.id.as_str()).collect()
}

/// Channels are stored whole, listed by name, replaced by name, deleted, and kept across a
/// reopen.
pub async fn channels_are_kept_listed_and_deleted(mut fx: Fixture) {
    {
        let s = fx.store();
        assert!(s.channels().await.unwrap().is_empty());
        assert_eq!(s.channel("ops").await.unwrap(), None);
        assert!(s.put_channel(channel("ops", "http://a/1")).await.unwrap());
        assert!(
            s.put_channel(channel("billing", "http://b/"))
                .await
                .unwrap()
        );
        assert!(!s.put_channel(channel("ops", "http://a/2")).await.unwrap());
        assert!(s.put_channel(channel("gone", "http://c/")).await.unwrap());
        assert!(s.delete_channel("gone").await.unwrap());
        assert!(!s.delete_channel("gone").await.unwrap());
    }
    fx.reopen().await;
    let s = fx.store();
    let all = s.channels().await.unwrap();
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["billing", "ops"]);
    assert_eq!(all[1], channel("ops", "http://a/2"));
    assert_eq!(
        s.channel("ops").await.unwrap(),
        Some(channel("ops", "http://a/2"))
    );
}

/// An alarm is queued once per channel (never for a channel not stored, never again once
/// settled); a claim takes the due ones oldest alarm first and holds them; a retry waits for
/// its time; the queue survives a reopen.
pub async fn deliveries_are_queued_once_claimed_and_settled(mut fx: Fixture) {
    {
        let s = fx.store();
        s.put_channel(channel("a", "http://a/")).await.unwrap();
        s.put_channel(channel("b", "http://b/")).await.unwrap();
        let queued = s
            .queue_deliveries(vec![
                // Ids against time order: the claim orders by the alarm's time.
                delivery("a", "z-first", T0 + 10),
                delivery("a", "a-second", T0 + 20),
                delivery("b", "z-first", T0 + 10),
                delivery("a", "z-first", T0 + 10),
                delivery("nobody", "z-first", T0 + 10),
            ])
            .await
            .unwrap();
        assert_eq!(queued, 3);
        assert_eq!(
            s.queue_deliveries(vec![delivery("a", "z-first", T0 + 10)])
                .await
                .unwrap(),
            0
        );
        assert_eq!(s.pending_deliveries("a").await.unwrap(), 2);
        assert_eq!(s.pending_deliveries("nobody").await.unwrap(), 0);
    }
    fx.reopen().await;
    let s = fx.store();
    let now = T0 + 100;
    assert!(
        s.claim_deliveries("a", T0 - 1, T0 + 30, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before its next_at"
    );
    let claimed = s.claim_deliveries("a", now, now + 30, 10).await.unwrap();
    assert_eq!(ids(&claimed), ["z-first", "a-second"]);
    assert!(claimed.iter().all(|d| d.next_at == now + 30));
    assert!(
        s.claim_deliveries("a", now + 29, now + 60, 10)
            .await
            .unwrap()
            .is_empty(),
        "held by the claim"
    );
    let again = s
        .claim_deliveries("a", now + 30, now + 60, 1)
        .await
        .unwrap();
    assert_eq!(
        ids(&again),
        ["z-first"],
        "due again once the hold ends; limit kept"
    );

    let mut first = again[0].clone();
    first.attempts = 1;
    let mut second = claimed[1].clone();
    second.attempts = 1;
    second.next_at = now + 120;
    s.settle_deliveries(vec![
        Settlement {
            attempt: Some(attempt(&first, (now + 31) * 1000, Outcome::Delivered)),
            delivery: first.clone(),
            outcome: Outcome::Delivered,
        },
        Settlement {
            attempt: Some(attempt(&second, (now + 32) * 1000, Outcome::Retry)),
            delivery: second.clone(),
            outcome: Outcome::Retry,
        },
    ])
    .await
    .unwrap();
    assert_eq!(s.pending_deliveries("a").await.unwrap(), 1);
    assert_eq!(s.pending_deliveries("b").await.unwrap(), 1);
    assert_eq!(
        s.queue_deliveries(vec![delivery("a", "z-first", T0 + 10)])
            .await
            .unwrap(),
        0,
        "a delivered alarm is not queued again"
    );
    assert!(
        s.claim_deliveries("a", now + 119, now + 200, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let retried = s
        .claim_deliveries("a", now + 120, now + 200, 10)
        .await
        .unwrap();
    assert_eq!(ids(&retried), ["a-second"]);
    assert_eq!(retried[0].attempts, 1, "the attempts made are kept");

    let mut failed = retried[0].clone();
    failed.attempts = 2;
    s.settle_deliveries(vec![Settlement {
        attempt: Some(attempt(&failed, (now + 121) * 1000, Outcome::Failed)),
        delivery: failed.clone(),
        outcome: Outcome::Failed,
    }])
    .await
    .unwrap();
    assert_eq!(s.pending_deliveries("a").await.unwrap(), 0);
    assert_eq!(
        s.queue_deliveries(vec![delivery("a", "a-second", T0 + 20)])
            .await
            .unwrap(),
        0,
        "a given-up alarm is not queued again"
    );
    let log = s.delivery_attempts("a", 10).await.unwrap();
    let outcomes: Vec<(&str, Outcome, u32)> = log
        .iter()
        .map(|a| (a.event_id.as_str(), a.outcome, a.attempt))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("a-second", Outcome::Failed, 2),
            ("a-second", Outcome::Retry, 1),
            ("z-first", Outcome::Delivered, 1),
        ],
        "newest first"
    );
    assert_eq!(
        log[2],
        attempt(&first, (now + 31) * 1000, Outcome::Delivered)
    );
    assert!(s.delivery_attempts("b", 10).await.unwrap().is_empty());
}

/// Attempts keep the latest [`ATTEMPTS_KEPT`] per channel; a test's attempt is logged alone;
/// deleting a channel takes its queue and attempts with it, and one made again under the same
/// name starts afresh.
pub async fn attempts_keep_the_latest_and_go_with_their_channel(fx: Fixture) {
    let s = fx.store();
    s.put_channel(channel("a", "http://a/")).await.unwrap();
    s.put_channel(channel("b", "http://b/")).await.unwrap();
    let d = delivery("a", "e", T0);
    for n in 0..ATTEMPTS_KEPT as i64 + 5 {
        let mut a = attempt(&d, T0 * 1000 + n, Outcome::Retry);
        a.test = true;
        a.event_id = format!("test-{n:03}");
        s.log_attempt(a).await.unwrap();
    }
    s.log_attempt(attempt(
        &delivery("nobody", "e", T0),
        T0 * 1000,
        Outcome::Delivered,
    ))
    .await
    .unwrap();
    assert!(s.delivery_attempts("nobody", 10).await.unwrap().is_empty());
    s.log_attempt(attempt(
        &delivery("b", "e", T0),
        T0 * 1000,
        Outcome::Delivered,
    ))
    .await
    .unwrap();
    let kept = s.delivery_attempts("a", 1000).await.unwrap();
    assert_eq!(kept.len(), ATTEMPTS_KEPT);
    assert_eq!(kept[0].event_id, format!("test-{:03}", ATTEMPTS_KEPT + 4));
    assert_eq!(kept.last().unwrap().event_id, "test-005");
    assert!(kept.iter().all(|a| a.test));
    assert_eq!(s.delivery_attempts("a", 3).await.unwrap().len(), 3);

    s.queue_deliveries(vec![d.clone()]).await.unwrap();
    let claimed = s.claim_deliveries("a", T0, T0 + 30, 10).await.unwrap();
    s.settle_deliveries(vec![Settlement {
        delivery: claimed[0].clone(),
        outcome: Outcome::Delivered,
        attempt: None,
    }])
    .await
    .unwrap();
    s.queue_deliveries(vec![delivery("a", "f", T0)])
        .await
        .unwrap();
    assert!(s.delete_channel("a").await.unwrap());
    assert_eq!(s.pending_deliveries("a").await.unwrap(), 0);
    assert!(s.delivery_attempts("a", 10).await.unwrap().is_empty());
    assert_eq!(s.delivery_attempts("b", 10).await.unwrap().len(), 1);
    s.put_channel(channel("a", "http://a/")).await.unwrap();
    assert_eq!(
        s.queue_deliveries(vec![d.clone()]).await.unwrap(),
        1,
        "the new channel has not had it"
    );
    assert!(s.delivery_attempts("a", 10).await.unwrap().is_empty());
}
