//! Command and response APDUs of ISO/IEC 7816-4:2020 §5.1–5.3: the four command cases in
//! short and extended form, the response with its status word, command chaining, and the
//! exchange loop that follows `61xx` (GET RESPONSE) and `6Cxx` (re-send with the exact Le).
//!
//! It owns the wire format only; what a command means (DESFire, EMV, GlobalPlatform) lives
//! with the application that sends it. All decoding goes through [`crate::codec::Reader`].

use std::fmt;

use thiserror::Error;

use crate::codec::{CodecError, Reader};

/// Bytes of the command header: CLA, INS, P1, P2.
pub const APDU_HEADER_BYTES: usize = 4;

/// Most data bytes a short command carries: Lc is one byte, and `00` is not a valid Lc.
pub const SHORT_DATA_BYTES_MAX: usize = 255;

/// Largest expected response length (Ne) a short command can ask for: Le `00` means 256.
pub const SHORT_LE_MAX: usize = 256;

/// Most data bytes any command carries: the extended Lc is two bytes and may not be `0000`.
pub const COMMAND_DATA_BYTES_MAX: usize = 65_535;

/// Most data bytes any response carries: the extended Le `0000` means 65 536.
pub const RESPONSE_DATA_BYTES_MAX: usize = 65_536;

/// The largest command APDU on the wire, extended case 4: the header, the extended Lc
/// (`00` and two bytes), 65 535 data bytes and a two-byte Le. Case 2E has a three-byte Le
/// but no Lc and no data, so it is far shorter. Anything longer cannot be a command, so
/// [`Command::parse`] refuses it before reading a byte.
pub const APDU_COMMAND_BYTES_MAX: usize = APDU_HEADER_BYTES + 3 + COMMAND_DATA_BYTES_MAX + 2;
const _: () = assert!(APDU_COMMAND_BYTES_MAX == 65_544);

/// The largest response APDU on the wire: 65 536 data bytes and SW1-SW2.
pub const APDU_RESPONSE_BYTES_MAX: usize = RESPONSE_DATA_BYTES_MAX + 2;

/// The CLA bit that marks "more commands of this chain follow" for interindustry classes
/// (ISO/IEC 7816-4 §5.3, command chaining).
pub const CHAINING_CLA_BIT: u8 = 0x10;

/// INS of GET RESPONSE, which fetches the data a `61xx` status announced.
pub const INS_GET_RESPONSE: u8 = 0xC0;

/// Most GET RESPONSE commands one [`exchange`] sends. A round is a card round trip (a few
/// milliseconds each over contactless), and the responses we read are small: EMV records
/// fit one round, DESFire frames their own reads. 64 rounds of up to 256 bytes is 16 KiB, far
/// more than any fare medium returns, and still bounds a tap if a card keeps answering `61xx`.
pub const GET_RESPONSE_ROUNDS_MAX: usize = 64;

/// Why an APDU could not be encoded or parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ApduError {
    /// Fewer bytes than the smallest APDU: 4 for a command, 2 (SW1-SW2) for a response.
    #[error("APDU too short: {length} bytes")]
    TooShort {
        /// Bytes received.
        length: usize,
    },
    /// More bytes than [`APDU_COMMAND_BYTES_MAX`].
    #[error("command APDU too long: {length} bytes, at most {APDU_COMMAND_BYTES_MAX}")]
    CommandTooLong {
        /// Bytes received.
        length: usize,
    },
    /// More bytes than [`APDU_RESPONSE_BYTES_MAX`].
    #[error("response APDU too long: {length} bytes, at most {APDU_RESPONSE_BYTES_MAX}")]
    ResponseTooLong {
        /// Bytes received.
        length: usize,
    },
    /// The command body after the header fits none of the four cases, for example two bytes
    /// starting with `00` (a short Lc cannot be 0, an extended length needs three bytes), or
    /// an extended case 3 followed by a single byte where a two-byte Le belongs.
    #[error("command body of {body_bytes} bytes fits none of the four APDU cases")]
    BadLength {
        /// Bytes after the four-byte header.
        body_bytes: usize,
    },
    /// Lc announces more data bytes than the command holds.
    #[error("Lc announces {lc} data bytes but only {available} follow")]
    LcMismatch {
        /// The announced Nc.
        lc: usize,
        /// Bytes left after the Lc field.
        available: usize,
    },
    /// An extended Lc field of `00 00 00`: a command with no data has no Lc field.
    #[error("extended Lc encodes 0 data bytes")]
    ExtendedLcZero,
    /// Bytes after a complete command (after its Le, or after its data when Le is absent).
    #[error("{0} trailing bytes after the command")]
    TrailingBytes(usize),
    /// Data longer than the format can carry.
    #[error("data of {length} bytes is longer than the {max} an APDU can carry")]
    DataTooLong {
        /// Bytes of data given.
        length: usize,
        /// The limit that applies.
        max: usize,
    },
    /// An expected response length outside 1..=65 536 (absent Le is `None`, not 0).
    #[error("Le of {le} is outside 1..=65536")]
    LeOutOfRange {
        /// The value given.
        le: usize,
    },
    /// A read ran past the end of the input.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// SW1-SW2, the two status bytes that end every response.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// `90 00`: normal processing.
    pub const SUCCESS: StatusWord = StatusWord(0x9000);
    /// `67 00`: wrong length (Lc or Le).
    pub const WRONG_LENGTH: StatusWord = StatusWord(0x6700);
    /// `69 82`: security status not satisfied.
    pub const SECURITY_STATUS_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    /// `6A 82`: file or application not found.
    pub const FILE_NOT_FOUND: StatusWord = StatusWord(0x6A82);
    /// `6A 86`: incorrect parameters P1-P2.
    pub const INCORRECT_P1_P2: StatusWord = StatusWord(0x6A86);
    /// `6D 00`: instruction code not supported or invalid.
    pub const INS_NOT_SUPPORTED: StatusWord = StatusWord(0x6D00);
    /// `6E 00`: class not supported.
    pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord(0x6E00);
    /// `6F 00`: no precise diagnosis.
    pub const NO_PRECISE_DIAGNOSIS: StatusWord = StatusWord(0x6F00);
    /// `91 00`: DESFire native status "operation ok" in an ISO-wrapped command.
    pub const DESFIRE_OK: StatusWord = StatusWord(0x9100);
    /// `91 AF`: DESFire native status "additional frame expected".
    pub const DESFIRE_ADDITIONAL_FRAME: StatusWord = StatusWord(0x91AF);

    /// SW1, the high byte.
    pub fn sw1(self) -> u8 {
        let [sw1, _] = self.0.to_be_bytes();
        sw1
    }

    /// SW2, the low byte.
    pub fn sw2(self) -> u8 {
        let [_, sw2] = self.0.to_be_bytes();
        sw2
    }

    /// Whether this is `90 00`, and only that.
    pub fn is_success(self) -> bool {
        self == Self::SUCCESS
    }

    /// What the status word means in ISO/IEC 7816-4 terms; values this crate does not know
    /// are kept as [`StatusKind::Unknown`].
    pub fn kind(self) -> StatusKind {
        let sw2 = self.sw2();
        match (self.sw1(), sw2) {
            (0x90, 0x00) => StatusKind::Success,
            (0x61, _) => StatusKind::MoreData { available: short_length(sw2) },
            (0x6C, _) => StatusKind::WrongLe { exact: short_length(sw2) },
            (0x62, _) => StatusKind::WarningUnchanged(sw2),
            (0x63, _) => StatusKind::WarningChanged(sw2),
            (0x67, 0x00) => StatusKind::WrongLength,
            (0x69, 0x82) => StatusKind::SecurityStatusNotSatisfied,
            (0x6A, 0x82) => StatusKind::FileNotFound,
            (0x6A, 0x86) => StatusKind::IncorrectP1P2,
            (0x6D, 0x00) => StatusKind::InsNotSupported,
            (0x6E, 0x00) => StatusKind::ClaNotSupported,
            (0x6F, 0x00) => StatusKind::NoPreciseDiagnosis,
            (0x91, _) => StatusKind::Desfire(sw2),
            _ => StatusKind::Unknown(self.0),
        }
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusWord({:04X})", self.0)
    }
}

/// The ISO/IEC 7816-4 meaning of a [`StatusWord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusKind {
    /// `90 00`.
    Success,
    /// `61 xx`: processing done, `available` more bytes can be fetched with GET RESPONSE
    /// (`xx` = `00` counts as 256).
    MoreData {
        /// Bytes to ask for in the next GET RESPONSE.
        available: usize,
    },
    /// `6C xx`: wrong Le; re-send the command with Le = `exact` (`xx` = `00` counts as 256).
    WrongLe {
        /// The length the card will answer with.
        exact: usize,
    },
    /// `62 xx`: warning, non-volatile memory unchanged; holds SW2.
    WarningUnchanged(u8),
    /// `63 xx`: warning, non-volatile memory changed (e.g. `63 Cx` retry counter); holds SW2.
    WarningChanged(u8),
    /// `67 00`: wrong length.
    WrongLength,
    /// `69 82`: security status not satisfied.
    SecurityStatusNotSatisfied,
    /// `6A 82`: file or application not found.
    FileNotFound,
    /// `6A 86`: incorrect parameters P1-P2.
    IncorrectP1P2,
    /// `6D 00`: instruction not supported.
    InsNotSupported,
    /// `6E 00`: class not supported.
    ClaNotSupported,
    /// `6F 00`: no precise diagnosis.
    NoPreciseDiagnosis,
    /// `91 xx`: a DESFire native status code in SW2 (`00` ok, `AF` additional frame, ...),
    /// interpreted by the DESFire layer.
    Desfire(u8),
    /// Anything else, kept whole.
    Unknown(u16),
}

/// A one-byte length where `00` means 256 (short Le, and SW2 of `61xx`/`6Cxx`).
fn short_length(byte: u8) -> usize {
    match byte {
        0 => SHORT_LE_MAX,
        n => usize::from(n),
    }
}

/// A two-byte length where `0000` means 65 536 (extended Le).
fn extended_length(value: u16) -> usize {
    match value {
        0 => RESPONSE_DATA_BYTES_MAX,
        n => usize::from(n),
    }
}

/// A command APDU (ISO/IEC 7816-4 §5.1), independent of its short or extended encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// The command data field (Nc bytes, at most [`COMMAND_DATA_BYTES_MAX`]); empty when there
    /// is no Lc field.
    pub data: Vec<u8>,
    /// Ne, the expected response length in 1..=65 536, or `None` when there is no Le field.
    /// Short Le `00` is 256 and extended Le `0000` is 65 536.
    pub le: Option<usize>,
}

impl Command {
    /// A case 1 command: header only.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self { cla, ins, p1, p2, data: Vec::new(), le: None }
    }

    /// Sets the data field.
    #[must_use]
    pub fn data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    /// Sets Ne, the expected response length (1..=65 536; checked by [`Command::encode`]).
    #[must_use]
    pub fn le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }

    /// Whether [`Command::encode`] uses the extended form: data over 255 bytes or Ne over 256.
    pub fn is_extended(&self) -> bool {
        self.data.len() > SHORT_DATA_BYTES_MAX || self.le.is_some_and(|le| le > SHORT_LE_MAX)
    }

    /// The bytes on the wire, in short form when both Nc ≤ 255 and Ne ≤ 256 and in extended
    /// form otherwise (both length fields then extended, as §5.1 requires).
    pub fn encode(&self) -> Result<Vec<u8>, ApduError> {
        let data_bytes = self.data.len();
        if data_bytes > COMMAND_DATA_BYTES_MAX {
            return Err(ApduError::DataTooLong { length: data_bytes, max: COMMAND_DATA_BYTES_MAX });
        }
        if let Some(le) = self.le
            && !(1..=RESPONSE_DATA_BYTES_MAX).contains(&le)
        {
            return Err(ApduError::LeOutOfRange { le });
        }
        let mut out = Vec::with_capacity(APDU_HEADER_BYTES + 3 + data_bytes + 2);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if self.is_extended() {
            self.encode_extended_body(&mut out)?;
        } else {
            self.encode_short_body(&mut out)?;
        }
        Ok(out)
    }

    fn encode_short_body(&self, out: &mut Vec<u8>) -> Result<(), ApduError> {
        if !self.data.is_empty() {
            let lc = u8::try_from(self.data.len())
                .map_err(|_| ApduError::DataTooLong { length: self.data.len(), max: SHORT_DATA_BYTES_MAX })?;
            out.push(lc);
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            let byte = match le {
                SHORT_LE_MAX => 0,
                _ => u8::try_from(le).map_err(|_| ApduError::LeOutOfRange { le })?,
            };
            out.push(byte);
        }
        Ok(())
    }

    fn encode_extended_body(&self, out: &mut Vec<u8>) -> Result<(), ApduError> {
        // The leading 00 marks the extended form; it is written once, before Lc if there
        // is data, otherwise before Le (case 2E).
        out.push(0x00);
        if !self.data.is_empty() {
            let lc = u16::try_from(self.data.len())
                .map_err(|_| ApduError::DataTooLong { length: self.data.len(), max: COMMAND_DATA_BYTES_MAX })?;
            out.extend_from_slice(&lc.to_be_bytes());
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            let value = match le {
                RESPONSE_DATA_BYTES_MAX => 0,
                _ => u16::try_from(le).map_err(|_| ApduError::LeOutOfRange { le })?,
            };
            out.extend_from_slice(&value.to_be_bytes());
        }
        Ok(())
    }

    /// Reads a whole command APDU of any case, short or extended, refusing malformed length
    /// fields and trailing bytes. The case follows from the body length as §5.1 lays out.
    pub fn parse(bytes: &[u8]) -> Result<Command, ApduError> {
        if bytes.len() > APDU_COMMAND_BYTES_MAX {
            return Err(ApduError::CommandTooLong { length: bytes.len() });
        }
        let mut reader = Reader::new(bytes);
        let [cla, ins, p1, p2] = reader.array::<4>().map_err(|_| ApduError::TooShort { length: bytes.len() })?;
        let command = Command::new(cla, ins, p1, p2);
        let body_bytes = reader.remaining();
        match (reader.u8(), body_bytes) {
            // Case 1: nothing after the header.
            (Err(_), _) => Ok(command),
            // Case 2S: a lone Le byte (00 = 256).
            (Ok(le), 1) => Ok(Command { le: Some(short_length(le)), ..command }),
            // 00 then at least two bytes: extended length fields.
            (Ok(0x00), 3..) => {
                let (data, le) = parse_extended_body(&mut reader)?;
                Ok(Command { data, le, ..command })
            }
            // 00 then one byte: a short Lc of 0 is not allowed and extended needs three bytes.
            (Ok(0x00), _) => Err(ApduError::BadLength { body_bytes }),
            // Case 3S or 4S: a non-zero short Lc.
            (Ok(lc), _) => {
                let (data, le) = parse_short_body(lc, &mut reader)?;
                Ok(Command { data, le, ..command })
            }
        }
    }
}

/// After a non-zero short Lc: the data, then nothing (3S) or one Le byte (4S).
fn parse_short_body(lc: u8, reader: &mut Reader<'_>) -> Result<(Vec<u8>, Option<usize>), ApduError> {
    let lc = usize::from(lc);
    let data = reader.take(lc).map_err(|_| ApduError::LcMismatch { lc, available: reader.remaining() })?;
    let le = match reader.remaining() {
        0 => None,
        1 => Some(short_length(reader.u8()?)),
        extra => return Err(ApduError::TrailingBytes(extra - 1)),
    };
    reader.expect_end()?;
    Ok((data.to_vec(), le))
}

/// After the `00` marker: two bytes that are either Le (2E) or a non-zero Lc followed by the
/// data and nothing (3E) or a two-byte Le (4E).
fn parse_extended_body(reader: &mut Reader<'_>) -> Result<(Vec<u8>, Option<usize>), ApduError> {
    let first = reader.u16_be()?;
    if reader.is_empty() {
        return Ok((Vec::new(), Some(extended_length(first))));
    }
    if first == 0 {
        return Err(ApduError::ExtendedLcZero);
    }
    let lc = usize::from(first);
    let data = reader.take(lc).map_err(|_| ApduError::LcMismatch { lc, available: reader.remaining() })?;
    let le = match reader.remaining() {
        0 => None,
        2 => Some(extended_length(reader.u16_be()?)),
        1 => return Err(ApduError::BadLength { body_bytes: 3 + lc + 1 }),
        extra => return Err(ApduError::TrailingBytes(extra - 2)),
    };
    reader.expect_end()?;
    Ok((data.to_vec(), le))
}

/// A response APDU: the data field and the status word that ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Response data (Nr bytes, at most [`RESPONSE_DATA_BYTES_MAX`]).
    pub data: Vec<u8>,
    /// SW1-SW2.
    pub sw: StatusWord,
}

impl Response {
    /// A response with the given data and status.
    pub fn new(data: impl Into<Vec<u8>>, sw: StatusWord) -> Self {
        Self { data: data.into(), sw }
    }

    /// Reads a whole response: at least SW1-SW2, at most 65 536 data bytes before it.
    pub fn parse(bytes: &[u8]) -> Result<Response, ApduError> {
        if bytes.len() > APDU_RESPONSE_BYTES_MAX {
            return Err(ApduError::ResponseTooLong { length: bytes.len() });
        }
        let Some(data_bytes) = bytes.len().checked_sub(2) else {
            return Err(ApduError::TooShort { length: bytes.len() });
        };
        let mut reader = Reader::new(bytes);
        let data = reader.take(data_bytes)?.to_vec();
        let sw = StatusWord(reader.u16_be()?);
        reader.expect_end()?;
        Ok(Response { data, sw })
    }

    /// The bytes on the wire: data, then SW1-SW2.
    pub fn encode(&self) -> Result<Vec<u8>, ApduError> {
        if self.data.len() > RESPONSE_DATA_BYTES_MAX {
            return Err(ApduError::DataTooLong { length: self.data.len(), max: RESPONSE_DATA_BYTES_MAX });
        }
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.0.to_be_bytes());
        Ok(out)
    }
}

/// Splits a command whose data is longer than `chunk` bytes into a chain (ISO/IEC 7816-4
/// §5.3): every command but the last has [`CHAINING_CLA_BIT`] set in CLA and no Le; the last
/// keeps the original CLA and Le. A command that fits is returned alone, unchanged.
///
/// `chunk` is clamped to 1..=65 535. The chaining bit is defined for interindustry classes
/// (CLA `0x` and `4x`–`7x`); proprietary classes such as DESFire's `90` chain their own way
/// (`91 AF` frames), so do not chain those here.
pub fn chain(command: &Command, chunk: usize) -> Vec<Command> {
    let chunk = chunk.clamp(1, COMMAND_DATA_BYTES_MAX);
    if command.data.len() <= chunk {
        return vec![command.clone()];
    }
    let mut pieces = command.data.chunks(chunk).peekable();
    let mut commands = Vec::with_capacity(command.data.len().div_ceil(chunk));
    while let Some(piece) = pieces.next() {
        let last = pieces.peek().is_none();
        commands.push(Command {
            cla: if last { command.cla } else { command.cla | CHAINING_CLA_BIT },
            data: piece.to_vec(),
            le: if last { command.le } else { None },
            ..Command::new(command.cla, command.ins, command.p1, command.p2)
        });
    }
    commands
}

/// A transport as [`exchange`] sees it: one command APDU out, one response APDU back, or the
/// transport's own error. Any `FnMut` closure over a reader fits.
pub type Transmit<'a, E> = dyn FnMut(&[u8]) -> Result<Vec<u8>, E> + 'a;

/// Why an [`exchange`] failed, and whose fault it was.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExchangeError<E> {
    /// The transport failed; its error is passed through untouched.
    #[error("transport failed: {0}")]
    Transport(E),
    /// The card answered something malformed or broke the protocol (e.g. `6Cxx` twice, too
    /// many `61xx` rounds, more than 65 536 data bytes in total).
    #[error("card misbehaved: {0}")]
    CardMisbehaved(String),
    /// The caller's command cannot be encoded.
    #[error("invalid command: {0}")]
    InvalidCommand(ApduError),
}

/// Sends `command` and returns the complete response: it follows `61xx` with GET RESPONSE
/// (same CLA, INS `C0`, P1 = P2 = 0, Le = `xx`) and concatenates the data, and on `6Cxx`
/// re-sends the command once with Le = `xx`. At most [`GET_RESPONSE_ROUNDS_MAX`] GET RESPONSE
/// rounds and [`RESPONSE_DATA_BYTES_MAX`] data bytes in total; past either the card is at
/// fault. Any other status word, success or not, ends the exchange and is returned.
///
/// ```
/// use smartticket_card::apdu::{exchange, Command, StatusWord};
///
/// let mut replies = vec![vec![0x01, 0x61, 0x01], vec![0x02, 0x90, 0x00]].into_iter();
/// let mut transmit = |_: &[u8]| replies.next().ok_or("no more replies");
/// let response = exchange(&mut transmit, &Command::new(0x00, 0xB2, 0x01, 0x0C).le(256)).unwrap();
/// assert_eq!(response.data, [0x01, 0x02]);
/// assert_eq!(response.sw, StatusWord::SUCCESS);
/// ```
pub fn exchange<E>(transmit: &mut Transmit<'_, E>, command: &Command) -> Result<Response, ExchangeError<E>> {
    let mut response = transmit_one(transmit, command)?;
    if let StatusKind::WrongLe { exact } = response.sw.kind() {
        if !response.data.is_empty() {
            return Err(misbehaved(format!("{} carried {} data bytes", response.sw, response.data.len())));
        }
        response = transmit_one(transmit, &command.clone().le(exact))?;
        if let StatusKind::WrongLe { .. } = response.sw.kind() {
            return Err(misbehaved(format!("answered {} to a command re-sent with Le {exact}", response.sw)));
        }
    }
    let mut data = Vec::new();
    let mut rounds: usize = 0;
    loop {
        append_bounded(&mut data, &response.data)?;
        let StatusKind::MoreData { available } = response.sw.kind() else {
            return Ok(Response { data, sw: response.sw });
        };
        if rounds == GET_RESPONSE_ROUNDS_MAX {
            return Err(misbehaved(format!(
                "still answering 61xx after {GET_RESPONSE_ROUNDS_MAX} GET RESPONSE rounds"
            )));
        }
        rounds += 1;
        let get_response = Command::new(command.cla, INS_GET_RESPONSE, 0x00, 0x00).le(available);
        response = transmit_one(transmit, &get_response)?;
    }
}

fn transmit_one<E>(transmit: &mut Transmit<'_, E>, command: &Command) -> Result<Response, ExchangeError<E>> {
    let bytes = command.encode().map_err(ExchangeError::InvalidCommand)?;
    let reply = transmit(&bytes).map_err(ExchangeError::Transport)?;
    Response::parse(&reply).map_err(|error| misbehaved(format!("malformed response: {error}")))
}

fn append_bounded<E>(data: &mut Vec<u8>, more: &[u8]) -> Result<(), ExchangeError<E>> {
    if data.len().saturating_add(more.len()) > RESPONSE_DATA_BYTES_MAX {
        return Err(misbehaved(format!("response data exceeds {RESPONSE_DATA_BYTES_MAX} bytes")));
    }
    data.extend_from_slice(more);
    Ok(())
}

fn misbehaved<E>(why: String) -> ExchangeError<E> {
    ExchangeError::CardMisbehaved(why)
}
