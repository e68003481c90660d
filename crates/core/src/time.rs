//! UTC instants with microsecond precision, and the [`Clock`] libraries take them from.
//!
//! Microseconds, because both SQLite (as an `i64`) and PostgreSQL keep exactly that much,
//! so a value read back from storage compares equal to the one written.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An instant in UTC, truncated to whole microseconds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = DateTime, example = "2026-11-21T15:55:58.123456Z")]
pub struct Timestamp(#[serde(with = "rfc3339")] DateTime<Utc>);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(DateTime::UNIX_EPOCH);

    /// Wraps a chrono instant, dropping sub-microsecond digits.
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Self(at.trunc_subsecs(6))
    }

    /// Reads the stored form: microseconds since the Unix epoch. `None` when out of
    /// chrono's range (about ±262,000 years), which only corrupt data can be.
    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        DateTime::from_timestamp_micros(micros).map(Self)
    }

    /// The stored form: microseconds since the Unix epoch.
    pub fn unix_micros(self) -> i64 {
        self.0.timestamp_micros()
    }

    /// The chrono instant.
    pub fn datetime(self) -> DateTime<Utc> {
        self.0
    }

    /// `self + duration`, or `None` past the representable range.
    pub fn checked_add(self, duration: chrono::Duration) -> Option<Self> {
        self.0.checked_add_signed(duration).map(Self::from_datetime)
    }

    /// `self - duration`, or `None` before the representable range.
    pub fn checked_sub(self, duration: chrono::Duration) -> Option<Self> {
        self.0.checked_sub_signed(duration).map(Self::from_datetime)
    }

    /// RFC 3339 text with a `Z` offset and six fraction digits.
    pub fn to_rfc3339(self) -> String {
        self.0.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    /// Reads RFC 3339 text with any offset, converting to UTC.
    pub fn parse_rfc3339(text: &str) -> Result<Self, chrono::ParseError> {
        DateTime::parse_from_rfc3339(text).map(|at| Self::from_datetime(at.with_timezone(&Utc)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

mod rfc3339 {
    use chrono::{DateTime, SubsecRound, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc).trunc_subsecs(6))
            .map_err(|e| serde::de::Error::custom(format!("expected an RFC 3339 date-time: {e}")))
    }
}

/// Where libraries get the current time. Production passes [`SystemClock`]; tests pass a
/// [`ManualClock`] and move it explicitly.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(Utc::now())
    }
}

/// A clock that moves only when told to; for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: Timestamp) -> Self {
        Self { micros: AtomicI64::new(at.unix_micros()) }
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: Timestamp) {
        self.micros.store(at.unix_micros(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `micros`, saturating at the end of time.
    pub fn advance_micros(&self, micros: i64) {
        let _ = self.micros.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| Some(now.saturating_add(micros)));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.micros.load(Ordering::SeqCst)).unwrap_or(Timestamp::EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips() {
        let now = SystemClock.now();
        assert_eq!(Timestamp::from_unix_micros(now.unix_micros()), Some(now));
        assert_eq!(Timestamp::from_unix_micros(i64::MAX), None);
    }

    #[test]
    fn serialises_as_rfc3339_utc_with_micros() {
        let at = Timestamp::from_unix_micros(1_763_740_558_123_456).unwrap();
        let json = serde_json::to_string(&at).unwrap();
        assert_eq!(json, "\"2025-11-21T15:55:58.123456Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), at);
        let offset: Timestamp = serde_json::from_str("\"2025-11-21T16:55:58.123456+01:00\"").unwrap();
        assert_eq!(offset, at, "offsets are converted to UTC");
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::EPOCH);
        assert_eq!(clock.now(), Timestamp::EPOCH);
        clock.advance_micros(1_500_000);
        assert_eq!(clock.now().unix_micros(), 1_500_000);
    }
}
