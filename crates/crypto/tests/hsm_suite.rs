//! One behavioural suite for every `Hsm` backend (DESIGN §3.1): each check below takes a
//! `&mut dyn KeyAdmin` holding version 1 of every role, and runs once against the software
//! keystore (`soft_*`) and once against a PKCS#11 token (`pkcs11_*`, ignored unless asked
//! for, since they need SoftHSM2). The software keystore's own file, restriction and backup
//! guarantees follow the suite.
//!
//! The PKCS#11 tests read the token from SMARTTICKET_TEST_PKCS11_MODULE, _TOKEN and _PIN.
//! Each test works in its own random namespace and destroys every object of it at the end,
//! so tests run in parallel on one token without seeing each other's keys. To run them:
//!
//! ```text
//! printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$DIR" > "$DIR.conf"
//! SOFTHSM2_CONF="$DIR.conf" softhsm2-util --init-token --free --label smartticket-test --so-pin 0000 --pin 1234
//! SOFTHSM2_CONF="$DIR.conf" SMARTTICKET_TEST_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so \
//!   SMARTTICKET_TEST_PKCS11_TOKEN=smartticket-test SMARTTICKET_TEST_PKCS11_PIN=1234 \
//!   cargo test -p smartticket-crypto --test hsm_suite -- --include-ignored
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// The clean-up in `TestToken::drop` reports what it could not destroy instead of panicking.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use secrecy::SecretString;
use sha2::Digest;
use smartticket_crypto::cmac::aes_cmac;
use smartticket_crypto::diversify::{DiversificationInput, an10922_aes128};
use smartticket_crypto::hsm::backup::{self, ShareFile};
use smartticket_crypto::hsm::pkcs11::{Pkcs11Config, Pkcs11Hsm};
use smartticket_crypto::hsm::soft::{SealCost, SoftHsm};
use smartticket_crypto::hsm::{Hsm, HsmError, KeyAdmin};
use smartticket_crypto::keys::{Kcv, KeyInfo, KeyKind, KeyRef, KeyRole, KeyState, KeyVersion};
use smartticket_crypto::token::hmac_sha256;

// ---------------------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------------------

const MODULE_VARIABLE: &str = "SMARTTICKET_TEST_PKCS11_MODULE";
const TOKEN_VARIABLE: &str = "SMARTTICKET_TEST_PKCS11_TOKEN";
const PIN_VARIABLE: &str = "SMARTTICKET_TEST_PKCS11_PIN";

/// The cheapest seal `SoftHsm::open` accepts (its floor is 8 MiB, one pass), to keep the
/// keystore tests fast.
const TEST_SEAL_COST: SealCost = SealCost { memory_kib: 8192, passes: 1, lanes: 1 };
const SYSTEM_ID: &[u8] = b"SMARTTICKET-01";

fn v(version: u8) -> KeyVersion {
    KeyVersion::new(version).unwrap()
}

fn key(role: KeyRole, version: u8) -> KeyRef {
    KeyRef { role, version: v(version) }
}

fn card(uid_last_byte: u8) -> DiversificationInput {
    DiversificationInput::new(&[0x04, 0x52, 0x7A, 0x1B, 0x33, 0x80, uid_last_byte], &[0xF5, 0x43, 0x01], SYSTEM_ID)
        .unwrap()
}

fn passphrase(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

/// The software backend as a deployment starts it: version 1 of every role.
fn soft_hsm() -> SoftHsm {
    SoftHsm::generate(&KeyRole::ALL).unwrap()
}

fn info(hsm: &dyn KeyAdmin, key: KeyRef) -> KeyInfo {
    hsm.inventory().unwrap().into_iter().find(|info| info.key == key).unwrap_or_else(|| panic!("{key} not held"))
}

fn rotate_every_role(hsm: &mut dyn KeyAdmin) {
    for role in KeyRole::ALL {
        hsm.rotate(role).unwrap();
    }
}

fn assert_key_not_held<T: std::fmt::Debug>(result: Result<T, HsmError>, key: KeyRef) {
    match result {
        Err(HsmError::KeyNotHeld(missing)) => assert_eq!(missing, key),
        other => panic!("expected KeyNotHeld({key}), got {other:?}"),
    }
}

fn assert_wrong_kind<T: std::fmt::Debug>(result: Result<T, HsmError>, key: KeyRef) {
    match result {
        Err(HsmError::WrongKind { key: refused, .. }) => assert_eq!(refused, key),
        other => panic!("expected WrongKind for {key}, got {other:?}"),
    }
}

/// The masters of a software keystore, read back the way a custodian would: combine two
/// shares of a 2-of-2 backup and open the sealed document. This is an independent reading
/// of the backup format (`hsm/backup.rs` module docs), used only to compare the HSM's
/// results with the primitives computed in software.
fn masters_from_backup(hsm: &SoftHsm) -> BTreeMap<KeyRef, Vec<u8>> {
    let shares: Vec<serde_json::Value> =
        backup::split(hsm, 2, 2).unwrap().iter().map(|share| serde_json::to_value(share).unwrap()).collect();
    let text = |share: &serde_json::Value, field: &str| share[field].as_str().unwrap().to_owned();
    let parts: Vec<Vec<u8>> = shares.iter().map(|share| hex::decode(text(share, "share")).unwrap()).collect();
    let data_key = vsss_rs::Gf256::combine_bytes(&parts).unwrap();
    let nonce: [u8; 12] = B64.decode(text(&shares[0], "nonce")).unwrap().try_into().unwrap();
    let sealed = B64.decode(text(&shares[0], "sealed")).unwrap();
    let cipher = Aes256Gcm::new_from_slice(&data_key).unwrap();
    let plain =
        cipher.decrypt(&nonce.into(), Payload { msg: &sealed, aad: b"smartticket-key-share/1".as_slice() }).unwrap();
    let inner: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    inner["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stored| {
            let key: KeyRef = serde_json::from_value(stored["key"].clone()).unwrap();
            (key, hex::decode(stored["material"].as_str().unwrap()).unwrap())
        })
        .collect()
}

/// Where the PKCS#11 test token is, from the environment.
struct TokenEnvironment {
    module: PathBuf,
    token_label: String,
    pin: String,
}

impl TokenEnvironment {
    fn read() -> Self {
        let variable = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!(
                    "{name} is not set. The pkcs11_* tests need a SoftHSM2 (or other PKCS#11) token: set \
                     {MODULE_VARIABLE} (e.g. /usr/lib/softhsm/libsofthsm2.so), {TOKEN_VARIABLE} (the token \
                     label) and {PIN_VARIABLE} (its user PIN); see the top of tests/hsm_suite.rs"
                )
            })
        };
        Self {
            module: PathBuf::from(variable(MODULE_VARIABLE)),
            token_label: variable(TOKEN_VARIABLE),
            pin: variable(PIN_VARIABLE),
        }
    }

    fn config(&self, namespace: &str) -> Pkcs11Config {
        Pkcs11Config {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            pin: passphrase(&self.pin),
            namespace: namespace.to_owned(),
        }
    }

    /// A session of our own, beside the backend's, for looking at objects the backend does
    /// not expose and for clean-up.
    fn raw_session(&self) -> Result<Session, String> {
        let context = Pkcs11::new(&self.module).map_err(|e| e.to_string())?;
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(e.to_string()),
        }
        let slot = context
            .get_slots_with_token()
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|slot| context.get_token_info(*slot).is_ok_and(|info| info.label() == self.token_label))
            .ok_or_else(|| format!("no token labelled {}", self.token_label))?;
        let session = context.open_rw_session(slot).map_err(|e| e.to_string())?;
        match session.login(UserType::User, Some(&passphrase(&self.pin))) {
            Ok(()) | Err(CryptokiError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Every token object whose label starts with `{namespace}/`, with its label.
fn namespace_objects(session: &Session, namespace: &str) -> Result<Vec<(ObjectHandle, String)>, String> {
    let prefix = format!("{namespace}/");
    let handles = session.find_objects(&[Attribute::Token(true)]).map_err(|e| e.to_string())?;
    let objects = handles
        .into_iter()
        .filter_map(|handle| {
            let label =
                session.get_attributes(handle, &[AttributeType::Label]).ok()?.into_iter().find_map(|a| match a {
                    Attribute::Label(bytes) => String::from_utf8(bytes).ok(),
                    _ => None,
                })?;
            label.starts_with(&prefix).then_some((handle, label))
        })
        .collect();
    Ok(objects)
}

/// Held by every PKCS#11 test for its whole run. SoftHSM2 2.6's file object store is not
/// safe when several sessions of one process create or read token objects at once: its
/// transactions use `fcntl` locks, which do not exclude threads of the same process, and
/// `C_GenerateKey` then fails with CKR_GENERAL_ERROR (SoftHSMv2 issue #573; session open
/// and close race too, #464). The backend itself serialises the calls of one `Pkcs11Hsm`;
/// this serialises the tests, each of which opens its own.
fn one_token_test_at_a_time() -> MutexGuard<'static, ()> {
    static TOKEN_TESTS: Mutex<()> = Mutex::new(());
    TOKEN_TESTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A PKCS#11 backend in a fresh random namespace holding version 1 of every role (as
/// `SoftHsm::generate(&KeyRole::ALL)` does); every object of the namespace is destroyed on
/// drop, whether the test passed or not.
struct TestToken {
    hsm: Pkcs11Hsm,
    environment: TokenEnvironment,
    namespace: String,
}

impl TestToken {
    fn open() -> Self {
        let environment = TokenEnvironment::read();
        let mut random = [0_u8; 8];
        smartticket_crypto::random_bytes(&mut random).unwrap();
        let namespace = format!("test-{}", hex::encode(random));
        let hsm = Pkcs11Hsm::open(environment.config(&namespace)).unwrap();
        // Built before the first key exists, so a failure below still cleans up.
        let mut token = TestToken { hsm, environment, namespace };
        assert!(token.hsm.inventory().unwrap().is_empty(), "a fresh namespace must be empty");
        for role in KeyRole::ALL {
            // The first rotation of a role creates version 1, active at once.
            let created = token.hsm.rotate(role).unwrap();
            assert_eq!((created.key, created.state), (key(role, 1), KeyState::Active));
        }
        token
    }
}

impl Drop for TestToken {
    fn drop(&mut self) {
        // No panics here: this also runs while a failed test unwinds.
        let cleaned = self.environment.raw_session().and_then(|session| {
            for (handle, label) in namespace_objects(&session, &self.namespace)? {
                session.destroy_object(handle).map_err(|e| format!("destroying {label}: {e}"))?;
            }
            Ok(())
        });
        if let Err(e) = cleaned {
            eprintln!("could not clean up PKCS#11 namespace {}: {e}", self.namespace);
        }
        if !std::thread::panicking() {
            assert_eq!(self.hsm.inventory().unwrap(), vec![], "clean-up left keys in {}", self.namespace);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The suite: every check holds on every backend
// ---------------------------------------------------------------------------------------

/// Runs each check on a fresh software keystore (`soft_*`) and on a fresh namespace of the
/// PKCS#11 test token (`pkcs11_*`).
macro_rules! on_every_backend {
    ($($check:ident => $soft:ident, $pkcs11:ident;)*) => {$(
        #[test]
        fn $soft() {
            $check(&mut soft_hsm());
        }

        #[test]
        #[ignore = "needs SoftHSM2 (SMARTTICKET_TEST_PKCS11_MODULE, _TOKEN, _PIN)"]
        fn $pkcs11() {
            let _serial = one_token_test_at_a_time();
            let mut token = TestToken::open();
            $check(&mut token.hsm);
        }
    )*};
}

on_every_backend! {
    starts_with_version_1_of_every_role => soft_starts_with_version_1_of_every_role, pkcs11_starts_with_version_1_of_every_role;
    rotation_makes_the_new_version_active => soft_rotation_makes_the_new_version_active, pkcs11_rotation_makes_the_new_version_active;
    check_values_are_stable_and_differ_between_versions => soft_check_values_are_stable_and_differ_between_versions, pkcs11_check_values_are_stable_and_differ_between_versions;
    card_keys_are_per_card_per_version_and_survive_rotation => soft_card_keys_are_per_card_per_version_and_survive_rotation, pkcs11_card_keys_are_per_card_per_version_and_survive_rotation;
    hmac_is_deterministic_and_differs_per_version => soft_hmac_is_deterministic_and_differs_per_version, pkcs11_hmac_is_deterministic_and_differs_per_version;
    signatures_verify_and_detect_changes => soft_signatures_verify_and_detect_changes, pkcs11_signatures_verify_and_detect_changes;
    only_verify_only_versions_can_be_retired => soft_only_verify_only_versions_can_be_retired, pkcs11_only_verify_only_versions_can_be_retired;
    wrong_kind_operations_are_refused => soft_wrong_kind_operations_are_refused, pkcs11_wrong_kind_operations_are_refused;
    concurrent_callers_get_consistent_results => soft_concurrent_callers_get_consistent_results, pkcs11_concurrent_callers_get_consistent_results;
}

fn starts_with_version_1_of_every_role(hsm: &mut dyn KeyAdmin) {
    let inventory = hsm.inventory().unwrap();
    let keys: Vec<KeyRef> = inventory.iter().map(|info| info.key).collect();
    let expected: Vec<KeyRef> = KeyRole::ALL.iter().map(|role| key(*role, 1)).collect();
    assert_eq!(keys, expected, "ordered by role and version");
    assert!(inventory.iter().all(|info| info.state == KeyState::Active));
    for role in KeyRole::ALL {
        assert_eq!(hsm.active(role).unwrap(), key(role, 1));
        assert!(hsm.holds(key(role, 1)).unwrap());
        assert!(!hsm.holds(key(role, 2)).unwrap());
    }
}

fn rotation_makes_the_new_version_active(hsm: &mut dyn KeyAdmin) {
    for role in KeyRole::ALL {
        let second = hsm.rotate(role).unwrap();
        assert_eq!((second.key, second.state), (key(role, 2), KeyState::Active));
        assert_eq!(hsm.active(role).unwrap(), key(role, 2));
        assert_eq!(info(hsm, key(role, 1)).state, KeyState::VerifyOnly);
        assert_eq!(info(hsm, key(role, 2)), second, "rotate reports what the inventory says");
    }
    let third = hsm.rotate(KeyRole::Debit).unwrap();
    assert_eq!((third.key, third.state), (key(KeyRole::Debit, 3), KeyState::Active));
    let debit: Vec<(u8, KeyState)> = hsm
        .inventory()
        .unwrap()
        .into_iter()
        .filter(|info| info.key.role == KeyRole::Debit)
        .map(|info| (info.key.version.get(), info.state))
        .collect();
    assert_eq!(debit, vec![(1, KeyState::VerifyOnly), (2, KeyState::VerifyOnly), (3, KeyState::Active)]);
    // Other roles are untouched by rotating one.
    assert_eq!(hsm.active(KeyRole::Credit).unwrap(), key(KeyRole::Credit, 2));
}

fn check_values_are_stable_and_differ_between_versions(hsm: &mut dyn KeyAdmin) {
    let first = hsm.inventory().unwrap();
    assert_eq!(hsm.inventory().unwrap(), first, "check values are the same on every call");
    rotate_every_role(hsm);
    let second = hsm.inventory().unwrap();
    for role in KeyRole::ALL {
        let kcv_of = |inventory: &[KeyInfo], version| {
            inventory.iter().find(|info| info.key == key(role, version)).map(|info| info.kcv).unwrap()
        };
        assert_eq!(kcv_of(&second, 1), kcv_of(&first, 1), "{role}: rotating must not change v1");
        assert_ne!(kcv_of(&second, 1), kcv_of(&second, 2), "{role}: versions are different keys");
    }
    // The check values that can be recomputed from outside (keys.rs, `Kcv`): HMAC over 32
    // zero bytes, and SHA-256 of the compressed public key.
    for info in &second {
        match info.key.role.kind() {
            KeyKind::HmacSha256 => {
                assert_eq!(info.kcv, Kcv::from_prefix(&hsm.hmac(info.key, &[0; 32]).unwrap()), "{}", info.key);
            }
            KeyKind::EcdsaP256 => {
                let public = hsm.verifying_key(info.key).unwrap().to_sec1();
                assert_eq!(info.kcv, Kcv::from_prefix(&sha2::Sha256::digest(public)), "{}", info.key);
            }
            KeyKind::Aes128 => {}
        }
    }
}

fn card_keys_are_per_card_per_version_and_survive_rotation(hsm: &mut dyn KeyAdmin) {
    let debit_v1 = key(KeyRole::Debit, 1);
    let before = hsm.derive_card_key(debit_v1, &card(0x01)).unwrap();
    assert_eq!(*hsm.derive_card_key(debit_v1, &card(0x01)).unwrap(), *before, "deterministic");
    assert_ne!(*hsm.derive_card_key(debit_v1, &card(0x02)).unwrap(), *before, "per card");
    assert_ne!(*hsm.derive_card_key(key(KeyRole::Read, 1), &card(0x01)).unwrap(), *before, "per role");
    let other_system =
        DiversificationInput::new(&[0x04, 0x52, 0x7A, 0x1B, 0x33, 0x80, 0x01], &[0xF5, 0x43, 0x01], b"OTHER-SYSTEM")
            .unwrap();
    assert_ne!(*hsm.derive_card_key(debit_v1, &other_system).unwrap(), *before, "per system");

    hsm.rotate(KeyRole::Debit).unwrap();
    let debit_v2 = key(KeyRole::Debit, 2);
    assert_ne!(*hsm.derive_card_key(debit_v2, &card(0x01)).unwrap(), *before, "per version");
    assert_eq!(
        *hsm.derive_card_key(debit_v1, &card(0x01)).unwrap(),
        *before,
        "a verify-only master still derives the keys of cards personalised under it"
    );
    assert_key_not_held(hsm.derive_card_key(key(KeyRole::Debit, 3), &card(0x01)), key(KeyRole::Debit, 3));
}

fn hmac_is_deterministic_and_differs_per_version(hsm: &mut dyn KeyAdmin) {
    let v1 = key(KeyRole::Tokenisation, 1);
    let message = b"4276000000001234=2812";
    let first = hsm.hmac(v1, message).unwrap();
    assert_eq!(hsm.hmac(v1, message).unwrap(), first, "deterministic");
    assert_ne!(hsm.hmac(v1, b"4276000000001234=2901").unwrap(), first, "per message");
    assert_ne!(hsm.hmac(v1, b"").unwrap(), first);
    hsm.rotate(KeyRole::Tokenisation).unwrap();
    let v2 = key(KeyRole::Tokenisation, 2);
    assert_ne!(hsm.hmac(v2, message).unwrap(), first, "per version");
    assert_eq!(hsm.hmac(v1, message).unwrap(), first, "the old version still tokenises");
}

fn signatures_verify_and_detect_changes(hsm: &mut dyn KeyAdmin) {
    let v1 = key(KeyRole::ListSigning, 1);
    let list = b"greenlist 2026-05-01 #17: 3 tokens";
    let signature = hsm.sign(v1, list).unwrap();
    let public_v1 = hsm.verifying_key(v1).unwrap();
    assert_eq!(hsm.verifying_key(v1).unwrap(), public_v1, "the public key is stable");
    public_v1.verify(list, &signature).unwrap();
    assert!(public_v1.verify(b"greenlist 2026-05-01 #17: 4 tokens", &signature).is_err(), "a changed list");
    let mut flipped = signature;
    flipped.0[40] ^= 0x01;
    assert!(public_v1.verify(list, &flipped).is_err(), "a changed signature");

    hsm.rotate(KeyRole::ListSigning).unwrap();
    let v2 = key(KeyRole::ListSigning, 2);
    let public_v2 = hsm.verifying_key(v2).unwrap();
    assert_ne!(public_v2, public_v1);
    assert!(public_v2.verify(list, &signature).is_err(), "v1's signature is not v2's");
    public_v2.verify(list, &hsm.sign(v2, list).unwrap()).unwrap();
    public_v1.verify(list, &hsm.sign(v1, list).unwrap()).unwrap();
    assert_eq!(hsm.verifying_key(v1).unwrap(), public_v1, "rotation keeps the old public key");
}

fn only_verify_only_versions_can_be_retired(hsm: &mut dyn KeyAdmin) {
    for role in [KeyRole::Debit, KeyRole::Tokenisation, KeyRole::ListSigning] {
        let (v1, v2) = (key(role, 1), key(role, 2));
        match hsm.retire(v1) {
            Err(HsmError::RetireActive(refused)) => assert_eq!(refused, v1),
            other => panic!("retiring the active {v1} must be refused, got {other:?}"),
        }
        assert!(hsm.holds(v1).unwrap(), "a refused retire destroys nothing");
        hsm.rotate(role).unwrap();
        hsm.retire(v1).unwrap();
        assert!(!hsm.holds(v1).unwrap());
        assert!(hsm.inventory().unwrap().iter().all(|info| info.key != v1));
        assert_eq!(info(hsm, v2).state, KeyState::Active);
        assert_key_not_held(hsm.retire(v1), v1);
        assert!(matches!(hsm.retire(v2), Err(HsmError::RetireActive(_))));
        match role.kind() {
            KeyKind::Aes128 => {
                assert_key_not_held(hsm.derive_card_key(v1, &card(0x01)), v1);
                hsm.derive_card_key(v2, &card(0x01)).unwrap();
            }
            KeyKind::HmacSha256 => {
                assert_key_not_held(hsm.hmac(v1, b"pan"), v1);
                hsm.hmac(v2, b"pan").unwrap();
            }
            KeyKind::EcdsaP256 => {
                assert_key_not_held(hsm.sign(v1, b"list"), v1);
                assert_key_not_held(hsm.verifying_key(v1), v1);
                hsm.verifying_key(v2).unwrap().verify(b"list", &hsm.sign(v2, b"list").unwrap()).unwrap();
            }
        }
    }
    // A version never created is not held either.
    assert_key_not_held(hsm.retire(key(KeyRole::Read, 9)), key(KeyRole::Read, 9));
}

fn wrong_kind_operations_are_refused(hsm: &mut dyn KeyAdmin) {
    let debit = key(KeyRole::Debit, 1);
    let tokenisation = key(KeyRole::Tokenisation, 1);
    let list_signing = key(KeyRole::ListSigning, 1);
    assert_wrong_kind(hsm.sign(debit, b"list"), debit);
    assert_wrong_kind(hsm.verifying_key(debit), debit);
    assert_wrong_kind(hsm.hmac(debit, b"pan"), debit);
    assert_wrong_kind(hsm.derive_card_key(tokenisation, &card(0x01)), tokenisation);
    assert_wrong_kind(hsm.sign(tokenisation, b"list"), tokenisation);
    assert_wrong_kind(hsm.derive_card_key(list_signing, &card(0x01)), list_signing);
    assert_wrong_kind(hsm.hmac(list_signing, b"pan"), list_signing);
    // The kind is checked before the key is looked up.
    assert_wrong_kind(hsm.sign(key(KeyRole::Credit, 200), b"list"), key(KeyRole::Credit, 200));
}

fn concurrent_callers_get_consistent_results(hsm: &mut dyn KeyAdmin) {
    const THREADS: u8 = 8;
    const CALLS_PER_THREAD: usize = 16;
    let hsm: &dyn KeyAdmin = hsm;
    let debit = key(KeyRole::Debit, 1);
    let expected: Vec<[u8; 16]> = (0..THREADS).map(|t| *hsm.derive_card_key(debit, &card(t)).unwrap()).collect();
    std::thread::scope(|scope| {
        for (thread, expected) in expected.iter().enumerate() {
            let uid_last_byte = u8::try_from(thread).unwrap();
            scope.spawn(move || {
                for _ in 0..CALLS_PER_THREAD {
                    assert_eq!(*hsm.derive_card_key(debit, &card(uid_last_byte)).unwrap(), *expected);
                    hsm.hmac(key(KeyRole::Tokenisation, 1), b"pan").unwrap();
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------
// Software backend only: results against the primitives, the keystore file, profiles, backups
// ---------------------------------------------------------------------------------------

#[test]
fn soft_operations_equal_the_software_primitives_on_the_master() {
    let mut hsm = soft_hsm();
    rotate_every_role(&mut hsm);
    let masters = masters_from_backup(&hsm);
    assert_eq!(masters.len(), 2 * KeyRole::ALL.len());
    for info in hsm.inventory().unwrap() {
        let master = &masters[&info.key];
        match info.key.role.kind() {
            KeyKind::Aes128 => {
                let master: &[u8; 16] = master.as_slice().try_into().unwrap();
                for input in [card(0x01), card(0xFF)] {
                    let expected = an10922_aes128(master, input.as_bytes()).unwrap();
                    assert_eq!(*hsm.derive_card_key(info.key, &input).unwrap(), *expected, "{}", info.key);
                }
                assert_eq!(info.kcv, Kcv::from_prefix(&aes_cmac(master, &[0; 16])), "{}", info.key);
            }
            KeyKind::HmacSha256 => {
                let message = b"4276000000001234=2812";
                assert_eq!(hsm.hmac(info.key, message).unwrap(), hmac_sha256(master, message).unwrap());
                assert_eq!(info.kcv, Kcv::from_prefix(&hmac_sha256(master, &[0; 32]).unwrap()), "{}", info.key);
            }
            KeyKind::EcdsaP256 => {
                let scalar: [u8; 32] = master.as_slice().try_into().unwrap();
                let signing = smartticket_crypto::sign::SigningKey::from_bytes(&scalar).unwrap();
                assert_eq!(signing.verifying_key(), hsm.verifying_key(info.key).unwrap());
            }
        }
    }
}

fn keystore_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("keys").join("keystore.json")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn inventory_and_card_key(hsm: &SoftHsm) -> (Vec<KeyInfo>, [u8; 16]) {
    (hsm.inventory().unwrap(), *hsm.derive_card_key(key(KeyRole::Debit, 1), &card(0x01)).unwrap())
}

#[test]
fn soft_keystore_round_trips_through_its_sealed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = keystore_path(&dir);
    let mut hsm = soft_hsm();
    hsm.rotate(KeyRole::Debit).unwrap();
    hsm.save(&path, &passphrase("correct horse battery staple"), TEST_SEAL_COST).unwrap();
    assert_eq!(mode(&path), 0o600, "the keystore is private to its owner");
    let text = std::fs::read_to_string(&path).unwrap();
    let material = masters_from_backup(&hsm);
    for master in material.values() {
        assert!(!text.contains(&hex::encode(master)), "no key material in clear");
    }
    let opened = SoftHsm::open(&path, &passphrase("correct horse battery staple")).unwrap();
    assert_eq!(inventory_and_card_key(&opened), inventory_and_card_key(&hsm));
    assert!(opened.describe().contains("keystore.json"), "{}", opened.describe());
}

#[test]
fn soft_keystore_refuses_a_wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let path = keystore_path(&dir);
    soft_hsm().save(&path, &passphrase("correct horse battery staple"), TEST_SEAL_COST).unwrap();
    let opened = SoftHsm::open(&path, &passphrase("correct horse battery stapler"));
    assert!(matches!(opened, Err(HsmError::BadPassphrase)), "{opened:?}");
}

#[test]
fn soft_keystore_refuses_a_file_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = keystore_path(&dir);
    soft_hsm().save(&path, &passphrase("pass"), TEST_SEAL_COST).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    match SoftHsm::open(&path, &passphrase("pass")) {
        Err(HsmError::Permissions { mode, path: reported }) => {
            assert_eq!(mode, 0o644);
            assert_eq!(reported, path.display().to_string());
        }
        other => panic!("expected Permissions, got {other:?}"),
    }
}

/// Rewrites one header field of a saved keystore, keeping the file private.
fn tamper(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut file: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut file);
    std::fs::write(path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn soft_keystore_refuses_a_tampered_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = keystore_path(&dir);
    let hsm = soft_hsm();
    let save = || hsm.save(&path, &passphrase("pass"), TEST_SEAL_COST).unwrap();

    // The header is authenticated: a changed argon2 cost fails the seal.
    save();
    tamper(&path, |file| file["kdf"]["passes"] = 2.into());
    let opened = SoftHsm::open(&path, &passphrase("pass"));
    assert!(matches!(opened, Err(HsmError::BadPassphrase)), "{opened:?}");

    // A cost below the floor is refused before any key derivation.
    save();
    tamper(&path, |file| file["kdf"]["memory_kib"] = 1024.into());
    let opened = SoftHsm::open(&path, &passphrase("pass"));
    assert!(matches!(opened, Err(HsmError::Format(_))), "{opened:?}");

    // So is an unknown format, or a changed sealed body.
    save();
    tamper(&path, |file| file["format"] = "smartticket-keystore/0".into());
    assert!(matches!(SoftHsm::open(&path, &passphrase("pass")), Err(HsmError::Format(_))));
    save();
    tamper(&path, |file| {
        let mut sealed = B64.decode(file["sealed"].as_str().unwrap()).unwrap();
        sealed[0] ^= 0x01;
        file["sealed"] = B64.encode(sealed).into();
    });
    assert!(matches!(SoftHsm::open(&path, &passphrase("pass")), Err(HsmError::BadPassphrase)));

    // The untouched file still opens.
    save();
    SoftHsm::open(&path, &passphrase("pass")).unwrap();
}

#[test]
fn soft_sam_profile_holds_no_credit_or_transaction_mac_key() {
    let mut hsm = soft_hsm();
    hsm.rotate(KeyRole::Debit).unwrap();
    let sam = hsm.restricted_to(&KeyRole::SAM_PROFILE);
    let roles: Vec<KeyRole> = sam.inventory().unwrap().iter().map(|info| info.key.role).collect();
    assert!(roles.iter().all(|role| KeyRole::SAM_PROFILE.contains(role)), "{roles:?}");
    for forbidden in [KeyRole::Credit, KeyRole::TransactionMac, KeyRole::Personalisation, KeyRole::ListSigning] {
        assert!(!roles.contains(&forbidden), "{forbidden} must not be in a SAM");
        assert!(matches!(sam.active(forbidden), Err(HsmError::RoleNotHeld(role)) if role == forbidden));
    }
    assert_key_not_held(sam.derive_card_key(key(KeyRole::Credit, 1), &card(0x01)), key(KeyRole::Credit, 1));
    assert_key_not_held(
        sam.derive_card_key(key(KeyRole::TransactionMac, 1), &card(0x01)),
        key(KeyRole::TransactionMac, 1),
    );
    // What it keeps is the same key material, every version of it.
    let kept: Vec<KeyInfo> =
        hsm.inventory().unwrap().into_iter().filter(|info| KeyRole::SAM_PROFILE.contains(&info.key.role)).collect();
    assert_eq!(sam.inventory().unwrap(), kept);
    for version in [1, 2] {
        let debit = key(KeyRole::Debit, version);
        assert_eq!(
            *sam.derive_card_key(debit, &card(0x01)).unwrap(),
            *hsm.derive_card_key(debit, &card(0x01)).unwrap()
        );
    }
}

/// Every way of choosing `count` of `items`.
fn choose<T: Clone>(items: &[T], count: usize) -> Vec<Vec<T>> {
    if count == 0 {
        return vec![vec![]];
    }
    let Some((first, rest)) = items.split_first() else { return vec![] };
    let mut with_first: Vec<Vec<T>> = choose(rest, count - 1)
        .into_iter()
        .map(|mut tail| {
            tail.insert(0, first.clone());
            tail
        })
        .collect();
    with_first.extend(choose(rest, count));
    with_first
}

#[test]
fn soft_backup_restores_from_any_threshold_of_shares() {
    let mut hsm = soft_hsm();
    hsm.rotate(KeyRole::Credit).unwrap();
    let shares = backup::split(&hsm, 3, 5).unwrap();
    assert_eq!(shares.len(), 5);
    assert_eq!(shares.iter().map(|share| share.index).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert!(shares.iter().all(|share| share.threshold == 3 && share.keys == hsm.inventory().unwrap()));
    let combinations = choose(&shares, 3);
    assert_eq!(combinations.len(), 10);
    for chosen in combinations.iter().chain([&shares]) {
        let restored = backup::restore(chosen).unwrap();
        assert_eq!(inventory_and_card_key(&restored), inventory_and_card_key(&hsm), "shares {:?}", indexes(chosen));
    }
}

fn indexes(shares: &[ShareFile]) -> Vec<u8> {
    shares.iter().map(|share| share.index).collect()
}

#[test]
fn soft_backup_refuses_too_few_or_mixed_shares() {
    let hsm = soft_hsm();
    let shares = backup::split(&hsm, 3, 5).unwrap();
    match backup::restore(&shares[..2]) {
        Err(HsmError::Shares(message)) => assert!(message.contains("needs 3"), "{message}"),
        other => panic!("expected a Shares error, got {:?}", other.map(|_| ())),
    }
    let same_share_thrice = vec![shares[0].clone(), shares[0].clone(), shares[0].clone()];
    assert!(matches!(backup::restore(&same_share_thrice), Err(HsmError::Shares(_))));

    let other_backup = backup::split(&hsm, 3, 5).unwrap();
    let mixed = vec![shares[0].clone(), shares[1].clone(), other_backup[2].clone()];
    match backup::restore(&mixed) {
        Err(HsmError::Shares(message)) => assert!(message.contains("different backups"), "{message}"),
        other => panic!("expected a Shares error, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(backup::split(&hsm, 1, 5), Err(HsmError::Shares(_))), "threshold 1 is no sharing");
    assert!(matches!(backup::split(&hsm, 4, 3), Err(HsmError::Shares(_))), "threshold above shares");
}

// ---------------------------------------------------------------------------------------
// PKCS#11 backend only: how the keys sit in the token, isolation, and opening errors
// ---------------------------------------------------------------------------------------

fn boolean(session: &Session, handle: ObjectHandle, which: AttributeType) -> Option<bool> {
    session.get_attributes(handle, &[which]).unwrap().into_iter().find_map(|attribute| match attribute {
        Attribute::Token(b)
        | Attribute::Private(b)
        | Attribute::Sensitive(b)
        | Attribute::Extractable(b)
        | Attribute::AlwaysSensitive(b)
        | Attribute::NeverExtractable(b)
        | Attribute::Local(b)
        | Attribute::Sign(b)
        | Attribute::Verify(b)
        | Attribute::Encrypt(b)
        | Attribute::Decrypt(b)
        | Attribute::Wrap(b)
        | Attribute::Unwrap(b) => Some(b),
        _ => None,
    })
}

#[test]
#[ignore = "needs SoftHSM2 (SMARTTICKET_TEST_PKCS11_MODULE, _TOKEN, _PIN)"]
fn pkcs11_keys_are_generated_in_the_token_and_never_extractable() {
    let _serial = one_token_test_at_a_time();
    let token = TestToken::open();
    let session = token.environment.raw_session().unwrap();
    let objects = namespace_objects(&session, &token.namespace).unwrap();
    // One object per symmetric key, two per key pair.
    assert_eq!(objects.len(), KeyRole::ALL.len() + 1, "{objects:?}");
    for (handle, label) in objects {
        let class = session.get_attributes(handle, &[AttributeType::Class]).unwrap();
        let is_public = class.contains(&Attribute::Class(ObjectClass::PUBLIC_KEY));
        let flag = |which| boolean(&session, handle, which);
        assert_eq!(flag(AttributeType::Token), Some(true), "{label}");
        assert_eq!(flag(AttributeType::Private), Some(true), "{label}");
        if is_public {
            assert_eq!(flag(AttributeType::Verify), Some(true), "{label}");
            continue;
        }
        for (which, expected) in [
            (AttributeType::Sensitive, true),
            (AttributeType::Extractable, false),
            (AttributeType::AlwaysSensitive, true),
            (AttributeType::NeverExtractable, true),
            (AttributeType::Local, true),
            (AttributeType::Sign, true),
            (AttributeType::Decrypt, false),
            (AttributeType::Unwrap, false),
        ] {
            assert_eq!(flag(which), Some(expected), "{label}: {which}");
        }
        if class.contains(&Attribute::Class(ObjectClass::SECRET_KEY)) {
            assert_eq!(flag(AttributeType::Encrypt), Some(false), "{label}");
            assert_eq!(flag(AttributeType::Wrap), Some(false), "{label}");
        }
        let value = session.get_attributes(handle, &[AttributeType::Value]).unwrap_or_default();
        assert!(!value.iter().any(|a| matches!(a, Attribute::Value(_))), "{label}: the value must not be readable");
    }
}

#[test]
#[ignore = "needs SoftHSM2 (SMARTTICKET_TEST_PKCS11_MODULE, _TOKEN, _PIN)"]
fn pkcs11_namespaces_do_not_see_each_other() {
    let _serial = one_token_test_at_a_time();
    let first = TestToken::open();
    let second = TestToken::open();
    let (a, b) = (first.hsm.inventory().unwrap(), second.hsm.inventory().unwrap());
    assert_eq!(a.iter().map(|info| info.key).collect::<Vec<_>>(), b.iter().map(|info| info.key).collect::<Vec<_>>());
    for (x, y) in a.iter().zip(&b) {
        assert_ne!(x.kcv, y.kcv, "{}: each namespace has its own keys", x.key);
    }
    let debit = key(KeyRole::Debit, 1);
    assert_ne!(
        *first.hsm.derive_card_key(debit, &card(1)).unwrap(),
        *second.hsm.derive_card_key(debit, &card(1)).unwrap()
    );
    assert!(first.hsm.describe().contains(&first.namespace), "{}", first.hsm.describe());
}

#[test]
#[ignore = "needs SoftHSM2 (SMARTTICKET_TEST_PKCS11_MODULE, _TOKEN, _PIN)"]
fn pkcs11_stray_and_duplicate_objects_are_never_used() {
    let _serial = one_token_test_at_a_time();
    let token = TestToken::open();
    let session = token.environment.raw_session().unwrap();
    let add_aes_key = |label: String| {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(16.into()),
            Attribute::Label(label.into_bytes()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
        ];
        session.generate_key(&Mechanism::AesKeyGen, &template).unwrap();
    };
    let before = token.hsm.inventory().unwrap();
    // Labels that are not exactly `{namespace}/{role}/v{version}` are not keys of ours.
    for stray in ["debit/v01", "debit/v0", "debit/v256", "debt/v2", "debit/2", "debit/v2/x"] {
        add_aes_key(format!("{}/{stray}", token.namespace));
    }
    assert_eq!(token.hsm.inventory().unwrap(), before);
    assert_key_not_held(token.hsm.derive_card_key(key(KeyRole::Debit, 2), &card(1)), key(KeyRole::Debit, 2));

    // Two objects under one key's label: refuse rather than pick one.
    add_aes_key(format!("{}/debit/v1", token.namespace));
    for result in
        [token.hsm.derive_card_key(key(KeyRole::Debit, 1), &card(1)).map(|_| ()), token.hsm.inventory().map(|_| ())]
    {
        match result {
            Err(HsmError::Pkcs11(message)) => assert!(message.contains("debit/v1"), "{message}"),
            other => panic!("a duplicate must be refused, got {other:?}"),
        }
    }
}

#[test]
#[ignore = "needs SoftHSM2 (SMARTTICKET_TEST_PKCS11_MODULE, _TOKEN, _PIN)"]
fn pkcs11_open_names_what_is_wrong() {
    let _serial = one_token_test_at_a_time();
    let environment = TokenEnvironment::read();
    let mut config = environment.config("test-open-errors");
    config.token_label = "no-such-token".into();
    match Pkcs11Hsm::open(config) {
        Err(HsmError::Pkcs11(message)) => {
            assert!(message.contains("no token labelled `no-such-token`"), "{message}");
            assert!(message.contains(&environment.token_label), "lists the tokens present: {message}");
            assert!(!message.contains(&environment.pin), "{message}");
        }
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
    let mut config = environment.config("bad/namespace");
    config.module = environment.module.clone();
    assert!(matches!(Pkcs11Hsm::open(config), Err(HsmError::Pkcs11(message)) if message.contains("namespace")));
    let mut config = environment.config("test-open-errors");
    config.module = PathBuf::from("/nonexistent/libpkcs11.so");
    assert!(matches!(Pkcs11Hsm::open(config), Err(HsmError::Pkcs11(message)) if message.contains("loading module")));
}
