//! Offline acceptance (DESIGN §4): the signed greenlist and denylist a validator decides
//! from ([`lists`]), and the durable journal every decision is written to before the gate
//! opens ([`journal`]).
#![forbid(unsafe_code)]

pub mod journal;
pub mod lists;
