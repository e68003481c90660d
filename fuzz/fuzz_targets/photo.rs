//! `smartticket_photos::clean` on arbitrary bytes with the default limits: never panics
//! (nor trips its debug assertions, which fuzz builds keep), and whatever it accepts is a
//! whole JPEG within the output bound that carries no EXIF block.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartticket_photos::{PhotoLimits, clean};

fuzz_target!(|bytes: &[u8]| {
    let limits = PhotoLimits::default();
    let Ok(photo) = clean(bytes, &limits) else {
        return;
    };
    assert!(photo.width_px >= 1 && photo.height_px >= 1);
    assert!(photo.width_px.max(photo.height_px) <= limits.output_side_px_max);
    assert!(photo.jpeg.starts_with(&[0xFF, 0xD8]) && photo.jpeg.ends_with(&[0xFF, 0xD9]));
    assert!(!photo.jpeg.windows(4).any(|window| window == b"Exif"), "EXIF survived");
});
