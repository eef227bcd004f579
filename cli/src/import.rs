//! `flowwatch import FILE [--url URL] [--api-key KEY]` (SPEC §7): streams a traffic file into a
//! running flowwatch through `POST /api/v1/ingest`, in parts, so memory stays bounded whatever
//! the file's size.
//!
//! - **Formats.** The traffic CSV with its header (SPEC §6), or NDJSON: one canonical record
//!   (`{"time", "country", "lob", "kind", "flow", "bytes"}`) or seed message a line. NDJSON is
//!   recognised by the extension `.ndjson` or `.jsonl`, or, for any extension but `.csv`, by a
//!   first line starting with `{`; everything else is CSV, its header checked here. A JSON
//!   array is not streamed (one message a line is: `jq -c '.[]'`). `-` reads standard input.
//! - **Parts.** At most `--batch-lines` lines (and about [`PART_BYTES`]) a request, whole
//!   lines, the CSV header repeated on each. A line that cannot be sent (not UTF-8, longer than
//!   [`MAX_LINE`]) is refused here and sent blank, so the server's line numbers still count the
//!   part's lines; the server's refusals are mapped back to FILE's line numbers (one it ties
//!   to no line, such as records of a flow the worker refused, is shown with the part's lines,
//!   `FILE:FIRST-LAST: message`).
//! - **Delivery.** Parts go one after the other on one keep-alive connection; the server
//!   answers a part once its records are stored. A part the server answered 503 (nothing
//!   stored) or that never reached it whole is sent again, a few times, with a backoff; a part
//!   the server answered, or may have received, is never sent again.
//! - **Exit status.** 0 once every part is answered, refused lines included (each printed as
//!   `FILE:LINE: message` on standard error, the first [`SHOWN_REFUSALS`]; the final counts on
//!   standard output). Non-zero when the import stops: the file cannot be read, the server
//!   refuses a whole request (401, 403, 413, 5xx, …; its message is printed) or does not
//!   answer, or Ctrl-C (once the part in flight is answered). The message names the line to
//!   resume from with `--from-line`.
//! - **Progress** goes to standard error: a bar redrawn in place on a terminal, otherwise a
//!   line every [`PLAIN_EVERY`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use flowwatch_core::record::{CSV_HEADER, check_csv_header};
use flowwatch_gateway::client::{self, Connection};
use serde::Deserialize;

/// Lines per request unless `--batch-lines` says otherwise.
const BATCH_LINES: u64 = 50_000;

/// A part is cut once its body holds this many bytes (whatever `--batch-lines` says): well
/// under the server's default `--max-body` of 256 MiB.
const PART_BYTES: usize = 8 << 20;

/// A longer line is refused here without being sent (a traffic line is under 200 bytes).
const MAX_LINE: usize = 1 << 20;

/// Refused lines printed one by one; the rest are counted.
const SHOWN_REFUSALS: usize = 100;

/// Without a terminal, a progress line this often.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// How often a part is sent again after a 503 or a failed send, and the first pause (doubled
/// each time).
const RETRIES: u32 = 5;
const BACKOFF: Duration = Duration::from_millis(500);

/// `flowwatch import` flags (each also `FLOWWATCH_IMPORT__<FLAG>`; the key `FLOWWATCH_API_KEY`).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The traffic file: CSV with its header, or NDJSON of records or seed messages (`.ndjson`,
    /// `.jsonl`, or a first line starting with `{`); `-` for standard input.
    #[arg(env = "FLOWWATCH_IMPORT__FILE", value_name = "FILE")]
    file: PathBuf,
    /// The running flowwatch (`http://host:port`).
    #[arg(
        long,
        env = "FLOWWATCH_IMPORT__URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// An API key of a root user (`POST /api/v1/login` issues one).
    #[arg(long, env = "FLOWWATCH_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Lines per request (the CSV header is repeated on each).
    #[arg(long, env = "FLOWWATCH_IMPORT__BATCH_LINES", default_value_t = BATCH_LINES,
          value_parser = clap::value_parser!(u64).range(1..))]
    batch_lines: u64,
    /// Start at this line of FILE (a CSV's header is still read from line 1): to resume an
    /// import that stopped, at the line it named.
    #[arg(long, env = "FLOWWATCH_IMPORT__FROM_LINE", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    from_line: u64,
}

/// The form of the file, and so of each request's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// The form of `path` whose first bytes are `head`.
    fn detect(path: &Path, head: &[u8]) -> Result<Format, String> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("ndjson" | "jsonl") => return Ok(Format::Ndjson),
            Some("csv") => return Ok(Format::Csv),
            _ => {}
        }
        let head = head.strip_prefix(BOM).unwrap_or(head);
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Ok(Format::Ndjson),
            Some(b'[') => Err(
                "a JSON array is not imported: put one record or seed message a line \
                 (NDJSON), e.g. jq -c '.[]'"
                    .to_owned(),
            ),
            _ => Ok(Format::Csv),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Ndjson => "application/x-ndjson",
        }
    }
}

const BOM: &[u8] = "\u{feff}".as_bytes();

/// One request's lines.
#[derive(Debug)]
struct Part {
    /// The request body: the CSV header (if CSV), then the lines, each ended by `\n`.
    body: Vec<u8>,
    /// Lines of the body before the first of FILE's (1 for the CSV header).
    header: u64,
    /// FILE's line number of the body's first line after the header.
    first_line: u64,
    /// FILE's lines in the body.
    lines: u64,
    /// Lines refused here (sent blank): FILE's line number and why.
    refused: Vec<(u64, String)>,
    /// Where in FILE (bytes) the part starts and ends.
    start: u64,
    end: u64,
}

impl Part {
    /// FILE's line number of the body's line `n` (from 1, as the server counts them), if it is
    /// one of FILE's lines.
    fn file_line(&self, n: u64) -> Option<u64> {
        let i = n.checked_sub(self.header + 1)?;
        (i < self.lines).then(|| self.first_line + i)
    }

    /// FILE's last line in the part.
    fn last_line(&self) -> u64 {
        self.first_line + self.lines.saturating_sub(1)
    }
}

/// Cuts a file into parts.
struct Splitter<R> {
    reader: R,
    format: Format,
    /// FILE's line number of the next line read.
    next_line: u64,
    /// Bytes of FILE read.
    offset: u64,
    batch_lines: u64,
    part_bytes: usize,
    max_line: usize,
    line: Vec<u8>,
}

impl<R: BufRead> Splitter<R> {
    /// Reads what precedes the first line sent: the format (from `path`'s extension, else the
    /// first bytes), a CSV's header (checked), the lines before `from_line`.
    fn new(mut reader: R, path: &Path, batch_lines: u64, from_line: u64) -> Result<Splitter<R>> {
        let name = path.display();
        let head = reader
            .fill_buf()
            .with_context(|| format!("cannot read {name}"))?;
        let format = Format::detect(path, head).map_err(|e| anyhow!("{name}: {e}"))?;
        let mut s = Splitter {
            reader,
            format,
            next_line: 1,
            offset: 0,
            batch_lines,
            part_bytes: PART_BYTES,
            max_line: MAX_LINE,
            line: Vec::new(),
        };
        if format == Format::Csv {
            let (n, whole) = s
                .read_line(MAX_LINE)
                .with_context(|| format!("cannot read {name}"))?;
            if n == 0 {
                bail!("{name}: empty file: expected the header \"{CSV_HEADER}\"");
            }
            if !whole {
                bail!("{name}:1: expected the header \"{CSV_HEADER}\"");
            }
            check_csv_header(&String::from_utf8_lossy(&s.line))
                .map_err(|e| anyhow!("{name}:1: {e}"))?;
        } else if s
            .reader
            .fill_buf()
            .with_context(|| format!("cannot read {name}"))?
            .starts_with(BOM)
        {
            s.reader.consume(BOM.len());
            s.offset += BOM.len() as u64;
        }
        while s.next_line < from_line {
            let (n, _) = s
                .read_line(0)
                .with_context(|| format!("cannot read {name}"))?;
            if n == 0 {
                bail!(
                    "--from-line {from_line}: {name} has {} lines",
                    s.next_line - 1
                );
            }
        }
        Ok(s)
    }

    /// Reads the next line (without its `\n`) into `self.line`, keeping at most `cap` bytes:
    /// the bytes consumed (0 at the end of the file) and whether the line was kept whole.
    fn read_line(&mut self, cap: usize) -> io::Result<(u64, bool)> {
        self.line.clear();
        let (mut consumed, mut whole) = (0, true);
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                break;
            }
            let (content, used, end) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], i + 1, true),
                None => (buf, buf.len(), false),
            };
            let room = cap.saturating_sub(self.line.len());
            if content.len() > room {
                whole = false;
            }
            self.line
                .extend_from_slice(&content[..content.len().min(room)]);
            self.reader.consume(used);
            consumed += used as u64;
            if end {
                break;
            }
        }
        if consumed > 0 {
            self.offset += consumed;
            self.next_line += 1;
        }
        Ok((consumed, whole))
    }

    /// The next part; `None` at the end of the file.
    fn next_part(&mut self) -> io::Result<Option<Part>> {
        let mut part = Part {
            body: Vec::new(),
            header: 0,
            first_line: self.next_line,
            lines: 0,
            refused: Vec::new(),
            start: self.offset,
            end: self.offset,
        };
        if self.format == Format::Csv {
            part.body.extend_from_slice(CSV_HEADER.as_bytes());
            part.body.push(b'\n');
            part.header = 1;
        }
        while part.lines < self.batch_lines && part.body.len() < self.part_bytes {
            let number = self.next_line;
            let (n, whole) = self.read_line(self.max_line)?;
            if n == 0 {
                break;
            }
            part.lines += 1;
            let refused = if !whole {
                Some(format!("longer than {} bytes", self.max_line))
            } else {
                std::str::from_utf8(&self.line)
                    .err()
                    .map(|e| format!("not UTF-8 (byte {} of the line)", e.valid_up_to() + 1))
            };
            match refused {
                Some(why) => part.refused.push((number, why)),
                None => part.body.extend_from_slice(&self.line),
            }
            part.body.push(b'\n');
        }
        part.end = self.offset;
        Ok((part.lines > 0).then_some(part))
    }
}

/// The server's answer to a part (SPEC §9).
#[derive(Debug, Deserialize)]
struct Answer {
    accepted: u64,
    refused: u64,
    #[serde(default)]
    errors: Vec<AnswerError>,
}

#[derive(Debug, Deserialize)]
struct AnswerError {
    line: Option<u64>,
    message: String,
}

/// Why a part was not delivered.
#[derive(Debug)]
enum Stop {
    /// The server refused the part whole (its status and message): nothing of it is stored.
    Refused(u16, String),
    /// The part never reached the server: nothing of it is stored.
    NotSent(String),
    /// The part was sent but not answered: it may have been stored.
    Unknown(String),
    /// The server stored the part, but its answer is not understood.
    Unread(String),
}

/// Sends parts to `POST /api/v1/ingest` on one keep-alive connection.
struct Sender {
    authority: String,
    key: String,
    content_type: &'static str,
    connection: Option<Connection>,
    backoff: Duration,
}

impl Sender {
    /// Sends `body` until it is answered: again after a 503 or a failed send, never after a
    /// send that may have reached the server.
    async fn send(&mut self, body: &[u8]) -> Result<Answer, Stop> {
        let mut attempt = 0;
        loop {
            let retry = attempt < RETRIES;
            let pause = self.backoff * 2u32.pow(attempt);
            attempt += 1;
            let connection = match &mut self.connection {
                Some(c) => c,
                None => match Connection::open(&self.authority).await {
                    Ok(c) => self.connection.insert(c),
                    Err(_) if retry => {
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    Err(e) => {
                        return Err(Stop::NotSent(format!(
                            "cannot connect to {}: {e}",
                            self.authority
                        )));
                    }
                },
            };
            let headers = [
                ("Content-Type", self.content_type),
                ("X-API-Key", self.key.as_str()),
            ];
            let r = match connection
                .request("POST", "/api/v1/ingest", &headers, body)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    self.connection = None;
                    match e {
                        client::Error::NotSent(_) if retry => {
                            tokio::time::sleep(pause).await;
                            continue;
                        }
                        client::Error::NotSent(_) => return Err(Stop::NotSent(e.to_string())),
                        client::Error::NoAnswer(_) => return Err(Stop::Unknown(e.to_string())),
                    }
                }
            };
            if r.close || r.status != 200 {
                self.connection = None;
            }
            match r.status {
                200 => {
                    return serde_json::from_slice(&r.body)
                        .map_err(|e| Stop::Unread(e.to_string()));
                }
                503 if retry => tokio::time::sleep(pause).await,
                status => return Err(Stop::Refused(status, r.error_message())),
            }
        }
    }
}

/// A refused line: FILE's line number (or the part's lines, when the server names none) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    lines: (u64, u64),
    message: String,
}

/// What the import has done so far.
#[derive(Debug, Default)]
struct Totals {
    accepted: u64,
    refused: u64,
    /// Parts answered, and FILE's bytes in them.
    parts: u64,
    bytes: u64,
    shown: Vec<Refusal>,
}

impl Totals {
    fn refuse(&mut self, lines: (u64, u64), message: String) {
        if self.shown.len() < SHOWN_REFUSALS {
            self.shown.push(Refusal { lines, message });
        }
    }

    /// Adds a part's answer, its line numbers mapped back to FILE's.
    fn add(&mut self, part: &Part, answer: Answer) {
        self.parts += 1;
        self.bytes += part.end - part.start;
        self.accepted += answer.accepted;
        self.refused += answer.refused + part.refused.len() as u64;
        let mut refusals: Vec<Refusal> = part
            .refused
            .iter()
            .map(|(line, why)| Refusal {
                lines: (*line, *line),
                message: why.clone(),
            })
            .collect();
        for e in answer.errors {
            let lines = match e.line.and_then(|n| part.file_line(n)) {
                Some(line) => (line, line),
                None => (part.first_line, part.last_line()),
            };
            refusals.push(Refusal {
                lines,
                message: e.message,
            });
        }
        refusals.sort_by_key(|r| r.lines);
        for r in refusals {
            self.refuse(r.lines, r.message);
        }
    }

    /// Prints the refused lines (standard error) and the counts (standard output).
    fn report(&self, name: &str, elapsed: Duration) {
        let mut err = io::stderr().lock();
        for r in &self.shown {
            let _ = match r.lines {
                (a, b) if a == b => writeln!(err, "{name}:{a}: {}", r.message),
                (a, b) => writeln!(err, "{name}:{a}-{b}: {}", r.message),
            };
        }
        let listed = self.shown.len() as u64;
        if self.refused > listed {
            let _ = writeln!(
                err,
                "{name}: {} more refused not shown",
                self.refused - listed
            );
        }
        println!(
            "flowwatch import: {name}: accepted {} records, refused {} ({} requests, {} in {:.1} s)",
            self.accepted,
            self.refused,
            self.parts,
            size(self.bytes),
            elapsed.as_secs_f64()
        );
    }
}

/// Bytes for people: `812 B`, `3.4 KiB`, `1.2 GiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The progress line: bytes done (of the total, when known), records a second, counts; on a
/// terminal with a bar in front.
fn progress_line(
    done: u64,
    total: Option<u64>,
    elapsed: Duration,
    totals: &Totals,
    bar: bool,
) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        (totals.accepted + totals.refused) as f64 / seconds
    } else {
        0.0
    };
    let mut out = String::new();
    match total.filter(|t| *t > 0) {
        Some(total) => {
            let fraction = (done as f64 / total as f64).clamp(0.0, 1.0);
            if bar {
                const WIDTH: usize = 24;
                let full = (fraction * WIDTH as f64).round() as usize;
                out.push('[');
                out.push_str(&"#".repeat(full));
                out.push_str(&" ".repeat(WIDTH - full));
                out.push_str("] ");
            }
            out.push_str(&format!(
                "{:3.0}% {} of {}",
                fraction * 100.0,
                size(done),
                size(total)
            ));
        }
        None => out.push_str(&size(done)),
    }
    out.push_str(&format!(
        ", {rate:.0} records/s, accepted {}, refused {}",
        totals.accepted, totals.refused
    ));
    out
}

/// Progress on standard error.
struct Progress {
    terminal: bool,
    total: Option<u64>,
    start: Instant,
    last: Option<Instant>,
}

impl Progress {
    fn show(&mut self, done: u64, totals: &Totals) {
        let now = Instant::now();
        let every = if self.terminal {
            Duration::from_millis(100)
        } else {
            PLAIN_EVERY
        };
        // A bar at once; a plain line only once the import has run a while.
        let due = (self.terminal && self.last.is_none())
            || now - self.last.unwrap_or(self.start) >= every;
        if !due {
            return;
        }
        self.last = Some(now);
        let line = progress_line(done, self.total, now - self.start, totals, self.terminal);
        let mut err = io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "flowwatch import: {line}")
        };
        let _ = err.flush();
    }

    /// Clears the bar, for the report.
    fn clear(&mut self) {
        if self.terminal && self.last.is_some() {
            let _ = write!(io::stderr(), "\r\x1b[K");
        }
    }
}

/// Imports the file.
pub async fn run(args: Args) -> Result<()> {
    let authority = client::authority(&args.url)
        .map_err(|e| anyhow!("--url {e}"))?
        .to_owned();
    if args.api_key.is_empty() || !args.api_key.bytes().all(|b| b.is_ascii_graphic()) {
        bail!("--api-key: expected a key of visible ASCII characters");
    }
    let stdin = args.file.as_os_str() == "-";
    let name = if stdin {
        "standard input".to_owned()
    } else {
        args.file.display().to_string()
    };
    let (reader, total): (Box<dyn BufRead>, Option<u64>) = if stdin {
        (
            Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
            None,
        )
    } else {
        let file = File::open(&args.file).with_context(|| format!("cannot read {name}"))?;
        let total = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 16, file)), total)
    };
    let mut splitter = Splitter::new(reader, &args.file, args.batch_lines, args.from_line)?;
    let mut sender = Sender {
        authority,
        key: args.api_key,
        content_type: splitter.format.content_type(),
        connection: None,
        backoff: BACKOFF,
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    tokio::spawn(on_interrupt(interrupted.clone()));
    let mut progress = Progress {
        terminal: io::stderr().is_terminal(),
        total,
        start: Instant::now(),
        last: None,
    };
    let mut totals = Totals::default();
    let outcome = import(
        &mut splitter,
        &mut sender,
        &mut totals,
        &mut progress,
        &interrupted,
    )
    .await;
    progress.clear();
    totals.report(&name, progress.start.elapsed());
    outcome.map_err(|(line, why)| anyhow!("import of {name} stopped at line {line}: {why}"))
}

/// Sends every part; on a stop, the line it stopped at and why (with the line to resume from).
async fn import<R: BufRead>(
    splitter: &mut Splitter<R>,
    sender: &mut Sender,
    totals: &mut Totals,
    progress: &mut Progress,
    interrupted: &AtomicBool,
) -> Result<(), (u64, String)> {
    loop {
        let from = splitter.next_line;
        let resume = format!("the lines before it are stored: resume with --from-line {from}");
        if interrupted.load(Ordering::Relaxed) {
            return Err((from, format!("interrupted; {resume}")));
        }
        let part = match splitter.next_part() {
            Ok(Some(part)) => part,
            Ok(None) => return Ok(()),
            Err(e) => return Err((from, format!("cannot read the file: {e}; {resume}"))),
        };
        let last = part.last_line();
        let why = match sender.send(&part.body).await {
            Ok(answer) => {
                totals.add(&part, answer);
                progress.show(part.end, totals);
                continue;
            }
            Err(Stop::Refused(status, message)) => {
                let hint = if status == 413 {
                    " (lower --batch-lines)"
                } else {
                    ""
                };
                format!(
                    "the server answered {status}: {message}{hint}; lines {from}–{last} are \
                     not stored, {resume}"
                )
            }
            Err(Stop::NotSent(why)) => {
                format!("{why}; lines {from}–{last} are not stored, {resume}")
            }
            Err(Stop::Unknown(why)) => format!(
                "{why}: lines {from}–{last} may or may not be stored (look at the flows' \
                 traffic); the lines before are stored: resume with --from-line {from} or \
                 --from-line {}",
                last + 1
            ),
            Err(Stop::Unread(why)) => format!(
                "lines {from}–{last} are stored but the server's answer is not understood \
                 ({why}): resume with --from-line {}",
                last + 1
            ),
        };
        return Err((from, why));
    }
}

/// Sets `flag` on the first Ctrl-C (the import stops after the part in flight); exits on the
/// second.
async fn on_interrupt(flag: Arc<AtomicBool>) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    flag.store(true, Ordering::Relaxed);
    eprintln!(
        "\nflowwatch import: stopping once the part in flight is answered (Ctrl-C again: now)"
    );
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowwatch_gateway::client::scripted::{Reply, serve};

    const HEADER: &str = "time,country,lob,kind,flow,bytes\n";

    fn splitter<'a>(
        path: &str,
        text: &'a [u8],
        batch_lines: u64,
        from_line: u64,
    ) -> Splitter<&'a [u8]> {
        Splitter::new(text, Path::new(path), batch_lines, from_line).unwrap()
    }

    fn parts(mut s: Splitter<&[u8]>) -> Vec<Part> {
        std::iter::from_fn(|| s.next_part().unwrap()).collect()
    }

    fn data_line(i: u64) -> String {
        format!("2017-02-01T08:{:02}:00Z,CZ,GSM,input,A,{i}", i % 60)
    }

    #[test]
    fn a_csv_is_cut_into_parts_of_whole_lines_each_with_the_header() {
        // Lines 2..=8 of the file are data; the last one has no `\n`.
        let data: Vec<String> = (2..=8).map(data_line).collect();
        let text = format!("\u{feff}{HEADER}{}", data.join("\n"));
        let parts = parts(splitter("t.csv", text.as_bytes(), 3, 1));
        let firsts: Vec<(u64, u64)> = parts.iter().map(|p| (p.first_line, p.lines)).collect();
        assert_eq!(firsts, [(2, 3), (5, 3), (8, 1)]);
        let mut sent = Vec::new();
        for p in &parts {
            let body = std::str::from_utf8(&p.body).unwrap();
            let mut lines = body.lines();
            assert_eq!(
                lines.next(),
                Some(CSV_HEADER),
                "the canonical header, no BOM"
            );
            sent.extend(lines.map(str::to_owned));
            assert!(body.ends_with('\n'));
        }
        assert_eq!(sent, data);
        assert_eq!(parts.last().unwrap().end, text.len() as u64);
        assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(
            parts[0].end,
            (HEADER.len() + 3 + 3 * (data[0].len() + 1)) as u64
        );
    }

    #[test]
    fn a_part_is_cut_by_its_size_too() {
        let text = format!(
            "{HEADER}{}\n{}\n{}\n",
            data_line(2),
            data_line(3),
            data_line(4)
        );
        let mut s = splitter("t.csv", text.as_bytes(), 100, 1);
        s.part_bytes = HEADER.len() + 1; // one line passes it
        let parts = parts(s);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.lines == 1));
    }

    #[test]
    fn the_servers_line_numbers_map_to_the_files() {
        let data: Vec<String> = (2..=8).map(data_line).collect();
        let text = format!("{HEADER}{}\n", data.join("\n"));
        let parts = parts(splitter("t.csv", text.as_bytes(), 3, 1));
        // The second part holds the file's lines 5, 6, 7 as the body's lines 2, 3, 4.
        let p = &parts[1];
        assert_eq!(p.file_line(1), None, "the header");
        assert_eq!(p.file_line(2), Some(5));
        assert_eq!(p.file_line(4), Some(7));
        assert_eq!(p.file_line(5), None);
        assert_eq!(p.file_line(0), None);
        assert_eq!(p.last_line(), 7);
        // The body's line n is the file's line file_line(n), byte for byte.
        let file: Vec<&str> = text.lines().collect();
        let body: Vec<&str> = std::str::from_utf8(&p.body).unwrap().lines().collect();
        for (n, line) in body.iter().enumerate().skip(1) {
            let at = p.file_line(n as u64 + 1).unwrap();
            assert_eq!(*line, file[at as usize - 1]);
        }
        // NDJSON has no header: the body's line 1 is the part's first.
        let text = b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n";
        let parts = super::tests::parts(splitter("t.json", text, 2, 1));
        assert_eq!(parts[1].file_line(1), Some(3));
        assert_eq!(parts[0].file_line(2), Some(2));
    }

    #[test]
    fn lines_that_cannot_be_sent_are_refused_here_and_sent_blank() {
        let mut text = HEADER.as_bytes().to_vec();
        text.extend_from_slice(data_line(2).as_bytes());
        text.extend_from_slice(b"\nab\xffc\n");
        text.extend_from_slice(&[b'x'; 50]);
        text.push(b'\n');
        text.extend_from_slice(data_line(5).as_bytes());
        text.push(b'\n');
        let mut s = splitter("t.csv", &text, 10, 1);
        s.max_line = 40;
        let parts = parts(s);
        let p = &parts[0];
        assert_eq!(
            p.refused,
            [
                (3, "not UTF-8 (byte 3 of the line)".to_owned()),
                (4, "longer than 40 bytes".to_owned())
            ]
        );
        let body = std::str::from_utf8(&p.body).unwrap();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines, [CSV_HEADER, &data_line(2), "", "", &data_line(5)]);
        assert_eq!(p.file_line(5), Some(5), "numbering kept past the blanks");
    }

    #[test]
    fn format_by_extension_then_content() {
        let f = |path: &str, head: &[u8]| Format::detect(Path::new(path), head);
        assert_eq!(f("t.csv", b"{"), Ok(Format::Csv));
        assert_eq!(f("t.NDJSON", b"time"), Ok(Format::Ndjson));
        assert_eq!(f("t.jsonl", b""), Ok(Format::Ndjson));
        assert_eq!(f("t.json", b"\xef\xbb\xbf {\"a\""), Ok(Format::Ndjson));
        assert_eq!(f("-", b"time,country"), Ok(Format::Csv));
        assert_eq!(f("t", b""), Ok(Format::Csv));
        assert!(f("t.json", b"\n [{").unwrap_err().contains("JSON array"));
        // NDJSON's BOM is not sent.
        let parts = parts(splitter("t", b"\xef\xbb\xbf{\"a\":1}\n", 5, 1));
        assert_eq!(parts[0].body, b"{\"a\":1}\n");
        assert_eq!(parts[0].end, 11);
    }

    #[test]
    fn a_bad_or_missing_header_names_line_one() {
        let err = |text: &[u8]| {
            Splitter::new(text, Path::new("t.csv"), 5, 1)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap()
        };
        assert!(err(b"").contains("t.csv: empty file"));
        assert!(err(b"time,bytes\n1,2\n").starts_with("t.csv:1: invalid header \"time,bytes\""));
    }

    #[test]
    fn from_line_skips_the_lines_before_it() {
        let data: Vec<String> = (2..=6).map(data_line).collect();
        let text = format!("{HEADER}{}\n", data.join("\n"));
        let parts = parts(splitter("t.csv", text.as_bytes(), 2, 4));
        assert_eq!(parts[0].first_line, 4);
        let sent: Vec<String> = parts
            .iter()
            .flat_map(|p| {
                let body = String::from_utf8(p.body.clone()).unwrap();
                body.lines().skip(1).map(str::to_owned).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(sent, data[2..]);
        // At the end of the file, nothing to send; past it, an error.
        assert!(super::tests::parts(splitter("t.csv", text.as_bytes(), 2, 7)).is_empty());
        let e = Splitter::new(text.as_bytes(), Path::new("t.csv"), 2, 9)
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "--from-line 9: t.csv has 6 lines");
    }

    fn answer(accepted: u64, refused: u64, errors: &[(Option<u64>, &str)]) -> Answer {
        Answer {
            accepted,
            refused,
            errors: errors
                .iter()
                .map(|(line, m)| AnswerError {
                    line: *line,
                    message: (*m).to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn totals_map_refusals_to_file_lines_and_cap_the_list() {
        let part = Part {
            body: Vec::new(),
            header: 1,
            first_line: 10,
            lines: 5,
            refused: vec![(12, "not UTF-8 (byte 1 of the line)".into())],
            start: 100,
            end: 150,
        };
        let mut t = Totals::default();
        t.add(
            &part,
            answer(
                2,
                3,
                &[
                    (Some(2), "bad"),
                    (None, "1 records of CZ/GSM/input/A: late"),
                ],
            ),
        );
        assert_eq!((t.accepted, t.refused, t.parts, t.bytes), (2, 4, 1, 50));
        let shown: Vec<((u64, u64), &str)> = t
            .shown
            .iter()
            .map(|r| (r.lines, r.message.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ((10, 10), "bad"),
                ((10, 14), "1 records of CZ/GSM/input/A: late"),
                ((12, 12), "not UTF-8 (byte 1 of the line)"),
            ]
        );
        let many: Vec<(Option<u64>, &str)> = (0..200).map(|_| (Some(3), "x")).collect();
        t.add(&part, answer(0, 200, &many));
        assert_eq!(t.shown.len(), SHOWN_REFUSALS);
        assert_eq!(t.refused, 205);
    }

    #[test]
    fn progress_lines() {
        let t = Totals {
            accepted: 1500,
            refused: 500,
            ..Totals::default()
        };
        let second = Duration::from_secs(2);
        assert_eq!(
            progress_line(512 << 10, Some(1 << 20), second, &t, true),
            "[############            ]  50% 512.0 KiB of 1.0 MiB, 1000 records/s, accepted \
             1500, refused 500"
        );
        assert_eq!(
            progress_line(100, None, second, &t, false),
            "100 B, 1000 records/s, accepted 1500, refused 500"
        );
        assert_eq!(size(3 << 30), "3.0 GiB");
    }

    fn sender(addr: String) -> Sender {
        Sender {
            authority: addr,
            key: "k".into(),
            content_type: "text/csv",
            connection: None,
            backoff: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn a_503_is_sent_again_until_stored() {
        let unavailable = r#"{"error":{"code":"not_stored","message":"store down"}}"#;
        let (addr, server) = serve(vec![
            Reply::json(503, unavailable),
            Reply::json(503, unavailable),
            Reply::json(200, r#"{"accepted":2,"refused":0,"errors":[]}"#),
        ])
        .await;
        let mut s = sender(addr);
        let answer = s.send(b"body").await.unwrap();
        assert_eq!(answer.accepted, 2);
        drop(s);
        assert_eq!(server.await.unwrap().bodies, [b"body"; 3]);
    }

    #[tokio::test]
    async fn a_part_that_may_have_been_stored_is_not_sent_again() {
        // The server reads the part and closes without answering.
        let (addr, server) = serve(vec![Reply::Close]).await;
        let mut s = sender(addr);
        match s.send(b"body").await {
            Err(Stop::Unknown(why)) => assert!(why.starts_with("no answer"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(server.await.unwrap().bodies, [b"body"], "sent once");
        // A 200 is stored, even when its answer makes no sense.
        let (addr, server) = serve(vec![Reply::json(200, "{\"accepted\": \"many\"}")]).await;
        let mut s = sender(addr);
        match s.send(b"body").await {
            Err(Stop::Unread(why)) => assert!(why.contains("invalid type"), "{why}"),
            other => panic!("{other:?}"),
        }
        drop(s);
        assert_eq!(server.await.unwrap().bodies, [b"body"], "sent once");
    }

    #[tokio::test]
    async fn a_refusal_is_not_sent_again_and_names_the_servers_message() {
        let (addr, server) = serve(vec![Reply::json(
            403,
            r#"{"error":{"code":"forbidden","message":"needs the root role"}}"#,
        )])
        .await;
        let mut s = sender(addr);
        match s.send(b"body").await {
            Err(Stop::Refused(status, why)) => {
                assert_eq!((status, why.as_str()), (403, "needs the root role"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(server.await.unwrap().bodies.len(), 1);
        // After five retries of a 503, the import gives up.
        let unavailable = r#"{"error":{"code":"not_stored","message":"store down"}}"#;
        let (addr, server) = serve(vec![Reply::json(503, unavailable); 7]).await;
        let mut s = sender(addr);
        match s.send(b"body").await {
            Err(Stop::Refused(status, why)) => {
                assert_eq!((status, why.as_str()), (503, "store down"))
            }
            other => panic!("{other:?}"),
        }
        drop(s);
        assert_eq!(server.await.unwrap().bodies.len(), 1 + RETRIES as usize);
    }

    #[tokio::test]
    async fn no_server_no_import() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        match sender(addr.clone()).send(b"body").await {
            Err(Stop::NotSent(why)) => {
                assert!(
                    why.starts_with(&format!("cannot connect to {addr}: ")),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
