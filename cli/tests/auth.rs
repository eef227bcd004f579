//! The first root user's password of a fresh `flowwatch run`, printed once on standard error.
//! (Who may call what, users, keys and logins are tested in this process: `gateway/tests/api`.)

mod common;

use std::process::{Command, Stdio};

use common::Run;

#[test]
fn the_first_root_password_is_random_and_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let (child, _) = Run::spawn(dir.path(), &[], None, Stdio::piped());
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stderr).unwrap()
    };
    let first = start();
    let password = first
        .lines()
        .find_map(|l| l.strip_prefix("flowwatch: created user \"root\" with password "))
        .unwrap_or_else(|| panic!("no password in {first}"))
        .to_owned();
    assert!(password.len() >= 16, "{password}");
    let second = start();
    assert!(!second.contains("created user"), "{second}");
    assert!(!second.contains(&password));
    // It is the root user's password.
    let run = Run::start_as_root(dir.path(), &[], &password);
    assert!(run.key.starts_with("fw_"));
    run.terminate();
}
