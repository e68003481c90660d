//! Offline acceptance (DESIGN §4): the signed greenlist and denylist a validator decides
//! from ([`lists`]), and the durable journal every decision is written to before the gate
//! opens ([`journal`]), and the engine that decides each tap ([`engine`]).
#![forbid(unsafe_code)]

pub mod engine;
pub mod journal;
pub mod lists;
