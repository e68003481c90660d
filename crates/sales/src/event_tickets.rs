//! Tickets for events sold with the fare (a festival, a match): the ticket server named in
//! the catalogue admits the holder by a code. Codes are made here, unguessable and easy to
//! read out; a server that issues its own codes plugs in where [`issue`] is called.

use smartticket_catalog::Quote;

use crate::SalesError;

/// Characters of the random part of a code: 60 bits, beyond guessing at a gate.
const CODE_CHARS: usize = 12;

/// A fresh ticket code for `quote`'s product: `EVT-<product>-<12 Crockford base32>`.
pub(crate) fn issue(quote: &Quote) -> Result<String, SalesError> {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut random = [0_u8; CODE_CHARS];
    smartticket_crypto::random_bytes(&mut random).map_err(|e| SalesError::Conflict(e.to_string()))?;
    let code: String =
        random.iter().map(|b| char::from(ALPHABET.get(usize::from(b & 0x1F)).copied().unwrap_or(b'0'))).collect();
    Ok(format!("EVT-{}-{code}", quote.product.to_uppercase()))
}
