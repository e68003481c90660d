//! What an upload's bytes say before a single pixel is decoded: its real format, from magic
//! bytes (never from the file name or the browser's `Content-Type`, both set by the sender),
//! the dimensions its header claims, and whether it reaches its end marker.
//!
//! PNG: ISO/IEC 15948:2003 (PNG, second edition), 5.2 signature, 5.3 chunk layout, 11.2.2 IHDR.
//! JPEG: ITU-T T.81 (1992), B.1.1.2 to B.1.1.4 markers and segments, B.2.2 frame header.
//! Every walk over the bytes advances by at least 2 bytes a step, so the input's length
//! (at most `upload_bytes_max`) bounds it.

use crate::error::PhotoError;

/// What the first bytes of an upload look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Jpeg,
    Png,
    /// A format we recognise and refuse, named for the passenger.
    Other(&'static str),
    /// Nothing we recognise.
    Unknown,
}

/// The dimensions a header claims, in pixels; not yet checked against any limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dimensions {
    pub(crate) width_px: u32,
    pub(crate) height_px: u32,
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
/// JPEG starts with SOI (FF D8) and, in every real file, another marker right after.
const JPEG_SIGNATURE: [u8; 3] = [0xFF, 0xD8, 0xFF];

/// How far into a text file we look for the start of an HTML, SVG or XML document.
const TEXT_SNIFF_BYTES_MAX: usize = 1024;

/// Names the format of `bytes` from its magic bytes. Only JPEG and PNG get through; others
/// are named so that the passenger is told what they sent (an iPhone's HEIC, a PDF scan).
pub(crate) fn sniff(bytes: &[u8]) -> Sniffed {
    if bytes.starts_with(&JPEG_SIGNATURE) {
        return Sniffed::Jpeg;
    }
    if bytes.starts_with(&PNG_SIGNATURE) {
        return Sniffed::Png;
    }
    match binary_format(bytes).or_else(|| text_format(bytes)) {
        Some(name) => Sniffed::Other(name),
        None => Sniffed::Unknown,
    }
}

/// Binary formats that people upload instead of a photo, by their signatures.
fn binary_format(bytes: &[u8]) -> Option<&'static str> {
    const SIGNATURES: [(&[u8], &str); 10] = [
        (b"GIF87a", "GIF"),
        (b"GIF89a", "GIF"),
        (b"%PDF-", "PDF"),
        (b"II*\0", "TIFF"),
        (b"MM\0*", "TIFF"),
        (b"8BPS", "Photoshop"),
        (b"PK\x03\x04", "ZIP"),
        (&[0xFF, 0x0A], "JPEG XL"),
        (b"\0\0\0\x0CJXL \r\n\x87\n", "JPEG XL"),
        (b"\0\0\0\x0CjP  \r\n\x87\n", "JPEG 2000"),
    ];
    if let Some((_, name)) = SIGNATURES.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Some(name);
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return Some("WebP");
    }
    // BMP: "BM", the file size, then four reserved zero bytes; the zeros keep a text that
    // happens to start with "BM" from being taken for a bitmap.
    if bytes.starts_with(b"BM") && bytes.get(6..10) == Some(&[0, 0, 0, 0]) {
        return Some("BMP");
    }
    // ISO base media files (HEIF, AVIF, MP4, QuickTime): a box of type "ftyp" first, whose
    // major brand names the kind. iPhones save HEIC by default.
    if bytes.get(4..8) == Some(b"ftyp") {
        return Some(match bytes.get(8..12) {
            Some(b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1") => "HEIC",
            Some(b"avif" | b"avis") => "AVIF",
            _ => "video",
        });
    }
    None
}

/// Markup documents: HTML (often an error page saved by mistake), SVG (an image, but one
/// that can carry scripts) and other XML. Leading whitespace and a UTF-8 BOM are skipped.
fn text_format(bytes: &[u8]) -> Option<&'static str> {
    let head = bytes.get(..TEXT_SNIFF_BYTES_MAX).unwrap_or(bytes);
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|byte| !byte.is_ascii_whitespace())?;
    let text = head.get(start..)?;
    let starts_with = |prefix: &[u8]| text.get(..prefix.len()).is_some_and(|t| t.eq_ignore_ascii_case(prefix));
    let contains = |needle: &[u8]| text.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle));
    if starts_with(b"<!doctype html") || starts_with(b"<html") {
        Some("HTML")
    } else if starts_with(b"<svg") || (starts_with(b"<?xml") && contains(b"<svg")) {
        Some("SVG")
    } else if starts_with(b"<?xml") {
        Some("XML")
    } else {
        None
    }
}

/// The dimensions in a PNG's IHDR chunk, which the specification requires to come first.
pub(crate) fn png_dimensions(bytes: &[u8]) -> Result<Dimensions, PhotoError> {
    // Signature (8), then IHDR: length (4) = 13, type (4), width (4), height (4), ...
    let ihdr_length = read_u32_be(bytes, 8).ok_or(PhotoError::Truncated)?;
    let ihdr_type = bytes.get(12..16).ok_or(PhotoError::Truncated)?;
    if ihdr_type != b"IHDR" || ihdr_length != 13 {
        return Err(PhotoError::Corrupt("the PNG does not start with an IHDR chunk".to_owned()));
    }
    let width_px = read_u32_be(bytes, 16).ok_or(PhotoError::Truncated)?;
    let height_px = read_u32_be(bytes, 20).ok_or(PhotoError::Truncated)?;
    // 11.2.2: both non-zero and at most 2^31 - 1.
    let valid = 1..=0x7FFF_FFFF;
    if !valid.contains(&width_px) || !valid.contains(&height_px) {
        return Err(PhotoError::Corrupt(format!("the PNG header states {width_px} × {height_px} pixels")));
    }
    Ok(Dimensions { width_px, height_px })
}

/// Walks the PNG's chunks to `IEND`. Running out of bytes first means a cut-off upload; the
/// decoder would also fail, but with a message that does not say so. CRCs are left to the
/// decoder.
pub(crate) fn png_check_complete(bytes: &[u8]) -> Result<(), PhotoError> {
    let mut offset = PNG_SIGNATURE.len();
    loop {
        let data_bytes = read_u32_be(bytes, offset).ok_or(PhotoError::Truncated)?;
        let chunk_type = offset.checked_add(4).and_then(|at| bytes.get(at..at + 4)).ok_or(PhotoError::Truncated)?;
        if data_bytes > 0x7FFF_FFFF {
            return Err(PhotoError::Corrupt("a PNG chunk states an impossible length".to_owned()));
        }
        // Length, type, data and CRC: at least 12 bytes, so the loop ends within the input.
        let chunk_end = usize::try_from(data_bytes)
            .ok()
            .and_then(|data| offset.checked_add(12)?.checked_add(data))
            .ok_or(PhotoError::Truncated)?;
        if chunk_end > bytes.len() {
            return Err(PhotoError::Truncated);
        }
        if chunk_type == b"IEND" {
            return Ok(());
        }
        offset = chunk_end;
    }
}

const MARKER_SOI: u8 = 0xD8;
const MARKER_EOI: u8 = 0xD9;
const MARKER_SOS: u8 = 0xDA;
const MARKER_TEM: u8 = 0x01;
const MARKER_DHT: u8 = 0xC4;
const MARKER_JPG: u8 = 0xC8;
const MARKER_DAC: u8 = 0xCC;

/// The dimensions in a JPEG's frame header (SOF0 to SOF15), which must come before the
/// first scan. Returns as soon as it is found, so a bomb's header is refused even when no
/// image data follows it.
pub(crate) fn jpeg_dimensions(bytes: &[u8]) -> Result<Dimensions, PhotoError> {
    for segment in JpegSegments::new(bytes) {
        let segment = segment?;
        if segment.is_frame_header() {
            return jpeg_frame_dimensions(segment.body);
        }
        if segment.marker == MARKER_SOS {
            break;
        }
    }
    Err(corrupt_jpeg("has image data before its frame header"))
}

/// Checks the segments up to the first scan (exactly one frame header), then looks for EOI
/// after it. Inside entropy-coded data a 0xFF byte is always followed by 0x00 or a restart
/// marker (B.1.1.5), so FF D9 there is the real end. The JPEG decoder fills a cut-off scan
/// with grey and reports success, so this is where a cut-off upload is caught. Bytes after
/// EOI are allowed: some phones append data there.
pub(crate) fn jpeg_check_complete(bytes: &[u8]) -> Result<(), PhotoError> {
    let mut frame_headers = 0_usize;
    for segment in JpegSegments::new(bytes) {
        let segment = segment?;
        if segment.is_frame_header() {
            frame_headers += 1;
        }
        if segment.marker == MARKER_SOS {
            if frame_headers != 1 {
                return Err(corrupt_jpeg("must have exactly one frame header before its image data"));
            }
            let scan = bytes.get(segment.end..).ok_or(PhotoError::Truncated)?;
            let has_end = scan.windows(2).any(|pair| pair == [0xFF, MARKER_EOI]);
            return if has_end { Ok(()) } else { Err(PhotoError::Truncated) };
        }
    }
    Err(PhotoError::Truncated)
}

/// One marker segment: the marker code, the bytes after the length field, and the offset
/// just after the segment.
#[derive(Debug, Clone, Copy)]
struct JpegSegment<'a> {
    marker: u8,
    body: &'a [u8],
    end: usize,
}

impl JpegSegment<'_> {
    /// SOF0 to SOF15, leaving out DHT, JPG and DAC, which share that range (Table B.1).
    fn is_frame_header(&self) -> bool {
        (0xC0..=0xCF).contains(&self.marker) && ![MARKER_DHT, MARKER_JPG, MARKER_DAC].contains(&self.marker)
    }
}

/// The marker segments of a JPEG from just after SOI up to and including the first SOS;
/// stops after an error. Standalone markers (RSTm, TEM) are skipped.
struct JpegSegments<'a> {
    bytes: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> JpegSegments<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 2, done: false } // after SOI
    }

    fn read(&mut self) -> Result<JpegSegment<'a>, PhotoError> {
        let bytes = self.bytes;
        loop {
            // B.1.1.2: a marker is 0xFF then a code; any number of 0xFF fill bytes may precede it.
            match bytes.get(self.offset) {
                None => return Err(PhotoError::Truncated),
                Some(0xFF) => {}
                Some(_) => return Err(corrupt_jpeg("has a broken marker")),
            }
            while bytes.get(self.offset) == Some(&0xFF) {
                self.offset += 1;
            }
            let marker = *bytes.get(self.offset).ok_or(PhotoError::Truncated)?;
            self.offset += 1;
            // B.1.1.3: RSTm and TEM stand alone, with no length.
            if (0xD0..=0xD7).contains(&marker) || marker == MARKER_TEM {
                continue;
            }
            if marker == MARKER_SOI || marker == MARKER_EOI || marker == 0x00 {
                return Err(corrupt_jpeg("ends or restarts before its image data"));
            }
            // B.1.1.4: the length counts itself but not the marker, so it is at least 2.
            let length = usize::from(read_u16_be(bytes, self.offset).ok_or(PhotoError::Truncated)?);
            if length < 2 {
                return Err(corrupt_jpeg("has a segment with an impossible length"));
            }
            let body_start = self.offset + 2;
            let end = self.offset.checked_add(length).ok_or(PhotoError::Truncated)?;
            let body = bytes.get(body_start..end).ok_or(PhotoError::Truncated)?;
            self.offset = end;
            return Ok(JpegSegment { marker, body, end });
        }
    }
}

impl<'a> Iterator for JpegSegments<'a> {
    type Item = Result<JpegSegment<'a>, PhotoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let segment = self.read();
        // Every step of `read` moves the offset on by at least 2 bytes, so the walk ends
        // within the input.
        self.done = segment.as_ref().map_or(true, |segment| segment.marker == MARKER_SOS);
        Some(segment)
    }
}

/// B.2.2: the frame header body is P (1 byte), Y = number of lines (2), X = samples per
/// line (2), Nf (1), then the components.
fn jpeg_frame_dimensions(body: &[u8]) -> Result<Dimensions, PhotoError> {
    let height = read_u16_be(body, 1).ok_or_else(|| corrupt_jpeg("has a frame header that is too short"))?;
    let width = read_u16_be(body, 3).ok_or_else(|| corrupt_jpeg("has a frame header that is too short"))?;
    if width == 0 || height == 0 {
        // Y = 0 defers the height to a DNL marker after the first scan; no camera writes it
        // and the decoder does not support it.
        return Err(PhotoError::Corrupt(format!("the JPEG frame header states {width} × {height} pixels")));
    }
    Ok(Dimensions { width_px: u32::from(width), height_px: u32::from(height) })
}

fn corrupt_jpeg(why: &str) -> PhotoError {
    PhotoError::Corrupt(format!("the JPEG {why}"))
}

fn read_u16_be(bytes: &[u8], offset: usize) -> Option<u16> {
    let end = offset.checked_add(2)?;
    Some(u16::from_be_bytes(bytes.get(offset..end)?.try_into().ok()?))
}

fn read_u32_be(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    Some(u32::from_be_bytes(bytes.get(offset..end)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_refused_formats_by_name() {
        assert_eq!(sniff(b"GIF89a\x01\x00"), Sniffed::Other("GIF"));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Sniffed::Other("WebP"));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), Sniffed::Other("HEIC"));
        assert_eq!(sniff(b"  \n<!DOCTYPE html><p>hi"), Sniffed::Other("HTML"));
        assert_eq!(sniff(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"\"/>"), Sniffed::Other("SVG"));
        assert_eq!(sniff(b"BMW is a car"), Sniffed::Unknown);
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0"), Sniffed::Jpeg);
    }

    #[test]
    fn jpeg_walk_skips_fill_bytes_and_standalone_markers() {
        // SOI, fill bytes, TEM, SOF0 (8×16), SOS with an empty header, data, EOI.
        let bytes = [
            0xFF, 0xD8, 0xFF, 0xFF, 0x01, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00,
            0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34, 0xFF, 0xD9,
        ];
        assert_eq!(jpeg_dimensions(&bytes), Ok(Dimensions { width_px: 8, height_px: 16 }));
        assert_eq!(jpeg_check_complete(&bytes), Ok(()));
        assert_eq!(jpeg_check_complete(&bytes[..25]), Err(PhotoError::Truncated));
        // The header alone is enough for the dimensions, not for completeness.
        assert_eq!(jpeg_dimensions(&bytes[..18]), Ok(Dimensions { width_px: 8, height_px: 16 }));
        assert_eq!(jpeg_check_complete(&bytes[..18]), Err(PhotoError::Truncated));
    }
}
