//! What the controller decided and who changed its list, as written to the journal: one JSON
//! record per event, tagged `access_*` so that it is never mistaken for a validator's record
//! (`engine::JournalRecord`) if the two ever share an upload path.

use serde::{Deserialize, Serialize};
use smartticket_core::Timestamp;

use super::grant::Grant;
use super::identifier::Identifier;

/// Why an identifier was refused. The codes are stable: readers show them, APIs return them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// Not on the list (an unknown card; its id is journalled, so it can be enrolled).
    #[error("unknown identifier")]
    Unknown,
    /// On the list, but blocked.
    #[error("blocked")]
    Blocked,
    /// Its validity has not started.
    #[error("not yet valid")]
    NotYetValid,
    /// Its validity has ended.
    #[error("expired")]
    Expired,
    /// Valid, but not for this door.
    #[error("not allowed at this door")]
    WrongDoor,
    /// Granted at this door moments ago: the card may have been handed back.
    #[error("anti-passback: already passed here a moment ago")]
    Passback,
}

impl DenyReason {
    /// The stable code, as serialised.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::Unknown => "unknown",
            DenyReason::Blocked => "blocked",
            DenyReason::NotYetValid => "not_yet_valid",
            DenyReason::Expired => "expired",
            DenyReason::WrongDoor => "wrong_door",
            DenyReason::Passback => "passback",
        }
    }
}

/// Whether the door opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum AccessDecision {
    /// The door opens.
    Granted,
    /// The door stays shut.
    Denied {
        /// Why.
        reason: DenyReason,
    },
}

impl AccessDecision {
    /// Whether the door opens.
    #[must_use]
    pub fn is_granted(&self) -> bool {
        matches!(self, AccessDecision::Granted)
    }
}

/// An identifier presented at a door, and the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presentation {
    /// The device.
    pub device: u32,
    /// When.
    pub at: Timestamp,
    /// What the reader sent.
    pub identifier: Identifier,
    /// At which door.
    pub door: u8,
    /// The decision.
    #[serde(flatten)]
    pub decision: AccessDecision,
    /// The grant's label, when the identifier is on the list: the journal reads as who came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The list revision the decision was made with.
    pub list_revision: u64,
}

/// A change to the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListChange {
    /// The device.
    pub device: u32,
    /// When.
    pub at: Timestamp,
    /// Who made it (a user or a system, as the caller names it).
    pub actor: String,
    /// The identifier changed.
    pub identifier: Identifier,
    /// Its new grant; `None` for a removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
    /// The list revision the change makes. Written before the list file: a revision that a
    /// later event uses again is a change that never took effect (the device stopped, or the
    /// list file could not be written, between the two).
    pub list_revision: u64,
}

/// One journal record of the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum AccessEvent {
    /// An identifier was presented.
    AccessPresented(Presentation),
    /// An identifier was added, or its grant replaced.
    AccessPut(ListChange),
    /// An identifier was removed.
    AccessRemoved(ListChange),
}

impl AccessEvent {
    /// The JSON bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Parses a record read back from the journal.
    pub fn from_bytes(bytes: &[u8]) -> Result<AccessEvent, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// An event with its journal sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournaledEvent {
    /// Its sequence in the journal: dense, from 1, in the order things happened.
    pub sequence: u64,
    /// The event.
    #[serde(flatten)]
    pub event: AccessEvent,
}
