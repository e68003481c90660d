//! Bearer tokens: `sts_…` for login sessions, `stk_…` for partner API keys. Each is 256
//! random bits in base64url after the prefix; the server keeps only a SHA-256 digest, so a
//! stolen database yields no usable token. The prefix lets a leaked token be recognised
//! by secret scanners and tells the server which table to look in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::IdentityError;

/// Prefix of login session tokens.
pub const SESSION_TOKEN_PREFIX: &str = "sts_";
/// Prefix of partner API keys.
pub const API_KEY_PREFIX: &str = "stk_";
/// Random bytes per token: 256 bits, beyond any guessing.
const TOKEN_RANDOM_BYTES: usize = 32;
/// Base64url characters for 32 bytes without padding.
const TOKEN_BODY_CHARS: usize = 43;
/// Characters of an API key kept to tell keys apart (`stk_` + 6).
pub(crate) const API_KEY_SHOWN_CHARS: usize = 10;

/// A freshly made token: the text for the client (once) and the digest to store.
pub(crate) struct NewToken {
    pub text: SecretString,
    pub digest: Vec<u8>,
}

/// Makes a token with `prefix`.
pub(crate) fn generate(prefix: &str) -> Result<NewToken, IdentityError> {
    let mut random = zeroize::Zeroizing::new([0_u8; TOKEN_RANDOM_BYTES]);
    getrandom::fill(random.as_mut()).map_err(|e| IdentityError::Hashing(format!("no randomness: {e}")))?;
    let text = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random.as_ref()));
    let digest = digest(&text);
    Ok(NewToken { text: SecretString::from(text), digest })
}

/// The stored digest of a token's text.
pub(crate) fn digest(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// Which kind of token a bearer credential is, judged by shape alone (no database).
pub(crate) enum TokenKind {
    Session,
    ApiKey,
}

/// Checks the shape of a presented token; anything malformed is refused before a lookup.
pub(crate) fn classify(token: &SecretString) -> Result<TokenKind, IdentityError> {
    let text = token.expose_secret();
    let (kind, body) = if let Some(body) = text.strip_prefix(SESSION_TOKEN_PREFIX) {
        (TokenKind::Session, body)
    } else if let Some(body) = text.strip_prefix(API_KEY_PREFIX) {
        (TokenKind::ApiKey, body)
    } else {
        return Err(IdentityError::TokenInvalid);
    };
    let well_formed =
        body.len() == TOKEN_BODY_CHARS && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed { Ok(kind) } else { Err(IdentityError::TokenInvalid) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_classify_and_differ() {
        let a = generate(SESSION_TOKEN_PREFIX).unwrap();
        let b = generate(SESSION_TOKEN_PREFIX).unwrap();
        assert_ne!(a.text.expose_secret(), b.text.expose_secret());
        assert!(matches!(classify(&a.text), Ok(TokenKind::Session)));
        let key = generate(API_KEY_PREFIX).unwrap();
        assert!(matches!(classify(&key.text), Ok(TokenKind::ApiKey)));
        assert_eq!(key.digest, digest(key.text.expose_secret()));
        assert_eq!(key.digest.len(), 32);
    }

    #[test]
    fn malformed_tokens_are_refused_without_lookup() {
        for bad in ["", "sts_", "sts_short", "Bearer x", "stk_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"] {
            assert!(classify(&SecretString::from(bad.to_owned())).is_err(), "{bad:?}");
        }
    }
}
