//! The deterministic conference simulator: synthetic media sources, a network model and
//! receiver-side checks (shared by the simulation tests).
#![allow(
    dead_code,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support code: a panic is a test failure"
)]

pub mod check;
pub mod harness;
pub mod media;
