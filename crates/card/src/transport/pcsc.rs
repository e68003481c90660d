//! A [`Transport`] over PC/SC (the `pcsc` crate: pcsc-lite's `libpcsclite` on Linux,
//! WinSCard on Windows): one reader connection in shared mode, one bounded receive buffer,
//! and every PC/SC error mapped to a [`TransportError`] that says what happened. It owns
//! the reader connection only; which APDUs go over it is the host driver's business.
//!
//! Shared mode, not exclusive: exclusive fails whenever any other process (a reader
//! monitor, browser middleware, a second terminal application) has the reader open, and
//! buys us nothing. Another application's APDU slipped between ours can only break our
//! EV2 secure session (the card refuses our next MACed command and keeps its committed
//! state); it cannot split a commit, which is atomic on the card.

use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

use crate::transport::{Transport, TransportError};

/// The receive buffer: the largest response pcsc-lite can hand back (`pcsclite.h`
/// MAX_BUFFER_SIZE_EXTENDED, 65,548 bytes: an extended-length APDU's 65,536 data bytes
/// with room for header, length and status bytes). Allocated once per connection, so a
/// tap allocates only its answers.
const RESPONSE_BYTES_MAX: usize = ::pcsc::MAX_BUFFER_SIZE_EXTENDED;

/// The largest command we hand to PC/SC: pcsc-lite refuses anything longer with
/// `SCARD_E_INSUFFICIENT_BUFFER`; we refuse it first with a message that says why.
const COMMAND_BYTES_MAX: usize = ::pcsc::MAX_BUFFER_SIZE_EXTENDED;

/// How long one wait on pcscd lasts inside [`PcscTransport::wait_for_card`] and
/// [`PcscTransport::wait_until_gone`] before the reader list is read again (a reader may
/// appear while we wait, and one wait covers only the readers named in it).
const STATUS_POLL_MS: u64 = 250;

/// A card in a PC/SC reader, reached through pcscd. Dropping it disconnects and resets
/// the card (the `pcsc` crate's disposition), which ends any secure session on it; after
/// [`TransportError::CardRemoved`] connect again for the next tap.
pub struct PcscTransport {
    /// The context `card` belongs to (pcsc-lite ties handles to their context); also used
    /// to watch the reader.
    context: ::pcsc::Context,
    card: ::pcsc::Card,
    reader: String,
    /// pcscd's count of card insertions and removals in the reader when we connected.
    events_at_connect: u32,
    receive: Vec<u8>,
}

impl std::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransport").field("reader", &self.reader).finish_non_exhaustive()
    }
}

impl PcscTransport {
    /// The names of the readers pcscd knows, in its order. No reader is an empty list,
    /// not an error.
    pub fn list_readers() -> Result<Vec<String>, TransportError> {
        let context = establish()?;
        reader_names(&context)
    }

    /// Connects (shared mode, T=0 or T=1) to the card in the reader named `reader`, or
    /// whose name contains it. When several readers contain it, the one holding a card is
    /// taken; when that is still not exactly one, the error lists the candidates.
    pub fn connect(reader: &str) -> Result<PcscTransport, TransportError> {
        let context = establish()?;
        let name = choose_reader(&context, reader)?;
        let c_name = c_string(&name)?;
        let protocols = ::pcsc::Protocols::T0 | ::pcsc::Protocols::T1;
        let card =
            context.connect(&c_name, ::pcsc::ShareMode::Shared, protocols).map_err(|error| map_error(error, &name))?;
        let events_at_connect = event_count(&context, &name)?;
        tracing::debug!(reader = %name, "PC/SC card connected");
        Ok(PcscTransport { context, card, reader: name, events_at_connect, receive: vec![0; RESPONSE_BYTES_MAX] })
    }

    /// Waits up to `timeout` for a card in a reader whose name contains `reader`, and
    /// returns that reader's full name. Readers that appear while waiting count too.
    /// Fails with [`TransportError::NoCard`] when the time is up.
    pub fn wait_for_card(reader: &str, timeout: Duration) -> Result<String, TransportError> {
        let context = establish()?;
        let found = wait_for(&context, |name| name.contains(reader), timeout, first_with_card)?;
        found.ok_or(TransportError::NoCard)
    }

    /// Disconnects (resetting the card, so the secure session ends with us) and waits up
    /// to `timeout` until pcscd has seen this card leave the reader: a terminal waits for
    /// this before serving the next passenger. Fails with a [`TransportError::Reader`]
    /// when the card is still there.
    ///
    /// "Seen leave" is pcscd's own count of insertions and removals having moved and the
    /// slot being empty. An empty slot alone is not enough: after a failed exchange or
    /// reset pcscd reports the slot empty before its reader thread has noticed anything,
    /// and a card put back before that thread's next poll is taken for the old one, still
    /// powered and never announced.
    pub fn wait_until_gone(self, timeout: Duration) -> Result<(), TransportError> {
        let PcscTransport { context, card, reader, events_at_connect, .. } = self;
        if let Err((_, error)) = card.disconnect(::pcsc::Disposition::ResetCard) {
            // Expected when the card has already left.
            tracing::debug!(%error, reader = %reader, "PC/SC disconnect");
        }
        let gone = |states: &[::pcsc::ReaderState]| match states {
            // The reader itself went away: so did the card.
            [] => Some(()),
            [state, ..] => {
                let event = state.event_state();
                let counted = state.event_count() != events_at_connect;
                let empty = event.contains(::pcsc::State::EMPTY) && !event.contains(::pcsc::State::PRESENT);
                (counted && empty).then_some(())
            }
        };
        wait_for(&context, |name| name == reader, timeout, gone)?
            .ok_or_else(|| TransportError::Reader(format!("the card is still in {reader:?} after {timeout:?}")))
    }

    /// The full name of the reader.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The card's ATR as the reader reports it (for a contactless card, built by the
    /// reader from the ATS or ATQB per PC/SC part 3).
    pub fn atr(&self) -> Result<Vec<u8>, TransportError> {
        let status = self.card.status2_owned().map_err(|error| map_error(error, &self.reader))?;
        Ok(status.atr().to_vec())
    }
}

impl Transport for PcscTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if command.len() > COMMAND_BYTES_MAX {
            return Err(TransportError::Reader(format!(
                "a command of {} bytes exceeds the PC/SC maximum of {COMMAND_BYTES_MAX}",
                command.len()
            )));
        }
        let answer = self.card.transmit(command, &mut self.receive).map_err(|error| map_error(error, &self.reader))?;
        if answer.is_empty() {
            // No byte at all, not even a status word: the exchange did not complete. A
            // reader whose card stopped answering mid-command says so this way (vpcd does,
            // for a virtual card that went away); whether the card executed the command is
            // unknown, exactly as for a card pulled away.
            return Err(TransportError::CardRemoved);
        }
        Ok(answer.to_vec())
    }

    fn describe(&self) -> String {
        format!("PC/SC reader {}", self.reader)
    }
}

/// Watches the readers whose name `wanted` accepts until `done` says yes or `timeout`
/// passes (`Ok(None)`). The reader list is read again on every pass, so readers that
/// appear meanwhile are watched too.
fn wait_for<T>(
    context: &::pcsc::Context,
    wanted: impl Fn(&str) -> bool,
    timeout: Duration,
    done: impl Fn(&[::pcsc::ReaderState]) -> Option<T>,
) -> Result<Option<T>, TransportError> {
    let deadline = Instant::now() + timeout;
    // Bounded by the deadline: each pass waits at most STATUS_POLL_MS.
    loop {
        let matching: Vec<String> = reader_names(context)?.into_iter().filter(|name| wanted(name)).collect();
        let mut states = reader_states(&matching)?;
        // UNAWARE as the known state: pcscd answers at once with the current one.
        status_change(context, Duration::ZERO, &mut states)?;
        if let Some(found) = done(&states) {
            return Ok(Some(found));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let wait = (deadline - now).min(Duration::from_millis(STATUS_POLL_MS));
        if states.is_empty() {
            std::thread::sleep(wait);
        } else {
            states.iter_mut().for_each(::pcsc::ReaderState::sync_current_state);
            status_change(context, wait, &mut states)?;
        }
    }
}

/// pcscd's count of card insertions and removals in `reader` (the high 16 bits of the
/// event state, in pcsc-lite and WinSCard alike).
fn event_count(context: &::pcsc::Context, reader: &str) -> Result<u32, TransportError> {
    let mut states = reader_states(&[reader.to_owned()])?;
    status_change(context, Duration::ZERO, &mut states)?;
    Ok(states.first().map_or(0, ::pcsc::ReaderState::event_count))
}

fn establish() -> Result<::pcsc::Context, TransportError> {
    ::pcsc::Context::establish(::pcsc::Scope::User).map_err(|error| map_error(error, ""))
}

fn reader_names(context: &::pcsc::Context) -> Result<Vec<String>, TransportError> {
    let names = context.list_readers_owned().map_err(|error| map_error(error, ""))?;
    Ok(names.iter().map(|name| name.to_string_lossy().into_owned()).collect())
}

fn c_string(name: &str) -> Result<CString, TransportError> {
    CString::new(name).map_err(|_| TransportError::Reader(format!("reader name {name:?} contains a NUL byte")))
}

fn reader_states(names: &[String]) -> Result<Vec<::pcsc::ReaderState>, TransportError> {
    names.iter().map(|name| Ok(::pcsc::ReaderState::new(c_string(name)?, ::pcsc::State::UNAWARE))).collect()
}

/// Waits for a change; a timeout is not an error here, only "nothing changed".
fn status_change(
    context: &::pcsc::Context,
    wait: Duration,
    states: &mut [::pcsc::ReaderState],
) -> Result<(), TransportError> {
    if states.is_empty() {
        return Ok(());
    }
    match context.get_status_change(wait, states) {
        Ok(()) | Err(::pcsc::Error::Timeout) => Ok(()),
        Err(error) => Err(map_error(error, "")),
    }
}

/// A card that answered its reset: present, and neither mute nor held exclusively.
fn first_with_card(states: &[::pcsc::ReaderState]) -> Option<String> {
    let blocked = ::pcsc::State::MUTE | ::pcsc::State::EXCLUSIVE | ::pcsc::State::UNAVAILABLE;
    states
        .iter()
        .find(|state| state.event_state().contains(::pcsc::State::PRESENT) && !state.event_state().intersects(blocked))
        .map(|state| name_of(state.name()))
}

fn name_of(name: &CStr) -> String {
    name.to_string_lossy().into_owned()
}

/// The exact name, else the only name containing `wanted`, else the only one of those
/// holding a card.
fn choose_reader(context: &::pcsc::Context, wanted: &str) -> Result<String, TransportError> {
    let names = reader_names(context)?;
    if names.is_empty() {
        return Err(TransportError::Reader("pcscd knows no reader".into()));
    }
    if let Some(exact) = names.iter().find(|name| name.as_str() == wanted) {
        return Ok(exact.clone());
    }
    let matching: Vec<String> = names.iter().filter(|name| name.contains(wanted)).cloned().collect();
    match matching.as_slice() {
        [] => return Err(TransportError::Reader(format!("no reader name contains {wanted:?}; readers: {names:?}"))),
        [only] => return Ok(only.clone()),
        _ => {}
    }
    let mut states = reader_states(&matching)?;
    status_change(context, Duration::ZERO, &mut states)?;
    let with_card: Vec<String> = states
        .iter()
        .filter(|state| state.event_state().contains(::pcsc::State::PRESENT))
        .map(|state| name_of(state.name()))
        .collect();
    match with_card.as_slice() {
        [only] => Ok(only.clone()),
        _ => Err(TransportError::Reader(format!(
            "{} readers contain {wanted:?} and {} of them hold a card; name one exactly: {matching:?}",
            matching.len(),
            with_card.len()
        ))),
    }
}

/// Maps a PC/SC error to what it means for the exchange. `reader` names the reader in
/// messages (empty when no reader is involved yet).
fn map_error(error: ::pcsc::Error, reader: &str) -> TransportError {
    use ::pcsc::Error as E;
    let at = if reader.is_empty() { String::new() } else { format!(" ({reader})") };
    match error {
        // The card lost power or left the field since we connected: our session is gone.
        E::RemovedCard | E::ResetCard | E::UnpoweredCard => TransportError::CardRemoved,
        // pcsc-lite answers SCardTransmit with SCARD_E_NOT_TRANSACTED whenever the reader
        // driver fails the exchange; for a contactless reader that is mostly a card leaving
        // mid-APDU. As with a removal, whether the card executed the command is unknown.
        E::NotTransacted | E::CommDataLost => TransportError::CardRemoved,
        E::NoSmartcard => TransportError::NoCard,
        E::UnresponsiveCard | E::UnsupportedCard => {
            TransportError::Reader(format!("the card in the field does not answer its reset{at}"))
        }
        E::NoService => TransportError::Reader("pcscd is not running (no PC/SC service to connect to)".into()),
        E::ServiceStopped | E::Shutdown => TransportError::Reader("pcscd stopped".into()),
        E::CommError => TransportError::Reader("lost the connection to pcscd".into()),
        E::NoReadersAvailable => TransportError::Reader("pcscd knows no reader".into()),
        E::UnknownReader | E::ReaderUnavailable => {
            TransportError::Reader(format!("the reader is gone or unknown to pcscd{at}"))
        }
        E::SharingViolation => TransportError::Reader(format!("another application holds the reader exclusively{at}")),
        E::Timeout => TransportError::Reader(format!("pcscd timed out{at}")),
        other => TransportError::Reader(format!("PC/SC: {other}{at}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_reset_and_failed_exchanges_are_card_removed() {
        for error in [
            ::pcsc::Error::RemovedCard,
            ::pcsc::Error::ResetCard,
            ::pcsc::Error::NotTransacted,
            ::pcsc::Error::UnpoweredCard,
        ] {
            assert_eq!(map_error(error, "r"), TransportError::CardRemoved, "{error:?}");
        }
        assert_eq!(map_error(::pcsc::Error::NoSmartcard, "r"), TransportError::NoCard);
    }

    #[test]
    fn service_errors_say_what_to_fix() {
        let TransportError::Reader(message) = map_error(::pcsc::Error::NoService, "") else {
            panic!("not a reader error")
        };
        assert!(message.contains("pcscd is not running"), "{message}");
        let TransportError::Reader(message) = map_error(::pcsc::Error::SharingViolation, "ACS ACR122U 00 00") else {
            panic!("not a reader error")
        };
        assert!(message.contains("ACS ACR122U 00 00"), "{message}");
    }
}
