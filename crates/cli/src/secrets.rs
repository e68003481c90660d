//! Where passphrases and PINs come from: configuration or environment, a file, or a
//! terminal prompt, in that order. New passphrases must pass the same strength policy as
//! passwords. Nothing here is ever logged.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::commands::UsageError;
use crate::config::Secret;

/// Longest secret file read: a passphrase is one line.
const SECRET_FILE_BYTES_MAX: u64 = 4096;

/// Reads the first line of a secret file, refusing files others can read.
pub fn read_secret_file(path: &Path) -> anyhow::Result<SecretString> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        anyhow::bail!("{} is readable by other users; run `chmod 600 {}`", path.display(), path.display());
    }
    if metadata.len() > SECRET_FILE_BYTES_MAX {
        anyhow::bail!("{} is too large to be a passphrase file", path.display());
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        anyhow::bail!("{} is empty", path.display());
    }
    Ok(SecretString::from(line.to_owned()))
}

/// An existing secret: from `value`, else the file, else a prompt.
pub fn existing(what: &str, value: &Secret, file: &str, variable: &str) -> anyhow::Result<SecretString> {
    if let Some(secret) = value.get() {
        return Ok(secret.clone());
    }
    if !file.is_empty() {
        return read_secret_file(Path::new(file));
    }
    if std::io::stdin().is_terminal() {
        return Ok(SecretString::from(rpassword::prompt_password(format!("{what}: "))?));
    }
    Err(UsageError(format!("no {what}: set {variable}, name a file in the configuration, or run in a terminal")).into())
}

/// A new secret (a keystore being created): from `value`, the file, or a prompt asked
/// twice; it must pass the password policy.
pub fn new(what: &str, value: &Secret, file: &str, variable: &str) -> anyhow::Result<SecretString> {
    let secret = if value.get().is_some() || !file.is_empty() || !std::io::stdin().is_terminal() {
        existing(what, value, file, variable)?
    } else {
        let first = SecretString::from(rpassword::prompt_password(format!("New {what}: "))?);
        let second = SecretString::from(rpassword::prompt_password("Repeat it: ")?);
        if first.expose_secret() != second.expose_secret() {
            return Err(UsageError(format!("the two {what}s differ")).into());
        }
        first
    };
    smartticket_identity::password::check_strength(&secret, &["smartticket", "keystore"])
        .map_err(|e| UsageError(format!("{what}: {e}")))?;
    Ok(secret)
}
