//! The HTTP API in this process (the router on a free port over an embedded store in a
//! temporary directory, with this process's worker behind the ports), as `flowwatch run`
//! assembles it: the route × role matrix, users and keys, the configuration routes. Process
//! tests (`cli/tests/`) keep what needs processes: kill -9, clusters, the command line.

mod backtest;
mod channels;
mod config;
mod detection;
mod events;
mod harness;
mod incidents;
mod operator;
mod roles;
mod suggestions;
mod users;
