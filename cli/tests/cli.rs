//! The command line as a user meets it: replay's file handling and errors, calendar, the
//! flags every server role shares (`--start-time`, `--partitions`).

use std::path::Path;
use std::process::{Command, Output};

fn flowwatch(args: &[&str]) -> Output {
    flowwatch_with(args, &[])
}

/// `flowwatch` with environment variables set.
fn flowwatch_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn replay_reports_bad_lines_and_takes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(
        dir.path(),
        "t.csv",
        "time,country,lob,kind,flow,bytes\n\
         2017-02-01T08:15:03Z,CZ,GSM,input,A,100\n\
         2017-02-01T08:15:03Z,CZ,GSM,input,A\n\
         not-a-time,CZ,GSM,input,A,5\n\
         2017-02-01T09:15:03Z,PL,GSM,input,A,5\n\
         \n\
         2017-02-01T09:15:03+01:00,CZ,GSM,forward,A:B,7\n",
    );
    let out = dir.path().join("ticks.csv");
    let o = flowwatch(&["replay", "--data", &data, "--out", out.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("t.csv:3: expected 6 fields, found 5"), "{err}");
    assert!(
        err.contains("t.csv:4: invalid time \"not-a-time\""),
        "{err}"
    );
    assert!(err.contains("t.csv:5: unknown country \"PL\""), "{err}");
    assert!(err.contains("took 2 records, refused 3 lines"), "{err}");
    let ticks = std::fs::read_to_string(out).unwrap();
    let lines: Vec<&str> = ticks.lines().collect();
    assert_eq!(lines[0], flowwatch_core::tick_csv::HEADER);
    // Two flows, one local day (default window), 24 hourly ticks each, all N_A.
    assert_eq!(lines.len(), 1 + 48);
    assert!(
        lines[1]
            .starts_with("CZ,GSM,forward,A:B,2017-01-31T23:00:00Z,2017-02-01T00:00:00Z,0,,,,,,N_A")
    );
    assert!(lines.iter().any(|l| l.starts_with("CZ,GSM,input,A,2017-02-01T08:00:00Z,2017-02-01T09:00:00Z,100,")));
}

#[test]
fn replay_accepts_seed_messages() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(
        dir.path(),
        "seed.ndjson",
        "{\"country\":\"CZ\",\"lobName\":\"GSM\",\"type\":\"inputs\",\"flowName\":\"A\",\"dataSize\":123,\"time\":\"01.02.2017 08:15:03\"}\n\
         {\"country\":\"CZ\",\"lobName\":\"GSM\",\"type\":\"input\",\"flowName\":\"A\",\"dataSize\":1,\"time\":\"01.02.2017 08:15:03\"}\n",
    );
    let o = flowwatch(&["replay", "--data", &data]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("seed.ndjson:2: invalid type \"input\""),
        "{err}"
    );
    // 08:15 local is 07:15Z.
    assert!(
        out.contains("CZ,GSM,input,A,2017-02-01T07:00:00Z,2017-02-01T08:00:00Z,123,"),
        "{out}"
    );
}

#[test]
fn replay_refuses_a_bad_config_or_header_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "t.csv", "time,country,lob,kind,flow,bytes\n");
    let config = write(
        dir.path(),
        "c.json",
        r#"{"countries":{"CZ":{"lobs":{"SMS":{"config":{"granularity":"7m"}}}}}}"#,
    );
    let o = flowwatch(&["replay", "--data", &data, "--config", &config]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("invalid granularity \"7m\" at countries.CZ.lobs.SMS.config.granularity: must divide one day"), "{err}");

    let bad = write(dir.path(), "h.csv", "when,country,lob,kind,flow,bytes\n");
    let o = flowwatch(&["replay", "--data", &bad]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("h.csv:1: invalid header \"when,country,lob,kind,flow,bytes\"")
    );

    let o = flowwatch(&["replay", "--data", &data, "--from", "2017-02-30"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("invalid --from \"2017-02-30\""));

    let o = flowwatch(&["replay", "--data", "/nonexistent/x.csv"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("cannot read traffic /nonexistent/x.csv"));
}

#[test]
fn replay_flags_come_from_the_environment_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(
        dir.path(),
        "t.csv",
        "time,country,lob,kind,flow,bytes\n2017-02-01T08:15:03Z,CZ,GSM,input,A,100\n",
    );
    let o = flowwatch_with(
        &["replay"],
        &[
            ("FLOWWATCH_REPLAY__DATA", &data),
            ("FLOWWATCH_REPLAY__FROM", "2017-02-01"),
            ("FLOWWATCH_REPLAY__TO", "2017-02-03"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).lines().count(),
        1 + 48,
        "two days of hourly ticks"
    );
}

#[test]
fn calendar_prints_holidays_for_the_document() {
    let o = flowwatch(&["calendar", "CZ", "2017"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let holidays = v["holidays"].as_array().unwrap();
    assert_eq!(holidays.len(), 13);
    assert_eq!(holidays[0], "2017-01-01");
    assert_eq!(v["names"]["2017-04-14"], "Good Friday");
    let o = flowwatch(&["calendar", "PL", "2017"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr)
            .contains("no built-in holidays for country \"PL\": known are AT, CZ, DE, NL")
    );
}

#[test]
fn line_numbers_stay_exact_across_parallel_blocks() {
    // ~12 MiB: several 4 MiB blocks on several threads; CRLF endings, no final newline.
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("time,country,lob,kind,flow,bytes\r\n");
    let bad = [2u64, 70_001, 140_003, 210_000];
    for n in 2..=210_000u64 {
        if bad.contains(&n) {
            csv.push_str(&format!("broken line {n}\r\n"));
        } else {
            csv.push_str(&format!(
                "2017-02-01T{:02}:{:02}:00Z,CZ,GSM,input,FLOW{},10\r\n",
                n % 24,
                n % 60,
                n % 7
            ));
        }
    }
    csv.truncate(csv.len() - 2);
    let data = write(dir.path(), "big.csv", &csv);
    let o = flowwatch(&["replay", "--data", &data, "--out", "/dev/null"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    for n in bad {
        assert!(
            err.contains(&format!("big.csv:{n}: expected 6 fields, found 1")),
            "line {n}: {err}"
        );
    }
    assert!(
        err.contains(&format!(
            "took {} records, refused 4 lines",
            210_000 - 1 - 4
        )),
        "{err}"
    );
}

#[test]
fn the_readme_sample_replays_with_every_status() {
    // The README's run command, on the sample shipped in deploy/sample.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let sample = root.join("deploy/sample");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ticks.csv");
    let o = flowwatch(&[
        "replay",
        "--data",
        sample.join("traffic.csv").to_str().unwrap(),
        "--config",
        sample.join("config.json").to_str().unwrap(),
        "--from",
        "2017-03-20",
        "--to",
        "2017-04-03",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("refused 0 lines"), "{err}");
    let ticks = std::fs::read_to_string(out).unwrap();
    for status in [",OK\n", ",WARNING\n", ",OUTAGE\n"] {
        assert!(ticks.contains(status), "the sample shows {status}");
    }
    // The spring gap (2017-03-26, 02:00–03:00 local) has no ticks: that local day runs from
    // 2017-03-25T23:00Z to 2017-03-26T22:00Z, and the AT DATA input (15-minute ticks) has 92.
    let on_gap_day = ticks
        .lines()
        .filter(|l| l.starts_with("AT,DATA,input,"))
        .map(|l| l.split(',').nth(4).unwrap())
        .filter(|start| ("2017-03-25T23:00:00Z".."2017-03-26T22:00:00Z").contains(start))
        .count();
    assert_eq!(on_gap_day, 92);
}

#[test]
fn settings_file_sits_under_environment_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "s.toml",
        "[run]\nhttp = \"127.0.0.1:9\"\nalarm_window = 60\ndata-dir = \"/from/file\"\n",
    );
    let o = flowwatch_with(
        &[
            "--settings",
            &file,
            "run",
            "--alarm-window",
            "5",
            "--dump-config",
        ],
        &[("FLOWWATCH_RUN__DATA_DIR", "/from/env")],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let effective: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(effective["http"], "127.0.0.1:9", "from the file");
    assert_eq!(effective["data_dir"], "/from/env", "the environment wins");
    assert_eq!(effective["alarm_window"], 5, "the flag wins");

    let bad = write(dir.path(), "bad.toml", "[run]\nport = 1\n");
    let o = flowwatch(&["--settings", &bad, "run", "--dump-config"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("unknown setting port in [run] of settings"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn the_example_settings_file_is_valid() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/config/flowwatch.toml"
    );
    let o = flowwatch_with(
        &["run", "--dump-config"],
        &[("FLOWWATCH_SETTINGS", example)],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let effective: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(effective["alarm_window"], 86400);
}

#[test]
fn the_gateways_coordinators_come_comma_separated_from_the_flag_or_the_environment() {
    let gateway = [
        "gateway",
        "--storage",
        "postgres://x/y",
        "--nats-url",
        "nats://x",
    ];
    let effective = |extra: &[&str], env: &[(&str, &str)]| {
        let o = flowwatch_with(&[&gateway[..], extra, &["--dump-config"]].concat(), env);
        assert!(o.status.success(), "{}", text(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["coordinator"].clone()
    };
    let (a, b) = ("http://c1:7070", "https://c2:7070");
    assert_eq!(effective(&[], &[]), serde_json::json!([]), "optional");
    let env = format!("{a},{b}");
    let env = [("FLOWWATCH_GATEWAY__COORDINATOR", env.as_str())];
    assert_eq!(effective(&[], &env), serde_json::json!([a, b]));
    assert_eq!(
        effective(&["--coordinator", a], &env),
        serde_json::json!([a]),
        "the flag wins"
    );
    assert_eq!(
        effective(&["--coordinator", &format!("{b},{a}")], &[]),
        serde_json::json!([b, a])
    );
    let o = flowwatch(&[&gateway[..], &["--coordinator", "c1:7070", "--dump-config"]].concat());
    assert!(!o.status.success());
    let said = text(&o.stderr);
    assert!(
        said.contains("'c1:7070'")
            && said.contains("--coordinator")
            && said.contains("expected http://host:port"),
        "{said}"
    );
}

/// The required flags of each server role, for `--dump-config`.
const ROLES: [&[&str]; 4] = [
    &["run"],
    &[
        "gateway",
        "--storage",
        "postgres://x/y",
        "--nats-url",
        "nats://x",
    ],
    &["coordinator", "--nats-url", "nats://x"],
    &[
        "worker",
        "--storage",
        "postgres://x/y",
        "--nats-url",
        "nats://x",
        "--coordinator",
        "http://c1:7070",
    ],
];

/// `flowwatch <role> <extra> --dump-config` with `env`: the effective settings, or the error.
fn dump_config(
    role: &[&str],
    extra: &[&str],
    env: &[(&str, &str)],
) -> Result<serde_json::Value, String> {
    let o = flowwatch_with(&[role, extra, &["--dump-config"]].concat(), env);
    match o.status.success() {
        true => Ok(serde_json::from_slice(&o.stdout).unwrap()),
        false => Err(text(&o.stderr)),
    }
}

#[test]
fn every_role_takes_start_time() {
    // SPEC §7: "--start-time shifts the system clock …; every role accepts it".
    for role in ROLES {
        let start = |extra: &[&str], env: &[(&str, &str)]| {
            dump_config(role, extra, env).unwrap_or_else(|e| panic!("{role:?}: {e}"))["start_time"]
                .clone()
        };
        let flag = ["--start-time", "2017-02-06T11:00:00+01:00"];
        assert_eq!(start(&flag, &[]), "2017-02-06T10:00:00Z", "{role:?}");
        let env = format!("FLOWWATCH_{}__START_TIME", role[0].to_uppercase());
        assert_eq!(
            start(&[], &[(&env, "2017-02-06T10:00:00Z")]),
            "2017-02-06T10:00:00Z",
            "{role:?} from {env}"
        );
        assert_eq!(start(&[], &[]), serde_json::Value::Null, "{role:?}");
        let refused = dump_config(role, &["--start-time", "yesterday"], &[]).unwrap_err();
        assert!(
            refused.contains("--start-time") && refused.contains("invalid time \"yesterday\""),
            "{role:?}: {refused}"
        );
    }
}

#[test]
fn the_coordinator_says_the_shifted_clock_it_started_with() {
    // The coordinator's decisions use elapsed time only; it says the clock it started with.
    // No NATS server is needed to get that far (the connection is retried in the background).
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .args(["coordinator", "--nats-url", "nats://127.0.0.1:1"])
        .args([
            "--grpc",
            "127.0.0.1:0",
            "--start-time",
            "2017-02-06T10:00:00Z",
        ])
        .env("RUST_LOG", "flowwatch=info")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let said = std::io::BufRead::lines(stderr)
        .map_while(Result::ok)
        .find(|l| l.contains("coordinator http://"));
    let _ = child.kill();
    let _ = child.wait();
    let said = said.expect("the coordinator's start line");
    assert!(said.contains("2017-02-06T10:00:0"), "{said}");
}

#[test]
fn partitions_is_one_flag_with_each_roles_environment() {
    for role in [ROLES[1], ROLES[2]] {
        let partitions = |extra: &[&str], env: &[(&str, &str)]| {
            dump_config(role, extra, env).map(|v| v["partitions"].clone())
        };
        assert_eq!(partitions(&[], &[]), Ok(8.into()), "{role:?}: the default");
        let env = format!("FLOWWATCH_{}__PARTITIONS", role[0].to_uppercase());
        assert_eq!(partitions(&[], &[(&env, "16")]), Ok(16.into()), "{role:?}");
        assert_eq!(
            partitions(&["--partitions", "4096"], &[(&env, "16")]),
            Ok(4096.into()),
            "{role:?}: the flag wins"
        );
        for out_of_range in ["0", "4097"] {
            let refused = partitions(&["--partitions", out_of_range], &[]).unwrap_err();
            assert!(refused.contains("not in 1..=4096"), "{role:?}: {refused}");
        }
    }
}

/// Per flow, the OUTAGE runs in a tick CSV (the flows one after the other, as replay writes).
fn outage_episodes(ticks: &str) -> u64 {
    let mut episodes = 0;
    let mut last: Option<(String, bool)> = None;
    for line in ticks.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let flow = fields[..4].join(",");
        let outage = fields[12] == "OUTAGE";
        let continues = last.as_ref().is_some_and(|(f, o)| *f == flow && *o);
        episodes += u64::from(outage && !continues);
        last = Some((flow, outage));
    }
    episodes
}

#[test]
fn replay_compares_a_candidate_with_the_current_configuration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let sample = root.join("deploy/sample");
    let (data, config) = (sample.join("traffic.csv"), sample.join("config.json"));
    let dir = tempfile::tempdir().unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    doc["defaults"]["detector"] = "adaptive".into();
    let candidate = write(dir.path(), "candidate.json", &doc.to_string());
    let replay = |config: &str, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "replay",
            "--data",
            data.to_str().unwrap(),
            "--config",
            config,
        ];
        args.extend_from_slice(&["--from", "2017-03-20", "--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        flowwatch(&args)
    };
    let (current_out, candidate_out, compared_out) = (
        dir.path().join("current.csv"),
        dir.path().join("candidate.csv"),
        dir.path().join("compared.csv"),
    );
    assert!(
        replay(config.to_str().unwrap(), &current_out, &[])
            .status
            .success()
    );
    assert!(replay(&candidate, &candidate_out, &[]).status.success());
    let o = replay(
        config.to_str().unwrap(),
        &compared_out,
        &["--compare", &candidate],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    // `--out` holds the candidate's ticks, with the adaptive detector's columns.
    let compared = std::fs::read_to_string(&compared_out).unwrap();
    assert_eq!(compared, std::fs::read_to_string(&candidate_out).unwrap());
    assert!(
        compared.starts_with(&format!(
            "{},lower,outage_below,evidence,spread\n",
            flowwatch_core::tick_csv::HEADER
        )),
        "{}",
        &compared[..200]
    );
    let current = std::fs::read_to_string(&current_out).unwrap();
    assert!(current.starts_with(&format!("{}\n", flowwatch_core::tick_csv::HEADER)));
    // The summary counts what each configuration's ticks show.
    let summary = text(&o.stdout);
    let (a, b) = (outage_episodes(&current), outage_episodes(&compared));
    assert_ne!(a, b, "the sample's configurations differ");
    assert!(
        summary.contains(&format!("| OUTAGE episodes | {a} | {b} |")),
        "{summary}"
    );
    assert!(
        summary.contains("flows whose counts differ most"),
        "{summary}"
    );
    // The summary takes standard output: the ticks need a file.
    let o = flowwatch(&[
        "replay",
        "--data",
        data.to_str().unwrap(),
        "--compare",
        &candidate,
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("give --out a file"),
        "{}",
        text(&o.stderr)
    );
    // A bad candidate is named, and nothing is written.
    doc["defaults"]["detector"] = "magic".into();
    let bad = write(dir.path(), "bad.json", &doc.to_string());
    let nothing = dir.path().join("nothing.csv");
    let o = replay(config.to_str().unwrap(), &nothing, &["--compare", &bad]);
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("bad.json") && err.contains("defaults.detector"),
        "{err}"
    );
    assert!(!nothing.exists());
}

#[test]
fn run_and_worker_take_ops_email_with_its_password_hidden_and_refuse_a_bad_one() {
    // SPEC §12: `flowwatch run`/`worker` take `--ops-email smtp://host:port/ops@example.com`.
    let url = "smtp://ops:s3cret@mail:587/ops@example.com?starttls=required";
    for role in [ROLES[0], ROLES[3]] {
        let effective = dump_config(role, &["--ops-email", url], &[])
            .unwrap_or_else(|e| panic!("{role:?}: {e}"));
        assert_eq!(
            effective["ops_email"], "smtp://ops:***@mail:587/ops@example.com?starttls=required",
            "{role:?}"
        );
        let refused = dump_config(role, &["--ops-email", "smtp://mail:25"], &[]).unwrap_err();
        assert!(
            refused.contains("--ops-email") && refused.contains("no recipient"),
            "{role:?}: {refused}"
        );
    }
    for role in [ROLES[1], ROLES[2]] {
        let refused = dump_config(role, &["--ops-email", url], &[]).unwrap_err();
        assert!(
            refused.contains("unexpected argument"),
            "{role:?}: {refused}"
        );
    }
}
