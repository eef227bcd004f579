//! Read views of SPEC §9: `GET /api/v1/dashboard` (status counts per country),
//! `GET /api/v1/events` (status changes, newest first, filtered and paged), and of one flow
//! (`/api/v1/flows/{country}/{lob}/{kind}/{flow}/…`): its ticks (as stored, or at another
//! granularity), a simulation with candidate settings, its effective settings with their
//! sources, and its raw traffic in buckets.

use flowwatch_ports::ErrorKind;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use chrono::NaiveDate;
use flowwatch_core::config::{Config, FlowConfig, FlowSettings};
use flowwatch_core::detection::{Band, Status, TickValues, first_influencing_day};
use flowwatch_core::event::{Acknowledgement, AlarmMessage};
use flowwatch_core::record::unknown_country;
use flowwatch_core::replay::{Window, replay_flow_since};
use flowwatch_core::tick::Granularity;
use flowwatch_core::time::{
    EpochDay, Instant, epoch_day, local_day, local_midnight, parse_rfc3339, utc_string,
};
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_storage::{
    Event, EventQuery, FlowAcknowledgement, FlowEntry, RegistryStore, Scope, StoredTick, TickStore,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Gateway;
use crate::error::ApiError;

/// The dashboard's columns, in order.
const COLUMNS: [&str; 5] = ["OK", "WARNING", "OUTAGE", "N_A", "DISABLED"];

/// Counts per status column, every column present.
type Counts = BTreeMap<&'static str, u64>;

fn no_counts() -> Counts {
    COLUMNS.iter().map(|c| (*c, 0)).collect()
}

/// A known flow (with traffic, or only configured) and its latest status.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowState {
    /// The flow.
    pub flow: FlowId,
    /// Its effective settings (`enabled`: whether the configuration evaluates it).
    pub config: FlowConfig,
    /// Its latest evaluated tick, if it has one.
    pub latest: Option<FlowTick>,
}

impl FlowState {
    /// What the dashboard shows: `DISABLED`, its latest status, or `N_A` before its first
    /// evaluated tick.
    fn column(&self) -> &'static str {
        match self.latest {
            _ if !self.config.enabled => "DISABLED",
            Some(t) => t.status.as_str(),
            None => Status::NotAvailable.as_str(),
        }
    }
}

/// Every flow known to the store or configured in `config` — of `scope` (a country or a LoB)
/// only, if given — ordered, with its latest status from the store (what the dashboard, the
/// flow tree, a LoB's flows and the gRPC `Statuses` read). With a scope, the store and the
/// configuration are read for those flows only: the cost does not grow with the other flows.
pub async fn flow_states(
    store: &(impl TickStore + RegistryStore + ?Sized),
    config: &Config,
    scope: Option<Scope<'_>>,
) -> Result<Vec<FlowState>, ApiError> {
    let (latest, known, configured) = match scope {
        None => (
            store.latest_statuses().await,
            store.flows().await,
            config.configured_flows(),
        ),
        Some(s) => (
            store.latest_statuses_in(s).await,
            store.flows_in(s).await,
            config.configured_flows_in(s.country, s.lob),
        ),
    };
    let mut latest: flowwatch_core::FlowMap<FlowTick> = latest
        .map_err(ApiError::store)?
        .into_iter()
        .map(|t| {
            let tick = FlowTick::from(&t);
            (t.flow, tick)
        })
        .collect();
    let mut ids: Vec<FlowId> = known
        .map_err(ApiError::store)?
        .into_iter()
        .map(|e| e.flow)
        .chain(configured)
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids
        .into_iter()
        .map(|flow| FlowState {
            config: config.flow_config(&flow).0,
            latest: latest.remove(&flow),
            flow,
        })
        .collect())
}

/// Every flow known (with traffic, or only configured) and what the dashboard shows for it.
struct Snapshot {
    config: Arc<Config>,
    flows: Vec<(FlowId, &'static str)>,
}

impl Snapshot {
    async fn take(g: &Gateway) -> Result<Snapshot, ApiError> {
        let config = g.in_force();
        let flows = flow_states(g.store.as_ref(), &config, None)
            .await?
            .into_iter()
            .map(|s| {
                let column = s.column();
                (s.flow, column)
            })
            .collect();
        Ok(Snapshot { config, flows })
    }
}

/// Per country, how many flows are in each status; a disabled flow counts as `DISABLED`, an
/// enabled one not evaluated yet as `N_A`. Every country of the configuration is listed.
pub async fn dashboard(State(g): State<Arc<Gateway>>) -> Result<Json<Value>, ApiError> {
    let snapshot = Snapshot::take(&g).await?;
    let mut countries: BTreeMap<String, Counts> = snapshot
        .config
        .document()
        .countries
        .keys()
        .map(|c| (c.clone(), no_counts()))
        .collect();
    for (flow, column) in &snapshot.flows {
        let counts = countries
            .entry(flow.country.clone())
            .or_insert_with(no_counts);
        *counts.entry(column).or_default() += 1;
    }
    // Beside the SPEC §9 counts: per country, how many of the flows in WARNING or OUTAGE a
    // person has acknowledged.
    let acknowledged = acknowledged_flows(&g).await?;
    let mut acked: BTreeMap<&str, usize> = BTreeMap::new();
    for (flow, column) in &snapshot.flows {
        if matches!(*column, "WARNING" | "OUTAGE") && acknowledged.contains_key(flow) {
            *acked.entry(flow.country.as_str()).or_default() += 1;
        }
    }
    Ok(Json(
        json!({ "countries": countries, "acknowledged": acked }),
    ))
}

/// Whether `changes` within 24 h make a flow of `config` flapping.
fn flapping(changes: usize, config: &FlowConfig) -> bool {
    config.flapping_changes > 0 && changes > config.flapping_changes as usize
}

/// How many times each flow's status changed (as it happened) in ticks of the last 24 h, in
/// a LoB only if given: what flap damping counts ([`flowwatch_core::flapping`]).
pub(crate) async fn recent_changes(
    g: &Gateway,
    lob: Option<(&str, &str)>,
) -> Result<BTreeMap<FlowId, usize>, ApiError> {
    let since = g.clock.now() - flowwatch_core::flapping::WINDOW;
    let mut counts: BTreeMap<FlowId, usize> = BTreeMap::new();
    let mut cursor = None;
    loop {
        let query = EventQuery {
            from: Some(since),
            country: lob.map(|l| l.0.to_owned()),
            lob: lob.map(|l| l.1.to_owned()),
            limit: 1000,
            cursor,
            ..EventQuery::default()
        };
        let page = g.store.query_events(query).await.map_err(ApiError::store)?;
        for e in page.events {
            if !e.revision && !e.is_summary() && e.tick_time > since {
                *counts.entry(e.flow).or_default() += 1;
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(counts),
        }
    }
}

/// `GET /api/v1/flapping`: the flows flapping now (more status changes within 24 h than
/// their `flappingChanges`), most changes first.
pub async fn flapping_flows(State(g): State<Arc<Gateway>>) -> Result<Json<Value>, ApiError> {
    let config = g.in_force();
    let mut flows: Vec<(usize, FlowId, u32)> = (recent_changes(&g, None).await?.into_iter())
        .filter_map(|(flow, n)| {
            let settings = config.flow_config(&flow).0;
            flapping(n, &settings).then_some((n, flow, settings.flapping_changes))
        })
        .collect();
    flows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let listed: Vec<Value> = (flows.into_iter())
        .map(|(n, f, limit)| {
            json!({"country": f.country, "lob": f.lob, "kind": f.kind.as_str(), "flow": f.name,
                   "changes24h": n, "flappingChanges": limit})
        })
        .collect();
    Ok(Json(json!({ "flows": listed })))
}

/// The flows acknowledged now, by flow.
pub(crate) async fn acknowledged_flows(
    g: &Gateway,
) -> Result<BTreeMap<FlowId, FlowAcknowledgement>, ApiError> {
    let all = (g.store.flow_acknowledgements().await).map_err(ApiError::store)?;
    Ok(all.into_iter().map(|a| (a.flow.clone(), a)).collect())
}

/// The query of the flow tree.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TreeQuery {
    /// Each flow's own status too (counts are always given).
    #[serde(default)]
    include_status: bool,
    /// Only flows whose name contains this (case-insensitive); an input is kept for a forward
    /// of it that matches.
    search: Option<String>,
}

/// A flow of the tree.
#[derive(Serialize)]
struct TreeFlow {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    /// An input's forwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    forwards: Option<Vec<TreeFlow>>,
}

/// A LoB of the tree.
#[derive(Serialize)]
struct TreeLob {
    name: String,
    counts: Counts,
    inputs: Vec<TreeFlow>,
}

/// `GET /api/v1/flows[?includeStatus=true][&search=NAME]`: countries → LoBs → inputs → their
/// forwards, with status counts per country and LoB. A forward whose input sends no traffic of
/// its own is listed under that input all the same.
pub async fn tree(
    State(g): State<Arc<Gateway>>,
    query: Result<Query<TreeQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::query("", e.body_text()))?;
    let search = q.search.map(|s| s.to_lowercase());
    let matches = |name: &str| {
        search
            .as_ref()
            .is_none_or(|s| name.to_lowercase().contains(s))
    };
    let snapshot = Snapshot::take(&g).await?;
    let mut countries: BTreeMap<String, BTreeMap<String, Inputs>> = BTreeMap::new();
    for (flow, column) in &snapshot.flows {
        let input = flow.input_name().unwrap_or(&flow.name);
        let keep = matches(&flow.name) || (flow.kind == FlowKind::Forward && matches(input));
        if !keep {
            continue;
        }
        let lob = countries
            .entry(flow.country.clone())
            .or_default()
            .entry(flow.lob.clone())
            .or_default();
        let slot = lob.entry(input.to_owned()).or_default();
        match flow.kind {
            FlowKind::Input => slot.0 = Some(column),
            FlowKind::Forward => slot.1.push((flow.name.clone(), column)),
        }
    }
    let mut out = Vec::with_capacity(countries.len());
    for (code, lobs) in countries {
        let lobs: Vec<TreeLob> = lobs
            .into_iter()
            .map(|(name, inputs)| lob_node(name, inputs, q.include_status))
            .collect();
        let mut total = no_counts();
        for (c, n) in lobs.iter().flat_map(|l| &l.counts) {
            *total.entry(c).or_default() += n;
        }
        out.push(json!({"code": code, "counts": total, "lobs": lobs}));
    }
    Ok(Json(json!({ "countries": out })))
}

/// A LoB's inputs: input name → (its own column if it sent traffic, its forwards' names and
/// columns).
type Inputs = BTreeMap<String, (Option<&'static str>, Vec<(String, &'static str)>)>;

/// A LoB of the tree with its counts; statuses only `with_status`.
fn lob_node(name: String, inputs: Inputs, with_status: bool) -> TreeLob {
    let status = |c: &'static str| with_status.then_some(c);
    let mut counts = no_counts();
    let mut nodes = Vec::with_capacity(inputs.len());
    for (input, (own, forwards)) in inputs {
        for c in own.iter().chain(forwards.iter().map(|f| &f.1)) {
            *counts.entry(c).or_default() += 1;
        }
        let forwards = forwards
            .into_iter()
            .map(|(name, c)| TreeFlow {
                name,
                status: status(c),
                forwards: None,
            })
            .collect();
        nodes.push(TreeFlow {
            name: input,
            status: own.and_then(status),
            forwards: Some(forwards),
        });
    }
    TreeLob {
        name,
        counts,
        inputs: nodes,
    }
}

/// `GET /api/v1/flows/{country}/{lob}`: the LoB's inputs and forwards (known to the store or
/// configured), each with its effective settings, what the dashboard shows for it and its
/// latest tick (`null` before the first); 404 for a LoB neither configured nor seen.
pub async fn lob_flows(
    State(g): State<Arc<Gateway>>,
    Path((country, lob)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let config = g.in_force();
    let scope = Some(Scope::lob(&country, &lob));
    let acknowledged = acknowledged_flows(&g).await?;
    let changes = recent_changes(&g, Some((&country, &lob))).await?;
    let flows: Vec<Value> = flow_states(g.store.as_ref(), &config, scope)
        .await?
        .into_iter()
        .map(|s| {
            let mut v = json!({
                "kind": s.flow.kind,
                "name": s.flow.name,
                "input": s.flow.input_name(),
                "shown": s.column(),
                "config": s.config,
                "latest": s.latest.as_ref().map(TickRow::of),
            });
            let n = changes.get(&s.flow).copied().unwrap_or(0);
            v["changes24h"] = n.into();
            v["flapping"] = flapping(n, &s.config).into();
            // Only while it is in WARNING or OUTAGE (SPEC §11: until it is OK again).
            let alarmed = s.latest.as_ref().is_some_and(|t| t.status.is_alarm());
            if let Some(a) = acknowledged.get(&s.flow).filter(|_| alarmed) {
                let mut ack = acknowledgement(&a.ack);
                ack["eventId"] = a.event_id.clone().into();
                v["acknowledged"] = ack;
            }
            v
        })
        .collect();
    let configured = config
        .document()
        .countries
        .get(&country)
        .is_some_and(|c| c.lobs.contains_key(&lob));
    if flows.is_empty() && !configured {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            "not_found",
            format!("no LoB {country}/{lob}: neither configured nor seen in traffic"),
        ));
    }
    Ok(Json(
        json!({ "country": country, "lob": lob, "flows": flows }),
    ))
}

/// The query of `GET /api/v1/events`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventsQuery {
    /// Changes detected at or after this instant (RFC 3339, or a date: its 00:00 UTC).
    from: Option<String>,
    /// Changes detected before this instant.
    to: Option<String>,
    /// New statuses, comma-separated (`OUTAGE,WARNING`).
    status: Option<String>,
    /// Only this country.
    country: Option<String>,
    /// Only this line of business.
    lob: Option<String>,
    /// Only changes to `OUTAGE`.
    #[serde(default)]
    only_outages: bool,
    /// Only the changes a person acts on (to or from `WARNING`/`OUTAGE`, not revisions).
    #[serde(default)]
    actionable: bool,
    /// Page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// The `next` of the previous page.
    cursor: Option<String>,
}

/// An event as listed: the SPEC §8 message, whether it was a revision, whether a silence
/// covered it, and who acknowledged it (SPEC §11).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed<'e> {
    #[serde(flatten)]
    message: AlarmMessage<'e>,
    revision: bool,
    silenced: bool,
    flapping: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledged: Option<Value>,
}

/// An instant of a query: RFC 3339, or a date meaning its 00:00 UTC.
pub(crate) fn instant(path: &str, text: &str) -> Result<Instant, ApiError> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(Instant::from(epoch_day(date)) * 86_400);
    }
    parse_rfc3339(text).map_err(|e| {
        ApiError::query(
            path,
            format!("{path}: {e} (expected RFC 3339 or YYYY-MM-DD)"),
        )
    })
}

/// Status changes, newest first: `{"events": [...], "next"?}`.
pub async fn events(
    State(g): State<Arc<Gateway>>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::query("", e.body_text()))?;
    let mut statuses = Vec::new();
    for s in q
        .status
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        statuses.push(Status::parse(s).ok_or_else(|| {
            ApiError::query(
                "status",
                format!("status: unknown status \"{s}\" (expected OK, WARNING, OUTAGE or N_A)"),
            )
        })?);
    }
    if q.only_outages {
        statuses = vec![Status::Outage];
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::query(
            "limit",
            format!("limit: {limit} is not within 1–1000"),
        ));
    }
    let query = EventQuery {
        from: q.from.as_deref().map(|t| instant("from", t)).transpose()?,
        to: q.to.as_deref().map(|t| instant("to", t)).transpose()?,
        country: q.country,
        lob: q.lob,
        statuses,
        actionable: q.actionable,
        limit,
        cursor: q.cursor,
    };
    let page = g.store.query_events(query).await.map_err(ApiError::store)?;
    let listed: Vec<Listed<'_>> = page.events.iter().map(listed).collect();
    let mut body = json!({ "events": listed });
    if let Some(next) = page.next {
        body["next"] = next.into();
    }
    Ok(Json(body))
}

fn listed(e: &Event) -> Listed<'_> {
    Listed {
        message: AlarmMessage::of(e),
        revision: e.revision,
        silenced: e.silenced,
        flapping: e.flapping,
        acknowledged: e.acknowledged.as_ref().map(acknowledgement),
    }
}

/// An acknowledgement as the API shows it.
pub(crate) fn acknowledgement(a: &Acknowledgement) -> Value {
    json!({"by": a.by, "at": utc_string(a.at), "comment": a.comment})
}

/// An event as the events API lists it.
pub(crate) fn event_view(e: &Event) -> Value {
    serde_json::to_value(listed(e)).expect("events serialize")
}

/// The query of a flow's ticks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicksQuery {
    /// First local day (`YYYY-MM-DD`, the flow's country's date).
    from: Option<String>,
    /// First local day not included.
    to: Option<String>,
    /// Another tick length (`15m`, `1h`, …): the ticks are then computed from stored traffic
    /// with the flow's configuration at that granularity (nothing is saved).
    granularity: Option<String>,
}

/// A tick as listed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TickRow {
    tick_start: String,
    tick_end: String,
    actual: u64,
    expected: Option<f64>,
    day_average: Option<f64>,
    tick_difference: Option<f64>,
    day_difference: Option<f64>,
    difference: Option<f64>,
    status: &'static str,
    /// The adaptive detector's band and evidence (SPEC §10): `lower`, `outageBelow`,
    /// `evidence`, `spread`; absent in the seed mode.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    band: Option<Band>,
}

impl TickRow {
    fn of(t: &FlowTick) -> Self {
        let v = t.values;
        TickRow {
            tick_start: utc_string(t.start),
            tick_end: utc_string(t.end),
            actual: t.actual,
            expected: v.map(|v| v.expected),
            day_average: v.map(|v| v.day_average),
            tick_difference: v.map(|v| v.tick_difference),
            day_difference: v.map(|v| v.day_difference),
            difference: v.map(|v| v.difference),
            status: t.status.as_str(),
            band: v.and_then(|v| v.band),
        }
    }
}

/// A tick of a flow, as stored or computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowTick {
    /// Real start.
    pub start: Instant,
    /// Real end (excluded).
    pub end: Instant,
    /// Bytes in the tick.
    pub actual: u64,
    /// Its status.
    pub status: Status,
    /// Its numbers; `None` for `N_A`.
    pub values: Option<TickValues>,
}

impl From<&StoredTick> for FlowTick {
    fn from(t: &StoredTick) -> FlowTick {
        FlowTick {
            start: t.start,
            end: t.end,
            actual: t.actual,
            status: t.status,
            values: t.values,
        }
    }
}

/// A local date of a query.
fn day(path: &str, text: Option<&str>) -> Result<EpochDay, ApiError> {
    let text =
        text.ok_or_else(|| ApiError::query(path, format!("{path}: missing (YYYY-MM-DD)")))?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(epoch_day)
        .map_err(|_| {
            ApiError::query(
                path,
                format!("{path}: invalid date \"{text}\" (YYYY-MM-DD)"),
            )
        })
}

/// The flow a path names (`{country}/{lob}/{kind}/{flow}`); 404 if it cannot exist.
pub(crate) fn flow_of(
    (country, lob, kind, name): (String, String, String, String),
) -> Result<FlowId, ApiError> {
    let not_found = |what: String| ApiError::new(ErrorKind::NotFound, "not_found", what);
    let kind = FlowKind::parse(&kind)
        .filter(|_| !kind.ends_with('s'))
        .ok_or_else(|| not_found(format!("no flow kind \"{kind}\": input or forward")))?;
    FlowId::new(&country, &lob, kind, &name).map_err(|e| not_found(e.to_string()))
}

/// The local days `[from, to)` of `country` as instants (404 for a country without a zone).
pub(crate) fn local_window(
    config: &Config,
    country: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(EpochDay, EpochDay, Instant, Instant), ApiError> {
    let calendar = config.calendar(country).ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotFound,
            "not_found",
            unknown_country(country).to_string(),
        )
    })?;
    let (from, to) = (day("from", from)?, day("to", to)?);
    if from >= to {
        return Err(ApiError::query("to", "to: must be after from".to_owned()));
    }
    let tz = calendar.tz();
    Ok((from, to, local_midnight(tz, from), local_midnight(tz, to)))
}

/// The ticks of `flow` on the local days `[from, to)` computed from its stored traffic under
/// `candidate` (a configuration that is not saved): the days whose traffic bears on them are
/// read and evaluated ([`history`]).
/// The replay runs on the blocking pool: a flow's weeks of history take milliseconds of CPU
/// that would otherwise hold up the requests sharing its runtime thread.
async fn replayed(
    g: &Gateway,
    candidate: Config,
    flow: &FlowId,
    window: (EpochDay, EpochDay),
) -> Result<Vec<FlowTick>, ApiError> {
    let Some(entry) = g.store.flow(flow).await.map_err(ApiError::store)? else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            "not_found",
            format!("no traffic of flow {flow}"),
        ));
    };
    let records = history(g, &[&candidate], &entry, window).await?;
    let (flow, now) = (flow.clone(), g.clock.now());
    replay_off_runtime(move || replay_ticks(&candidate, &flow, &records, window, now)).await
}

/// Runs a replay (`run`) on the blocking pool.
pub(crate) async fn replay_off_runtime<T: Send + 'static>(
    run: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(run).await.map_err(|e| {
        ApiError::new(
            ErrorKind::Internal,
            "internal",
            format!("replay failed: {e}"),
        )
    })
}

/// A flow's stored traffic that replays of its local days `[from, to)` under each of `configs`
/// read: from the earliest of their [`first_influencing_day`]s (not before the flow's first
/// day), as (time, bytes) — however long the flow's history, only what bears on the window.
/// With the flow's first local day, which the replay needs besides ([`replay_ticks`]).
pub(crate) async fn history(
    g: &Gateway,
    configs: &[&Config],
    entry: &FlowEntry,
    (from, to): (EpochDay, EpochDay),
) -> Result<(EpochDay, Vec<(Instant, u64)>), ApiError> {
    let tz = configs[0]
        .calendar(&entry.flow.country)
        .expect("the window was found in this country")
        .tz();
    let first_day = local_day(tz, entry.first_seen);
    let start = configs
        .iter()
        .map(|c| first_influencing_day(&c.flow_config(&entry.flow).0, from))
        .min()
        .unwrap_or(from)
        .max(first_day);
    let records = g
        .store
        .read_buckets(
            &entry.flow,
            local_midnight(tz, start),
            local_midnight(tz, to),
        )
        .await
        .map_err(ApiError::store)?;
    let records = records.into_iter().map(|b| (b.second, b.bytes)).collect();
    Ok((first_day, records))
}

/// The ticks of `flow` on the local days `[from, to)` replayed from `records` under
/// `config` — only those the live evaluation would have decided by `now` (ended, and the
/// flow's grace after their end passed), as stored ones: a tick still running, or to come,
/// has no traffic yet and would read as an outage. None for a flow `config` does not evaluate.
/// `records` are [`history`]'s, `first_day` the flow's first local day. All CPU.
pub(crate) fn replay_ticks(
    config: &Config,
    flow: &FlowId,
    (first_day, records): &(EpochDay, Vec<(Instant, u64)>),
    (from, to): (EpochDay, EpochDay),
    now: Instant,
) -> Vec<FlowTick> {
    let window = Window {
        from: Some(from),
        to: Some(to),
    };
    let grace = Instant::try_from(config.flow_config(flow).0.grace_seconds).unwrap_or(Instant::MAX);
    replay_flow_since(
        config,
        flow,
        Some(*first_day),
        records.iter().copied(),
        window,
    )
    .unwrap_or_default()
    .into_iter()
    .filter(|(_, end, _)| end.saturating_add(grace) <= now)
    .map(|(start, end, t)| FlowTick {
        start,
        end,
        actual: t.actual,
        status: t.status,
        values: t.values,
    })
    .collect()
}

/// `GET /api/v1/flows/{country}/{lob}/{kind}/{flow}/ticks?from=&to=[&granularity=]`: the
/// flow's ticks whose local day is in `[from, to)` — as stored at its own granularity, or
/// computed from stored traffic at another.
pub async fn ticks(
    State(g): State<Arc<Gateway>>,
    Path(path): Path<(String, String, String, String)>,
    query: Result<Query<TicksQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::query("", e.body_text()))?;
    let flow = flow_of(path)?;
    let (from, to) = (q.from.as_deref(), q.to.as_deref());
    let ticks = flow_ticks(&g, &flow, from, to, q.granularity.as_deref()).await?;
    let rows: Vec<TickRow> = ticks.iter().map(TickRow::of).collect();
    Ok(Json(json!({ "ticks": rows })))
}

/// The ticks of `flow` whose local day is in `[from, to)` (`YYYY-MM-DD`, each required) — as
/// stored at its own granularity, or computed from stored traffic at `granularity` (`15m`,
/// `1h`, …) when that is another. What `GET …/ticks` and the gRPC `Ticks` answer; errors name
/// the query parameter at fault (`from`, `to`, `granularity`).
pub async fn flow_ticks(
    g: &Gateway,
    flow: &FlowId,
    from: Option<&str>,
    to: Option<&str>,
    granularity: Option<&str>,
) -> Result<Vec<FlowTick>, ApiError> {
    let config = g.in_force();
    let (from, to, start, end) = local_window(&config, &flow.country, from, to)?;
    let own = config.flow_config(flow).0.granularity;
    let granularity = match granularity {
        None => own,
        Some(text) => Granularity::parse(text)
            .map_err(|e| ApiError::query("granularity", format!("granularity: {e}")))?,
    };
    if granularity == own {
        return Ok(g
            .store
            .read_ticks(flow, start, end)
            .await
            .map_err(ApiError::store)?
            .iter()
            .map(FlowTick::from)
            .collect());
    }
    let candidate = config
        .with_flow_settings(flow, |s| s.granularity = Some(granularity))
        .map_err(|e| ApiError::query("granularity", format!("granularity: {e}")))?;
    replayed(g, candidate, flow, (from, to)).await
}

/// The body of a simulation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Simulation {
    /// First local day.
    from: String,
    /// First local day not included.
    to: String,
    /// Settings to try on the flow (any of SPEC §5's), over its own; nothing is saved.
    settings: FlowSettings,
    /// `settings` replace the flow's own instead (what `PUT` of them would save: a field left
    /// out is inherited), so an editor can try removing a field.
    #[serde(default)]
    replace: bool,
}

/// `settings` set over `own`, or with `replace` instead of it (what `PUT` of them would
/// save: a field left out is inherited).
pub(crate) fn set(own: &mut FlowSettings, settings: &FlowSettings, replace: bool) {
    if replace {
        *own = settings.clone();
    } else {
        own.merge(settings);
    }
}

/// `POST /api/v1/flows/{country}/{lob}/{kind}/{flow}/simulate` `{"from", "to", "settings",
/// "replace"?}`: the flow's ticks on those local days as they would be with `settings` (set
/// over its own, or with `replace` instead of them) — the detection run
/// over its stored traffic with a candidate configuration (what `flowwatch replay` would give
/// with that configuration).
pub async fn simulate(
    State(g): State<Arc<Gateway>>,
    Path(path): Path<(String, String, String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let sim: Simulation = crate::rest::json_body(body, "simulation")?;
    let flow = flow_of(path)?;
    let config = g.in_force();
    let (from, to, ..) = local_window(&config, &flow.country, Some(&sim.from), Some(&sim.to))?;
    let candidate = config
        .with_flow_settings(&flow, |own| set(own, &sim.settings, sim.replace))
        .map_err(crate::config::settings_error)?;
    let ticks = replayed(&g, candidate, &flow, (from, to)).await?;
    let rows: Vec<TickRow> = ticks.iter().map(TickRow::of).collect();
    Ok(Json(json!({ "ticks": rows })))
}

/// `GET /api/v1/flows/{country}/{lob}/{kind}/{flow}/config`: the flow's effective settings
/// and, for each, where it comes from (`builtIn`, `defaults`, `lob`, `input`, `own`).
pub async fn flow_config(
    State(g): State<Arc<Gateway>>,
    Path(path): Path<(String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let flow = flow_of(path)?;
    let config = g.in_force();
    let (effective, sources) = config.flow_config(&flow);
    Ok(Json(json!({ "config": effective, "sources": sources })))
}

/// The query of a flow's raw traffic.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficQuery {
    from: Option<String>,
    to: Option<String>,
    /// Bucket size in seconds (default 60), from 1 to one day.
    bucket: Option<i64>,
}

/// `GET /api/v1/flows/{country}/{lob}/{kind}/{flow}/traffic?from=&to=[&bucket=SECONDS]`: the
/// stored traffic of those local days summed into buckets of `bucket` seconds counted from
/// the first local midnight; empty buckets are left out.
pub async fn traffic(
    State(g): State<Arc<Gateway>>,
    Path(path): Path<(String, String, String, String)>,
    query: Result<Query<TrafficQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::query("", e.body_text()))?;
    let flow = flow_of(path)?;
    let config = g.in_force();
    let (.., start, end) =
        local_window(&config, &flow.country, q.from.as_deref(), q.to.as_deref())?;
    let size = q.bucket.unwrap_or(60);
    if !(1..=86_400).contains(&size) {
        return Err(ApiError::query(
            "bucket",
            format!("bucket: {size} is not within 1–86400 seconds"),
        ));
    }
    let mut sums: BTreeMap<Instant, (u64, u64)> = BTreeMap::new();
    for b in g
        .store
        .read_buckets(&flow, start, end)
        .await
        .map_err(ApiError::store)?
    {
        let at = start + (b.second - start).div_euclid(size) * size;
        let sum = sums.entry(at).or_default();
        sum.0 += b.bytes;
        sum.1 += b.records;
    }
    let buckets: Vec<Value> = sums
        .into_iter()
        .map(|(t, (bytes, records))| json!({"time": utc_string(t), "bytes": bytes, "records": records}))
        .collect();
    Ok(Json(json!({ "bucketSeconds": size, "traffic": buckets })))
}

#[cfg(test)]
mod tests {
    use flowwatch_storage::embedded::EmbeddedStore;
    use flowwatch_storage::prelude::*;
    use flowwatch_storage::{EventPage, FlowEntry, WriteOutcome};

    use super::*;

    /// A store that answers the reads of one flow, one country or one LoB, and refuses the
    /// reads of every flow: a view about a few flows that read them all would fail.
    struct PointReadsOnly(EmbeddedStore);

    fn whole() -> flowwatch_storage::Error {
        flowwatch_storage::Error::Invalid {
            what: "read of every flow".into(),
        }
    }

    #[async_trait::async_trait]
    impl RegistryStore for PointReadsOnly {
        async fn register_flows(&self, flows: Vec<FlowEntry>) -> flowwatch_storage::Result<()> {
            self.0.register_flows(flows).await
        }
        async fn flows(&self) -> flowwatch_storage::Result<Vec<FlowEntry>> {
            Err(whole())
        }
        async fn flow(&self, flow: &FlowId) -> flowwatch_storage::Result<Option<FlowEntry>> {
            self.0.flow(flow).await
        }
        async fn flows_in(&self, scope: Scope<'_>) -> flowwatch_storage::Result<Vec<FlowEntry>> {
            self.0.flows_in(scope).await
        }
    }

    #[async_trait::async_trait]
    impl TickStore for PointReadsOnly {
        async fn write_ticks(
            &self,
            ticks: Vec<StoredTick>,
        ) -> flowwatch_storage::Result<WriteOutcome> {
            self.0.write_ticks(ticks).await
        }
        async fn read_ticks(
            &self,
            flow: &FlowId,
            from: Instant,
            to: Instant,
        ) -> flowwatch_storage::Result<Vec<StoredTick>> {
            self.0.read_ticks(flow, from, to).await
        }
        async fn latest_statuses(&self) -> flowwatch_storage::Result<Vec<StoredTick>> {
            Err(whole())
        }
        async fn latest_statuses_in(
            &self,
            scope: Scope<'_>,
        ) -> flowwatch_storage::Result<Vec<StoredTick>> {
            self.0.latest_statuses_in(scope).await
        }
        async fn append_events(&self, events: Vec<Event>) -> flowwatch_storage::Result<()> {
            self.0.append_events(events).await
        }
        async fn event(&self, id: &str) -> flowwatch_storage::Result<Option<Event>> {
            self.0.event(id).await
        }
        async fn query_events(&self, query: EventQuery) -> flowwatch_storage::Result<EventPage> {
            self.0.query_events(query).await
        }
        async fn outbox_pending(&self, limit: usize) -> flowwatch_storage::Result<Vec<Event>> {
            self.0.outbox_pending(limit).await
        }
        async fn outbox_done(&self, ids: Vec<String>) -> flowwatch_storage::Result<()> {
            self.0.outbox_done(ids).await
        }
        async fn outbox_len(&self) -> flowwatch_storage::Result<u64> {
            self.0.outbox_len().await
        }
    }

    /// The states, or a panic saying why not.
    fn ok(r: Result<Vec<FlowState>, ApiError>) -> Vec<FlowState> {
        r.unwrap_or_else(|e| panic!("{}", e.message()))
    }

    fn id(country: &str, lob: &str, kind: FlowKind, name: &str) -> FlowId {
        FlowId::new(country, lob, kind, name).expect("valid id")
    }

    /// A LoB's or a country's flows (seen or only configured, with their latest ticks) are
    /// read alone, and are those of the whole list.
    #[tokio::test]
    async fn the_flows_of_a_lob_or_a_country_are_read_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = PointReadsOnly(EmbeddedStore::open(dir.path()).await.unwrap());
        let config = Config::from_json(
            r#"{"countries": {
                "CZ": {"timezone": "Europe/Prague", "lobs": {
                    "GSM": {"inputs": {"C": {}}}, "SMS": {"config": {"enabled": false}}}},
                "DE": {"timezone": "Europe/Berlin", "lobs": {"GSM": {}}}}}"#,
        )
        .unwrap();
        let seen = [
            id("CZ", "GSM", FlowKind::Input, "A"),
            id("CZ", "GSM", FlowKind::Forward, "A:X"),
            id("CZ", "GSMX", FlowKind::Input, "A"),
            id("CZ", "SMS", FlowKind::Input, "B"),
            id("DE", "GSM", FlowKind::Input, "D"),
        ];
        let entries = seen.iter().map(|f| FlowEntry {
            flow: f.clone(),
            first_seen: 0,
            partition: 0,
        });
        store.register_flows(entries.collect()).await.unwrap();
        let tick = |f: &FlowId, status| StoredTick {
            flow: f.clone(),
            start: 3600,
            end: 7200,
            actual: 5,
            status,
            values: None,
            evaluated_at: 7300,
            epoch: 1,
        };
        store
            .write_ticks(vec![
                tick(&seen[0], Status::Outage),
                tick(&seen[3], Status::Ok),
                tick(&seen[4], Status::Warning),
            ])
            .await
            .unwrap();

        let all = ok(flow_states(&store.0, &config, None).await);
        assert_eq!(all.len(), 6, "five seen, one only configured");
        assert!(
            flow_states(&store, &config, None).await.is_err(),
            "the check tells"
        );
        for scope in [
            Scope::lob("CZ", "GSM"),
            Scope::lob("CZ", "SMS"),
            Scope::country("CZ"),
            Scope::country("DE"),
            Scope::country("XX"),
        ] {
            let alone = ok(flow_states(&store, &config, Some(scope)).await);
            let expected: Vec<FlowState> = all
                .iter()
                .filter(|s| scope.contains(&s.flow))
                .cloned()
                .collect();
            assert_eq!(alone, expected, "{scope:?}");
        }
        let gsm = ok(flow_states(&store, &config, Some(Scope::lob("CZ", "GSM"))).await);
        let names: Vec<&str> = gsm.iter().map(|s| s.flow.name.as_str()).collect();
        assert_eq!(names, ["A:X", "A", "C"]);
        assert_eq!(gsm[1].latest.map(|t| t.status), Some(Status::Outage));
        assert_eq!(gsm[2].latest, None);
        let sms = ok(flow_states(&store, &config, Some(Scope::lob("CZ", "SMS"))).await);
        assert_eq!(sms[0].column(), "DISABLED");
    }
}
