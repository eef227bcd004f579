//! Conformance: silences, acknowledgements, and silenced status changes.

use super::*;
use flowwatch_core::event::Acknowledgement;
use flowwatch_core::silence::{FlowScope, Silence, Weekly};

fn silence(id: &str, lob: Option<&str>) -> Silence {
    Silence {
        id: id.into(),
        scope: FlowScope {
            country: "CZ".into(),
            lob: lob.map(Into::into),
            kind: None,
            flow: None,
        },
        from: T0,
        to: T0 + DAY,
        weekly: None,
        comment: "maintenance of the MSCs".into(),
        created_by: "root".into(),
        created_at: T0 - 60,
        ended_at: None,
    }
}

/// Silences are stored whole, listed by id, replaced by id (ended early), and kept across a
/// reopen.
pub async fn silences_are_kept_listed_and_ended(mut fx: Fixture) {
    let weekly = Silence {
        weekly: Some(Weekly::parse(&[5, 6], "22:00", "02:00").unwrap()),
        ..silence("b-weekly", Some("GSM"))
    };
    {
        let s = fx.store();
        assert!(s.silences().await.unwrap().is_empty());
        assert_eq!(s.silence("a-once").await.unwrap(), None);
        s.put_silence(weekly.clone()).await.unwrap();
        s.put_silence(silence("a-once", None)).await.unwrap();
        let ended = Silence {
            ended_at: Some(T0 + 600),
            ..silence("a-once", None)
        };
        s.put_silence(ended).await.unwrap();
    }
    fx.reopen().await;
    let s = fx.store();
    let all = s.silences().await.unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a-once", "b-weekly"]);
    assert_eq!(all[0].ended_at, Some(T0 + 600));
    assert_eq!(all[1], weekly);
    assert_eq!(s.silence("b-weekly").await.unwrap(), Some(weekly));
}

/// A silenced change, or one held while its flow flaps, is stored and listed as such, and never
/// queued as an alarm.
pub async fn silenced_changes_are_stored_but_not_queued(fx: Fixture) {
    let s = fx.store();
    let a = flow("A");
    let quiet = Event {
        silenced: true,
        ..event("quiet", &a, T0, Status::Outage)
    };
    let held = Event {
        flapping: true,
        ..event("held", &a, T0 + 30, Status::Ok)
    };
    s.append_events(vec![
        quiet,
        held,
        event("loud", &a, T0 + 60, Status::Warning),
    ])
    .await
    .unwrap();
    let queued: Vec<String> = (s.outbox_pending(10).await.unwrap())
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(queued, ["loud"]);
    let page = newest_events(s).await;
    let listed: Vec<(&str, bool, bool)> = (page.events.iter())
        .map(|e| (e.id.as_str(), e.silenced, e.flapping))
        .collect();
    assert_eq!(
        listed,
        [
            ("loud", false, false),
            ("held", false, true),
            ("quiet", true, false)
        ]
    );
}

/// The newest ten events.
async fn newest_events(s: &dyn Store) -> EventPage {
    let q = EventQuery {
        limit: 10,
        ..Default::default()
    };
    s.query_events(q).await.unwrap()
}

/// The flows acknowledged now: (flow name, event, by whom).
async fn acknowledged(s: &dyn Store) -> Vec<(String, String, String)> {
    (s.flow_acknowledgements().await.unwrap())
        .into_iter()
        .map(|f| (f.flow.name, f.event_id, f.ack.by))
        .collect()
}

/// An acknowledgement is written into its event and makes its flow acknowledged until a
/// change as it happens ends the episode; a change between WARNING and OUTAGE, a revision or
/// an event stored again keep it.
pub async fn acknowledgements_last_until_the_episode_ends(fx: Fixture) {
    let s = fx.store();
    let (a, b) = (flow("A"), flow("B"));
    let change = |id: &str, f: &FlowId, minute: i64, from: Status, to: Status| Event {
        previous_status: from,
        ..event(id, f, T0 + minute * 60, to)
    };
    let (ok, warning, outage) = (Status::Ok, Status::Warning, Status::Outage);
    let a_down = change("a-down", &a, 1, ok, outage);
    s.append_events(vec![a_down.clone(), change("b-down", &b, 1, ok, outage)])
        .await
        .unwrap();
    let ack = |by: &str, at: Instant| Acknowledgement {
        by: by.into(),
        at,
        comment: "looking into it".into(),
    };
    assert_eq!(s.acknowledge("nope", ack("root", T0)).await.unwrap(), None);
    assert_eq!(s.event("nope").await.unwrap(), None);
    assert!(s.flow_acknowledgements().await.unwrap().is_empty());

    let acked = s
        .acknowledge("a-down", ack("root", T0 + 120))
        .await
        .unwrap();
    assert_eq!(acked.unwrap().acknowledged, Some(ack("root", T0 + 120)));
    let read = s.event("a-down").await.unwrap().unwrap();
    assert_eq!(
        (read.id.as_str(), read.acknowledged),
        ("a-down", Some(ack("root", T0 + 120)))
    );
    // A later acknowledgement replaces it, in the event and for the flow.
    s.acknowledge("a-down", ack("ops", T0 + 180)).await.unwrap();
    s.acknowledge("b-down", ack("ops", T0 + 180)).await.unwrap();
    let both = vec![
        ("A".to_owned(), "a-down".to_owned(), "ops".to_owned()),
        ("B".to_owned(), "b-down".to_owned(), "ops".to_owned()),
    ];
    assert_eq!(acknowledged(s).await, both);

    // Still not OK: OUTAGE → WARNING; a revision to OK; the first change stored again.
    let revised = Event {
        revision: true,
        ..change("a-revised", &a, 2, outage, ok)
    };
    s.append_events(vec![
        change("a-better", &a, 3, outage, warning),
        revised,
        a_down,
    ])
    .await
    .unwrap();
    assert_eq!(acknowledged(s).await, both);

    // OK again: A's acknowledgement goes; its event keeps saying who acknowledged it.
    s.append_events(vec![change("a-back", &a, 4, warning, ok)])
        .await
        .unwrap();
    assert_eq!(acknowledged(s).await, both[1..]);
    let page = newest_events(s).await;
    let a_down = page.events.iter().find(|e| e.id == "a-down").unwrap();
    assert_eq!(a_down.acknowledged, Some(ack("ops", T0 + 180)));
    assert!(
        page.events
            .iter()
            .filter(|e| e.id != "a-down" && e.id != "b-down")
            .all(|e| e.acknowledged.is_none())
    );

    // A new episode (OK → WARNING straight after N_A, say) starts unacknowledged too.
    s.append_events(vec![change("b-na", &b, 5, outage, Status::NotAvailable)])
        .await
        .unwrap();
    assert!(acknowledged(s).await.is_empty());
}

/// Incident messages marked published stay so across a reopen; others are not.
pub async fn published_incident_messages_are_remembered(mut fx: Fixture) {
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    {
        let s = fx.store();
        assert!(s.published(ids(&["a:opened"])).await.unwrap().is_empty());
        s.mark_published(ids(&["a:opened", "b:opened"]), T0)
            .await
            .unwrap();
        // Marking again changes nothing.
        s.mark_published(ids(&["a:opened"]), T0 + 5).await.unwrap();
    }
    fx.reopen().await;
    let mut found = (fx.store())
        .published(ids(&["a:opened", "a:ended", "b:opened"]))
        .await
        .unwrap();
    found.sort();
    assert_eq!(found, ["a:opened", "b:opened"]);
}
