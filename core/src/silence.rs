//! Silences (maintenance windows, SPEC §11): a scope of flows and the times its status changes
//! are kept quiet — stored and listed, marked `silenced`, but not alarmed.
//!
//! A silence covers the ticks that *start* inside it, whenever they are evaluated (live, or
//! late after an import): [`Silence::covers`] decides by the tick's start alone, so the same
//! tick is silenced or not however late it is decided. A one-off silence runs from `from` to
//! `to`; a weekly one only within its windows (`days` at `start`–`end` of the country's wall
//! clock, a window whose end is not after its start running past midnight) between them.
//! Ending a silence early sets `ended_at`: ticks that started before it stay covered.
//!
//! When a flow's last covered tick leaves it not `OK`, the flow is alarmed once then (the
//! worker does it: [`Silence`] only answers what is covered).

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::time::{Instant, local_day, weekday};
use crate::{FlowId, FlowKind};

/// Which flows a silence (or an acknowledgement's list) is about: a country, a LoB of it, or
/// one flow. An input's scope covers its forwards (`INPUT:TARGET`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowScope {
    /// The country.
    pub country: String,
    /// Only this LoB of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lob: Option<String>,
    /// Only flows of this kind (with `flow`: the one flow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FlowKind>,
    /// Only this flow (an input: with its forwards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
}

/// Why a silence is refused: the field (as the API spells it) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct SilenceError {
    /// The field, e.g. `scope.flow`, `weekly.start`.
    pub field: &'static str,
    /// What is wrong with it.
    pub why: String,
}

fn refuse(field: &'static str, why: impl Into<String>) -> SilenceError {
    SilenceError {
        field,
        why: why.into(),
    }
}

impl FlowScope {
    /// Checks that the parts name something: a country; a kind or a flow only within a LoB;
    /// a flow only with its kind.
    pub fn validate(&self) -> Result<(), SilenceError> {
        let blank = |s: &Option<String>| s.as_deref().is_some_and(|s| s.trim().is_empty());
        if self.country.trim().is_empty() {
            return Err(refuse("scope.country", "empty"));
        }
        if blank(&self.lob) {
            return Err(refuse("scope.lob", "empty"));
        }
        if blank(&self.flow) {
            return Err(refuse("scope.flow", "empty"));
        }
        if self.lob.is_none() && (self.kind.is_some() || self.flow.is_some()) {
            return Err(refuse("scope.lob", "a kind or a flow needs its LoB"));
        }
        if self.flow.is_some() && self.kind.is_none() {
            return Err(refuse(
                "scope.kind",
                "a flow needs its kind (input or forward)",
            ));
        }
        Ok(())
    }

    /// Whether `flow` is in the scope (an input's scope takes in its forwards).
    pub fn covers(&self, flow: &FlowId) -> bool {
        if flow.country != self.country || self.lob.as_ref().is_some_and(|l| *l != flow.lob) {
            return false;
        }
        match (self.kind, &self.flow) {
            (None, _) => true,
            (Some(FlowKind::Forward), None) => flow.kind == FlowKind::Forward,
            // Every input, and so every forward of one.
            (Some(FlowKind::Input), None) => true,
            (Some(FlowKind::Forward), Some(name)) => {
                flow.kind == FlowKind::Forward && flow.name == *name
            }
            (Some(FlowKind::Input), Some(name)) => match flow.kind {
                FlowKind::Input => flow.name == *name,
                FlowKind::Forward => flow.input_name() == Some(name.as_str()),
            },
        }
    }
}

/// A weekly window: on `days` (0 = Monday) from `start` to `end` of the wall clock, in
/// minutes of the day; an `end` not after `start` ends on the next day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weekly {
    /// Weekdays the window starts on (0 = Monday … 6 = Sunday), ascending, no repeats.
    pub days: Vec<u8>,
    /// Minute of the day it starts (0–1439).
    pub start: u16,
    /// Minute of the day it ends (0–1440).
    pub end: u16,
}

/// Parses `HH:MM` (`24:00` allowed for an end) into minutes of the day.
fn minutes(text: &str, field: &'static str, end: bool) -> Result<u16, SilenceError> {
    let bad = || refuse(field, format!("\"{text}\" is not HH:MM"));
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let total = h * 60 + m;
    if m >= 60 || total > 1440 || (total == 1440 && !end) {
        return Err(refuse(field, format!("\"{text}\" is not a time of day")));
    }
    Ok(total)
}

fn clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl Weekly {
    /// A window from its API form: weekday numbers and `HH:MM` times.
    pub fn parse(days: &[i64], start: &str, end: &str) -> Result<Weekly, SilenceError> {
        if days.is_empty() {
            return Err(refuse("weekly.days", "no day"));
        }
        let mut parsed = Vec::with_capacity(days.len());
        for &d in days {
            let d = u8::try_from(d)
                .ok()
                .filter(|d| *d <= 6)
                .ok_or_else(|| refuse("weekly.days", format!("{d} is not a weekday (0–6)")))?;
            parsed.push(d);
        }
        parsed.sort_unstable();
        parsed.dedup();
        let (start, end) = (
            minutes(start, "weekly.start", false)?,
            minutes(end, "weekly.end", true)?,
        );
        if start == end {
            return Err(refuse("weekly.end", "the window is empty (end = start)"));
        }
        Ok(Weekly {
            days: parsed,
            start,
            end: if end == 1440 { 0 } else { end },
        })
    }

    /// `HH:MM` of the start.
    pub fn start_text(&self) -> String {
        clock(self.start)
    }

    /// `HH:MM` of the end.
    pub fn end_text(&self) -> String {
        clock(self.end)
    }

    /// Whether the wall-clock minute `minute` of a day with weekday `day` is in a window.
    fn contains(&self, day: u8, minute: u16) -> bool {
        let on = |d: u8| self.days.contains(&d);
        if self.start < self.end {
            on(day) && self.start <= minute && minute < self.end
        } else {
            (on(day) && minute >= self.start) || (on((day + 6) % 7) && minute < self.end)
        }
    }
}

/// How a weekly window is stored: the API's own form.
#[derive(Serialize, Deserialize)]
struct WeeklyForm {
    days: Vec<i64>,
    start: String,
    end: String,
}

impl Serialize for Weekly {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WeeklyForm {
            days: self.days.iter().map(|&d| d as i64).collect(),
            start: self.start_text(),
            end: self.end_text(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Weekly {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Weekly, D::Error> {
        let f = WeeklyForm::deserialize(d)?;
        Weekly::parse(&f.days, &f.start, &f.end).map_err(serde::de::Error::custom)
    }
}

/// A silence as stored (times in Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Unique.
    pub id: String,
    /// The flows it covers.
    pub scope: FlowScope,
    /// Ticks starting at or after it are covered…
    pub from: Instant,
    /// …and before it.
    pub to: Instant,
    /// Only within these weekly windows, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<Weekly>,
    /// Why (a maintenance, a migration…).
    pub comment: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: Instant,
    /// When it was ended early, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Instant>,
}

impl Silence {
    /// Checks the times and the scope.
    pub fn validate(&self) -> Result<(), SilenceError> {
        self.scope.validate()?;
        if self.to <= self.from {
            return Err(refuse("to", "not after from"));
        }
        Ok(())
    }

    /// Where it stops covering: `to`, or when it was ended if that was earlier.
    pub fn until(&self) -> Instant {
        self.ended_at.map_or(self.to, |e| e.min(self.to))
    }

    /// Whether it still covers ticks starting at `now` or later.
    pub fn is_over(&self, now: Instant) -> bool {
        self.until() <= now
    }

    /// Whether a tick of `flow` starting at `tick_start` is covered (`tz`: the flow's
    /// country's zone, for weekly windows).
    pub fn covers(&self, flow: &FlowId, tick_start: Instant, tz: Tz) -> bool {
        self.from <= tick_start
            && tick_start < self.until()
            && self.scope.covers(flow)
            && self.weekly.as_ref().is_none_or(|w| {
                let day = local_day(tz, tick_start);
                let minute = crate::time::local_minute(tz, tick_start);
                w.contains(weekday(day), minute)
            })
    }
}

/// The silences in force in a process: what flow actors ask whether a tick is covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Silences(Vec<Silence>);

impl Silences {
    /// The silences of `all` that can still cover a tick starting at `now` or later, or that
    /// ended less than `keep` seconds ago (ticks evaluated late are still decided by them).
    pub fn in_force(all: Vec<Silence>, now: Instant, keep: i64) -> Silences {
        let mut kept: Vec<Silence> = all.into_iter().filter(|s| s.until() > now - keep).collect();
        kept.sort_by(|a, b| a.id.cmp(&b.id));
        Silences(kept)
    }

    /// Whether any silence covers the tick of `flow` starting at `tick_start`.
    pub fn covers(&self, flow: &FlowId, tick_start: Instant, tz: Tz) -> bool {
        self.0.iter().any(|s| s.covers(flow, tick_start, tz))
    }

    /// Each of them, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.0.iter()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests;
