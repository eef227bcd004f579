//! `flowwatch replay --data traffic.csv --config config.json --from D --to D --out ticks.csv`.
//!
//! Streams the traffic file (CSV, or NDJSON of seed messages), reporting each refused line with
//! its number and reason, then evaluates the flows with `flowwatch_core::replay` on all cores and
//! writes the tick CSV in flow order.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flowwatch_core::config::{Config, parse_date};
use flowwatch_core::record::{SeedMessage, check_csv_header, parse_csv_line};
use flowwatch_core::replay::{FlowReplay, Replay, Window};
use flowwatch_core::tick_csv;
use flowwatch_core::time::epoch_day;

/// Refused lines printed one by one before only counting the rest.
const SHOWN_REFUSALS: usize = 100;

/// Flags of `flowwatch replay`.
#[derive(clap::Args)]
pub struct Args {
    /// Traffic CSV (`time,country,lob,kind,flow,bytes`), or NDJSON of seed messages.
    #[arg(long, env = "FLOWWATCH_REPLAY__DATA")]
    data: PathBuf,
    /// The configuration document (JSON); built-in defaults when left out.
    #[arg(long, env = "FLOWWATCH_REPLAY__CONFIG")]
    config: Option<PathBuf>,
    /// First local date reported (YYYY-MM-DD); default: each flow's first day.
    #[arg(long, env = "FLOWWATCH_REPLAY__FROM")]
    from: Option<String>,
    /// First local date not reported (YYYY-MM-DD); default: the day after the latest record.
    #[arg(long, env = "FLOWWATCH_REPLAY__TO")]
    to: Option<String>,
    /// Where to write the tick CSV; `-` for standard output.
    #[arg(long, env = "FLOWWATCH_REPLAY__OUT", default_value = "-")]
    out: PathBuf,
}

/// Runs the replay.
pub fn run(args: &Args) -> Result<()> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            Config::from_json(&text)
                .with_context(|| format!("invalid config {}", path.display()))?
        }
        None => Config::default(),
    };
    let window = Window {
        from: date_flag("--from", &args.from)?,
        to: date_flag("--to", &args.to)?,
    };
    if let (Some(from), Some(to)) = (window.from, window.to)
        && from >= to
    {
        bail!("--from must be before --to");
    }
    let mut replay = Replay::new(&config);
    let counts = read_traffic(&args.data, &config, &mut replay)?;
    eprintln!(
        "flowwatch replay: {}: took {} records, refused {} lines",
        args.data.display(),
        counts.taken,
        counts.refused
    );
    let flows = replay.into_flows();
    if args.out.as_os_str() == "-" {
        write_ticks(flows, window, std::io::stdout().lock())
    } else {
        let file = File::create(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        write_ticks(flows, window, file)?;
        Ok(())
    }
    .with_context(|| format!("cannot write {}", args.out.display()))
}

fn date_flag(flag: &str, value: &Option<String>) -> Result<Option<i32>> {
    value
        .as_deref()
        .map(|v| match parse_date(v) {
            Some(d) => Ok(epoch_day(d)),
            None => bail!("invalid {flag} \"{v}\": expected a date as YYYY-MM-DD"),
        })
        .transpose()
}

/// Lines taken and refused.
#[derive(Debug, Default)]
struct Counts {
    taken: u64,
    refused: u64,
}

impl Counts {
    fn refuse(&mut self, path: &Path, line: u64, why: &str) {
        self.refused += 1;
        if self.refused as usize <= SHOWN_REFUSALS {
            eprintln!("{}:{line}: {why}", path.display());
        } else if self.refused as usize == SHOWN_REFUSALS + 1 {
            eprintln!(
                "{}: more refused lines follow; only their count is reported",
                path.display()
            );
        }
    }
}

fn read_traffic(path: &Path, config: &Config, replay: &mut Replay<'_>) -> Result<Counts> {
    let file =
        File::open(path).with_context(|| format!("cannot read traffic {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    let mut counts = Counts::default();
    let mut number = 0u64;
    let mut seed_messages = false;
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        if reader
            .read_until(b'\n', &mut bytes)
            .context("cannot read traffic")?
            == 0
        {
            break;
        }
        number += 1;
        line.clear();
        match std::str::from_utf8(&bytes) {
            Ok(s) => line.push_str(s.strip_suffix('\n').unwrap_or(s)),
            Err(e) => {
                counts.refuse(
                    path,
                    number,
                    &format!("not UTF-8 (byte {})", e.valid_up_to()),
                );
                continue;
            }
        }
        if number == 1 {
            let start = line.trim_start_matches('\u{feff}');
            if start.starts_with('{') {
                seed_messages = true;
            } else {
                check_csv_header(&line)
                    .map_err(|e| anyhow::anyhow!("{}:1: {e}", path.display()))?;
                continue;
            }
        }
        if line.trim().is_empty() {
            continue;
        }
        let taken = if seed_messages {
            SeedMessage::parse(&line)
                .and_then(|m| m.to_record(config))
                .and_then(|r| replay.add_record(&r))
        } else {
            parse_csv_line(&line).and_then(|r| replay.add(&r))
        };
        match taken {
            Ok(()) => counts.taken += 1,
            Err(why) => counts.refuse(path, number, &why),
        }
    }
    if number == 0 {
        bail!(
            "{}: empty file: expected the header \"{}\"",
            path.display(),
            flowwatch_core::record::CSV_HEADER
        );
    }
    Ok(counts)
}

/// Evaluates flows on every core in batches and writes their rows in flow order.
fn write_ticks(flows: Vec<FlowReplay<'_>>, window: Window, out: impl Write) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, out);
    out.write_all(tick_csv::HEADER.as_bytes())?;
    out.write_all(b"\n")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut flows = flows.into_iter().peekable();
    while flows.peek().is_some() {
        let batch: Vec<FlowReplay<'_>> = flows.by_ref().take(threads * 4).collect();
        let mut texts = vec![String::new(); batch.len()];
        std::thread::scope(|scope| {
            let mut lanes: Vec<Vec<(FlowReplay<'_>, &mut String)>> =
                (0..threads).map(|_| Vec::new()).collect();
            for (i, pair) in batch.into_iter().zip(texts.iter_mut()).enumerate() {
                lanes[i % threads].push(pair);
            }
            for lane in lanes {
                scope.spawn(move || {
                    for (flow, text) in lane {
                        let id = flow.id.clone();
                        flow.run(window, |start, end, e| {
                            tick_csv::write_row(text, &id, start, end, e)
                        });
                    }
                });
            }
        });
        for text in &texts {
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush()
}
