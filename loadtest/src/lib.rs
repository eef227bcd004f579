//! `flowwatch-loadtest`: realistic mediation traffic for tests, demos and benchmarks.
//!
//! Layout:
//! - [`generator`]: a deterministic traffic generator (countries, LoBs, inputs and their
//!   forwards, diurnal and weekly shapes, holidays, lazy days, batchy and late arrivals, DST)
//!   with labelled injected outages, and the configuration document that goes with it.
//! - [`rng`]: the small seeded random number generator it uses.

pub mod generator;
pub mod rng;
