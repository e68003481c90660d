//! The bounds on what [`clean`](crate::clean) accepts and produces, each with its reason.

use crate::error::PhotoError;

/// The shortest side a photo may have, in pixels. A face in a smaller image is a few dozen
/// pixels across, too few for a cashier or a driver to recognise the passenger.
pub const INPUT_SIDE_PX_MIN: u32 = 64;

/// The largest side a baseline JPEG frame header can state (ITU-T T.81, B.2.2: X and Y are
/// 16-bit), so no stored image may be larger.
const JPEG_SIDE_PX_MAX: u32 = 65_535;

/// Bounds on an upload and on the stored image. Passed explicitly to every call, so a test or
/// a deployment can tighten them; [`PhotoLimits::default`] gives the production values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoLimits {
    /// The largest upload accepted, in bytes (default 5 MiB). A phone's full-resolution JPEG
    /// is 2 to 5 MB; the limit bounds how much one request makes us buffer, parse and hash.
    pub upload_bytes_max: usize,
    /// The most pixels a header may claim (default 40 megapixels). A compressed file can be
    /// small and still claim a huge image (a decompression bomb: a few hundred bytes of PNG
    /// can claim 100000 × 100000 pixels, 40 GB decoded), so the pixel count, not the file
    /// size, bounds decoding memory: 40 MP at 4 bytes a pixel is 160 MB. Phones save 12 to
    /// 24 MP by default. The decoder is also limited to 4 bytes a pixel for this many pixels,
    /// so a 16-bit RGBA PNG must have at most half as many.
    pub input_pixels_max: u64,
    /// The longest side accepted, in pixels (default 8000). It refuses a strip such as
    /// 1 × 40 000 000 that passes the pixel count but is no photo, and whose rows would
    /// still cost time in every step.
    pub input_side_px_max: u32,
    /// The longest side of the stored image, in pixels (default 600). Enough to compare a
    /// face with a document on a cashier's or a validator's screen; it keeps a stored photo
    /// near 50 KB and drops detail (the background, other people) that the approval does not
    /// need.
    pub output_side_px_max: u32,
    /// The quality of the stored JPEG, 1 to 100 on the libjpeg scale (default 85). At 600 px
    /// a face shows no visible artefacts at 85, and the file is about half the size it
    /// would be at 95.
    pub jpeg_quality: u8,
}

impl Default for PhotoLimits {
    fn default() -> Self {
        Self {
            upload_bytes_max: 5 * 1024 * 1024,
            input_pixels_max: 40_000_000,
            input_side_px_max: 8_000,
            output_side_px_max: 600,
            jpeg_quality: 85,
        }
    }
}

impl PhotoLimits {
    /// Refuses limits that no upload could meet or that the JPEG encoder cannot honour.
    /// This is the caller's mistake, not the passenger's, so it gets its own variant.
    pub(crate) fn check(&self) -> Result<(), PhotoError> {
        if self.upload_bytes_max == 0 {
            return Err(PhotoError::InvalidLimits("upload_bytes_max must be at least 1"));
        }
        if self.input_side_px_max < INPUT_SIDE_PX_MIN {
            return Err(PhotoError::InvalidLimits("input_side_px_max must be at least INPUT_SIDE_PX_MIN"));
        }
        let side_min_pixels = u64::from(INPUT_SIDE_PX_MIN) * u64::from(INPUT_SIDE_PX_MIN);
        if self.input_pixels_max < side_min_pixels {
            return Err(PhotoError::InvalidLimits("input_pixels_max must allow INPUT_SIDE_PX_MIN squared"));
        }
        if self.output_side_px_max == 0 || self.output_side_px_max > JPEG_SIDE_PX_MAX {
            return Err(PhotoError::InvalidLimits("output_side_px_max must be between 1 and 65535"));
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return Err(PhotoError::InvalidLimits("jpeg_quality must be between 1 and 100"));
        }
        Ok(())
    }

    /// The most bytes the decoder may allocate: 4 bytes (RGBA, 8 bits a channel) for each
    /// pixel allowed. Saturates rather than wraps for absurd limits.
    pub(crate) fn decode_bytes_max(&self) -> u64 {
        self.input_pixels_max.saturating_mul(4)
    }
}
