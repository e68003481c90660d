//! The card simulator: the card side of exactly the DESFire EV2 subset the host driver
//! uses ([`crate::desfire`] lists it), over a persistent [`CardImage`], with fault
//! injection that pulls the card out of the field before or after any command.
//!
//! Anti-tearing as on a real card: changes to backup, value and record files are pending
//! until CommitTransaction, which applies them all at once and, if the card is file-backed,
//! writes the image through a temporary file and a rename. Power loss (a tear) throws away
//! everything pending, the authentication and the TMI; the committed image and its
//! transaction counter are untouched.

mod exec;
pub mod image;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::desfire::sm::{CardAuth, Channel};
use crate::desfire::tmac::Tmi;
use crate::transport::{Transport, TransportError};
pub use image::{CardImage, Content, KeySlot};

/// When to pull the card out of the field, counting APDUs from the moment it is armed
/// (1 = the next APDU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tear {
    /// Lose power before processing the n-th APDU: it never happens.
    BeforeCommand(u32),
    /// Lose power after processing the n-th APDU: it happened, but its answer is lost.
    AfterCommand(u32),
}

/// Why a card image could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
    /// The file is not a card image.
    #[error("{path}: not a SmartTicket card image: {why}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// Largest card image file read.
const IMAGE_BYTES_MAX: u64 = 1024 * 1024;

/// The authentication state of the RF session.
enum Auth {
    None,
    Started { card_auth: CardAuth, key_no: u8, previous: Option<Channel> },
    Session { channel: Channel, key_no: u8 },
}

/// A multi-frame command being received.
struct Incoming {
    command: u8,
    body: Vec<u8>,
    expected: usize,
}

/// What lives only while the card is powered.
struct Volatile {
    /// The selected application; `None` is the card level.
    selected: Option<[u8; 3]>,
    auth: Auth,
    /// Pending content of files changed in this transaction.
    pending: BTreeMap<u8, Content>,
    /// Sum debited from each value file in this transaction (becomes its LimitedCredit
    /// allowance at commit).
    debited: BTreeMap<u8, i32>,
    tmi: Tmi,
    incoming: Option<Incoming>,
    outgoing: VecDeque<u8>,
}

impl Volatile {
    fn fresh() -> Volatile {
        Volatile {
            selected: None,
            auth: Auth::None,
            pending: BTreeMap::new(),
            debited: BTreeMap::new(),
            tmi: Tmi::new(),
            incoming: None,
            outgoing: VecDeque::new(),
        }
    }

    fn abort_transaction(&mut self) {
        self.pending.clear();
        self.debited.clear();
        self.tmi = Tmi::new();
    }
}

/// A simulated DESFire EV2 card.
pub struct SimCard {
    image: CardImage,
    volatile: Volatile,
    persist_to: Option<PathBuf>,
    present: bool,
    tear: Option<Tear>,
    apdus_since_armed: u32,
    scripted_random: VecDeque<u8>,
}

impl std::fmt::Debug for SimCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCard").field("uid", &hex::encode_upper(self.image.uid)).finish_non_exhaustive()
    }
}

impl SimCard {
    /// A card in memory.
    pub fn new(image: CardImage) -> SimCard {
        SimCard {
            image,
            volatile: Volatile::fresh(),
            persist_to: None,
            present: true,
            tear: None,
            apdus_since_armed: 0,
            scripted_random: VecDeque::new(),
        }
    }

    /// A blank card with `uid`, in memory.
    pub fn blank(uid: [u8; 7]) -> SimCard {
        SimCard::new(CardImage::blank(uid))
    }

    /// A card backed by an image file: loaded now, saved at every committed change.
    pub fn open(path: &Path) -> Result<SimCard, ImageError> {
        let io = |source| ImageError::Io { path: path.display().to_string(), source };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > IMAGE_BYTES_MAX {
            return Err(ImageError::Format { path: path.display().to_string(), why: "file too large".into() });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let image: CardImage = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Format { path: path.display().to_string(), why: e.to_string() })?;
        if image.format != image::IMAGE_FORMAT {
            return Err(ImageError::Format {
                path: path.display().to_string(),
                why: format!("format `{}`", image.format),
            });
        }
        let mut card = SimCard::new(image);
        card.persist_to = Some(path.to_path_buf());
        Ok(card)
    }

    /// Writes the image to `path` and keeps saving there at every committed change.
    pub fn save_to(&mut self, path: &Path) -> Result<(), ImageError> {
        self.persist_to = Some(path.to_path_buf());
        self.persist()
    }

    fn persist(&self) -> Result<(), ImageError> {
        let Some(path) = &self.persist_to else { return Ok(()) };
        let io = |source| ImageError::Io { path: path.display().to_string(), source };
        let bytes = serde_json::to_vec_pretty(&self.image)
            .map_err(|e| ImageError::Format { path: path.display().to_string(), why: e.to_string() })?;
        let temporary = path.with_extension("tmp");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)
                .map_err(io)?;
            file.write_all(&bytes).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&temporary, path).map_err(io)
    }

    /// The committed image.
    pub fn image(&self) -> &CardImage {
        &self.image
    }

    /// The UID.
    pub fn uid(&self) -> [u8; 7] {
        self.image.uid
    }

    /// Arms a tear: the card will leave the field at the given APDU.
    pub fn arm_tear(&mut self, tear: Tear) {
        self.tear = Some(tear);
        self.apdus_since_armed = 0;
    }

    /// Whether the card is in the field.
    pub fn is_present(&self) -> bool {
        self.present
    }

    /// Puts the card (back) into the field: power on, card level selected, nothing pending.
    pub fn tap(&mut self) {
        self.present = true;
        self.volatile = Volatile::fresh();
    }

    /// Takes the card out of the field.
    pub fn remove(&mut self) {
        self.present = false;
        self.volatile = Volatile::fresh();
    }

    /// Makes the next random draws return `bytes` (RndB, then TI), to replay published
    /// exchanges; after they run out, randomness comes from the operating system again.
    pub fn script_random(&mut self, bytes: &[u8]) {
        self.scripted_random.extend(bytes.iter().copied());
    }

    fn random<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0_u8; N];
        for slot in out.iter_mut() {
            match self.scripted_random.pop_front() {
                Some(byte) => *slot = byte,
                None => {
                    let _ = smartticket_crypto::random_bytes(std::slice::from_mut(slot));
                }
            }
        }
        out
    }

    fn tear_now(&mut self, after: bool) -> bool {
        match self.tear {
            Some(Tear::BeforeCommand(n)) if !after => n == self.apdus_since_armed,
            Some(Tear::AfterCommand(n)) if after => n == self.apdus_since_armed,
            _ => false,
        }
    }

    fn power_loss(&mut self) {
        self.tear = None;
        self.remove();
    }
}

impl Transport for SimCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if !self.present {
            return Err(TransportError::NoCard);
        }
        self.apdus_since_armed = self.apdus_since_armed.saturating_add(1);
        if self.tear_now(false) {
            self.power_loss();
            return Err(TransportError::CardRemoved);
        }
        let answer = self.process(command);
        if self.tear_now(true) {
            self.power_loss();
            return Err(TransportError::CardRemoved);
        }
        Ok(answer)
    }

    fn describe(&self) -> String {
        format!("simulated card {}", hex::encode_upper(self.image.uid))
    }
}
