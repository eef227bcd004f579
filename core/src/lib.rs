//! `flowwatch-core`: the domain of flowwatch and its detection, shared by every service.
//!
//! Pure: no I/O, no async runtime. The worker's flow actors, the gateway's simulation and
//! `flowwatch replay` all evaluate ticks through this crate, so they agree to the digit.
//!
//! Layout:
//! - [`id`]: flow identity (`country, lob, kind, name`), forward → input.
//! - [`hash`]: the fast hasher of the maps keyed by names ([`FlowMap`], a batch's groups).
//! - [`time`]: instants as Unix seconds, RFC 3339 parsing and formatting, local → UTC (SPEC §2 rules).
//! - [`tick`]: granularity and the ticks of one local day, DST-exact ([`tick::DayTicks`]).
//! - [`channel`]: notification channels (SPEC §12): their documents, which alarms each takes,
//!   and the e-mail and Slack texts.
//! - [`calendar`]: a country's zone, holidays and lazy days; built-in holiday generators.
//! - [`error`]: [`InputError`], why an input (time, granularity, flow id, traffic line) is
//!   refused.
//! - [`csv`]: CSV fields, quoted as RFC 4180 does (the traffic and tick CSVs).
//! - [`config`]: the configuration document (SPEC §5): parsing, validation with field paths,
//!   inheritance, export.
//! - [`event`]: a change of a flow's status and its SPEC §8 message (written and read back).
//! - [`detection`]: expected traffic, differences and statuses (SPEC §3–4), and
//!   [`detection::FlowHistory`], the rolling history a long-lived flow actor keeps;
//!   [`detection::adaptive`], the adaptive detector (SPEC §10).
//! - [`live`]: one flow evaluated live as records and the clock arrive (what a flow actor decides).
//! - [`incident`]: flows that leave `OK` together because of one cause, as one incident.
//! - [`placement`]: which live worker owns each partition of the flows: balanced, stable on
//!   join and leave, deterministic (what the coordinator plans).
//! - [`record`]: traffic records and their wire forms (traffic CSV line, seed message).
//! - [`replay`]: evaluate every flow over a date range from a set of records.
//! - [`compare`]: what two configurations raise on the same traffic (episodes, status changes).
//! - [`tick_csv`]: the tick CSV (SPEC §6).

pub mod calendar;
pub mod channel;
pub mod compare;
pub mod config;
pub mod csv;
pub mod detection;
pub mod error;
pub mod event;
pub mod flapping;
pub mod hash;
pub mod id;
pub mod incident;
pub mod live;
pub mod placement;
pub mod record;
pub mod replay;
pub mod silence;
pub mod suggest;
pub mod tick;
pub mod tick_csv;
pub mod time;

pub use error::InputError;
pub use id::{FlowId, FlowKind, FlowMap};
