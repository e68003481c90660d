//! DESIGN §7 target for the validator engine: a token tap decided against a 10,000,000-medium
//! greenlist (set `ENGINE_BENCH_ENTRIES` for another size) in ≤ 20 µs p99 of CPU.
//!
//! The whole decision path is timed, as `Validator::tap_token` runs it at a gate: denylist,
//! list age, passback, greenlist lookup, coupon choice, the decision encoded and appended to
//! the journal. The journal lives on tmpfs (`/dev/shm`, or `ENGINE_BENCH_JOURNAL_DIR`) so
//! the figure is CPU, not the disk's fsync, which is printed separately from a short run on
//! the target directory's disk. p50/p99/p99.9 come from timing taps one by one; criterion's
//! mean is beside them. Resident memory per million entries is read from the process
//! (`VmRSS`) before and after the list is installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::print_stdout, missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;

use common::{SplitMix, resident_set_bytes};
use criterion::{Criterion, criterion_group, criterion_main};
use smartticket_acceptance::engine::{FareTable, MediumType, Validator, ValidatorConfig};
use smartticket_acceptance::journal::{DeviceId, Journal, JournalLimits};
use smartticket_acceptance::lists::{
    Coupon, CouponFlags, DenyReason, Denylist, Greenlist, KeySigner, MediumKey, TrustedKeys,
};
use smartticket_core::Timestamp;
use smartticket_crypto::keys::KeyVersion;
use smartticket_crypto::sign::SigningKey;

const ENTRIES_DEFAULT: usize = 10_000_000;
/// Taps timed one by one for the percentiles.
const TAPS_TIMED: usize = 200_000;
/// Taps with the journal on disk (each fsynced): enough for a median.
const TAPS_ON_DISK: usize = 200;
const DENYLIST_ENTRIES: usize = 100_000;
const NOW_UNIX_S: u64 = 1_781_000_000;
const VALID_FROM_UNIX_S: u64 = 1_780_000_000;
const MONTH_S: u64 = 2_592_000;

fn coupon(random: u64, month: u64) -> Coupon {
    let discounted = random.is_multiple_of(10);
    let start = VALID_FROM_UNIX_S + month * MONTH_S;
    Coupon {
        valid_from_unix_s: start,
        valid_until_unix_s: start + MONTH_S,
        product_code: (random % 256) as u32,
        zones_bitmap: (random >> 8) as u32 | 1,
        photo_reference: if discounted { (random >> 40) as u32 | 1 } else { 0 },
        discount_code: if discounted { 2 } else { 0 },
        flags: if discounted { CouponFlags::PHOTO_REQUIRED } else { CouponFlags::NONE },
    }
}

fn config() -> ValidatorConfig {
    ValidatorConfig {
        device: 1,
        carrier: "BENCH".into(),
        location: 1,
        zone: 1,
        route_zones: Vec::new(),
        passback_seconds: 60,
        list_age_max_seconds: 48 * 3_600,
        emv_purchases: false,
        fares: FareTable {
            tariff_version: "bench".into(),
            currency: "CZK".into(),
            single_fares: BTreeMap::from([(0, vec![2_000, 2_600])]),
        },
        list_keys: Vec::new(),
    }
}

fn journal_dir() -> tempfile::TempDir {
    let base = std::env::var_os("ENGINE_BENCH_JOURNAL_DIR")
        .map(PathBuf::from)
        .or_else(|| std::path::Path::new("/dev/shm").is_dir().then(|| PathBuf::from("/dev/shm")));
    match base {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn validator(dir: &std::path::Path, trusted: TrustedKeys, greenlist: &[u8], denylist: &[u8]) -> Validator {
    let (journal, _) = Journal::open(dir, DeviceId([9; 16]), JournalLimits::VALIDATOR).unwrap();
    let mut validator = Validator::new(config(), trusted, journal).unwrap();
    validator.offer_list(greenlist).unwrap();
    validator.offer_list(denylist).unwrap();
    validator
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99), at(0.999))
}

fn bench(c: &mut Criterion) {
    let entries = std::env::var("ENGINE_BENCH_ENTRIES").ok().and_then(|n| n.parse().ok()).unwrap_or(ENTRIES_DEFAULT);
    let mut rng = SplitMix(0x7a9);
    let keys: Vec<MediumKey> = (0..entries).map(|_| rng.token()).collect();
    let greenlist = Greenlist::build(keys.iter().map(|key| {
        let random = rng.next();
        let coupons =
            if random.is_multiple_of(5) { vec![coupon(random, 0), coupon(random, 1)] } else { vec![coupon(random, 0)] };
        (*key, coupons)
    }))
    .unwrap();
    let denylist = Denylist::build((0..DENYLIST_ENTRIES).map(|_| (rng.token(), DenyReason::Lost))).unwrap();
    let signing = SigningKey::from_bytes(&[0x42; 32]).unwrap();
    let signer = KeySigner::new(&signing, KeyVersion::FIRST);
    let issued = NOW_UNIX_S - 60;
    let greenlist_file = greenlist.encode_full(1, issued, &signer).unwrap();
    let denylist_file = denylist.encode_full(1, issued, &signer).unwrap();
    drop((greenlist, denylist));
    let mut trusted = TrustedKeys::new();
    trusted.trust(KeyVersion::FIRST, signing.verifying_key()).unwrap();

    let dir = journal_dir();
    let rss_before = resident_set_bytes().unwrap_or(0);
    let mut engine = validator(dir.path(), trusted.clone(), &greenlist_file, &denylist_file);
    let rss_after = resident_set_bytes().unwrap_or(0);
    println!(
        "engine: {entries} media installed; resident memory +{:.1} MiB, {:.1} MiB per million entries",
        (rss_after.saturating_sub(rss_before)) as f64 / 1_048_576.0,
        (rss_after.saturating_sub(rss_before)) as f64 / 1_048_576.0 / (entries as f64 / 1e6)
    );

    let at = |tap: usize| Timestamp::from_unix_micros((NOW_UNIX_S as i64 + tap as i64) * 1_000_000).unwrap();
    let mut pick = SplitMix(0xbeef);
    let mut samples = Vec::with_capacity(TAPS_TIMED);
    let mut accepted = 0;
    for tap in 0..TAPS_TIMED {
        let key = keys[(pick.next() % keys.len() as u64) as usize];
        let started = Instant::now();
        let decision = engine.tap_token(&key, MediumType::BankCard, None, at(tap)).unwrap();
        samples.push(started.elapsed());
        accepted += usize::from(decision.outcome.is_accepted());
    }
    let (p50, p99, p999) = percentiles(samples);
    println!(
        "engine: token tap, journal on tmpfs: p50 {p50:.2?}, p99 {p99:.2?}, p99.9 {p999:.2?} over {TAPS_TIMED} taps ({accepted} accepted)"
    );

    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut on_disk = validator(disk.path(), trusted, &greenlist_file, &denylist_file);
    let mut samples = Vec::with_capacity(TAPS_ON_DISK);
    for tap in 0..TAPS_ON_DISK {
        let key = keys[(pick.next() % keys.len() as u64) as usize];
        let started = Instant::now();
        on_disk.tap_token(&key, MediumType::BankCard, None, at(tap)).unwrap();
        samples.push(started.elapsed());
    }
    let (p50, p99, _) = percentiles(samples);
    println!("engine: token tap, journal fsynced on disk: p50 {p50:.2?}, p99 {p99:.2?} over {TAPS_ON_DISK} taps");

    let mut tap = TAPS_TIMED;
    c.bench_function("engine/token_tap_10M", |b| {
        b.iter(|| {
            tap += 1;
            let key = keys[(pick.next() % keys.len() as u64) as usize];
            black_box(engine.tap_token(&key, MediumType::BankCard, None, at(tap)).unwrap())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
