//! The configuration document (SPEC §5): parsing, validation, inheritance, export.
//!
//! [`Document`] is the JSON as written (it serializes back unchanged); [`Config`] is a validated
//! document with its calendars ready, and answers [`Config::flow_config`]: the effective
//! configuration of any flow, configured or discovered, with where each field comes from.
//!
//! Inheritance is field by field: built-in ← `defaults` ← LoB ← (forward) its input ← own.
//! A LoB with `enabled: false` disables all its flows, whatever they say.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::{CountryCalendar, default_timezone};
use crate::id::{FlowId, FlowKind, forward_input};
use crate::tick::Granularity;
use crate::time::epoch_day;

/// How a tick's difference is computed (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DifferenceMode {
    /// `max(tickDifference, dayDifference)`, unless the tick is almost empty.
    Day,
    /// `tickDifference` only.
    Tick,
}

/// Which detector rates a flow's ticks (SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detector {
    /// SPEC §3–4 exactly: the median of similar days and fixed levels.
    Seed,
    /// The seed's expectation, judged against the flow's own variability with evidence that
    /// accumulates over ticks (`core/src/detection/README.md`).
    Adaptive,
}

/// Which layer of the document an effective field comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Layer {
    /// flowwatch's built-in default.
    BuiltIn,
    /// The document's `defaults`.
    Defaults,
    /// The LoB's `config`.
    Lob,
    /// A forward's input's `config`.
    Input,
    /// The flow's own `config`.
    Own,
}

/// Declares every flow configuration field once: the partial [`FlowSettings`] of a document
/// layer, the resolved [`FlowConfig`], the per-field [`FieldSources`], built-in defaults and the
/// overlay of one layer onto another.
macro_rules! flow_fields {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr; )*) => {
        /// One layer of flow configuration as written in the document: every field optional.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct FlowSettings {
            $( $(#[doc = $doc])*
               #[serde(default, skip_serializing_if = "Option::is_none")]
               pub $field: Option<$ty>, )*
        }

        /// The effective configuration of a flow: every field resolved.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct FlowConfig {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        /// Where each field of a [`FlowConfig`] comes from.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct FieldSources {
            $( $(#[doc = $doc])* pub $field: Layer, )*
        }

        impl Default for FlowConfig {
            /// The built-in defaults of SPEC §5.
            fn default() -> Self {
                FlowConfig { $( $field: $default, )* }
            }
        }

        impl Default for FieldSources {
            fn default() -> Self {
                FieldSources { $( $field: Layer::BuiltIn, )* }
            }
        }

        impl FlowSettings {
            /// Takes every field `other` sets.
            pub fn merge(&mut self, other: &FlowSettings) {
                $( if let Some(v) = &other.$field {
                    self.$field = Some(v.clone());
                } )*
            }
        }

        impl FlowConfig {
            /// Applies the fields `layer` sets.
            fn overlay(&mut self, sources: &mut FieldSources, settings: &FlowSettings, layer: Layer) {
                $( if let Some(v) = &settings.$field {
                    self.$field = v.clone();
                    sources.$field = layer;
                } )*
            }
        }
    };
}

flow_fields! {
    /// Tick length.
    granularity: Granularity = Granularity::HOUR;
    /// Below it a tick is suspicious.
    soft_alarm_level: f64 = 0.8;
    /// Below it a tick is an outage at once.
    hard_alarm_level: f64 = 0.5;
    /// `day` or `tick`.
    difference: DifferenceMode = DifferenceMode::Day;
    /// Whether the flow is evaluated.
    enabled: bool = true;
    /// Weekdays (0 = Monday) compared only with the same weekday.
    independent_days: Vec<u8> = Vec::new();
    /// Floor of the expectation, in bytes per tick.
    minimal_expectation: f64 = 1.0;
    /// Factor applied to the expectation on lazy days.
    lazy_day_decrease: f64 = 0.7;
    /// How many similar past days the median uses.
    median_days: u32 = 5;
    /// How far back similar days are searched.
    lookback_days: u32 = 56;
    /// Fewer similar days than this → `N_A`.
    min_history_days: u32 = 3;
    /// Live only: wait after a tick's end before evaluating it.
    grace_seconds: u64 = 120;
    /// `seed` or `adaptive`.
    detector: Detector = Detector::Seed;
    /// More status changes than this within 24 h make a flow flapping: its notifications
    /// pause until it settles (`0`: never).
    flapping_changes: u32 = 6;
}

/// The configuration document of SPEC §5, as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Document {
    /// Settings every flow inherits.
    #[serde(default)]
    pub defaults: FlowSettings,
    /// Countries by code.
    #[serde(default)]
    pub countries: BTreeMap<String, CountryEntry>,
}

impl Document {
    /// Whether any layer sets `detector: "adaptive"`: only then do tick files carry the
    /// adaptive detector's columns (a document that never names it gives the files it always
    /// gave).
    pub fn names_adaptive(&self) -> bool {
        let adaptive = |s: &FlowSettings| s.detector == Some(Detector::Adaptive);
        adaptive(&self.defaults)
            || self
                .countries
                .values()
                .flat_map(|c| c.lobs.values())
                .any(|l| {
                    adaptive(&l.config)
                        || l.inputs
                            .values()
                            .chain(l.forwards.values())
                            .any(|f| adaptive(&f.config))
                })
    }

    /// The LoB `lob` of `country`, the country and LoB added if the document has none.
    fn lob_entry(&mut self, country: &str, lob: &str) -> &mut LobEntry {
        self.countries
            .entry(country.to_owned())
            .or_default()
            .lobs
            .entry(lob.to_owned())
            .or_default()
    }

    /// The inputs or forwards (as `flow` is) of `flow`'s LoB, the country and LoB added if the
    /// document has none.
    fn flow_entries(&mut self, flow: &FlowId) -> &mut BTreeMap<String, FlowEntry> {
        let lob = self.lob_entry(&flow.country, &flow.lob);
        match flow.kind {
            FlowKind::Input => &mut lob.inputs,
            FlowKind::Forward => &mut lob.forwards,
        }
    }
}

/// A country of the document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CountryEntry {
    /// IANA zone; optional for CZ, DE, AT and NL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// National holidays, `YYYY-MM-DD` local dates.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Work days expected to be quieter, `YYYY-MM-DD`.
    #[serde(default)]
    pub lazy_days: Vec<String>,
    /// Lines of business by name.
    #[serde(default)]
    pub lobs: BTreeMap<String, LobEntry>,
}

/// A line of business of the document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LobEntry {
    /// Settings of the LoB, inherited by its flows.
    #[serde(default)]
    pub config: FlowSettings,
    /// Inputs by name.
    #[serde(default)]
    pub inputs: BTreeMap<String, FlowEntry>,
    /// Forwards by name `INPUT:TARGET`.
    #[serde(default)]
    pub forwards: BTreeMap<String, FlowEntry>,
}

/// An input or forward of the document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FlowEntry {
    /// The flow's own settings.
    #[serde(default)]
    pub config: FlowSettings,
}

/// One problem in a document, at a JSON path like `countries.CZ.lobs.SMS.config.granularity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Where: the dotted JSON path (empty for the document as a whole).
    pub path: String,
    /// What is wrong, e.g. `invalid granularity "7m"`.
    pub what: String,
    /// Why, if there is more to say, e.g. `must divide one day`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl FieldError {
    fn new(path: &str, what: impl Into<String>, why: impl Into<Option<String>>) -> FieldError {
        FieldError {
            path: path.to_owned(),
            what: what.into(),
            why: why.into(),
        }
    }

    /// Splits a message `what: why` from a parser into its parts.
    fn from_message(path: &str, message: &str) -> FieldError {
        match message.split_once(": ") {
            Some((what, why)) => FieldError::new(path, what, Some(why.to_owned())),
            None => FieldError::new(path, message, None),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        if !self.path.is_empty() {
            write!(f, " at {}", self.path)?;
        }
        if let Some(why) = &self.why {
            write!(f, ": {why}")?;
        }
        Ok(())
    }
}

/// A rejected document: every problem found, each naming its path. Nothing of it is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in document order.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A validated configuration document with its calendars.
#[derive(Debug, Clone)]
pub struct Config {
    document: Document,
    calendars: HashMap<String, CountryCalendar>,
    defaults: (FlowConfig, FieldSources),
}

impl Default for Config {
    fn default() -> Self {
        Config::new(Document::default()).expect("the empty document is valid")
    }
}

impl Config {
    /// Parses and validates a JSON document.
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        if !text.trim_start().starts_with('{') {
            let why = Some(
                "expected a JSON object like {\"defaults\": {}, \"countries\": {}}".to_owned(),
            );
            return Err(ConfigError {
                errors: vec![FieldError::new("", "invalid document", why)],
            });
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let document: Document = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let inner = e.into_inner();
            let message = match inner.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    format!("invalid JSON: {inner}")
                }
                _ => strip_position(&inner.to_string()),
            };
            ConfigError {
                errors: vec![FieldError::from_message(&path, &message)],
            }
        })?;
        Config::new(document)
    }

    /// Validates a document.
    pub fn new(document: Document) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let base = (FlowConfig::default(), FieldSources::default());
        let defaults = check_layer(
            &base,
            &document.defaults,
            "defaults",
            Layer::Defaults,
            &mut errors,
        );
        let mut calendars = HashMap::new();
        for (code, country) in &document.countries {
            let path = format!("countries.{code}");
            if let Some(cal) = check_country(code, country, &path, &mut errors) {
                calendars.insert(code.clone(), cal);
            }
            for (lob_name, lob) in &country.lobs {
                let path = format!("{path}.lobs.{lob_name}");
                if lob_name.is_empty() {
                    errors.push(FieldError::new(&path, "empty LoB name", None));
                }
                let lob_cfg = check_layer(
                    &defaults,
                    &lob.config,
                    &format!("{path}.config"),
                    Layer::Lob,
                    &mut errors,
                );
                for (name, input) in &lob.inputs {
                    let path = format!("{path}.inputs.{name}");
                    if name.is_empty() {
                        errors.push(FieldError::new(&path, "empty input name", None));
                    }
                    check_layer(
                        &lob_cfg,
                        &input.config,
                        &format!("{path}.config"),
                        Layer::Own,
                        &mut errors,
                    );
                }
                for (name, forward) in &lob.forwards {
                    let path = format!("{path}.forwards.{name}");
                    let parent = match forward_input(name) {
                        Some(input) if !input.is_empty() && !name.ends_with(':') => {
                            match lob.inputs.get(input) {
                                Some(i) => check_layer(
                                    &lob_cfg,
                                    &i.config,
                                    "",
                                    Layer::Input,
                                    &mut Vec::new(),
                                ),
                                None => lob_cfg.clone(),
                            }
                        }
                        _ => {
                            errors.push(FieldError::new(
                                &path,
                                format!("invalid forward name \"{name}\""),
                                Some("expected INPUT:TARGET".to_owned()),
                            ));
                            lob_cfg.clone()
                        }
                    };
                    check_layer(
                        &parent,
                        &forward.config,
                        &format!("{path}.config"),
                        Layer::Own,
                        &mut errors,
                    );
                }
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError { errors });
        }
        for code in crate::calendar::holidays::COUNTRIES {
            if !calendars.contains_key(code) {
                let tz = default_timezone(code).expect("built-in countries have a zone");
                calendars.insert(code.to_owned(), CountryCalendar::new(tz, [], []));
            }
        }
        Ok(Config {
            document,
            calendars,
            defaults,
        })
    }

    /// The document as written.
    pub fn document(&self) -> &Document {
        &self.document
    }

    /// The document as pretty JSON (the export of SPEC §5).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.document).expect("a document always serializes")
    }

    /// The calendar of a country: configured, or built-in (no holidays) for CZ, DE, AT, NL.
    pub fn calendar(&self, country: &str) -> Option<&CountryCalendar> {
        self.calendars.get(country)
    }

    /// This configuration with `change` made to `flow`'s own settings (the flow is added to the
    /// document if it is not in it), validated: a candidate for a simulation or a view at
    /// another granularity, never saved by this.
    pub fn with_flow_settings(
        &self,
        flow: &FlowId,
        change: impl FnOnce(&mut FlowSettings),
    ) -> Result<Config, ConfigError> {
        let mut document = self.document.clone();
        let entry = document.flow_entries(flow).entry(flow.name.clone());
        change(&mut entry.or_default().config);
        Config::new(document)
    }

    /// This configuration with `change` made to the settings of each LoB of `country` in
    /// `lobs` (a LoB not in the document is added), validated: a candidate for a backtest,
    /// never saved by this.
    pub fn with_lob_settings<'l>(
        &self,
        country: &str,
        lobs: impl IntoIterator<Item = &'l str>,
        change: impl Fn(&mut FlowSettings),
    ) -> Result<Config, ConfigError> {
        let mut document = self.document.clone();
        for lob in lobs {
            change(&mut document.lob_entry(country, lob).config);
        }
        Config::new(document)
    }

    /// This configuration without `flow`'s own settings (it inherits everything), validated;
    /// `None` when the document has none for it.
    pub fn without_flow_settings(&self, flow: &FlowId) -> Option<Result<Config, ConfigError>> {
        let mut document = self.document.clone();
        document.flow_entries(flow).remove(&flow.name)?;
        Some(Config::new(document))
    }

    /// The effective configuration of `flow`, configured or discovered, and where each field
    /// comes from.
    pub fn flow_config(&self, flow: &FlowId) -> (FlowConfig, FieldSources) {
        let (mut cfg, mut src) = self.defaults.clone();
        let Some(lob) = self
            .document
            .countries
            .get(&flow.country)
            .and_then(|c| c.lobs.get(&flow.lob))
        else {
            return (cfg, src);
        };
        cfg.overlay(&mut src, &lob.config, Layer::Lob);
        let own = match flow.kind {
            FlowKind::Input => lob.inputs.get(&flow.name),
            FlowKind::Forward => {
                if let Some(input) = flow.input_name().and_then(|i| lob.inputs.get(i)) {
                    cfg.overlay(&mut src, &input.config, Layer::Input);
                }
                lob.forwards.get(&flow.name)
            }
        };
        if let Some(own) = own {
            cfg.overlay(&mut src, &own.config, Layer::Own);
        }
        if lob.config.enabled == Some(false) {
            cfg.enabled = false;
            src.enabled = Layer::Lob;
        }
        (cfg, src)
    }

    /// Every flow named in the document, in order.
    pub fn configured_flows(&self) -> Vec<FlowId> {
        self.document
            .countries
            .keys()
            .flat_map(|country| self.configured_flows_in(country, None))
            .collect()
    }

    /// The flows the document names in `country` (only in its LoB `lob`, if given), in order:
    /// what is read is that country's (or LoB's) part of the document only.
    pub fn configured_flows_in(&self, country: &str, lob: Option<&str>) -> Vec<FlowId> {
        let Some(c) = self.document.countries.get(country) else {
            return Vec::new();
        };
        let mut flows = Vec::new();
        let lobs = c
            .lobs
            .iter()
            .filter(|(name, _)| lob.is_none_or(|wanted| wanted == name.as_str()));
        for (lob, l) in lobs {
            let id = |kind, name: &String| FlowId {
                country: country.to_owned(),
                lob: lob.clone(),
                kind,
                name: name.clone(),
            };
            flows.extend(l.inputs.keys().map(|n| id(FlowKind::Input, n)));
            flows.extend(l.forwards.keys().map(|n| id(FlowKind::Forward, n)));
        }
        flows.sort();
        flows
    }
}

/// serde_json appends " at line X column Y" to data errors; the path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn check_country(
    code: &str,
    country: &CountryEntry,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<CountryCalendar> {
    if code.is_empty() {
        errors.push(FieldError::new(path, "empty country code", None));
    }
    let tz_path = format!("{path}.timezone");
    let tz: Option<Tz> = match &country.timezone {
        Some(name) => match name.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                errors.push(FieldError::new(
                    &tz_path,
                    format!("unknown time zone \"{name}\""),
                    Some("expected an IANA name like \"Europe/Prague\"".to_owned()),
                ));
                None
            }
        },
        None => {
            let tz = default_timezone(code);
            if tz.is_none() {
                errors.push(FieldError::new(
                    &tz_path,
                    "missing timezone",
                    Some(format!(
                        "country \"{code}\" has no built-in zone; set an IANA name"
                    )),
                ));
            }
            tz
        }
    };
    let holidays = check_dates(&country.holidays, &format!("{path}.holidays"), errors);
    let lazy = check_dates(&country.lazy_days, &format!("{path}.lazyDays"), errors);
    tz.map(|tz| CountryCalendar::new(tz, holidays, lazy))
}

fn check_dates(dates: &[String], path: &str, errors: &mut Vec<FieldError>) -> Vec<i32> {
    let mut days = Vec::with_capacity(dates.len());
    for (i, text) in dates.iter().enumerate() {
        match parse_date(text) {
            Some(d) => days.push(epoch_day(d)),
            None => errors.push(FieldError::new(
                &format!("{path}[{i}]"),
                format!("invalid date \"{text}\""),
                Some("expected an existing date as YYYY-MM-DD".to_owned()),
            )),
        }
    }
    days
}

/// A strict `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Validates one layer on top of its parent's effective configuration and returns the layer's
/// own effective configuration. Each problem is reported at the field of this layer that
/// introduces it, so an inherited problem is reported once, where it was written.
fn check_layer(
    parent: &(FlowConfig, FieldSources),
    s: &FlowSettings,
    path: &str,
    layer: Layer,
    errors: &mut Vec<FieldError>,
) -> (FlowConfig, FieldSources) {
    let (mut cfg, mut src) = parent.clone();
    cfg.overlay(&mut src, s, layer);
    let field = |name: &str| format!("{path}.{name}");
    let mut positive = |name: &str, v: Option<f64>| {
        if let Some(v) = v
            && !(v.is_finite() && v > 0.0)
        {
            errors.push(FieldError::new(
                &field(name),
                format!("invalid {name} {v}"),
                Some("must be a number greater than 0".to_owned()),
            ));
        }
    };
    positive("softAlarmLevel", s.soft_alarm_level);
    positive("hardAlarmLevel", s.hard_alarm_level);
    positive("minimalExpectation", s.minimal_expectation);
    positive("lazyDayDecrease", s.lazy_day_decrease);
    for (name, v) in [
        ("medianDays", s.median_days),
        ("lookbackDays", s.lookback_days),
        ("minHistoryDays", s.min_history_days),
    ] {
        if v == Some(0) {
            errors.push(FieldError::new(
                &field(name),
                format!("invalid {name} 0"),
                Some("must be at least 1".to_owned()),
            ));
        }
    }
    if let Some(days) = &s.independent_days {
        for (i, d) in days.iter().enumerate() {
            if *d > 6 {
                errors.push(FieldError::new(
                    &format!("{path}.independentDays[{i}]"),
                    format!("invalid weekday {d}"),
                    Some("expected 0 (Monday) … 6 (Sunday)".to_owned()),
                ));
            }
        }
    }
    if cfg.hard_alarm_level > cfg.soft_alarm_level
        && cfg.hard_alarm_level > 0.0
        && (s.hard_alarm_level.is_some() || s.soft_alarm_level.is_some())
    {
        let (name, v) = if s.hard_alarm_level.is_some() {
            ("hardAlarmLevel", cfg.hard_alarm_level)
        } else {
            ("softAlarmLevel", cfg.soft_alarm_level)
        };
        errors.push(FieldError::new(
            &field(name),
            format!("invalid {name} {v}"),
            Some(format!(
                "levels must satisfy 0 < hardAlarmLevel ({}) <= softAlarmLevel ({})",
                cfg.hard_alarm_level, cfg.soft_alarm_level
            )),
        ));
    }
    if cfg.min_history_days > cfg.median_days
        && cfg.median_days > 0
        && (s.min_history_days.is_some() || s.median_days.is_some())
    {
        let (name, v) = if s.min_history_days.is_some() {
            ("minHistoryDays", cfg.min_history_days)
        } else {
            ("medianDays", cfg.median_days)
        };
        errors.push(FieldError::new(
            &field(name),
            format!("invalid {name} {v}"),
            Some(format!(
                "minHistoryDays ({}) must not exceed medianDays ({}): every tick would be N_A",
                cfg.min_history_days, cfg.median_days
            )),
        ));
    }
    (cfg, src)
}

#[cfg(test)]
mod tests;
