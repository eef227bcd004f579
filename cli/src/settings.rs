//! The settings file: every flag of a subcommand can also come from a TOML file, one table per
//! subcommand (`[run]`, `[replay]`, …), keys named as the flags (`data_dir` or `data-dir`).
//! Layered: built-in defaults → the file → `FLOWWATCH_<ROLE>__<KEY>` environment → flags.
//!
//! The file's values are turned into flags placed before the command line's own, so clap
//! checks them exactly as it checks flags; a value the environment or the command line also
//! sets is left out. An unknown table or key is an error that names the file and the key.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The global flag (and environment variable) that names the settings file.
const FLAG: &str = "--settings";
const ENV: &str = "FLOWWATCH_SETTINGS";

/// The command line with the settings file's values of its subcommand added.
pub fn layer(command: &clap::Command, args: Vec<OsString>) -> Result<Vec<OsString>> {
    let (file, args) = take_file(args)?;
    let Some(file) = file.or_else(|| std::env::var_os(ENV).map(PathBuf::from)) else {
        return Ok(args);
    };
    // The subcommand: the first argument after the program's name (global flags come first).
    let Some(role) = args.get(1).and_then(|a| a.to_str()).map(str::to_owned) else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read settings {}", file.display()))?;
    let flags = flags(command, &role, &file, &text, &args[2..], |name| {
        std::env::var_os(name).is_some()
    })?;
    let mut out = args;
    out.splice(2..2, flags);
    Ok(out)
}

/// Removes `--settings FILE` / `--settings=FILE` given before the subcommand.
fn take_file(mut args: Vec<OsString>) -> Result<(Option<PathBuf>, Vec<OsString>)> {
    let Some(at) = args.get(1).and_then(|a| a.to_str()).map(str::to_owned) else {
        return Ok((None, args));
    };
    if at == FLAG {
        if args.len() < 3 {
            bail!("{FLAG} needs a file");
        }
        let file = args.remove(2);
        args.remove(1);
        return Ok((Some(file.into()), args));
    }
    if let Some(file) = at.strip_prefix(FLAG).and_then(|a| a.strip_prefix('=')) {
        args.remove(1);
        return Ok((Some(file.into()), args));
    }
    Ok((None, args))
}

/// The flags the file's table `[role]` adds to `given` (the subcommand's own arguments).
fn flags(
    command: &clap::Command,
    role: &str,
    file: &Path,
    text: &str,
    given: &[OsString],
    env_set: impl Fn(&str) -> bool,
) -> Result<Vec<OsString>> {
    let where_ = file.display();
    let doc: toml::Table =
        toml::from_str(text).with_context(|| format!("invalid settings {where_}"))?;
    let roles: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
    for table in doc.keys() {
        if !roles.contains(&table.as_str()) {
            bail!(
                "unknown table [{table}] in settings {where_}: expected one of {}",
                roles.join(", ")
            );
        }
    }
    let (Some(sub), Some(toml::Value::Table(table))) =
        (command.find_subcommand(role), doc.get(role))
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        let Some(arg) = sub
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()))
        else {
            bail!("unknown setting {key} in [{role}] of settings {where_}");
        };
        let flag = format!("--{name}");
        let on_command_line = given.iter().any(|a| {
            a.to_str()
                .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
        });
        let env = arg.get_env().and_then(|e| e.to_str()).is_some_and(&env_set);
        if on_command_line || env {
            continue;
        }
        match value {
            toml::Value::Boolean(true) => out.push(flag.into()),
            toml::Value::Boolean(false) => {}
            toml::Value::String(s) => out.extend([flag.into(), s.into()]),
            toml::Value::Integer(i) => out.extend([flag.into(), i.to_string().into()]),
            toml::Value::Float(f) => out.extend([flag.into(), f.to_string().into()]),
            other => bail!(
                "setting {key} in [{role}] of settings {where_}: expected a string, number or \
                 boolean, found {}",
                other.type_str()
            ),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        clap::Command::new("flowwatch").subcommand(
            clap::Command::new("run")
                .arg(
                    clap::Arg::new("http")
                        .long("http")
                        .env("FLOWWATCH_RUN__HTTP"),
                )
                .arg(clap::Arg::new("data_dir").long("data-dir"))
                .arg(
                    clap::Arg::new("demo")
                        .long("demo")
                        .action(clap::ArgAction::SetTrue),
                )
                .arg(clap::Arg::new("alarm_window").long("alarm-window")),
        )
    }

    fn strings(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn the_file_fills_what_neither_environment_nor_flags_set() {
        let text =
            "[run]\nhttp = \"0.0.0.0:1\"\ndata_dir = \"/d\"\ndemo = true\nalarm-window = 60\n";
        let file = Path::new("f.toml");
        let none: &[OsString] = &[];
        let all = flags(&command(), "run", file, text, none, |_| false).unwrap();
        assert_eq!(
            strings(all),
            [
                "--alarm-window",
                "60",
                "--data-dir",
                "/d",
                "--demo",
                "--http",
                "0.0.0.0:1"
            ]
        );
        // A flag on the command line, or its environment variable, wins over the file.
        let given = [OsString::from("--data-dir=/x")];
        let some = flags(&command(), "run", file, text, &given, |e| {
            e == "FLOWWATCH_RUN__HTTP"
        })
        .unwrap();
        assert_eq!(strings(some), ["--alarm-window", "60", "--demo"]);
    }

    #[test]
    fn unknown_tables_keys_and_values_name_the_file() {
        let file = Path::new("f.toml");
        let err = |text: &str| {
            format!(
                "{:#}",
                flags(&command(), "run", file, text, &[], |_| false).unwrap_err()
            )
        };
        assert!(err("[rum]\n").contains("unknown table [rum] in settings f.toml"));
        assert_eq!(
            err("[run]\nhtp = 1\n"),
            "unknown setting htp in [run] of settings f.toml"
        );
        assert!(err("[run]\nhttp = [1]\n").contains("found array"));
        assert!(err("[run\n").starts_with("invalid settings f.toml"));
    }

    #[test]
    fn settings_flag_is_taken_before_the_subcommand() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let (file, rest) =
            take_file(args(&["fw", "--settings", "s.toml", "run", "--demo"])).unwrap();
        assert_eq!(file, Some(PathBuf::from("s.toml")));
        assert_eq!(strings(rest), ["fw", "run", "--demo"]);
        let (file, rest) = take_file(args(&["fw", "--settings=s.toml", "run"])).unwrap();
        assert_eq!(file, Some(PathBuf::from("s.toml")));
        assert_eq!(strings(rest), ["fw", "run"]);
        let (file, _) = take_file(args(&["fw", "run", "--settings", "s.toml"])).unwrap();
        assert_eq!(
            file, None,
            "after the subcommand it is the subcommand's flag"
        );
        assert!(take_file(args(&["fw", "--settings"])).is_err());
    }
}
