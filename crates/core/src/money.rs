//! Money as an integer count of minor units plus an ISO 4217 currency.
//!
//! There are no floats anywhere: amounts are `i64` minor units (hellers, kopecks, rials),
//! and every operation is checked, refusing mixed currencies and overflow with a typed
//! error instead of wrapping or panicking.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

/// Why a money operation or parse was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {left} with {right}: currencies differ")]
    MixedCurrencies {
        /// Currency of the left operand.
        left: Currency,
        /// Currency of the right operand.
        right: Currency,
    },
    /// The result does not fit in an `i64` count of minor units.
    #[error("amount out of range: the result does not fit in 64-bit minor units")]
    Overflow,
    /// The code is not an active ISO 4217 currency.
    #[error("`{0}` is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    /// A decimal amount could not be read.
    #[error("`{text}` is not an amount in {currency}: {why}")]
    BadAmount {
        /// What was given.
        text: String,
        /// The currency it was read for.
        currency: Currency,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// An ISO 4217 currency, with its number of minor-unit digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Czech koruna, the currency of the KIDSOK network.
    pub const CZK: Currency = Currency(iso_currency::Currency::CZK);
    /// Euro.
    pub const EUR: Currency = Currency(iso_currency::Currency::EUR);
    /// Russian rouble, the currency of Troika.
    pub const RUB: Currency = Currency(iso_currency::Currency::RUB);
    /// Iranian rial, the currency of CityPay.
    pub const IRR: Currency = Currency(iso_currency::Currency::IRR);

    /// The three-letter code, e.g. `CZK`.
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// How many decimal digits the minor unit has (2 for CZK, 0 for JPY). Currencies
    /// without a minor unit in ISO 4217 (gold, SDR) count as 0.
    pub fn minor_digits(self) -> u32 {
        self.0.exponent().map(u32::from).unwrap_or(0)
    }

    /// Reads a three-letter code, upper case.
    pub fn from_code(code: &str) -> Result<Self, MoneyError> {
        iso_currency::Currency::from_code(code)
            .map(Self)
            .ok_or_else(|| MoneyError::UnknownCurrency(crate::id::echo(code)))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Self::from_code(code)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_code(&code).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[A-Z]{3}$"))
            .description(Some("ISO 4217 currency code"))
            .examples(["CZK"])
            .into()
    }
}
impl ToSchema for Currency {}

/// An amount of money: integer minor units and a currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// The amount in minor units (hellers for CZK); negative for debts and refunds.
    pub amount_minor: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// An amount of `amount_minor` minor units.
    pub const fn new(amount_minor: i64, currency: Currency) -> Self {
        Self { amount_minor, currency }
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Self { amount_minor: 0, currency }
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::MixedCurrencies { left: self.currency, right: other.currency })
        }
    }

    /// `self + other`, refusing mixed currencies and overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self.amount_minor.checked_add(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// `self - other`, refusing mixed currencies and overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self.amount_minor.checked_sub(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// `self × count` (a price times a quantity), refusing overflow.
    pub fn checked_mul(self, count: i64) -> Result<Money, MoneyError> {
        let amount = self.amount_minor.checked_mul(count).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// `-self`, refusing `i64::MIN`.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let amount = self.amount_minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// The sum of `amounts`, all in `currency`; zero when empty.
    pub fn sum<I: IntoIterator<Item = Money>>(currency: Currency, amounts: I) -> Result<Money, MoneyError> {
        amounts.into_iter().try_fold(Money::zero(currency), Money::checked_add)
    }

    /// Reads a decimal amount in major units (`"123.45"` CZK is 12345 hellers). At most as
    /// many fraction digits as the currency has; no exponent, no thousands separators.
    pub fn parse_major(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let bad = |why| MoneyError::BadAmount { text: crate::id::echo(text), currency, why };
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("expected digits before the decimal point"));
        }
        if !fraction.bytes().all(|b| b.is_ascii_digit()) || (digits.contains('.') && fraction.is_empty()) {
            return Err(bad("expected digits after the decimal point"));
        }
        let scale = currency.minor_digits();
        let fraction_digits = u32::try_from(fraction.len()).map_err(|_| bad("too many fraction digits"))?;
        if fraction_digits > scale {
            return Err(bad("more fraction digits than the currency's minor unit"));
        }
        let unit = 10_i64.checked_pow(scale).ok_or(MoneyError::Overflow)?;
        let whole: i64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let fraction: i64 = if fraction.is_empty() { 0 } else { fraction.parse().map_err(|_| MoneyError::Overflow)? };
        let fraction_unit = 10_i64.checked_pow(scale - fraction_digits).ok_or(MoneyError::Overflow)?;
        let magnitude = whole
            .checked_mul(unit)
            .and_then(|m| m.checked_add(fraction.checked_mul(fraction_unit)?))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(if negative { -magnitude } else { magnitude }, currency))
    }
}

impl Money {
    /// The amount in major units as a decimal with the currency's minor digits, without
    /// the code: `123.45`, `-0.05`, `1200` (JPY). What files and bank messages carry.
    /// Computed from integer minor units, never through a float.
    pub fn major_decimal(&self) -> String {
        let digits = self.currency.minor_digits();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let magnitude = self.amount_minor.unsigned_abs();
        match 10_u64.checked_pow(digits) {
            Some(unit) if digits > 0 => {
                let width = usize::try_from(digits).unwrap_or(0);
                format!("{sign}{}.{:0width$}", magnitude / unit, magnitude % unit)
            }
            // No minor unit (JPY), or an exponent no real currency has: whole units.
            _ => format!("{sign}{magnitude}"),
        }
    }
}

impl fmt::Display for Money {
    /// `123.45 CZK`: major units, the currency's minor digits, then the code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.major_decimal(), self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CZK: Currency = Currency::CZK;

    #[test]
    fn refuses_mixed_currencies() {
        let err = Money::new(100, CZK).checked_add(Money::new(100, Currency::EUR)).unwrap_err();
        assert_eq!(err, MoneyError::MixedCurrencies { left: CZK, right: Currency::EUR });
        assert!(Money::new(1, CZK).checked_sub(Money::new(1, Currency::RUB)).is_err());
    }

    #[test]
    fn refuses_overflow() {
        assert_eq!(Money::new(i64::MAX, CZK).checked_add(Money::new(1, CZK)), Err(MoneyError::Overflow));
        assert_eq!(Money::new(i64::MIN, CZK).checked_sub(Money::new(1, CZK)), Err(MoneyError::Overflow));
        assert_eq!(Money::new(i64::MIN, CZK).checked_neg(), Err(MoneyError::Overflow));
        assert_eq!(Money::new(i64::MAX / 2 + 1, CZK).checked_mul(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn displays_major_units_with_the_currency_scale() {
        assert_eq!(Money::new(12345, CZK).to_string(), "123.45 CZK");
        assert_eq!(Money::new(-5, CZK).to_string(), "-0.05 CZK");
        assert_eq!(Money::new(1500, Currency::from_code("JPY").unwrap()).to_string(), "1500 JPY");
        assert_eq!(Money::new(i64::MIN, CZK).to_string(), "-92233720368547758.08 CZK");
    }

    #[test]
    fn parses_major_units_strictly() {
        assert_eq!(Money::parse_major("123.45", CZK).unwrap(), Money::new(12345, CZK));
        assert_eq!(Money::parse_major("123.4", CZK).unwrap(), Money::new(12340, CZK));
        assert_eq!(Money::parse_major("-7", CZK).unwrap(), Money::new(-700, CZK));
        for bad in ["", ".5", "1.", "1.234", "1,5", "1e3", "--1", "+1", " 1", "99999999999999999999"] {
            assert!(Money::parse_major(bad, CZK).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn currency_codes_are_checked() {
        assert_eq!(Currency::from_code("CZK").unwrap(), CZK);
        assert_eq!(CZK.minor_digits(), 2);
        assert!(matches!(Currency::from_code("XYZ"), Err(MoneyError::UnknownCurrency(_))));
        assert!(Currency::from_code("czk").is_err(), "codes are upper case");
    }

    #[test]
    fn serialises_as_minor_units_and_code() {
        let json = serde_json::to_string(&Money::new(2500, CZK)).unwrap();
        assert_eq!(json, r#"{"amount_minor":2500,"currency":"CZK"}"#);
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor":1.5,"currency":"CZK"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor":1,"currency":"ABC"}"#).is_err());
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(amount in any::<i64>().prop_filter("MIN has no positive twin", |a| *a != i64::MIN)) {
            let money = Money::new(amount, CZK);
            let text = money.to_string();
            let major = text.trim_end_matches(" CZK");
            prop_assert_eq!(Money::parse_major(major, CZK).unwrap(), money);
        }

        #[test]
        fn add_then_sub_is_identity(a in -1_i64 << 60..1 << 60, b in -1_i64 << 60..1 << 60) {
            let (a, b) = (Money::new(a, CZK), Money::new(b, CZK));
            prop_assert_eq!(a.checked_add(b).unwrap().checked_sub(b).unwrap(), a);
        }
    }
}
