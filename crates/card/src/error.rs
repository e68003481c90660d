//! Card errors, each saying who is at fault: the card refused (a status word), the card
//! misbehaved (malformed answer, bad MAC), the transport failed (card pulled away, reader
//! gone), or the caller asked for something impossible.

use crate::desfire::Status;
use crate::desfire::sm::SmError;

/// Why the transport could not carry an APDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The card left the field (or lost power) during the exchange.
    #[error("the card was removed")]
    CardRemoved,
    /// No card is present.
    #[error("no card in the field")]
    NoCard,
    /// The reader or the connection to it failed.
    #[error("reader: {0}")]
    Reader(String),
}

/// Why a card operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// The card answered with a DESFire status other than success.
    #[error("the card refused {command:#04x}: {status}")]
    Refused {
        /// The native command.
        command: u8,
        /// What the card said.
        status: Status,
    },
    /// The card answered with an ISO status word that is not a DESFire status.
    #[error("the card answered status word {0:04X}")]
    IsoStatus(u16),
    /// The card's answer is malformed, too long, or fails its MAC: a broken card, a
    /// clone, or someone between us and the card.
    #[error("the card misbehaved: {0}")]
    CardMisbehaved(String),
    /// The transport failed; the card may or may not have executed the last command.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// The session's command counter is used up; authenticate again.
    #[error("the secure session is exhausted; authenticate again")]
    SessionExhausted,
    /// The caller asked for something the protocol cannot do.
    #[error("invalid use: {0}")]
    ApiMisuse(String),
}

impl CardError {
    /// Maps a secure-messaging failure on data from the card.
    pub fn from_card(error: SmError) -> CardError {
        match error {
            SmError::CounterExhausted => CardError::SessionExhausted,
            other => CardError::CardMisbehaved(other.to_string()),
        }
    }

    /// The DESFire status, if the card refused.
    pub fn status(&self) -> Option<Status> {
        match self {
            CardError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}
