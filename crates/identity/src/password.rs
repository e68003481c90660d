//! Password policy and hashing.
//!
//! Policy: at least 10 characters and a zxcvbn strength score of 3 or more ("safely
//! unguessable", > 10^10 guesses), judged with the person's email and name as known
//! inputs; at most 256 bytes, which bounds both zxcvbn's work and the argon2 input.
//! Hashing: argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane), run on
//! the blocking thread pool so a login never stalls other requests.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::IdentityError;

/// Shortest password accepted, in characters.
pub const PASSWORD_CHARS_MIN: usize = 10;
/// Longest password accepted, in bytes.
pub const PASSWORD_BYTES_MAX: usize = 256;
/// zxcvbn score a password must reach (0–4).
pub const PASSWORD_SCORE_MIN: u8 = 3;

/// Checks a new password against the policy. `known_inputs` are strings an attacker would
/// try first (the email, the name).
pub fn check_strength(password: &SecretString, known_inputs: &[&str]) -> Result<(), IdentityError> {
    let password = password.expose_secret();
    if password.is_empty() {
        return Err(IdentityError::WeakPassword("is required".into()));
    }
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(IdentityError::WeakPassword(format!("must be at most {PASSWORD_BYTES_MAX} bytes")));
    }
    if password.chars().count() < PASSWORD_CHARS_MIN {
        return Err(IdentityError::WeakPassword(format!("must be at least {PASSWORD_CHARS_MIN} characters")));
    }
    // zxcvbn matches each known input as one dictionary word, so also give it the parts
    // people actually reuse: `jana.novakova@example.cz` → `jana`, `novakova`, `example`.
    let mut words: Vec<&str> = known_inputs.to_vec();
    words.extend(
        known_inputs
            .iter()
            .flat_map(|input| input.split(|c: char| !c.is_alphanumeric()))
            .filter(|part| part.chars().count() >= 3),
    );
    words.extend(known_inputs.iter().filter_map(|input| input.split('@').next()));
    let entropy = zxcvbn::zxcvbn(password, &words);
    if u8::from(entropy.score()) < PASSWORD_SCORE_MIN {
        let hint = entropy
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()).or_else(|| f.suggestions().first().map(|s| s.to_string())))
            .unwrap_or_else(|| "add more words or characters".into());
        return Err(IdentityError::WeakPassword(format!("is too easy to guess: {hint}")));
    }
    Ok(())
}

/// The cost parameters of argon2id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingCost {
    /// Memory per hash, in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub passes: u32,
    /// Parallel lanes.
    pub lanes: u32,
}

impl Default for HashingCost {
    /// OWASP Password Storage Cheat Sheet, argon2id minimum: m=19 MiB, t=2, p=1.
    fn default() -> Self {
        Self { memory_kib: 19 * 1024, passes: 2, lanes: 1 }
    }
}

/// Hashes and verifies passwords with fixed argon2id parameters.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, verified against when an account does not exist, so a
    /// failed login takes the same time whether or not the email is registered.
    decoy_hash: String,
}

impl PasswordHasher {
    /// A hasher with the given cost; fails if the parameters are out of argon2's range.
    pub fn new(cost: HashingCost) -> Result<Self, IdentityError> {
        let params = Params::new(cost.memory_kib, cost.passes, cost.lanes, None)
            .map_err(|e| IdentityError::Hashing(format!("invalid argon2 parameters: {e}")))?;
        let mut decoy = [0_u8; 32];
        getrandom::fill(&mut decoy).map_err(|e| IdentityError::Hashing(format!("no randomness: {e}")))?;
        let decoy_hash = hash_with(&params, &decoy)?;
        Ok(Self { params, decoy_hash })
    }

    /// The PHC string (`$argon2id$v=19$m=…`) of `password` with a fresh random salt.
    pub async fn hash(&self, password: &SecretString) -> Result<String, IdentityError> {
        let params = self.params.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash_with(&params, password.expose_secret().as_bytes()))
            .await
            .map_err(|e| IdentityError::Hashing(format!("hashing task failed: {e}")))?
    }

    /// True when `password` matches `stored`; a stored hash that does not parse is an
    /// error, not a mismatch, so corruption is noticed.
    pub async fn verify(&self, password: &SecretString, stored: Option<&str>) -> Result<bool, IdentityError> {
        let stored = stored.unwrap_or(&self.decoy_hash).to_owned();
        let password = password.clone();
        tokio::task::spawn_blocking(move || verify_with(password.expose_secret().as_bytes(), &stored))
            .await
            .map_err(|e| IdentityError::Hashing(format!("verification task failed: {e}")))?
    }
}

fn hash_with(params: &Params, password: &[u8]) -> Result<String, IdentityError> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|e| IdentityError::Hashing(e.to_string()))
}

fn verify_with(password: &[u8], stored: &str) -> Result<bool, IdentityError> {
    // Parameters come from the stored string, so hashes made under an older policy keep
    // verifying after the cost is raised.
    match Argon2::default().verify_password(password, stored) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(IdentityError::Hashing(format!("stored hash unusable: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn policy_refuses_short_long_and_guessable_passwords() {
        for weak in ["", "short", "password123", "qwertyuiop", "jana.novakova1"] {
            let result = check_strength(&secret(weak), &["jana.novakova@example.cz", "Jana Nováková"]);
            assert!(matches!(result, Err(IdentityError::WeakPassword(_))), "{weak:?} must be refused");
        }
        let long = "x".repeat(PASSWORD_BYTES_MAX + 1);
        assert!(check_strength(&secret(&long), &[]).is_err());
        assert!(check_strength(&secret("correct horse battery staple"), &[]).is_ok());
        assert!(check_strength(&secret("Tramvaj-jede-na-Hlavní-nádraží"), &[]).is_ok());
    }

    #[tokio::test]
    async fn hashes_verify_and_mismatch() {
        let hasher = PasswordHasher::new(HashingCost::default()).unwrap();
        let hash = hasher.hash(&secret("correct horse battery staple")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify(&secret("correct horse battery staple"), Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&secret("correct horse battery stapler"), Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&secret("anything"), None).await.unwrap(), "the decoy matches nothing");
        assert!(hasher.verify(&secret("x"), Some("not a hash")).await.is_err());
        let second = hasher.hash(&secret("correct horse battery staple")).await.unwrap();
        assert_ne!(hash, second, "every hash has its own salt");
    }
}
