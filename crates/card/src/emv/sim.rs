//! A simulated contactless bank card: the card side of exactly what [`super::read_card`]
//! sends (SELECT by name, GET PROCESSING OPTIONS, READ RECORD), configurable to behave like
//! the card families the read flow must cope with: a Visa-like qVSDC card with a PDOL and a
//! format 2 answer, a Mastercard-like card without PDOL answering in format 1, cards that
//! ignore the PDOL or refuse a wrong one, cards with the PAN only in track 2, cards without
//! a PPSE. Used by tests, the validator fleet simulator and the demo.
//!
//! It is not a payment card: it has no keys and computes no cryptogram.

use smartticket_crypto::token::{Expiry, Pan, PanError};

use crate::apdu::{Command, StatusWord};
use crate::tlv::{self, Tag, Tlv};
use crate::transport::{Transport, TransportError};

use super::select::{AID_BYTES_MIN, PPSE_NAME};

/// How the card answers GET PROCESSING OPTIONS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpoFormat {
    /// `80`: AIP and AFL as bare values.
    Format1,
    /// `77`: AIP (82), AFL (94) and, for a qVSDC card, track 2 (57) as TLV objects.
    Format2,
}

/// How the card treats the PDOL answer in GET PROCESSING OPTIONS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdolPolicy {
    /// The `83` value must have the length the PDOL adds up to (zero without a PDOL);
    /// otherwise `69 85`.
    Strict,
    /// Any `83` template is accepted, whatever it holds.
    Ignore,
    /// Only an empty `83 00` is accepted; a PDOL answer gets `69 85` (a card that lists a
    /// PDOL it does not want back).
    EmptyOnly,
}

/// Where the card keeps its PAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanPlacement {
    /// Tag 5A, expiry 5F24 and PAN sequence number 5F34 in a record, and track 2 (57) too.
    Records,
    /// Only the track 2 equivalent data (57), with 5F34: no 5A, no 5F24.
    Track2Only,
}

/// Visa credit/debit AID.
const VISA_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10];
/// Mastercard credit/debit AID.
const MASTERCARD_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10];
/// The PDOL a Visa qVSDC card typically lists (the same tags and lengths as the Visa trace
/// in `tests/emv_traces.rs`): TTQ, amount, other amount, country, TVR, currency, date, type,
/// unpredictable number; 33 bytes in all.
const VISA_PDOL: [u8; 24] = [
    0x9F, 0x66, 0x04, 0x9F, 0x02, 0x06, 0x9F, 0x03, 0x06, 0x9F, 0x1A, 0x02, 0x95, 0x05, 0x5F, 0x2A, 0x02, 0x9A, 0x03,
    0x9C, 0x01, 0x9F, 0x37, 0x04,
];
/// Service code 201 (international, chip, normal authorisation) and discretionary data.
const TRACK_2_TAIL: &str = "2010000000000";

/// A simulated contactless EMV card. Build one with [`EmvSimCard::visa`] or
/// [`EmvSimCard::mastercard`] and adjust it with the `with_*` methods.
#[derive(Clone)]
pub struct EmvSimCard {
    pan: Pan,
    expiry: Expiry,
    label: String,
    preferred_name: Option<String>,
    aid: Vec<u8>,
    priority: Option<u8>,
    pan_sequence_number: Option<u8>,
    pdol: Option<Vec<u8>>,
    format: GpoFormat,
    policy: PdolPolicy,
    placement: PanPlacement,
    track_2_in_gpo: bool,
    has_ppse: bool,
    aip: [u8; 2],
    // RF session state: which application is selected.
    selected: bool,
    commands_received: usize,
}

impl std::fmt::Debug for EmvSimCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmvSimCard")
            .field("pan", &self.pan.masked())
            .field("label", &self.label)
            .field("aid", &hex::encode_upper(&self.aid))
            .field("format", &self.format)
            .field("policy", &self.policy)
            .field("placement", &self.placement)
            .finish_non_exhaustive()
    }
}

impl EmvSimCard {
    /// A Visa-like qVSDC card: PPSE, AID A0000000031010, a 9-tag PDOL it checks strictly,
    /// GET PROCESSING OPTIONS in format 2 with track 2 inside, PAN and expiry in SFI 2.
    /// `pan` must be a valid PAN (12–19 digits, Luhn).
    pub fn visa(pan: &str, expiry: Expiry, label: &str) -> Result<EmvSimCard, PanError> {
        Ok(EmvSimCard {
            pan: Pan::parse(pan)?,
            expiry,
            label: label.to_owned(),
            preferred_name: None,
            aid: VISA_AID.to_vec(),
            priority: Some(1),
            pan_sequence_number: Some(0),
            pdol: Some(VISA_PDOL.to_vec()),
            format: GpoFormat::Format2,
            policy: PdolPolicy::Strict,
            placement: PanPlacement::Records,
            track_2_in_gpo: true,
            has_ppse: true,
            aip: [0x20, 0x00],
            selected: false,
            commands_received: 0,
        })
    }

    /// A Mastercard-like card: PPSE, AID A0000000041010, no PDOL (expects `83 00`), GET
    /// PROCESSING OPTIONS in format 1, track 2 in SFI 1 and PAN and expiry in SFI 2.
    pub fn mastercard(pan: &str, expiry: Expiry, label: &str) -> Result<EmvSimCard, PanError> {
        Ok(EmvSimCard {
            aid: MASTERCARD_AID.to_vec(),
            pdol: None,
            format: GpoFormat::Format1,
            track_2_in_gpo: false,
            aip: [0x19, 0x80],
            ..EmvSimCard::visa(pan, expiry, label)?
        })
    }

    /// Accepts any PDOL answer, as cards that list a PDOL but do not look at it.
    #[must_use]
    pub fn ignoring_pdol(mut self) -> Self {
        self.policy = PdolPolicy::Ignore;
        self
    }

    /// Refuses (`69 85`) a PDOL answer of the wrong length; the default.
    #[must_use]
    pub fn refusing_wrong_pdol(mut self) -> Self {
        self.policy = PdolPolicy::Strict;
        self
    }

    /// Refuses (`69 85`) any PDOL answer but the empty one.
    #[must_use]
    pub fn accepting_only_empty_pdol(mut self) -> Self {
        self.policy = PdolPolicy::EmptyOnly;
        self
    }

    /// Lists `pdol` (raw data object list bytes, possibly malformed) in the FCI, or no PDOL.
    #[must_use]
    pub fn with_pdol(mut self, pdol: Option<Vec<u8>>) -> Self {
        self.pdol = pdol;
        self
    }

    /// Answers GET PROCESSING OPTIONS in `format`.
    #[must_use]
    pub fn with_gpo_format(mut self, format: GpoFormat) -> Self {
        self.format = format;
        self
    }

    /// Keeps the PAN only in the track 2 equivalent data (57).
    #[must_use]
    pub fn with_pan_only_in_track_2(mut self) -> Self {
        self.placement = PanPlacement::Track2Only;
        self
    }

    /// Has no PPSE: SELECT `2PAY.SYS.DDF01` answers `6A 82`.
    #[must_use]
    pub fn without_ppse(mut self) -> Self {
        self.has_ppse = false;
        self
    }

    /// Uses `aid` (5–16 bytes) instead of the scheme's.
    #[must_use]
    pub fn with_aid(mut self, aid: &[u8]) -> Self {
        self.aid = aid.to_vec();
        self
    }

    /// Sets the application preferred name (9F12).
    #[must_use]
    pub fn with_preferred_name(mut self, name: &str) -> Self {
        self.preferred_name = Some(name.to_owned());
        self
    }

    /// Sets the PAN sequence number (5F34), or leaves it out.
    #[must_use]
    pub fn with_pan_sequence_number(mut self, number: Option<u8>) -> Self {
        self.pan_sequence_number = number;
        self
    }

    /// The card's PAN.
    pub fn pan(&self) -> &Pan {
        &self.pan
    }

    /// The card's expiry.
    pub fn expiry(&self) -> Expiry {
        self.expiry
    }

    /// How many command APDUs the card has answered.
    pub fn commands_received(&self) -> usize {
        self.commands_received
    }

    /// Ends the RF session, as a field reset or the card leaving the field does: no
    /// application is selected any more.
    pub fn reset_session(&mut self) {
        self.selected = false;
    }

    /// The card side of one command APDU: the response APDU. Never fails; anything it does
    /// not understand gets an ISO 7816-4 status word.
    pub fn respond(&mut self, command: &[u8]) -> Vec<u8> {
        self.commands_received = self.commands_received.saturating_add(1);
        let Ok(command) = Command::parse(command) else {
            return status(StatusWord::WRONG_LENGTH);
        };
        match (command.cla, command.ins) {
            (0x00, 0xA4) => self.select(&command),
            (0x80, 0xA8) => self.get_processing_options(&command),
            (0x00, 0xB2) => self.read_record(&command),
            (0x00 | 0x80, _) => status(StatusWord::INS_NOT_SUPPORTED),
            _ => status(StatusWord::CLA_NOT_SUPPORTED),
        }
    }

    fn select(&mut self, command: &Command) -> Vec<u8> {
        if command.p1 != 0x04 || command.p2 != 0x00 {
            return status(StatusWord::INCORRECT_P1_P2);
        }
        self.selected = false;
        if command.data == PPSE_NAME {
            return match self.has_ppse {
                true => success(self.ppse_fci()),
                false => status(StatusWord::FILE_NOT_FOUND),
            };
        }
        // Partial selection (P2 = 00): a name that starts our AID selects it.
        if command.data.len() >= AID_BYTES_MIN && self.aid.starts_with(&command.data) {
            self.selected = true;
            return success(self.application_fci());
        }
        status(StatusWord::FILE_NOT_FOUND)
    }

    fn get_processing_options(&mut self, command: &Command) -> Vec<u8> {
        if !self.selected || command.p1 != 0x00 || command.p2 != 0x00 {
            return status(CONDITIONS_NOT_SATISFIED);
        }
        let answer_bytes = match tlv::parse_all(&command.data).as_deref() {
            Ok([template]) if template.tag == Tag(0x83) => template.value_bytes().map_or(0, <[u8]>::len),
            _ => return status(INCORRECT_DATA),
        };
        let accepted = match self.policy {
            PdolPolicy::Ignore => true,
            PdolPolicy::EmptyOnly => answer_bytes == 0,
            PdolPolicy::Strict => Some(answer_bytes) == self.pdol_total_bytes(),
        };
        if !accepted {
            return status(CONDITIONS_NOT_SATISFIED);
        }
        success(self.gpo_response())
    }

    fn read_record(&self, command: &Command) -> Vec<u8> {
        if command.p2 & 0x07 != 0x04 {
            return status(StatusWord::INCORRECT_P1_P2);
        }
        if !self.selected {
            return status(CONDITIONS_NOT_SATISFIED);
        }
        let wanted = (command.p2 >> 3, command.p1);
        match self.records().into_iter().find(|(sfi, record, _)| (*sfi, *record) == wanted) {
            Some((_, _, template)) => success(template.encode()),
            None => status(RECORD_NOT_FOUND),
        }
    }

    /// The PDOL's total length, `Some(0)` without a PDOL, `None` if it does not parse.
    fn pdol_total_bytes(&self) -> Option<usize> {
        match &self.pdol {
            None => Some(0),
            Some(pdol) => tlv::parse_dol(pdol).ok().map(|entries| entries.iter().map(|(_, length)| length).sum()),
        }
    }

    fn ppse_fci(&self) -> Vec<u8> {
        let mut entry =
            vec![Tlv::primitive(Tag(0x4F), self.aid.clone()), Tlv::primitive(Tag(0x50), self.label.as_bytes())];
        entry.extend(self.priority.map(|priority| Tlv::primitive(Tag(0x87), [priority])));
        Tlv::constructed(
            Tag(0x6F),
            vec![
                Tlv::primitive(Tag(0x84), PPSE_NAME),
                Tlv::constructed(
                    Tag(0xA5),
                    vec![Tlv::constructed(Tag(0xBF0C), vec![Tlv::constructed(Tag(0x61), entry)])],
                ),
            ],
        )
        .encode()
    }

    fn application_fci(&self) -> Vec<u8> {
        let mut proprietary = vec![Tlv::primitive(Tag(0x50), self.label.as_bytes())];
        proprietary.extend(self.priority.map(|priority| Tlv::primitive(Tag(0x87), [priority])));
        proprietary.extend(self.preferred_name.as_ref().map(|name| Tlv::primitive(Tag(0x9F12), name.as_bytes())));
        proprietary.extend(self.pdol.as_ref().map(|pdol| Tlv::primitive(Tag(0x9F38), pdol.clone())));
        Tlv::constructed(
            Tag(0x6F),
            vec![Tlv::primitive(Tag(0x84), self.aid.clone()), Tlv::constructed(Tag(0xA5), proprietary)],
        )
        .encode()
    }

    fn gpo_response(&self) -> Vec<u8> {
        let afl = self.afl();
        match self.format {
            GpoFormat::Format1 => {
                let mut value = self.aip.to_vec();
                value.extend_from_slice(&afl);
                Tlv::primitive(Tag(0x80), value).encode()
            }
            GpoFormat::Format2 => {
                let mut objects = vec![Tlv::primitive(Tag(0x82), self.aip), Tlv::primitive(Tag(0x94), afl)];
                if self.track_2_in_gpo {
                    objects.push(Tlv::primitive(Tag(0x57), self.track_2()));
                }
                Tlv::constructed(Tag(0x77), objects).encode()
            }
        }
    }

    /// The AFL: one entry per record, SFI shifted left by 3, no records for offline data
    /// authentication.
    fn afl(&self) -> Vec<u8> {
        self.records().iter().flat_map(|(sfi, record, _)| [sfi << 3, *record, *record, 0x00]).collect()
    }

    /// (SFI, record number, `70` template) for every record the card holds.
    fn records(&self) -> Vec<(u8, u8, Tlv)> {
        let sequence_number = self.pan_sequence_number.map(|number| Tlv::primitive(Tag(0x5F34), [bcd(number)]));
        let track_2 = Tlv::constructed(Tag(0x70), vec![Tlv::primitive(Tag(0x57), self.track_2())]);
        match self.placement {
            PanPlacement::Records => {
                let mut account =
                    vec![Tlv::primitive(Tag(0x5A), self.pan_bcd()), Tlv::primitive(Tag(0x5F24), self.expiry_yymmdd())];
                account.extend(sequence_number);
                vec![(1, 1, track_2), (2, 1, Tlv::constructed(Tag(0x70), account))]
            }
            PanPlacement::Track2Only => {
                let mut only = vec![Tlv::primitive(Tag(0x57), self.track_2())];
                only.extend(sequence_number);
                vec![(1, 1, Tlv::constructed(Tag(0x70), only))]
            }
        }
    }

    /// Tag 5A: the PAN in BCD, padded with `F`.
    fn pan_bcd(&self) -> Vec<u8> {
        pack_nibbles(self.pan.digits().bytes().map(|digit| digit.wrapping_sub(b'0')))
    }

    /// Tag 57: PAN, `D`, YYMM, service code and discretionary data in BCD, padded with `F`.
    fn track_2(&self) -> Vec<u8> {
        let digits = |text: &str| text.bytes().map(|digit| digit.wrapping_sub(b'0')).collect::<Vec<u8>>();
        let mut nibbles = digits(self.pan.digits());
        nibbles.push(0x0D);
        nibbles.extend(digits(&self.expiry.yymm()));
        nibbles.extend(digits(TRACK_2_TAIL));
        pack_nibbles(nibbles.into_iter())
    }

    /// Tag 5F24: YYMMDD with the last day of the expiry month, as issuers write it.
    fn expiry_yymmdd(&self) -> [u8; 3] {
        let Expiry { year, month } = self.expiry;
        let day = match month {
            2 if year % 4 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        [bcd(year), bcd(month), bcd(day)]
    }
}

impl Transport for EmvSimCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.respond(command))
    }

    fn describe(&self) -> String {
        format!("simulated EMV card {} ({})", self.label, self.pan.masked())
    }
}

/// `69 85`: conditions of use not satisfied.
const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord(0x6985);
/// `6A 80`: incorrect parameters in the data field.
const INCORRECT_DATA: StatusWord = StatusWord(0x6A80);
/// `6A 83`: record not found.
const RECORD_NOT_FOUND: StatusWord = StatusWord(0x6A83);

fn status(sw: StatusWord) -> Vec<u8> {
    sw.0.to_be_bytes().to_vec()
}

fn success(mut data: Vec<u8>) -> Vec<u8> {
    data.extend_from_slice(&StatusWord::SUCCESS.0.to_be_bytes());
    data
}

/// A value 0–99 as one BCD byte.
fn bcd(value: u8) -> u8 {
    ((value / 10 % 10) << 4) | (value % 10)
}

/// Nibbles packed two to a byte, high first, the last byte padded with `F`.
fn pack_nibbles(nibbles: impl Iterator<Item = u8>) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut high: Option<u8> = None;
    for nibble in nibbles {
        match high.take() {
            None => high = Some(nibble),
            Some(first) => bytes.push((first << 4) | (nibble & 0x0F)),
        }
    }
    bytes.extend(high.map(|first| (first << 4) | 0x0F));
    bytes
}
