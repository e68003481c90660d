//! A validator's configuration: where it stands, the fares it charges, its limits. It is a
//! file provisioned to the device (TOML or JSON); the back office writes it from the
//! catalogue in force, so the device never needs the catalogue itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Most zones a route may list: the card's zone bitmap has 32 bits.
pub const ROUTE_ZONES_MAX: usize = 32;

/// Longest passback window: a day. Longer would refuse a commuter's ride home.
pub const PASSBACK_SECONDS_MAX: u32 = 86_400;

/// Why a configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("validator configuration: {field}: {why}")]
pub struct ConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub why: String,
}

/// Single fares by discount category and number of zones, from the catalogue in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FareTable {
    /// The catalogue version these fares come from.
    pub tariff_version: String,
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// Discount card code → single fares in minor units for 1, 2, … zones.
    pub single_fares: BTreeMap<u16, Vec<i64>>,
}

impl FareTable {
    /// The single fare for `zones` zones (at least one) at discount `discount`, falling
    /// back to full fare (code 0) when the discount has no own fares.
    pub fn single_fare(&self, discount: u16, zones: usize) -> Option<i64> {
        let fares = self.single_fares.get(&discount).or_else(|| self.single_fares.get(&0))?;
        fares.get(zones.max(1).checked_sub(1)?).copied()
    }
}

/// How a validator is set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorConfig {
    /// The device number written into every card log record and journal entry.
    pub device: u32,
    /// The carrier operating it.
    pub carrier: String,
    /// The stop or gate code.
    pub location: u16,
    /// The zone it stands in (1–32).
    pub zone: u8,
    /// The zones of the route from here to its end, this zone first; empty means only
    /// this zone. A coupon must cover this zone; a surcharge buys the ones it misses.
    #[serde(default)]
    pub route_zones: Vec<u8>,
    /// The same medium at this device within this many seconds is refused as passback.
    #[serde(default = "default_passback_seconds")]
    pub passback_seconds: u32,
    /// Account-based media (tokens) are refused when the lists are older than this.
    #[serde(default = "default_list_age_max_seconds")]
    pub list_age_max_seconds: u64,
    /// Whether a bank card with no coupon buys a single fare for deferred authorisation
    /// (on vehicles, KIDSOK 3.3.1).
    #[serde(default)]
    pub emv_purchases: bool,
    /// The fares.
    pub fares: FareTable,
    /// The public keys lists must be signed with: the back office's list-signing keys,
    /// provisioned with the configuration (the secure module holds no list key).
    #[serde(default)]
    pub list_keys: Vec<ListKey>,
}

/// One trusted list-signing public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListKey {
    /// Its key version.
    pub version: u8,
    /// The P-256 public key, SEC1 uncompressed, hex.
    pub public_key: String,
}

impl ListKey {
    /// The list-signing keys `hsm` holds (active and verify-only), for provisioning.
    pub fn all_from(hsm: &dyn smartticket_crypto::hsm::Hsm) -> Result<Vec<ListKey>, smartticket_crypto::hsm::HsmError> {
        let mut keys = Vec::new();
        for info in hsm.inventory()? {
            if info.key.role == smartticket_crypto::keys::KeyRole::ListSigning {
                let public = hsm.verifying_key(info.key)?;
                keys.push(ListKey { version: info.key.version.get(), public_key: hex::encode(public.to_sec1()) });
            }
        }
        Ok(keys)
    }
}

fn default_passback_seconds() -> u32 {
    60
}

fn default_list_age_max_seconds() -> u64 {
    48 * 3_600
}

impl ValidatorConfig {
    /// Checks every field; the engine assumes a checked configuration.
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |field, why: &str| Err(ConfigError { field, why: why.to_owned() });
        if !(1..=32).contains(&self.zone) {
            return bad("zone", "zones are numbered 1 to 32");
        }
        if self.route_zones.len() > ROUTE_ZONES_MAX {
            return bad("route_zones", "at most 32 zones");
        }
        if self.route_zones.iter().any(|zone| !(1..=32).contains(zone)) {
            return bad("route_zones", "zones are numbered 1 to 32");
        }
        if self.route_zones.first().is_some_and(|first| *first != self.zone) {
            return bad("route_zones", "the route starts in the validator's own zone");
        }
        if self.passback_seconds > PASSBACK_SECONDS_MAX {
            return bad("passback_seconds", "at most a day");
        }
        if self.fares.single_fares.get(&0).is_none_or(|fares| fares.is_empty()) {
            return bad("fares.single_fares", "full fare (discount 0) needs at least a one-zone fare");
        }
        if self.fares.single_fares.values().flatten().any(|fare| *fare <= 0) {
            return bad("fares.single_fares", "fares are positive amounts in minor units");
        }
        self.trusted_keys()?;
        Ok(())
    }

    /// The list keys as the holder trusts them.
    pub fn trusted_keys(&self) -> Result<crate::lists::TrustedKeys, ConfigError> {
        let mut trusted = crate::lists::TrustedKeys::new();
        for key in &self.list_keys {
            let bad = |why: String| ConfigError { field: "list_keys", why };
            let version = smartticket_crypto::keys::KeyVersion::new(key.version)
                .map_err(|_| bad("key version 0 does not exist".into()))?;
            let bytes = hex::decode(&key.public_key).map_err(|_| bad(format!("version {}: not hex", key.version)))?;
            let public = smartticket_crypto::sign::VerifyingKey::from_sec1(&bytes)
                .map_err(|e| bad(format!("version {}: {e}", key.version)))?;
            trusted.trust(version, public).map_err(|e| bad(e.to_string()))?;
        }
        Ok(trusted)
    }

    /// The zones a ride from here covers: the route, or this zone alone.
    pub fn ride_zones(&self) -> &[u8] {
        if self.route_zones.is_empty() { std::slice::from_ref(&self.zone) } else { &self.route_zones }
    }
}
