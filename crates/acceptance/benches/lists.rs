//! DESIGN §7 targets for the lists, on a 10,000,000-medium greenlist (set
//! `LISTS_BENCH_ENTRIES` for another size):
//!
//! - lookup of a token: ≤ 20 µs p99 (criterion gives the mean; the p50/p99/p99.9 come from
//!   timing one million single lookups of random keys and are printed);
//! - full build (sort + deduplicate, encode, sign): ≤ 10 s;
//! - delta of 10,000 changes, built and signed on the server and verified and applied on
//!   the validator: ≤ 1 s;
//! - memory per million entries and bytes per entry of the file, computed from the
//!   structures and printed.
//!
//! Media have one coupon, or two (a current and a bought-ahead one) for one in five.
//! Sample counts are criterion's minimum (10) so the run takes a few minutes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod common;

use common::{SplitMix, resident_set_bytes};
use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use smartticket_acceptance::lists::{
    COUPON_BYTES, Coupon, CouponFlags, DenyReason, Denylist, ENTRY_BYTES, Greenlist, GreenlistDelta, KeySigner,
    ListHolder, MediumKey, TrustedKeys,
};
use smartticket_crypto::keys::KeyVersion;
use smartticket_crypto::sign::SigningKey;

/// Media in the greenlist.
const ENTRIES_DEFAULT: usize = 10_000_000;
/// Changes in the delta: a quarter removed, half with new coupons, a quarter new.
const DELTA_CHANGES: usize = 10_000;
/// Random keys timed one by one for the percentiles.
const LOOKUPS_TIMED: usize = 1_000_000;
/// Blocked media in the denylist checked before the greenlist in the decision path.
const DENYLIST_ENTRIES: usize = 1_000_000;
const ISSUED_AT_UNIX_S: u64 = 1_790_000_000;
const NOW_UNIX_S: u64 = 1_785_000_000;

impl SplitMix {
    fn coupon(&mut self, month: u64) -> Coupon {
        let random = self.next();
        let discounted = random.is_multiple_of(10);
        let start = 1_780_000_000 + month * 2_592_000;
        Coupon {
            valid_from_unix_s: start,
            valid_until_unix_s: start + 2_592_000,
            product_code: (random % 256) as u32,
            zones_bitmap: (random >> 8) as u32 | 1,
            photo_reference: if discounted { (random >> 40) as u32 | 1 } else { 0 },
            discount_code: if discounted { 2 } else { 0 },
            flags: if discounted { CouponFlags::PHOTO_REQUIRED } else { CouponFlags::NONE },
        }
    }
}

/// One medium of the server's input, in random order as a database might return it.
struct Medium {
    key: MediumKey,
    coupons: [Coupon; 2],
    count: usize,
}

impl Medium {
    fn entry(&self) -> (MediumKey, &[Coupon]) {
        (self.key, &self.coupons[..self.count])
    }
}

struct Fixture {
    input: Vec<Medium>,
    list: Greenlist,
    file: Vec<u8>,
    key: SigningKey,
    trusted: TrustedKeys,
    holder: ListHolder<Greenlist>,
    removals: Vec<MediumKey>,
    updates: Vec<(MediumKey, [Coupon; 1])>,
    delta_file: Vec<u8>,
    next: Greenlist,
    denylist: Denylist,
}

fn entries() -> usize {
    std::env::var("LISTS_BENCH_ENTRIES").ok().and_then(|n| n.parse().ok()).unwrap_or(ENTRIES_DEFAULT)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let entries = entries();
        let mut rng = SplitMix(0x5eed);
        let rss_before = resident_set_bytes();
        let input: Vec<Medium> = (0..entries)
            .map(|_| {
                let key = rng.token();
                let count = if rng.next().is_multiple_of(5) { 2 } else { 1 };
                Medium { key, coupons: [rng.coupon(0), rng.coupon(1)], count }
            })
            .collect();
        let started = Instant::now();
        let list = Greenlist::build(input.iter().map(Medium::entry)).unwrap();
        let built = started.elapsed();
        let key = SigningKey::from_bytes(&[0x42; 32]).unwrap();
        let signer = KeySigner::new(&key, KeyVersion::FIRST);
        let started = Instant::now();
        let file = list.encode_full(1, ISSUED_AT_UNIX_S, &signer).unwrap();
        let encoded = started.elapsed();
        let mut trusted = TrustedKeys::new();
        trusted.trust(KeyVersion::FIRST, key.verifying_key()).unwrap();
        let started = Instant::now();
        let mut holder = ListHolder::new();
        holder.offer(&file, &trusted).unwrap();
        let loaded = started.elapsed();
        println!(
            "lists: {} media, {} coupons; one run: build (sort, dedup) {built:.2?}, encode + sign {encoded:.2?}, \
             validator load (parse, verify, decode) {loaded:.2?}",
            list.len(),
            list.coupon_count()
        );
        report_sizes(&list, &file, rss_before);

        // The delta: removals and changed coupons among existing media, plus new media.
        let quarter = DELTA_CHANGES / 4;
        let removals: Vec<MediumKey> = input.iter().take(quarter).map(|medium| medium.key).collect();
        let mut updated: Vec<MediumKey> =
            input.iter().skip(quarter).take(2 * quarter).map(|medium| medium.key).collect();
        updated.extend((0..quarter).map(|_| rng.token()));
        let updates: Vec<(MediumKey, [Coupon; 1])> = updated.into_iter().map(|key| (key, [rng.coupon(2)])).collect();
        let delta = server_delta(&removals, &updates);
        let delta_file = delta.encode(1, 2, ISSUED_AT_UNIX_S, &signer).unwrap();
        let next = list.apply(&delta).unwrap();
        println!(
            "lists: delta of {} changes: {} bytes ({:.1} bytes per change)",
            delta.change_count(),
            delta_file.len(),
            delta_file.len() as f64 / delta.change_count() as f64
        );
        let denylist =
            Denylist::build((0..DENYLIST_ENTRIES.min(entries)).map(|_| (rng.token(), DenyReason::Lost))).unwrap();
        Fixture { input, list, file, key, trusted, holder, removals, updates, delta_file, next, denylist }
    })
}

fn server_delta(removals: &[MediumKey], updates: &[(MediumKey, [Coupon; 1])]) -> GreenlistDelta {
    let updates = Greenlist::build(updates.iter().map(|(key, coupons)| (*key, coupons))).unwrap();
    GreenlistDelta::new(removals.iter().copied(), updates).unwrap()
}

fn report_sizes(list: &Greenlist, file: &[u8], rss_before: Option<u64>) {
    let entries = list.len() as f64;
    let per_million = list.resident_bytes() as f64 / entries * 1e6 / (1 << 20) as f64;
    let coupons_per_medium = list.coupon_count() as f64 / entries;
    println!(
        "lists: greenlist resident {:.1} MiB = {per_million:.1} MiB per million media \
         (17 B key + 4 B offset + {coupons_per_medium:.2} x 32 B coupons = {:.1} B per medium)",
        list.resident_bytes() as f64 / (1 << 20) as f64,
        17.0 + 4.0 + coupons_per_medium * 32.0
    );
    println!(
        "lists: file {} bytes = {:.2} bytes per medium ({ENTRY_BYTES} B entry + {coupons_per_medium:.2} x \
         {COUPON_BYTES} B coupons; 128 B header and signature)",
        file.len(),
        file.len() as f64 / entries
    );
    let denylist_per_million = (17 + 1) as f64 * 1e6 / (1 << 20) as f64;
    println!("lists: denylist resident {denylist_per_million:.1} MiB per million media (17 B key + 1 B reason)");
    if let (Some(before), Some(after)) = (rss_before, resident_set_bytes()) {
        println!(
            "lists: process RSS grew {:.0} MiB while generating the input, building, encoding and loading \
             (input, list, file and the loaded copy)",
            after.saturating_sub(before) as f64 / (1 << 20) as f64
        );
    }
}

/// The process's resident set, from /proc (Linux only).
fn percentiles(label: &str, mut samples_ns: Vec<u64>) {
    samples_ns.sort_unstable();
    let at = |permille: usize| samples_ns[(samples_ns.len() * permille / 1000).min(samples_ns.len() - 1)];
    println!(
        "lists: {label}: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns over {} lookups \
         (wall clock per lookup, timer overhead included)",
        at(500),
        at(990),
        at(999),
        samples_ns.last().unwrap(),
        samples_ns.len()
    );
}

fn lookup(c: &mut Criterion) {
    let fixture = fixture();
    let list = fixture.holder.list().unwrap();
    let mut rng = SplitMix(7);
    let present: Vec<MediumKey> =
        (0..LOOKUPS_TIMED).map(|_| fixture.input[(rng.next() % fixture.input.len() as u64) as usize].key).collect();
    let absent: Vec<MediumKey> = (0..LOOKUPS_TIMED).map(|_| rng.token()).collect();

    let time_each = |keys: &[MediumKey], decide: &dyn Fn(&MediumKey) -> usize| -> Vec<u64> {
        keys.iter()
            .map(|key| {
                let started = Instant::now();
                black_box(decide(black_box(key)));
                started.elapsed().as_nanos() as u64
            })
            .collect()
    };
    percentiles("greenlist lookup, listed token", time_each(&present, &|key| list.lookup(key).len()));
    percentiles("greenlist lookup, unlisted token", time_each(&absent, &|key| list.lookup(key).len()));
    // The token decision's list work: denylist first, then the greenlist, then the coupons.
    let decide = |key: &MediumKey| -> usize {
        if fixture.denylist.contains(key) {
            return 0;
        }
        list.lookup(key).iter().filter(|coupon| coupon.is_valid_at(NOW_UNIX_S) && coupon.covers_zone(1)).count()
    };
    percentiles("denylist (1M) + greenlist + coupon check", time_each(&present, &decide));

    let mut group = c.benchmark_group("greenlist lookup");
    group.sample_size(50).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    let mut index = 0_usize;
    group.bench_function(format!("listed token, {} media", list.len()), |b| {
        b.iter(|| {
            index = (index + 1) % present.len();
            list.lookup(black_box(&present[index])).len()
        })
    });
    group.bench_function(format!("unlisted token, {} media", list.len()), |b| {
        b.iter(|| {
            index = (index + 1) % absent.len();
            list.lookup(black_box(&absent[index])).len()
        })
    });
    group.finish();
}

fn full_build(c: &mut Criterion) {
    let fixture = fixture();
    let signer = KeySigner::new(&fixture.key, KeyVersion::FIRST);
    let mut group = c.benchmark_group("greenlist full");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    group.bench_function(format!("build + encode + sign, {} media (server)", fixture.list.len()), |b| {
        b.iter_with_large_drop(|| {
            let list = Greenlist::build(fixture.input.iter().map(Medium::entry)).unwrap();
            list.encode_full(1, ISSUED_AT_UNIX_S, &signer).unwrap()
        })
    });
    group.bench_function(format!("parse + verify + decode, {} media (validator)", fixture.list.len()), |b| {
        b.iter_with_large_drop(|| {
            let mut holder = ListHolder::<Greenlist>::new();
            holder.offer(&fixture.file, &fixture.trusted).unwrap();
            holder
        })
    });
    group.finish();
}

fn delta(c: &mut Criterion) {
    let fixture = fixture();
    let signer = KeySigner::new(&fixture.key, KeyVersion::FIRST);
    let mut group = c.benchmark_group("greenlist delta");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    let media = fixture.list.len();
    group.bench_function(format!("{DELTA_CHANGES} changes: build + encode + sign (server)"), |b| {
        b.iter(|| server_delta(&fixture.removals, &fixture.updates).encode(1, 2, ISSUED_AT_UNIX_S, &signer).unwrap())
    });
    group.bench_function(
        format!("{DELTA_CHANGES} changes: diff of two {media}-media lists + encode + sign (server)"),
        |b| {
            b.iter(|| {
                GreenlistDelta::between(&fixture.list, &fixture.next).encode(1, 2, ISSUED_AT_UNIX_S, &signer).unwrap()
            })
        },
    );
    group.bench_function(
        format!("{DELTA_CHANGES} changes: verify + decode + apply to {media} media (validator)"),
        |b| {
            b.iter_batched(
                || fixture.holder.clone(),
                |mut holder| {
                    assert_eq!(holder.offer(&fixture.delta_file, &fixture.trusted).unwrap().list_version, 2);
                    holder
                },
                BatchSize::PerIteration,
            )
        },
    );
    group.finish();
}

criterion_group!(benches, lookup, full_build, delta);
criterion_main!(benches);
