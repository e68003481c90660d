//! Why an EMV read failed: which step, and whose fault (the card refused, the card
//! misbehaved, the transport failed, or the card's data is unusable as a fare token).
//!
//! No message here ever holds PAN digits: errors end up in logs and journals.

use std::fmt;

use thiserror::Error;

use crate::apdu::{ApduError, StatusWord};
use crate::tlv::Tag;
use crate::transport::TransportError;

/// A step of the read flow, named in every error that happens during it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// SELECT of the Proximity Payment System Environment, `2PAY.SYS.DDF01`.
    SelectPpse,
    /// SELECT of a payment application by its AID.
    SelectApplication,
    /// GET PROCESSING OPTIONS.
    GetProcessingOptions,
    /// READ RECORD of one record named by the AFL.
    ReadRecord {
        /// Short file identifier, 1–30.
        sfi: u8,
        /// Record number, 1–254.
        record: u8,
    },
    /// Taking the PAN and expiry out of the data read.
    CardData,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::SelectPpse => f.write_str("SELECT PPSE"),
            Step::SelectApplication => f.write_str("SELECT application"),
            Step::GetProcessingOptions => f.write_str("GET PROCESSING OPTIONS"),
            Step::ReadRecord { sfi, record } => write!(f, "READ RECORD {record} of SFI {sfi}"),
            Step::CardData => f.write_str("card data"),
        }
    }
}

/// Why an EMV contactless read failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EmvError {
    /// The transport failed: the card left the field or the reader is gone. The tap can be
    /// retried; nothing was written to the card.
    #[error("{step}: transport failed: {source}")]
    Transport {
        /// The step that was under way.
        step: Step,
        /// What the transport said.
        source: TransportError,
    },
    /// The card answered a status word that ends the step (for example `6A81`, blocked).
    #[error("{step}: the card answered {sw}")]
    Refused {
        /// The step.
        step: Step,
        /// What the card said.
        sw: StatusWord,
    },
    /// The card answered something malformed or out of protocol.
    #[error("{step}: the card misbehaved: {why}")]
    CardMisbehaved {
        /// The step.
        step: Step,
        /// What was wrong, without any card data in it.
        why: String,
    },
    /// The card's answer lacks a data object the step cannot do without.
    #[error("{step}: the card's answer lacks tag {tag}")]
    MissingTag {
        /// The step.
        step: Step,
        /// The tag that should have been there.
        tag: Tag,
    },
    /// No payment application could be found: the PPSE listed none we could use and direct
    /// selection of the known AIDs found none either.
    #[error("no payment application on the card: {why}")]
    NoApplication {
        /// What was tried.
        why: String,
    },
    /// GET PROCESSING OPTIONS was refused with our PDOL answer and again with an empty one.
    #[error("GET PROCESSING OPTIONS refused: {with_pdol} to the PDOL answer, {with_empty_pdol} to an empty PDOL")]
    GpoRefused {
        /// The status word answering the PDOL answer.
        with_pdol: StatusWord,
        /// The status word answering the empty PDOL (`83 00`).
        with_empty_pdol: StatusWord,
    },
    /// The card's PDOL could not be answered (malformed, or asks for more than a GET
    /// PROCESSING OPTIONS can carry), and the card refused the empty PDOL tried instead.
    #[error("the card's PDOL cannot be answered ({why}) and the card refused an empty PDOL with {sw}")]
    PdolUnusable {
        /// What is wrong with the PDOL.
        why: String,
        /// The status word answering the empty PDOL.
        sw: StatusWord,
    },
    /// The Application File Locator is malformed or asks for more records than we read.
    #[error("bad AFL: {why}")]
    BadAfl {
        /// What is wrong with it.
        why: String,
    },
    /// The PAN's check digit is wrong: a misread, a damaged card, or a forged one.
    #[error("the card number fails the Luhn check")]
    LuhnFailed,
    /// The PAN is not 12–19 decimal digits, or its encoding is broken.
    #[error("the card number is malformed: {why}")]
    PanMalformed {
        /// What is wrong, without the digits.
        why: String,
    },
    /// Tag 5A and the track 2 equivalent data (57) carry different PANs.
    #[error("the card carries two different card numbers (tag 5A and track 2)")]
    PanMismatch,
    /// The expiry date is not a valid date (month 01–12, day 01–31, decimal digits).
    #[error("the expiry date is out of range: {why}")]
    ExpiryOutOfRange {
        /// What is wrong.
        why: String,
    },
    /// A command we built could not be encoded: a bug on our side, not the card's.
    #[error("{step}: could not encode the command: {source}")]
    Command {
        /// The step.
        step: Step,
        /// The encoding error.
        source: ApduError,
    },
}

impl EmvError {
    /// The step the error happened in, when it belongs to one.
    pub fn step(&self) -> Option<Step> {
        match self {
            EmvError::Transport { step, .. }
            | EmvError::Refused { step, .. }
            | EmvError::CardMisbehaved { step, .. }
            | EmvError::MissingTag { step, .. }
            | EmvError::Command { step, .. } => Some(*step),
            EmvError::GpoRefused { .. } | EmvError::PdolUnusable { .. } => Some(Step::GetProcessingOptions),
            EmvError::LuhnFailed
            | EmvError::PanMalformed { .. }
            | EmvError::PanMismatch
            | EmvError::ExpiryOutOfRange { .. } => Some(Step::CardData),
            EmvError::NoApplication { .. } | EmvError::BadAfl { .. } => None,
        }
    }

    /// Whether the card left the field: the passenger may simply tap again.
    pub fn is_transport(&self) -> bool {
        matches!(self, EmvError::Transport { .. })
    }
}
