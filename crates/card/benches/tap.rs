//! Host CPU of one full simulated tap (DESIGN §7 target: ≤ 1 ms): identify the card,
//! authenticate with the read key, read the purse and the counter, re-authenticate with
//! the debit key, debit, append a log record, commit. The simulated card runs in the same
//! thread, so the figure is host and card together: an upper bound on the host's share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use smartticket_card::desfire::host::Desfire;
use smartticket_card::fare::KeySource;
use smartticket_card::fare::ops::{self, Load, Terminal};
use smartticket_card::fare::records::Environment;
use smartticket_card::sim::SimCard;
use smartticket_core::Timestamp;
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::keys::KeyRole;

fn tap(c: &mut Criterion) {
    let hsm = SoftHsm::generate(&KeyRole::ALL).unwrap();
    let keys = KeySource { hsm: &hsm, system_id: b"SmartTicket" };
    let environment =
        Environment { card_number: 1, profile: 1, discount_category: 0, expires: Timestamp::EPOCH, issuer: 1 };
    let mut card = Desfire::new(SimCard::blank([4, 1, 2, 3, 4, 5, 6]));
    ops::personalise(&mut card, &keys, &keys, &environment).unwrap();
    let terminal = Terminal { device: 1, location: 1, at: Timestamp::EPOCH };
    ops::load(&mut card, &keys, &Load { contracts: vec![], purse_credit: 1_000_000 }, terminal).unwrap();
    c.bench_function("full simulated tap: read, debit, log, commit", |b| {
        b.iter(|| {
            // Each tap debits one minor unit; top up before the purse runs dry.
            let debited = ops::debit_purse(&mut card, &keys, 1, terminal).unwrap();
            if debited.balance < 10 {
                ops::load(&mut card, &keys, &Load { contracts: vec![], purse_credit: 999_990 }, terminal).unwrap();
            }
        });
    });
}

criterion_group!(benches, tap);
criterion_main!(benches);
