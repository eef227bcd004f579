//! `GET /api/v1/config` → `{"version", "document"}`; `PUT /api/v1/config` `{"version",
//! "document"}` saves a new version if `version` is still the newest (409 otherwise), after
//! validating the whole document (400 naming each field's path; nothing is applied). A saved
//! version is put in force at once: the workers take it from their next tick.
//!
//! Parts of it, each with the same compare-and-set (`version` in the body, or `?version=` on
//! `DELETE`) and validation (400 naming the request's field): a country's calendar
//! (`/api/v1/config/countries/{country}`, and `…/fill-holidays` from the built-in generator), a
//! LoB's settings (`…/countries/{country}/lobs/{lob}`) and one flow's own settings
//! (`/api/v1/config/flows/{country}/{lob}/{kind}/{flow}`): `GET`, `PUT` (add or replace),
//! `PATCH` (the fields given), `DELETE`. Every save is audited with who made it.

use flowwatch_ports::ErrorKind;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::{Extension, Json};
use flowwatch_core::calendar::holidays::{COUNTRIES, national_holidays};
use flowwatch_core::config::{Config, ConfigError, Document, FlowSettings};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Gateway;
use crate::auth::Caller;
use crate::error::ApiError;
use flowwatch_ports::InForce;
use flowwatch_ports::in_force::publish;

/// The body of `PUT /api/v1/config`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Put {
    /// The version the change is based on (0: none saved yet).
    version: u64,
    /// The whole document (SPEC §5).
    document: Value,
}

/// The configuration in force.
pub async fn get_config(State(g): State<Arc<Gateway>>) -> Json<Value> {
    let in_force = g.config.borrow().clone();
    Json(answer(&in_force))
}

fn answer(in_force: &InForce) -> Value {
    json!({"version": in_force.version, "document": in_force.config.document()})
}

/// Saves a new version (compare-and-set on `version`) and puts it in force.
pub async fn put_config(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let put: Put = crate::rest::json_body(body, "request")?;
    let config = Config::from_json(&put.document.to_string())
        .map_err(|e| document_error(e, |p| join("document", p)))?;
    save(&g, &caller, "the whole document", put.version, config).await
}

/// Stores `config` as the version after `expected` and puts it in force.
async fn save(
    g: &Gateway,
    who: &Caller,
    what: &str,
    expected: u64,
    config: Config,
) -> Result<Json<Value>, ApiError> {
    let document = serde_json::to_value(config.document())
        .map_err(|e| ApiError::new(ErrorKind::Internal, "internal", e.to_string()))?;
    let saved = g
        .store
        .config_put(expected, document, &who.user)
        .await
        .map_err(|e| match e {
            flowwatch_storage::Error::Conflict { .. } => conflict(e.to_string()),
            other => ApiError::store(other),
        })?;
    let in_force = InForce {
        version: saved.version,
        config: Arc::new(config),
    };
    let body = answer(&in_force);
    tracing::info!(
        version = saved.version,
        who.user,
        "configuration saved: {what}"
    );
    g.audit(
        &who.user,
        "config.save",
        &format!("version {}", saved.version),
        json!({ "change": what }),
    )
    .await;
    publish(&g.config, in_force);
    Ok(Json(body))
}

fn conflict(message: String) -> ApiError {
    ApiError::new(ErrorKind::Conflict, "version_conflict", message).at("version")
}

/// The configuration in force, if `version` is still the newest (409 otherwise).
fn based_on(g: &Gateway, version: u64) -> Result<InForce, ApiError> {
    let in_force = g.config.borrow().clone();
    if version != in_force.version {
        return Err(conflict(format!(
            "configuration version conflict: expected version {version}, the newest is {}",
            in_force.version
        )));
    }
    Ok(in_force)
}

fn not_configured(what: String) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        "not_found",
        format!("{what} is not in the configuration"),
    )
}

/// `prefix.path`, or `prefix` for the whole.
fn join(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}.{path}")
    }
}

/// A document the configuration refuses: 400 at the request's path of the first problem (the
/// document's paths mapped by `at`), every problem in `fields`.
fn document_error(e: ConfigError, at: impl Fn(&str) -> String) -> ApiError {
    let mut errors = e.errors.clone();
    for f in &mut errors {
        f.path = at(&f.path);
    }
    let path = errors.first().map(|f| f.path.clone()).unwrap_or_default();
    ApiError::new(ErrorKind::Invalid, "invalid_config", e.to_string())
        .at(path)
        .with_fields(serde_json::to_value(&errors).unwrap_or_default())
}

/// Settings (of a flow or a LoB) that the document refuses, at the request's
/// `settings.<field>` (the document's path is `countries.….config.<field>`).
pub(crate) fn settings_error(e: ConfigError) -> ApiError {
    document_error(e, settings_path)
}

/// Candidate settings of a backtest that the document refuses, at the request's
/// `candidate.<field>`.
pub(crate) fn candidate_error(e: ConfigError) -> ApiError {
    document_error(e, |path| format!("candidate{}", config_field(path)))
}

/// `countries.….config.<field>` as the request's `settings.<field>`.
fn settings_path(path: &str) -> String {
    format!("settings{}", config_field(path))
}

/// The `.<field>` of a document path `countries.….config.<field>` (empty for none).
fn config_field(path: &str) -> &str {
    path.rsplit_once(".config").map_or("", |(_, field)| field)
}

/// The version of a `DELETE …?version=N`.
fn based(query: Result<Query<Based>, QueryRejection>) -> Result<u64, ApiError> {
    let Query(based) = query.map_err(|e| ApiError::query("version", e.body_text()))?;
    Ok(based.version)
}

/// A change of one flow's own settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowChange {
    /// The version the change is based on.
    version: u64,
    /// The settings (SPEC §5 names).
    settings: FlowSettings,
}

/// The version a removal is based on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Based {
    version: u64,
}

/// How a flow's own settings change.
enum Edit {
    /// Replaced by these (a field left out is inherited).
    Replace(FlowSettings),
    /// These fields set, the others kept.
    Merge(FlowSettings),
    /// The flow's entry removed: everything inherited.
    Remove,
}

/// Saves the configuration in force with one flow's own settings edited, if `version` is
/// still the newest.
async fn edit_flow(
    g: &Gateway,
    who: &Caller,
    path: (String, String, String, String),
    version: u64,
    edit: Edit,
) -> Result<Json<Value>, ApiError> {
    let flow = crate::views::flow_of(path)?;
    let in_force = based_on(g, version)?;
    let what = match &edit {
        Edit::Replace(_) => format!("flow {flow}: settings replaced"),
        Edit::Merge(_) => format!("flow {flow}: settings changed"),
        Edit::Remove => format!("flow {flow}: own settings removed"),
    };
    let config = match edit {
        Edit::Replace(settings) => in_force
            .config
            .with_flow_settings(&flow, |own| *own = settings),
        Edit::Merge(settings) => in_force
            .config
            .with_flow_settings(&flow, |own| own.merge(&settings)),
        Edit::Remove => in_force
            .config
            .without_flow_settings(&flow)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::NotFound,
                    "not_found",
                    format!("flow {flow} has no settings of its own"),
                )
            })?,
    }
    .map_err(settings_error)?;
    save(g, who, &what, version, config).await
}

/// `PUT /api/v1/config/flows/{country}/{lob}/{kind}/{flow}` `{"version", "settings"}`: the
/// flow's own settings replaced (a field left out is inherited); with `PATCH`, the fields
/// given are set and the flow's others kept. Enabling and disabling is `{"enabled": false}`.
pub async fn change_flow(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    method: Method,
    Path(path): Path<(String, String, String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let change: FlowChange = crate::rest::json_body(body, "change")?;
    let edit = if method == Method::PATCH {
        Edit::Merge(change.settings)
    } else {
        Edit::Replace(change.settings)
    };
    edit_flow(&g, &caller, path, change.version, edit).await
}

/// `DELETE` of the same `?version=N`: the flow's entry removed, everything inherited (its
/// traffic and ticks stay).
pub async fn delete_flow(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Path(path): Path<(String, String, String, String)>,
    query: Result<Query<Based>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    edit_flow(&g, &caller, path, based(query)?, Edit::Remove).await
}

/// A country's calendar as the routes take it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CountryChange {
    /// The version the change is based on.
    version: u64,
    /// IANA zone (optional for the countries with a built-in one).
    #[serde(default)]
    timezone: Option<String>,
    /// National holidays, `YYYY-MM-DD`.
    #[serde(default)]
    holidays: Option<Vec<String>>,
    /// Quieter work days, `YYYY-MM-DD`.
    #[serde(default)]
    lazy_days: Option<Vec<String>>,
}

/// The document's paths of `country`'s entry, as the country routes' request paths.
fn country_path(country: &str) -> impl Fn(&str) -> String {
    let prefix = format!("countries.{country}.");
    move |path: &str| path.strip_prefix(&prefix).unwrap_or(path).to_owned()
}

/// Saves the document in force with `change` made to it, if `version` is still the newest; the
/// document's problems mapped to request paths by `at`.
async fn edit_document(
    g: &Gateway,
    who: &Caller,
    what: &str,
    version: u64,
    at: impl Fn(&str) -> String,
    change: impl FnOnce(&mut Document) -> Result<(), ApiError>,
) -> Result<Json<Value>, ApiError> {
    let mut document = based_on(g, version)?.config.document().clone();
    change(&mut document)?;
    let config = Config::new(document).map_err(|e| document_error(e, at))?;
    save(g, who, what, version, config).await
}

/// `GET /api/v1/config/countries/{country}`: its calendar (the zone in force and whether it
/// is the built-in one), its LoBs, and the version.
pub async fn get_country(
    State(g): State<Arc<Gateway>>,
    Path(country): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let in_force = g.config.borrow().clone();
    let entry = in_force
        .config
        .document()
        .countries
        .get(&country)
        .ok_or_else(|| not_configured(format!("country {country:?}")))?;
    let zone = in_force.config.calendar(&country).map(|c| c.tz().name());
    Ok(Json(json!({
        "version": in_force.version,
        "country": country,
        "timezone": zone,
        "timezoneSource": if entry.timezone.is_some() { "own" } else { "builtIn" },
        "holidays": entry.holidays,
        "lazyDays": entry.lazy_days,
        "lobs": entry.lobs.keys().collect::<Vec<_>>(),
    })))
}

/// `PUT /api/v1/config/countries/{country}` `{"version", "timezone"?, "holidays"?,
/// "lazyDays"?}`: adds the country or replaces its calendar (a field left out is emptied; its
/// LoBs stay); with `PATCH`, only the fields given change.
pub async fn change_country(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    method: Method,
    Path(country): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let change: CountryChange = crate::rest::json_body(body, "change")?;
    let what = format!("country {country}: calendar set");
    edit_document(
        &g,
        &caller,
        &what,
        change.version,
        country_path(&country),
        |d| {
            let entry = d.countries.entry(country.clone()).or_default();
            if method == Method::PATCH {
                if change.timezone.is_some() {
                    entry.timezone = change.timezone;
                }
                if let Some(h) = change.holidays {
                    entry.holidays = h;
                }
                if let Some(l) = change.lazy_days {
                    entry.lazy_days = l;
                }
            } else {
                entry.timezone = change.timezone;
                entry.holidays = change.holidays.unwrap_or_default();
                entry.lazy_days = change.lazy_days.unwrap_or_default();
            }
            Ok(())
        },
    )
    .await
}

/// `DELETE /api/v1/config/countries/{country}?version=`: the country's entry removed, with
/// its LoBs' and flows' settings (their traffic and ticks stay; a country with a built-in zone
/// is still taken by ingest).
pub async fn delete_country(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Path(country): Path<String>,
    query: Result<Query<Based>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let what = format!("country {country}: removed");
    edit_document(
        &g,
        &caller,
        &what,
        based(query)?,
        country_path(&country),
        |d| {
            d.countries
                .remove(&country)
                .map(drop)
                .ok_or_else(|| not_configured(format!("country {country:?}")))
        },
    )
    .await
}

/// The body of the holiday fill.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fill {
    /// The version the change is based on.
    version: u64,
    /// The first year filled.
    from: i32,
    /// The last year filled.
    to: i32,
}

/// `POST /api/v1/config/countries/{country}/fill-holidays` `{"version", "from", "to"}`: the
/// built-in national holidays of those years added to the country's (kept sorted, no
/// duplicates; the country added if needed).
pub async fn fill_holidays(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Path(country): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let fill: Fill = crate::rest::json_body(body, "fill")?;
    if !(1583..=9999).contains(&fill.from) || fill.to < fill.from || fill.to - fill.from > 100 {
        return Err(ApiError::new(
            ErrorKind::Invalid,
            "invalid_body",
            format!(
                "years {}..{} are not a range of at most 100 Gregorian years",
                fill.from, fill.to
            ),
        )
        .at("to"));
    }
    let mut dates = std::collections::BTreeSet::new();
    for year in fill.from..=fill.to {
        let holidays = national_holidays(&country, year).ok_or_else(|| {
            ApiError::new(
                ErrorKind::Invalid,
                "no_builtin_holidays",
                format!(
                    "no built-in holidays for country {country:?}: known are {}",
                    COUNTRIES.join(", ")
                ),
            )
        })?;
        dates.extend(holidays.iter().map(|h| h.date.to_string()));
    }
    let what = format!(
        "country {country}: built-in holidays {}..{} added",
        fill.from, fill.to
    );
    edit_document(
        &g,
        &caller,
        &what,
        fill.version,
        country_path(&country),
        |d| {
            let entry = d.countries.entry(country.clone()).or_default();
            dates.extend(std::mem::take(&mut entry.holidays));
            entry.holidays = dates.into_iter().collect();
            Ok(())
        },
    )
    .await
}

/// `GET /api/v1/config/countries/{country}/lobs/{lob}`: the LoB's own settings, its inputs'
/// and forwards' own settings, and the version.
pub async fn get_lob(
    State(g): State<Arc<Gateway>>,
    Path((country, lob)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let in_force = g.config.borrow().clone();
    let entry = in_force
        .config
        .document()
        .countries
        .get(&country)
        .and_then(|c| c.lobs.get(&lob))
        .ok_or_else(|| not_configured(format!("LoB {country}/{lob}")))?;
    Ok(Json(json!({
        "version": in_force.version,
        "country": country,
        "lob": lob,
        "settings": entry.config,
        "inputs": entry.inputs,
        "forwards": entry.forwards,
    })))
}

/// `PUT /api/v1/config/countries/{country}/lobs/{lob}` `{"version", "settings"}`: adds the
/// LoB or replaces its settings (its flows' stay); with `PATCH`, only the fields given change.
/// `{"enabled": false}` disables every flow of the LoB.
pub async fn change_lob(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    method: Method,
    Path((country, lob)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let change: FlowChange = crate::rest::json_body(body, "change")?;
    let what = format!("LoB {country}/{lob}: settings set");
    edit_document(&g, &caller, &what, change.version, settings_path, |d| {
        let entry = d.countries.entry(country.clone()).or_default();
        let own = &mut entry.lobs.entry(lob.clone()).or_default().config;
        if method == Method::PATCH {
            own.merge(&change.settings);
        } else {
            *own = change.settings;
        }
        Ok(())
    })
    .await
}

/// `DELETE /api/v1/config/countries/{country}/lobs/{lob}?version=`: the LoB's entry removed
/// with its flows' settings (their traffic and ticks stay).
pub async fn delete_lob(
    State(g): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    Path((country, lob)): Path<(String, String)>,
    query: Result<Query<Based>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let what = format!("LoB {country}/{lob}: removed");
    edit_document(&g, &caller, &what, based(query)?, settings_path, |d| {
        d.countries
            .get_mut(&country)
            .and_then(|c| c.lobs.remove(&lob))
            .map(drop)
            .ok_or_else(|| not_configured(format!("LoB {country}/{lob}")))
    })
    .await
}
