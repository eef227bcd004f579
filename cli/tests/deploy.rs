//! The deployment files, which no machine of the project can run (no Docker engine, no
//! Kubernetes): `deploy/compose.yaml`, `deploy/k8s/*.yaml` and `deploy/Dockerfile`. Each parses
//! (PyYAML, as the replay agreement test's `python3` has it), names what Compose or Kubernetes
//! needs, and every `flowwatch` command in them is taken by this binary as written (with
//! `--dump-config`, which parses every flag and value and exits); the gateways ask the
//! coordinators the workers heartbeat to.
//!
//! Every storage URI they, the `--help` texts, the README and `docs/` advertise is one the
//! store opens, or one whose server (not running here) it fails to connect to, naming it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use flowwatch_storage::testsuite::{TestDatabase, postgres_admin_uri};
use flowwatch_storage::{BACKENDS, Error, Location};
use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every YAML document of `file`, as JSON.
fn documents(file: &Path) -> Vec<Value> {
    let script = "import sys, json, yaml\n\
                  json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{} does not parse: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `flowwatch <args> --dump-config` (Kubernetes' `$(VAR)` references filled in): the
/// effective settings, or a failure naming the file and the command.
fn takes(file: &str, args: &[Value], env: &[(&str, &str)]) -> Value {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.as_str().unwrap().replace("$(POD_NAME)", "pod-0"))
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .args(&args)
        .arg("--dump-config")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{file}: flowwatch {args:?} is refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The `host:port`s of a storage URI, read from its text (not by the parser under test).
fn servers(uri: &str) -> Vec<String> {
    let rest = uri.split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What `--storage URI` does, done here: the parser `flowwatch_storage::open` uses takes it
/// (never an invalid URI); then an embedded store opens (in a temporary directory instead of
/// its own), a database on this machine's PostgreSQL opens (a fresh database on it), and a
/// server no machine of the project runs (ScyllaDB, a name that does not resolve) fails to
/// connect, naming its `host:port`. `place` says where the URI was found.
async fn opens_or_fails_to_connect(place: String, uri: String) {
    let location = flowwatch_storage::parse(&uri)
        .unwrap_or_else(|e| panic!("{place}: {uri} does not parse: {e}"));
    let servers = servers(&uri);
    match location {
        Location::Embedded(_) => {
            let dir = tempfile::tempdir().unwrap();
            Location::Embedded(dir.path().to_owned())
                .open()
                .await
                .unwrap_or_else(|e| panic!("{place}: {uri}: {e}"));
        }
        Location::Postgres(_) if servers == self::servers(&postgres_admin_uri()) => {
            let db = TestDatabase::new();
            flowwatch_storage::open(&db.uri())
                .await
                .unwrap_or_else(|e| panic!("{place}: {uri} (as {}): {e}", db.uri()));
        }
        location => match location.open().await {
            Ok(_) => panic!("{place}: {uri} opened: no such server runs here"),
            Err(e @ Error::Connect { .. }) => {
                let text = e.to_string();
                assert!(
                    servers.iter().all(|s| text.contains(s.as_str())),
                    "{place}: {uri}: the error names {servers:?}: {text}"
                );
            }
            Err(e) => panic!("{place}: {uri}: not a connection error: {e}"),
        },
    }
}

/// Checks every `(place, uri)` at once ([`opens_or_fails_to_connect`]).
fn check_storage(uris: Vec<(String, String)>) {
    assert!(!uris.is_empty());
    let checks = async {
        let each = uris
            .into_iter()
            .map(|(place, uri)| tokio::spawn(opens_or_fails_to_connect(place, uri)));
        futures_util::future::join_all(each).await
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for check in runtime.block_on(checks) {
        check.unwrap();
    }
}

/// The storage URIs in `text`: every `scheme://…` of a scheme `flowwatch_storage` knows, up
/// to a space, a quote or a closing bracket, without a sentence's last punctuation.
fn storage_uris(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for scheme in BACKENDS.iter().flat_map(|b| b.schemes) {
        let marker = format!("{scheme}://");
        for (at, _) in text.match_indices(&marker) {
            if text[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            {
                continue; // the tail of another scheme's name
            }
            let uri: String = text[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"\"'`)]}<>".contains(*c))
                .collect();
            found.push(uri.trim_end_matches(['.', ',', ';', ':']).to_owned());
        }
    }
    found
}

/// The `--storage` a `flowwatch` command's effective settings (`--dump-config`) use.
fn storage_of(place: &str, settings: &Value) -> Option<(String, String)> {
    let uri = settings["storage"].as_str()?;
    Some((place.to_owned(), uri.to_owned()))
}

/// The `--coordinator` lists of the workers and the gateways of one deployment.
#[derive(Default)]
struct Coordinators(Vec<(String, Value)>);

impl Coordinators {
    /// Keeps the coordinators in `settings` (`--dump-config`) of a worker or a gateway.
    fn take(&mut self, role: &str, settings: &Value) {
        if role == "worker" || role == "gateway" {
            self.0
                .push((role.to_owned(), settings["coordinator"].clone()));
        }
    }

    /// Every gateway asks the coordinators every worker heartbeats to (for the cluster view).
    fn check(&self, file: &str) {
        let (first_role, first) = &self.0[0];
        assert!(
            first.as_array().is_some_and(|a| !a.is_empty()),
            "{file}: a {first_role} without --coordinator"
        );
        for (role, list) in &self.0 {
            assert_eq!(list, first, "{file}: a {role}'s --coordinator");
        }
        assert!(self.0.iter().any(|(r, _)| r == "gateway"), "{file}");
    }
}

#[test]
fn the_compose_file_runs_every_role_with_flags_flowwatch_takes() {
    let file = deploy().join("compose.yaml");
    let docs = documents(&file);
    let services = docs[0]["services"].as_object().expect("services");
    let mut storage = Vec::new();
    let mut roles = Vec::new();
    let mut coordinators = Coordinators::default();
    for (name, service) in services {
        let image = service["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no image"));
        if !image.starts_with("flowwatch:") {
            continue;
        }
        let command = service["command"].as_array().unwrap();
        let settings = takes("compose.yaml", command, &[]);
        storage.extend(storage_of(&format!("compose.yaml: {name}"), &settings));
        roles.push(command[0].as_str().unwrap().to_owned());
        coordinators.take(&roles[roles.len() - 1], &settings);
        for dep in service["depends_on"].as_array().unwrap() {
            assert!(
                services.contains_key(dep.as_str().unwrap()),
                "{name}: {dep}"
            );
        }
    }
    roles.sort();
    roles.dedup();
    assert_eq!(roles, ["coordinator", "gateway", "worker"]);
    assert!(services.contains_key("scylla") && services.contains_key("nats"));
    coordinators.check("compose.yaml");
    check_storage(storage);
}

#[test]
fn the_kubernetes_manifests_are_whole_and_their_commands_are_taken() {
    let mut storage = Vec::new();
    let mut roles = Vec::new();
    let mut coordinators = Coordinators::default();
    let dir = deploy().join("k8s");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let docs = documents(&path);
        let mut selectors = Vec::new();
        let mut labels = Vec::new();
        for doc in &docs {
            let kind = doc["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no kind"));
            assert!(
                doc["apiVersion"].is_string(),
                "{name}: {kind} has no apiVersion"
            );
            let object = doc["metadata"]["name"].as_str();
            let object = object.unwrap_or_else(|| panic!("{name}: a {kind} has no name"));
            match kind {
                "Service" => selectors.push((object, doc["spec"]["selector"].clone())),
                "StatefulSet" | "Deployment" => {
                    let template = &doc["spec"]["template"];
                    let own = &template["metadata"]["labels"];
                    for (k, v) in doc["spec"]["selector"]["matchLabels"].as_object().unwrap() {
                        assert_eq!(&own[k], v, "{name}: {object} selects what it makes");
                    }
                    labels.push(own.clone());
                    for c in template["spec"]["containers"].as_array().unwrap() {
                        if c["image"].as_str().unwrap().starts_with("flowwatch:") {
                            let args = c["args"].as_array().unwrap();
                            let settings = takes(&name, args, &[]);
                            storage.extend(storage_of(&format!("{name}: {object}"), &settings));
                            roles.push(args[0].as_str().unwrap().to_owned());
                            coordinators.take(&roles[roles.len() - 1], &settings);
                        }
                    }
                }
                other => panic!("{name}: unexpected kind {other}"),
            }
        }
        for (service, selector) in selectors {
            let selector = selector.as_object().unwrap();
            let found = labels
                .iter()
                .any(|l| selector.iter().all(|(k, v)| &l[k] == v));
            assert!(found, "{name}: service {service} selects no pods");
        }
    }
    roles.sort();
    roles.dedup();
    assert_eq!(roles, ["coordinator", "gateway", "worker"]);
    coordinators.check("k8s/");
    check_storage(storage);
}

/// Every storage URI the `--help` texts, the README, `docs/` and the deployment files show
/// (each of every backend's schemes among them) opens or fails to connect to its server.
#[test]
fn every_advertised_storage_uri_opens_or_names_the_server_it_cannot_reach() {
    let mut texts: Vec<(String, String)> = Vec::new();
    for role in ["run", "coordinator", "worker", "gateway"] {
        let out = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
            .args([role, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{role} --help");
        texts.push((
            format!("flowwatch {role} --help"),
            String::from_utf8(out.stdout).unwrap(),
        ));
    }
    let root = deploy().join("..");
    let mut files = vec![root.join("README.md")];
    for (dir, ext) in [
        ("docs", "md"),
        ("docs/adr", "md"),
        ("deploy", "yaml"),
        ("deploy/k8s", "yaml"),
        ("deploy/config", "toml"),
        ("deploy/local", "sh"),
    ] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == ext) {
                files.push(path);
            }
        }
    }
    for path in files {
        let place = path.strip_prefix(&root).unwrap().display().to_string();
        texts.push((place, std::fs::read_to_string(&path).unwrap()));
    }
    let mut seen = BTreeSet::new();
    let mut uris = Vec::new();
    for (place, text) in &texts {
        for uri in storage_uris(text) {
            if seen.insert(uri.clone()) {
                uris.push((place.clone(), uri));
            }
        }
    }
    for scheme in ["embedded", "postgres", "scylla"] {
        assert!(
            uris.iter()
                .any(|(_, u)| u.starts_with(&format!("{scheme}://"))),
            "no {scheme}:// URI advertised: {uris:?}"
        );
    }
    for place in [
        "flowwatch worker --help",
        "flowwatch gateway --help",
        "README.md",
    ] {
        assert!(
            uris.iter().any(|(p, _)| p == place),
            "none in {place}: {uris:?}"
        );
    }
    check_storage(uris);
}

#[test]
fn storage_uris_are_found_whole_in_text() {
    assert_eq!(
        storage_uris(
            "a (`postgres://u@h:5432/db`), pg=${PGURL:-postgres://r@h:1}\n\"scylla://a:1,b:2/ks?rf=3\", \
             a postgresql://h/x. and embedded:///var/x; not mypostgres://x"
        ),
        [
            "embedded:///var/x",
            "postgres://u@h:5432/db",
            "postgres://r@h:1",
            "postgresql://h/x",
            "scylla://a:1,b:2/ks?rf=3",
        ]
    );
    assert_eq!(servers("scylla://a:1,b:2/ks?rf=3"), ["a:1", "b:2"]);
    assert_eq!(servers("postgres://u:p@h:5/db"), ["h:5"]);
    assert_eq!(servers("postgres://u@h:5"), ["h:5"]);
}

#[test]
fn the_images_web_ui_setting_is_one_the_gateway_reads() {
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let line = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ENV "))
        .expect("an ENV line");
    let (key, value) = line.split_once('=').unwrap();
    let settings = takes(
        "Dockerfile",
        &[
            "gateway",
            "--storage",
            "postgres://x/y",
            "--nats-url",
            "nats://x",
        ]
        .map(Value::from),
        &[(key, value)],
    );
    assert_eq!(settings["ui_dir"], value);
}

#[test]
fn the_local_cluster_script_starts_a_cluster_that_settles() {
    let db = flowwatch_storage::testsuite::TestDatabase::new();
    let uri = db.uri();
    let pg = uri.rsplit_once('/').unwrap().0;
    let base = flowwatch_worker::testkit::free_port().min(60_000);
    let out = Command::new(deploy().join("local/cluster.sh"))
        .arg("--smoke")
        .env("FLOWWATCH_BIN", env!("CARGO_BIN_EXE_flowwatch"))
        .env("LOCAL_CLUSTER_PORT", base.to_string())
        .env("LOCAL_CLUSTER_DB", db.name())
        .env("PGURL", pg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for worker in ["w1", "w2", "w3"] {
        assert!(stdout.contains(&format!("\n{worker} ")), "{stdout}");
    }
    assert!(stdout.contains("leader c"), "{stdout}");
    // The gateway shows the same cluster (`--coordinator`, GET /api/v1/cluster).
    assert!(
        stdout.contains("the gateway's cluster view: leader c") && stdout.contains(": w1 w2 w3\n"),
        "{stdout}"
    );
}
