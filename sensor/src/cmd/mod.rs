//! The subcommands.

pub mod baseline;
pub mod detect;
pub mod dissect;
pub mod inventory;
pub mod learn;
pub mod replay;
pub mod report;
pub mod rules;
pub mod run;
