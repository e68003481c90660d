//! Anti-passback for media that carry no log of their own (tokens): the last accepted tap
//! of each medium at this device, for the configured window, in bounded memory.

use std::collections::HashMap;

use crate::lists::MediumKey;

/// Most media remembered at once. A gate sees a few thousand media in an hour; when full,
/// entries older than the window are dropped first, then the oldest.
pub const PASSBACK_ENTRIES_MAX: usize = 65_536;

/// Recent accepted taps by medium.
#[derive(Debug, Clone)]
pub struct Passback {
    window_s: u64,
    last_accepted_s: HashMap<MediumKey, u64>,
}

impl Passback {
    /// Remembers taps for `window_s` seconds; 0 turns passback off.
    pub fn new(window_s: u32) -> Passback {
        Passback { window_s: u64::from(window_s), last_accepted_s: HashMap::new() }
    }

    /// Whether a tap at `now_s` repeats an accepted one within the window.
    pub fn is_passback(&self, key: &MediumKey, now_s: u64) -> bool {
        self.window_s > 0
            && self.last_accepted_s.get(key).is_some_and(|last| *last <= now_s && now_s - *last < self.window_s)
    }

    /// Records an accepted tap.
    pub fn accepted(&mut self, key: MediumKey, now_s: u64) {
        if self.window_s == 0 {
            return;
        }
        if self.last_accepted_s.len() >= PASSBACK_ENTRIES_MAX && !self.last_accepted_s.contains_key(&key) {
            let window_s = self.window_s;
            self.last_accepted_s.retain(|_, last| now_s.saturating_sub(*last) < window_s);
            if self.last_accepted_s.len() >= PASSBACK_ENTRIES_MAX
                && let Some(oldest) = self.last_accepted_s.iter().min_by_key(|(_, last)| **last).map(|(key, _)| *key)
            {
                self.last_accepted_s.remove(&oldest);
            }
        }
        self.last_accepted_s.insert(key, now_s);
        debug_assert!(self.last_accepted_s.len() <= PASSBACK_ENTRIES_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_medium_is_refused_within_the_window_and_accepted_after() {
        let key = MediumKey::card_number(7);
        let mut passback = Passback::new(60);
        assert!(!passback.is_passback(&key, 1_000));
        passback.accepted(key, 1_000);
        assert!(passback.is_passback(&key, 1_059));
        assert!(!passback.is_passback(&key, 1_060));
        assert!(!passback.is_passback(&MediumKey::card_number(8), 1_001), "another medium passes");
    }

    #[test]
    fn memory_stays_bounded() {
        let mut passback = Passback::new(3_600);
        for n in 0..(PASSBACK_ENTRIES_MAX as u64 + 10) {
            passback.accepted(MediumKey::card_number(n), n);
        }
        // When full, what is older than the window went first.
        assert!(passback.last_accepted_s.len() <= PASSBACK_ENTRIES_MAX);
        let now = PASSBACK_ENTRIES_MAX as u64 + 10;
        assert!(passback.is_passback(&MediumKey::card_number(now - 1), now), "the newest is kept");
        assert!(!passback.is_passback(&MediumKey::card_number(0), now), "the oldest made room");
    }
}
