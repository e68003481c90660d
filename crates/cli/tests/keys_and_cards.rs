//! `smartticket keys …` and `smartticket card …` as an operator runs them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::print_stdout)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use smartticket_crypto::hsm::Hsm;
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::keys::KeyRole;

const PASSPHRASE: &str = "Tramvaj jede na Hlavní nádraží";

fn smartticket(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smartticket"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SMARTTICKET_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command.arg("--data-dir").arg(data).env("SMARTTICKET_HSM__PASSPHRASE", PASSPHRASE);
    command
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

fn ok(command: &mut Command) -> String {
    let out = run(command);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn inventory(data: &Path) -> Value {
    serde_json::from_str(&ok(smartticket(data).args(["keys", "list", "--json"]))).unwrap()
}

#[test]
fn keys_are_created_once_rotated_and_retired_with_care() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(smartticket(data).args(["keys", "init"]));
    let again = run(smartticket(data).args(["keys", "init"]));
    assert_eq!(again.status.code(), Some(2), "an existing keystore is never overwritten");
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
    let keys = inventory(data);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 7);
    assert!(!keys.to_string().contains("material"), "no key material is ever printed");

    ok(smartticket(data).args(["keys", "rotate", "--role", "debit"]));
    let keys = inventory(data)["keys"].clone();
    let debit: Vec<&Value> = keys.as_array().unwrap().iter().filter(|k| k["key"]["role"] == "debit").collect();
    assert_eq!(debit.len(), 2);
    assert_eq!(debit[0]["state"], "verify_only");
    assert_eq!(debit[1]["state"], "active");
    assert_ne!(debit[0]["kcv"], debit[1]["kcv"]);

    let refused = run(smartticket(data).args(["keys", "retire", "--role", "debit", "--version", "2"]));
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("rotate before retiring"));
    ok(smartticket(data).args(["keys", "retire", "--role", "debit", "--version", "1"]));
    assert_eq!(inventory(data)["keys"].as_array().unwrap().len(), 7);

    let unknown = run(smartticket(data).args(["keys", "rotate", "--role", "emperor"]));
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn wrong_weak_or_exposed_passphrases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let weak = run(smartticket(data).env("SMARTTICKET_HSM__PASSPHRASE", "password1").args(["keys", "init"]));
    assert_eq!(weak.status.code(), Some(2));
    assert!(!data.join("keys/keystore.json").exists());
    ok(smartticket(data).args(["keys", "init"]));
    let wrong =
        run(smartticket(data).env("SMARTTICKET_HSM__PASSPHRASE", "Autobus do Prostějova 42").args(["keys", "list"]));
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let keystore = data.join("keys/keystore.json");
    std::fs::set_permissions(&keystore, std::fs::Permissions::from_mode(0o644)).unwrap();
    let exposed = run(smartticket(data).args(["keys", "list"]));
    assert!(
        String::from_utf8_lossy(&exposed.stderr).contains("chmod 600"),
        "{}",
        String::from_utf8_lossy(&exposed.stderr)
    );
}

#[test]
fn export_sam_writes_only_debit_read_and_tokenisation_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(smartticket(data).args(["keys", "init"]));
    ok(smartticket(data).args(["keys", "rotate", "--role", "credit"]));
    let passphrase_file = data.join("sam-passphrase");
    std::fs::write(&passphrase_file, "Autobus do Prostějova 42\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&passphrase_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let sam = data.join("validator-7001.sam.json");
    ok(smartticket(data)
        .args(["keys", "export-sam", "--out"])
        .arg(&sam)
        .arg("--passphrase-file")
        .arg(&passphrase_file));
    let profile = SoftHsm::open(&sam, &"Autobus do Prostějova 42".to_owned().into()).unwrap();
    let roles: std::collections::BTreeSet<KeyRole> = profile.inventory().unwrap().iter().map(|k| k.key.role).collect();
    assert_eq!(roles, [KeyRole::Debit, KeyRole::Read, KeyRole::Tokenisation].into_iter().collect());
    assert!(!roles.contains(&KeyRole::Credit) && !roles.contains(&KeyRole::TransactionMac));
    let text = std::fs::read_to_string(&sam).unwrap();
    assert!(!text.contains("credit") && !text.contains("transaction_mac"), "the sealed file does not even name them");
}

#[test]
fn shamir_shares_restore_the_same_keys_from_any_three() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(smartticket(data).args(["keys", "init"]));
    let shares = data.join("shares");
    ok(smartticket(data).args(["keys", "split", "--threshold", "3", "--shares", "5", "--out"]).arg(&shares));
    let share = |n: u8| shares.join(format!("share-{n}-of-5.json"));
    let restored = data.join("restored.json");
    ok(smartticket(data).args(["keys", "restore", "--out"]).arg(&restored).arg(share(2)).arg(share(4)).arg(share(5)));
    let original = SoftHsm::open(&data.join("keys/keystore.json"), &PASSPHRASE.to_owned().into()).unwrap();
    let rebuilt = SoftHsm::open(&restored, &PASSPHRASE.to_owned().into()).unwrap();
    assert_eq!(original.inventory().unwrap(), rebuilt.inventory().unwrap());
    let too_few =
        run(smartticket(data).args(["keys", "restore", "--out"]).arg(data.join("r2.json")).arg(share(1)).arg(share(3)));
    assert_eq!(too_few.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&too_few.stderr).contains("needs 3 different shares, 2 given"));
    assert!(!data.join("r2.json").exists());
}

#[test]
fn a_card_is_made_personalised_loaded_debited_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    ok(smartticket(data).args(["keys", "init"]));
    let card = data.join("card.json");
    ok(smartticket(data).args(["card", "new", "--uid", "04A1B2C3D4E5F6", "--out"]).arg(&card));
    let blank: Value =
        serde_json::from_str(&ok(smartticket(data).args(["card", "show", "--json"]).arg(&card))).unwrap();
    assert_eq!(blank["personalised"], false);
    ok(smartticket(data).args(["card", "personalise"]).arg(&card).args(["--card-number", "1234"]));
    ok(smartticket(data).args(["card", "load"]).arg(&card).args([
        "--purse-minor",
        "5000",
        "--trips",
        "10",
        "--zones",
        "1,2",
    ]));
    ok(smartticket(data).args(["card", "debit"]).arg(&card).args(["--minor", "1200"]));
    let state: Value =
        serde_json::from_str(&ok(smartticket(data).args(["card", "show", "--json"]).arg(&card))).unwrap();
    assert_eq!(state["purse"], 3800);
    assert_eq!(state["tmc"], 3);
    assert_eq!(state["trips"][0], 10);
    assert_eq!(state["environment"]["card_number"], 1234);
    let overdraw = run(smartticket(data).args(["card", "debit"]).arg(&card).args(["--minor", "999999"]));
    assert_eq!(overdraw.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&overdraw.stderr).contains("insufficient balance"));
    let bad_uid = run(smartticket(data).args(["card", "new", "--uid", "zz", "--out"]).arg(data.join("x.json")));
    assert_eq!(bad_uid.status.code(), Some(2));
}
