//! How long an uploader waits before resending an unacknowledged batch: exponential with a
//! cap and jitter. Pure: the caller supplies the random value and keeps the clock.

/// How many attempts an upload gets before the caller gives up on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptsMax {
    /// Retry for ever: a validator's journal uploads must eventually arrive.
    Unlimited,
    /// Give up after this many failed attempts (at least 1).
    Limited(u32),
}

/// An exponential backoff policy with a cap and "equal jitter": the wait after the n-th failure
/// is drawn from the upper half of `min(delay_ms_first * 2^(n-1), delay_ms_max)`, so a fleet
/// of validators coming back online together spreads its retries, yet none retries at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    delay_ms_first: u64,
    delay_ms_max: u64,
    attempts_max: AttemptsMax,
}

impl Backoff {
    /// For validator uploads: 1 s doubling to 5 min, retried until acknowledged. Five minutes
    /// bounds how stale the back office's view gets once the network returns.
    pub const UPLOAD: Self = Self::new(1_000, 300_000, AttemptsMax::Unlimited);

    /// A policy. Panics on nonsense (a zero delay, a cap below the first delay, zero
    /// attempts): these are constants in the caller's code, not input.
    #[must_use]
    pub const fn new(delay_ms_first: u64, delay_ms_max: u64, attempts_max: AttemptsMax) -> Self {
        assert!(delay_ms_first >= 1);
        assert!(delay_ms_max >= delay_ms_first);
        if let AttemptsMax::Limited(attempts) = attempts_max {
            assert!(attempts >= 1);
        }
        Self { delay_ms_first, delay_ms_max, attempts_max }
    }

    /// The wait before the next attempt, after `failures` (at least 1) attempts have failed;
    /// `None` once the attempts are used up. `random` is any uniformly random u64 from the
    /// caller; the same inputs always give the same delay.
    #[must_use]
    pub fn delay_ms(&self, failures: u32, random: u64) -> Option<u64> {
        assert!(failures >= 1, "a delay is only asked for after a failure");
        if let AttemptsMax::Limited(attempts) = self.attempts_max
            && failures >= attempts
        {
            return None;
        }
        let ceiling_ms = self.ceiling_ms(failures);
        // Half rounded down is the jitter's range, so the delay lies in
        // [ceiling - floor(ceiling / 2), ceiling]: never below half the ceiling.
        let jitter_range_ms = ceiling_ms / 2;
        let jitter_ms = random % (jitter_range_ms + 1);
        let delay_ms = ceiling_ms - jitter_range_ms + jitter_ms;
        assert!(delay_ms <= ceiling_ms && delay_ms >= ceiling_ms.div_ceil(2));
        Some(delay_ms)
    }

    /// `min(delay_ms_first * 2^(failures - 1), delay_ms_max)`, without overflowing.
    fn ceiling_ms(&self, failures: u32) -> u64 {
        let doublings = failures - 1;
        let ceiling_ms = 1_u64
            .checked_shl(doublings)
            .and_then(|factor| self.delay_ms_first.checked_mul(factor))
            .map_or(self.delay_ms_max, |ceiling_ms| ceiling_ms.min(self.delay_ms_max));
        assert!(ceiling_ms >= self.delay_ms_first && ceiling_ms <= self.delay_ms_max);
        ceiling_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        let backoff = Backoff::new(100, 1_000, AttemptsMax::Unlimited);
        // A random value of 0 gives the lower bound; one equal to the jitter range (half the
        // ceiling) gives the ceiling itself.
        let ceilings: Vec<u64> = [50, 100, 200, 400, 500, 500]
            .iter()
            .zip(1..)
            .map(|(random, failures)| backoff.delay_ms(failures, *random).unwrap())
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1_000, 1_000]);
        let floors: Vec<u64> = (1..=6).map(|failures| backoff.delay_ms(failures, 0).unwrap()).collect();
        assert_eq!(floors, [50, 100, 200, 400, 500, 500]);
    }

    #[test]
    fn jitter_stays_within_the_upper_half() {
        let backoff = Backoff::new(7, 1_000, AttemptsMax::Unlimited);
        for failures in 1..=12 {
            let ceiling = (7_u64 << (failures - 1)).min(1_000);
            for random in [0, 1, 2, 3, 99, 12_345, u64::MAX / 3, u64::MAX] {
                let delay = backoff.delay_ms(failures, random).unwrap();
                assert!(delay <= ceiling, "{failures} {random}: {delay} > {ceiling}");
                assert!(delay * 2 >= ceiling, "{failures} {random}: {delay} < half of {ceiling}");
            }
        }
    }

    #[test]
    fn same_inputs_same_delay() {
        let backoff = Backoff::UPLOAD;
        assert_eq!(backoff.delay_ms(3, 987_654_321), backoff.delay_ms(3, 987_654_321));
    }

    #[test]
    fn huge_failure_counts_do_not_overflow() {
        let backoff = Backoff::new(u64::MAX / 2, u64::MAX, AttemptsMax::Unlimited);
        assert_eq!(backoff.delay_ms(u32::MAX, u64::MAX), Some(u64::MAX));
        assert_eq!(Backoff::UPLOAD.delay_ms(u32::MAX, 0), Some(150_000));
        assert_eq!(Backoff::UPLOAD.delay_ms(64, 150_000), Some(300_000));
    }

    #[test]
    fn gives_up_after_the_limit_unless_unlimited() {
        let backoff = Backoff::new(10, 100, AttemptsMax::Limited(3));
        assert!(backoff.delay_ms(1, 0).is_some());
        assert!(backoff.delay_ms(2, 0).is_some());
        assert_eq!(backoff.delay_ms(3, 0), None);
        assert_eq!(backoff.delay_ms(4, 0), None);
        assert!(Backoff::UPLOAD.delay_ms(1_000_000, 0).is_some());
    }

    #[test]
    #[should_panic(expected = "only asked for after a failure")]
    fn zero_failures_is_a_caller_bug() {
        let _ = Backoff::UPLOAD.delay_ms(0, 0);
    }
}
