//! `clean` on photos built here byte by byte: good PNGs and JPEGs come out as small upright
//! baseline JPEGs with no metadata; bombs, cut-off files and other formats are refused with
//! the variant that says why; and no input, however broken, makes it panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Cursor;
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use smartticket_photos::{CleanPhoto, INPUT_SIDE_PX_MIN, PhotoError, PhotoLimits, SourceFormat, clean};

const RED: Rgb<u8> = Rgb([220, 20, 20]);
const BLUE: Rgb<u8> = Rgb([20, 20, 220]);
/// Stands for a GPS position in the EXIF block: it must not reach the output.
const GPS_MARKER: &[u8] = b"GPS 48.14816N 17.10674E passenger-home";
const COMMENT_MARKER: &[u8] = b"COMMENT: scanned at the back office";
const TEXT_MARKER: &[u8] = b"Author: Jana Novakova, home address";

// ---- Building inputs -----------------------------------------------------------------

/// The left half red, the right half blue: enough to tell a rotation from a flip.
fn halves(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, _| if x < width / 2 { RED } else { BLUE })
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), format).unwrap();
    bytes
}

fn png(image: RgbImage) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(image), ImageFormat::Png)
}

fn jpeg(image: &RgbImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, 95).encode_image(image).unwrap();
    bytes
}

/// A marker segment: marker, length (counting itself, ITU-T T.81 B.1.1.4), body.
fn jpeg_segment(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut segment = vec![0xFF, marker];
    segment.extend_from_slice(&u16::try_from(body.len() + 2).unwrap().to_be_bytes());
    segment.extend_from_slice(body);
    segment
}

/// Puts `segments` right after SOI, where a camera writes APP1 (Exif) and COM.
fn insert_after_soi(jpeg: &[u8], segments: &[Vec<u8>]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], [0xFF, 0xD8]);
    let mut out = jpeg[..2].to_vec();
    for segment in segments {
        out.extend_from_slice(segment);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A big-endian TIFF structure as EXIF stores it (Exif 2.32, CIPA DC-008-2019, 4.5.2 and
/// 4.6.2): the header, then IFD0 with two entries in ascending tag order, then the
/// description text it points to.
/// - ImageDescription (0x010E), ASCII: carries `description`, standing in for the GPS IFD
///   a phone writes, so that its bytes are easy to look for in the output.
/// - Orientation (0x0112), SHORT, count 1 (4.6.4 A, "Tags relating to image data
///   structure"): 1 = as stored; 6 = the 0th row is the visual right-hand side and the 0th
///   column the visual top, so the viewer must turn the stored image 90° clockwise.
fn exif_tiff(orientation: u16, description: &[u8]) -> Vec<u8> {
    const DESCRIPTION_OFFSET: u32 = 8 + 2 + 2 * 12 + 4;
    let mut tiff = b"MM\0\x2A".to_vec();
    tiff.extend_from_slice(&8_u32.to_be_bytes()); // IFD0 right after the header
    tiff.extend_from_slice(&2_u16.to_be_bytes()); // entries
    tiff.extend_from_slice(&0x010E_u16.to_be_bytes());
    tiff.extend_from_slice(&2_u16.to_be_bytes()); // ASCII
    tiff.extend_from_slice(&u32::try_from(description.len() + 1).unwrap().to_be_bytes());
    tiff.extend_from_slice(&DESCRIPTION_OFFSET.to_be_bytes());
    tiff.extend_from_slice(&0x0112_u16.to_be_bytes());
    tiff.extend_from_slice(&3_u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1_u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes()); // left-justified in the 4-byte field
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0_u32.to_be_bytes()); // no IFD1
    assert_eq!(tiff.len(), DESCRIPTION_OFFSET as usize);
    tiff.extend_from_slice(description);
    tiff.push(0);
    tiff
}

/// APP1 with the "Exif\0\0" identifier, as in a camera JPEG (Exif 2.32, 4.5.4).
fn exif_app1(orientation: u16, description: &[u8]) -> Vec<u8> {
    let mut body = b"Exif\0\0".to_vec();
    body.extend_from_slice(&exif_tiff(orientation, description));
    jpeg_segment(0xE1, &body)
}

/// A PNG chunk: length, type, data, CRC-32 of type and data (ISO/IEC 15948:2003, 5.3).
fn png_chunk(chunk_type: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    chunk.extend_from_slice(chunk_type);
    chunk.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(chunk_type);
    crc.update(data);
    chunk.extend_from_slice(&crc.finalize().to_be_bytes());
    chunk
}

/// Puts `chunks` right after IHDR (signature 8 bytes + IHDR chunk 25 bytes).
fn insert_after_ihdr(png: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    assert_eq!(&png[12..16], b"IHDR");
    let mut out = png[..33].to_vec();
    for chunk in chunks {
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&png[33..]);
    out
}

/// A PNG that is only a signature and an IHDR claiming `width` × `height` 8-bit RGB pixels:
/// no image data at all.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // depth 8, RGB, deflate, adaptive, no interlace
    let mut bytes = b"\x89PNG\r\n\x1A\n".to_vec();
    bytes.extend_from_slice(&png_chunk(b"IHDR", &ihdr));
    bytes
}

// ---- Reading outputs -----------------------------------------------------------------

fn decode_output(photo: &CleanPhoto) -> RgbImage {
    let image = image::load_from_memory_with_format(&photo.jpeg, ImageFormat::Jpeg).unwrap();
    assert_eq!(image.dimensions(), (photo.width_px, photo.height_px));
    image.to_rgb8()
}

/// The markers of a JPEG up to its first scan, walked by their lengths.
fn markers_before_scan(jpeg: &[u8]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], [0xFF, 0xD8]);
    let mut markers = Vec::new();
    let mut offset = 2;
    loop {
        assert_eq!(jpeg[offset], 0xFF, "a marker at {offset}");
        let marker = jpeg[offset + 1];
        markers.push(marker);
        if marker == 0xDA {
            return markers;
        }
        let length = usize::from(u16::from_be_bytes([jpeg[offset + 2], jpeg[offset + 3]]));
        offset += 2 + length;
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

fn is_close(pixel: Rgb<u8>, expected: Rgb<u8>) -> bool {
    pixel.0.iter().zip(expected.0).all(|(&got, want)| got.abs_diff(want) <= 24)
}

/// The checks every clean photo must pass: a baseline JPEG with no metadata segment, within
/// the output bound, whose hash is the hash of its bytes.
fn assert_clean(photo: &CleanPhoto, limits: &PhotoLimits) {
    assert!(photo.width_px.max(photo.height_px) <= limits.output_side_px_max);
    assert_eq!(photo.sha256, <[u8; 32]>::from(Sha256::digest(&photo.jpeg)));
    assert!(photo.jpeg.ends_with(&[0xFF, 0xD9]));
    let markers = markers_before_scan(&photo.jpeg);
    // APP0 (JFIF), DQT, SOF0 (baseline), DHT and SOS only: no APP1 (EXIF, XMP), APP2 (ICC),
    // APP13 (IPTC) or COM, and no progressive or extended frame.
    for marker in &markers {
        assert!([0xE0, 0xDB, 0xC0, 0xC4, 0xDA].contains(marker), "marker {marker:02X} in {markers:02X?}");
    }
    assert!(markers.contains(&0xC0), "baseline frame header (SOF0)");
    assert!(!contains(&photo.jpeg, b"Exif"));
}

// ---- Good photos -----------------------------------------------------------------------

#[test]
fn png_becomes_a_jpeg_within_bounds_with_the_same_aspect_ratio() {
    let limits = PhotoLimits::default();
    let photo = clean(&png(halves(900, 300)), &limits).unwrap();
    assert_eq!(photo.source_format, SourceFormat::Png);
    assert_eq!((photo.width_px, photo.height_px), (600, 200));
    assert_clean(&photo, &limits);
    let output = decode_output(&photo);
    assert!(is_close(*output.get_pixel(100, 100), RED), "{:?}", output.get_pixel(100, 100));
    assert!(is_close(*output.get_pixel(500, 100), BLUE), "{:?}", output.get_pixel(500, 100));
}

#[test]
fn jpeg_loses_its_exif_and_comment() {
    let limits = PhotoLimits::default();
    let original = jpeg(&halves(320, 240));
    let upload = insert_after_soi(&original, &[exif_app1(1, GPS_MARKER), jpeg_segment(0xFE, COMMENT_MARKER)]);
    // The markers are really in the upload, so their absence below means something.
    assert!(contains(&upload, GPS_MARKER) && contains(&upload, COMMENT_MARKER) && contains(&upload, b"Exif"));

    let photo = clean(&upload, &limits).unwrap();
    assert_eq!(photo.source_format, SourceFormat::Jpeg);
    assert_eq!((photo.width_px, photo.height_px), (320, 240));
    assert_clean(&photo, &limits);
    assert!(!contains(&photo.jpeg, GPS_MARKER));
    assert!(!contains(&photo.jpeg, COMMENT_MARKER));
    assert!(!contains(&photo.jpeg, b"GPS"));
}

#[test]
fn png_loses_its_text_and_exif_chunks() {
    let limits = PhotoLimits::default();
    let upload = insert_after_ihdr(
        &png(halves(300, 200)),
        &[png_chunk(b"tEXt", TEXT_MARKER), png_chunk(b"eXIf", &exif_tiff(1, GPS_MARKER))],
    );
    assert!(contains(&upload, TEXT_MARKER) && contains(&upload, GPS_MARKER));
    let photo = clean(&upload, &limits).unwrap();
    assert_eq!((photo.width_px, photo.height_px), (300, 200));
    assert_clean(&photo, &limits);
    assert!(!contains(&photo.jpeg, TEXT_MARKER));
    assert!(!contains(&photo.jpeg, GPS_MARKER));
}

#[test]
fn a_large_photo_is_downscaled_to_the_output_bound() {
    let limits = PhotoLimits::default();
    let photo = clean(&jpeg(&halves(1600, 1200)), &limits).unwrap();
    assert_eq!((photo.width_px, photo.height_px), (600, 450));
    assert_clean(&photo, &limits);
    // Averaged to 1200 × 900 and then resized: the picture is still the same picture.
    let output = decode_output(&photo);
    assert!(is_close(*output.get_pixel(100, 200), RED), "{:?}", output.get_pixel(100, 200));
    assert!(is_close(*output.get_pixel(500, 200), BLUE), "{:?}", output.get_pixel(500, 200));

    let tight = PhotoLimits { output_side_px_max: 100, ..PhotoLimits::default() };
    let photo = clean(&png(halves(300, 900)), &tight).unwrap();
    assert_eq!((photo.width_px, photo.height_px), (33, 100));
}

#[test]
fn a_small_photo_is_not_upscaled() {
    let photo = clean(&jpeg(&halves(200, 120)), &PhotoLimits::default()).unwrap();
    assert_eq!((photo.width_px, photo.height_px), (200, 120));
}

#[test]
fn orientation_6_turns_a_landscape_jpeg_into_a_portrait() {
    let limits = PhotoLimits::default();
    let upload = insert_after_soi(&jpeg(&halves(200, 100)), &[exif_app1(6, b"phone held upright")]);
    let photo = clean(&upload, &limits).unwrap();
    assert_eq!((photo.width_px, photo.height_px), (100, 200));
    assert_clean(&photo, &limits);
    // Turned 90° clockwise: the stored left half (red) is now the top half. Turning the
    // other way, or flipping instead, would put blue on top.
    let output = decode_output(&photo);
    assert!(is_close(*output.get_pixel(50, 40), RED), "{:?}", output.get_pixel(50, 40));
    assert!(is_close(*output.get_pixel(50, 160), BLUE), "{:?}", output.get_pixel(50, 160));
}

#[test]
fn orientation_6_in_a_png_exif_chunk_is_applied_too() {
    let upload = insert_after_ihdr(&png(halves(200, 100)), &[png_chunk(b"eXIf", &exif_tiff(6, b"upright"))]);
    let photo = clean(&upload, &PhotoLimits::default()).unwrap();
    assert_eq!((photo.width_px, photo.height_px), (100, 200));
    let output = decode_output(&photo);
    assert!(is_close(*output.get_pixel(50, 40), RED));
    assert!(is_close(*output.get_pixel(50, 160), BLUE));
}

#[test]
fn orientation_is_applied_after_downscaling_with_the_right_bound() {
    let upload = insert_after_soi(&jpeg(&halves(1200, 800)), &[exif_app1(6, b"")]);
    let photo = clean(&upload, &PhotoLimits::default()).unwrap();
    assert_eq!((photo.width_px, photo.height_px), (400, 600));
}

#[test]
fn transparency_is_flattened_onto_white_not_dropped() {
    // Fully transparent pixels that store black: dropping alpha would show black.
    let mut image = RgbaImage::from_pixel(100, 100, Rgba([0, 0, 0, 0]));
    for x in 50..100 {
        for y in 0..100 {
            image.put_pixel(x, y, Rgba([20, 20, 220, 255]));
        }
    }
    let photo = clean(&encode(&DynamicImage::ImageRgba8(image), ImageFormat::Png), &PhotoLimits::default()).unwrap();
    let output = decode_output(&photo);
    assert!(is_close(*output.get_pixel(20, 50), Rgb([255, 255, 255])), "{:?}", output.get_pixel(20, 50));
    assert!(is_close(*output.get_pixel(80, 50), BLUE));
}

#[test]
fn grey_and_16_bit_pngs_are_accepted() {
    let grey = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(80, 80, image::Luma([128])));
    let deep = DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(80, 80, Rgb([65_535_u16, 0, 0])));
    for upload in [encode(&grey, ImageFormat::Png), encode(&deep, ImageFormat::Png)] {
        let photo = clean(&upload, &PhotoLimits::default()).unwrap();
        assert_eq!((photo.width_px, photo.height_px), (80, 80));
    }
}

#[test]
fn the_same_upload_gives_the_same_bytes_and_hash() {
    let upload = png(halves(300, 300));
    let first = clean(&upload, &PhotoLimits::default()).unwrap();
    let second = clean(&upload, &PhotoLimits::default()).unwrap();
    assert_eq!(first, second);
}

// ---- Refused uploads -----------------------------------------------------------------

#[test]
fn a_header_claiming_100000_by_100000_is_refused_before_decoding() {
    let upload = png_header_only(100_000, 100_000);
    assert_eq!(upload.len(), 33);
    let started = Instant::now();
    let refused = clean(&upload, &PhotoLimits::default());
    // TooManyPixels, not Truncated: the dimensions were judged before the missing image
    // data was even looked for, so the decoder (which would have sized a 30 GB buffer from
    // this header) never ran.
    assert_eq!(
        refused,
        Err(PhotoError::TooManyPixels { width: 100_000, height: 100_000, pixels_max: 40_000_000, side_px_max: 8_000 })
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn too_many_pixels_within_the_side_limit_is_refused() {
    // 8000 × 8000 = 64 MP: each side is allowed, the total is not.
    assert!(matches!(
        clean(&png_header_only(8_000, 8_000), &PhotoLimits::default()),
        Err(PhotoError::TooManyPixels { width: 8_000, height: 8_000, .. })
    ));
    // A JPEG frame header claiming 65535 × 65535, with no image data after it.
    let mut sof0 = vec![8, 0xFF, 0xFF, 0xFF, 0xFF, 3];
    for id in 1..=3 {
        sof0.extend_from_slice(&[id, 0x11, 0]);
    }
    let mut upload = vec![0xFF, 0xD8];
    upload.extend_from_slice(&jpeg_segment(0xC0, &sof0));
    assert!(matches!(
        clean(&upload, &PhotoLimits::default()),
        Err(PhotoError::TooManyPixels { width: 65_535, height: 65_535, .. })
    ));
}

#[test]
fn a_photo_too_small_to_show_a_face_is_refused() {
    let side = INPUT_SIDE_PX_MIN - 1;
    assert_eq!(
        clean(&png(halves(400, side)), &PhotoLimits::default()),
        Err(PhotoError::TooSmall { width: 400, height: side, side_px_min: INPUT_SIDE_PX_MIN })
    );
    assert!(clean(&png(halves(INPUT_SIDE_PX_MIN, INPUT_SIDE_PX_MIN)), &PhotoLimits::default()).is_ok());
}

#[test]
fn empty_and_oversized_uploads_are_refused_before_looking_inside() {
    let limits = PhotoLimits { upload_bytes_max: 1_000, ..PhotoLimits::default() };
    assert_eq!(clean(&[], &limits), Err(PhotoError::Empty));
    let upload = png(halves(300, 300));
    assert!(upload.len() > 1_000);
    assert_eq!(clean(&upload, &limits), Err(PhotoError::TooLarge { bytes: upload.len(), max: 1_000 }));
    // Size comes before format: an oversized text file is "too large", not "not an image".
    assert!(matches!(clean(&[b'a'; 1_001], &limits), Err(PhotoError::TooLarge { .. })));
}

#[test]
fn other_formats_are_refused_by_name() {
    let cases: [(&[u8], &str); 6] = [
        (b"GIF89a\x40\x00\x40\x00\xF0\x00\x00\xFF\xFF\xFF\x00\x00\x00!\xF9\x04\x01\0\0\0\0,", "GIF"),
        (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF"),
        (b"\n<!DOCTYPE html>\n<html><body><img src=x onerror=alert(1)></body></html>", "HTML"),
        (b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>", "SVG"),
        (b"RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0", "WebP"),
        (b"\0\0\0\x1CftypheicmifXheic\0\0\0\0", "HEIC"),
    ];
    for (upload, name) in cases {
        let refused = clean(upload, &PhotoLimits::default());
        assert_eq!(refused, Err(PhotoError::UnsupportedFormat(name)));
        let message = refused.unwrap_err().to_string();
        assert!(message.contains("JPEG or PNG") && message.contains(name), "{message}");
    }
}

#[test]
fn text_and_random_bytes_are_not_images() {
    let random: Vec<u8> = (0..4096_u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for upload in [&b"Dear cashier, here is my photo."[..], &random, b"\xFF\xD8", b"\x89PNG"] {
        assert_eq!(clean(upload, &PhotoLimits::default()), Err(PhotoError::NotAnImage), "{:?}", &upload[..2]);
    }
}

#[test]
fn cut_off_uploads_are_refused_as_truncated() {
    let limits = PhotoLimits::default();
    let whole_png = png(halves(200, 200));
    let whole_jpeg = jpeg(&halves(200, 200));
    // Inside the header, in the image data, and just before the end marker.
    for cut in [20, whole_png.len() / 2, whole_png.len() - 4] {
        assert_eq!(clean(&whole_png[..cut], &limits), Err(PhotoError::Truncated), "PNG cut at {cut}");
    }
    for cut in [12, whole_jpeg.len() / 2, whole_jpeg.len() - 1] {
        assert_eq!(clean(&whole_jpeg[..cut], &limits), Err(PhotoError::Truncated), "JPEG cut at {cut}");
    }
}

#[test]
fn damaged_image_data_is_refused_as_corrupt() {
    // Every byte of the compressed image data flipped, chunk structure intact: the CRC (or
    // the inflate stream) fails in the decoder.
    let mut upload = png(halves(200, 200));
    let idat = upload.windows(4).position(|window| window == b"IDAT").unwrap();
    let length = u32::from_be_bytes(upload[idat - 4..idat].try_into().unwrap()) as usize;
    for byte in &mut upload[idat + 4..idat + 4 + length] {
        *byte ^= 0xFF;
    }
    assert!(matches!(clean(&upload, &PhotoLimits::default()), Err(PhotoError::Corrupt(_))));
}

#[test]
fn unusable_limits_are_the_callers_mistake() {
    let upload = png(halves(100, 100));
    for limits in [
        PhotoLimits { jpeg_quality: 0, ..PhotoLimits::default() },
        PhotoLimits { jpeg_quality: 101, ..PhotoLimits::default() },
        PhotoLimits { output_side_px_max: 0, ..PhotoLimits::default() },
        PhotoLimits { input_side_px_max: INPUT_SIDE_PX_MIN - 1, ..PhotoLimits::default() },
    ] {
        assert!(matches!(clean(&upload, &limits), Err(PhotoError::InvalidLimits(_))), "{limits:?}");
    }
}

#[test]
fn messages_tell_the_passenger_what_to_do() {
    assert_eq!(
        PhotoError::UnsupportedFormat("GIF").to_string(),
        "the photo must be a JPEG or PNG image; this file's format is GIF"
    );
    assert_eq!(
        PhotoError::TooLarge { bytes: 7_340_032, max: 5 * 1024 * 1024 }.to_string(),
        "the photo file is too big (7.3 MB); please upload a photo of at most 5.2 MB"
    );
    let too_many =
        PhotoError::TooManyPixels { width: 9_000, height: 6_000, pixels_max: 40_000_000, side_px_max: 8_000 };
    assert_eq!(
        too_many.to_string(),
        "the photo is too large at 9000 × 6000 pixels; please upload a photo of at most 8000 pixels on a side \
         and 40 megapixels"
    );
}

// ---- Never a panic -------------------------------------------------------------------

/// Small valid uploads to mutate: a PNG and a JPEG with EXIF, each 80 × 64.
fn seeds() -> [Vec<u8>; 2] {
    [
        png(halves(80, 64)),
        insert_after_soi(&jpeg(&halves(80, 64)), &[exif_app1(6, GPS_MARKER), jpeg_segment(0xFE, COMMENT_MARKER)]),
    ]
}

fn assert_outcome_is_sane(outcome: &Result<CleanPhoto, PhotoError>, limits: &PhotoLimits) {
    if let Ok(photo) = outcome {
        assert_clean(photo, limits);
        assert!(!contains(&photo.jpeg, GPS_MARKER) && !contains(&photo.jpeg, COMMENT_MARKER));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let limits = PhotoLimits::default();
        assert_outcome_is_sane(&clean(&bytes, &limits), &limits);
    }

    #[test]
    fn random_bytes_behind_a_real_signature_never_panic(
        png_signature in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = if png_signature { b"\x89PNG\r\n\x1A\n".to_vec() } else { vec![0xFF, 0xD8, 0xFF] };
        bytes.extend_from_slice(&tail);
        let limits = PhotoLimits::default();
        assert_outcome_is_sane(&clean(&bytes, &limits), &limits);
    }

    #[test]
    fn mutated_photos_never_panic(
        seed in 0..2_usize,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        keep in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = seeds()[seed].clone();
        for (at, value) in flips {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if truncate {
            bytes.truncate(keep.index(bytes.len()));
        }
        let limits = PhotoLimits::default();
        assert_outcome_is_sane(&clean(&bytes, &limits), &limits);
    }
}
