//! The lifecycle of a medium (CityPay 7.6): manufactured → issued → inactive → active ⇄
//! blocked → permanently blocked → destroyed. Every status change goes through
//! [`MediumStatus::apply`], which refuses what the lifecycle does not allow and says what
//! would be allowed instead. Pure: no storage, no clock.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a medium is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediumStatus {
    /// Personalised, in stock, not yet distributed.
    Manufactured,
    /// Distributed to a sales point, not yet handed to a holder.
    Issued,
    /// Handed over (or registered), waiting for its one online activation.
    Inactive,
    /// In use.
    Active,
    /// Temporarily blocked (suspected loss); can be unblocked.
    Blocked,
    /// Blocked for good (lost, stolen, replaced, fraud).
    PermanentlyBlocked,
    /// Physically destroyed; kept for the record.
    Destroyed,
}

/// What can happen to a medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediumEvent {
    /// Stock goes to a sales point.
    Issue,
    /// Handed to a holder or registered to an account.
    HandOver,
    /// The one online activation.
    Activate,
    /// A temporary block.
    Block,
    /// Lifting a temporary block.
    Unblock,
    /// A permanent block.
    BlockPermanently,
    /// Recorded destruction.
    Destroy,
}

impl MediumEvent {
    /// The name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MediumEvent::Issue => "issue",
            MediumEvent::HandOver => "hand_over",
            MediumEvent::Activate => "activate",
            MediumEvent::Block => "block",
            MediumEvent::Unblock => "unblock",
            MediumEvent::BlockPermanently => "block_permanently",
            MediumEvent::Destroy => "destroy",
        }
    }

    /// Every event, in lifecycle order.
    pub const ALL: [MediumEvent; 7] = [
        MediumEvent::Issue,
        MediumEvent::HandOver,
        MediumEvent::Activate,
        MediumEvent::Block,
        MediumEvent::Unblock,
        MediumEvent::BlockPermanently,
        MediumEvent::Destroy,
    ];
}

/// A transition the lifecycle forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} a medium that is {from}; allowed now: {}", allowed_list(.allowed))]
pub struct IllegalTransition {
    /// The current status.
    pub from: MediumStatus,
    /// What was asked.
    pub event: MediumEvent,
    /// What is allowed from `from`.
    pub allowed: Vec<MediumEvent>,
}

fn allowed_list(allowed: &[MediumEvent]) -> String {
    if allowed.is_empty() {
        "nothing (this is a final state)".into()
    } else {
        allowed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

impl MediumStatus {
    /// Every status.
    pub const ALL: [MediumStatus; 7] = [
        MediumStatus::Manufactured,
        MediumStatus::Issued,
        MediumStatus::Inactive,
        MediumStatus::Active,
        MediumStatus::Blocked,
        MediumStatus::PermanentlyBlocked,
        MediumStatus::Destroyed,
    ];

    /// The status `event` leads to, if the lifecycle allows it.
    fn next(self, event: MediumEvent) -> Option<MediumStatus> {
        use MediumEvent as E;
        use MediumStatus as S;
        match (self, event) {
            (S::Manufactured, E::Issue) => Some(S::Issued),
            (S::Issued, E::HandOver) => Some(S::Inactive),
            (S::Inactive, E::Activate) => Some(S::Active),
            (S::Active, E::Block) => Some(S::Blocked),
            (S::Blocked, E::Unblock) => Some(S::Active),
            (S::Inactive | S::Active | S::Blocked, E::BlockPermanently) => Some(S::PermanentlyBlocked),
            (S::PermanentlyBlocked, E::Destroy) => Some(S::Destroyed),
            _ => None,
        }
    }

    /// Applies `event`, or explains why not.
    pub fn apply(self, event: MediumEvent) -> Result<MediumStatus, IllegalTransition> {
        self.next(event).ok_or_else(|| IllegalTransition { from: self, event, allowed: self.allowed() })
    }

    /// The events allowed now.
    pub fn allowed(self) -> Vec<MediumEvent> {
        MediumEvent::ALL.into_iter().filter(|event| self.next(*event).is_some()).collect()
    }

    /// Whether validators should accept it (everything else goes on the denylist).
    pub fn is_usable(self) -> bool {
        self == MediumStatus::Active
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MediumStatus::Manufactured => "manufactured",
            MediumStatus::Issued => "issued",
            MediumStatus::Inactive => "inactive",
            MediumStatus::Active => "active",
            MediumStatus::Blocked => "blocked",
            MediumStatus::PermanentlyBlocked => "permanently_blocked",
            MediumStatus::Destroyed => "destroyed",
        }
    }

    /// Reads a stored name.
    pub fn parse(text: &str) -> Option<MediumStatus> {
        MediumStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for MediumStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().replace('_', " "))
    }
}

impl fmt::Display for MediumEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MediumEvent::Issue => "issue",
            MediumEvent::HandOver => "hand over",
            MediumEvent::Activate => "activate",
            MediumEvent::Block => "block",
            MediumEvent::Unblock => "unblock",
            MediumEvent::BlockPermanently => "block permanently",
            MediumEvent::Destroy => "destroy",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_documented_path_is_allowed() {
        let path = [
            MediumEvent::Issue,
            MediumEvent::HandOver,
            MediumEvent::Activate,
            MediumEvent::Block,
            MediumEvent::Unblock,
            MediumEvent::Block,
            MediumEvent::BlockPermanently,
            MediumEvent::Destroy,
        ];
        let end = path.into_iter().try_fold(MediumStatus::Manufactured, MediumStatus::apply).unwrap();
        assert_eq!(end, MediumStatus::Destroyed);
    }

    #[test]
    fn illegal_transitions_list_what_is_allowed() {
        let err = MediumStatus::Issued.apply(MediumEvent::Activate).unwrap_err();
        assert_eq!(err.allowed, vec![MediumEvent::HandOver]);
        assert!(err.to_string().contains("allowed now: hand over"), "{err}");
        let err = MediumStatus::Destroyed.apply(MediumEvent::Unblock).unwrap_err();
        assert!(err.allowed.is_empty());
        assert!(err.to_string().contains("final state"));
        assert!(MediumStatus::Active.apply(MediumEvent::Activate).is_err(), "activated once only");
    }

    proptest! {
        #[test]
        fn no_sequence_leaves_destroyed_or_reenters_manufactured(events in proptest::collection::vec(0..7_usize, 0..40)) {
            let mut status = MediumStatus::Manufactured;
            let mut destroyed = false;
            for index in events {
                let event = MediumEvent::ALL[index];
                if let Ok(next) = status.apply(event) {
                    prop_assert_ne!(next, MediumStatus::Manufactured);
                    prop_assert!(!destroyed, "nothing happens after destruction");
                    destroyed |= next == MediumStatus::Destroyed;
                    status = next;
                }
            }
        }
    }
}
