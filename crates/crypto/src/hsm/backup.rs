//! M-of-N backup of a software keystore with Shamir secret sharing (`vsss-rs`, GF(256)).
//!
//! The keystore's inner document is sealed with AES-256-GCM under a fresh random data key;
//! only that 32-byte data key is split into shares. Every share file carries the same sealed
//! blob and one share, so any `threshold` files rebuild the data key, open the blob, and
//! rebuild the keystore; fewer files are refused before any arithmetic (and would in any
//! case fail the GCM tag). Share files carry the key check values, so a custodian can see
//! what a share protects without being able to use it.

use std::collections::BTreeSet;
use std::path::Path;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use zeroize::Zeroizing;

use super::HsmError;
use super::soft::{Inner, SoftHsm, read_private_file, write_private_file_atomically};
use crate::hsm::Hsm;
use crate::keys::KeyInfo;

/// The format tag of share files.
const SHARE_FORMAT: &str = "smartticket-key-share/1";
/// At most 255 shares (GF(256) identifiers) and at least 2 needed to rebuild.
pub const SHARES_MAX: u8 = 255;

/// One custodian's share file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareFile {
    format: String,
    /// Shares needed to restore.
    pub threshold: u8,
    /// Shares made.
    pub shares: u8,
    /// This share's number, 1-based.
    pub index: u8,
    /// What the backup protects (roles, versions, check values; no material).
    pub keys: Vec<KeyInfo>,
    /// SHA-256 of the sealed blob, naming the backup so shares of different backups are
    /// not mixed.
    pub backup_id: String,
    share: String,
    nonce: String,
    sealed: String,
}

/// Splits `hsm` into `shares` share files, any `threshold` of which restore it.
pub fn split(hsm: &SoftHsm, threshold: u8, shares: u8) -> Result<Vec<ShareFile>, HsmError> {
    if threshold < 2 || shares < threshold {
        return Err(HsmError::Shares(format!(
            "need 2 ≤ threshold ≤ shares ≤ {SHARES_MAX}, got threshold {threshold} of {shares}"
        )));
    }
    let inner = Zeroizing::new(serde_json::to_vec(&hsm.to_inner()).map_err(|e| HsmError::Format(e.to_string()))?);
    let mut data_key = Zeroizing::new([0_u8; 32]);
    let mut nonce = [0_u8; 12];
    crate::random_bytes(data_key.as_mut())?;
    crate::random_bytes(&mut nonce)?;
    let cipher = Aes256Gcm::new(&(*data_key).into());
    let sealed = cipher
        .encrypt(&nonce.into(), Payload { msg: &inner, aad: SHARE_FORMAT.as_bytes() })
        .map_err(|_| HsmError::Format("sealing the backup failed".into()))?;
    let backup_id = hex::encode(sha2::Sha256::digest(&sealed));
    let parts =
        vsss_rs::Gf256::split_bytes(usize::from(threshold), usize::from(shares), data_key.as_ref(), rand::rng())
            .map_err(|e| HsmError::Shares(format!("splitting failed: {e:?}")))?;
    let keys = hsm.inventory()?;
    parts
        .into_iter()
        .enumerate()
        .map(|(position, part)| {
            let part = Zeroizing::new(part);
            let index = u8::try_from(position + 1).map_err(|_| HsmError::Shares("too many shares".into()))?;
            Ok(ShareFile {
                format: SHARE_FORMAT.into(),
                threshold,
                shares,
                index,
                keys: keys.clone(),
                backup_id: backup_id.clone(),
                share: hex::encode(part.as_slice()),
                nonce: B64.encode(nonce),
                sealed: B64.encode(&sealed),
            })
        })
        .collect()
}

/// Rebuilds the keystore from at least `threshold` shares of one backup.
pub fn restore(files: &[ShareFile]) -> Result<SoftHsm, HsmError> {
    let first = files.first().ok_or_else(|| HsmError::Shares("no share files given".into()))?;
    if files.iter().any(|f| f.format != SHARE_FORMAT) {
        return Err(HsmError::Format("a file is not a SmartTicket key share".into()));
    }
    if files.iter().any(|f| f.backup_id != first.backup_id || f.threshold != first.threshold) {
        return Err(HsmError::Shares("the shares belong to different backups".into()));
    }
    let distinct: BTreeSet<u8> = files.iter().map(|f| f.index).collect();
    if distinct.len() < usize::from(first.threshold) {
        return Err(HsmError::Shares(format!(
            "this backup needs {} different shares, {} given",
            first.threshold,
            distinct.len()
        )));
    }
    let parts: Vec<Vec<u8>> = files
        .iter()
        .filter(|f| distinct.contains(&f.index))
        .map(|f| hex::decode(&f.share).map_err(|_| HsmError::Format(format!("share {} is not hex", f.index))))
        .collect::<Result<_, _>>()?;
    let parts = Zeroizing::new(parts);
    let data_key = Zeroizing::new(
        vsss_rs::Gf256::combine_bytes(parts.as_slice())
            .map_err(|e| HsmError::Shares(format!("combining failed: {e:?}")))?,
    );
    let key: [u8; 32] =
        data_key.as_slice().try_into().map_err(|_| HsmError::Shares("the combined key has the wrong length".into()))?;
    let key = Zeroizing::new(key);
    let nonce: [u8; 12] = B64
        .decode(&first.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| HsmError::Format("nonce".into()))?;
    let sealed = B64.decode(&first.sealed).map_err(|_| HsmError::Format("sealed data".into()))?;
    if hex::encode(sha2::Sha256::digest(&sealed)) != first.backup_id {
        return Err(HsmError::Shares("the sealed backup does not match its id".into()));
    }
    let cipher = Aes256Gcm::new(&(*key).into());
    let plain = Zeroizing::new(
        cipher
            .decrypt(&nonce.into(), Payload { msg: &sealed, aad: SHARE_FORMAT.as_bytes() })
            .map_err(|_| HsmError::Shares("the shares do not open the backup (damaged or mismatched)".into()))?,
    );
    let inner: Inner = serde_json::from_slice(&plain).map_err(|e| HsmError::Format(format!("backup: {e}")))?;
    SoftHsm::from_inner(&inner)
}

/// Writes a share file (mode 0600).
pub fn write_share(path: &Path, share: &ShareFile) -> Result<(), HsmError> {
    let bytes = serde_json::to_vec_pretty(share).map_err(|e| HsmError::Format(e.to_string()))?;
    write_private_file_atomically(path, &bytes)
}

/// Reads a share file (which must be private to its owner).
pub fn read_share(path: &Path) -> Result<ShareFile, HsmError> {
    let bytes = read_private_file(path)?;
    serde_json::from_slice(&bytes).map_err(|e| HsmError::Format(format!("{}: {e}", path.display())))
}
