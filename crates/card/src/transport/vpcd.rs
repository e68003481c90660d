//! A simulated card as a card in a real reader: [`VpcdBridge`] connects a [`VirtualCard`]
//! (the DESFire [`SimCard`], or the bank card [`EmvSimCard`]) to the vsmartcard `vpcd`
//! driver inside pcscd, so any PC/SC application (ours through
//! [`super::pcsc::PcscTransport`], or `pcsc_scan`, `opensc-tool`) talks to it as to a
//! contactless card. It owns the socket and the card's power state; the card's behaviour
//! stays in [`crate::sim`] and [`crate::emv::sim`].
//!
//! The vpcd ↔ virtual-card protocol (frankmorgner/vsmartcard, `src/vpcd/vpcd.c` and
//! `ifd-vpcd.c`; `vpicc/virtualsmartcard/VirtualSmartcard.py` is the reference card):
//! - vpcd listens on TCP (port [`VPCD_PORT_DEFAULT`] for the first slot) and the card
//!   connects. Every message, both ways, is a 2-byte big-endian length and a payload.
//! - A 1-byte payload from vpcd is a control message: `00` power off, `01` power on,
//!   `02` reset (none answered), `04` get ATR (answered with the ATR). pcscd polls card
//!   presence through `04` every few hundred milliseconds.
//! - Any other payload is a C-APDU, answered with one R-APDU (data, SW1 SW2).
//! - An answer of zero bytes (or a closed connection) is "no card": vpcd closes its end,
//!   answers the pending PC/SC call with no bytes, reports the card removed at its next
//!   presence poll, and accepts the next connection. But vpcd reads a zero-length
//!   payload with `recv(sock, NULL, 0, MSG_WAITALL)`, which on Linux waits for more data
//!   (seen with Debian's vsmartcard-vpcd 0.8), so an empty answer alone hangs pcscd: it
//!   has to be followed by closing the connection.
//! - vpcd 0.8 writes the length and the payload with two `send`s, so with Nagle's
//!   algorithm on its side and delayed ACKs on ours every message from vpcd arrives some
//!   40 ms late: an APDU through pcscd takes about 45 ms. Fine for tests; not a timing
//!   model of a real card.
//!
//! How a virtual card's states map onto it: power off drops the volatile session (as a
//! real card loses RAM without power), power on and reset start a fresh one. A card that
//! tears (the DESFire simulator's fault injection pulls it out of the field) answers the
//! APDU it was torn on with nothing and the bridge hangs up: pcscd sees a card removal,
//! which is what a terminal sees when a passenger pulls the card away. To tap the card
//! again, connect a new bridge.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::emv::sim::EmvSimCard;
use crate::sim::SimCard;
use crate::transport::Transport;

/// vpcd's default port for its first slot: `VPCDPORT` in vsmartcard's `vpcd.h`, and
/// `0x8C7B` in the `DEVICENAME`/`CHANNELID` of Debian's `/etc/reader.conf.d/vpcd`. Slot
/// *n* of the same reader listens on this port + *n*.
pub const VPCD_PORT_DEFAULT: u16 = 35963;

/// Where vpcd listens by default: the loopback interface of the machine running pcscd
/// (vpcd binds every interface; the loopback one keeps the card off the network).
pub const VPCD_ADDR_DEFAULT: &str = "127.0.0.1:35963";

/// The ATR the virtual reader reports: a contactless ISO/IEC 14443-4 Type A card with the
/// historical byte of a MIFARE DESFire ATS. PC/SC part 3 (supplement for contactless
/// ICCs) has the reader build it as `3B 8n 80 01`, then the n historical bytes of the
/// ATS, then TCK (the XOR of T0 to the last historical byte). A DESFire EV1/EV2 ATS is
/// `06 75 77 81 02 80`, whose one historical byte is `80`; the result, `3B 81 80 01 80
/// 80`, is what contactless readers report for DESFire (ACS ACR1222U user's manual §1.2
/// gives this exact ATR as its DESFire example).
pub const ATR: [u8; 6] = [0x3B, 0x81, 0x80, 0x01, 0x80, 0x80];

/// The ATR of the simulated bank card: a contactless ISO/IEC 14443-4 Type A card whose ATS
/// has no historical bytes, built the same way (`3B 80 80 01`, then TCK `01`). It is what
/// contactless readers commonly report for Visa and Mastercard cards, and the EMV read
/// flow does not look at it.
pub const EMV_ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];

/// A simulated card that can sit in vpcd's reader: what the bridge needs of it, nothing
/// more. The card keeps its own notion of a session; the bridge only tells it about power.
pub trait VirtualCard: std::fmt::Debug {
    /// The ATR the reader reports for the card.
    fn atr(&self) -> &[u8];

    /// The reader cut the field: the card forgets its volatile session.
    fn power_off(&mut self);

    /// The reader powered or reset the card: a fresh session.
    fn power_on(&mut self);

    /// The card's answer to one command APDU (data, SW1 SW2), or `None` when the card has
    /// left the field (torn) and answers nothing.
    fn exchange(&mut self, command: &[u8]) -> Option<Vec<u8>>;
}

impl VirtualCard for SimCard {
    fn atr(&self) -> &[u8] {
        &ATR
    }

    fn power_off(&mut self) {
        self.remove();
    }

    fn power_on(&mut self) {
        self.tap();
    }

    fn exchange(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        match self.transmit(command) {
            Ok(answer) => Some(answer),
            Err(error) => {
                tracing::info!(%error, "the simulated card left the field");
                None
            }
        }
    }
}

impl VirtualCard for EmvSimCard {
    fn atr(&self) -> &[u8] {
        &EMV_ATR
    }

    fn power_off(&mut self) {
        self.reset_session();
    }

    fn power_on(&mut self) {
        self.reset_session();
    }

    /// A bank card simulator never leaves the field by itself.
    fn exchange(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        Some(self.respond(command))
    }
}

/// The largest payload either side may send. The 2-byte length prefix caps it at 65,535
/// bytes, which is below the largest extended-length C-APDU (65,544 bytes: header 4, Lc 3,
/// data 65,535, Le 2), so no APDU vpcd can frame is refused for size; what the simulator
/// cannot parse it refuses with a status word. A buffer is allocated per frame, never
/// larger than this.
const FRAME_BYTES_MAX: usize = u16::MAX as usize;

/// How often the bridge looks at its stop flag while waiting for vpcd between frames.
const STOP_POLL_MS: u64 = 100;

/// Once a frame has started, the rest must arrive within this time; vpcd writes a frame
/// with two back-to-back `send`s, so a frame that stalls this long means a broken peer.
const FRAME_TIMEOUT_MS: u64 = 5_000;

/// How long connecting to vpcd, and writing one answer to it, may take.
const IO_TIMEOUT_MS: u64 = 5_000;

/// What vpcd sent, parsed: control messages are exactly one byte long (`VPCD_CTRL_LEN`
/// in `vpcd.h`), anything longer is an APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Message {
    PowerOff,
    PowerOn,
    Reset,
    GetAtr,
    /// A control byte vsmartcard does not define; ignored, as the reference card does.
    UnknownControl(u8),
    Apdu(Vec<u8>),
}

impl Message {
    fn parse(payload: Vec<u8>) -> Message {
        match payload.as_slice() {
            [0x00] => Message::PowerOff,
            [0x01] => Message::PowerOn,
            [0x02] => Message::Reset,
            [0x04] => Message::GetAtr,
            [other] => Message::UnknownControl(*other),
            _ => Message::Apdu(payload),
        }
    }
}

/// What waiting for the next frame gave.
enum Incoming {
    Frame(Vec<u8>),
    /// The stop flag was set.
    Stopped,
    /// vpcd closed the connection between frames.
    Closed,
}

/// Why [`VpcdBridge::run_until`] returned without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The stop flag was set.
    Stopped,
    /// vpcd closed the connection (pcscd stopped, or its driver gave up on us).
    VpcdClosed,
    /// The card could not answer an APDU: it left the field (a tear), or vpcd sent an
    /// APDU without powering it first. The bridge answered nothing and hung up, which
    /// vpcd reports to pcscd as a removal.
    CardGone,
}

/// A virtual card (by default a DESFire [`SimCard`]) in vpcd's virtual reader, over one
/// TCP connection.
pub struct VpcdBridge<C: VirtualCard = SimCard> {
    stream: TcpStream,
    peer: SocketAddr,
    card: C,
    /// Whether vpcd has powered the card (power on or reset since the last power off).
    powered: bool,
}

impl<C: VirtualCard> std::fmt::Debug for VpcdBridge<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VpcdBridge")
            .field("peer", &self.peer)
            .field("card", &self.card)
            .field("powered", &self.powered)
            .finish()
    }
}

impl<C: VirtualCard> VpcdBridge<C> {
    /// Connects to vpcd at `addr` (usually [`VPCD_ADDR_DEFAULT`]) and puts `card` in its
    /// reader. pcscd notices the card at its next presence poll, provided it has noticed
    /// the previous card leave: connect again only after
    /// [`PcscTransport::wait_until_gone`](super::pcsc::PcscTransport::wait_until_gone),
    /// or pcscd takes the new card for the old one. On failure the card is dropped (a
    /// file-backed card keeps its committed image on disk).
    pub fn connect<A: ToSocketAddrs>(addr: A, card: C) -> io::Result<VpcdBridge<C>> {
        let (stream, peer) = connect_any(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(STOP_POLL_MS)))?;
        stream.set_write_timeout(Some(Duration::from_millis(IO_TIMEOUT_MS)))?;
        tracing::info!(%peer, card = ?card, "virtual card connected to vpcd");
        Ok(VpcdBridge { stream, peer, card, powered: false })
    }

    /// Serves vpcd until `stop` is set, vpcd closes the connection, or the card is gone
    /// ([`Ended`] says which). Fails on an I/O error or a malformed frame (an empty one, or
    /// one cut short), after which the connection is unusable.
    pub fn run_until(&mut self, stop: &AtomicBool) -> io::Result<Ended> {
        // A service loop: it runs as long as vpcd talks to us. Each pass waits at most
        // FRAME_TIMEOUT_MS for a frame once it started, and STOP_POLL_MS between frames.
        loop {
            let frame = match self.next_frame(stop)? {
                Incoming::Frame(frame) => frame,
                Incoming::Stopped => return Ok(Ended::Stopped),
                Incoming::Closed => {
                    tracing::info!(peer = %self.peer, "vpcd closed the connection");
                    return Ok(Ended::VpcdClosed);
                }
            };
            if let Some(ended) = self.handle(Message::parse(frame))? {
                return Ok(ended);
            }
        }
    }

    /// Runs the bridge on its own thread until [`RunningBridge::stop`].
    pub fn spawn(self) -> io::Result<RunningBridge<C>>
    where
        C: Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("vpcd-bridge".into()).spawn(move || {
            let mut bridge = self;
            let outcome = bridge.run_until(&flag);
            if let Err(error) = &outcome {
                tracing::warn!(%error, "vpcd bridge ended");
            }
            (bridge.card, outcome)
        })?;
        Ok(RunningBridge { stop, thread })
    }

    /// The card, to inspect.
    pub fn card(&self) -> &C {
        &self.card
    }

    /// Takes the card out of the reader (closing the connection) and gives it back.
    pub fn into_card(self) -> C {
        self.card
    }

    /// Acts on one message; `Some` when the bridge has hung up.
    fn handle(&mut self, message: Message) -> io::Result<Option<Ended>> {
        match message {
            Message::PowerOff => {
                tracing::debug!("vpcd: power off");
                // Without power the card loses its session, pending changes included.
                self.card.power_off();
                self.powered = false;
            }
            Message::PowerOn | Message::Reset => {
                tracing::debug!(?message, "vpcd: power");
                self.card.power_on();
                self.powered = true;
            }
            // Answered powered or not: an unpowered card is still in the reader.
            Message::GetAtr => {
                let atr = self.card.atr().to_vec();
                self.send(&atr)?;
            }
            Message::UnknownControl(byte) => tracing::warn!(byte, "vpcd: unknown control message, ignored"),
            Message::Apdu(command) => match self.exchange(&command) {
                Some(answer) => self.send(&answer)?,
                None => {
                    self.hang_up()?;
                    return Ok(Some(Ended::CardGone));
                }
            },
        }
        Ok(None)
    }

    /// The card's answer, or `None` when there is no powered card in the field to give
    /// one. APDU contents are not logged: some carry key material, encrypted or not.
    fn exchange(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        if !self.powered {
            tracing::warn!("vpcd: an APDU for a card it has not powered");
            return None;
        }
        let answer = self.card.exchange(command);
        if answer.is_none() {
            self.powered = false;
        }
        answer
    }

    /// Answers nothing and closes the connection: vpcd's way to learn the card is gone
    /// (an empty answer alone leaves vpcd waiting; see the module docs).
    fn hang_up(&mut self) -> io::Result<()> {
        self.send(&[])?;
        match self.stream.shutdown(std::net::Shutdown::Both) {
            // vpcd closed first: hung up all the same.
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        }
    }

    fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        let length = u16::try_from(payload.len())
            .map_err(|_| invalid(format!("an answer of {} bytes does not fit vpcd's 2-byte length", payload.len())))?;
        let mut frame = Vec::with_capacity(payload.len() + 2);
        frame.extend_from_slice(&length.to_be_bytes());
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame)?;
        self.stream.flush()
    }

    /// Waits for the next frame: idle waits are cut into STOP_POLL_MS slices to watch
    /// `stop`; once the first byte is in, the whole frame must follow within
    /// FRAME_TIMEOUT_MS.
    fn next_frame(&mut self, stop: &AtomicBool) -> io::Result<Incoming> {
        let mut first = [0_u8; 1];
        // Bounded by `stop`, checked every STOP_POLL_MS.
        loop {
            if stop.load(Ordering::Acquire) {
                return Ok(Incoming::Stopped);
            }
            match self.stream.read(&mut first) {
                Ok(0) => return Ok(Incoming::Closed),
                Ok(_) => break,
                Err(error) if is_timeout(&error) || error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        let deadline = Instant::now() + Duration::from_millis(FRAME_TIMEOUT_MS);
        let mut second = [0_u8; 1];
        read_exact_before(&mut self.stream, &mut second, deadline)?;
        let ([high], [low]) = (first, second);
        let length = usize::from(u16::from_be_bytes([high, low]));
        if length == 0 || length > FRAME_BYTES_MAX {
            // vpcd never sends an empty message (vicc_transmit sends only when there are
            // bytes), so an empty one means we are not talking to vpcd.
            return Err(invalid(format!("vpcd sent a frame of {length} bytes")));
        }
        let mut payload = vec![0_u8; length];
        read_exact_before(&mut self.stream, &mut payload, deadline)?;
        Ok(Incoming::Frame(payload))
    }
}

/// A bridge serving on its own thread.
#[derive(Debug)]
pub struct RunningBridge<C = SimCard> {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(C, io::Result<Ended>)>,
}

impl<C> RunningBridge<C> {
    /// Whether the bridge has already ended by itself (vpcd hung up, or an error).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops the bridge (at the next frame boundary, within 100 ms when idle), closes the
    /// connection, and gives the card back with how the bridge ended. A panic on the
    /// bridge thread (a bug) is passed on to the caller.
    pub fn stop(self) -> (C, io::Result<Ended>) {
        self.stop.store(true, Ordering::Release);
        match self.thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Connects to the first address of `addr` that answers.
fn connect_any<A: ToSocketAddrs>(addr: A) -> io::Result<(TcpStream, SocketAddr)> {
    let timeout = Duration::from_millis(IO_TIMEOUT_MS);
    let mut last_error = None;
    for peer in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&peer, timeout) {
            Ok(stream) => return Ok((stream, peer)),
            Err(error) => last_error = Some((peer, error)),
        }
    }
    Err(match last_error {
        Some((peer, error)) => io::Error::new(
            error.kind(),
            format!("vpcd at {peer}: {error} (is pcscd running with the vsmartcard vpcd driver loaded?)"),
        ),
        None => io::Error::new(io::ErrorKind::InvalidInput, "the vpcd address resolves to nothing"),
    })
}

/// Fills `buffer` completely before `deadline`, or fails.
fn read_exact_before(stream: &mut TcpStream, buffer: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut filled = 0;
    // Bounded: every pass either fills bytes or waits at most STOP_POLL_MS (the socket's
    // read timeout), and the deadline ends the waiting.
    while filled < buffer.len() {
        if Instant::now() >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "vpcd stalled in the middle of a frame"));
        }
        let rest = buffer.get_mut(filled..).unwrap_or_default();
        match stream.read(rest) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "vpcd closed in the middle of a frame")),
            Ok(read) => filled += read,
            Err(error) if is_timeout(&error) || error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// A read timeout shows as `WouldBlock` on Unix and `TimedOut` on Windows.
fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;
    use crate::sim::Tear;

    const UID: [u8; 7] = [0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6];

    /// The test plays vpcd: it listens, and the bridge connects to it.
    fn vpcd_and_bridge<C: VirtualCard + Send + 'static>(card: C) -> (TcpStream, RunningBridge<C>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let bridge = VpcdBridge::connect(listener.local_addr().unwrap(), card).unwrap().spawn().unwrap();
        let (vpcd, _) = listener.accept().unwrap();
        vpcd.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (vpcd, bridge)
    }

    fn send(vpcd: &mut TcpStream, payload: &[u8]) {
        let mut frame = u16::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
        frame.extend_from_slice(payload);
        vpcd.write_all(&frame).unwrap();
    }

    fn receive(vpcd: &mut TcpStream) -> Vec<u8> {
        let mut length = [0_u8; 2];
        vpcd.read_exact(&mut length).unwrap();
        let mut payload = vec![0_u8; usize::from(u16::from_be_bytes(length))];
        vpcd.read_exact(&mut payload).unwrap();
        payload
    }

    fn exchange(vpcd: &mut TcpStream, payload: &[u8]) -> Vec<u8> {
        send(vpcd, payload);
        receive(vpcd)
    }

    #[test]
    fn the_default_address_uses_the_default_port() {
        let address: SocketAddr = VPCD_ADDR_DEFAULT.parse().unwrap();
        assert_eq!(address.port(), VPCD_PORT_DEFAULT);
        assert_eq!(VPCD_PORT_DEFAULT, 0x8C7B, "CHANNELID in /etc/reader.conf.d/vpcd");
    }

    #[test]
    fn the_atr_is_well_formed() {
        let [initial, t0, rest @ ..] = ATR;
        assert_eq!(initial, 0x3B, "direct convention");
        assert_eq!(rest.iter().fold(t0, |xor, byte| xor ^ byte), 0, "TCK makes T0..TCK XOR to zero");
        let historical = usize::from(t0 & 0x0F);
        assert_eq!(ATR.len(), 2 + 2 + historical + 1, "TS T0 TD1 TD2, historical bytes, TCK");
    }

    /// GetVersion, following `91 AF` frames (a bounded number) to the final `91 00`.
    fn get_version(vpcd: &mut TcpStream) -> Vec<u8> {
        let mut version = Vec::new();
        let mut answer = exchange(vpcd, &[0x90, 0x60, 0x00, 0x00, 0x00]);
        for _ in 0..3 {
            let (data, status) = answer.split_at(answer.len() - 2);
            version.extend_from_slice(data);
            match status {
                [0x91, 0x00] => return version,
                [0x91, 0xAF] => answer = exchange(vpcd, &[0x90, 0xAF, 0x00, 0x00, 0x00]),
                other => panic!("GetVersion answered {other:02X?}"),
            }
        }
        panic!("GetVersion did not end in three frames")
    }

    #[test]
    fn power_on_atr_and_get_version() {
        let (mut vpcd, bridge) = vpcd_and_bridge(SimCard::blank(UID));
        send(&mut vpcd, &[0x01]); // power on: no answer
        assert_eq!(exchange(&mut vpcd, &[0x04]), ATR);
        let version = get_version(&mut vpcd);
        assert_eq!(version.len(), 28, "hardware, software, production data: {version:02X?}");
        assert_eq!(version[14..21], UID, "the UID opens the production data");
        assert_eq!(exchange(&mut vpcd, &[0x04]), ATR, "presence polls go on between APDUs");
        let (card, ended) = bridge.stop();
        assert_eq!(ended.unwrap(), Ended::Stopped);
        assert_eq!(card.uid(), UID, "the card comes back");
    }

    #[test]
    fn power_off_drops_the_session_and_the_card_stays_in_the_reader() {
        const AUTHENTICATE_FIRST_KEY_0: [u8; 8] = [0x90, 0x71, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];
        let (mut vpcd, bridge) = vpcd_and_bridge(SimCard::blank(UID));
        send(&mut vpcd, &[0x01]);
        let challenge = exchange(&mut vpcd, &AUTHENTICATE_FIRST_KEY_0);
        assert_eq!(challenge[challenge.len() - 2..], [0x91, 0xAF], "authentication started");
        let aborted = exchange(&mut vpcd, &[0x90, 0x60, 0x00, 0x00, 0x00]);
        assert_eq!(aborted, [0x91, 0xCA], "mid-authentication, another command aborts it");
        exchange(&mut vpcd, &AUTHENTICATE_FIRST_KEY_0);
        send(&mut vpcd, &[0x00]); // power off
        assert_eq!(exchange(&mut vpcd, &[0x04]), ATR, "an unpowered card is still present");
        send(&mut vpcd, &[0x02]); // reset
        assert_eq!(get_version(&mut vpcd).len(), 28, "the half-done authentication was forgotten");
        drop(vpcd);
        let (_, ended) = bridge.stop_after_it_ends();
        assert_eq!(ended.unwrap(), Ended::VpcdClosed);
    }

    /// After a zero-length answer the bridge must close: vpcd would wait forever otherwise.
    fn assert_hung_up(vpcd: &mut TcpStream) {
        let mut rest = Vec::new();
        vpcd.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "nothing after the empty answer: {rest:02X?}");
    }

    #[test]
    fn an_apdu_without_power_gets_no_answer_and_a_hang_up() {
        let (mut vpcd, bridge) = vpcd_and_bridge(SimCard::blank(UID));
        assert_eq!(exchange(&mut vpcd, &[0x04]), ATR);
        assert!(exchange(&mut vpcd, &[0x90, 0x60, 0x00, 0x00, 0x00]).is_empty(), "never powered on");
        assert_hung_up(&mut vpcd);
        let (card, ended) = bridge.stop();
        assert_eq!(ended.unwrap(), Ended::CardGone);
        assert_eq!(card.uid(), UID);
    }

    #[test]
    fn a_torn_card_answers_nothing_and_the_bridge_hangs_up() {
        let mut card = SimCard::blank(UID);
        card.arm_tear(Tear::BeforeCommand(2));
        let (mut vpcd, bridge) = vpcd_and_bridge(card);
        send(&mut vpcd, &[0x01]);
        assert!(!exchange(&mut vpcd, &[0x90, 0x60, 0x00, 0x00, 0x00]).is_empty());
        assert!(exchange(&mut vpcd, &[0x90, 0x60, 0x00, 0x00, 0x00]).is_empty(), "torn on this one");
        assert_hung_up(&mut vpcd);
        let (card, ended) = bridge.stop();
        assert_eq!(ended.unwrap(), Ended::CardGone);
        assert!(!card.is_present());
    }

    #[test]
    fn malformed_frames_end_the_bridge_with_an_error_not_a_panic() {
        // An empty frame.
        let (mut vpcd, bridge) = vpcd_and_bridge(SimCard::blank(UID));
        vpcd.write_all(&[0x00, 0x00]).unwrap();
        let (_, ended) = bridge.stop_after_it_ends();
        assert_eq!(ended.unwrap_err().kind(), io::ErrorKind::InvalidData);

        // A frame cut short by the peer closing.
        let (mut vpcd, bridge) = vpcd_and_bridge(SimCard::blank(UID));
        vpcd.write_all(&[0x00, 0x05, 0x90, 0x60]).unwrap();
        drop(vpcd);
        let (_, ended) = bridge.stop_after_it_ends();
        assert_eq!(ended.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);

        // An unknown control byte is ignored, and the bridge goes on.
        let (mut vpcd, bridge) = vpcd_and_bridge(SimCard::blank(UID));
        send(&mut vpcd, &[0x07]);
        assert_eq!(exchange(&mut vpcd, &[0x04]), ATR);
        let (_, ended) = bridge.stop();
        assert_eq!(ended.unwrap(), Ended::Stopped);
    }

    /// The test's vpcd end as a transport, so the host's EMV read flow runs through the
    /// bridge's framing.
    struct FakeVpcd(TcpStream);

    impl Transport for FakeVpcd {
        fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, crate::TransportError> {
            Ok(exchange(&mut self.0, command))
        }

        fn describe(&self) -> String {
            "fake vpcd".into()
        }
    }

    fn visa() -> EmvSimCard {
        let expiry = smartticket_crypto::token::Expiry::new(28, 2).unwrap();
        EmvSimCard::visa("4761 7390 0101 0119", expiry, "VISA CREDIT").unwrap()
    }

    #[test]
    fn the_emv_atr_is_well_formed() {
        let [initial, t0, rest @ ..] = EMV_ATR;
        assert_eq!(initial, 0x3B, "direct convention");
        assert_eq!(rest.iter().fold(t0, |xor, byte| xor ^ byte), 0, "TCK makes T0..TCK XOR to zero");
        assert_eq!(t0 & 0x0F, 0, "no historical bytes");
        assert_eq!(EMV_ATR.len(), 2 + 2 + 1, "TS T0 TD1 TD2 TCK");
    }

    #[test]
    fn a_bank_card_is_read_through_the_bridge() {
        let (mut vpcd, bridge) = vpcd_and_bridge(visa());
        send(&mut vpcd, &[0x01]);
        assert_eq!(exchange(&mut vpcd, &[0x04]), EMV_ATR, "the bank card's own ATR");
        let mut transport = FakeVpcd(vpcd);
        let terminal = crate::emv::TerminalData::transit(203, 203, 260115, [1, 2, 3, 4]);
        let card = crate::emv::read_card(&mut transport, &terminal).unwrap();
        assert_eq!(card.pan().digits(), "4761739001010119");
        assert_eq!((card.expiry().year, card.expiry().month), (28, 2));
        assert_eq!(card.label(), Some("VISA CREDIT"));
        let (card, ended) = bridge.stop();
        assert_eq!(ended.unwrap(), Ended::Stopped);
        assert!(card.commands_received() >= 4, "PPSE, AID, GPO, records");
    }

    #[test]
    fn power_off_deselects_the_bank_application() {
        const SELECT_VISA: [u8; 13] = [0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10, 0x00];
        const READ_SFI_2_RECORD_1: [u8; 5] = [0x00, 0xB2, 0x01, 0x14, 0x00];
        let (mut vpcd, bridge) = vpcd_and_bridge(visa());
        send(&mut vpcd, &[0x01]);
        assert!(exchange(&mut vpcd, &SELECT_VISA).ends_with(&[0x90, 0x00]));
        assert!(exchange(&mut vpcd, &READ_SFI_2_RECORD_1).ends_with(&[0x90, 0x00]), "selected");
        send(&mut vpcd, &[0x00]);
        send(&mut vpcd, &[0x01]);
        assert_eq!(exchange(&mut vpcd, &READ_SFI_2_RECORD_1), [0x69, 0x85], "a fresh session selects nothing");
        let (_, ended) = bridge.stop();
        assert_eq!(ended.unwrap(), Ended::Stopped);
    }

    impl RunningBridge {
        /// Waits (bounded) for the bridge to end by itself, then stops it.
        fn stop_after_it_ends(self) -> (SimCard, io::Result<Ended>) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(self.is_finished(), "the bridge did not end");
            self.stop()
        }
    }
}
