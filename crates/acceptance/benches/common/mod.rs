//! What both benchmarks need: a reproducible generator of media keys, and the process's
//! resident memory.

use smartticket_acceptance::lists::MediumKey;
use smartticket_crypto::token::PanToken;

/// SplitMix64: a fast, reproducible generator; the quality of randomness does not matter.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random bank-card token key.
    pub fn token(&mut self) -> MediumKey {
        let mut bytes = [0_u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next().to_le_bytes());
        MediumKey::bank_card(&PanToken(bytes))
    }
}

/// The process's resident memory (`VmRSS`), when the system reports it.
pub fn resident_set_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
