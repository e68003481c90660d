//! Calendar arithmetic for validity: the last day of a period (KIDSOK 3.1.5: the buyer
//! enters the start date and the end date is computed), and the UTC instant at which a
//! local calendar day starts in the network's timezone. Pure functions; no clock.
//!
//! Rules, with `s` the start date and `n` the period's count:
//! - `{ days = n }` ends on `s + n − 1`;
//! - `{ weeks = n }` ends on `s + 7n − 1`;
//! - `{ months = n }` ends on the day before the same day `n` months later, the day
//!   clamped to that month's length (31 Jan + 1 month → 28 Feb, so the coupon ends 27 Feb;
//!   in a leap year 29 Feb, ending 28 Feb).
//!
//! A coupon is valid from local 00:00 of its start date up to (excluding) local 00:00 of
//! the day after its end date, so a day across a DST change lasts 23 or 25 hours.

use chrono::{DateTime, Days, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use smartticket_core::Timestamp;

use crate::document::Period;

/// The last day (inclusive) of a period starting on `start`; `None` when `n` is zero or
/// the end falls outside chrono's calendar.
pub fn end_date(start: NaiveDate, period: Period) -> Option<NaiveDate> {
    match period {
        Period::Days(n) => start.checked_add_days(Days::new(u64::from(n).checked_sub(1)?)),
        Period::Weeks(n) => start.checked_add_days(Days::new(u64::from(n).checked_mul(7)?.checked_sub(1)?)),
        Period::Months(n) => {
            if n == 0 {
                return None;
            }
            // chrono clamps the day to the target month's length, which is the rule.
            start.checked_add_months(Months::new(u32::from(n)))?.pred_opt()
        }
    }
}

/// Seconds searched on either side of a nonexistent local midnight. UTC offsets lie
/// within −12 h … +14 h, so 15 h of naive time either way brackets the transition.
const GAP_SEARCH_SECS: i64 = 15 * 3600;
/// Steps of the bisection over that window: 2^17 s > 30 h, so it lands on the second.
const GAP_SEARCH_STEPS_MAX: u32 = 20;

/// The instant local `date` begins in `tz`: local 00:00 converted to UTC.
///
/// Where midnight is ambiguous (clocks go back across it) the earliest instant is taken,
/// so the day never starts later than it does on the wall clock. Where midnight does not
/// exist (clocks jump forward across it, as in Havana or Beirut) the day begins at the
/// jump: the earliest instant whose local time is at or after 00:00, found by bisection.
/// `None` only outside chrono's calendar.
pub fn day_start(tz: Tz, date: NaiveDate) -> Option<Timestamp> {
    let midnight = date.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(at) => Some(utc(at)),
        LocalResult::Ambiguous(earliest, _latest) => Some(utc(earliest)),
        LocalResult::None => first_instant_at_or_after(tz, midnight),
    }
}

/// The earliest UTC instant whose local reading in `tz` is `>= local`, searched within
/// [`GAP_SEARCH_SECS`] of `local` read as UTC. Inside a forward gap the local reading is
/// monotonic in that window (one transition), so bisection finds the transition itself.
fn first_instant_at_or_after(tz: Tz, local: NaiveDateTime) -> Option<Timestamp> {
    let reads_at_or_after = |at: DateTime<Utc>| at.with_timezone(&tz).naive_local() >= local;
    let mut low = local.and_utc().checked_sub_signed(TimeDelta::seconds(GAP_SEARCH_SECS))?;
    let mut high = local.and_utc().checked_add_signed(TimeDelta::seconds(GAP_SEARCH_SECS))?;
    if reads_at_or_after(low) || !reads_at_or_after(high) {
        return None;
    }
    for _ in 0..GAP_SEARCH_STEPS_MAX {
        let span = high.signed_duration_since(low).num_seconds();
        if span <= 1 {
            break;
        }
        let middle = low.checked_add_signed(TimeDelta::seconds(span / 2))?;
        if reads_at_or_after(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    Some(Timestamp::from_datetime(high))
}

fn utc(at: DateTime<Tz>) -> Timestamp {
    Timestamp::from_datetime(at.with_timezone(&Utc))
}

/// The local calendar date of `at` in `tz`.
pub fn local_date(tz: Tz, at: Timestamp) -> NaiveDate {
    at.datetime().with_timezone(&tz).date_naive()
}

/// Validity of a coupon running from `start` through `end` (both local dates, inclusive):
/// `[day_start(start), day_start(end + 1))`. `None` outside chrono's calendar, or when
/// the window is empty (a one-day coupon on a day the timezone skipped, as Samoa skipped
/// 30 December 2011).
pub fn coupon_window(tz: Tz, start: NaiveDate, end: NaiveDate) -> Option<(Timestamp, Timestamp)> {
    let from = day_start(tz, start)?;
    let until = day_start(tz, end.succ_opt()?)?;
    (until > from).then_some((from, until))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn days_and_weeks_count_the_start_day() {
        assert_eq!(end_date(date("2026-11-21"), Period::Days(1)), Some(date("2026-11-21")));
        assert_eq!(end_date(date("2026-11-21"), Period::Days(30)), Some(date("2026-12-20")));
        assert_eq!(end_date(date("2026-11-21"), Period::Weeks(1)), Some(date("2026-11-27")));
        assert_eq!(end_date(date("2026-12-28"), Period::Weeks(2)), Some(date("2027-01-10")));
        assert_eq!(end_date(date("2026-11-21"), Period::Days(0)), None);
        assert_eq!(end_date(date("2026-11-21"), Period::Weeks(0)), None);
        assert_eq!(end_date(date("2026-11-21"), Period::Months(0)), None);
    }

    #[test]
    fn months_end_the_day_before_the_same_day_clamped() {
        assert_eq!(end_date(date("2026-01-15"), Period::Months(1)), Some(date("2026-02-14")));
        assert_eq!(end_date(date("2026-01-31"), Period::Months(1)), Some(date("2026-02-27")));
        assert_eq!(end_date(date("2028-01-31"), Period::Months(1)), Some(date("2028-02-28")), "leap year");
        assert_eq!(end_date(date("2026-03-31"), Period::Months(1)), Some(date("2026-04-29")));
        assert_eq!(end_date(date("2026-11-30"), Period::Months(3)), Some(date("2027-02-27")));
        assert_eq!(end_date(date("2026-12-01"), Period::Months(1)), Some(date("2026-12-31")));
        assert_eq!(end_date(date("2026-01-01"), Period::Months(12)), Some(date("2026-12-31")));
    }

    #[test]
    fn every_start_day_of_five_years_ends_the_day_before_next_months_same_date() {
        let mut start = date("2024-01-01");
        while start <= date("2028-12-31") {
            for n in 1..=12_u16 {
                let end = end_date(start, Period::Months(n)).unwrap();
                let same_day_later = start.checked_add_months(Months::new(u32::from(n))).unwrap();
                assert_eq!(end.succ_opt().unwrap(), same_day_later, "{start} + {n} months");
                assert!(end >= start);
            }
            // The literal rule for one month, computed independently of chrono's clamping.
            use chrono::Datelike;
            let (year, month) =
                if start.month() == 12 { (start.year() + 1, 1) } else { (start.year(), start.month() + 1) };
            let next_month_length =
                (28..=31).rev().find(|d| NaiveDate::from_ymd_opt(year, month, *d).is_some()).unwrap();
            let expected =
                NaiveDate::from_ymd_opt(year, month, start.day().min(next_month_length)).unwrap().pred_opt().unwrap();
            assert_eq!(end_date(start, Period::Months(1)), Some(expected), "{start}");
            start = start.succ_opt().unwrap();
        }
    }

    #[test]
    fn prague_days_follow_the_wall_clock_across_dst() {
        let prague: Tz = "Europe/Prague".parse().unwrap();
        assert_eq!(day_start(prague, date("2026-01-10")), Some(at("2026-01-09T23:00:00Z")));
        assert_eq!(day_start(prague, date("2026-07-10")), Some(at("2026-07-09T22:00:00Z")));
        // 29 March 2026: clocks go forward at 02:00, the day has 23 hours.
        let (from, until) = coupon_window(prague, date("2026-03-29"), date("2026-03-29")).unwrap();
        assert_eq!(until.unix_micros() - from.unix_micros(), 23 * 3600 * 1_000_000);
        // 25 October 2026: clocks go back at 03:00, the day has 25 hours.
        let (from, until) = coupon_window(prague, date("2026-10-25"), date("2026-10-25")).unwrap();
        assert_eq!(until.unix_micros() - from.unix_micros(), 25 * 3600 * 1_000_000);
    }

    #[test]
    fn a_nonexistent_midnight_starts_the_day_at_the_jump() {
        // Havana: on 10 March 2024 clocks jumped from 00:00 (UTC−5) to 01:00 (UTC−4).
        let havana: Tz = "America/Havana".parse().unwrap();
        assert!(matches!(havana.from_local_datetime(&date("2024-03-10").and_time(NaiveTime::MIN)), LocalResult::None));
        assert_eq!(day_start(havana, date("2024-03-10")), Some(at("2024-03-10T05:00:00Z")));
        assert_eq!(local_date(havana, at("2024-03-10T05:00:00Z")), date("2024-03-10"));
        assert_eq!(local_date(havana, at("2024-03-10T04:59:59Z")), date("2024-03-09"));
    }

    #[test]
    fn an_ambiguous_midnight_takes_the_first_occurrence() {
        // Havana: on 3 November 2024 clocks went back from 01:00 (UTC−4) to 00:00 (UTC−5).
        let havana: Tz = "America/Havana".parse().unwrap();
        assert!(matches!(
            havana.from_local_datetime(&date("2024-11-03").and_time(NaiveTime::MIN)),
            LocalResult::Ambiguous(..)
        ));
        assert_eq!(day_start(havana, date("2024-11-03")), Some(at("2024-11-03T04:00:00Z")));
    }

    #[test]
    fn a_skipped_day_starts_when_the_next_one_does() {
        // Samoa skipped 30 December 2011 entirely (UTC−10 → UTC+14 at local midnight).
        let apia: Tz = "Pacific/Apia".parse().unwrap();
        let skipped = day_start(apia, date("2011-12-30")).unwrap();
        assert_eq!(skipped, day_start(apia, date("2011-12-31")).unwrap());
        assert_eq!(skipped, at("2011-12-30T10:00:00Z"));
        assert_eq!(coupon_window(apia, date("2011-12-30"), date("2011-12-30")), None, "an empty window is refused");
        assert!(coupon_window(apia, date("2011-12-30"), date("2011-12-31")).is_some());
    }

    proptest! {
        #[test]
        fn the_end_is_never_before_the_start(
            day in 0_u32..(200 * 366),
            n in 1_u16..=400,
            unit in 0_u8..3,
        ) {
            let start = date("1990-01-01").checked_add_days(Days::new(u64::from(day))).unwrap();
            let period = match unit { 0 => Period::Days(n), 1 => Period::Weeks(n), _ => Period::Months(n) };
            let end = end_date(start, period).unwrap();
            prop_assert!(end >= start, "{start} {period:?} → {end}");
        }

        #[test]
        fn day_windows_are_positive_in_any_zone(day in 0_u32..(60 * 366), zone in 0_usize..chrono_tz::TZ_VARIANTS.len()) {
            let tz = chrono_tz::TZ_VARIANTS[zone];
            let start = date("1995-01-01").checked_add_days(Days::new(u64::from(day))).unwrap();
            let from = day_start(tz, start).unwrap();
            let until = day_start(tz, start.succ_opt().unwrap()).unwrap();
            prop_assert!(until >= from, "{tz} {start}: {from} .. {until}");
            prop_assert!(local_date(tz, from) >= start, "{tz} {start}: starts on {}", local_date(tz, from));
            if let Some((from, until)) = coupon_window(tz, start, start) {
                prop_assert!(until > from);
            }
        }
    }
}
