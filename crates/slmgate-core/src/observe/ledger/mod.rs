//! The cost ledger read back from the audit log: what requests cost, what the LLM-only
//! baseline would have cost, escalations, latency and review quality, grouped and over time.
//! `slmgate report` and the dashboard both read it.

mod aggregate;
mod combine;
mod load;
mod render;
mod what_if;

pub use aggregate::{fold, group, summary, By, Group, Summary};
pub use combine::{calibrate as calibrate_combine, Calibration};
pub use load::{load, load_pg, parse_since, LedgerError, Row};
pub use render::{render, render_what_if, Format};
pub use what_if::{what_if, WhatIf};

#[cfg(test)]
mod tests;
