//! Why a photo was refused. Every variant but the last two is the upload's fault, and its
//! message is a sentence the passenger can act on, shown as it is.

/// Why [`clean`](crate::clean) refused an upload.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhotoError {
    /// The upload has no bytes (usually no file was chosen).
    #[error("the photo file is empty; please choose the photo again")]
    Empty,
    /// The upload is larger than [`PhotoLimits::upload_bytes_max`](crate::PhotoLimits).
    #[error(
        "the photo file is too big ({:.1} MB); please upload a photo of at most {:.1} MB",
        megabytes(*.bytes),
        megabytes(*.max)
    )]
    TooLarge {
        /// The size of the upload, in bytes.
        bytes: usize,
        /// The largest accepted, in bytes.
        max: usize,
    },
    /// The bytes are no image format we recognise (text, random bytes, an unknown format).
    #[error("this file is not a photo; the photo must be a JPEG or PNG image")]
    NotAnImage,
    /// A recognised format other than JPEG and PNG; it names the format found, as in `"GIF"`.
    #[error("the photo must be a JPEG or PNG image; this file's format is {0}")]
    UnsupportedFormat(&'static str),
    /// The header claims more pixels, or a longer side, than the limits allow. Checked
    /// before any decoding, so a decompression bomb allocates nothing.
    #[error(
        "the photo is too large at {width} × {height} pixels; please upload a photo of at most \
         {side_px_max} pixels on a side and {} megapixels",
        .pixels_max / 1_000_000
    )]
    TooManyPixels {
        /// The width the header claims, in pixels.
        width: u32,
        /// The height the header claims, in pixels.
        height: u32,
        /// [`PhotoLimits::input_pixels_max`](crate::PhotoLimits).
        pixels_max: u64,
        /// [`PhotoLimits::input_side_px_max`](crate::PhotoLimits).
        side_px_max: u32,
    },
    /// A side is shorter than [`INPUT_SIDE_PX_MIN`](crate::INPUT_SIDE_PX_MIN): too few pixels
    /// to recognise a face.
    #[error(
        "the photo is too small at {width} × {height} pixels; it must be at least {side_px_min} pixels \
         on each side so that your face can be recognised"
    )]
    TooSmall {
        /// The width the header claims, in pixels.
        width: u32,
        /// The height the header claims, in pixels.
        height: u32,
        /// The shortest side accepted, in pixels.
        side_px_min: u32,
    },
    /// The file ends before its end marker (PNG `IEND`, JPEG EOI): the upload was cut off.
    #[error("the photo file is incomplete, perhaps the upload was cut off; please upload it again")]
    Truncated,
    /// The file says it is a JPEG or PNG but cannot be read as one. The text says what the
    /// header check or the decoder found, for the log; the passenger is asked for a new file.
    #[error("the photo could not be read, the file may be damaged ({0}); please save the photo again and upload it")]
    Corrupt(String),
    /// The decoded image could not be encoded again. Our fault, not the upload's.
    #[error("the photo could not be converted ({0}); please try again later")]
    Encode(String),
    /// The [`PhotoLimits`](crate::PhotoLimits) given are unusable. The caller's mistake.
    #[error("the photo limits are misconfigured: {0}")]
    InvalidLimits(&'static str),
}

/// Decimal megabytes, as file managers on phones show them. For display only.
fn megabytes(bytes: usize) -> f64 {
    bytes as f64 / 1_000_000.0
}
