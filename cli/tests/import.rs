//! `flowwatch import` against a running `flowwatch run`, over real HTTP: a file in several
//! parts with bad lines (every good record stored once, every bad line named by its line in the
//! file), NDJSON and the environment, resuming with `--from-line`, and the keys the server
//! refuses.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::Run;
use serde_json::{Value, json};

const START: &[&str] = &["--start-time", "2017-03-02T00:00:00Z"];

fn import(file: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .arg("import")
        .arg(file)
        .args(args)
        .env_remove("FLOWWATCH_API_KEY")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `(records, bytes)` stored for `CZ/GSM/input/{flow}` on 1 March 2017.
fn stored(run: &Run, flow: &str) -> (u64, u64) {
    let answer = run.json(&format!(
        "/api/v1/flows/CZ/GSM/input/{flow}/traffic?from=2017-03-01&to=2017-03-02&bucket=86400"
    ));
    answer["traffic"]
        .as_array()
        .unwrap()
        .iter()
        .fold((0, 0), |(r, b), t| {
            (
                r + t["records"].as_u64().unwrap(),
                b + t["bytes"].as_u64().unwrap(),
            )
        })
}

/// A traffic CSV: 30 lines after the header, flow A, bytes = line number, with bad lines at 4,
/// 11, 19 (refused by the server), 23 (not UTF-8: refused by the import), a blank line at 15.
/// Its good lines and their bytes.
fn traffic(dir: &Path) -> (std::path::PathBuf, Vec<u64>) {
    let mut file = b"time,country,lob,kind,flow,bytes\n".to_vec();
    let mut good = Vec::new();
    for line in 2..=31u64 {
        let minute = line % 60;
        let row = match line {
            4 => format!("2017-03-01T10:{minute:02}:00Z,CZ,GSM,input,A"),
            11 => format!("yesterday,CZ,GSM,input,A,{line}"),
            19 => format!("2017-03-01T10:{minute:02}:00Z,PL,GSM,input,A,{line}"),
            15 => String::new(),
            23 => {
                file.extend_from_slice(b"2017-03-01T10:23:00Z,CZ,GSM,input,\xff,23\n");
                continue;
            }
            _ => {
                good.push(line);
                format!("2017-03-01T10:{minute:02}:00Z,CZ,GSM,input,A,{line}")
            }
        };
        file.extend_from_slice(row.as_bytes());
        if line < 31 {
            file.push(b'\n'); // the last line has no end of line
        }
    }
    let path = dir.join("traffic.csv");
    std::fs::write(&path, file).unwrap();
    (path, good)
}

#[test]
fn a_file_in_parts_is_stored_once_and_its_bad_lines_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(&dir.path().join("data"), START);
    let (file, good) = traffic(dir.path());
    let url = format!("http://{}", run.addr);
    let o = import(
        &file,
        &["--url", &url, "--api-key", &run.key, "--batch-lines", "4"],
        &[],
    );
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{out}{err}");
    // 30 lines in parts of 4: 8 requests; every bad line named by its line in the file, also
    // where it was line 2 or 4 of its request's body.
    assert!(
        out.contains("traffic.csv: accepted 25 records, refused 4 (8 requests"),
        "{out}"
    );
    let name = file.display();
    for expected in [
        format!("{name}:4: expected 6 fields, found 5"),
        format!("{name}:11: invalid time \"yesterday\""),
        format!("{name}:19: unknown country \"PL\""),
        format!("{name}:23: not UTF-8 (byte 35 of the line)"),
    ] {
        assert!(err.contains(&expected), "{expected} in {err}");
    }
    assert_eq!(err.matches(&format!("{name}:")).count(), 4, "{err}");
    // Every good record stored, none twice.
    assert_eq!(good.len(), 25);
    assert_eq!(stored(&run, "A"), (25, good.iter().sum()));
    let status = run.json("/api/v1/status");
    assert_eq!(status["components"]["ingest"]["records"], 25);
}

#[test]
fn ndjson_with_settings_from_the_environment_and_a_resumed_import() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(&dir.path().join("data"), START);
    // Canonical records and seed messages (local time: CET), one bad line (3).
    let lines = [
        json!({"time": "2017-03-01T10:00:00Z", "country": "CZ", "lob": "GSM", "kind": "input",
               "flow": "N", "bytes": 1})
        .to_string(),
        json!({"country": "CZ", "lobName": "GSM", "type": "inputs", "flowName": "N",
               "dataSize": 2, "time": "01.03.2017 11:01:00"})
        .to_string(),
        r#"{"country": "CZ"}"#.to_owned(),
        json!({"time": "2017-03-01T10:02:00Z", "country": "CZ", "lob": "GSM", "kind": "input",
               "flow": "N", "bytes": 4})
        .to_string(),
        json!({"time": "2017-03-01T10:03:00Z", "country": "CZ", "lob": "GSM", "kind": "input",
               "flow": "N", "bytes": 8})
        .to_string(),
    ];
    let file = dir.path().join("seed.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let url = format!("http://{}", run.addr);
    let env = [
        ("FLOWWATCH_IMPORT__URL", url.as_str()),
        ("FLOWWATCH_API_KEY", run.key.as_str()),
        ("FLOWWATCH_IMPORT__BATCH_LINES", "2"),
        ("FLOWWATCH_IMPORT__FROM_LINE", "2"),
    ];
    let o = import(&file, &[], &env);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("accepted 3 records, refused 1 (2 requests"),
        "{out}"
    );
    assert!(err.contains(&format!("{}:3: ", file.display())), "{err}");
    // Line 1 was left out: 2 + 4 + 8.
    assert_eq!(stored(&run, "N"), (3, 14));
}

#[test]
fn keys_the_server_refuses_stop_the_import_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(&dir.path().join("data"), START);
    let (file, _) = traffic(dir.path());
    let url = format!("http://{}", run.addr);

    let o = import(&file, &["--url", &url, "--api-key", "not-a-key"], &[]);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("stopped at line 2: the server answered 401: unknown or revoked API key"),
        "{err}"
    );
    assert!(err.contains("resume with --from-line 2"), "{err}");
    assert!(text(&o.stdout).contains("accepted 0 records"));

    let (status, answer) = run.request(
        "POST",
        "/api/v1/users",
        "application/json",
        r#"{"name": "viewer", "role": "readOnly"}"#,
    );
    assert_eq!(status, 201, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let read_only = answer["apiKey"].as_str().unwrap();
    let o = import(
        &file,
        &["--url", &url, "--api-key", read_only, "--from-line", "12"],
        &[],
    );
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(
            "stopped at line 12: the server answered 403: POST /api/v1/ingest needs the root role"
        ),
        "{err}"
    );
    assert_eq!(stored(&run, "A"), (0, 0), "nothing stored");
}
