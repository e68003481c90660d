//! BER-TLV as EMV uses it (ISO/IEC 8825-1 tags and definite lengths, EMV Book 3 Annex B),
//! and data object lists (PDOL, CDOL: tags with lengths but no values, EMV Book 3 §5.4).
//!
//! It owns the encoding only, not what a tag means. Parsing is iterative with an explicit
//! stack bounded by [`TLV_DEPTH_MAX`] and [`TLV_NODES_MAX`]; every length is checked against
//! the bytes its parent holds, and the input must be consumed exactly.

use std::fmt;

use thiserror::Error;

use crate::codec::Reader;

/// Most nested levels a parse accepts; a top-level object is level 1. EMV's deepest common
/// structure, the PPSE FCI (`6F` › `A5` › `BF0C` › `61` › `4F`), is five levels; eight leaves
/// room for issuer templates and keeps the explicit stack small.
pub const TLV_DEPTH_MAX: usize = 8;

/// Most objects (primitive and constructed) one parse accepts. A record or FCI holds tens; a
/// 64 KiB response could hold 32 768 two-byte objects, which no card we read sends.
pub const TLV_NODES_MAX: usize = 1024;

/// Most bytes in a tag. EMV tags are one or two bytes; ISO/IEC 7816-4 allows up to three;
/// four leaves a margin while the tag still fits the `u32` in [`Tag`].
pub const TAG_BYTES_MAX: usize = 4;

/// Most entries in a data object list. Real PDOLs and CDOLs list 5 to 20 tags.
pub const DOL_ENTRIES_MAX: usize = 64;

/// Largest length a data object list entry may ask for: a DOL length is one byte in EMV.
pub const DOL_ENTRY_LENGTH_MAX: usize = 255;

/// The first tag byte's low five bits all set: more tag bytes follow.
const TAG_NUMBER_MULTI_BYTE: u8 = 0x1F;
/// In a subsequent tag byte, bit 8 set: another tag byte follows.
const TAG_MORE_BYTES_BIT: u8 = 0x80;
/// In the first tag byte, bit 6 set: the value is a sequence of TLV objects.
const TAG_CONSTRUCTED_BIT: u8 = 0x20;

/// Why BER-TLV or a data object list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The input ended inside a tag.
    #[error("truncated tag at byte {offset}")]
    TruncatedTag {
        /// Where the tag starts.
        offset: usize,
    },
    /// A tag longer than [`TAG_BYTES_MAX`] bytes.
    #[error("tag at byte {offset} is longer than {TAG_BYTES_MAX} bytes")]
    TagTooLong {
        /// Where the tag starts.
        offset: usize,
    },
    /// The input ended inside a length field.
    #[error("truncated length of tag {tag}")]
    TruncatedLength {
        /// The tag whose length is cut off.
        tag: Tag,
    },
    /// Length byte `80`, the indefinite form, which EMV does not use.
    #[error("indefinite length for tag {tag}")]
    IndefiniteLength {
        /// The tag with that length.
        tag: Tag,
    },
    /// A length byte from `85` up: more than four length bytes, or the reserved `FF`.
    #[error("unsupported length byte {first_byte:02X} for tag {tag}")]
    LengthFormUnsupported {
        /// The tag with that length.
        tag: Tag,
        /// The first length byte.
        first_byte: u8,
    },
    /// A top-level object's length runs past the end of the input.
    #[error("tag {tag} has length {length} but only {available} bytes follow")]
    LengthPastEnd {
        /// The object's tag.
        tag: Tag,
        /// The length it claims.
        length: usize,
        /// Bytes left in the input.
        available: usize,
    },
    /// A child's length runs past the end of its constructed parent.
    #[error("tag {tag} inside {parent} has length {length} but only {available} bytes of {parent} remain")]
    ChildPastParent {
        /// The constructed parent's tag.
        parent: Tag,
        /// The child's tag.
        tag: Tag,
        /// The length the child claims.
        length: usize,
        /// Bytes left in the parent's value.
        available: usize,
    },
    /// Objects nested deeper than [`TLV_DEPTH_MAX`].
    #[error("tag {tag} is nested deeper than {TLV_DEPTH_MAX} levels")]
    TooDeep {
        /// The first object past the limit.
        tag: Tag,
    },
    /// More than [`TLV_NODES_MAX`] objects.
    #[error("more than {TLV_NODES_MAX} TLV objects")]
    TooManyNodes,
    /// More than [`DOL_ENTRIES_MAX`] entries in a data object list.
    #[error("more than {DOL_ENTRIES_MAX} entries in a data object list")]
    DolTooManyEntries,
    /// A data object list entry asking for more than [`DOL_ENTRY_LENGTH_MAX`] bytes.
    #[error("data object list entry {tag} asks for {length} bytes, at most {DOL_ENTRY_LENGTH_MAX}")]
    DolLengthTooLong {
        /// The entry's tag.
        tag: Tag,
        /// The length it asks for.
        length: usize,
    },
    /// A `00` or `FF` byte where a data object list entry should start: a DOL has no padding.
    #[error("padding byte at {offset} in a data object list")]
    DolPadding {
        /// Where the byte is.
        offset: usize,
    },
}

/// A BER-TLV tag: its raw bytes read as a big-endian integer, so `9F 38` is `Tag(0x9F38)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

impl Tag {
    /// How many bytes the tag has on the wire (1 to 4; leading zero bytes are not part of it).
    pub fn byte_count(self) -> usize {
        match self.0 {
            0..=0xFF => 1,
            0x100..=0xFFFF => 2,
            0x1_0000..=0xFF_FFFF => 3,
            _ => 4,
        }
    }

    /// The tag bytes as they appear on the wire.
    pub fn bytes(self) -> Vec<u8> {
        let all = self.0.to_be_bytes();
        let skip = all.len().saturating_sub(self.byte_count());
        all.get(skip..).unwrap_or(&all).to_vec()
    }

    fn first_byte(self) -> u8 {
        let all = self.0.to_be_bytes();
        all.get(all.len().saturating_sub(self.byte_count())).copied().unwrap_or(0)
    }

    /// Whether the value is a sequence of TLV objects (bit 6 of the first tag byte).
    pub fn is_constructed(self) -> bool {
        self.first_byte() & TAG_CONSTRUCTED_BIT != 0
    }

    /// Whether the bytes form one BER tag that [`parse_all`] can read back: a single byte
    /// whose low five bits are not all set, or such a first byte followed by bytes with bit 8
    /// set except the last; and the first byte is not the padding `00` or `FF`.
    pub fn is_well_formed(self) -> bool {
        let bytes = self.bytes();
        let Some((&first, subsequent)) = bytes.split_first() else {
            return false;
        };
        if first == 0x00 || first == 0xFF {
            return false;
        }
        if first & TAG_NUMBER_MULTI_BYTE != TAG_NUMBER_MULTI_BYTE {
            return subsequent.is_empty();
        }
        let Some((&last, middle)) = subsequent.split_last() else {
            return false;
        };
        last & TAG_MORE_BYTES_BIT == 0 && middle.iter().all(|byte| byte & TAG_MORE_BYTES_BIT != 0)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0width$X}", self.0, width = self.byte_count() * 2)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

/// One BER-TLV data object.
///
/// A parsed object's value is [`Value::Constructed`] exactly when its tag says so. The
/// derived `Clone`, `PartialEq`, `Debug` and `Drop` recurse, which is fine for parsed trees
/// (at most [`TLV_DEPTH_MAX`] deep); do not build trees thousands of levels deep by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    /// The tag.
    pub tag: Tag,
    /// The value.
    pub value: Value,
}

/// The value of a [`Tlv`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Raw bytes.
    Primitive(Vec<u8>),
    /// Nested objects, in order.
    Constructed(Vec<Tlv>),
}

impl Tlv {
    /// A primitive object.
    pub fn primitive(tag: Tag, value: impl Into<Vec<u8>>) -> Self {
        Self { tag, value: Value::Primitive(value.into()) }
    }

    /// A constructed object.
    pub fn constructed(tag: Tag, children: Vec<Tlv>) -> Self {
        Self { tag, value: Value::Constructed(children) }
    }

    /// The bytes of a primitive value, or `None` for a constructed one.
    pub fn value_bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::Primitive(bytes) => Some(bytes),
            Value::Constructed(_) => None,
        }
    }

    /// The children of a constructed value; empty for a primitive one.
    pub fn children(&self) -> &[Tlv] {
        match &self.value {
            Value::Primitive(_) => &[],
            Value::Constructed(children) => children,
        }
    }

    /// The first object with `tag`, this one included, depth-first.
    pub fn find(&self, tag: Tag) -> Option<&Tlv> {
        find(std::slice::from_ref(self), tag)
    }

    /// Every object with `tag`, this one included, depth-first.
    pub fn find_all(&self, tag: Tag) -> Vec<&Tlv> {
        find_all(std::slice::from_ref(self), tag)
    }

    /// The object on the wire, with lengths in their shortest form.
    ///
    /// The tag is written as its bytes, whatever they are: a tag that is not
    /// [`Tag::is_well_formed`], or a value kind that contradicts the tag's constructed bit,
    /// encodes bytes that do not parse back to this object. A value longer than 4 GiB cannot
    /// be expressed in the four length bytes EMV allows and gets a wrong length.
    pub fn encode(&self) -> Vec<u8> {
        encode_all(std::slice::from_ref(self))
    }
}

/// The objects on the wire, one after another (see [`Tlv::encode`]). Iterative: a constructed
/// value's length is written when its last child is done.
pub fn encode_all(tlvs: &[Tlv]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut top = tlvs.iter();
    // Constructed values being written, innermost last: children still to write, and where
    // in `out` the value starts.
    let mut open: Vec<(std::slice::Iter<'_, Tlv>, usize)> = Vec::new();
    loop {
        let next = match open.last_mut() {
            Some((children, _)) => children.next(),
            None => top.next(),
        };
        match next {
            Some(tlv) => {
                out.extend_from_slice(&tlv.tag.bytes());
                match &tlv.value {
                    Value::Primitive(bytes) => {
                        write_length(bytes.len(), &mut out);
                        out.extend_from_slice(bytes);
                    }
                    Value::Constructed(children) => open.push((children.iter(), out.len())),
                }
            }
            None => {
                let Some((_, start)) = open.pop() else {
                    return out;
                };
                // `start` was `out.len()` when pushed and `out` only grew since.
                let value = out.split_off(start.min(out.len()));
                write_length(value.len(), &mut out);
                out.extend_from_slice(&value);
            }
        }
    }
}

/// A definite length in its shortest form: one byte below `80`, else `81`–`84` and the
/// big-endian length without leading zero bytes.
fn write_length(length: usize, out: &mut Vec<u8>) {
    if let Ok(short) = u8::try_from(length)
        && short < 0x80
    {
        out.push(short);
        return;
    }
    // Over 4 GiB cannot be expressed; documented on `Tlv::encode`.
    let bytes = u32::try_from(length).unwrap_or(u32::MAX).to_be_bytes();
    let significant = bytes.iter().position(|&byte| byte != 0).unwrap_or(bytes.len() - 1);
    let tail = bytes.get(significant..).unwrap_or(&bytes);
    out.push(0x80 | u8::try_from(tail.len()).unwrap_or(4));
    out.extend_from_slice(tail);
}

/// Depth-first, pre-order walk over objects and everything nested in them, without recursion.
#[derive(Debug, Clone)]
pub struct DepthFirst<'a> {
    open: Vec<std::slice::Iter<'a, Tlv>>,
}

impl<'a> Iterator for DepthFirst<'a> {
    type Item = &'a Tlv;

    fn next(&mut self) -> Option<&'a Tlv> {
        // Each turn yields an object or closes one level, so this ends.
        loop {
            let level = self.open.last_mut()?;
            match level.next() {
                Some(tlv) => {
                    if let Value::Constructed(children) = &tlv.value {
                        self.open.push(children.iter());
                    }
                    return Some(tlv);
                }
                None => {
                    self.open.pop();
                }
            }
        }
    }
}

/// Walks `tlvs` and all their descendants depth-first, parents before children.
pub fn depth_first(tlvs: &[Tlv]) -> DepthFirst<'_> {
    DepthFirst { open: vec![tlvs.iter()] }
}

/// The first object with `tag` in `tlvs` or nested in them, depth-first.
pub fn find(tlvs: &[Tlv], tag: Tag) -> Option<&Tlv> {
    depth_first(tlvs).find(|tlv| tlv.tag == tag)
}

/// Every object with `tag` in `tlvs` or nested in them, depth-first.
pub fn find_all(tlvs: &[Tlv], tag: Tag) -> Vec<&Tlv> {
    depth_first(tlvs).filter(|tlv| tlv.tag == tag).collect()
}

/// A constructed value being parsed.
struct Frame<'a> {
    tag: Tag,
    reader: Reader<'a>,
    children: Vec<Tlv>,
}

/// Parses a sequence of BER-TLV objects that must fill `bytes` exactly, nested values
/// included, each checked against the bytes its parent holds.
///
/// `00` and `FF` bytes where a tag would start are skipped: EMV Book 3 Annex B1 allows `00`
/// before, between and after objects (left by erased or rewritten objects), and ISO/IEC
/// 7816-4 treats `FF` the same way; neither can start a valid tag.
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Tlv>, TlvError> {
    let mut top = Vec::new();
    let mut top_reader = Reader::new(bytes);
    // Constructed values being read, innermost last; never more than TLV_DEPTH_MAX.
    let mut open: Vec<Frame<'_>> = Vec::new();
    let mut nodes: usize = 0;
    // Each turn reads at least two bytes (tag and length) or closes a constructed value, of
    // which there are at most TLV_NODES_MAX, so this ends.
    loop {
        let parent = open.last().map(|frame| frame.tag);
        let reader = match open.last_mut() {
            Some(frame) => &mut frame.reader,
            None => &mut top_reader,
        };
        skip_padding(reader);
        if reader.is_empty() {
            let Some(frame) = open.pop() else {
                return Ok(top);
            };
            attach(&mut open, &mut top, Tlv::constructed(frame.tag, frame.children));
            continue;
        }
        let (tag, value) = read_object(reader, parent)?;
        nodes += 1;
        if nodes > TLV_NODES_MAX {
            return Err(TlvError::TooManyNodes);
        }
        if open.len() >= TLV_DEPTH_MAX {
            return Err(TlvError::TooDeep { tag });
        }
        if tag.is_constructed() {
            open.push(Frame { tag, reader: value, children: Vec::new() });
        } else {
            let mut value = value;
            attach(&mut open, &mut top, Tlv::primitive(tag, value.rest()));
        }
    }
}

fn attach(open: &mut [Frame<'_>], top: &mut Vec<Tlv>, tlv: Tlv) {
    match open.last_mut() {
        Some(frame) => frame.children.push(tlv),
        None => top.push(tlv),
    }
}

fn skip_padding(reader: &mut Reader<'_>) {
    while let Some(0x00 | 0xFF) = reader.peek_u8() {
        // Cannot fail: peek saw a byte.
        let _ = reader.u8();
    }
}

/// Reads a tag and a length, and fences off the value as a reader of its own.
fn read_object<'a>(reader: &mut Reader<'a>, parent: Option<Tag>) -> Result<(Tag, Reader<'a>), TlvError> {
    let tag = read_tag(reader)?;
    let length = read_length(reader, tag)?;
    let available = reader.remaining();
    let value = reader.sub(length).map_err(|_| match parent {
        None => TlvError::LengthPastEnd { tag, length, available },
        Some(parent) => TlvError::ChildPastParent { parent, tag, length, available },
    })?;
    Ok((tag, value))
}

fn read_tag(reader: &mut Reader<'_>) -> Result<Tag, TlvError> {
    let offset = reader.position();
    let first = reader.u8().map_err(|_| TlvError::TruncatedTag { offset })?;
    let mut value = u32::from(first);
    if first & TAG_NUMBER_MULTI_BYTE != TAG_NUMBER_MULTI_BYTE {
        return Ok(Tag(value));
    }
    for _ in 1..TAG_BYTES_MAX {
        let next = reader.u8().map_err(|_| TlvError::TruncatedTag { offset })?;
        value = (value << 8) | u32::from(next);
        if next & TAG_MORE_BYTES_BIT == 0 {
            return Ok(Tag(value));
        }
    }
    Err(TlvError::TagTooLong { offset })
}

fn read_length(reader: &mut Reader<'_>, tag: Tag) -> Result<usize, TlvError> {
    let first = reader.u8().map_err(|_| TlvError::TruncatedLength { tag })?;
    match first {
        0x00..=0x7F => Ok(usize::from(first)),
        0x80 => Err(TlvError::IndefiniteLength { tag }),
        0x81..=0x84 => {
            let length_bytes = reader.take(usize::from(first & 0x7F)).map_err(|_| TlvError::TruncatedLength { tag })?;
            let length = length_bytes.iter().fold(0_u32, |length, &byte| (length << 8) | u32::from(byte));
            // On a 16-bit target a length over usize::MAX cannot fit the input anyway.
            Ok(usize::try_from(length).unwrap_or(usize::MAX))
        }
        _ => Err(TlvError::LengthFormUnsupported { tag, first_byte: first }),
    }
}

/// Parses a data object list (EMV Book 3 §5.4): tags each followed by the length the card
/// wants for that object, with no values. At most [`DOL_ENTRIES_MAX`] entries of at most
/// [`DOL_ENTRY_LENGTH_MAX`] bytes; no padding.
pub fn parse_dol(bytes: &[u8]) -> Result<Vec<(Tag, usize)>, TlvError> {
    let mut reader = Reader::new(bytes);
    let mut entries = Vec::new();
    while !reader.is_empty() {
        if entries.len() == DOL_ENTRIES_MAX {
            return Err(TlvError::DolTooManyEntries);
        }
        if let Some(0x00 | 0xFF) = reader.peek_u8() {
            return Err(TlvError::DolPadding { offset: reader.position() });
        }
        let tag = read_tag(&mut reader)?;
        let length = read_length(&mut reader, tag)?;
        if length > DOL_ENTRY_LENGTH_MAX {
            return Err(TlvError::DolLengthTooLong { tag, length });
        }
        entries.push((tag, length));
    }
    Ok(entries)
}
