//! The gRPC API of `flowwatch run` (`flowwatch.v1.FlowWatch`), called with the generated tonic
//! client over real HTTP/2 on the HTTP API's own address: ticks and statuses equal what the
//! HTTP API gives, a status change arrives on the watch stream, the ingest stream numbers lines
//! across chunks and stores each chunk before the next, and the same keys and roles apply.

mod common;

use std::time::Duration;

use common::Run;
use flowwatch_core::time::utc_string;
use flowwatch_proto::pb;
use flowwatch_proto::pb::flow_watch_client::FlowWatchClient;
use flowwatch_worker::testkit::eventually;
use serde_json::{Value, json};
use tonic::transport::Channel;
use tonic::{Code, Request};

/// 2017-02-06T00:00:00Z, a Monday.
const T0: i64 = 1_486_339_200;

const HEADER: &str = "time,country,lob,kind,flow,bytes\n";

fn csv(rows: impl IntoIterator<Item = (i64, String, u64)>) -> String {
    let mut out = String::from(HEADER);
    for (t, flow, bytes) in rows {
        let time = utc_string(t);
        out.push_str(&format!("{time},CZ,GSM,input,{flow},{bytes}\n"));
    }
    out
}

/// A client of `run`'s address (the HTTP API's), over HTTP/2.
async fn client(run: &Run) -> FlowWatchClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", run.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    FlowWatchClient::new(channel)
}

/// `message` with `key` in `x-api-key`.
fn with_key<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-api-key", key.parse().unwrap());
    request
}

/// `message` with `key` in `x-api-key`, or without a key.
fn maybe_with_key<T>(key: Option<&str>, message: T) -> Request<T> {
    match key {
        Some(k) => with_key(k, message),
        None => Request::new(message),
    }
}

/// The next status change of a watch, or how it ended; within 30 s.
async fn next(
    watch: &mut tonic::Streaming<pb::StatusChange>,
) -> Result<Option<pb::StatusChange>, tonic::Status> {
    tokio::time::timeout(Duration::from_secs(30), watch.message())
        .await
        .expect("a change within 30 s")
}

fn flow_a(kind: pb::FlowKind) -> pb::FlowRef {
    pb::FlowRef {
        country: "CZ".into(),
        lob: "GSM".into(),
        kind: kind.into(),
        name: "A".into(),
    }
}

fn ticks_request(from: &str, to: &str, granularity: Option<&str>) -> pb::TicksRequest {
    pb::TicksRequest {
        flow: Some(flow_a(pb::FlowKind::Input)),
        from: from.into(),
        to: to.into(),
        granularity: granularity.map(Into::into),
    }
}

fn status_name(status: i32) -> &'static str {
    match pb::FlowStatus::try_from(status).unwrap() {
        pb::FlowStatus::Ok => "OK",
        pb::FlowStatus::Warning => "WARNING",
        pb::FlowStatus::Outage => "OUTAGE",
        pb::FlowStatus::NotAvailable => "N_A",
        pb::FlowStatus::Unspecified => panic!("a tick without a status"),
    }
}

/// gRPC ticks in the JSON of `GET …/ticks`, to compare them to the digit.
fn as_rest(ticks: &[pb::Tick]) -> Value {
    let rows: Vec<Value> = ticks
        .iter()
        .map(|t| {
            let v = t.values.as_ref();
            json!({
                "tickStart": utc_string(t.tick_start),
                "tickEnd": utc_string(t.tick_end),
                "actual": t.actual,
                "expected": v.map(|v| v.expected),
                "dayAverage": v.map(|v| v.day_average),
                "tickDifference": v.map(|v| v.tick_difference),
                "dayDifference": v.map(|v| v.day_difference),
                "difference": v.map(|v| v.difference),
                "status": status_name(t.status),
            })
        })
        .collect();
    Value::Array(rows)
}

/// The code and message of a failed call.
fn failed<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    let e = r.expect_err("the call fails");
    (e.code(), e.message().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_and_statuses_over_grpc_are_those_of_the_http_api() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"countries": {"DE": {},
            "CZ": {"lobs": {"GSM": {"inputs": {"C": {"config": {"enabled": false}}}}}}}}"#,
    )
    .unwrap();
    // Two weeks of 5-minute records whose size follows the hour, and a quiet afternoon; the
    // clock half an hour into the next tick.
    let days = 14;
    let rows = common::quiet_afternoon(T0, days);
    let now = T0 + days * 86_400 + 5400;
    let run = Run::start(
        &dir.path().join("data"),
        &[
            "--start-time",
            &utc_string(now),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(run.ingest(&csv(rows))["accepted"], days * 24 * 12);
    let mut grpc = client(&run).await;
    let key = run.key.clone();

    let (from, to) = ("2017-02-18", "2017-02-20");
    let rest = |q: &str| {
        run.json(&format!(
            "/api/v1/flows/CZ/GSM/input/A/ticks?from={from}&to={to}{q}"
        ))["ticks"]
            .clone()
    };
    eventually("the two days are evaluated", async || {
        rest("").as_array().unwrap().len() == 48
    })
    .await;
    // As stored, and computed at another granularity: the same ticks to the digit.
    for (granularity, q, count) in [(None, "", 48), (Some("30m"), "&granularity=30m", 96)] {
        let answer = grpc
            .ticks(with_key(&key, ticks_request(from, to, granularity)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.ticks.len(), count);
        assert_eq!(
            as_rest(&answer.ticks),
            rest(q),
            "granularity {granularity:?}"
        );
        assert!(
            answer
                .ticks
                .iter()
                .any(|t| t.status == pb::FlowStatus::Outage as i32),
            "the quiet afternoon"
        );
    }

    // An invalid request names the field; what the HTTP API answers 404 is NOT_FOUND.
    for (kind, message) in [(0, "flow.kind: missing"), (7, "flow.kind: unknown value 7")] {
        let mut request = ticks_request(from, to, None);
        request.flow = Some(pb::FlowRef {
            kind,
            ..flow_a(pb::FlowKind::Input)
        });
        let (code, text) = failed(grpc.ticks(with_key(&key, request)).await);
        assert_eq!(code, Code::InvalidArgument);
        assert!(text.starts_with(message), "{text}");
    }
    let forward = pb::TicksRequest {
        flow: Some(flow_a(pb::FlowKind::Forward)),
        ..ticks_request(from, to, None)
    };
    let (code, text) = failed(grpc.ticks(with_key(&key, forward)).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        text.starts_with("flow.name: invalid forward name"),
        "{text}"
    );
    for (request, message) in [
        (ticks_request(from, to, Some("7m")), "granularity: "),
        (ticks_request("", to, None), "from: missing"),
        (ticks_request(from, "2017-02-31", None), "to: invalid date"),
        (ticks_request(to, from, None), "to: must be after from"),
    ] {
        let (code, text) = failed(grpc.ticks(with_key(&key, request)).await);
        assert_eq!(code, Code::InvalidArgument, "{text}");
        assert!(text.starts_with(message), "{text}");
    }
    let mut unknown = ticks_request(from, to, Some("30m"));
    unknown.flow.as_mut().unwrap().name = "NOPE".into();
    assert_eq!(
        failed(grpc.ticks(with_key(&key, unknown)).await).0,
        Code::NotFound
    );

    // Statuses: A's latest status and tick as stored; C configured, disabled, never evaluated.
    let latest_tick = || {
        let day = run.json("/api/v1/flows/CZ/GSM/input/A/ticks?from=2017-02-20&to=2017-02-21");
        day["ticks"].as_array().unwrap().last().cloned()
    };
    eventually("the tick before the clock is evaluated", async || {
        latest_tick().is_some_and(|t| t["tickEnd"] == utc_string(now - 1800))
    })
    .await;
    let latest = latest_tick().unwrap();
    let all = grpc
        .statuses(with_key(&key, pb::StatusesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .flows;
    let listed: Vec<Value> = all
        .iter()
        .map(|s| {
            let f = s.flow.as_ref().unwrap();
            json!([
                f.country,
                f.lob,
                f.kind,
                f.name,
                s.enabled,
                status_name(s.status),
                s.tick_start.map(utc_string)
            ])
        })
        .collect();
    let input = pb::FlowKind::Input as i32;
    assert_eq!(
        listed,
        [
            json!([
                "CZ",
                "GSM",
                input,
                "A",
                true,
                latest["status"],
                latest["tickStart"]
            ]),
            json!(["CZ", "GSM", input, "C", false, "N_A", null]),
        ]
    );
    // The dashboard reads the same.
    let cz = &run.json("/api/v1/dashboard")["countries"]["CZ"];
    assert_eq!(cz[latest["status"].as_str().unwrap()], 1, "{cz}");
    assert_eq!(cz["DISABLED"], 1, "{cz}");

    let filtered = |country: Option<&str>, lob: Option<&str>| {
        let request = pb::StatusesRequest {
            country: country.map(Into::into),
            lob: lob.map(Into::into),
        };
        let mut grpc = grpc.clone();
        let key = key.clone();
        async move { grpc.statuses(with_key(&key, request)).await }
    };
    let cz_gsm = filtered(Some("CZ"), Some("GSM")).await.unwrap();
    assert_eq!(cz_gsm.into_inner().flows, all);
    let de = filtered(Some("DE"), None).await.unwrap();
    assert_eq!(de.into_inner().flows, []);
    let sms = filtered(None, Some("SMS")).await.unwrap();
    assert_eq!(sms.into_inner().flows, []);
    let (code, text) = failed(filtered(Some(""), None).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(text.starts_with("country: empty"), "{text}");
    run.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_change_caused_by_an_ingest_arrives_on_the_watch_stream() {
    let dir = tempfile::tempdir().unwrap();
    // The clock stands 3 hours after the history ends: those hours were silent.
    let days = 15;
    let now = T0 + days * 86_400 + 3 * 3600;
    let run = Run::start(dir.path(), &["--start-time", &utc_string(now)]);
    let grpc = client(&run).await;
    let watch = |request: pb::WatchRequest| {
        let mut grpc = grpc.clone();
        let key = run.key.clone();
        async move {
            grpc.watch_status_changes(with_key(&key, request))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let mut outages = watch(pb::WatchRequest {
        country: Some("CZ".into()),
        lob: None,
        only_outages: true,
    })
    .await;
    let mut everything = watch(pb::WatchRequest::default()).await;
    let mut elsewhere = watch(pb::WatchRequest {
        country: Some("DE".into()),
        ..Default::default()
    })
    .await;

    // History, then silence: the flow goes down as soon as its actor catches up.
    let history = csv((0..days * 24 * 12).map(|i| (T0 + i * 300, "A".to_owned(), 1000)));
    assert_eq!(run.ingest(&history)["refused"], 0);
    let down = next(&mut outages).await.unwrap().expect("an outage");
    assert_eq!(down.new_status, pb::FlowStatus::Outage as i32);
    assert_eq!(down.flow, Some(flow_a(pb::FlowKind::Input)));
    assert_eq!(down.actual, 0);
    assert!(down.expected.unwrap() > 0.0);
    assert!(!down.revision);
    assert!(down.tick_time >= T0 + days * 86_400, "a silent tick");
    assert!((now..now + 60).contains(&down.time), "{}", down.time);
    // The unfiltered watch sees it too (after the warning, if there was one).
    loop {
        let change = next(&mut everything).await.unwrap().expect("a change");
        if change.new_status == pb::FlowStatus::Outage as i32 {
            assert_eq!(change, down);
            break;
        }
    }
    // It is the stored event.
    let events = run.json("/api/v1/events?onlyOutages=true")["events"].clone();
    assert_eq!(events[0]["id"], down.id.as_str());
    assert_eq!(events[0]["tickTime"], utc_string(down.tick_time));
    assert_eq!(
        events[0]["previousStatus"],
        status_name(down.previous_status)
    );
    // Nothing for another country.
    let quiet = tokio::time::timeout(Duration::from_millis(300), elsewhere.message()).await;
    assert!(quiet.is_err(), "no change in DE: {quiet:?}");

    // Stopping the server ends the open streams: the shutdown does not wait for them.
    let pid = run.child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(kill.unwrap().success());
    let end = next(&mut outages)
        .await
        .expect_err("the stream ends with an error");
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    run.terminate(); // a clean exit
}

fn chunk(format: pb::IngestFormat, data: &str) -> pb::IngestChunk {
    pb::IngestChunk {
        format: format.into(),
        data: data.as_bytes().to_vec(),
    }
}

/// Chunks as a request stream (the first names the format).
fn chunks(
    key: &str,
    format: pb::IngestFormat,
    pieces: &[&str],
) -> Request<impl futures_util::Stream<Item = pb::IngestChunk> + use<>> {
    let chunks: Vec<pb::IngestChunk> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let named = if i == 0 {
                format
            } else {
                pb::IngestFormat::Unspecified
            };
            chunk(named, p)
        })
        .collect();
    with_key(key, futures_util::stream::iter(chunks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_stream_numbers_lines_across_chunks_and_stores_each_chunk_first() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(dir.path(), &["--start-time", &utc_string(T0 + 86_400)]);
    let mut grpc = client(&run).await;
    let key = run.key.clone();
    let day_bytes = |flow: &str| {
        let t = run.json(&format!(
            "/api/v1/flows/CZ/GSM/input/{flow}/traffic?from=2017-02-06&to=2017-02-07&bucket=86400"
        ));
        t["traffic"][0]["bytes"].as_u64().unwrap_or(0)
    };

    // Lines 1 (header) to 8, cut inside the header, inside lines and between them; line 4
    // lacks a field and line 7 names an unknown country.
    let t = |m: i64| utc_string(T0 + m * 60);
    let text = format!(
        "{HEADER}{},CZ,GSM,input,A,10\n{},CZ,GSM,input,A,20\n{},CZ,GSM,input,A\n\
         {},CZ,GSM,input,A,40\n\n{},XX,GSM,input,A,60\n{},CZ,GSM,input,A,70",
        t(1),
        t(2),
        t(3),
        t(4),
        t(6),
        t(7)
    );
    let cuts = [20, 21, 60, 130, 131, text.len() - 5];
    let mut pieces = Vec::new();
    let mut at = 0;
    for cut in cuts {
        pieces.push(&text[at..cut]);
        at = cut;
    }
    pieces.push(&text[at..]);
    let reply = grpc
        .ingest(chunks(&key, pb::IngestFormat::Csv, &pieces))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reply.accepted, reply.refused), (4, 2), "{reply:?}");
    let lines: Vec<_> = reply.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(4), Some(7)], "{reply:?}");
    assert_eq!(reply.errors[0].message, "expected 6 fields, found 5");
    assert!(
        reply.errors[1].message.contains("unknown country"),
        "{reply:?}"
    );
    assert_eq!(day_bytes("A"), 10 + 20 + 40 + 70);

    // NDJSON, a record cut in two; a bad line keeps its number.
    let record = |m: i64, bytes: u64| {
        let r = json!({"time": t(m), "country": "CZ", "lob": "GSM", "kind": "input", "flow": "B",
                       "bytes": bytes});
        format!("{r}\n")
    };
    let ndjson = format!("{}not json\n{}", record(1, 5), record(2, 7));
    let (a, b) = ndjson.split_at(30);
    let reply = grpc
        .ingest(chunks(&key, pb::IngestFormat::Ndjson, &[a, b]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reply.accepted, reply.refused), (2, 1), "{reply:?}");
    assert_eq!(reply.errors[0].line, Some(2));
    assert_eq!(day_bytes("B"), 12);

    // Each chunk is stored before the next is read: the first chunk's records are there while
    // the stream is still open.
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::IngestChunk>(1);
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let call = {
        let mut grpc = grpc.clone();
        let request = with_key(&key, stream);
        tokio::spawn(async move { grpc.ingest(request).await })
    };
    let first = format!("{HEADER}{},CZ,GSM,input,C,100\n", t(1));
    tx.send(chunk(pb::IngestFormat::Csv, &first)).await.unwrap();
    eventually("the first chunk is stored", async || day_bytes("C") == 100).await;
    assert!(!call.is_finished());
    let second = format!("{},CZ,GSM,input,C,1\n", t(2));
    tx.send(chunk(pb::IngestFormat::Unspecified, &second))
        .await
        .unwrap();
    drop(tx);
    let reply = call.await.unwrap().unwrap().into_inner();
    assert_eq!((reply.accepted, reply.refused), (2, 0), "{reply:?}");
    assert_eq!(day_bytes("C"), 101);

    // A stream without its form, or whose CSV lacks the header, is refused naming why.
    let (code, text) = failed(
        grpc.ingest(chunks(&key, pb::IngestFormat::Unspecified, &["x\n"]))
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(text.starts_with("format: missing"), "{text}");
    let headless = format!("{},CZ,GSM,input,D,5\n", t(1));
    let (code, text) = failed(
        grpc.ingest(chunks(&key, pb::IngestFormat::Csv, &[&headless]))
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(text.starts_with("line 1: "), "{text}");
    assert!(
        text.ends_with("(nothing of the stream is stored)"),
        "{text}"
    );
    assert_eq!(day_bytes("D"), 0);
    // A failure in the middle says what is stored: the chunks before it.
    let good = format!("{HEADER}{},CZ,GSM,input,E,5\n", t(1));
    let bad = pb::IngestChunk {
        format: pb::IngestFormat::Unspecified.into(),
        data: b"\xff\n".to_vec(),
    };
    let stream = futures_util::stream::iter([chunk(pb::IngestFormat::Csv, &good), bad]);
    let (code, text) = failed(grpc.ingest(with_key(&key, stream)).await);
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(text, "data: line 3 is not UTF-8 (its lines 1–2 are stored)");
    assert_eq!(day_bytes("E"), 5);
    run.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_takes_the_same_keys_and_roles_as_the_http_api() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(dir.path(), &["--start-time", &utc_string(T0 + 86_400)]);
    let mut grpc = client(&run).await;
    let body = r#"{"name": "ops", "role": "readOnly", "password": "a long password"}"#;
    let (status, answer) = run.request("POST", "/api/v1/users", "application/json", body);
    assert_eq!(status, 201, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let read_only = answer["apiKey"].as_str().unwrap().to_owned();
    let record = format!("{HEADER}{},CZ,GSM,input,A,5\n", utc_string(T0));

    // No key, or one that is not known: UNAUTHENTICATED, whatever the call.
    for key in [None, Some("fw_not_a_key")] {
        let mut codes = vec![
            failed(
                grpc.statuses(maybe_with_key(key, pb::StatusesRequest::default()))
                    .await,
            )
            .0,
            failed(
                grpc.ticks(maybe_with_key(
                    key,
                    ticks_request("2017-02-06", "2017-02-07", None),
                ))
                .await,
            )
            .0,
            failed(
                grpc.watch_status_changes(maybe_with_key(key, pb::WatchRequest::default()))
                    .await,
            )
            .0,
        ];
        let ingest = futures_util::stream::iter([chunk(pb::IngestFormat::Csv, &record)]);
        codes.push(failed(grpc.ingest(maybe_with_key(key, ingest)).await).0);
        assert_eq!(codes, [Code::Unauthenticated; 4], "key {key:?}");
    }

    // A readOnly key reads, and may not ingest.
    assert!(
        grpc.statuses(with_key(&read_only, pb::StatusesRequest::default()))
            .await
            .is_ok()
    );
    let (code, text) = failed(
        grpc.ingest(chunks(&read_only, pb::IngestFormat::Csv, &[&record]))
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    assert_eq!(text, "Ingest needs the root role; ops is readOnly");
    assert_eq!(
        run.json("/api/v1/status")["components"]["ingest"]["records"],
        0
    );

    // The root key, in `authorization: Bearer`, may.
    let mut request = Request::new(futures_util::stream::iter([chunk(
        pb::IngestFormat::Csv,
        &record,
    )]));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", run.key).parse().unwrap(),
    );
    let reply = grpc.ingest(request).await.unwrap().into_inner();
    assert_eq!(reply.accepted, 1);

    // The HTTP API on the same address still answers unknown paths with its JSON 404.
    let (status, body) = run.request("GET", "/flowwatch.v1.Nothing/Call", "text/plain", "");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"code\":\"not_found\""), "{body}");
    run.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_also_listens_on_its_own_address() {
    let dir = tempfile::tempdir().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = free.local_addr().unwrap().to_string();
    drop(free);
    let run = Run::start(dir.path(), &["--grpc", &at]);
    // `run` has answered on --http: --grpc was bound before.
    let channel = Channel::from_shared(format!("http://{at}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = FlowWatchClient::new(channel);
    let reply = grpc
        .statuses(with_key(&run.key, pb::StatusesRequest::default()))
        .await
        .unwrap();
    assert!(reply.into_inner().flows.is_empty());
    let unauthenticated = grpc
        .statuses(Request::new(pb::StatusesRequest::default()))
        .await;
    assert_eq!(failed(unauthenticated).0, Code::Unauthenticated);
    run.terminate();
}
