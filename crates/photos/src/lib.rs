//! Passenger photos for discount approval (KIDSOK 3.1.3): a cashier checks the photo against
//! the passenger's documents and validators' drivers see it. [`clean`] turns an untrusted
//! upload into a small JPEG that is re-encoded from pixels, so it carries no metadata.
//!
//! This crate owns the upload limits, the format check, and the decode, orient, downscale and
//! re-encode pipeline. It does not own where photos are stored or who may see them.
//! Only JPEG and PNG are decoded: every other decoder of the `image` crate is left out
//! of the build so that no parser we do not need ever sees untrusted bytes.
#![forbid(unsafe_code)]

mod clean;
mod error;
mod header;
mod limits;

pub use clean::{CleanPhoto, SourceFormat, clean};
pub use error::PhotoError;
pub use limits::{INPUT_SIDE_PX_MIN, PhotoLimits};
