//! The simulator's command interpreter: one APDU in, one APDU out. Every failure is a
//! DESFire status, mapped to the answer in one place ([`SimCard::process`]); after any
//! failure the card drops the authentication and the pending transaction, as a real card
//! does.

use zeroize::Zeroizing;

use super::image::{
    APPLICATIONS_MAX, Application, Content, DATA_FILE_BYTES_MAX, FILES_MAX, KEYS_MAX, KeySlot, Record, SimFile,
    initial_content,
};
use super::{Auth, Incoming, SimCard};
use crate::desfire::codes::{Command, Status};
use crate::desfire::files::{AccessRights, CommMode, FileKind, FileSettings};
use crate::desfire::host::crc32_nk;
use crate::desfire::sm::CardAuth;
use crate::desfire::tmac;
use crate::desfire::{FRAME_DATA_BYTES_MAX, MESSAGE_BYTES_MAX, NATIVE_CLA, NATIVE_SW1};
use smartticket_crypto::cmac::CmacKey;

/// What a handler answers.
enum Reply {
    /// Final data, status OK.
    Done(Vec<u8>),
    /// Data, then status ADDITIONAL_FRAME (authentication part 1, or a frame requested).
    Continue(Vec<u8>),
}

type Outcome = Result<Reply, Status>;

/// Bytes of the header (file, offset, length) of data and record reads and writes.
const IO_HEADER_BYTES: usize = 7;

fn u24(bytes: &[u8], at: usize) -> Result<u32, Status> {
    match bytes.get(at..at + 3) {
        Some([a, b, c]) => Ok(u32::from_le_bytes([*a, *b, *c, 0])),
        _ => Err(Status::LENGTH_ERROR),
    }
}

fn byte(bytes: &[u8], at: usize) -> Result<u8, Status> {
    bytes.get(at).copied().ok_or(Status::LENGTH_ERROR)
}

fn i32_le(bytes: &[u8]) -> Result<i32, Status> {
    let array: [u8; 4] = bytes.try_into().map_err(|_| Status::LENGTH_ERROR)?;
    Ok(i32::from_le_bytes(array))
}

fn to_usize(value: u32) -> Result<usize, Status> {
    usize::try_from(value).map_err(|_| Status::BOUNDARY_ERROR)
}

/// Parses `CLA INS P1 P2 [Lc data] [Le]`, short form only (native frames are short).
fn parse_native(apdu: &[u8]) -> Result<(u8, &[u8]), [u8; 2]> {
    let (header, rest) = apdu.split_first_chunk::<4>().ok_or([0x67, 0x00])?;
    let [cla, ins, p1, p2] = *header;
    if cla != NATIVE_CLA {
        return Err([0x6E, 0x00]);
    }
    if p1 != 0 || p2 != 0 {
        return Err([0x6A, 0x86]);
    }
    match rest {
        [] | [_] => Ok((ins, &[])),
        [lc, body @ ..] => {
            let lc = usize::from(*lc);
            match body.len() {
                n if n == lc => Ok((ins, body)),
                n if n == lc + 1 => body.get(..lc).map(|data| (ins, data)).ok_or([0x67, 0x00]),
                _ => Err([0x67, 0x00]),
            }
        }
    }
}

impl SimCard {
    /// Runs one APDU and returns the answer. Never panics on any input.
    pub(super) fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        let (ins, data) = match parse_native(apdu) {
            Ok(parsed) => parsed,
            Err(sw) => {
                self.reset_session();
                return sw.to_vec();
            }
        };
        match self.dispatch(ins, data) {
            Ok(Reply::Done(data)) => self.send(data),
            Ok(Reply::Continue(mut data)) => {
                data.extend_from_slice(&[NATIVE_SW1, Status::ADDITIONAL_FRAME.0]);
                data
            }
            Err(status) => {
                self.reset_session();
                vec![NATIVE_SW1, status.0]
            }
        }
    }

    fn reset_session(&mut self) {
        self.volatile.auth = Auth::None;
        self.volatile.abort_transaction();
        self.volatile.incoming = None;
        self.volatile.outgoing.clear();
    }

    /// Answers `data`, in frames when it is longer than one.
    fn send(&mut self, data: Vec<u8>) -> Vec<u8> {
        self.volatile.outgoing = data.into();
        self.next_frame()
    }

    fn next_frame(&mut self) -> Vec<u8> {
        let take = self.volatile.outgoing.len().min(FRAME_DATA_BYTES_MAX);
        let mut frame: Vec<u8> = self.volatile.outgoing.drain(..take).collect();
        let status = if self.volatile.outgoing.is_empty() { Status::OK } else { Status::ADDITIONAL_FRAME };
        frame.extend_from_slice(&[NATIVE_SW1, status.0]);
        frame
    }

    fn dispatch(&mut self, ins: u8, data: &[u8]) -> Outcome {
        if ins == Command::AdditionalFrame.code() {
            return self.continuation(data);
        }
        if !self.volatile.outgoing.is_empty() || self.volatile.incoming.is_some() {
            return Err(Status::COMMAND_ABORTED);
        }
        if matches!(self.volatile.auth, Auth::Started { .. }) {
            return Err(Status::COMMAND_ABORTED);
        }
        let command = Command::from_code(ins).ok_or(Status::ILLEGAL_COMMAND)?;
        if let Some(expected) = self.expected_body(command, data)? {
            if data.len() < expected {
                self.volatile.incoming = Some(Incoming { command: ins, body: data.to_vec(), expected });
                return Ok(Reply::Continue(Vec::new()));
            }
            if data.len() > expected {
                return Err(Status::LENGTH_ERROR);
            }
        }
        self.execute(command, data)
    }

    fn continuation(&mut self, data: &[u8]) -> Outcome {
        if !self.volatile.outgoing.is_empty() {
            if !data.is_empty() {
                return Err(Status::LENGTH_ERROR);
            }
            let frame = self.next_frame();
            let (payload, status) = frame.split_at(frame.len().saturating_sub(2));
            return if status == [NATIVE_SW1, Status::OK.0] {
                Ok(Reply::Done(payload.to_vec()))
            } else {
                Ok(Reply::Continue(payload.to_vec()))
            };
        }
        if let Some(mut incoming) = self.volatile.incoming.take() {
            incoming.body.extend_from_slice(data);
            if incoming.body.len() > incoming.expected {
                return Err(Status::LENGTH_ERROR);
            }
            if incoming.body.len() < incoming.expected {
                self.volatile.incoming = Some(incoming);
                return Ok(Reply::Continue(Vec::new()));
            }
            let command = Command::from_code(incoming.command).ok_or(Status::ILLEGAL_COMMAND)?;
            return self.execute(command, &incoming.body);
        }
        match std::mem::replace(&mut self.volatile.auth, Auth::None) {
            Auth::Started { card_auth, key_no, previous } => {
                self.finish_authentication(card_auth, key_no, previous, data)
            }
            other => {
                self.volatile.auth = other;
                Err(Status::COMMAND_ABORTED)
            }
        }
    }

    /// For writes that may span frames: the whole body length, known from the header.
    fn expected_body(&self, command: Command, first: &[u8]) -> Result<Option<usize>, Status> {
        if !matches!(command, Command::WriteData | Command::WriteData2 | Command::WriteRecord | Command::WriteRecord2) {
            return Ok(None);
        }
        let file = byte(first, 0)?;
        let length = to_usize(u24(first, 4)?)?;
        let settings = self.file(file)?;
        let mode = settings.access.effective_mode(settings.mode, self.key_no(), true);
        let body = match mode {
            CommMode::Plain => length,
            CommMode::Mac => length + 8,
            CommMode::Full => (length / 16 + 1) * 16 + 8,
        };
        let total = IO_HEADER_BYTES + body;
        if total > MESSAGE_BYTES_MAX { Err(Status::LENGTH_ERROR) } else { Ok(Some(total)) }
    }

    fn key_no(&self) -> Option<u8> {
        match &self.volatile.auth {
            Auth::Session { key_no, .. } => Some(*key_no),
            _ => None,
        }
    }

    fn application(&self) -> Result<&Application, Status> {
        let aid = self.volatile.selected.ok_or(Status::PERMISSION_DENIED)?;
        self.image.application(aid).ok_or(Status::APPLICATION_NOT_FOUND)
    }

    fn file(&self, file: u8) -> Result<&SimFile, Status> {
        self.application()?.files.get(&file).ok_or(Status::FILE_NOT_FOUND)
    }

    fn has_tmac(&self) -> bool {
        self.application().map(|app| app.files.values().any(|f| f.kind == FileKind::TransactionMac)).unwrap_or(false)
    }

    fn is_tmac_file(&self, file: u8) -> bool {
        self.file(file).map(|f| f.kind == FileKind::TransactionMac).unwrap_or(false)
    }

    fn execute(&mut self, command: Command, body: &[u8]) -> Outcome {
        match command {
            Command::SelectApplication => self.select(body),
            Command::GetVersion => self.get_version(),
            Command::GetKeyVersion => self.get_key_version(body),
            Command::AuthenticateEv2First => self.start_authentication(body, true),
            Command::AuthenticateEv2NonFirst => self.start_authentication(body, false),
            Command::GetCardUid => self.get_card_uid(body),
            Command::ChangeKey => self.change_key(body),
            Command::CreateApplication => self.create_application(body),
            Command::CreateStdDataFile
            | Command::CreateBackupDataFile
            | Command::CreateValueFile
            | Command::CreateCyclicRecordFile => self.create_file(command, body),
            Command::CreateTransactionMacFile => self.create_tmac_file(body),
            Command::GetFileSettings => self.get_file_settings(body),
            Command::ReadData | Command::ReadData2 => self.read_data(command, body),
            Command::WriteData | Command::WriteData2 => self.write_data(command, body),
            Command::GetValue => self.get_value(body),
            Command::Credit | Command::Debit | Command::LimitedCredit => self.change_value(command, body),
            Command::ReadRecords | Command::ReadRecords2 => self.read_records(command, body),
            Command::WriteRecord | Command::WriteRecord2 => self.write_record(command, body),
            Command::CommitTransaction => self.commit(body),
            Command::AbortTransaction => self.abort(body),
            Command::ChangeFileSettings | Command::AdditionalFrame => Err(Status::ILLEGAL_COMMAND),
        }
    }

    // --- Secure messaging on the card side -------------------------------------------

    /// Unwraps a command body: `header_len` plain bytes, then data (plain, MACed, or
    /// encrypted), then for MAC and Full an 8-byte MAC. Plain outside a session only.
    fn unwrap_command(
        &self,
        code: u8,
        body: &[u8],
        header_len: usize,
        mode: CommMode,
    ) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), Status> {
        let (header, rest) = body.split_at_checked(header_len).ok_or(Status::LENGTH_ERROR)?;
        let Auth::Session { channel, .. } = &self.volatile.auth else {
            return if mode == CommMode::Plain {
                Ok((header.to_vec(), Zeroizing::new(rest.to_vec())))
            } else {
                Err(Status::AUTHENTICATION_ERROR)
            };
        };
        match mode {
            CommMode::Plain => Ok((header.to_vec(), Zeroizing::new(rest.to_vec()))),
            CommMode::Mac | CommMode::Full => {
                let (payload, mac) = rest
                    .split_at_checked(rest.len().checked_sub(8).ok_or(Status::LENGTH_ERROR)?)
                    .ok_or(Status::LENGTH_ERROR)?;
                channel.verify_command_mac(code, header, payload, mac).map_err(|_| Status::INTEGRITY_ERROR)?;
                let data = if mode == CommMode::Full && !payload.is_empty() {
                    channel.decrypt_command(payload).map_err(|_| Status::INTEGRITY_ERROR)?
                } else {
                    Zeroizing::new(payload.to_vec())
                };
                Ok((header.to_vec(), data))
            }
        }
    }

    /// Wraps answer data per `mode` and moves the session to the next command.
    fn seal(&mut self, data: &[u8], mode: CommMode) -> Outcome {
        let Auth::Session { channel, .. } = &mut self.volatile.auth else {
            return Ok(Reply::Done(data.to_vec()));
        };
        let mut answer = match mode {
            CommMode::Plain => data.to_vec(),
            CommMode::Mac => data.to_vec(),
            CommMode::Full if data.is_empty() => Vec::new(),
            CommMode::Full => channel.encrypt_response(data).map_err(|_| Status::AUTHENTICATION_ERROR)?,
        };
        if mode != CommMode::Plain {
            let mac = channel.response_mac(Status::OK.0, &answer).map_err(|_| Status::AUTHENTICATION_ERROR)?;
            answer.extend_from_slice(&mac);
        }
        channel.advance().map_err(|_| Status::AUTHENTICATION_ERROR)?;
        Ok(Reply::Done(answer))
    }

    /// The mode administrative commands use: MAC in a session, plain outside.
    fn admin_mode(&self) -> CommMode {
        if self.key_no().is_some() { CommMode::Mac } else { CommMode::Plain }
    }

    fn require_key(&self, key_no: u8) -> Result<(), Status> {
        match self.key_no() {
            Some(held) if held == key_no => Ok(()),
            Some(_) => Err(Status::PERMISSION_DENIED),
            None => Err(Status::AUTHENTICATION_ERROR),
        }
    }

    /// The file, if the session may access it (`write` for writes and debits), and the
    /// communication mode the access uses.
    fn accessible(&self, number: u8, write: bool) -> Result<(SimFile, CommMode), Status> {
        let file = self.file(number)?.clone();
        let key = self.key_no();
        let allowed = if write { file.access.can_write(key) } else { file.access.can_read(key) };
        if !allowed {
            return Err(if key.is_some() { Status::PERMISSION_DENIED } else { Status::AUTHENTICATION_ERROR });
        }
        let mode = file.access.effective_mode(file.mode, key, write);
        Ok((file, mode))
    }

    fn tmi<F>(&mut self, file: u8, update: F) -> Result<(), Status>
    where
        F: FnOnce(&mut tmac::Tmi) -> Result<(), tmac::TmiFull>,
    {
        if self.has_tmac() && !self.is_tmac_file(file) {
            update(&mut self.volatile.tmi).map_err(|_| Status::COUNT_ERROR)?;
        }
        Ok(())
    }

    // --- Card level and authentication -----------------------------------------------

    fn select(&mut self, body: &[u8]) -> Outcome {
        let aid: [u8; 3] = body.try_into().map_err(|_| Status::LENGTH_ERROR)?;
        self.reset_session();
        if aid == [0, 0, 0] {
            self.volatile.selected = None;
        } else if self.image.application(aid).is_some() {
            self.volatile.selected = Some(aid);
        } else {
            self.volatile.selected = None;
            return Err(Status::APPLICATION_NOT_FOUND);
        }
        Ok(Reply::Done(Vec::new()))
    }

    fn get_version(&mut self) -> Outcome {
        // Hardware and software: NXP, DESFire, EV2 (major 0x12), 8 kB, ISO 14443-4; then UID,
        // batch number, production week and year.
        let mut version = vec![0x04, 0x01, 0x01, 0x12, 0x00, 0x1A, 0x05, 0x04, 0x01, 0x01, 0x12, 0x00, 0x1A, 0x05];
        version.extend_from_slice(&self.image.uid);
        version.extend_from_slice(&[0x53, 0x54, 0x53, 0x49, 0x4D, 0x01, 0x26]);
        Ok(Reply::Done(version))
    }

    fn key_slot(&self, key_no: u8) -> Result<&KeySlot, Status> {
        match self.volatile.selected {
            None if key_no == 0 => Ok(&self.image.picc_key),
            None => Err(Status::NO_SUCH_KEY),
            Some(_) => self.application()?.keys.get(usize::from(key_no)).ok_or(Status::NO_SUCH_KEY),
        }
    }

    fn get_key_version(&mut self, body: &[u8]) -> Outcome {
        let mode = self.admin_mode();
        let (header, _) = self.unwrap_command(Command::GetKeyVersion.code(), body, 1, mode)?;
        let version = self.key_slot(byte(&header, 0)?)?.version;
        self.seal(&[version], mode)
    }

    fn start_authentication(&mut self, body: &[u8], first: bool) -> Outcome {
        let key_no = byte(body, 0)?;
        let expected_len = if first { 2 } else { 1 };
        if body.len() < expected_len || body.len() > 8 {
            return Err(Status::LENGTH_ERROR);
        }
        let key = Zeroizing::new(self.key_slot(key_no)?.key);
        let previous = match std::mem::replace(&mut self.volatile.auth, Auth::None) {
            Auth::Session { channel, .. } if !first => Some(channel),
            _ if !first => return Err(Status::AUTHENTICATION_ERROR),
            _ => {
                // A first authentication starts a new transaction.
                self.volatile.abort_transaction();
                None
            }
        };
        let rnd_b = self.random::<16>();
        let (card_auth, encrypted) = CardAuth::start(key, rnd_b).map_err(|_| Status::AUTHENTICATION_ERROR)?;
        self.volatile.auth = Auth::Started { card_auth, key_no, previous };
        Ok(Reply::Continue(encrypted.to_vec()))
    }

    fn finish_authentication(
        &mut self,
        card_auth: CardAuth,
        key_no: u8,
        previous: Option<crate::desfire::sm::Channel>,
        part2: &[u8],
    ) -> Outcome {
        match previous {
            None => {
                let ti = self.random::<4>();
                let (channel, answer) = card_auth.finish_first(part2, ti).map_err(|_| Status::AUTHENTICATION_ERROR)?;
                self.volatile.auth = Auth::Session { channel, key_no };
                Ok(Reply::Done(answer.to_vec()))
            }
            Some(mut channel) => {
                let answer =
                    card_auth.finish_non_first(part2, &mut channel).map_err(|_| Status::AUTHENTICATION_ERROR)?;
                self.volatile.auth = Auth::Session { channel, key_no };
                Ok(Reply::Done(answer.to_vec()))
            }
        }
    }

    fn get_card_uid(&mut self, body: &[u8]) -> Outcome {
        if self.key_no().is_none() {
            return Err(Status::AUTHENTICATION_ERROR);
        }
        self.unwrap_command(Command::GetCardUid.code(), body, 0, CommMode::Mac)?;
        let uid = self.image.uid;
        self.seal(&uid, CommMode::Full)
    }

    fn change_key(&mut self, body: &[u8]) -> Outcome {
        self.require_key(0)?;
        let (header, data) = self.unwrap_command(Command::ChangeKey.code(), body, 1, CommMode::Full)?;
        let key_no = byte(&header, 0)?;
        let authenticated_with_it = self.key_no() == Some(key_no);
        let old = self.key_slot(key_no)?.key;
        let slot = if authenticated_with_it {
            let (new, rest) = data.split_first_chunk::<16>().ok_or(Status::LENGTH_ERROR)?;
            let [version] = rest else { return Err(Status::LENGTH_ERROR) };
            KeySlot { key: *new, version: *version }
        } else {
            let (xored, rest) = data.split_first_chunk::<16>().ok_or(Status::LENGTH_ERROR)?;
            let [version, crc @ ..] = rest else { return Err(Status::LENGTH_ERROR) };
            let mut new = [0_u8; 16];
            for ((slot, x), o) in new.iter_mut().zip(xored).zip(&old) {
                *slot = x ^ o;
            }
            if crc != crc32_nk(&new).to_le_bytes() {
                return Err(Status::INTEGRITY_ERROR);
            }
            KeySlot { key: new, version: *version }
        };
        let mut image = self.image.clone();
        match self.volatile.selected {
            None => image.picc_key = slot,
            Some(aid) => {
                let app = image.application_mut(aid).ok_or(Status::APPLICATION_NOT_FOUND)?;
                *app.keys.get_mut(usize::from(key_no)).ok_or(Status::NO_SUCH_KEY)? = slot;
            }
        }
        self.store(image)?;
        if authenticated_with_it {
            // The session's key is gone: the card drops the authentication and answers
            // without a MAC.
            self.volatile.auth = Auth::None;
            return Ok(Reply::Done(Vec::new()));
        }
        self.seal(&[], CommMode::Mac)
    }

    /// Replaces the committed image and saves it; a failed save leaves the old image.
    fn store(&mut self, image: super::CardImage) -> Result<(), Status> {
        let previous = std::mem::replace(&mut self.image, image);
        if self.persist().is_err() {
            self.image = previous;
            return Err(Status::MEMORY_ERROR);
        }
        Ok(())
    }

    // --- Creating applications and files ----------------------------------------------

    fn create_application(&mut self, body: &[u8]) -> Outcome {
        if self.volatile.selected.is_some() {
            return Err(Status::PERMISSION_DENIED);
        }
        self.require_key(0)?;
        let mode = self.admin_mode();
        let (header, _) = self.unwrap_command(Command::CreateApplication.code(), body, 5, mode)?;
        let aid: [u8; 3] = header.get(..3).and_then(|a| a.try_into().ok()).ok_or(Status::LENGTH_ERROR)?;
        let settings2 = byte(&header, 4)?;
        let key_count = usize::from(settings2 & 0x0F);
        if settings2 & 0xC0 != 0x80 || key_count == 0 || key_count > KEYS_MAX || aid == [0, 0, 0] {
            return Err(Status::PARAMETER_ERROR);
        }
        if self.image.application(aid).is_some() {
            return Err(Status::DUPLICATE_ERROR);
        }
        if self.image.applications.len() >= APPLICATIONS_MAX {
            return Err(Status::COUNT_ERROR);
        }
        let mut image = self.image.clone();
        let app = Application { keys: vec![KeySlot::blank(); key_count], files: Default::default() };
        image.applications.insert(hex::encode_upper(aid), app);
        self.store(image)?;
        self.seal(&[], mode)
    }

    fn add_file(&mut self, number: u8, file: SimFile) -> Result<(), Status> {
        let aid = self.volatile.selected.ok_or(Status::PERMISSION_DENIED)?;
        let mut image = self.image.clone();
        let app = image.application_mut(aid).ok_or(Status::APPLICATION_NOT_FOUND)?;
        if app.files.contains_key(&number) {
            return Err(Status::DUPLICATE_ERROR);
        }
        if app.files.len() >= FILES_MAX || number > 0x1F {
            return Err(Status::COUNT_ERROR);
        }
        app.files.insert(number, file);
        self.store(image)
    }

    fn create_file(&mut self, command: Command, body: &[u8]) -> Outcome {
        self.require_key(0)?;
        let header_len = match command {
            Command::CreateValueFile => 17,
            Command::CreateCyclicRecordFile => 10,
            _ => 7,
        };
        let mode = self.admin_mode();
        let (header, _) = self.unwrap_command(command.code(), body, header_len, mode)?;
        let number = byte(&header, 0)?;
        let file_mode = CommMode::from_option(byte(&header, 1)?).ok_or(Status::PARAMETER_ERROR)?;
        let access = AccessRights::from_bytes([byte(&header, 2)?, byte(&header, 3)?]);
        let kind = match command {
            Command::CreateStdDataFile | Command::CreateBackupDataFile => {
                let size = u24(&header, 4)?;
                if size == 0 || size > DATA_FILE_BYTES_MAX {
                    return Err(Status::PARAMETER_ERROR);
                }
                if command == Command::CreateStdDataFile {
                    FileKind::StdData { size }
                } else {
                    FileKind::BackupData { size }
                }
            }
            Command::CreateValueFile => {
                let lower = i32_le(header.get(4..8).ok_or(Status::LENGTH_ERROR)?)?;
                let upper = i32_le(header.get(8..12).ok_or(Status::LENGTH_ERROR)?)?;
                let value = i32_le(header.get(12..16).ok_or(Status::LENGTH_ERROR)?)?;
                if lower > upper || value < lower || value > upper {
                    return Err(Status::BOUNDARY_ERROR);
                }
                FileKind::Value { lower, upper, value, limited_credit: byte(&header, 16)? & 0x01 == 0x01 }
            }
            _ => {
                let record_size = u24(&header, 4)?;
                let max_records = u24(&header, 7)?;
                if !(1..=256).contains(&record_size) || !(2..=64).contains(&max_records) {
                    return Err(Status::PARAMETER_ERROR);
                }
                FileKind::CyclicRecord { record_size, max_records }
            }
        };
        let content = initial_content(&kind);
        self.add_file(number, SimFile { kind, mode: file_mode, access, content })?;
        self.seal(&[], mode)
    }

    fn create_tmac_file(&mut self, body: &[u8]) -> Outcome {
        self.require_key(0)?;
        let (header, data) = self.unwrap_command(Command::CreateTransactionMacFile.code(), body, 5, CommMode::Full)?;
        let number = byte(&header, 0)?;
        let file_mode = CommMode::from_option(byte(&header, 1)?).ok_or(Status::PARAMETER_ERROR)?;
        let access = AccessRights::from_bytes([byte(&header, 2)?, byte(&header, 3)?]);
        if byte(&header, 4)? != 0x02 {
            return Err(Status::PARAMETER_ERROR); // only AES transaction MAC keys
        }
        let (key, rest) = data.split_first_chunk::<16>().ok_or(Status::LENGTH_ERROR)?;
        let [key_version] = rest else { return Err(Status::LENGTH_ERROR) };
        if self.has_tmac() {
            return Err(Status::DUPLICATE_ERROR);
        }
        let content = Content::TransactionMac { key: *key, key_version: *key_version, tmc: 0, tmv: [0; 8] };
        self.add_file(number, SimFile { kind: FileKind::TransactionMac, mode: file_mode, access, content })?;
        self.seal(&[], CommMode::Mac)
    }

    fn get_file_settings(&mut self, body: &[u8]) -> Outcome {
        let mode = self.admin_mode();
        let (header, _) = self.unwrap_command(Command::GetFileSettings.code(), body, 1, mode)?;
        let file = self.file(byte(&header, 0)?)?;
        let mut kind = file.kind.clone();
        let mut records = None;
        match (&mut kind, &file.content) {
            (FileKind::Value { value, .. }, Content::Value { limited_credit_value, .. }) => {
                *value = *limited_credit_value
            }
            (FileKind::CyclicRecord { .. }, Content::Records { records: stored }) => {
                records = Some(u32::try_from(stored.len()).unwrap_or(0));
            }
            _ => {}
        }
        let settings = FileSettings { kind, mode: file.mode, access: file.access, records };
        self.seal(&settings.encode(), mode)
    }

    // --- Data, value and record files -------------------------------------------------

    /// The content a command sees: the pending content if this transaction changed the
    /// file, otherwise the committed one.
    fn current(&self, file: u8) -> Result<Content, Status> {
        match self.volatile.pending.get(&file) {
            Some(content) => Ok(content.clone()),
            None => Ok(self.file(file)?.content.clone()),
        }
    }

    fn read_data(&mut self, command: Command, body: &[u8]) -> Outcome {
        let number = byte(body, 0)?;
        let (file, mode) = self.accessible(number, false)?;
        let (header, _) = self.unwrap_command(command.code(), body, IO_HEADER_BYTES, mode)?;
        let offset = to_usize(u24(&header, 1)?)?;
        let length = to_usize(u24(&header, 4)?)?;
        let bytes = match &file.content {
            Content::Data { bytes } => bytes.clone(),
            Content::TransactionMac { tmc, tmv, .. } => {
                let mut out = tmc.to_le_bytes().to_vec();
                out.extend_from_slice(tmv);
                out
            }
            _ => return Err(Status::PERMISSION_DENIED),
        };
        let end = if length == 0 { bytes.len() } else { offset.checked_add(length).ok_or(Status::BOUNDARY_ERROR)? };
        let data = bytes.get(offset..end).ok_or(Status::BOUNDARY_ERROR)?.to_vec();
        if data.len() > MESSAGE_BYTES_MAX - 32 {
            return Err(Status::BOUNDARY_ERROR);
        }
        let (offset_u32, length_u32) = (u24(&header, 1)?, u24(&header, 4)?);
        self.tmi(number, |tmi| tmi.read_data(command, number, offset_u32, length_u32, &data))?;
        self.seal(&data, mode)
    }

    fn write_data(&mut self, command: Command, body: &[u8]) -> Outcome {
        let number = byte(body, 0)?;
        let (file, mode) = self.accessible(number, true)?;
        let (header, data) = self.unwrap_command(command.code(), body, IO_HEADER_BYTES, mode)?;
        let offset = to_usize(u24(&header, 1)?)?;
        let length = to_usize(u24(&header, 4)?)?;
        if data.len() != length {
            return Err(Status::LENGTH_ERROR);
        }
        let Content::Data { bytes } = self.current(number)? else { return Err(Status::PERMISSION_DENIED) };
        let mut bytes = bytes;
        let end = offset.checked_add(length).ok_or(Status::BOUNDARY_ERROR)?;
        bytes.get_mut(offset..end).ok_or(Status::BOUNDARY_ERROR)?.copy_from_slice(&data);
        let offset_u32 = u24(&header, 1)?;
        self.tmi(number, |tmi| tmi.write_data(command, number, offset_u32, &data))?;
        match file.kind {
            FileKind::StdData { .. } => {
                // Standard data files are not transactional: the write is immediate.
                let aid = self.volatile.selected.ok_or(Status::PERMISSION_DENIED)?;
                let mut image = self.image.clone();
                let stored =
                    image.application_mut(aid).and_then(|a| a.files.get_mut(&number)).ok_or(Status::FILE_NOT_FOUND)?;
                stored.content = Content::Data { bytes };
                self.store(image)?;
            }
            _ => {
                self.volatile.pending.insert(number, Content::Data { bytes });
            }
        }
        self.seal(&[], mode)
    }

    fn get_value(&mut self, body: &[u8]) -> Outcome {
        let number = byte(body, 0)?;
        let file = self.file(number)?.clone();
        let key = self.key_no();
        if !(file.access.read.allows(key) || file.access.write.allows(key) || file.access.read_write.allows(key)) {
            return Err(if key.is_some() { Status::PERMISSION_DENIED } else { Status::AUTHENTICATION_ERROR });
        }
        let mode = file.access.effective_mode(file.mode, key, false);
        self.unwrap_command(Command::GetValue.code(), body, 1, mode)?;
        let Content::Value { value, .. } = self.current(number)? else { return Err(Status::PERMISSION_DENIED) };
        self.tmi(number, |tmi| tmi.value(Command::GetValue, number, value))?;
        self.seal(&value.to_le_bytes(), mode)
    }

    fn change_value(&mut self, command: Command, body: &[u8]) -> Outcome {
        let number = byte(body, 0)?;
        let file = self.file(number)?.clone();
        let key = self.key_no();
        let allowed = match command {
            Command::Credit => file.access.read_write.allows(key),
            _ => file.access.write.allows(key) || file.access.read_write.allows(key),
        };
        if !allowed {
            return Err(if key.is_some() { Status::PERMISSION_DENIED } else { Status::AUTHENTICATION_ERROR });
        }
        let mode = file.access.effective_mode(file.mode, key, true);
        let (_, data) = self.unwrap_command(command.code(), body, 1, mode)?;
        let amount = i32_le(&data)?;
        let FileKind::Value { lower, upper, limited_credit, .. } = file.kind else {
            return Err(Status::PERMISSION_DENIED);
        };
        let Content::Value { value, limited_credit_value } = self.current(number)? else {
            return Err(Status::PERMISSION_DENIED);
        };
        if amount < 0 {
            return Err(Status::PARAMETER_ERROR);
        }
        let (new_value, new_limited) = match command {
            Command::Credit => (value.checked_add(amount).ok_or(Status::BOUNDARY_ERROR)?, limited_credit_value),
            Command::Debit => (value.checked_sub(amount).ok_or(Status::BOUNDARY_ERROR)?, limited_credit_value),
            _ => {
                if !limited_credit {
                    return Err(Status::PERMISSION_DENIED);
                }
                if amount > limited_credit_value {
                    return Err(Status::BOUNDARY_ERROR);
                }
                (value.checked_add(amount).ok_or(Status::BOUNDARY_ERROR)?, 0)
            }
        };
        if new_value < lower || new_value > upper {
            return Err(Status::BOUNDARY_ERROR);
        }
        self.tmi(number, |tmi| tmi.value(command, number, amount))?;
        self.volatile.pending.insert(number, Content::Value { value: new_value, limited_credit_value: new_limited });
        if command == Command::Debit {
            let debited = self.volatile.debited.entry(number).or_insert(0);
            *debited = debited.saturating_add(amount);
        }
        self.seal(&[], mode)
    }

    fn read_records(&mut self, command: Command, body: &[u8]) -> Outcome {
        let number = byte(body, 0)?;
        let (file, mode) = self.accessible(number, false)?;
        let (header, _) = self.unwrap_command(command.code(), body, IO_HEADER_BYTES, mode)?;
        let Content::Records { records } = &file.content else { return Err(Status::PERMISSION_DENIED) };
        let newest_offset = to_usize(u24(&header, 1)?)?;
        let count = to_usize(u24(&header, 4)?)?;
        let available = records.len().checked_sub(newest_offset).filter(|a| *a > 0).ok_or(Status::BOUNDARY_ERROR)?;
        let count = if count == 0 { available } else { count };
        if count > available {
            return Err(Status::BOUNDARY_ERROR);
        }
        let end = records.len() - newest_offset;
        let data: Vec<u8> = records
            .get(end - count..end)
            .ok_or(Status::BOUNDARY_ERROR)?
            .iter()
            .flat_map(|r| r.0.iter().copied())
            .collect();
        if data.len() > MESSAGE_BYTES_MAX - 32 {
            return Err(Status::BOUNDARY_ERROR);
        }
        let (first, requested) = (u24(&header, 1)?, u24(&header, 4)?);
        self.tmi(number, |tmi| tmi.read_records(command, number, first, requested, &data))?;
        self.seal(&data, mode)
    }

    fn write_record(&mut self, command: Command, body: &[u8]) -> Outcome {
        let number = byte(body, 0)?;
        let (file, mode) = self.accessible(number, true)?;
        let (header, data) = self.unwrap_command(command.code(), body, IO_HEADER_BYTES, mode)?;
        let FileKind::CyclicRecord { record_size, max_records } = file.kind else {
            return Err(Status::PERMISSION_DENIED);
        };
        let offset = to_usize(u24(&header, 1)?)?;
        let length = to_usize(u24(&header, 4)?)?;
        let end = offset.checked_add(length).ok_or(Status::BOUNDARY_ERROR)?;
        if data.len() != length || end > to_usize(record_size)? {
            return Err(Status::BOUNDARY_ERROR);
        }
        let Content::Records { mut records } = self.current(number)? else { return Err(Status::PERMISSION_DENIED) };
        if !self.volatile.pending.contains_key(&number) {
            records.push(Record(vec![0; to_usize(record_size)?]));
            if records.len() > to_usize(max_records)? {
                records.remove(0);
            }
        }
        let newest = records.last_mut().ok_or(Status::MEMORY_ERROR)?;
        newest.0.get_mut(offset..end).ok_or(Status::BOUNDARY_ERROR)?.copy_from_slice(&data);
        let offset_u32 = u24(&header, 1)?;
        self.tmi(number, |tmi| tmi.write_record(command, number, offset_u32, &data))?;
        self.volatile.pending.insert(number, Content::Records { records });
        self.seal(&[], mode)
    }

    // --- Transactions -----------------------------------------------------------------

    fn commit(&mut self, body: &[u8]) -> Outcome {
        let mode = self.admin_mode();
        let header_len = if mode == CommMode::Plain { body.len() } else { body.len().saturating_sub(8) };
        if header_len > 1 {
            return Err(Status::LENGTH_ERROR);
        }
        let (header, _) = self.unwrap_command(Command::CommitTransaction.code(), body, header_len, mode)?;
        let wants_tmac = header.first().is_some_and(|option| option & 0x01 == 0x01);
        let aid = self.volatile.selected.ok_or(Status::PERMISSION_DENIED)?;
        let mut image = self.image.clone();
        let uid = image.uid;
        let app = image.application_mut(aid).ok_or(Status::APPLICATION_NOT_FOUND)?;
        for (number, content) in std::mem::take(&mut self.volatile.pending) {
            let file = app.files.get_mut(&number).ok_or(Status::FILE_NOT_FOUND)?;
            file.content = content;
        }
        for (number, debited) in std::mem::take(&mut self.volatile.debited) {
            if let Some(SimFile { content: Content::Value { limited_credit_value, .. }, .. }) =
                app.files.get_mut(&number)
            {
                *limited_credit_value = debited;
            }
        }
        let tmi = std::mem::take(&mut self.volatile.tmi);
        let mut proof = None;
        if let Some(Content::TransactionMac { key, tmc, tmv, .. }) =
            app.files.values_mut().map(|f| &mut f.content).find(|c| matches!(c, Content::TransactionMac { .. }))
        {
            if !tmi.is_empty() {
                // The counter strictly increases and never wraps: at its end the card
                // refuses further transactions rather than repeat a value.
                *tmc = tmc.checked_add(1).filter(|t| *t < u32::MAX).ok_or(Status::COUNT_ERROR)?;
                *tmv = tmac::transaction_mac(&CmacKey::new(key), *tmc, &uid, tmi.as_bytes());
            }
            proof = Some((*tmc, *tmv));
        } else if wants_tmac {
            return Err(Status::PARAMETER_ERROR);
        }
        self.store(image)?;
        let answer = match (wants_tmac, proof) {
            (true, Some((tmc, tmv))) => {
                let mut answer = tmc.to_le_bytes().to_vec();
                answer.extend_from_slice(&tmv);
                answer
            }
            _ => Vec::new(),
        };
        self.seal(&answer, mode)
    }

    fn abort(&mut self, body: &[u8]) -> Outcome {
        let mode = self.admin_mode();
        self.unwrap_command(Command::AbortTransaction.code(), body, 0, mode)?;
        self.volatile.abort_transaction();
        self.seal(&[], mode)
    }
}
