//! Roles and the authenticated caller.
//!
//! Staff hold exactly one of five roles; customers and partners are roles of their own.
//! Endpoints list the [`Role`]s allowed, and every request resolves to one [`Principal`].

use serde::{Deserialize, Serialize};
use smartticket_core::id::{ApiKeyId, CustomerId, PartnerId, SessionId, StaffId};
use utoipa::ToSchema;

/// Everything an endpoint can allow: the five staff roles, customers and partners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages staff, partners, keys and configuration.
    Admin,
    /// Runs the network: catalogue, devices, fraud, clearing and settlement.
    Operator,
    /// Serves passengers at a counter or service centre.
    Cashier,
    /// A carrier's staff: its own devices, uploads and revenue.
    Carrier,
    /// Reads everything, changes nothing.
    Auditor,
    /// A passenger with an e-shop account.
    Customer,
    /// A bank, retailer or app selling through the API with a key.
    Partner,
}

impl Role {
    /// Every role, in a fixed order (tests walk it).
    pub const ALL: [Role; 7] =
        [Role::Admin, Role::Operator, Role::Cashier, Role::Carrier, Role::Auditor, Role::Customer, Role::Partner];

    /// The role's name as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Cashier => "cashier",
            Role::Carrier => "carrier",
            Role::Auditor => "auditor",
            Role::Customer => "customer",
            Role::Partner => "partner",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role of a staff user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// See [`Role::Admin`].
    Admin,
    /// See [`Role::Operator`].
    Operator,
    /// See [`Role::Cashier`].
    Cashier,
    /// See [`Role::Carrier`].
    Carrier,
    /// See [`Role::Auditor`].
    Auditor,
}

impl StaffRole {
    /// Every staff role.
    pub const ALL: [StaffRole; 5] =
        [StaffRole::Admin, StaffRole::Operator, StaffRole::Cashier, StaffRole::Carrier, StaffRole::Auditor];

    /// The stored and written name.
    pub fn as_str(self) -> &'static str {
        Role::from(self).as_str()
    }

    /// Reads a stored or typed name.
    pub fn parse(text: &str) -> Option<StaffRole> {
        StaffRole::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

impl From<StaffRole> for Role {
    fn from(role: StaffRole) -> Role {
        match role {
            StaffRole::Admin => Role::Admin,
            StaffRole::Operator => Role::Operator,
            StaffRole::Cashier => Role::Cashier,
            StaffRole::Carrier => Role::Carrier,
            StaffRole::Auditor => Role::Auditor,
        }
    }
}

impl std::fmt::Display for StaffRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A staff member logged in with a session.
    Staff {
        /// Who.
        id: StaffId,
        /// Their role now (read at every request, so a demotion takes effect at once).
        role: StaffRole,
        /// The session used.
        session: SessionId,
    },
    /// A customer logged in with a session.
    Customer {
        /// Who.
        id: CustomerId,
        /// The session used.
        session: SessionId,
    },
    /// A partner calling with an API key.
    Partner {
        /// Which partner.
        id: PartnerId,
        /// Which of its keys.
        key: ApiKeyId,
    },
}

impl Principal {
    /// The role endpoints check against.
    pub fn role(&self) -> Role {
        match self {
            Principal::Staff { role, .. } => Role::from(*role),
            Principal::Customer { .. } => Role::Customer,
            Principal::Partner { .. } => Role::Partner,
        }
    }

    /// The session behind this principal, if it logged in with one.
    pub fn session(&self) -> Option<SessionId> {
        match self {
            Principal::Staff { session, .. } | Principal::Customer { session, .. } => Some(*session),
            Principal::Partner { .. } => None,
        }
    }
}
