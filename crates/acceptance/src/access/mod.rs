//! Access-control mode: the validator engine's idea applied to a door controller. It owns a
//! local list of identifiers (up to 64 bits, any length), decides each presentation offline,
//! and journals every decision and every list change before answering; the REST API and the
//! shell commands are thin layers over [`Controller`].
//!
//! The device directory holds `access-list.bin` (format in `list.rs`) and `journal/` (the
//! durable journal; its lock keeps a second process off the whole directory).
//!
//! Order of checks for a presentation: unknown, blocked, not yet valid, expired, wrong door,
//! passback. List changes go to the journal first, then to the list file: a change in effect
//! is always in the journal, at worst with a journalled change that did not take effect.

mod error;
mod event;
mod files;
mod grant;
mod identifier;
mod list;

use std::path::{Path, PathBuf};

pub use error::AccessError;
pub use event::{AccessDecision, AccessEvent, DenyReason, JournaledEvent, ListChange, Presentation};
pub use files::{JOURNAL_DIRECTORY_NAME, LIST_FILE_NAME};
pub use grant::{DOORS_MAX, Doors, Grant, GrantError, LABEL_BYTES_MAX};
pub use identifier::{IDENTIFIER_BITS_MAX, IDENTIFIER_TEXT_BYTES_MAX, Identifier, IdentifierError};
pub use list::{
    ACCESS_LIST_ENTRIES_MAX, AccessList, LIST_ENTRY_BYTES_MAX, LIST_FILE_BYTES_MAX, LIST_FORMAT_VERSION,
    LIST_HEADER_BYTES, ListDecodeError, ListHeader, ListMalformed, PutError, decode_header,
};

use smartticket_core::Timestamp;

use crate::engine::{PASSBACK_SECONDS_MAX, Passback};
use crate::journal::{DEVICE_ID_BYTES, DeviceId, Journal, JournalLimits, Recovery, UPLOAD_BATCH_RECORDS_MAX};
use crate::lists::{MEDIUM_ID_BYTES, MediumKey, MediumKind};

/// Longest actor name, in bytes: a user name or `api:<name>` fits, and the bound keeps a
/// change event well inside a journal record.
pub const ACTOR_BYTES_MAX: usize = 64;
/// Most identifiers one [`Controller::list`] call returns: a page for a screen or an API
/// response, not the whole list.
pub const LIST_PAGE_LIMIT_MAX: usize = 1_000;
/// Most events one [`Controller::events`] call returns (a journal read stays a few MB).
pub const EVENTS_LIMIT_MAX: u32 = 1_000;

const _: () = assert!(EVENTS_LIMIT_MAX <= UPLOAD_BATCH_RECORDS_MAX);
// A change event holds a grant, an actor and fixed fields; JSON escaping at most doubles
// the label and the actor (control characters are refused). It must fit one record.
const _: () = assert!(512 + 2 * (LABEL_BYTES_MAX + ACTOR_BYTES_MAX) <= crate::journal::RECORD_PAYLOAD_BYTES_MAX);

/// A presentation's decision and where it sits in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented {
    /// The journal sequence of the decision.
    pub sequence: u64,
    /// Whether the door opens.
    pub decision: AccessDecision,
}

/// A list change that took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The journal sequence of the change.
    pub sequence: u64,
    /// The list revision it made.
    pub revision: u64,
    /// The grant it replaced or removed.
    pub previous: Option<Grant>,
}

/// One door controller: its list, its journal and recent grants; see the module docs.
#[derive(Debug)]
pub struct Controller {
    device: u32,
    list_path: PathBuf,
    list: AccessList,
    journal: Journal,
    passback: Passback,
}

impl Controller {
    /// Opens the controller in `directory` (created if missing), as device `device`, refusing
    /// a second grant at the same door within `passback_seconds` (0: no anti-passback).
    /// A new directory gets an empty list. The journal uses [`JournalLimits::VALIDATOR`].
    pub fn open(directory: &Path, device: u32, passback_seconds: u32) -> Result<(Controller, Recovery), AccessError> {
        if passback_seconds > PASSBACK_SECONDS_MAX {
            return Err(AccessError::PassbackWindow { seconds: passback_seconds });
        }
        files::create_directory(directory)?;
        let journal_directory = directory.join(JOURNAL_DIRECTORY_NAME);
        files::create_directory(&journal_directory)?;
        // The journal first: its lock keeps any other process away from the list file too.
        let (journal, recovery) = Journal::open(&journal_directory, device_id(device), JournalLimits::VALIDATOR)?;
        let list_path = directory.join(LIST_FILE_NAME);
        files::remove_leftover(&list_path)?;
        let list = match files::read_list(&list_path, device)? {
            Some(list) => list,
            // A journal without events: a new device, or one that stopped during its first
            // open. Either way no pass was ever stored.
            None if journal.sequence_next() == 1 => {
                let list = AccessList::new(device);
                files::write_list(&list_path, &list)?;
                list
            }
            None => return Err(AccessError::ListMissing { path: list_path }),
        };
        assert_eq!(list.device(), device);
        let passback = Passback::new(passback_seconds);
        Ok((Controller { device, list_path, list, journal, passback }, recovery))
    }

    /// The device number.
    #[must_use]
    pub fn device(&self) -> u32 {
        self.device
    }

    /// The list (read-only: changes go through [`Controller::put`] and
    /// [`Controller::remove`], which journal them).
    #[must_use]
    pub fn access_list(&self) -> &AccessList {
        &self.list
    }

    /// The sequence the next event gets.
    #[must_use]
    pub fn sequence_next(&self) -> u64 {
        self.journal.sequence_next()
    }

    /// Decides whether `identifier` may pass `door` at `at`, and journals the decision
    /// (synced) before returning it: the lock may open only on a returned decision.
    pub fn present(&mut self, identifier: Identifier, door: u8, at: Timestamp) -> Result<Presented, AccessError> {
        if grant::door_bit(u32::from(door)).is_none() {
            return Err(AccessError::DoorOutOfRange { door: u32::from(door) });
        }
        let passback_key = passback_key(&identifier, door);
        let now_s = unix_seconds(at);
        let grant = self.list.get(&identifier);
        let decision = match decide(grant, door, at) {
            None if self.passback.is_passback(&passback_key, now_s) => {
                AccessDecision::Denied { reason: DenyReason::Passback }
            }
            None => AccessDecision::Granted,
            Some(reason) => AccessDecision::Denied { reason },
        };
        let event = AccessEvent::AccessPresented(Presentation {
            device: self.device,
            at,
            identifier,
            door,
            decision,
            label: grant.map(|grant| grant.label.clone()),
            list_revision: self.list.revision(),
        });
        let sequence = self.append(&event)?;
        // Only a journalled grant counts for passback: one the journal refused never opened.
        if decision.is_granted() {
            self.passback.accepted(passback_key, now_s);
        }
        Ok(Presented { sequence, decision })
    }

    /// Adds `identifier` with `grant`, or replaces its grant; `actor` names who did it.
    /// Journalled, then stored; on any error the list is as it was.
    pub fn put(
        &mut self,
        identifier: Identifier,
        grant: Grant,
        actor: &str,
        at: Timestamp,
    ) -> Result<Changed, AccessError> {
        check_actor(actor)?;
        grant.check()?;
        let full = self.list.len() >= ACCESS_LIST_ENTRIES_MAX as usize;
        if full && self.list.get(&identifier).is_none() {
            return Err(AccessError::ListFull);
        }
        let change = self.change(actor, at, identifier, Some(grant.clone()));
        let sequence = self.append(&AccessEvent::AccessPut(change))?;
        let revision_before = self.list.revision();
        let previous = self.list.put(identifier, grant).map_err(|error| match error {
            PutError::Grant(error) => AccessError::Grant(error),
            PutError::Full(_) => AccessError::ListFull,
        })?;
        self.store(sequence, identifier, previous, revision_before)
    }

    /// Removes `identifier`; `actor` names who did it. `None` (and nothing journalled) when
    /// it was not on the list.
    pub fn remove(
        &mut self,
        identifier: Identifier,
        actor: &str,
        at: Timestamp,
    ) -> Result<Option<Changed>, AccessError> {
        check_actor(actor)?;
        if self.list.get(&identifier).is_none() {
            return Ok(None);
        }
        let change = self.change(actor, at, identifier, None);
        let sequence = self.append(&AccessEvent::AccessRemoved(change))?;
        let revision_before = self.list.revision();
        let previous = self.list.remove(&identifier);
        self.store(sequence, identifier, previous, revision_before).map(Some)
    }

    /// The grant of `identifier`.
    #[must_use]
    pub fn get(&self, identifier: &Identifier) -> Option<&Grant> {
        self.list.get(identifier)
    }

    /// Up to `limit` entries (at most [`LIST_PAGE_LIMIT_MAX`]) after skipping `offset`, in
    /// list order.
    #[must_use]
    pub fn list(&self, offset: usize, limit: usize) -> Vec<(&Identifier, &Grant)> {
        self.list.iter().skip(offset).take(limit.min(LIST_PAGE_LIMIT_MAX)).collect()
    }

    /// Up to `limit` events (at most [`EVENTS_LIMIT_MAX`]) with sequences above
    /// `since_sequence`, oldest first.
    pub fn events(&self, since_sequence: u64, limit: u32) -> Result<Vec<JournaledEvent>, AccessError> {
        let limit = limit.clamp(1, EVENTS_LIMIT_MAX);
        let records = self.journal.read_from(since_sequence.saturating_add(1), limit)?;
        records
            .into_iter()
            .map(|record| {
                let sequence = record.sequence;
                let event = AccessEvent::from_bytes(&record.payload)
                    .map_err(|source| AccessError::EventUnreadable { sequence, source })?;
                Ok(JournaledEvent { sequence, event })
            })
            .collect()
    }

    /// Tells the journal that every event up to `sequence` was collected elsewhere, so its
    /// space can be freed (an offline controller's journal otherwise fills up, and then no
    /// door opens).
    pub fn acknowledge(&mut self, sequence: u64) -> Result<(), AccessError> {
        self.journal.acknowledge(sequence)?;
        Ok(())
    }

    fn change(&self, actor: &str, at: Timestamp, identifier: Identifier, grant: Option<Grant>) -> ListChange {
        ListChange {
            device: self.device,
            at,
            actor: actor.to_owned(),
            identifier,
            grant,
            list_revision: self.list.revision().saturating_add(1),
        }
    }

    fn append(&mut self, event: &AccessEvent) -> Result<u64, AccessError> {
        let bytes = event.to_bytes().map_err(AccessError::Encode)?;
        Ok(self.journal.append(&bytes)?)
    }

    /// Writes the changed list; on failure undoes the change in memory, so memory and file
    /// agree again.
    fn store(
        &mut self,
        sequence: u64,
        identifier: Identifier,
        previous: Option<Grant>,
        revision_before: u64,
    ) -> Result<Changed, AccessError> {
        match files::write_list(&self.list_path, &self.list) {
            Ok(()) => Ok(Changed { sequence, revision: self.list.revision(), previous }),
            Err(error) => {
                self.list.restore(identifier, previous, revision_before);
                Err(error)
            }
        }
    }
}

/// Why `grant` does not let its holder through `door` at `at`; `None`: it does.
fn decide(grant: Option<&Grant>, door: u8, at: Timestamp) -> Option<DenyReason> {
    let Some(grant) = grant else {
        return Some(DenyReason::Unknown);
    };
    if grant.blocked {
        return Some(DenyReason::Blocked);
    }
    if grant.valid_from.is_some_and(|from| at < from) {
        return Some(DenyReason::NotYetValid);
    }
    if grant.valid_until.is_some_and(|until| at >= until) {
        return Some(DenyReason::Expired);
    }
    if grant.doors.is_some_and(|doors| !doors.contains(door)) {
        return Some(DenyReason::WrongDoor);
    }
    None
}

fn check_actor(actor: &str) -> Result<(), AccessError> {
    if actor.is_empty() || actor.len() > ACTOR_BYTES_MAX || actor.chars().any(char::is_control) {
        return Err(AccessError::InvalidActor);
    }
    Ok(())
}

/// The journal's device id: "STA" and the device number, so a controller's journal is never
/// taken for a validator's ("STV") with the same number.
#[must_use]
pub fn device_id(device: u32) -> DeviceId {
    let mut id = [0_u8; DEVICE_ID_BYTES];
    let (prefix, rest) = id.split_at_mut(3);
    prefix.copy_from_slice(b"STA");
    if let Some(number) = rest.last_chunk_mut::<4>() {
        *number = device.to_be_bytes();
    }
    DeviceId(id)
}

/// `engine::Passback` is keyed by list medium; an identifier and door are packed into a
/// 16-byte key of a kind no identifier otherwise uses. This map holds only the controller's
/// own keys, so they cannot meet a real token.
fn passback_key(identifier: &Identifier, door: u8) -> MediumKey {
    let mut id = [0_u8; MEDIUM_ID_BYTES];
    let (head, value) = id.split_at_mut(MEDIUM_ID_BYTES - 8);
    if let [first, second, bits, door_byte, ..] = head {
        (*first, *second, *bits, *door_byte) = (b'A', b'C', identifier.bits(), door);
    }
    value.copy_from_slice(&identifier.value().to_be_bytes());
    // 16 bytes is a valid token length, so this is never `None`; an all-zero key would only
    // make passback coarser, never open a door.
    MediumKey::token(MediumKind::QrToken, &id).unwrap_or_else(|| MediumKey::card_number(identifier.value()))
}

fn unix_seconds(at: Timestamp) -> u64 {
    u64::try_from(at.unix_micros() / 1_000_000).unwrap_or(0)
}
