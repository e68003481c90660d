//! READ RECORD over the AFL (EMV 4.4 Book 3 §6.5.11, §10.2) and the card data a fare token
//! needs from what was read: the PAN from tag 5A or the track 2 equivalent data (57), the
//! expiry from 5F24 or track 2, and the PAN sequence number (5F34).
//!
//! Record bytes hold the PAN, so every buffer and parsed tree here is wiped when dropped.

use zeroize::{Zeroize, Zeroizing};

use smartticket_crypto::token::{Expiry, Pan, PanError};

use crate::apdu::Command;
use crate::tlv::{self, Tag, Tlv, Value};

use super::error::{EmvError, Step};

/// READ RECORD (Book 3 §6.5.11): CLA 00, INS B2, P1 the record, P2 the SFI in the five high
/// bits with `100` ("P1 is a record number") in the low three.
pub(crate) fn read_record_command(entry_sfi: u8, record: u8) -> Command {
    Command::new(0x00, 0xB2, record, (entry_sfi << 3) | 0x04).le(crate::apdu::SHORT_LE_MAX)
}

/// The highest SFI whose records must be `70` templates (EMV-defined files, Book 3 §10.2);
/// records of SFI 11–30 are the issuer's own format, kept only if they are templates.
const SFI_EMV_RECORDS_MAX: u8 = 10;

/// Parsed TLV objects that are wiped when dropped: they may hold the PAN.
#[derive(Debug, Default)]
pub(crate) struct WipedTlvs(pub(crate) Vec<Tlv>);

impl Drop for WipedTlvs {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Zeroes every primitive value in `tlvs`, nested ones included, without recursion.
pub(crate) fn wipe(tlvs: &mut [Tlv]) {
    let mut open: Vec<&mut Tlv> = tlvs.iter_mut().collect();
    while let Some(Tlv { value, .. }) = open.pop() {
        match value {
            Value::Primitive(bytes) => bytes.zeroize(),
            Value::Constructed(children) => open.extend(children.iter_mut()),
        }
    }
}

/// Turns the answer to READ RECORD of `entry`'s SFI into the record template to keep, or
/// `None` for a proprietary record (SFI 11–30) that is not a `70` template.
pub(crate) fn parse_record(sfi: u8, record: u8, data: &[u8]) -> Result<Option<Tlv>, EmvError> {
    let misbehaved = |why: String| EmvError::CardMisbehaved { step: Step::ReadRecord { sfi, record }, why };
    let parsed = tlv::parse_all(data).map(WipedTlvs);
    let template = match parsed {
        Ok(mut tlvs) => match tlvs.0.as_mut_slice() {
            [template] if template.tag == Tag(0x70) => Some(std::mem::replace(template, Tlv::primitive(Tag(0x70), []))),
            _ => None,
        },
        Err(error) if sfi <= SFI_EMV_RECORDS_MAX => return Err(misbehaved(format!("malformed record: {error}"))),
        Err(_) => None,
    };
    match template {
        None if sfi <= SFI_EMV_RECORDS_MAX => Err(misbehaved("the record is not one 70 template".to_owned())),
        other => Ok(other),
    }
}

/// The card data a fare token needs.
pub(crate) struct CardData {
    pub(crate) pan: Pan,
    pub(crate) expiry: Expiry,
    pub(crate) pan_sequence_number: Option<u8>,
}

/// Finds the PAN, expiry and PAN sequence number in `templates` (the GPO response template
/// and the records, in the order read). The PAN comes from the first 5A, else from the first
/// track 2 equivalent data (57); every other 5A or 57 on the card must carry the same PAN,
/// or someone is mixing two cards. The expiry comes from the first 5F24 (YYMMDD), else from
/// track 2 (YYMM).
pub(crate) fn card_data(templates: &[Tlv]) -> Result<CardData, EmvError> {
    let mut from_5a: Vec<Zeroizing<String>> = Vec::new();
    let mut from_track_2: Vec<(Zeroizing<String>, [u8; 2])> = Vec::new();
    for tlv in tlv::depth_first(templates) {
        match (tlv.tag, tlv.value_bytes()) {
            (Tag(0x5A), Some(bytes)) => from_5a.push(pan_digits(bytes)?),
            (Tag(0x57), Some(bytes)) => from_track_2.push(track_2(bytes)?),
            _ => {}
        }
    }
    let mut readings = from_5a.iter().chain(from_track_2.iter().map(|(digits, _)| digits));
    let Some(digits) = readings.next() else {
        return Err(EmvError::MissingTag { step: Step::CardData, tag: Tag(0x5A) });
    };
    if readings.any(|other| other.as_str() != digits.as_str()) {
        return Err(EmvError::PanMismatch);
    }
    let pan = Pan::parse(digits).map_err(|error| match error {
        PanError::Luhn => EmvError::LuhnFailed,
        PanError::Length(count) => EmvError::PanMalformed { why: format!("{count} digits, not 12-19") },
        other => EmvError::PanMalformed { why: other.to_string() },
    })?;
    let expiry = match tlv::find(templates, Tag(0x5F24)).and_then(Tlv::value_bytes) {
        Some(yymmdd) => expiry_yymmdd(yymmdd)?,
        None => match from_track_2.first() {
            Some((_, [year, month])) => expiry(*year, *month, "track 2")?,
            None => return Err(EmvError::MissingTag { step: Step::CardData, tag: Tag(0x5F24) }),
        },
    };
    let pan_sequence_number = match tlv::find(templates, Tag(0x5F34)).and_then(Tlv::value_bytes) {
        // n2 in one byte; a value that is not two decimal digits is dropped, not fatal: the
        // sequence number is informative and takes no part in the token.
        Some(&[byte]) => bcd_byte(byte),
        _ => None,
    };
    Ok(CardData { pan, expiry, pan_sequence_number })
}

/// The digits of a compressed numeric (cn) PAN: BCD digits, padded at the end with `F`
/// nibbles (Book 3 Annex A, tag 5A).
fn pan_digits(bytes: &[u8]) -> Result<Zeroizing<String>, EmvError> {
    let mut digits = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    let mut padding = false;
    for nibble in nibbles(bytes) {
        match nibble {
            0..=9 if !padding => digits.push(char::from(b'0' + nibble)),
            0x0F => padding = true,
            _ => return Err(EmvError::PanMalformed { why: "tag 5A is not digits padded with F".to_owned() }),
        }
    }
    Ok(digits)
}

/// PAN digits and expiry (YY, MM) from track 2 equivalent data (tag 57): PAN, separator
/// `D`, YYMM, service code, discretionary data, padded with `F` (ISO/IEC 7813 track 2 in
/// BCD, Book 3 Annex A).
fn track_2(bytes: &[u8]) -> Result<(Zeroizing<String>, [u8; 2]), EmvError> {
    let malformed = || EmvError::PanMalformed { why: "tag 57 is not PAN, D, YYMM in BCD".to_owned() };
    let mut digits = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    let mut nibbles = nibbles(bytes);
    loop {
        match nibbles.next() {
            Some(nibble @ 0..=9) => digits.push(char::from(b'0' + nibble)),
            Some(0x0D) => break,
            _ => return Err(malformed()),
        }
    }
    let mut date = [0_u8; 4];
    for slot in &mut date {
        *slot = nibbles.next().filter(|nibble| *nibble <= 9).ok_or_else(malformed)?;
    }
    let [y1, y2, m1, m2] = date;
    Ok((digits, [y1 * 10 + y2, m1 * 10 + m2]))
}

/// The expiry from 5F24 (n6, YYMMDD).
fn expiry_yymmdd(bytes: &[u8]) -> Result<Expiry, EmvError> {
    let out_of_range = |why: &str| EmvError::ExpiryOutOfRange { why: format!("tag 5F24: {why}") };
    let &[year, month, day] = bytes else {
        return Err(out_of_range(&format!("{} bytes, not 3", bytes.len())));
    };
    let (Some(year), Some(month), Some(day)) = (bcd_byte(year), bcd_byte(month), bcd_byte(day)) else {
        return Err(out_of_range("not decimal digits"));
    };
    if !(1..=31).contains(&day) {
        return Err(out_of_range(&format!("day {day}")));
    }
    expiry(year, month, "tag 5F24")
}

fn expiry(year: u8, month: u8, source: &str) -> Result<Expiry, EmvError> {
    Expiry::new(year, month).map_err(|_| EmvError::ExpiryOutOfRange { why: format!("{source}: month {month}") })
}

/// A byte of two BCD digits as its value 0–99, or `None`.
fn bcd_byte(byte: u8) -> Option<u8> {
    let (high, low) = (byte >> 4, byte & 0x0F);
    (high <= 9 && low <= 9).then_some(high * 10 + low)
}

/// The nibbles of `bytes`, high first.
fn nibbles(bytes: &[u8]) -> impl Iterator<Item = u8> + '_ {
    bytes.iter().flat_map(|byte| [byte >> 4, byte & 0x0F])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_digits_stop_at_padding() {
        assert_eq!(pan_digits(&[0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19]).unwrap().as_str(), "4761739001010119");
        assert_eq!(pan_digits(&[0x12, 0x34, 0x5F]).unwrap().as_str(), "12345");
        assert!(pan_digits(&[0x12, 0xF4]).is_err());
        assert!(pan_digits(&[0x1A]).is_err());
    }

    #[test]
    fn track_2_needs_a_separator_and_a_date() {
        let (digits, date) = track_2(&[0x47, 0x61, 0xD2, 0x21, 0x22]).unwrap();
        assert_eq!((digits.as_str(), date), ("4761", [22, 12]));
        assert!(track_2(&[0x47, 0x61, 0x22]).is_err());
        assert!(track_2(&[0x47, 0x61, 0xD2, 0x2F]).is_err());
    }

    #[test]
    fn expiry_checks_month_and_day() {
        assert_eq!(expiry_yymmdd(&[0x22, 0x12, 0x31]).unwrap(), Expiry::new(22, 12).unwrap());
        assert!(matches!(expiry_yymmdd(&[0x22, 0x13, 0x31]), Err(EmvError::ExpiryOutOfRange { .. })));
        assert!(matches!(expiry_yymmdd(&[0x22, 0x12, 0x00]), Err(EmvError::ExpiryOutOfRange { .. })));
        assert!(matches!(expiry_yymmdd(&[0x2A, 0x12, 0x01]), Err(EmvError::ExpiryOutOfRange { .. })));
        assert!(matches!(expiry_yymmdd(&[0x22, 0x12]), Err(EmvError::ExpiryOutOfRange { .. })));
    }

    #[test]
    fn wipe_zeroes_nested_values() {
        let mut tlvs = vec![Tlv::constructed(Tag(0x70), vec![Tlv::primitive(Tag(0x5A), [0x47, 0x61])])];
        wipe(&mut tlvs);
        assert_eq!(tlvs[0].children()[0].value_bytes(), Some(&[][..]));
    }
}
