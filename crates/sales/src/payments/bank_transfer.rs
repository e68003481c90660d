//! Bank transfers: the payer quotes a variable symbol (the Czech `VS`, up to 10 digits),
//! and an imported ISO 20022 camt.053 bank statement approves every pending transfer whose
//! symbol, amount and currency match a credit entry. Importing the same statement again
//! changes nothing: entries are recognised by the bank's reference.
//!
//! The statement is untrusted input: the parser streams it (quick-xml), bounds its size,
//! depth, entry count and text lengths, and reads only the fields it needs.

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde::Serialize;
use smartticket_core::{Currency, Money};
use utoipa::ToSchema;

/// The gateway name stored with bank-transfer payments.
pub const NAME: &str = "bank-transfer";
/// Largest statement accepted, in bytes.
pub const STATEMENT_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most entries in one statement.
pub const ENTRIES_MAX: usize = 100_000;
/// Deepest element nesting read (camt.053 needs about 12).
const DEPTH_MAX: usize = 32;
/// Longest text of one element kept.
const TEXT_CHARS_MAX: usize = 1024;

/// Why a statement could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bank statement, byte {position}: {why}")]
pub struct StatementError {
    /// Where in the file.
    pub position: u64,
    /// What is wrong.
    pub why: String,
}

/// One entry of a statement, as far as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatementEntry {
    /// The bank's reference for the entry (`AcctSvcrRef`, else `NtryRef`, else its position).
    pub reference: String,
    /// The amount.
    pub amount: Money,
    /// Money in (`CRDT`) rather than out.
    pub credit: bool,
    /// Booked (`BOOK`) rather than pending.
    pub booked: bool,
    /// The variable symbol found in the structured reference, the unstructured remittance
    /// text (`VS 1234`), or the end-to-end id.
    pub variable_symbol: Option<String>,
}

#[derive(Default)]
struct Draft {
    amount: Option<String>,
    currency: Option<String>,
    credit: Option<bool>,
    booked: Option<bool>,
    account_servicer_ref: Option<String>,
    entry_ref: Option<String>,
    structured_ref: Option<String>,
    unstructured: Option<String>,
    end_to_end: Option<String>,
}

/// Digits of a variable symbol, without leading zeros (banks pad it).
fn normalise_vs(digits: &str) -> Option<String> {
    let digits = digits.trim();
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    Some(if trimmed.is_empty() { "0".into() } else { trimmed.to_owned() })
}

/// A `VS` marker followed by digits anywhere in free text: `VS:123`, `VS 123`, `/VS/123`.
fn vs_in_text(text: &str) -> Option<String> {
    let upper = text.to_uppercase();
    let at = upper.find("VS")?;
    let rest = upper.get(at + 2..)?;
    let digits: String =
        rest.trim_start_matches([':', '/', ' ', '.']).chars().take_while(char::is_ascii_digit).collect();
    normalise_vs(&digits)
}

impl Draft {
    fn finish(self, position: usize) -> Result<StatementEntry, String> {
        let currency = self.currency.ok_or("an entry amount has no currency")?;
        let currency = Currency::from_code(&currency).map_err(|e| e.to_string())?;
        let amount = Money::parse_major(self.amount.as_deref().ok_or("an entry has no amount")?.trim(), currency)
            .map_err(|e| e.to_string())?;
        let variable_symbol = self
            .structured_ref
            .as_deref()
            .and_then(normalise_vs)
            .or_else(|| self.unstructured.as_deref().and_then(vs_in_text))
            .or_else(|| self.end_to_end.as_deref().and_then(vs_in_text));
        Ok(StatementEntry {
            reference: self.account_servicer_ref.or(self.entry_ref).unwrap_or_else(|| format!("entry-{position}")),
            amount,
            credit: self.credit.ok_or("an entry has no CdtDbtInd")?,
            booked: self.booked.unwrap_or(true),
            variable_symbol,
        })
    }
}

/// Reads the entries of a camt.053 statement.
pub fn parse_camt053(xml: &str) -> Result<Vec<StatementEntry>, StatementError> {
    if xml.len() > STATEMENT_BYTES_MAX {
        return Err(StatementError { position: 0, why: format!("larger than {STATEMENT_BYTES_MAX} bytes") });
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut entries = Vec::new();
    let mut draft: Option<Draft> = None;
    let mut saw_statement = false;
    loop {
        let position = reader.buffer_position();
        let fail = |why: String| StatementError { position, why };
        match reader.read_event().map_err(|e| fail(e.to_string()))? {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_owned();
                if path.len() >= DEPTH_MAX {
                    return Err(fail(format!("nested deeper than {DEPTH_MAX} elements")));
                }
                saw_statement |= name == "BkToCstmrStmt";
                if name == "Ntry" {
                    if entries.len() >= ENTRIES_MAX {
                        return Err(fail(format!("more than {ENTRIES_MAX} entries")));
                    }
                    draft = Some(Draft::default());
                }
                if name == "Amt"
                    && path.last().map(String::as_str) == Some("Ntry")
                    && let Some(draft) = draft.as_mut()
                {
                    let currency = start
                        .try_get_attribute("Ccy")
                        .map_err(|e| fail(e.to_string()))?
                        .map(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map(|v| v.into_owned()))
                        .transpose()
                        .map_err(|e| fail(e.to_string()))?;
                    draft.currency = currency;
                }
                path.push(name);
            }
            Event::End(_) => {
                if path.pop().as_deref() == Some("Ntry")
                    && let Some(done) = draft.take()
                {
                    entries.push(done.finish(entries.len()).map_err(fail)?);
                }
            }
            Event::Text(text) => {
                let Some(draft) = draft.as_mut() else { continue };
                let value: String = text.xml_content(XmlVersion::Implicit1_0).chars().take(TEXT_CHARS_MAX).collect();
                let last = path.last().map(String::as_str);
                let parent = path.len().checked_sub(2).and_then(|i| path.get(i)).map(String::as_str);
                match (parent, last) {
                    (Some("Ntry"), Some("Amt")) => draft.amount = Some(value),
                    (Some("Ntry"), Some("CdtDbtInd")) => draft.credit = Some(value == "CRDT"),
                    (Some("Ntry"), Some("Sts")) => draft.booked = Some(value == "BOOK"),
                    (Some("Sts"), Some("Cd")) => draft.booked = Some(value == "BOOK"),
                    (Some("Ntry"), Some("AcctSvcrRef")) => draft.account_servicer_ref = Some(value),
                    (Some("Ntry"), Some("NtryRef")) => draft.entry_ref = Some(value),
                    (Some("CdtrRefInf"), Some("Ref")) => draft.structured_ref = Some(value),
                    (Some("RmtInf"), Some("Ustrd")) => draft.unstructured = Some(value),
                    (Some("Refs"), Some("EndToEndId")) => draft.end_to_end = Some(value),
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_statement {
        return Err(StatementError { position: 0, why: "not a camt.053 statement (no BkToCstmrStmt)".into() });
    }
    Ok(entries)
}

/// A fresh variable symbol: 10 digits, no leading zero.
pub fn new_variable_symbol() -> Result<String, smartticket_crypto::CryptoError> {
    let mut random = [0_u8; 8];
    smartticket_crypto::random_bytes(&mut random)?;
    let value = 1_000_000_000 + u64::from_le_bytes(random) % 9_000_000_000;
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>STMT-2026-11-21</MsgId><CreDtTm>2026-11-21T18:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>1</Id>
      <Acct><Id><IBAN>CZ6508000000192000145399</IBAN></Id><Ccy>CZK</Ccy></Acct>
      <Ntry>
        <NtryRef>1</NtryRef>
        <Amt Ccy="CZK">550.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>2026-11-21</Dt></BookgDt>
        <AcctSvcrRef>BANK-REF-0001</AcctSvcrRef>
        <NtryDtls><TxDtls>
          <RmtInf><Strd><CdtrRefInf><Ref>0012345678</Ref></CdtrRefInf></Strd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="CZK">120.5</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <AcctSvcrRef>BANK-REF-0002</AcctSvcrRef>
        <NtryDtls><TxDtls><RmtInf><Ustrd>Jizdenka VS: 9876543210 dekujeme</Ustrd></RmtInf></TxDtls></NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="CZK">99.00</Amt>
        <CdtDbtInd>DBIT</CdtDbtInd>
        <Sts>BOOK</Sts>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>"#;

    #[test]
    fn reads_credits_with_their_variable_symbols() {
        let entries = parse_camt053(SAMPLE).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].reference, "BANK-REF-0001");
        assert_eq!(entries[0].amount, Money::new(55_000, Currency::CZK));
        assert_eq!(entries[0].variable_symbol.as_deref(), Some("12345678"), "leading zeros dropped");
        assert!(entries[0].credit && entries[0].booked);
        assert_eq!(entries[1].amount, Money::new(12_050, Currency::CZK));
        assert_eq!(entries[1].variable_symbol.as_deref(), Some("9876543210"));
        assert!(!entries[2].credit);
        assert_eq!(entries[2].reference, "entry-2");
    }

    #[test]
    fn refuses_what_is_not_a_statement() {
        assert!(parse_camt053("<html/>").is_err());
        assert!(parse_camt053("not xml at all <").is_err());
        let no_currency = SAMPLE.replace(r#" Ccy="CZK">550.00"#, ">550.00");
        assert!(parse_camt053(&no_currency).unwrap_err().why.contains("no currency"));
        let float = SAMPLE.replace("550.00", "5.5e2");
        assert!(parse_camt053(&float).is_err(), "amounts are decimals, never floats");
        let deep = format!("<BkToCstmrStmt>{}{}</BkToCstmrStmt>", "<a>".repeat(40), "</a>".repeat(40));
        assert!(parse_camt053(&deep).unwrap_err().why.contains("deeper"));
    }

    #[test]
    fn variable_symbols_are_generated_and_recognised() {
        let vs = new_variable_symbol().unwrap();
        assert_eq!(vs.len(), 10);
        assert!(!vs.starts_with('0'));
        assert_eq!(vs_in_text("platba /VS/0000042 ok"), Some("42".into()));
        assert_eq!(vs_in_text("no symbol here"), None);
        assert_eq!(normalise_vs("12345678901"), None, "more than 10 digits");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in ".{0,400}") {
            let _ = parse_camt053(&text);
            let _ = vs_in_text(&text);
        }

        #[test]
        fn never_panics_on_damaged_statements(cut in 0..SAMPLE.len(), junk in ".{0,20}") {
            let damaged = format!("{}{}", SAMPLE.get(..cut).unwrap_or(""), junk);
            let _ = parse_camt053(&damaged);
        }
    }
}
