//! Tests of the S7 dissector.
