//! The one byte cursor that [`crate::apdu`] and [`crate::tlv`] read untrusted bytes with.
//!
//! It owns bounds checking only: every read either returns whole bytes or a [`CodecError`],
//! a length prefix becomes a sub-reader that cannot see past its end, and [`Reader::expect_end`]
//! refuses trailing bytes. What the bytes mean (ISO/IEC 7816-4 §5, ISO/IEC 8825-1) is the
//! callers' business.

use thiserror::Error;

/// Why a read from a [`Reader`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended before the bytes a read asked for.
    #[error("truncated input: wanted {wanted} bytes, {available} available")]
    Truncated {
        /// How many bytes the read asked for.
        wanted: usize,
        /// How many bytes were left.
        available: usize,
    },
    /// The input went on after the value was complete.
    #[error("{0} trailing bytes after the end of the value")]
    TrailingBytes(usize),
}

/// A cursor over a byte slice that never reads out of bounds.
///
/// `position` counts bytes from the start of the outermost input, so a sub-reader reports
/// offsets in the same frame as its parent.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    unread: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// A reader over the whole of `bytes`, at position 0.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { unread: bytes, position: 0 }
    }

    /// Takes the next `count` bytes, or fails without consuming anything.
    pub fn take(&mut self, count: usize) -> Result<&'a [u8], CodecError> {
        let Some((taken, unread)) = self.unread.split_at_checked(count) else {
            return Err(CodecError::Truncated { wanted: count, available: self.unread.len() });
        };
        self.unread = unread;
        self.position = self.position.saturating_add(count);
        Ok(taken)
    }

    /// Takes exactly `N` bytes as an array, or fails without consuming anything.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let Some((taken, unread)) = self.unread.split_first_chunk::<N>() else {
            return Err(CodecError::Truncated { wanted: N, available: self.unread.len() });
        };
        self.unread = unread;
        self.position = self.position.saturating_add(N);
        Ok(*taken)
    }

    /// Takes one byte.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        let [byte] = self.array::<1>()?;
        Ok(byte)
    }

    /// Takes two bytes as a big-endian (most significant byte first) integer.
    pub fn u16_be(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array::<2>()?))
    }

    /// The next byte without consuming it, or `None` at the end.
    pub fn peek_u8(&self) -> Option<u8> {
        self.unread.first().copied()
    }

    /// Takes everything that is left (possibly nothing).
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.unread;
        self.position = self.position.saturating_add(rest.len());
        self.unread = &[];
        rest
    }

    /// How many bytes are left to read.
    pub fn remaining(&self) -> usize {
        self.unread.len()
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.unread.is_empty()
    }

    /// How many bytes precede the cursor, counted from the start of the outermost input.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Succeeds only when every byte has been read: a value followed by anything is refused.
    pub fn expect_end(&self) -> Result<(), CodecError> {
        match self.unread.len() {
            0 => Ok(()),
            trailing => Err(CodecError::TrailingBytes(trailing)),
        }
    }

    /// Takes the next `count` bytes as a reader of their own, for a length-prefixed part:
    /// the sub-reader cannot read past them, and its positions continue this reader's.
    pub fn sub(&mut self, count: usize) -> Result<Reader<'a>, CodecError> {
        let position = self.position;
        let unread = self.take(count)?;
        Ok(Reader { unread, position })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_refuses_past_the_end() {
        let mut reader = Reader::new(&[0x01, 0x02, 0x03, 0x04]);
        assert_eq!(reader.u8(), Ok(0x01));
        assert_eq!(reader.u16_be(), Ok(0x0203));
        assert_eq!(reader.expect_end(), Err(CodecError::TrailingBytes(1)));
        assert_eq!(reader.take(2), Err(CodecError::Truncated { wanted: 2, available: 1 }));
        assert_eq!(reader.position(), 3);
        assert_eq!(reader.rest(), &[0x04]);
        assert!(reader.is_empty());
        assert_eq!(reader.expect_end(), Ok(()));
        assert_eq!(reader.u8(), Err(CodecError::Truncated { wanted: 1, available: 0 }));
    }

    #[test]
    fn sub_reader_is_fenced_and_keeps_positions() {
        let mut reader = Reader::new(&[0xAA, 0x01, 0x02, 0xBB]);
        assert_eq!(reader.u8(), Ok(0xAA));
        let mut sub = reader.sub(2).unwrap();
        assert_eq!(sub.position(), 1);
        assert_eq!(sub.take(3), Err(CodecError::Truncated { wanted: 3, available: 2 }));
        assert_eq!(sub.take(2), Ok(&[0x01, 0x02][..]));
        assert_eq!(sub.position(), 3);
        assert_eq!(reader.u8(), Ok(0xBB));
        assert!(reader.sub(1).is_err());
    }
}
