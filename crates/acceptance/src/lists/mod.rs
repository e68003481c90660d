//! Signed, versioned greenlists and denylists (DESIGN §4): the in-memory lists a validator
//! searches, their binary file format, full and delta (`FORMAT.md` beside this file), the
//! builders that encode and sign them in the back office, and the [`ListHolder`] that
//! accepts a file on a validator only if it is authentic and the next version.
//!
//! Not here: choosing which coupons a medium has (sales), the XML greenlist web service for
//! carriers, photos themselves, and storing or downloading files.

mod coupon;
mod delta;
mod denylist;
mod error;
mod format;
mod greenlist;
mod holder;
mod key;
mod signing;

pub use coupon::{COUPON_BYTES, Coupon, CouponFlags};
pub use delta::Delta;
pub use denylist::{DenyReason, Denylist, DenylistDelta};
pub use error::{BuildError, ListError};
pub use format::{
    ENTRY_BYTES, HEADER_BYTES, LIST_COUPONS_MAX, LIST_ENTRIES_MAX, LIST_FILE_BYTES_MAX, LIST_FORMAT_VERSION,
    LIST_MAGIC, LIST_SIGNATURE_BYTES, ListFile, ListHeader, ListKind, MEDIUM_COUPONS_MAX, REMOVAL_BYTES, VerifiedList,
};
pub use greenlist::{Greenlist, GreenlistDelta};
pub use holder::{InstalledList, ListContent, ListHolder, check_sequence};
pub use key::{CARD_UID_BYTES, MEDIUM_ID_BYTES, MEDIUM_KEY_BYTES, MediumKey, MediumKind, TOKEN_LONG_BYTES};
pub use signing::{HsmSigner, KeySigner, ListSigner, TrustedKeys};
