//! What a validator decided for one tap, as shown to the passenger and as written to the
//! journal: the record is JSON, one per journal entry, so clearing and people can read it.

use serde::{Deserialize, Serialize};
use smartticket_card::fare::ops::TransactionProof;

/// Why a tap was refused. The codes are stable: devices show them and clearing counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The medium is on the denylist.
    #[error("the medium is blocked")]
    Denylisted,
    /// No contract or coupon is valid here and now, and nothing else pays.
    #[error("no valid ticket for this ride")]
    NoValidContract,
    /// The purse holds less than the fare.
    #[error("not enough money on the card")]
    InsufficientBalance,
    /// A coupon is valid now, but not in this zone.
    #[error("the ticket is not valid in this zone")]
    WrongZone,
    /// The medium itself (the card's environment) has expired.
    #[error("the card has expired")]
    Expired,
    /// The lists are older than the device may use for account-based media.
    #[error("the device's lists are too old to accept this medium")]
    ListTooOld,
    /// The same medium at this device moments ago.
    #[error("already validated here a moment ago")]
    Passback,
    /// The card could not be read or written (removed, unknown, not ours).
    #[error("the card could not be read")]
    CardUnreadable,
}

impl DeclineReason {
    /// The stable code, as the journal writes it (`no_valid_contract`).
    pub fn code(self) -> &'static str {
        match self {
            DeclineReason::Denylisted => "denylisted",
            DeclineReason::NoValidContract => "no_valid_contract",
            DeclineReason::InsufficientBalance => "insufficient_balance",
            DeclineReason::WrongZone => "wrong_zone",
            DeclineReason::Expired => "expired",
            DeclineReason::ListTooOld => "list_too_old",
            DeclineReason::Passback => "passback",
            DeclineReason::CardUnreadable => "card_unreadable",
        }
    }
}

/// How an accepted ride is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Payment {
    /// A period pass or event ticket on the card, in this slot.
    CardContract {
        /// Slot on the card.
        slot: u8,
        /// The product's card code.
        product: u32,
    },
    /// One trip of a trips contract on the card.
    CardTrip {
        /// Slot on the card.
        slot: u8,
        /// The product's card code.
        product: u32,
        /// Trips left after this one.
        trips_left: i32,
    },
    /// The fare debited from the card's purse.
    CardPurse {
        /// The fare, minor units.
        fare_minor: i64,
        /// The balance after, minor units.
        balance_minor: i64,
    },
    /// A coupon on the greenlist (bank card, phone or QR token).
    Coupon {
        /// The product's card code.
        product: u32,
        /// The discount's card code.
        discount: u16,
    },
    /// A single fare bought with the bank card on the vehicle, for deferred authorisation
    /// (KIDSOK 3.3.1).
    EmvPurchase {
        /// The fare, minor units.
        fare_minor: i64,
    },
}

impl Payment {
    /// What paid, as the journal's `by` field writes it (`card_purse`).
    pub fn by(&self) -> &'static str {
        match self {
            Payment::CardContract { .. } => "card_contract",
            Payment::CardTrip { .. } => "card_trip",
            Payment::CardPurse { .. } => "card_purse",
            Payment::Coupon { .. } => "coupon",
            Payment::EmvPurchase { .. } => "emv_purchase",
        }
    }
}

/// The outcome of one tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The gate opens.
    Accepted {
        /// How the ride is paid.
        #[serde(flatten)]
        payment: Payment,
        /// The driver must see the passenger's photo (a discounted coupon, KIDSOK 3.3.2).
        photo_reference: Option<u32>,
        /// The coupon covers only part of the route: this surcharge buys the rest.
        surcharge_minor: Option<i64>,
    },
    /// The gate stays shut.
    Declined {
        /// Why.
        reason: DeclineReason,
    },
}

impl Outcome {
    /// Whether the gate opens.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Outcome::Accepted { .. })
    }
}

/// What kind of medium was tapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediumType {
    /// A fare card (the DESFire application).
    FareCard,
    /// A bank card, by its token.
    BankCard,
    /// A phone token.
    PhoneToken,
    /// A QR token.
    QrToken,
    /// An identifier in access-control mode.
    Identifier,
}

/// One journal record: a decision, or a card transaction about to be committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum JournalRecord {
    /// Written before the card commits a charge: if the device dies before the decision
    /// record, clearing still knows a transaction with this counter may exist on the card.
    Intent {
        /// The device's own tap number.
        tap: u64,
        /// The card's UID, hex.
        uid: String,
        /// The card's transaction counter the commit will reach.
        tmc_expected: u32,
        /// UTC seconds.
        at_unix_s: u64,
    },
    /// The decision, written before the gate opens.
    Decision(Decision),
}

impl JournalRecord {
    /// The JSON bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Parses a record read back from a journal.
    pub fn from_bytes(bytes: &[u8]) -> Result<JournalRecord, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// One decision, as journaled and uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The device's own tap number, counting every tap it decided.
    pub tap: u64,
    /// The device.
    pub device: u32,
    /// Its location (stop) code.
    pub location: u16,
    /// The zone it stands in.
    pub zone: u8,
    /// UTC seconds since the Unix epoch.
    pub at_unix_s: u64,
    /// The medium's kind.
    pub medium: MediumType,
    /// The medium's list key (hex): card UID, or token.
    pub medium_key: String,
    /// A masked PAN, for a bank card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked_pan: Option<String>,
    /// What was decided.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The card's proof of the committed transaction, for clearing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<TransactionProof>,
    /// The list versions the decision was made with (greenlist, denylist).
    pub lists: (u64, u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_what_the_journal_writes() {
        use DeclineReason::*;
        for reason in
            [Denylisted, NoValidContract, InsufficientBalance, WrongZone, Expired, ListTooOld, Passback, CardUnreadable]
        {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.code());
        }
        let payments = [
            Payment::CardContract { slot: 0, product: 1 },
            Payment::CardTrip { slot: 1, product: 2, trips_left: 3 },
            Payment::CardPurse { fare_minor: 2_000, balance_minor: 8_000 },
            Payment::Coupon { product: 4, discount: 0 },
            Payment::EmvPurchase { fare_minor: 2_000 },
        ];
        for payment in payments {
            assert_eq!(serde_json::to_value(payment).unwrap()["by"], payment.by());
        }
    }
}
