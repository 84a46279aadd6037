//! The subcommands.

pub mod accept;
pub mod baseline;
#[cfg(feature = "kafka")]
pub mod consume;
pub mod detect;
pub mod dissect;
pub mod inventory;
pub mod learn;
pub mod replay;
pub mod report;
pub mod rules;
pub mod run;
