//! Clearing's inner loop (DESIGN §7: ≥ 300,000 card transactions per second overall):
//! verify the issuer transaction MAC of each uploaded transaction with the card's own
//! key, derived from the transaction-MAC master (AN10922) and cached per card. Compared
//! with a raw AES-CMAC of the same TMI, to show what the protocol costs on top.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::collections::HashMap;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use smartticket_card::desfire::codes::Command;
use smartticket_card::desfire::tmac::{Tmi, transaction_mac, verify_transaction_mac};
use smartticket_card::fare::FARE_AID;
use smartticket_crypto::cmac::CmacKey;
use smartticket_crypto::diversify::DiversificationInput;
use smartticket_crypto::hsm::Hsm;
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::keys::KeyRole;

/// Cards in the simulated upload: a city's day has far more taps than cards.
const CARDS: usize = 10_000;
/// Transactions per batch measured.
const TRANSACTIONS: usize = 100_000;

struct Upload {
    uid: [u8; 7],
    tmc: u32,
    tmv: [u8; 8],
    tmi: Vec<u8>,
}

fn uploads(hsm: &SoftHsm) -> Vec<Upload> {
    let master = hsm.active(KeyRole::TransactionMac).unwrap();
    let keys: Vec<([u8; 7], CmacKey)> = (0..CARDS as u32)
        .map(|n| {
            let [a, b, c, d] = n.to_le_bytes();
            let uid = [0x04, a, b, c, d, 0x80, 0x01];
            let input = DiversificationInput::new(&uid, &FARE_AID, b"SmartTicket").unwrap();
            (uid, CmacKey::new(&hsm.derive_card_key(master, &input).unwrap()))
        })
        .collect();
    (0..TRANSACTIONS)
        .map(|i| {
            let (uid, key) = &keys[(i * 7919) % CARDS];
            let mut tmi = Tmi::new();
            tmi.value(Command::GetValue, 3, 5_000).unwrap();
            tmi.value(Command::Debit, 3, 2_400).unwrap();
            tmi.write_record(Command::WriteRecord, 4, 0, &[0x5A; 32]).unwrap();
            let tmc = (i / CARDS) as u32 + 2;
            let tmv = transaction_mac(key, tmc, uid, tmi.as_bytes());
            Upload { uid: *uid, tmc, tmv, tmi: tmi.as_bytes().to_vec() }
        })
        .collect()
}

fn verify(c: &mut Criterion) {
    let hsm = SoftHsm::generate(&KeyRole::ALL).unwrap();
    let master = hsm.active(KeyRole::TransactionMac).unwrap();
    let batch = uploads(&hsm);
    let mut group = c.benchmark_group("transaction MAC verification");
    group.throughput(Throughput::Elements(TRANSACTIONS as u64));
    group.sample_size(10);
    group.bench_function("derive per card (cached) + verify", |b| {
        b.iter_batched(
            HashMap::<[u8; 7], CmacKey>::new,
            |mut cache| {
                let mut valid = 0_usize;
                for upload in &batch {
                    let key = cache.entry(upload.uid).or_insert_with(|| {
                        let input = DiversificationInput::new(&upload.uid, &FARE_AID, b"SmartTicket").unwrap();
                        CmacKey::new(&hsm.derive_card_key(master, &input).unwrap())
                    });
                    valid +=
                        usize::from(verify_transaction_mac(key, upload.tmc, &upload.uid, &upload.tmi, &upload.tmv));
                }
                assert_eq!(valid, TRANSACTIONS);
            },
            BatchSize::LargeInput,
        );
    });
    let raw = CmacKey::new(&[7; 16]);
    group.bench_function("raw AES-CMAC of the same TMI (baseline)", |b| {
        b.iter(|| {
            let mut acc = 0_u8;
            for upload in &batch {
                acc ^= raw.mac(&upload.tmi)[0];
            }
            acc
        });
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
