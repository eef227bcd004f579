//! `flowwatch replay --data traffic.csv --config config.json --from D --to D --out ticks.csv`.
//!
//! Streams the traffic file (CSV, or NDJSON of seed messages) in line-aligned blocks parsed on
//! every core, reports each refused line with its number and reason, then evaluates the flows
//! with `flowwatch_core::replay` on every core and writes the tick CSV in flow order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{Context, Result, bail};
use flowwatch_core::FlowId;
use flowwatch_core::compare::{self, Episodes, Tally};
use flowwatch_core::config::{Config, parse_date};
use flowwatch_core::record::{CSV_HEADER, SeedMessage, check_csv_header};
use flowwatch_core::replay::{FlowReplay, Replay, Window};
use flowwatch_core::tick_csv::{self, RowWriter};
use flowwatch_core::time::epoch_day;

/// Refused lines printed one by one before only counting the rest.
const SHOWN_REFUSALS: usize = 100;

/// Bytes read per block handed to a parsing thread.
const BLOCK_BYTES: usize = 4 << 20;

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
    /// A candidate configuration document: replays under it as well, writes its ticks to
    /// `--out` (a file) and, on standard output, what each configuration raised (OUTAGE and
    /// WARNING episodes, status changes; in total and for the 20 flows that differ most).
    #[arg(long, env = "FLOWWATCH_REPLAY__COMPARE")]
    compare: Option<PathBuf>,
}

/// Flows listed in a comparison.
const COMPARED_FLOWS: usize = 20;

/// Runs the replay.
pub fn run(args: &Args) -> Result<()> {
    let config = match &args.config {
        Some(path) => read_config(path)?,
        None => Config::default(),
    };
    let candidate = args.compare.as_deref().map(read_config).transpose()?;
    if candidate.is_some() && args.out.as_os_str() == "-" {
        bail!("--compare writes its summary on standard output: give --out a file for the ticks");
    }
    let window = Window {
        from: date_flag("--from", &args.from)?,
        to: date_flag("--to", &args.to)?,
    };
    if let (Some(from), Some(to)) = (window.from, window.to)
        && from >= to
    {
        bail!("--from must be before --to");
    }
    let Some(candidate) = candidate else {
        let flows = read_flows(&args.data, &config)?;
        let band = config.document().names_adaptive();
        if args.out.as_os_str() == "-" {
            write_ticks(flows, window, band, std::io::stdout().lock())
        } else {
            write_ticks(flows, window, band, create(&args.out)?)
        }
        .with_context(|| format!("cannot write {}", args.out.display()))?;
        return Ok(());
    };
    // Both replays are read in full before anything is written: a bad line or document
    // leaves no half-written output.
    let current_flows = read_flows(&args.data, &config)?;
    let candidate_flows = read_flows(&args.data, &candidate)?;
    let current = write_ticks(current_flows, window, false, std::io::sink())
        .context("cannot replay under --config")?;
    let band = candidate.document().names_adaptive();
    let candidates = write_ticks(candidate_flows, window, band, create(&args.out)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let comparison = compare::compare(&current, &candidates, COMPARED_FLOWS);
    print!("{}", compare::render(&comparison));
    Ok(())
}

fn read_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    Config::from_json(&text).with_context(|| format!("invalid config {}", path.display()))
}

fn create(path: &Path) -> Result<File> {
    File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

/// The flows of the traffic file under `config`, after telling how many lines were taken.
fn read_flows<'c>(data: &Path, config: &'c Config) -> Result<Vec<FlowReplay<'c>>> {
    let (replay, counts) = read_traffic(data, config)?;
    eprintln!(
        "flowwatch replay: {}: took {} records, refused {} lines",
        data.display(),
        counts.taken,
        counts.refused
    );
    Ok(replay.into_flows())
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

/// Lines taken and refused, with the first refusals' line numbers and reasons.
#[derive(Debug, Default)]
struct Counts {
    taken: u64,
    refused: u64,
    first_refusals: Vec<(u64, String)>,
}

impl Counts {
    fn refuse(&mut self, line: u64, why: String) {
        self.refused += 1;
        if self.first_refusals.len() < SHOWN_REFUSALS {
            self.first_refusals.push((line, why));
        }
    }

    fn merge(&mut self, other: Counts) {
        self.taken += other.taken;
        self.refused += other.refused;
        self.first_refusals.extend(other.first_refusals);
        self.first_refusals.sort_by_key(|r| r.0);
        self.first_refusals.truncate(SHOWN_REFUSALS);
    }

    fn report(&self, path: &Path) {
        for (line, why) in &self.first_refusals {
            eprintln!("{}:{line}: {why}", path.display());
        }
        if self.refused as usize > self.first_refusals.len() {
            let more = self.refused as usize - self.first_refusals.len();
            eprintln!("{}: {more} more refused lines not shown", path.display());
        }
    }
}

/// Parses the lines of `text`, numbered from `first`, into `replay`.
fn parse_lines(
    text: &[u8],
    first: u64,
    seed: bool,
    config: &Config,
    replay: &mut Replay<'_>,
    counts: &mut Counts,
) {
    for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
        let number = first + n as u64;
        let line = match std::str::from_utf8(raw) {
            Ok(s) => s,
            Err(e) => {
                counts.refuse(
                    number,
                    format!("not UTF-8 (byte {} of the line)", e.valid_up_to() + 1),
                );
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let taken = if seed {
            SeedMessage::parse(line)
                .and_then(|m| m.to_record(config))
                .and_then(|r| replay.add_record(r))
        } else {
            replay.add_csv_line(line)
        };
        match taken {
            Ok(()) => counts.taken += 1,
            Err(why) => counts.refuse(number, why.to_string()),
        }
    }
}

fn read_traffic<'c>(path: &Path, config: &'c Config) -> Result<(Replay<'c>, Counts)> {
    let file =
        File::open(path).with_context(|| format!("cannot read traffic {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut first = Vec::new();
    reader
        .read_until(b'\n', &mut first)
        .with_context(|| format!("cannot read traffic {}", path.display()))?;
    if first.is_empty() {
        bail!(
            "{}: empty file: expected the header \"{CSV_HEADER}\"",
            path.display()
        );
    }
    let first_text = String::from_utf8_lossy(&first);
    let first_text = first_text.strip_suffix('\n').unwrap_or(&first_text);
    // NDJSON of seed messages has no header: its first line is data.
    let seed = first_text.trim_start_matches('\u{feff}').starts_with('{');
    let mut next_line = 2;
    if !seed {
        check_csv_header(first_text).map_err(|e| anyhow::anyhow!("{}:1: {e}", path.display()))?;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..threads {
            let (tx, rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(2);
            senders.push(tx);
            workers.push(scope.spawn(move || {
                let mut replay = Replay::new(config);
                let mut counts = Counts::default();
                for (first, block) in rx {
                    parse_lines(&block, first, seed, config, &mut replay, &mut counts);
                }
                (replay, counts)
            }));
        }
        let mut pending = if seed { first } else { Vec::new() };
        if seed {
            next_line = 1;
        }
        let mut k = 0;
        let read = (|| -> std::io::Result<()> {
            loop {
                let mut block = std::mem::take(&mut pending);
                let have = block.len();
                block.resize(have + BLOCK_BYTES, 0);
                let n = reader.read(&mut block[have..])?;
                block.truncate(have + n);
                if n == 0 {
                    if !block.is_empty() {
                        senders[k % threads]
                            .send((next_line, block))
                            .expect("parser alive");
                    }
                    return Ok(());
                }
                // Hand over whole lines; keep the partial last line for the next block.
                if let Some(cut) = block.iter().rposition(|&b| b == b'\n') {
                    pending = block[cut + 1..].to_vec();
                    block.truncate(cut);
                    let lines = 1 + block.iter().filter(|&&b| b == b'\n').count() as u64;
                    senders[k % threads]
                        .send((next_line, block))
                        .expect("parser alive");
                    next_line += lines;
                    k += 1;
                } else {
                    pending = block;
                }
            }
        })();
        drop(senders);
        let mut merged: Option<(Replay<'c>, Counts)> = None;
        for w in workers {
            let (replay, counts) = w.join().expect("a parser thread does not panic");
            match &mut merged {
                None => merged = Some((replay, counts)),
                Some((r, c)) => {
                    r.merge(replay);
                    c.merge(counts);
                }
            }
        }
        read.with_context(|| format!("cannot read traffic {}", path.display()))?;
        let (replay, counts) = merged.expect("at least one parser");
        counts.report(path);
        Ok((replay, counts))
    })
}

/// Evaluates flows on every core in batches and writes their rows in flow order.
/// One flow's rows, its episodes and how many ticks it had.
type Rows = (String, Tally, u64);

/// With `band`, rows carry the adaptive detector's columns (`tick_csv::BAND_COLUMNS`).
/// Returns the episodes of every flow with a tick.
fn write_ticks(
    flows: Vec<FlowReplay<'_>>,
    window: Window,
    band: bool,
    out: impl Write,
) -> std::io::Result<BTreeMap<FlowId, Episodes>> {
    let mut episodes = BTreeMap::new();
    let mut out = BufWriter::with_capacity(1 << 20, out);
    out.write_all(tick_csv::header(band).as_bytes())?;
    out.write_all(b"\n")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut flows = flows.into_iter().peekable();
    while flows.peek().is_some() {
        let batch: Vec<FlowReplay<'_>> = flows.by_ref().take(threads * 4).collect();
        let ids: Vec<FlowId> = batch.iter().map(|f| f.id.clone()).collect();
        let mut texts = vec![Rows::default(); batch.len()];
        std::thread::scope(|scope| {
            let mut lanes: Vec<Vec<(FlowReplay<'_>, &mut Rows)>> =
                (0..threads).map(|_| Vec::new()).collect();
            for (i, pair) in batch.into_iter().zip(texts.iter_mut()).enumerate() {
                lanes[i % threads].push(pair);
            }
            for lane in lanes {
                scope.spawn(move || {
                    for (flow, (text, tally, ticks)) in lane {
                        let writer = RowWriter::with_band(&flow.id, band);
                        flow.run(window, |start, end, e| {
                            writer.write(text, start, end, e);
                            tally.push(e.status);
                            *ticks += 1;
                        });
                    }
                });
            }
        });
        for (id, (text, tally, ticks)) in ids.into_iter().zip(&texts) {
            out.write_all(text.as_bytes())?;
            if *ticks > 0 {
                episodes.insert(id, tally.episodes());
            }
        }
    }
    out.flush()?;
    Ok(episodes)
}
