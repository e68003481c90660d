//! The software HSM: keys in process memory, at rest in a keystore file sealed with
//! AES-256-GCM under a key-encryption key derived from a passphrase by argon2id.
//!
//! File layout (JSON): a header (format, argon2id parameters and salt, GCM nonce) that is
//! also the GCM associated data, so altering a parameter fails authentication instead of
//! weakening the seal; and the sealed inner document (the keys). The file must be private
//! to its owner (mode 0600): [`SoftHsm::open`] refuses a file others can read, and
//! [`SoftHsm::save`] writes through a temporary file, fsyncs, and renames, so a crash never
//! leaves half a keystore.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Hsm, HsmError, KeyAdmin, next_version, require_kind, with_states};
use crate::cmac::{CmacKey, SecretKey16};
use crate::diversify::DiversificationInput;
use crate::keys::{Kcv, KeyInfo, KeyKind, KeyRef, KeyRole};
use crate::sign::{Signature, SigningKey, VerifyingKey};
use crate::token::hmac_sha256;

/// The format tag of keystore files this version writes and reads.
const KEYSTORE_FORMAT: &str = "smartticket-keystore/1";
/// Largest keystore file read: a full keystore is a few kilobytes.
const KEYSTORE_BYTES_MAX: u64 = 1024 * 1024;
/// Salt and nonce sizes.
const SALT_BYTES: usize = 16;
const NONCE_BYTES: usize = 12;

/// The argon2id cost of deriving the key-encryption key. Higher than login hashing: it runs
/// once per process start, and a stolen keystore file is worth far more than a password
/// hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub passes: u32,
    /// Lanes.
    pub lanes: u32,
}

impl Default for SealCost {
    /// 64 MiB, 3 passes, 1 lane (RFC 9106 §4 second recommended option: 64 MiB, t=3).
    fn default() -> Self {
        Self { memory_kib: 64 * 1024, passes: 3, lanes: 1 }
    }
}

impl SealCost {
    /// The lowest cost accepted when opening a file, so a tampered header cannot make
    /// the seal trivially cheap to attack (it is also authenticated).
    const FLOOR: SealCost = SealCost { memory_kib: 8 * 1024, passes: 1, lanes: 1 };

    fn kek(&self, passphrase: &SecretString, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, HsmError> {
        let params = argon2::Params::new(self.memory_kib, self.passes, self.lanes, Some(32))
            .map_err(|e| HsmError::Format(format!("argon2 parameters: {e}")))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut kek = Zeroizing::new([0_u8; 32]);
        argon
            .hash_password_into(passphrase.expose_secret().as_bytes(), salt, kek.as_mut())
            .map_err(|e| HsmError::Format(format!("argon2: {e}")))?;
        Ok(kek)
    }
}

/// Key material of one key.
// The AES variant carries its expanded key schedule (the point: diversification skips the
// key expansion); a keystore holds a handful of keys, so the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Material {
    Aes { raw: Zeroizing<[u8; 16]>, cmac: CmacKey },
    Hmac(Zeroizing<[u8; 32]>),
    Ecdsa(SigningKey),
}

impl Material {
    fn generate(kind: KeyKind) -> Result<Material, HsmError> {
        Ok(match kind {
            KeyKind::Aes128 => {
                let mut raw = Zeroizing::new([0_u8; 16]);
                crate::random_bytes(raw.as_mut())?;
                Material::aes(raw)
            }
            KeyKind::HmacSha256 => {
                let mut raw = Zeroizing::new([0_u8; 32]);
                crate::random_bytes(raw.as_mut())?;
                Material::Hmac(raw)
            }
            KeyKind::EcdsaP256 => Material::Ecdsa(SigningKey::generate()?),
        })
    }

    fn aes(raw: Zeroizing<[u8; 16]>) -> Material {
        let cmac = CmacKey::new(&raw);
        Material::Aes { raw, cmac }
    }

    fn kcv(&self) -> Result<Kcv, HsmError> {
        Ok(match self {
            Material::Aes { cmac, .. } => Kcv::from_prefix(&cmac.mac(&[0; 16])),
            Material::Hmac(raw) => Kcv::from_prefix(&hmac_sha256(raw.as_ref(), &[0; 32])?),
            Material::Ecdsa(key) => {
                use sha2::Digest;
                Kcv::from_prefix(&sha2::Sha256::digest(key.verifying_key().to_sec1()))
            }
        })
    }

    fn export(&self) -> Zeroizing<String> {
        Zeroizing::new(match self {
            Material::Aes { raw, .. } => hex::encode(raw.as_ref()),
            Material::Hmac(raw) => hex::encode(raw.as_ref()),
            Material::Ecdsa(key) => hex::encode(key.to_bytes().as_ref()),
        })
    }

    fn import(kind: KeyKind, text: &str) -> Result<Material, HsmError> {
        let bytes = Zeroizing::new(hex::decode(text).map_err(|_| HsmError::Format("key material is not hex".into()))?);
        let wrong = || HsmError::Format(format!("key material has {} bytes, wrong for {kind:?}", bytes.len()));
        Ok(match kind {
            KeyKind::Aes128 => Material::aes(Zeroizing::new(bytes.as_slice().try_into().map_err(|_| wrong())?)),
            KeyKind::HmacSha256 => Material::Hmac(Zeroizing::new(bytes.as_slice().try_into().map_err(|_| wrong())?)),
            KeyKind::EcdsaP256 => {
                let scalar: Zeroizing<[u8; 32]> = Zeroizing::new(bytes.as_slice().try_into().map_err(|_| wrong())?);
                Material::Ecdsa(SigningKey::from_bytes(&scalar)?)
            }
        })
    }
}

struct Entry {
    material: Material,
    kcv: Kcv,
}

/// Keys held in this process.
pub struct SoftHsm {
    keys: BTreeMap<KeyRef, Entry>,
    origin: String,
}

impl std::fmt::Debug for SoftHsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftHsm").field("origin", &self.origin).field("keys", &self.keys.keys()).finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    kdf: KdfHeader,
    nonce: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfHeader {
    algorithm: String,
    #[serde(flatten)]
    cost: SealCost,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedFile {
    #[serde(flatten)]
    header: Header,
    sealed: String,
}

/// The inner, secret document: also what a Shamir backup protects.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Inner {
    keys: Vec<InnerKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InnerKey {
    key: KeyRef,
    kcv: Kcv,
    material: String,
}

impl Drop for InnerKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.material);
    }
}

impl SoftHsm {
    /// A keystore with version 1 of each of `roles`, freshly generated.
    pub fn generate(roles: &[KeyRole]) -> Result<SoftHsm, HsmError> {
        let mut hsm = SoftHsm { keys: BTreeMap::new(), origin: "new software keystore".into() };
        for role in roles {
            hsm.rotate(*role)?;
        }
        Ok(hsm)
    }

    /// A keystore holding only `roles` (all their versions): for a validator's secure-module
    /// profile, which must never hold credit or transaction-MAC keys.
    pub fn restricted_to(&self, roles: &[KeyRole]) -> SoftHsm {
        let keys = self
            .keys
            .iter()
            .filter(|(key, _)| roles.contains(&key.role))
            .map(|(key, entry)| (*key, Entry { material: entry.material.clone(), kcv: entry.kcv }))
            .collect();
        SoftHsm { keys, origin: format!("{} (restricted to {roles:?})", self.origin) }
    }

    /// Opens a keystore file with its passphrase.
    pub fn open(path: &Path, passphrase: &SecretString) -> Result<SoftHsm, HsmError> {
        let text = read_private_file(path)?;
        let file: SealedFile =
            serde_json::from_slice(&text).map_err(|e| HsmError::Format(format!("{}: {e}", path.display())))?;
        let inner = unseal(&file, passphrase)?;
        let mut hsm = SoftHsm::from_inner(&inner)?;
        hsm.origin = format!("software keystore {}", path.display());
        Ok(hsm)
    }

    /// Seals the keystore under `passphrase` and writes it to `path` atomically, mode 0600.
    pub fn save(&self, path: &Path, passphrase: &SecretString, cost: SealCost) -> Result<(), HsmError> {
        let inner = Zeroizing::new(serde_json::to_vec(&self.to_inner()).map_err(|e| HsmError::Format(e.to_string()))?);
        let mut salt = [0_u8; SALT_BYTES];
        let mut nonce = [0_u8; NONCE_BYTES];
        crate::random_bytes(&mut salt)?;
        crate::random_bytes(&mut nonce)?;
        let header = Header {
            format: KEYSTORE_FORMAT.into(),
            kdf: KdfHeader { algorithm: "argon2id".into(), cost, salt: B64.encode(salt) },
            nonce: B64.encode(nonce),
        };
        let aad = serde_json::to_vec(&header).map_err(|e| HsmError::Format(e.to_string()))?;
        let kek = cost.kek(passphrase, &salt)?;
        let cipher = Aes256Gcm::new(&(*kek).into());
        let sealed = cipher
            .encrypt(&nonce.into(), Payload { msg: &inner, aad: &aad })
            .map_err(|_| HsmError::Format("sealing failed".into()))?;
        let file = SealedFile { header, sealed: B64.encode(sealed) };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| HsmError::Format(e.to_string()))?;
        write_private_file_atomically(path, &bytes)
    }

    pub(crate) fn to_inner(&self) -> Inner {
        let keys = self
            .keys
            .iter()
            .map(|(key, entry)| InnerKey { key: *key, kcv: entry.kcv, material: (*entry.material.export()).clone() })
            .collect();
        Inner { keys }
    }

    pub(crate) fn from_inner(inner: &Inner) -> Result<SoftHsm, HsmError> {
        let mut keys = BTreeMap::new();
        for stored in &inner.keys {
            let material = Material::import(stored.key.role.kind(), &stored.material)?;
            let kcv = material.kcv()?;
            if kcv != stored.kcv {
                return Err(HsmError::Format(format!("{} does not match its check value", stored.key)));
            }
            keys.insert(stored.key, Entry { material, kcv });
        }
        Ok(SoftHsm { keys, origin: "restored software keystore".into() })
    }

    fn entry(&self, key: KeyRef) -> Result<&Entry, HsmError> {
        self.keys.get(&key).ok_or(HsmError::KeyNotHeld(key))
    }
}

fn unseal(file: &SealedFile, passphrase: &SecretString) -> Result<Inner, HsmError> {
    let header = &file.header;
    if header.format != KEYSTORE_FORMAT {
        return Err(HsmError::Format(format!("unknown format `{}`", header.format)));
    }
    let cost = header.kdf.cost;
    let floor = SealCost::FLOOR;
    if header.kdf.algorithm != "argon2id"
        || cost.memory_kib < floor.memory_kib
        || cost.passes < floor.passes
        || cost.memory_kib > 4 * 1024 * 1024
        || cost.passes > 64
        || cost.lanes == 0
        || cost.lanes > 16
    {
        return Err(HsmError::Format("key derivation parameters out of range".into()));
    }
    let salt = B64.decode(&header.kdf.salt).map_err(|_| HsmError::Format("salt".into()))?;
    let nonce: [u8; NONCE_BYTES] = B64
        .decode(&header.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| HsmError::Format("nonce".into()))?;
    let sealed = B64.decode(&file.sealed).map_err(|_| HsmError::Format("sealed data".into()))?;
    let aad = serde_json::to_vec(header).map_err(|e| HsmError::Format(e.to_string()))?;
    let kek = cost.kek(passphrase, &salt)?;
    let cipher = Aes256Gcm::new(&(*kek).into());
    let plain = Zeroizing::new(
        cipher.decrypt(&nonce.into(), Payload { msg: &sealed, aad: &aad }).map_err(|_| HsmError::BadPassphrase)?,
    );
    serde_json::from_slice(&plain).map_err(|e| HsmError::Format(format!("inner document: {e}")))
}

/// Reads a file that must be private to its owner and small.
pub(crate) fn read_private_file(path: &Path) -> Result<Vec<u8>, HsmError> {
    let io = |source| HsmError::Io { path: path.display().to_string(), source };
    let metadata = std::fs::metadata(path).map_err(io)?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(HsmError::Permissions { path: path.display().to_string(), mode });
    }
    if metadata.len() > KEYSTORE_BYTES_MAX {
        return Err(HsmError::Format(format!("{} is larger than {KEYSTORE_BYTES_MAX} bytes", path.display())));
    }
    std::fs::read(path).map_err(io)
}

/// Writes `bytes` to `path` (mode 0600) through a temporary file, fsync and rename.
pub(crate) fn write_private_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), HsmError> {
    let io = |source| HsmError::Io { path: path.display().to_string(), source };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let temporary = dir.join(format!(
        ".{}.tmp",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "keystore".into())
    ));
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(io)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

impl Hsm for SoftHsm {
    fn describe(&self) -> String {
        self.origin.clone()
    }

    fn inventory(&self) -> Result<Vec<KeyInfo>, HsmError> {
        Ok(with_states(self.keys.iter().map(|(key, entry)| (*key, entry.kcv)).collect()))
    }

    fn derive_card_key(&self, key: KeyRef, input: &DiversificationInput) -> Result<SecretKey16, HsmError> {
        require_kind(key, KeyKind::Aes128, "card key diversification")?;
        match &self.entry(key)?.material {
            Material::Aes { cmac, .. } => Ok(Zeroizing::new(cmac.mac(&input.cmac_message()))),
            _ => Err(HsmError::WrongKind { key, operation: "card key diversification" }),
        }
    }

    fn hmac(&self, key: KeyRef, message: &[u8]) -> Result<[u8; 32], HsmError> {
        require_kind(key, KeyKind::HmacSha256, "HMAC")?;
        match &self.entry(key)?.material {
            Material::Hmac(raw) => Ok(hmac_sha256(raw.as_ref(), message)?),
            _ => Err(HsmError::WrongKind { key, operation: "HMAC" }),
        }
    }

    fn sign(&self, key: KeyRef, message: &[u8]) -> Result<Signature, HsmError> {
        require_kind(key, KeyKind::EcdsaP256, "signing")?;
        match &self.entry(key)?.material {
            Material::Ecdsa(signing) => Ok(signing.sign(message)),
            _ => Err(HsmError::WrongKind { key, operation: "signing" }),
        }
    }

    fn verifying_key(&self, key: KeyRef) -> Result<VerifyingKey, HsmError> {
        require_kind(key, KeyKind::EcdsaP256, "signature verification")?;
        match &self.entry(key)?.material {
            Material::Ecdsa(signing) => Ok(signing.verifying_key()),
            _ => Err(HsmError::WrongKind { key, operation: "signature verification" }),
        }
    }
}

impl KeyAdmin for SoftHsm {
    fn rotate(&mut self, role: KeyRole) -> Result<KeyInfo, HsmError> {
        let version = next_version(&self.inventory()?, role)?;
        let material = Material::generate(role.kind())?;
        let kcv = material.kcv()?;
        let key = KeyRef { role, version };
        self.keys.insert(key, Entry { material, kcv });
        self.inventory()?.into_iter().find(|info| info.key == key).ok_or(HsmError::KeyNotHeld(key))
    }

    fn retire(&mut self, key: KeyRef) -> Result<(), HsmError> {
        if self.active(key.role)? == key {
            return Err(HsmError::RetireActive(key));
        }
        self.keys.remove(&key).map(|_| ()).ok_or(HsmError::KeyNotHeld(key))
    }
}

/// A software keystore tied to its file: every rotation or retirement is sealed and
/// written back before it is reported done.
pub struct FileKeystore {
    hsm: SoftHsm,
    path: std::path::PathBuf,
    passphrase: SecretString,
    cost: SealCost,
}

impl std::fmt::Debug for FileKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeystore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl FileKeystore {
    /// Opens an existing keystore file.
    pub fn open(path: &Path, passphrase: SecretString, cost: SealCost) -> Result<FileKeystore, HsmError> {
        let hsm = SoftHsm::open(path, &passphrase)?;
        Ok(FileKeystore { hsm, path: path.to_path_buf(), passphrase, cost })
    }

    /// Creates a keystore file holding version 1 of `roles`; refuses to replace an existing
    /// file (keys are never overwritten by accident).
    pub fn create(
        path: &Path,
        passphrase: SecretString,
        cost: SealCost,
        roles: &[KeyRole],
    ) -> Result<FileKeystore, HsmError> {
        let mut hsm = SoftHsm::generate(roles)?;
        hsm.origin = format!("software keystore {}", path.display());
        FileKeystore::adopt(path, passphrase, cost, hsm)
    }

    /// Writes `hsm` as a new keystore file (after a restore); refuses to replace a file.
    pub fn adopt(
        path: &Path,
        passphrase: SecretString,
        cost: SealCost,
        mut hsm: SoftHsm,
    ) -> Result<FileKeystore, HsmError> {
        if path.exists() {
            return Err(HsmError::Format(format!("{} already exists; keys are never overwritten", path.display())));
        }
        hsm.origin = format!("software keystore {}", path.display());
        hsm.save(path, &passphrase, cost)?;
        Ok(FileKeystore { hsm, path: path.to_path_buf(), passphrase, cost })
    }

    /// The keys in memory.
    pub fn soft(&self) -> &SoftHsm {
        &self.hsm
    }
}

impl Hsm for FileKeystore {
    fn describe(&self) -> String {
        self.hsm.describe()
    }
    fn inventory(&self) -> Result<Vec<KeyInfo>, HsmError> {
        self.hsm.inventory()
    }
    fn derive_card_key(&self, key: KeyRef, input: &DiversificationInput) -> Result<SecretKey16, HsmError> {
        self.hsm.derive_card_key(key, input)
    }
    fn hmac(&self, key: KeyRef, message: &[u8]) -> Result<[u8; 32], HsmError> {
        self.hsm.hmac(key, message)
    }
    fn sign(&self, key: KeyRef, message: &[u8]) -> Result<Signature, HsmError> {
        self.hsm.sign(key, message)
    }
    fn verifying_key(&self, key: KeyRef) -> Result<VerifyingKey, HsmError> {
        self.hsm.verifying_key(key)
    }
}

impl KeyAdmin for FileKeystore {
    fn rotate(&mut self, role: KeyRole) -> Result<KeyInfo, HsmError> {
        let mut next = SoftHsm::from_inner(&self.hsm.to_inner())?;
        let info = next.rotate(role)?;
        next.origin = self.hsm.origin.clone();
        next.save(&self.path, &self.passphrase, self.cost)?;
        self.hsm = next;
        Ok(info)
    }

    fn retire(&mut self, key: KeyRef) -> Result<(), HsmError> {
        let mut next = SoftHsm::from_inner(&self.hsm.to_inner())?;
        next.retire(key)?;
        next.origin = self.hsm.origin.clone();
        next.save(&self.path, &self.passphrase, self.cost)?;
        self.hsm = next;
        Ok(())
    }
}
