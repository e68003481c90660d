//! Typed identifiers: a UUIDv7 wrapped in a type per entity, written with a short prefix
//! (`stf_…`, `cus_…`) so an id pasted into the wrong place is refused with a clear error
//! instead of silently matching nothing.
//!
//! UUIDv7 keeps ids roughly time-ordered, which keeps B-tree inserts local in both SQLite
//! and PostgreSQL. The database stores the bare hyphenated UUID as text.

use thiserror::Error;

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdParseError {
    /// The prefix names another kind of entity, or is missing.
    #[error("expected an id starting with `{expected}_`, got `{got}`")]
    WrongPrefix {
        /// The prefix this id type uses.
        expected: &'static str,
        /// What was given (truncated to a safe length).
        got: String,
    },
    /// The part after the prefix is not a UUID.
    #[error("`{got}` is not a valid `{prefix}_` id: the part after the prefix must be 32 hex digits")]
    Malformed {
        /// The prefix this id type uses.
        prefix: &'static str,
        /// What was given (truncated to a safe length).
        got: String,
    },
}

/// Longest input echoed back in an error; ids are 36 characters, anything longer is noise.
const ECHO_CHARS_MAX: usize = 48;

/// Cuts untrusted input to a length that is safe to echo in an error message.
pub(crate) fn echo(input: &str) -> String {
    input.chars().take(ECHO_CHARS_MAX).collect()
}

/// Declares a typed id: `typed_id!(StaffId, "stf", "A staff member.")`.
///
/// The type serialises as its prefixed form, parses only that form, and converts to and
/// from the bare UUID the database stores.
#[macro_export]
macro_rules! typed_id {
    ($name:ident, $prefix:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($crate::id::Uuid);

        impl $name {
            /// The prefix written before the UUID.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id, ordered after every id made earlier in this process.
            pub fn new() -> Self {
                Self($crate::id::Uuid::now_v7())
            }

            /// Wraps a UUID read from storage.
            pub const fn from_uuid(uuid: $crate::id::Uuid) -> Self {
                Self(uuid)
            }

            /// The bare UUID, as stored.
            pub const fn uuid(&self) -> $crate::id::Uuid {
                self.0
            }

            /// The bare hyphenated UUID text the database stores.
            pub fn to_db(&self) -> String {
                self.0.hyphenated().to_string()
            }

            /// Reads the bare UUID text the database stores.
            pub fn from_db(text: &str) -> Result<Self, $crate::IdParseError> {
                $crate::id::Uuid::parse_str(text).map(Self).map_err(|_| $crate::IdParseError::Malformed {
                    prefix: $prefix,
                    got: $crate::id::echo_untrusted(text),
                })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(self, f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::IdParseError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $crate::id::parse_prefixed(text, $prefix).map(Self)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }

        impl $crate::id::utoipa::PartialSchema for $name {
            fn schema() -> $crate::id::utoipa::openapi::RefOr<$crate::id::utoipa::openapi::schema::Schema> {
                $crate::id::id_schema($prefix)
            }
        }

        impl $crate::id::utoipa::ToSchema for $name {}
    };
}

#[doc(hidden)]
pub use utoipa;
#[doc(hidden)]
pub use uuid::Uuid;

#[doc(hidden)]
pub fn echo_untrusted(input: &str) -> String {
    echo(input)
}

#[doc(hidden)]
pub fn parse_prefixed(text: &str, prefix: &'static str) -> Result<Uuid, IdParseError> {
    let body = text
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .ok_or_else(|| IdParseError::WrongPrefix { expected: prefix, got: echo(text) })?;
    // Only the 32-hex-digit simple form is ours; refusing other UUID spellings keeps one
    // canonical text per id, so ids compare equal as strings in logs and files.
    if body.len() != 32 || !body.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IdParseError::Malformed { prefix, got: echo(text) });
    }
    Uuid::try_parse(body).map_err(|_| IdParseError::Malformed { prefix, got: echo(text) })
}

#[doc(hidden)]
pub fn id_schema(prefix: &'static str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^{prefix}_[0-9a-f]{{32}}$")))
        .examples([format!("{prefix}_0192f0c4a1b27c3e9d5f6a7b8c9d0e1f")])
        .into()
}

typed_id!(StaffId, "stf", "A staff member of an operator, carrier or back office.");
typed_id!(CustomerId, "cus", "A passenger's account; the email is its unique login.");
typed_id!(PartnerId, "ptn", "A partner (bank, retailer, app) that sells through the API.");
typed_id!(ApiKeyId, "key", "One API key of a partner.");
typed_id!(SessionId, "ses", "A login session of a staff member or customer.");
typed_id!(CatalogVersionId, "cat", "One immutable version of the tariff catalogue.");
typed_id!(
    MediumId,
    "med",
    "A fare medium: a fare card, a bank card token, a phone secure element or a phone/QR token."
);
typed_id!(CartId, "crt", "A shopping cart.");
typed_id!(CartItemId, "itm", "One line of a shopping cart.");
typed_id!(OrderId, "ord", "An order: the checked-out content of a cart.");
typed_id!(PaymentId, "pay", "One payment attempt for an order.");
typed_id!(EntitlementId, "ent", "What a paid order item gives: a contract or a purse load on a medium.");
typed_id!(ShiftId, "shf", "A cashier's shift at a counter, with its cash drawer.");
typed_id!(DeliverySessionId, "dls", "One secure session that writes pending entitlements to a card.");
typed_id!(DiscountRequestId, "dsc", "A request for a discount category, decided by a cashier.");
typed_id!(PhotoId, "pho", "A customer's photo, re-encoded and stripped of metadata.");
typed_id!(ComplaintId, "cmp", "A complaint case opened at a counter.");
typed_id!(MailId, "mail", "One outgoing email in the outbox.");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_display_and_parse() {
        let id = StaffId::new();
        let text = id.to_string();
        assert!(text.starts_with("stf_"));
        assert_eq!(text.len(), 4 + 32);
        assert_eq!(text.parse::<StaffId>().unwrap(), id);
        assert_eq!(StaffId::from_db(&id.to_db()).unwrap(), id);
    }

    #[test]
    fn refuses_an_id_of_another_kind() {
        let customer = CustomerId::new().to_string();
        let err = customer.parse::<StaffId>().unwrap_err();
        assert!(matches!(err, IdParseError::WrongPrefix { expected: "stf", .. }));
    }

    #[test]
    fn refuses_other_uuid_spellings_and_junk() {
        let id = StaffId::new();
        let hyphenated = format!("stf_{}", id.uuid().hyphenated());
        assert!(hyphenated.parse::<StaffId>().is_err());
        assert!("stf_".parse::<StaffId>().is_err());
        assert!("stf_zz".parse::<StaffId>().is_err());
        let long = format!("stf_{}", "a".repeat(10_000));
        let err = long.parse::<StaffId>().unwrap_err().to_string();
        assert!(err.len() < 200, "errors must not echo unbounded input");
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let a = StaffId::new();
        let b = StaffId::new();
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn serialises_as_prefixed_text() {
        let id = PartnerId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<PartnerId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<PartnerId>("\"cus_00000000000000000000000000000000\"").is_err());
    }
}
