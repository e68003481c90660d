//! The device's API token: one bearer token from the device configuration. Only its SHA-256
//! is kept in memory, and a presented token is hashed and compared in constant time, so
//! neither the comparison's timing nor a length difference tells an attacker anything.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::problem::Problem;

/// Shortest token accepted: 16 characters, so a token cannot be guessed online. The CLI
/// generates 64 hex digits (256 bits).
pub const TOKEN_BYTES_MIN: usize = 16;
/// Longest token accepted (and longest `Authorization` value read).
pub const TOKEN_BYTES_MAX: usize = 256;

/// Why a token was refused as the device's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Shorter than [`TOKEN_BYTES_MIN`] or longer than [`TOKEN_BYTES_MAX`].
    #[error("the API token must be {TOKEN_BYTES_MIN} to {TOKEN_BYTES_MAX} characters long")]
    Length,
    /// Holds a character that is not visible ASCII (it travels in an HTTP header).
    #[error("the API token must be visible ASCII characters only")]
    Characters,
}

/// The token that authorises API calls, kept as its hash.
#[derive(Clone)]
pub struct ApiToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ApiToken(…)")
    }
}

impl ApiToken {
    /// The device's token.
    pub fn new(token: &str) -> Result<ApiToken, TokenError> {
        if !(TOKEN_BYTES_MIN..=TOKEN_BYTES_MAX).contains(&token.len()) {
            return Err(TokenError::Length);
        }
        if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(TokenError::Characters);
        }
        Ok(ApiToken { digest: digest(token.as_bytes()) })
    }

    /// Whether `presented` is the token.
    #[must_use]
    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(digest(presented).ct_eq(&self.digest))
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Proof that the request carried the device's token. Extract it first in every handler
/// that needs it, so an unauthenticated request is refused before its body is read.
pub struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|value| value.as_bytes())
            .filter(|value| value.len() <= TOKEN_BYTES_MAX + 7)
            .and_then(|value| value.strip_prefix(b"Bearer ").or_else(|| value.strip_prefix(b"bearer ")));
        match presented {
            Some(token) if state.token.matches(token) => Ok(Authorized),
            _ => Err(Problem::unauthenticated()),
        }
    }
}
