//! The subcommands.

pub mod dissect;
