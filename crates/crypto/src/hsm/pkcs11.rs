//! The PKCS#11 backend: master keys as objects of one token, labelled
//! `{namespace}/{role}/v{version}`. It owns the loaded module, the login and one session, not
//! cards or files; mechanisms per PKCS#11 v2.40 (`CKM_AES_CMAC`, `CKM_SHA256_HMAC`, `CKM_ECDSA`).
//!
//! Why this shape: every key is generated inside the token as sensitive and non-extractable,
//! so no master ever exists outside it, not even at creation; every operation (CMAC
//! diversification, HMAC, ECDSA, check values) is done by the token, and only per-card keys,
//! HMAC outputs and signatures come out. A PKCS#11 session must not be used by two threads at
//! once, so one session sits behind a mutex and calls are serialised; one tap needs one
//! `C_Sign`, which a single session sustains.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::Ulong;
use secrecy::SecretString;
use serde::Deserialize;
use sha2::Digest;
use zeroize::Zeroizing;

use super::{Hsm, HsmError, KeyAdmin, next_version, require_kind, with_states};
use crate::cmac::{BLOCK_BYTES, SecretKey16};
use crate::diversify::DiversificationInput;
use crate::keys::{Kcv, KeyInfo, KeyKind, KeyRef, KeyRole, KeyVersion};
use crate::sign::{SIGNATURE_BYTES, Signature, VerifyingKey};

/// Longest namespace: labels stay short enough for every token's object label field.
pub const NAMESPACE_BYTES_MAX: usize = 64;
/// Most key objects of one class read while listing the namespace. Each one costs a label
/// read, so an unbounded token would make every inventory unbounded. One namespace holds at
/// most 7 roles × 255 versions = 1785 keys; a token shared with other applications should
/// stay well under this, and a larger one is refused with a message rather than slowly read.
const TOKEN_KEYS_SCANNED_MAX: usize = 16_384;
/// DER encoding of the OID of prime256v1 (secp256r1, 1.2.840.10045.3.1.7), for `CKA_EC_PARAMS`.
const EC_PARAMS_PRIME256V1: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// Bytes of an uncompressed P-256 point `04 || X || Y`.
const UNCOMPRESSED_POINT_BYTES: usize = 65;
/// DER tag of an OCTET STRING, which wraps the point in `CKA_EC_POINT` (PKCS#11 v2.40 §2.3.3).
const DER_OCTET_STRING: u8 = 0x04;
/// Key lengths, in bytes, as `CKA_VALUE_LEN` takes them.
const AES128_KEY_BYTES: Ulong = Ulong::new(16);
const HMAC_SHA256_KEY_BYTES: Ulong = Ulong::new(32);
/// Bytes of an HMAC-SHA256 output.
const HMAC_SHA256_BYTES: usize = 32;

const _: () = assert!(KeyRole::ALL.len() * 255 < TOKEN_KEYS_SCANNED_MAX);

/// The mechanisms this backend needs, and what each is for, checked when the token is opened
/// so a token lacking one is refused at start-up rather than at the first tap.
const REQUIRED_MECHANISMS: [(MechanismType, &str); 6] = [
    (MechanismType::AES_KEY_GEN, "generating AES-128 master keys"),
    (MechanismType::AES_CMAC, "card key diversification"),
    (MechanismType::GENERIC_SECRET_KEY_GEN, "generating tokenisation keys"),
    (MechanismType::SHA256_HMAC, "PAN tokenisation"),
    (MechanismType::ECC_KEY_PAIR_GEN, "generating list-signing keys"),
    (MechanismType::ECDSA, "list signing"),
];

/// Where the token is and how to log in to it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The label of the token to use; exactly one token must carry it.
    pub token_label: String,
    /// The user PIN. Used once to log in, then dropped (and wiped); never logged or printed.
    pub pin: SecretString,
    /// Prefix of every key label, so several systems (or tests) share one token without
    /// seeing each other's keys: 1 to 64 of `A–Z a–z 0–9 . _ -`.
    pub namespace: String,
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<redacted>")
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// Keys held in a PKCS#11 token, used through one logged-in session.
///
/// Open one per process and token. Several work (they share the module and the login), but
/// some modules are not safe when sessions of one process create objects at the same time:
/// SoftHSM2 2.6's file store fails `C_GenerateKey` with CKR_GENERAL_ERROR (SoftHSMv2 #573).
pub struct Pkcs11Hsm {
    session: Mutex<Session>,
    /// Keeps the module loaded as long as the session lives.
    _context: Pkcs11,
    module: PathBuf,
    token_label: String,
    slot: Slot,
    namespace: String,
}

impl fmt::Debug for Pkcs11Hsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Hsm")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("slot", &self.slot.id())
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// One initialised context per module path for the life of the process. `C_Initialize` is
/// process-wide: a second call fails, and `C_Finalize` while another `Pkcs11Hsm` still uses
/// the module would break it. So contexts are shared and never finalised.
static CONTEXTS: Mutex<BTreeMap<PathBuf, Pkcs11>> = Mutex::new(BTreeMap::new());

impl Pkcs11Hsm {
    /// Loads the module, finds the token labelled `config.token_label`, checks that it has
    /// every mechanism needed, opens a read-write session and logs in as the user. (PKCS#11
    /// login is per process and token: if this process is logged in already, through
    /// another `Pkcs11Hsm`, the token does not check the PIN again.)
    pub fn open(config: Pkcs11Config) -> Result<Self, HsmError> {
        let Pkcs11Config { module, token_label, pin, namespace } = config;
        check_namespace(&namespace)?;
        let context = initialised_context(&module)?;
        let slot = find_slot(&context, &token_label)?;
        check_mechanisms(&context, slot, &token_label)?;
        let session = context
            .open_rw_session(slot)
            .map_err(|e| pkcs11_error(format_args!("opening a session on token `{token_label}`"), e))?;
        match session.login(UserType::User, Some(&pin)) {
            // Login state is per application and token: another session of this process
            // (another `Pkcs11Hsm`) may have logged in already.
            Ok(()) | Err(CryptokiError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(pkcs11_error(format_args!("logging in to token `{token_label}`"), e)),
        }
        drop(pin);
        tracing::info!(module = %module.display(), token = %token_label, %namespace, "opened PKCS#11 token");
        Ok(Self { session: Mutex::new(session), _context: context, module, token_label, slot, namespace })
    }

    /// The namespace this HSM's keys live in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn session(&self) -> Result<MutexGuard<'_, Session>, HsmError> {
        self.session.lock().map_err(|_| {
            HsmError::Pkcs11("the session lock is poisoned (a thread panicked while using it); reopen the HSM".into())
        })
    }

    fn label(&self, key: KeyRef) -> String {
        format!("{}/{}/v{}", self.namespace, key.role.as_str(), key.version.get())
    }

    /// The key named by `label` if this object's label is in our namespace and well formed.
    fn parse_label(&self, label: &str) -> Option<KeyRef> {
        let rest = label.strip_prefix(self.namespace.as_str())?.strip_prefix('/')?;
        let (role, version) = rest.split_once('/')?;
        let role = role.parse::<KeyRole>().ok()?;
        let version = KeyVersion::new(version.strip_prefix('v')?.parse::<u8>().ok()?).ok()?;
        let key = KeyRef { role, version };
        (self.label(key) == label).then_some(key)
    }

    /// The one object of `class` labelled for `key`, or `KeyNotHeld`.
    fn held(&self, session: &Session, key: KeyRef, class: ObjectClass) -> Result<ObjectHandle, HsmError> {
        let label = self.label(key);
        let template = [Attribute::Token(true), Attribute::Class(class), Attribute::Label(label.clone().into_bytes())];
        match find(session, &template, 1, &label)?.as_slice() {
            [] => Err(HsmError::KeyNotHeld(key)),
            [handle] => Ok(*handle),
            _ => Err(HsmError::Pkcs11(format!(
                "the token holds more than one {class} object labelled `{label}`; remove the duplicate before using it"
            ))),
        }
    }

    /// Every key of the namespace with the object that holds it (the secret key, or the
    /// private half of a key pair).
    fn keys(&self, session: &Session) -> Result<BTreeMap<KeyRef, ObjectHandle>, HsmError> {
        let mut keys = BTreeMap::new();
        let prefix = format!("{}/", self.namespace);
        for class in [ObjectClass::SECRET_KEY, ObjectClass::PRIVATE_KEY] {
            let template = [Attribute::Token(true), Attribute::Class(class)];
            let handles = find(session, &template, TOKEN_KEYS_SCANNED_MAX, "keys")?;
            if handles.len() > TOKEN_KEYS_SCANNED_MAX {
                return Err(HsmError::Pkcs11(format!(
                    "the token holds more than {TOKEN_KEYS_SCANNED_MAX} {class} objects; \
                     give fare collection a token of its own"
                )));
            }
            for handle in handles {
                let Some(label) = read_label(session, handle)? else { continue };
                let Some(key) = self.parse_label(&label) else {
                    if label.starts_with(&prefix) {
                        tracing::warn!(%label, "ignoring a token object in our namespace with a malformed label");
                    }
                    continue;
                };
                let expected = if key.role.kind() == KeyKind::EcdsaP256 {
                    ObjectClass::PRIVATE_KEY
                } else {
                    ObjectClass::SECRET_KEY
                };
                if class != expected {
                    continue;
                }
                if keys.insert(key, handle).is_some() {
                    return Err(HsmError::Pkcs11(format!(
                        "the token holds two objects labelled `{label}`; remove the duplicate before using it"
                    )));
                }
            }
        }
        Ok(keys)
    }

    fn inventory_in(&self, session: &Session) -> Result<Vec<KeyInfo>, HsmError> {
        let mut checked = Vec::new();
        for (key, handle) in self.keys(session)? {
            let kcv = match key.role.kind() {
                KeyKind::Aes128 => Kcv::from_prefix(&token_sign(session, &Mechanism::AesCMac, handle, &[0; 16], key)?),
                KeyKind::HmacSha256 => {
                    Kcv::from_prefix(&token_sign(session, &Mechanism::Sha256Hmac, handle, &[0; 32], key)?)
                }
                KeyKind::EcdsaP256 => {
                    let public = self.verifying_key_in(session, key).map_err(|e| match e {
                        HsmError::KeyNotHeld(_) => {
                            HsmError::Pkcs11(format!("the token holds the private key of {key} but not its public key"))
                        }
                        other => other,
                    })?;
                    Kcv::from_prefix(&sha2::Sha256::digest(public.to_sec1()))
                }
            };
            checked.push((key, kcv));
        }
        Ok(with_states(checked))
    }

    fn verifying_key_in(&self, session: &Session, key: KeyRef) -> Result<VerifyingKey, HsmError> {
        let handle = self.held(session, key, ObjectClass::PUBLIC_KEY)?;
        let attributes = session
            .get_attributes(handle, &[AttributeType::EcPoint])
            .map_err(|e| pkcs11_error(format_args!("reading the public key of {key}"), e))?;
        let point = attributes
            .into_iter()
            .find_map(|attribute| match attribute {
                Attribute::EcPoint(point) => Some(point),
                _ => None,
            })
            .ok_or_else(|| HsmError::Pkcs11(format!("the token gave no CKA_EC_POINT for {key}")))?;
        Ok(VerifyingKey::from_sec1(unwrap_ec_point(&point))?)
    }

    fn generate(&self, session: &Session, key: KeyRef) -> Result<(), HsmError> {
        let label = self.label(key).into_bytes();
        let id = key_id(key);
        let generated = match key.role.kind() {
            KeyKind::Aes128 => session
                .generate_key(&Mechanism::AesKeyGen, &secret_template(label, id, KeyType::AES, AES128_KEY_BYTES))
                .map(|_| ()),
            KeyKind::HmacSha256 => session
                .generate_key(
                    &Mechanism::GenericSecretKeyGen,
                    &secret_template(label, id, KeyType::GENERIC_SECRET, HMAC_SHA256_KEY_BYTES),
                )
                .map(|_| ()),
            KeyKind::EcdsaP256 => session
                .generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &ec_public_template(label.clone(), id.clone()),
                    &ec_private_template(label, id),
                )
                .map(|_| ()),
        };
        generated.map_err(|e| pkcs11_error(format_args!("generating {key} in the token"), e))
    }
}

impl Hsm for Pkcs11Hsm {
    fn describe(&self) -> String {
        format!(
            "PKCS#11 token `{}` (slot {}) via {}, namespace `{}`",
            self.token_label,
            self.slot.id(),
            self.module.display(),
            self.namespace
        )
    }

    fn inventory(&self) -> Result<Vec<KeyInfo>, HsmError> {
        let session = self.session()?;
        self.inventory_in(&session)
    }

    fn derive_card_key(&self, key: KeyRef, input: &DiversificationInput) -> Result<SecretKey16, HsmError> {
        require_kind(key, KeyKind::Aes128, "card key diversification")?;
        let session = self.session()?;
        let handle = self.held(&session, key, ObjectClass::SECRET_KEY)?;
        // Plain CMAC over 0x01 || M equals AN10922 because M is at least 16 bytes (see
        // `diversify`), so the token computes the card key without the master leaving it.
        let mac = token_sign(&session, &Mechanism::AesCMac, handle, &input.cmac_message(), key)?;
        let mut card_key = Zeroizing::new([0_u8; BLOCK_BYTES]);
        copy_exact(card_key.as_mut(), &mac, key, "CMAC")?;
        Ok(card_key)
    }

    fn hmac(&self, key: KeyRef, message: &[u8]) -> Result<[u8; 32], HsmError> {
        require_kind(key, KeyKind::HmacSha256, "HMAC")?;
        let session = self.session()?;
        let handle = self.held(&session, key, ObjectClass::SECRET_KEY)?;
        let mac = token_sign(&session, &Mechanism::Sha256Hmac, handle, message, key)?;
        let mut out = [0_u8; HMAC_SHA256_BYTES];
        copy_exact(&mut out, &mac, key, "HMAC")?;
        Ok(out)
    }

    fn sign(&self, key: KeyRef, message: &[u8]) -> Result<Signature, HsmError> {
        require_kind(key, KeyKind::EcdsaP256, "signing")?;
        let session = self.session()?;
        let handle = self.held(&session, key, ObjectClass::PRIVATE_KEY)?;
        // CKM_ECDSA signs a digest: hash here so every token gives SHA-256, whatever
        // combined mechanisms (CKM_ECDSA_SHA256) it may or may not have.
        let digest = sha2::Sha256::digest(message);
        let raw = token_sign(&session, &Mechanism::Ecdsa, handle, digest.as_slice(), key)?;
        let mut signature = Signature([0_u8; SIGNATURE_BYTES]);
        copy_exact(&mut signature.0, &raw, key, "ECDSA signature")?;
        // Check the token's work before anything is published under it: a signature that
        // does not verify (a fault, or a public key that is not this private key's) is an
        // error here rather than a rejected list on every validator.
        self.verifying_key_in(&session, key)?
            .verify(message, &signature)
            .map_err(|_| HsmError::Pkcs11(format!("the token's signature with {key} does not verify")))?;
        Ok(signature)
    }

    fn verifying_key(&self, key: KeyRef) -> Result<VerifyingKey, HsmError> {
        require_kind(key, KeyKind::EcdsaP256, "signature verification")?;
        let session = self.session()?;
        self.verifying_key_in(&session, key)
    }
}

impl KeyAdmin for Pkcs11Hsm {
    fn rotate(&mut self, role: KeyRole) -> Result<KeyInfo, HsmError> {
        // One lock for reading the versions and generating, so two rotations through this
        // HSM cannot pick the same version.
        let session = self.session()?;
        let version = next_version(&self.inventory_in(&session)?, role)?;
        let key = KeyRef { role, version };
        self.generate(&session, key)?;
        let info =
            self.inventory_in(&session)?.into_iter().find(|info| info.key == key).ok_or(HsmError::KeyNotHeld(key))?;
        tracing::info!(key = %info.key, kcv = %info.kcv, namespace = %self.namespace, "generated key in PKCS#11 token");
        Ok(info)
    }

    fn retire(&mut self, key: KeyRef) -> Result<(), HsmError> {
        let session = self.session()?;
        let held = self.inventory_in(&session)?;
        let active = held
            .iter()
            .filter(|info| info.key.role == key.role)
            .map(|info| info.key)
            .max()
            .ok_or(HsmError::RoleNotHeld(key.role))?;
        if active == key {
            return Err(HsmError::RetireActive(key));
        }
        if !held.iter().any(|info| info.key == key) {
            return Err(HsmError::KeyNotHeld(key));
        }
        // The secret or private object first: once it is gone the key is no longer held,
        // even if destroying the public half then fails.
        let classes = match key.role.kind() {
            KeyKind::EcdsaP256 => vec![ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY],
            KeyKind::Aes128 | KeyKind::HmacSha256 => vec![ObjectClass::SECRET_KEY],
        };
        for class in classes {
            let handle = self.held(&session, key, class)?;
            session.destroy_object(handle).map_err(|e| pkcs11_error(format_args!("destroying {key} ({class})"), e))?;
        }
        tracing::info!(%key, namespace = %self.namespace, "destroyed retired key in PKCS#11 token");
        Ok(())
    }
}

/// The initialised context for `module`, loading and initialising it on first use.
fn initialised_context(module: &Path) -> Result<Pkcs11, HsmError> {
    let mut contexts = CONTEXTS.lock().map_err(|_| HsmError::Pkcs11("the module registry lock is poisoned".into()))?;
    if let Some(context) = contexts.get(module) {
        return Ok(context.clone());
    }
    let context =
        Pkcs11::new(module).map_err(|e| pkcs11_error(format_args!("loading module {}", module.display()), e))?;
    // OS locking: the module may be called from several threads (each Pkcs11Hsm has its own
    // session), so it must use its own mutexes.
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Already initialised by someone else in this process (another path to the same
        // library, or another crate): the module is usable as it is.
        Ok(()) | Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(pkcs11_error(format_args!("initialising module {}", module.display()), e)),
    }
    contexts.insert(module.to_path_buf(), context.clone());
    Ok(context)
}

/// The slot of the one token labelled `token_label`.
fn find_slot(context: &Pkcs11, token_label: &str) -> Result<Slot, HsmError> {
    let slots = context.get_slots_with_token().map_err(|e| pkcs11_error("listing slots", e))?;
    let mut labels = Vec::with_capacity(slots.len());
    let mut matching = Vec::new();
    for slot in slots {
        let info = context
            .get_token_info(slot)
            .map_err(|e| pkcs11_error(format_args!("reading the token in slot {}", slot.id()), e))?;
        if info.label() == token_label {
            matching.push(slot);
        }
        labels.push(format!("`{}`", info.label()));
    }
    match matching.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(HsmError::Pkcs11(format!(
            "no token labelled `{token_label}`; tokens present: {}",
            if labels.is_empty() { "none".to_owned() } else { labels.join(", ") }
        ))),
        _ => Err(HsmError::Pkcs11(format!(
            "{} tokens are labelled `{token_label}`; relabel them so the label names one token",
            matching.len()
        ))),
    }
}

/// Refuses a token that lacks a mechanism this backend uses.
fn check_mechanisms(context: &Pkcs11, slot: Slot, token_label: &str) -> Result<(), HsmError> {
    let offered = context
        .get_mechanism_list(slot)
        .map_err(|e| pkcs11_error(format_args!("listing the mechanisms of token `{token_label}`"), e))?;
    let missing: Vec<String> = REQUIRED_MECHANISMS
        .iter()
        .filter(|(mechanism, _)| !offered.contains(mechanism))
        .map(|(mechanism, purpose)| format!("{mechanism} (for {purpose})"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(HsmError::Pkcs11(format!("token `{token_label}` lacks {}", missing.join(", "))))
    }
}

fn check_namespace(namespace: &str) -> Result<(), HsmError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if namespace.is_empty() || namespace.len() > NAMESPACE_BYTES_MAX || !namespace.chars().all(allowed) {
        return Err(HsmError::Pkcs11(format!(
            "namespace `{namespace}` must be 1 to {NAMESPACE_BYTES_MAX} of A-Z a-z 0-9 . _ -"
        )));
    }
    Ok(())
}

/// Objects matching `template`: at most `limit + 1`, so a caller can tell "more than
/// `limit`" without the search running over the whole token.
fn find(session: &Session, template: &[Attribute], limit: usize, what: &str) -> Result<Vec<ObjectHandle>, HsmError> {
    let searching = |e| pkcs11_error(format_args!("searching the token for {what}"), e);
    session
        .iter_objects(template)
        .map_err(searching)?
        .take(limit.saturating_add(1))
        .collect::<Result<_, _>>()
        .map_err(searching)
}

/// The label of an object, if it has a readable UTF-8 one.
fn read_label(session: &Session, handle: ObjectHandle) -> Result<Option<String>, HsmError> {
    let attributes = session
        .get_attributes(handle, &[AttributeType::Label])
        .map_err(|e| pkcs11_error("reading an object label", e))?;
    Ok(attributes.into_iter().find_map(|attribute| match attribute {
        Attribute::Label(bytes) => String::from_utf8(bytes).ok(),
        _ => None,
    }))
}

/// `C_Sign` with `mechanism`; the output is wiped on drop, since a CMAC output is a card key.
fn token_sign(
    session: &Session,
    mechanism: &Mechanism<'_>,
    handle: ObjectHandle,
    data: &[u8],
    key: KeyRef,
) -> Result<Zeroizing<Vec<u8>>, HsmError> {
    session
        .sign(mechanism, handle, data)
        .map(Zeroizing::new)
        .map_err(|e| pkcs11_error(format_args!("{} with {key}", mechanism.mechanism_type()), e))
}

/// Copies a token output into a fixed-size buffer, refusing any other length.
fn copy_exact(out: &mut [u8], output: &[u8], key: KeyRef, what: &str) -> Result<(), HsmError> {
    if output.len() != out.len() {
        return Err(HsmError::Pkcs11(format!(
            "the token returned {} bytes of {what} with {key}, expected {}",
            output.len(),
            out.len()
        )));
    }
    for (slot, byte) in out.iter_mut().zip(output) {
        *slot = *byte;
    }
    Ok(())
}

/// `CKA_ID`: the role's position in [`KeyRole::ALL`] and the version, so objects can be
/// told apart by tools that show ids rather than labels.
fn key_id(key: KeyRef) -> Vec<u8> {
    let role = KeyRole::ALL.iter().position(|role| *role == key.role).and_then(|i| u8::try_from(i).ok());
    vec![role.unwrap_or(u8::MAX), key.version.get()]
}

/// A secret key that only MACs: usable for `C_Sign`/`C_Verify` and nothing else, never
/// readable or wrappable, and never made readable later.
fn secret_template(label: Vec<u8>, id: Vec<u8>, key_type: KeyType, value_bytes: Ulong) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::ValueLen(value_bytes),
        Attribute::Label(label),
        Attribute::Id(id),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]
}

/// The public half of a list-signing key: verifies only. Private to the logged-in user too,
/// because labels list which keys exist.
fn ec_public_template(label: Vec<u8>, id: Vec<u8>) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(EC_PARAMS_PRIME256V1.to_vec()),
        Attribute::Label(label),
        Attribute::Id(id),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Modifiable(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
    ]
}

/// The private half of a list-signing key: signs only, never readable or wrappable.
fn ec_private_template(label: Vec<u8>, id: Vec<u8>) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::Label(label),
        Attribute::Id(id),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]
}

/// The point inside `CKA_EC_POINT`. PKCS#11 v2.40 §2.3.3 makes it a DER OCTET STRING around
/// `04 || X || Y`; some tokens return the bare point, which is accepted too. The lengths tell
/// the two apart (67 bytes wrapped, 65 bare), and `VerifyingKey::from_sec1` checks the rest.
fn unwrap_ec_point(attribute: &[u8]) -> &[u8] {
    match attribute {
        [DER_OCTET_STRING, length, point @ ..]
            if usize::from(*length) == point.len() && attribute.len() != UNCOMPRESSED_POINT_BYTES =>
        {
            point
        }
        _ => attribute,
    }
}

/// A PKCS#11 failure with what was being done. Nothing here ever holds the PIN.
fn pkcs11_error(doing: impl fmt::Display, error: CryptokiError) -> HsmError {
    HsmError::Pkcs11(format!("{doing}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_is_unwrapped_from_its_octet_string_or_taken_bare() {
        let mut point = vec![0x04];
        point.extend([0x3F; 64]); // X starts with 0x3F = 63: would look like a DER length
        let mut wrapped = vec![DER_OCTET_STRING, 65];
        wrapped.extend(&point);
        assert_eq!(unwrap_ec_point(&wrapped), point.as_slice());
        assert_eq!(unwrap_ec_point(&point), point.as_slice());
    }

    #[test]
    fn namespaces_are_checked() {
        assert!(check_namespace("smartticket-prod.1_a").is_ok());
        for bad in ["", "a/b", "a b", "é", &"x".repeat(NAMESPACE_BYTES_MAX + 1)] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_debug_hides_the_pin() {
        let config = Pkcs11Config {
            module: "/lib/p11.so".into(),
            token_label: "t".into(),
            pin: SecretString::from("4711-secret".to_owned()),
            namespace: "n".into(),
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("4711"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn key_ids_name_role_and_version() {
        let key = KeyRef { role: KeyRole::Debit, version: KeyVersion::FIRST };
        assert_eq!(key_id(key), vec![2, 1]);
    }
}
