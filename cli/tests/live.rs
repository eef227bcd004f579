//! `GET /api/v1/live` over real HTTP: the component status at once, a status change caused by
//! ingest as it happens, and the stream ending when the server shuts down.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::Run;
use flowwatch_core::time::utc_string;

/// 2017-02-06T00:00:00Z.
const T0: i64 = 1_486_339_200;

#[test]
fn status_changes_and_components_arrive_live_until_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    // The clock stands 3 hours after the history: those hours were silent, an outage.
    let days = 15;
    let now = T0 + days * 86_400 + 3 * 3600;
    let run = Run::start(dir.path(), &["--start-time", &utc_string(now)]);
    let (status, body) = run.request_as(None, "GET", "/api/v1/live", "text/plain", "");
    assert_eq!(status, 401, "{body}");
    let (status, body) = run.request("GET", "/api/v1/live?colour=red", "text/plain", "");
    assert_eq!(status, 400, "{body}");

    let events = run.subscribe("?country=CZ&onlyOutages=true");
    let other = run.subscribe("?country=DE");
    let next = |rx: &mpsc::Receiver<Option<(String, String)>>| {
        rx.recv_timeout(Duration::from_secs(30))
            .expect("an event within 30 s")
    };
    let (name, data) = next(&events).unwrap();
    assert_eq!(name, "components");
    let components: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(components["components"]["store"]["ok"], true);
    assert_eq!(next(&other).unwrap().0, "components");

    let mut csv = String::from("time,country,lob,kind,flow,bytes\n");
    for i in 0..days * 24 * 12 {
        csv.push_str(&format!(
            "{},CZ,GSM,input,A,1000\n",
            utc_string(T0 + i * 300)
        ));
    }
    assert_eq!(run.ingest(&csv)["accepted"], days * 24 * 12);
    let change = loop {
        let (name, data) = next(&events).unwrap();
        if name == "status" {
            break serde_json::from_str::<serde_json::Value>(&data).unwrap();
        }
        assert_eq!(name, "components");
    };
    assert_eq!(change["flowName"], "A");
    assert_eq!(change["country"], "CZ");
    assert_eq!(change["newStatus"], "OUTAGE");
    // The DE subscriber saw no status change, only components.
    while let Ok(Some((name, _))) = other.try_recv() {
        assert_eq!(name, "components");
    }

    // SIGTERM: the open streams end and the server exits cleanly.
    run.terminate();
    for rx in [&events, &other] {
        loop {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => panic!("the stream did not end at shutdown: {e}"),
            }
        }
    }
}
