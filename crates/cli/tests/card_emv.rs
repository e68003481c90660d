//! `smartticket card emv` against a simulated bank card in vsmartcard's virtual reader, read
//! through the real pcscd as an operator would on a USB reader. Needs pcscd with the vpcd
//! driver (`.ci/run` starts it); without it these tests fail loudly rather than pass quietly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use smartticket_card::emv::sim::EmvSimCard;
use smartticket_card::emv::{TerminalData, read_card};
use smartticket_card::transport::vpcd::{Ended, RunningBridge, VPCD_ADDR_DEFAULT};
use smartticket_card::transport::{PcscTransport, VpcdBridge};
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::token::Expiry;

/// vpcd serves one virtual card per port: the tests take turns.
static ONE_VIRTUAL_CARD: Mutex<()> = Mutex::new(());

/// What vpcd's reader is called (`FRIENDLYNAME` in /etc/reader.conf.d/vpcd).
const READER: &str = "Virtual PCD";

/// How long pcscd may take to notice the virtual card: it polls presence every 400 ms.
const CARD_WAIT: Duration = Duration::from_secs(10);

const KEYSTORE_PASSPHRASE: &str = "Tramvaj jede na Hlavní nádraží";
const SAM_PASSPHRASE: &str = "Autobus do Prostějova 42";

/// Visa's published test PAN, as the card holds it and as it must never be printed.
const VISA_PAN: &str = "4761 7390 0101 0119";
const VISA_PAN_DIGITS: &str = "4761739001010119";

fn smartticket(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smartticket"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SMARTTICKET_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command.arg("--data-dir").arg(data).env("SMARTTICKET_HSM__PASSPHRASE", KEYSTORE_PASSPHRASE);
    command
}

fn ok(command: &mut Command) -> Output {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A keystore in `data` and a secure-module profile exported from it: (profile, passphrase file).
fn sam_profile(data: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    ok(smartticket(data).args(["keys", "init"]));
    let passphrase_file = data.join("sam-passphrase");
    std::fs::write(&passphrase_file, format!("{SAM_PASSPHRASE}\n")).unwrap();
    std::fs::set_permissions(&passphrase_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let sam = data.join("validator.sam.json");
    ok(smartticket(data)
        .args(["keys", "export-sam", "--out"])
        .arg(&sam)
        .arg("--passphrase-file")
        .arg(&passphrase_file));
    (sam, passphrase_file)
}

fn visa() -> EmvSimCard {
    EmvSimCard::visa(VISA_PAN, Expiry::new(28, 2).unwrap(), "VISA CREDIT").unwrap().with_preferred_name("Test Bank")
}

/// The token the profile gives the card, computed in-process.
fn expected_token(sam: &Path, card: &EmvSimCard) -> String {
    let hsm = SoftHsm::open(sam, &SAM_PASSPHRASE.to_owned().into()).unwrap();
    let mut copy = card.clone();
    let read = read_card(&mut copy, &TerminalData::transit(203, 203, 261121, [1, 2, 3, 4])).unwrap();
    smartticket_acceptance::engine::bank_card_token(&hsm, &read).unwrap().to_string()
}

/// Fails the test with what to do when pcscd or its vpcd reader is missing.
fn require_pcscd_with_vpcd() {
    let readers = PcscTransport::list_readers().unwrap_or_else(|error| {
        panic!(
            "pcscd is not reachable: {error}. These tests need pcscd with vsmartcard-vpcd: \
             start `pcscd -f -a &` as root (see .ci/run)"
        )
    });
    assert!(
        readers.iter().any(|name| name.contains(READER)),
        "pcscd runs but has no {READER:?} reader (readers: {readers:?}); install vsmartcard-vpcd \
         (/etc/reader.conf.d/vpcd) and restart pcscd"
    );
}

fn insert(card: EmvSimCard) -> RunningBridge<EmvSimCard> {
    VpcdBridge::connect(VPCD_ADDR_DEFAULT, card)
        .unwrap_or_else(|error| panic!("cannot put the card into vpcd's reader: {error}"))
        .spawn()
        .unwrap()
}

/// Takes the card out and waits until pcscd has seen it leave, so the next test's card is
/// not taken for this one.
fn take_out(bridge: RunningBridge<EmvSimCard>) {
    let reader = PcscTransport::wait_for_card(READER, CARD_WAIT).unwrap();
    let transport = PcscTransport::connect(&reader).unwrap();
    let (_, ended) = bridge.stop();
    assert_eq!(ended.unwrap(), Ended::Stopped);
    transport.wait_until_gone(CARD_WAIT).unwrap();
}

fn card_emv(data: &Path, sam: &Path, passphrase_file: &Path) -> Command {
    let mut command = smartticket(data);
    command
        .args(["card", "emv", "--reader", READER, "--wait-seconds", "10", "--sam"])
        .arg(sam)
        .arg("--sam-passphrase-file")
        .arg(passphrase_file);
    command
}

#[test]
#[ignore = "needs pcscd with the vpcd reader"]
fn a_bank_card_is_read_to_its_masked_pan_expiry_and_token() {
    let _turn = ONE_VIRTUAL_CARD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    require_pcscd_with_vpcd();
    let dir = tempfile::tempdir().unwrap();
    let (sam, passphrase_file) = sam_profile(dir.path());
    let card = visa();
    let token = expected_token(&sam, &card);

    let bridge = insert(card.clone());
    // -vv: the logs must not carry the PAN either.
    let out = card_emv(dir.path(), &sam, &passphrase_file).arg("-vv").output().unwrap();
    take_out(bridge);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("4761 **** **** 0119"), "{stdout}");
    assert!(stdout.contains("02/28"), "{stdout}");
    assert!(stdout.contains("VISA CREDIT (Test Bank)") && stdout.contains("A0000000031010"), "{stdout}");
    assert!(stdout.contains(&token), "the token {token}: {stdout}");
    for output in [&stdout, &stderr] {
        assert!(!output.contains(VISA_PAN_DIGITS) && !output.contains(VISA_PAN), "the full PAN leaked: {output}");
    }

    let bridge = insert(card);
    let out = card_emv(dir.path(), &sam, &passphrase_file).arg("--json").output().unwrap();
    take_out(bridge);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["masked_pan"], "4761 **** **** 0119");
    assert_eq!(json["expiry"], "02/28");
    assert_eq!(json["aid"], "A0000000031010");
    assert_eq!((json["label"].as_str(), json["preferred_name"].as_str()), (Some("VISA CREDIT"), Some("Test Bank")));
    assert_eq!(json["token"], token.as_str());
    assert!(json["reader"].as_str().unwrap().contains(READER));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(VISA_PAN_DIGITS));
}

#[test]
#[ignore = "needs pcscd with the vpcd reader"]
fn an_unknown_reader_is_named_and_an_empty_one_times_out() {
    let _turn = ONE_VIRTUAL_CARD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    require_pcscd_with_vpcd();
    let dir = tempfile::tempdir().unwrap();
    let (sam, passphrase_file) = sam_profile(dir.path());

    let out = smartticket(dir.path())
        .args(["card", "emv", "--reader", "No Such Reader", "--sam"])
        .arg(&sam)
        .arg("--sam-passphrase-file")
        .arg(&passphrase_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "bad usage: {stderr}");
    assert!(stderr.contains("No Such Reader") && stderr.contains(READER), "names the readers there are: {stderr}");

    let started = std::time::Instant::now();
    let out = smartticket(dir.path())
        .args(["card", "emv", "--reader", READER, "--wait-seconds", "1", "--sam"])
        .arg(&sam)
        .arg("--sam-passphrase-file")
        .arg(&passphrase_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no card") && stderr.contains("1 s"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "the wait is bounded");
}
