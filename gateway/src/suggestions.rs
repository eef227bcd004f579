//! `GET /api/v1/suggestions?country=&from=&to=` (issue 21): what a country's calendar seems
//! to miss, from its flows' stored ticks ([`flowwatch_core::suggest`]): days most of its flows
//! carry clearly less than their similar days (a holiday, a lazy day) and weekdays that differ
//! from the rest of their profile week after week (`independentDays` of a LoB or a flow).
//! Each comes with its evidence and the change that applies it — the configuration routes'
//! compare-and-set on the version read, so a suggestion made stale by another change is
//! refused (409), never half-applied.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use flowwatch_core::id::percent_encode;
use flowwatch_core::suggest::{Country, DayKind, DaySuggestion, WeekdaySuggestion, daily_totals};
use flowwatch_core::time::{EpochDay, date_of, local_day, local_midnight};
use flowwatch_storage::Scope;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Gateway;
use crate::error::ApiError;

/// Weeks read when the query names no `from`.
const WEEKS: i32 = 8;
/// The longest window read.
const MAX_DAYS: i32 = 190;

/// The query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestionsQuery {
    /// The country.
    country: String,
    /// First local day read (`YYYY-MM-DD`); eight weeks before `to` when absent.
    from: Option<String>,
    /// First local day not read; today when absent.
    to: Option<String>,
}

fn date(field: &str, text: &str) -> Result<EpochDay, ApiError> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(flowwatch_core::time::epoch_day)
        .map_err(|_| ApiError::query(field, format!("{field}: \"{text}\" is not YYYY-MM-DD")))
}

fn day_text(d: EpochDay) -> String {
    date_of(d).to_string()
}

/// `{"country", "from", "to", "version", "days": [...], "weekdays": [...]}`.
pub async fn suggestions(
    State(g): State<Arc<Gateway>>,
    query: Result<Query<SuggestionsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::query("", e.body_text()))?;
    let in_force = g.config.borrow().clone();
    let config = in_force.config.clone();
    let calendar = config.calendar(&q.country).ok_or_else(|| {
        ApiError::query(
            "country",
            format!(
                "country: \"{}\" has no calendar (not configured, no known zone)",
                q.country
            ),
        )
    })?;
    let tz = calendar.tz();
    let to = match &q.to {
        Some(t) => date("to", t)?,
        None => local_day(tz, g.clock.now()),
    };
    let from = match &q.from {
        Some(f) => date("from", f)?,
        None => to - 7 * WEEKS,
    };
    if to <= from || to - from > MAX_DAYS {
        return Err(ApiError::query(
            "to",
            format!("to: must be after from, and at most {MAX_DAYS} days after it"),
        ));
    }
    let flows = (g.store.flows_in(Scope::country(&q.country)).await).map_err(ApiError::store)?;
    let (start, end) = (local_midnight(tz, from), local_midnight(tz, to));
    let mut daily = Vec::with_capacity(flows.len());
    for f in flows {
        let ticks = (g.store.read_ticks(&f.flow, start, end).await).map_err(ApiError::store)?;
        daily.push((
            f.flow,
            daily_totals(tz, ticks.into_iter().map(|t| (t.start, t.actual))),
        ));
    }
    let country = Country::of(&config, &q.country, daily);
    let version = in_force.version;
    let days: Vec<Value> = (country.missing_days(from..to).iter())
        .map(|s| day_json(&country, s, version))
        .collect();
    let weekdays: Vec<Value> = (country.independent_weekdays(from..to).iter())
        .map(|s| weekday_json(&config, &q.country, s, version))
        .collect();
    Ok(Json(json!({
        "country": q.country,
        "from": day_text(from),
        "to": day_text(to),
        "version": version,
        "days": days,
        "weekdays": weekdays,
    })))
}

fn day_json(country: &Country, s: &DaySuggestion, version: u64) -> Value {
    let (kind, field, listed) = match s.kind {
        DayKind::Holiday => ("holiday", "holidays", &country.holidays),
        DayKind::LazyDay => ("lazyDay", "lazyDays", &country.lazy_days),
    };
    let list: BTreeSet<String> = (listed.iter().copied().chain([s.day]))
        .map(day_text)
        .collect();
    json!({
        "date": day_text(s.day),
        "kind": kind,
        "evidence": {
            "flows": s.flows,
            "low": s.low,
            "ratio": s.ratio,
            "sundayRatio": s.sunday_ratio,
            "bytes": s.bytes,
            "usualBytes": s.usual_bytes,
            "compared": s.compared.iter().copied().map(day_text).collect::<Vec<_>>(),
        },
        "apply": {
            "method": "PATCH",
            "path": format!("/api/v1/config/countries/{}", segment(&country.code)),
            "body": {"version": version, field: list},
        },
    })
}

fn weekday_json(
    config: &flowwatch_core::config::Config,
    country: &str,
    s: &WeekdaySuggestion,
    version: u64,
) -> Value {
    let (path, days, flow) = match &s.flow {
        None => {
            let own = (config.document().countries.get(country))
                .and_then(|c| c.lobs.get(&s.lob))
                .and_then(|l| l.config.independent_days.clone())
                .unwrap_or_default();
            let path = format!(
                "/api/v1/config/countries/{}/lobs/{}",
                segment(country),
                segment(&s.lob)
            );
            (path, own, Value::Null)
        }
        Some(f) => {
            let path = format!(
                "/api/v1/config/flows/{}/{}/{}/{}",
                segment(&f.country),
                segment(&f.lob),
                f.kind.as_str(),
                segment(&f.name)
            );
            let flow = json!({"kind": f.kind, "name": f.name, "input": f.input_name()});
            (path, config.flow_config(f).0.independent_days, flow)
        }
    };
    let days: BTreeSet<u8> = days.into_iter().chain([s.weekday]).collect();
    let mut v = json!({
        "lob": s.lob,
        "weekday": s.weekday,
        "evidence": {
            "peers": s.peers,
            "ratio": s.ratio,
            "weeks": s.weeks,
            "consistent": s.consistent,
            "flows": s.flows,
            "of": s.of,
        },
        "apply": {
            "method": "PATCH",
            "path": path,
            "body": {"version": version, "settings": {"independentDays": days}},
        },
    });
    if !flow.is_null() {
        v["flow"] = flow;
    }
    v
}

/// `text` as one path segment.
fn segment(text: &str) -> String {
    percent_encode(text, b"-_.~")
}
