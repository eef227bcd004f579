//! `POST /api/v1/backtest`: what candidate settings at a scope (a country, a LoB or one flow)
//! would have raised on the stored traffic of its flows, against the configuration in force —
//! the `OUTAGE` and `WARNING` episodes and the status changes of `flowwatch_core::compare`, in
//! total and for the flows that differ most. Each flow is replayed as a simulation replays it
//! (`views::replay_ticks`), under both configurations; nothing is saved.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use flowwatch_core::compare::{self, Episodes, Tally};
use flowwatch_core::config::{Config, FlowSettings};
use flowwatch_core::time::EpochDay;
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_ports::ErrorKind;
use flowwatch_storage::{FlowEntry, Scope};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Gateway;
use crate::error::ApiError;
use crate::views::{self, FlowTick};

/// The most local days one backtest replays: a whole country's flows over a quarter.
pub const MAX_DAYS: EpochDay = 92;

/// Flows listed when the request does not say (as `flowwatch replay --compare` lists).
const DEFAULT_LIMIT: usize = 20;

/// The most flows a request may list.
const MAX_LIMIT: usize = 1000;

/// The body of a backtest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backtest {
    /// First local day (`YYYY-MM-DD`, the scope's country's date).
    from: String,
    /// First local day not included.
    to: String,
    /// Whose flows, and where the candidate is set.
    scope: BacktestScope,
    /// Settings of SPEC §5 to try at the scope, over its own; nothing is saved.
    candidate: FlowSettings,
    /// `candidate` replaces the scope's own settings instead (what `PUT` of them would save:
    /// a field left out is inherited).
    #[serde(default)]
    replace: bool,
    /// How many of the flows that differ to list, 1–1000 (default 20).
    limit: Option<usize>,
}

/// The flows of a backtest: a country's, a LoB's (`lob`), or one (`lob`, `kind`, `flow`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestScope {
    country: String,
    lob: Option<String>,
    kind: Option<String>,
    flow: Option<String>,
}

/// A scope, checked: where the candidate settings are set.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// Every LoB of a country (the document has no country layer): every flow of it.
    Country(String),
    /// A LoB's settings: every flow of it.
    Lob(String, String),
    /// One flow's own settings.
    Flow(FlowId),
}

fn invalid(path: &str, message: String) -> ApiError {
    ApiError::new(ErrorKind::Invalid, "invalid_body", message).at(path)
}

impl Target {
    fn of(s: &BacktestScope) -> Result<Target, ApiError> {
        fn named(text: &Option<String>) -> Option<&str> {
            text.as_deref().filter(|t| !t.is_empty())
        }
        if s.country.is_empty() {
            let why = "scope.country: empty (a country code, e.g. CZ)";
            return Err(invalid("scope.country", why.to_owned()));
        }
        let country = s.country.clone();
        match (named(&s.lob), named(&s.kind), named(&s.flow)) {
            (None, None, None) => Ok(Target::Country(country)),
            (Some(lob), None, None) => Ok(Target::Lob(country, lob.to_owned())),
            (Some(lob), Some(kind), Some(name)) => {
                let kind = FlowKind::parse(kind).filter(|_| !kind.ends_with('s'));
                let kind = kind.ok_or_else(|| {
                    let why = format!("scope.kind: unknown kind {:?} (input or forward)", s.kind);
                    invalid("scope.kind", why)
                })?;
                FlowId::new(&country, lob, kind, name)
                    .map(Target::Flow)
                    .map_err(|e| invalid("scope.flow", format!("scope.flow: {e}")))
            }
            (None, ..) => Err(invalid(
                "scope.lob",
                "scope.lob: required with scope.kind and scope.flow".to_owned(),
            )),
            (Some(_), None, Some(_)) => Err(invalid(
                "scope.kind",
                "scope.kind: required with scope.flow (input or forward)".to_owned(),
            )),
            (Some(_), Some(_), None) => Err(invalid(
                "scope.flow",
                "scope.flow: required with scope.kind (a flow's name)".to_owned(),
            )),
        }
    }

    fn country(&self) -> &str {
        match self {
            Target::Country(c) | Target::Lob(c, _) => c,
            Target::Flow(f) => &f.country,
        }
    }

    /// The flows of the scope that have stored traffic (those a replay can evaluate); a LoB
    /// neither configured nor seen, or a flow without traffic, is a bad scope.
    async fn flows(&self, g: &Gateway, config: &Config) -> Result<Vec<FlowEntry>, ApiError> {
        let store = g.store.as_ref();
        match self {
            Target::Country(c) => store
                .flows_in(Scope::country(c))
                .await
                .map_err(ApiError::store),
            Target::Lob(c, lob) => {
                let flows = store
                    .flows_in(Scope::lob(c, lob))
                    .await
                    .map_err(ApiError::store)?;
                let configured = config
                    .document()
                    .countries
                    .get(c)
                    .is_some_and(|country| country.lobs.contains_key(lob));
                if flows.is_empty() && !configured {
                    let why = format!(
                        "scope.lob: no LoB {c}/{lob}: neither configured nor seen in traffic"
                    );
                    return Err(invalid("scope.lob", why));
                }
                Ok(flows)
            }
            Target::Flow(f) => match store.flow(f).await.map_err(ApiError::store)? {
                Some(entry) => Ok(vec![entry]),
                None => {
                    let why = format!("scope.flow: no traffic of flow {f}");
                    Err(invalid("scope.flow", why))
                }
            },
        }
    }

    /// The configuration in force with `candidate` set at this scope (on every LoB of a
    /// country that `flows` or the document names).
    fn candidate(
        &self,
        config: &Config,
        flows: &[FlowEntry],
        candidate: &FlowSettings,
        replace: bool,
    ) -> Result<Config, ApiError> {
        let set = |own: &mut FlowSettings| views::set(own, candidate, replace);
        match self {
            Target::Flow(f) => config.with_flow_settings(f, set),
            Target::Lob(c, lob) => config.with_lob_settings(c, [lob.as_str()], set),
            Target::Country(c) => {
                let configured = config.document().countries.get(c);
                let mut lobs: Vec<&str> = flows.iter().map(|f| f.flow.lob.as_str()).collect();
                lobs.extend(
                    configured
                        .iter()
                        .flat_map(|c| c.lobs.keys().map(String::as_str)),
                );
                lobs.sort_unstable();
                lobs.dedup();
                config.with_lob_settings(c, lobs, set)
            }
        }
        .map_err(crate::config::candidate_error)
    }
}

/// The episodes of a flow's ticks in time order; None without a tick (a flow the
/// configuration does not evaluate, or without traffic in the window's reach).
fn episodes(ticks: &[FlowTick]) -> Option<Episodes> {
    let mut tally = Tally::default();
    for t in ticks {
        tally.push(t.status);
    }
    (!ticks.is_empty()).then(|| tally.episodes())
}

/// One flow's episodes under the configuration in force and under the candidate.
type Counted = (FlowId, Option<Episodes>, Option<Episodes>);

/// `POST /api/v1/backtest` `{"from", "to", "scope": {"country", "lob"?, "kind"?, "flow"?},
/// "candidate", "replace"?, "limit"?}`: every flow of the scope with stored traffic replayed
/// on those local days under the configuration in force and under it with `candidate` set at
/// the scope → `{"flowCount", "currentFlows", "candidateFlows", "current", "candidate",
/// "flows": [{"country", "lob", "kind", "flow", "current", "candidate"}]}`, each count
/// `{"outage", "warning", "changes"}`, the flows those whose counts differ, most first.
/// At most [`MAX_DAYS`] days; flows are replayed a few at a time on the blocking pool.
pub async fn backtest(
    State(g): State<Arc<Gateway>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let b: Backtest = crate::rest::json_body(body, "backtest")?;
    let limit = b.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        let why = format!("limit: {limit} is not within 1–{MAX_LIMIT}");
        return Err(invalid("limit", why));
    }
    let target = Target::of(&b.scope)?;
    let config = g.in_force();
    let country = target.country();
    if config.calendar(country).is_none() {
        let why = format!(
            "scope.country: {}",
            flowwatch_core::record::unknown_country(country)
        );
        return Err(invalid("scope.country", why));
    }
    let (from, to, ..) = views::local_window(&config, country, Some(&b.from), Some(&b.to))?;
    if to - from > MAX_DAYS {
        let why = format!("to: {} days from {}, at most {MAX_DAYS}", to - from, b.from);
        return Err(ApiError::query("to", why));
    }
    let flows = target.flows(&g, &config).await?;
    let candidate = Arc::new(target.candidate(&config, &flows, &b.candidate, b.replace)?);
    let flow_count = flows.len();
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let now = g.clock.now();
    let counted: Vec<Counted> = stream::iter(flows)
        .map(|entry| {
            let (g, current, candidate) = (&g, config.clone(), candidate.clone());
            async move {
                let records =
                    views::history(g, &[&current, &candidate], &entry, (from, to)).await?;
                let replay = move || {
                    let flow = entry.flow;
                    let run = |c: &Config| {
                        episodes(&views::replay_ticks(c, &flow, &records, (from, to), now))
                    };
                    let counts = (run(&current), run(&candidate));
                    (flow, counts.0, counts.1)
                };
                views::replay_off_runtime(replay).await
            }
        })
        .buffer_unordered(parallel)
        .try_collect()
        .await?;
    let mut current = BTreeMap::new();
    let mut tried = BTreeMap::new();
    for (flow, a, b) in counted {
        if let Some(a) = a {
            current.insert(flow.clone(), a);
        }
        if let Some(b) = b {
            tried.insert(flow, b);
        }
    }
    let c = compare::compare(&current, &tried, limit);
    let flows: Vec<Value> = c
        .flows
        .iter()
        .map(|f| {
            json!({"country": f.flow.country, "lob": f.flow.lob, "kind": f.flow.kind,
                "flow": f.flow.name, "current": f.current, "candidate": f.candidate})
        })
        .collect();
    Ok(Json(json!({
        "flowCount": flow_count,
        "currentFlows": c.current_flows,
        "candidateFlows": c.candidate_flows,
        "current": c.current,
        "candidate": c.candidate,
        "flows": flows,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(lob: Option<&str>, kind: Option<&str>, flow: Option<&str>) -> BacktestScope {
        BacktestScope {
            country: "CZ".into(),
            lob: lob.map(Into::into),
            kind: kind.map(Into::into),
            flow: flow.map(Into::into),
        }
    }

    #[test]
    fn a_scope_is_a_country_a_lob_or_one_flow() {
        let of = |lob, kind, flow| Target::of(&scope(lob, kind, flow));
        assert_eq!(of(None, None, None).unwrap(), Target::Country("CZ".into()));
        assert_eq!(
            of(Some("GSM"), None, None).unwrap(),
            Target::Lob("CZ".into(), "GSM".into())
        );
        let a = FlowId::new("CZ", "GSM", FlowKind::Forward, "A:B").unwrap();
        assert_eq!(
            of(Some("GSM"), Some("forward"), Some("A:B")).unwrap(),
            Target::Flow(a)
        );
        for (lob, kind, flow, path) in [
            (None, Some("input"), Some("A"), "scope.lob"),
            (Some("GSM"), None, Some("A"), "scope.kind"),
            (Some("GSM"), Some("input"), None, "scope.flow"),
            (Some("GSM"), Some("inputs"), Some("A"), "scope.kind"),
            (Some("GSM"), Some("forward"), Some("A"), "scope.flow"),
        ] {
            let e = of(lob, kind, flow).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Invalid);
            assert!(e.message().starts_with(path), "{path}: {}", e.message());
        }
        let mut nameless = scope(None, None, None);
        nameless.country.clear();
        assert!(Target::of(&nameless).is_err());
    }

    #[test]
    fn episodes_are_counted_only_for_a_flow_with_ticks() {
        assert_eq!(episodes(&[]), None);
        let tick = |status| FlowTick {
            start: 0,
            end: 3600,
            actual: 0,
            status,
            values: None,
        };
        use flowwatch_core::detection::Status::{Ok, Outage};
        let e = episodes(&[tick(Ok), tick(Outage), tick(Outage), tick(Ok)]).unwrap();
        assert_eq!((e.outage, e.warning, e.changes), (1, 0, 3));
    }
}
