//! The gRPC API for services (`flowwatch.v1.FlowWatch`, defined in
//! `proto/proto/flowwatch/v1/flowwatch.proto`): a flow's ticks, every flow's latest status, a
//! stream of status changes and an ingest stream, over the same [`Gateway`] as the HTTP API and
//! served on its address ([`router`] is merged into the HTTP router; HTTP/2 with prior
//! knowledge reaches it).
//!
//! Each call goes through the code of its HTTP counterpart: `views::flow_ticks` (`GET
//! …/ticks`), `views::flow_states` (dashboard, tree), `ingest::take` (`POST /api/v1/ingest`);
//! their errors map to gRPC codes once, in `From<ApiError> for tonic::Status`. The same keys
//! work: metadata `x-api-key` or `authorization: Bearer`; `Ingest` needs the root role.

use std::pin::Pin;
use std::sync::Arc;

use flowwatch_core::FlowId;
use flowwatch_core::detection::Status;
use flowwatch_core::record::body::BodyFormat;
use flowwatch_proto::convert::{filter, ingest_format, invalid, required};
use flowwatch_proto::pb;
use flowwatch_proto::pb::flow_watch_server::{FlowWatch, FlowWatchServer, SERVICE_NAME};
use flowwatch_storage::{Event, Scope};
use futures_util::Stream;
use tokio::sync::{broadcast, watch};
use tonic::{Request, Response, Streaming};

use crate::auth::Caller;
use crate::ingest::Ingested;
use crate::live::ChangeFilter;
use crate::{Gateway, views};

/// The routes of the gRPC service (`/flowwatch.v1.FlowWatch/*`), to merge into the HTTP
/// router. Watch streams end (`UNAVAILABLE`) once the gateway stops ([`Gateway::stop`]), so
/// that a graceful shutdown does not wait for clients that watch forever. An ingest chunk may
/// be as large as the gateway's `max_body`.
pub fn router(gateway: Arc<Gateway>) -> axum::Router {
    let max_body = gateway.max_body;
    let server =
        FlowWatchServer::new(FlowWatchService { gateway }).max_decoding_message_size(max_body);
    axum::Router::new().route_service(&format!("/{SERVICE_NAME}/{{*method}}"), server)
}

/// The `FlowWatch` service over a [`Gateway`].
pub struct FlowWatchService {
    gateway: Arc<Gateway>,
}

impl FlowWatchService {
    /// The caller of `request` by its key (as the HTTP API finds it); `call` needs the root
    /// role when `root`.
    async fn caller<T>(
        &self,
        request: &Request<T>,
        call: &str,
        root: bool,
    ) -> Result<Caller, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        let caller = self.gateway.caller(&headers).await?;
        if root {
            caller.require_root(call)?;
        }
        Ok(caller)
    }
}

/// A status change stream.
type Changes = Pin<Box<dyn Stream<Item = Result<pb::StatusChange, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl FlowWatch for FlowWatchService {
    #[tracing::instrument(name = "gateway.ticks", skip_all)]
    async fn ticks(
        &self,
        request: Request<pb::TicksRequest>,
    ) -> Result<Response<pb::TicksReply>, tonic::Status> {
        self.caller(&request, "Ticks", false).await?;
        let r = request.into_inner();
        let flow = FlowId::try_from(required("flow", r.flow)?)?;
        // An empty date is a missing one: the error says so, naming the field.
        let from = Some(r.from.as_str()).filter(|d| !d.is_empty());
        let to = Some(r.to.as_str()).filter(|d| !d.is_empty());
        let ticks = views::flow_ticks(&self.gateway, &flow, from, to, r.granularity.as_deref())
            .await?
            .into_iter()
            .map(|t| pb::Tick {
                tick_start: t.start,
                tick_end: t.end,
                actual: t.actual,
                values: t.values.map(Into::into),
                status: pb::FlowStatus::from(t.status).into(),
            })
            .collect();
        Ok(Response::new(pb::TicksReply { ticks }))
    }

    #[tracing::instrument(name = "gateway.statuses", skip_all)]
    async fn statuses(
        &self,
        request: Request<pb::StatusesRequest>,
    ) -> Result<Response<pb::StatusesReply>, tonic::Status> {
        self.caller(&request, "Statuses", false).await?;
        let r = request.into_inner();
        let country = filter("country", r.country)?;
        let lob = filter("lob", r.lob)?;
        let config = self.gateway.in_force();
        // A country, or a LoB of one, is read alone; a LoB of every country needs them all.
        let scope = country.as_deref().map(|country| Scope {
            country,
            lob: lob.as_deref(),
        });
        let flows = views::flow_states(self.gateway.store.as_ref(), &config, scope)
            .await?
            .into_iter()
            .filter(|s| country.as_ref().is_none_or(|c| *c == s.flow.country))
            .filter(|s| lob.as_ref().is_none_or(|l| *l == s.flow.lob))
            .map(|s| pb::FlowState {
                flow: Some((&s.flow).into()),
                enabled: s.config.enabled,
                status: pb::FlowStatus::from(s.latest.map_or(Status::NotAvailable, |l| l.status))
                    .into(),
                tick_start: s.latest.map(|l| l.start),
            })
            .collect();
        Ok(Response::new(pb::StatusesReply { flows }))
    }

    type WatchStatusChangesStream = Changes;

    #[tracing::instrument(name = "gateway.watch_status_changes", skip_all)]
    async fn watch_status_changes(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Changes>, tonic::Status> {
        self.caller(&request, "WatchStatusChanges", false).await?;
        let r = request.into_inner();
        let wanted = ChangeFilter {
            country: filter("country", r.country)?,
            lob: filter("lob", r.lob)?,
            only_outages: r.only_outages,
        };
        let changes = self.gateway.status.changes();
        Ok(Response::new(Box::pin(watch_changes(
            changes,
            wanted,
            self.gateway.stopping.subscribe(),
        ))))
    }

    #[tracing::instrument(name = "gateway.ingest", skip_all)]
    async fn ingest(
        &self,
        request: Request<Streaming<pb::IngestChunk>>,
    ) -> Result<Response<pb::IngestReply>, tonic::Status> {
        self.caller(&request, "Ingest", true).await?;
        let mut chunks = request.into_inner();
        let mut lines = Lines::new(self.gateway.max_body);
        let mut taken = Ingested::default();
        // Lines of the stream stored so far (a failure says so).
        let mut stored = 0;
        let read: Result<(), tonic::Status> = async {
            // One chunk's lines are stored before the next chunk is read: memory stays bounded.
            while let Some(chunk) = chunks.message().await? {
                if let Some(piece) = lines.push(chunk)? {
                    taken.add(self.take(piece).await?);
                    stored = lines.lines;
                }
            }
            if let Some(piece) = lines.finish()? {
                taken.add(self.take(piece).await?);
            }
            Ok(())
        }
        .await;
        if let Err(e) = read {
            let stored = match stored {
                0 => "nothing of the stream is stored".to_owned(),
                n => format!("its lines 1–{n} are stored"),
            };
            return Err(tonic::Status::new(
                e.code(),
                format!("{} ({stored})", e.message()),
            ));
        }
        Ok(Response::new(pb::IngestReply {
            accepted: taken.accepted,
            refused: taken.refused,
            errors: taken
                .errors
                .into_iter()
                .map(|e| pb::IngestError {
                    line: e.line,
                    message: e.message,
                })
                .collect(),
        }))
    }
}

impl FlowWatchService {
    /// Parses and stores a piece of an ingest stream.
    async fn take(&self, piece: Piece) -> Result<Ingested, tonic::Status> {
        let (format, body, offset) = (piece.format, &piece.body, piece.line_offset);
        Ok(crate::ingest::take(&self.gateway, format, body, offset).await?)
    }
}

/// The wanted changes from `changes`, until `stopping` turns true (or its sender is gone). A
/// subscriber that fell behind is told how many it missed (`DATA_LOSS`), and the stream ends:
/// skipping them silently would show a flow in a status it left.
fn watch_changes(
    changes: broadcast::Receiver<Event>,
    wanted: ChangeFilter,
    stopping: watch::Receiver<bool>,
) -> impl Stream<Item = Result<pb::StatusChange, tonic::Status>> + Send {
    futures_util::stream::unfold(Some((changes, wanted, stopping)), |state| async move {
        let (mut changes, wanted, mut stopping) = state?;
        let end = |status: tonic::Status| Some((Err(status), None));
        loop {
            let next = tokio::select! {
                next = changes.recv() => next,
                // A dropped sender stops the server too.
                _ = stopping.wait_for(|stop| *stop) => {
                    return end(tonic::Status::unavailable("the server is stopping"));
                }
            };
            match next {
                Ok(e) if wanted.wants(&e) => {
                    return Some((Ok((&e).into()), Some((changes, wanted, stopping))));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    return end(tonic::Status::data_loss(format!(
                        "{n} status changes were skipped: this watch read too slowly; \
                             watch again, and read what was missed from GET /api/v1/events"
                    )));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return end(tonic::Status::unavailable(
                        "the workers stopped recording status changes",
                    ));
                }
            }
        }
    })
}

/// Complete lines of an ingest stream, as a body [`crate::ingest::take`] takes.
#[derive(Debug, PartialEq)]
struct Piece {
    format: BodyFormat,
    /// The lines (a CSV piece after the first starts with the stream's header again).
    body: String,
    /// What to add to a line number of `body` to make it the stream's.
    line_offset: u64,
}

/// Cuts the chunks of an ingest stream into pieces of complete lines (see `IngestChunk` in the
/// `.proto`): the text of the chunks together is the body; a line may span chunks; line
/// numbers count over the whole stream.
struct Lines {
    /// The stream's form, from its first chunk.
    format: Option<BodyFormat>,
    /// A CSV stream's header (its first line), put before every later piece.
    header: Option<String>,
    /// Complete lines handed out.
    lines: u64,
    /// Chunks read.
    chunks: u64,
    /// The start of a line whose end has not come yet.
    unfinished: Vec<u8>,
    /// The longest line taken, in bytes.
    longest: usize,
}

impl Lines {
    fn new(longest: usize) -> Lines {
        Lines {
            format: None,
            header: None,
            lines: 0,
            chunks: 0,
            unfinished: Vec::new(),
            longest,
        }
    }

    /// The complete lines `chunk` ends, if it ends any.
    fn push(&mut self, chunk: pb::IngestChunk) -> Result<Option<Piece>, tonic::Status> {
        self.chunks += 1;
        let format = match (self.format, ingest_format(chunk.format)?) {
            (None, None) => {
                return Err(invalid(
                    "format",
                    "missing in the first chunk: INGEST_FORMAT_CSV or INGEST_FORMAT_NDJSON",
                ));
            }
            (None, Some(named)) => *self.format.insert(named),
            (Some(format), None) => format,
            (Some(format), Some(named)) if named == format => format,
            (Some(format), Some(named)) => {
                return Err(invalid(
                    "format",
                    format!(
                        "chunk {} names {named:?}, the stream's first chunk {format:?}",
                        self.chunks
                    ),
                ));
            }
        };
        let mut data = chunk.data;
        let Some(end) = data.iter().rposition(|b| *b == b'\n') else {
            self.unfinished.extend_from_slice(&data);
            self.check_length()?;
            return Ok(None);
        };
        let rest = data.split_off(end + 1);
        let mut complete = std::mem::replace(&mut self.unfinished, rest);
        complete.extend_from_slice(&data);
        self.check_length()?;
        self.piece(format, complete).map(Some)
    }

    /// The stream's last line, if it did not end with a line break.
    fn finish(&mut self) -> Result<Option<Piece>, tonic::Status> {
        let Some(format) = self.format else {
            return Ok(None);
        };
        if self.unfinished.is_empty() {
            return Ok(None);
        }
        let last = std::mem::take(&mut self.unfinished);
        self.piece(format, last).map(Some)
    }

    fn check_length(&self) -> Result<(), tonic::Status> {
        if self.unfinished.len() > self.longest {
            return Err(invalid(
                "data",
                format!(
                    "line {} is longer than {} bytes (--max-body)",
                    self.lines + 1,
                    self.longest
                ),
            ));
        }
        Ok(())
    }

    /// Complete lines as a piece.
    fn piece(&mut self, format: BodyFormat, bytes: Vec<u8>) -> Result<Piece, tonic::Status> {
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = self.lines + 1 + valid.iter().filter(|b| **b == b'\n').count() as u64;
            invalid("data", format!("line {line} is not UTF-8"))
        })?;
        let first_line = self.lines + 1;
        self.lines += text.lines().count() as u64;
        let (body, line_offset) = match (format, &self.header) {
            (BodyFormat::Csv, None) => {
                self.header = text.lines().next().map(str::to_owned);
                (text, 0)
            }
            // The header is line 1 of the piece: its own lines start at 2.
            (BodyFormat::Csv, Some(header)) => (format!("{header}\n{text}"), first_line - 2),
            _ => (text, first_line - 1),
        };
        Ok(Piece {
            format,
            body,
            line_offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use flowwatch_core::FlowKind;
    use futures_util::StreamExt;

    use super::*;
    use tonic::Code;

    fn chunk(format: pb::IngestFormat, data: &[u8]) -> pb::IngestChunk {
        pb::IngestChunk {
            format: format.into(),
            data: data.to_vec(),
        }
    }

    fn more(data: &[u8]) -> pb::IngestChunk {
        chunk(pb::IngestFormat::Unspecified, data)
    }

    /// The lines of a piece after a stream's first, each with its number in the stream (a CSV
    /// piece's repeated header left out).
    fn numbered(piece: &Piece) -> Vec<(u64, String)> {
        let skip = usize::from(piece.format == BodyFormat::Csv);
        piece
            .body
            .lines()
            .enumerate()
            .skip(skip)
            .map(|(i, l)| (i as u64 + 1 + piece.line_offset, l.to_owned()))
            .collect()
    }

    /// Valid, and no piece.
    fn none(r: Result<Option<Piece>, tonic::Status>) -> bool {
        r.expect("valid").is_none()
    }

    const HEADER: &str = "time,country,lob,kind,flow,bytes";

    #[test]
    fn csv_chunks_make_whole_lines_numbered_over_the_stream() {
        let mut lines = Lines::new(1 << 20);
        // The header itself is cut; the first piece is only the header.
        assert!(none(
            lines.push(chunk(pb::IngestFormat::Csv, b"time,country,"))
        ));
        let first = lines
            .push(more(b"lob,kind,flow,bytes\nT1,CZ,GSM,input,\xc5"))
            .expect("valid")
            .expect("the header line");
        assert_eq!(first.line_offset, 0);
        assert_eq!(first.body, format!("{HEADER}\n"));
        // A line and a character (Š, C5 A0) cut across chunks.
        let second = lines
            .push(more(b"\xa0\nT2,CZ,GSM,input,B,2\nT3,"))
            .expect("valid")
            .expect("two lines");
        assert!(
            second.body.starts_with(&format!("{HEADER}\n")),
            "{second:?}"
        );
        assert_eq!(
            numbered(&second),
            [
                (2, "T1,CZ,GSM,input,Š".to_owned()),
                (3, "T2,CZ,GSM,input,B,2".to_owned())
            ]
        );
        // A chunk inside one line ends nothing; the stream's end ends the last line.
        assert!(none(lines.push(more(b"CZ,GSM"))));
        assert!(none(lines.push(more(b""))));
        let last = lines.finish().expect("valid").expect("the last line");
        assert_eq!(numbered(&last), [(4, "T3,CZ,GSM".to_owned())]);
        assert!(none(lines.finish()));
    }

    #[test]
    fn ndjson_chunks_are_numbered_without_a_header() {
        let mut lines = Lines::new(1 << 20);
        let first = lines
            .push(chunk(pb::IngestFormat::Ndjson, b"{\"a\":1}\n\n{\"b\""))
            .expect("valid")
            .expect("two lines");
        assert_eq!(
            (first.body.as_str(), first.line_offset),
            ("{\"a\":1}\n\n", 0)
        );
        let second = lines
            .push(chunk(pb::IngestFormat::Ndjson, b":2}\r\n"))
            .expect("the same form may be repeated")
            .expect("one line");
        assert_eq!(numbered(&second), [(3, "{\"b\":2}".to_owned())]);
        assert!(none(lines.finish()), "the stream ended with a line break");
    }

    fn refused(r: Result<Option<Piece>, tonic::Status>) -> String {
        let e = r.expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument);
        e.message().to_owned()
    }

    #[test]
    fn a_stream_without_its_form_or_with_two_forms_is_refused() {
        let mut lines = Lines::new(1 << 20);
        assert!(refused(lines.push(more(b"x\n"))).starts_with("format: missing in the first"));
        let mut lines = Lines::new(1 << 20);
        assert!(
            lines
                .push(chunk(pb::IngestFormat::Csv, b"h\n"))
                .expect("valid")
                .is_some()
        );
        let e = refused(lines.push(chunk(pb::IngestFormat::Ndjson, b"x\n")));
        assert!(e.starts_with("format: chunk 2 names Ndjson"), "{e}");
        let e = refused(Lines::new(10).push(pb::IngestChunk {
            format: 9,
            data: Vec::new(),
        }));
        assert!(e.starts_with("format: unknown value 9"), "{e}");
    }

    #[test]
    fn a_line_too_long_or_not_utf8_is_refused_naming_it() {
        let mut lines = Lines::new(8);
        assert!(
            lines
                .push(chunk(pb::IngestFormat::Ndjson, b"12345\n123"))
                .expect("valid")
                .is_some()
        );
        assert!(none(lines.push(more(b"45678"))));
        let e = refused(lines.push(more(b"9")));
        assert_eq!(e, "data: line 2 is longer than 8 bytes (--max-body)");

        let mut lines = Lines::new(1 << 20);
        let e = refused(lines.push(chunk(pb::IngestFormat::Ndjson, b"a\nb\n\xff\n")));
        assert_eq!(e, "data: line 3 is not UTF-8");
        let mut lines = Lines::new(1 << 20);
        assert!(
            lines
                .push(chunk(pb::IngestFormat::Ndjson, b"a\n\xc5"))
                .expect("valid")
                .is_some()
        );
        assert_eq!(
            lines.finish().expect_err("half a character").message(),
            "data: line 2 is not UTF-8"
        );
    }

    fn event(country: &str, new_status: Status) -> Event {
        Event {
            id: format!("{country}-{new_status:?}"),
            flow: FlowId::new(country, "GSM", FlowKind::Input, "A").expect("valid"),
            tick_time: 0,
            time: 3600,
            previous_status: Status::Ok,
            new_status,
            actual: 0,
            expected: None,
            difference: None,
            revision: false,
            silenced: false,
            flapping: false,
            acknowledged: None,
        }
    }

    fn all() -> ChangeFilter {
        ChangeFilter::default()
    }

    #[tokio::test]
    async fn a_watch_streams_the_wanted_changes_and_ends_when_the_server_stops() {
        let (tx, rx) = broadcast::channel(16);
        let (stop, stopping) = watch::channel(false);
        let wanted = ChangeFilter {
            country: Some("CZ".into()),
            only_outages: true,
            ..all()
        };
        let mut stream = Box::pin(watch_changes(rx, wanted, stopping));
        for e in [
            event("DE", Status::Outage),
            event("CZ", Status::Warning),
            event("CZ", Status::Outage),
        ] {
            tx.send(e).expect("a subscriber");
        }
        let got = stream.next().await.expect("an item").expect("a change");
        assert_eq!(got.id, "CZ-Outage");
        assert_eq!(got.new_status, pb::FlowStatus::Outage as i32);
        stop.send_replace(true);
        let end = stream.next().await.expect("an item").expect_err("the end");
        assert_eq!(end.code(), Code::Unavailable);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_watch_that_fell_behind_is_told_how_many_changes_it_missed() {
        let (tx, rx) = broadcast::channel(2);
        let (_stop, stopping) = watch::channel(false);
        let mut stream = Box::pin(watch_changes(rx, all(), stopping));
        for _ in 0..5 {
            tx.send(event("CZ", Status::Outage)).expect("a subscriber");
        }
        let end = stream.next().await.expect("an item").expect_err("lagged");
        assert_eq!(end.code(), Code::DataLoss);
        assert!(
            end.message().starts_with("3 status changes were skipped"),
            "{}",
            end.message()
        );
        assert!(stream.next().await.is_none(), "the stream ended");
    }
}
