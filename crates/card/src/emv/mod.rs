//! EMV contactless read flow: a bank card used as a fare token. It owns the terminal side of
//! SELECT PPSE → SELECT AID → GET PROCESSING OPTIONS → READ RECORD and hands back the PAN
//! (as a zeroized [`Pan`]), expiry and application, which become a token in the secure module.
//! No cryptogram, no offline data authentication, no CVM: the gate identifies, the back
//! office charges. EMV 4.4 Books 1 and 3 and Contactless Book B; sections cited where used.
//!
//! This is our own code because no well-kept Rust crate implements the EMV kernel flow; it
//! reuses the crate's APDU exchange, BER-TLV and DOL parsers, and a [`sim`] card for tests,
//! the fleet simulator and the demo.

pub mod error;
pub mod gpo;
pub(crate) mod records;
pub mod select;
pub mod sim;
pub mod terminal;

use std::fmt;

use smartticket_crypto::token::{Expiry, Pan};
use zeroize::Zeroizing;

use crate::apdu::{self, Command, ExchangeError, Response, StatusWord};
use crate::tlv::{self, Tlv};
use crate::transport::Transport;

pub use self::error::{EmvError, Step};
pub use self::gpo::{AFL_ENTRIES_MAX, RECORDS_PER_AFL_ENTRY_MAX, RECORDS_READ_MAX};
pub use self::select::{AID_BYTES_MAX, AID_BYTES_MIN, KNOWN_AIDS, KnownAid, PPSE_DIRECTORY_ENTRIES_MAX, PPSE_NAME};
pub use self::terminal::{PDOL_ANSWER_BYTES_MAX, PdolError, TerminalData};

use self::gpo::ProcessingOptions;
use self::records::WipedTlvs;
use self::select::{Candidate, SelectedApplication};

/// Most applications tried in one tap (each costs a SELECT and maybe a GET PROCESSING
/// OPTIONS, 10–30 ms apiece). Covers every PPSE entry we accept and every known AID.
pub const APPLICATIONS_TRIED_MAX: usize = 16;
const _: () = assert!(PPSE_DIRECTORY_ENTRIES_MAX <= APPLICATIONS_TRIED_MAX);

/// Most data bytes accepted in one response. EMV contactless answers fit a short APDU (at
/// most 256 data bytes); we allow a reader that splits them with `61xx` up to
/// 1 KiB, and refuse more rather than parse a flood.
pub const EMV_RESPONSE_BYTES_MAX: usize = 1024;

/// SELECT by DF name, first or only occurrence (ISO/IEC 7816-4 SELECT; EMV Book 1 §11.3).
const SELECT_CLA: u8 = 0x00;
const SELECT_INS: u8 = 0xA4;
const SELECT_BY_NAME: u8 = 0x04;

/// What a tap on a bank card yields. The PAN is only reachable through [`EmvCard::pan`];
/// `Debug` shows it masked.
pub struct EmvCard {
    pan: Pan,
    expiry: Expiry,
    pan_sequence_number: Option<u8>,
    aid: Vec<u8>,
    label: Option<String>,
    preferred_name: Option<String>,
    application_interchange_profile: [u8; 2],
}

impl EmvCard {
    /// The PAN, checked (12–19 digits, Luhn) and wiped on drop. Hand it to the token
    /// function; never log it.
    pub fn pan(&self) -> &Pan {
        &self.pan
    }

    /// The PAN as customers may see it: `4761 **** **** 0119`.
    pub fn masked_pan(&self) -> String {
        self.pan.masked()
    }

    /// The expiry month (from 5F24, else track 2).
    pub fn expiry(&self) -> Expiry {
        self.expiry
    }

    /// The PAN sequence number (5F34), if the card has one.
    pub fn pan_sequence_number(&self) -> Option<u8> {
        self.pan_sequence_number
    }

    /// The AID (DF name) of the application read.
    pub fn aid(&self) -> &[u8] {
        &self.aid
    }

    /// The application label (50), printable ASCII only.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The application preferred name (9F12), printable ASCII only.
    pub fn preferred_name(&self) -> Option<&str> {
        self.preferred_name.as_deref()
    }

    /// The Application Interchange Profile (82) the card answered.
    pub fn application_interchange_profile(&self) -> [u8; 2] {
        self.application_interchange_profile
    }

    /// The bytes the token key is applied to (`PAN || "=" || YYMM`), wiped on drop.
    pub fn token_input(&self) -> Zeroizing<Vec<u8>> {
        smartticket_crypto::token::token_input(&self.pan, self.expiry)
    }
}

impl fmt::Debug for EmvCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmvCard")
            .field("pan", &self.pan.masked())
            .field("expiry", &self.expiry)
            .field("pan_sequence_number", &self.pan_sequence_number)
            .field("aid", &hex::encode_upper(&self.aid))
            .field("label", &self.label)
            .field("preferred_name", &self.preferred_name)
            .finish_non_exhaustive()
    }
}

/// Reads a contactless bank card: selects the PPSE and tries its applications by priority
/// (or, if the card has no PPSE, the [`KNOWN_AIDS`]), answers the PDOL from `terminal`,
/// retrying once with an empty PDOL if the card refuses the answer, reads the AFL's records
/// and returns the PAN (Luhn-checked), expiry and application.
///
/// An application that refuses SELECT or GET PROCESSING OPTIONS is skipped for the next
/// one; if none is left, the error is the first refusal (the highest-priority application's
/// reason). Any other failure (transport, a malformed answer, bad card data) ends the read.
pub fn read_card(transport: &mut dyn Transport, terminal: &TerminalData) -> Result<EmvCard, EmvError> {
    let (candidates, source) = discover(transport)?;
    let mut first_refusal: Option<EmvError> = None;
    for candidate in candidates.iter().take(APPLICATIONS_TRIED_MAX) {
        match read_application(transport, terminal, candidate) {
            Ok(card) => return Ok(card),
            Err(error) if is_refusal(&error) => {
                tracing::debug!(aid = %hex::encode_upper(&candidate.aid), %error, "application refused, trying the next");
                // Not finding a known AID is the normal outcome of direct selection.
                let not_found = matches!(
                    error,
                    EmvError::Refused { step: Step::SelectApplication, sw: StatusWord::FILE_NOT_FOUND }
                );
                if first_refusal.is_none() && !not_found {
                    first_refusal = Some(error);
                }
            }
            Err(error) => return Err(error),
        }
    }
    Err(first_refusal.unwrap_or_else(|| EmvError::NoApplication {
        why: match source {
            Source::Directory => format!("none of the {} PPSE entries could be selected", candidates.len()),
            Source::Known => {
                format!("no usable PPSE and none of the {} known AIDs could be selected", KNOWN_AIDS.len())
            }
        },
    }))
}

/// Where the candidate list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Directory,
    Known,
}

/// SELECT PPSE and the candidates it lists; the known AIDs if the card has no PPSE (`6A82`)
/// or its directory lists nothing usable.
fn discover(transport: &mut dyn Transport) -> Result<(Vec<Candidate>, Source), EmvError> {
    let step = Step::SelectPpse;
    let response = exchange(transport, &select_command(PPSE_NAME), step)?;
    if response.sw == StatusWord::FILE_NOT_FOUND {
        return Ok((select::known_candidates(), Source::Known));
    }
    let data = success_data(response, step)?;
    let candidates = select::ppse_candidates(&data).map_err(|why| EmvError::CardMisbehaved { step, why })?;
    if candidates.is_empty() {
        return Ok((select::known_candidates(), Source::Known));
    }
    Ok((candidates, Source::Directory))
}

/// One application, from SELECT to card data.
fn read_application(
    transport: &mut dyn Transport,
    terminal: &TerminalData,
    candidate: &Candidate,
) -> Result<EmvCard, EmvError> {
    let application = select_application(transport, candidate)?;
    let options = get_processing_options(transport, terminal, &application)?;
    let templates = read_records(transport, &options)?;
    let data = records::card_data(&templates.0)?;
    Ok(EmvCard {
        pan: data.pan,
        expiry: data.expiry,
        pan_sequence_number: data.pan_sequence_number,
        aid: application.aid,
        label: application.label,
        preferred_name: application.preferred_name,
        application_interchange_profile: options.aip,
    })
}

/// Whether `error` means "this application will not do; try the next".
fn is_refusal(error: &EmvError) -> bool {
    matches!(
        error,
        EmvError::Refused { step: Step::SelectApplication | Step::GetProcessingOptions, .. }
            | EmvError::GpoRefused { .. }
            | EmvError::PdolUnusable { .. }
    )
}

fn select_application(transport: &mut dyn Transport, candidate: &Candidate) -> Result<SelectedApplication, EmvError> {
    let step = Step::SelectApplication;
    let response = exchange(transport, &select_command(&candidate.aid), step)?;
    let fci = success_data(response, step)?;
    select::application_from_fci(candidate, &fci).map_err(|why| EmvError::CardMisbehaved { step, why })
}

/// GET PROCESSING OPTIONS with the PDOL answer; once more with an empty PDOL (`83 00`) if
/// the card refuses that answer with one of [`gpo::GPO_RETRY_STATUS_WORDS`] (some cards
/// list a PDOL they do not accept back), or if the PDOL cannot be answered at all.
fn get_processing_options(
    transport: &mut dyn Transport,
    terminal: &TerminalData,
    application: &SelectedApplication,
) -> Result<ProcessingOptions, EmvError> {
    let step = Step::GetProcessingOptions;
    let answer = match &application.pdol {
        None => Ok(Vec::new()),
        Some(pdol) => terminal.pdol_answer(pdol),
    };
    match answer {
        Ok(answer) => {
            let response = exchange(transport, &gpo::gpo_command(&answer), step)?;
            if response.sw.is_success() {
                return parse_gpo_response(response);
            }
            if answer.is_empty() || !gpo::GPO_RETRY_STATUS_WORDS.contains(&response.sw) {
                return Err(EmvError::Refused { step, sw: response.sw });
            }
            let retry = exchange(transport, &gpo::gpo_command(&[]), step)?;
            match retry.sw.is_success() {
                true => parse_gpo_response(retry),
                false => Err(EmvError::GpoRefused { with_pdol: response.sw, with_empty_pdol: retry.sw }),
            }
        }
        Err(pdol_error) => {
            tracing::debug!(%pdol_error, "PDOL cannot be answered, trying an empty one");
            let retry = exchange(transport, &gpo::gpo_command(&[]), step)?;
            match retry.sw.is_success() {
                true => parse_gpo_response(retry),
                false => Err(EmvError::PdolUnusable { why: pdol_error.to_string(), sw: retry.sw }),
            }
        }
    }
}

/// Every record the AFL names, in order, each a `70` template; the GPO response template
/// first, since qVSDC cards put track 2 there.
fn read_records(transport: &mut dyn Transport, options: &ProcessingOptions) -> Result<WipedTlvs, EmvError> {
    let mut templates = WipedTlvs::default();
    templates.0.extend(options.template.0.iter().cloned());
    for entry in &options.afl {
        for record in entry.first_record..=entry.last_record {
            let step = Step::ReadRecord { sfi: entry.sfi, record };
            let response = exchange(transport, &records::read_record_command(entry.sfi, record), step)?;
            let data = Zeroizing::new(success_data_raw(response, step)?);
            if let Some(template) = records::parse_record(entry.sfi, record, &data)? {
                templates.0.push(template);
            }
        }
    }
    Ok(templates)
}

/// Parses a successful GET PROCESSING OPTIONS answer and wipes it: format 2 may carry the
/// PAN in track 2.
fn parse_gpo_response(response: Response) -> Result<ProcessingOptions, EmvError> {
    let data = Zeroizing::new(response.data);
    gpo::parse_response(&data)
}

fn select_command(name: &[u8]) -> Command {
    Command::new(SELECT_CLA, SELECT_INS, SELECT_BY_NAME, 0x00).data(name).le(apdu::SHORT_LE_MAX)
}

/// One command and its whole response (following `61xx` and `6Cxx`), at most
/// [`EMV_RESPONSE_BYTES_MAX`] data bytes.
fn exchange(transport: &mut dyn Transport, command: &Command, step: Step) -> Result<Response, EmvError> {
    let mut transmit = |bytes: &[u8]| transport.transmit(bytes);
    let response = apdu::exchange(&mut transmit, command).map_err(|error| match error {
        ExchangeError::Transport(source) => EmvError::Transport { step, source },
        ExchangeError::CardMisbehaved(why) => EmvError::CardMisbehaved { step, why },
        ExchangeError::InvalidCommand(source) => EmvError::Command { step, source },
    })?;
    if response.data.len() > EMV_RESPONSE_BYTES_MAX {
        let why = format!("{} data bytes, at most {EMV_RESPONSE_BYTES_MAX}", response.data.len());
        return Err(EmvError::CardMisbehaved { step, why });
    }
    Ok(response)
}

/// The data of a `90 00` response, or the refusal.
fn success_data_raw(response: Response, step: Step) -> Result<Vec<u8>, EmvError> {
    match response.sw.is_success() {
        true => Ok(response.data),
        false => Err(EmvError::Refused { step, sw: response.sw }),
    }
}

/// The parsed data of a `90 00` response.
fn success_data(response: Response, step: Step) -> Result<Vec<Tlv>, EmvError> {
    let data = success_data_raw(response, step)?;
    tlv::parse_all(&data).map_err(|error| EmvError::CardMisbehaved { step, why: format!("malformed answer: {error}") })
}
