//! Offline acceptance (DESIGN §4): the signed greenlist and denylist a validator decides
//! from ([`lists`]), and the durable journal every decision is written to before the gate
//! opens ([`journal`]), and the engine that decides each tap ([`engine`]).
//! Access-control mode ([`access`]): a door controller's local identifier list, decided the same way.
#![forbid(unsafe_code)]

pub mod access;
pub mod engine;
pub mod journal;
pub mod lists;
