//! Email addresses as account identifiers: validated, bounded, and compared in a
//! normalised form so `Jana@Example.cz` and `jana@example.cz` are one account.

use email_address::{EmailAddress, Options};

use crate::IdentityError;

/// RFC 5321 limits a forward path to 256 octets including the angle brackets.
pub const EMAIL_CHARS_MAX: usize = 254;

/// A valid email address, as typed and as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    display: String,
    normalized: String,
}

impl Email {
    /// Validates an address. The whole address is lower-cased for comparison: RFC 5321
    /// lets the local part be case-sensitive, but no mail system people use treats it so,
    /// and two accounts differing only in case would confuse everyone.
    pub fn parse(input: &str) -> Result<Email, IdentityError> {
        let display = input.trim();
        if display.is_empty() {
            return Err(IdentityError::invalid("email", "is required"));
        }
        if display.chars().count() > EMAIL_CHARS_MAX {
            return Err(IdentityError::invalid("email", format!("is longer than {EMAIL_CHARS_MAX} characters")));
        }
        let options = Options::default().with_required_tld().without_display_text().without_domain_literal();
        EmailAddress::parse_with_options(display, options)
            .map_err(|e| IdentityError::invalid("email", format!("is not a valid email address ({e})")))?;
        Ok(Email { display: display.to_owned(), normalized: display.to_lowercase() })
    }

    /// The address as the person typed it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The form accounts are matched on.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        let email = Email::parse("  Jana.Novakova@Example.CZ ").unwrap();
        assert_eq!(email.as_str(), "Jana.Novakova@Example.CZ");
        assert_eq!(email.normalized(), "jana.novakova@example.cz");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in
            ["", "   ", "jana", "jana@", "@example.cz", "jana@localhost", "Jana <jana@example.cz>", "a@[127.0.0.1]"]
        {
            assert!(Email::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let long = format!("{}@example.cz", "a".repeat(300));
        let err = Email::parse(&long).unwrap_err().to_string();
        assert!(err.contains("longer than 254"), "{err}");
    }
}
