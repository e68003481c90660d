//! One coupon of a greenlist entry (KIDSOK 2.1): what a token medium may ride on, in a
//! fixed 32-byte record. Product, zone and discount numbers are the catalogue's card codes
//! (`catalog::Product::card_code`, the zone bitmap of card contracts, `Discount::card_code`).

/// Bytes of a coupon record in a list file.
pub const COUPON_BYTES: usize = 32;

const _: () = assert!(std::mem::size_of::<Coupon>() == COUPON_BYTES);

/// Flag bits of a coupon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CouponFlags(u16);

impl CouponFlags {
    /// No flag.
    pub const NONE: CouponFlags = CouponFlags(0);
    /// The discount was approved with a photo: the validator shows it (KIDSOK 3.1.3).
    pub const PHOTO_REQUIRED: CouponFlags = CouponFlags(0x0001);
    /// Every bit this format version defines; the others must be zero so a later version
    /// can give them meaning without an old validator misreading them.
    pub const KNOWN: CouponFlags = CouponFlags(0x0001);

    /// The flags from their bits, or `None` if an unknown bit is set.
    pub fn from_bits(bits: u16) -> Option<CouponFlags> {
        if bits & !CouponFlags::KNOWN.0 == 0 { Some(CouponFlags(bits)) } else { None }
    }

    /// The bits.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: CouponFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for CouponFlags {
    type Output = CouponFlags;
    fn bitor(self, other: CouponFlags) -> CouponFlags {
        CouponFlags(self.0 | other.0)
    }
}

/// A current or future coupon of a medium. Fields are ordered so coupons sort by the start
/// of their validity, which is how a medium's coupons are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Coupon {
    /// First second of validity, UTC, seconds since the Unix epoch.
    pub valid_from_unix_s: u64,
    /// First second after validity (exclusive), UTC, seconds since the Unix epoch.
    pub valid_until_unix_s: u64,
    /// The product's card code.
    pub product_code: u32,
    /// Zones covered: bit `z - 1` for zone `z`, zones 1–32 (`catalog::ZONE_CODE_MAX`).
    pub zones_bitmap: u32,
    /// The photo to show, a reference number in the photo store; 0 for none.
    pub photo_reference: u32,
    /// The discount category's card code; 0 for full fare.
    pub discount_code: u16,
    /// Flags.
    pub flags: CouponFlags,
}

impl Coupon {
    /// Checks what every coupon in a list must satisfy; the builder and the decoder both call
    /// it, so the server never signs what a validator would refuse.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.valid_until_unix_s <= self.valid_from_unix_s {
            return Err("coupon validity ends before it starts");
        }
        if self.zones_bitmap == 0 {
            return Err("coupon covers no zone");
        }
        if CouponFlags::from_bits(self.flags.0).is_none() {
            return Err("coupon has unknown flag bits");
        }
        if self.flags.contains(CouponFlags::PHOTO_REQUIRED) && self.photo_reference == 0 {
            return Err("coupon requires a photo but has none");
        }
        Ok(())
    }

    /// Whether `at_unix_s` is inside the validity.
    pub fn is_valid_at(&self, at_unix_s: u64) -> bool {
        self.valid_from_unix_s <= at_unix_s && at_unix_s < self.valid_until_unix_s
    }

    /// Whether zone `zone` (1–32) is covered.
    pub fn covers_zone(&self, zone: u8) -> bool {
        match zone.checked_sub(1) {
            Some(bit) if bit < 32 => self.zones_bitmap & (1 << bit) != 0,
            _ => false,
        }
    }

    /// The record as written in a list file (little-endian).
    pub fn to_bytes(&self) -> [u8; COUPON_BYTES] {
        let mut out = [0_u8; COUPON_BYTES];
        let fields: [&[u8]; 7] = [
            &self.product_code.to_le_bytes(),
            &self.zones_bitmap.to_le_bytes(),
            &self.valid_from_unix_s.to_le_bytes(),
            &self.valid_until_unix_s.to_le_bytes(),
            &self.photo_reference.to_le_bytes(),
            &self.discount_code.to_le_bytes(),
            &self.flags.0.to_le_bytes(),
        ];
        for (slot, byte) in out.iter_mut().zip(fields.into_iter().flatten()) {
            *slot = *byte;
        }
        out
    }

    /// Reads a record and [checks](Coupon::check) it.
    pub fn from_bytes(bytes: &[u8; COUPON_BYTES]) -> Result<Coupon, &'static str> {
        let [
            p0,
            p1,
            p2,
            p3,
            z0,
            z1,
            z2,
            z3,
            f0,
            f1,
            f2,
            f3,
            f4,
            f5,
            f6,
            f7,
            u0,
            u1,
            u2,
            u3,
            u4,
            u5,
            u6,
            u7,
            r0,
            r1,
            r2,
            r3,
            d0,
            d1,
            g0,
            g1,
        ] = *bytes;
        let coupon = Coupon {
            product_code: u32::from_le_bytes([p0, p1, p2, p3]),
            zones_bitmap: u32::from_le_bytes([z0, z1, z2, z3]),
            valid_from_unix_s: u64::from_le_bytes([f0, f1, f2, f3, f4, f5, f6, f7]),
            valid_until_unix_s: u64::from_le_bytes([u0, u1, u2, u3, u4, u5, u6, u7]),
            photo_reference: u32::from_le_bytes([r0, r1, r2, r3]),
            discount_code: u16::from_le_bytes([d0, d1]),
            flags: CouponFlags(u16::from_le_bytes([g0, g1])),
        };
        coupon.check()?;
        Ok(coupon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coupon() -> Coupon {
        Coupon {
            valid_from_unix_s: 1_780_000_000,
            valid_until_unix_s: 1_782_592_000,
            product_code: 0x0102_0304,
            zones_bitmap: 0b101,
            photo_reference: 77,
            discount_code: 3,
            flags: CouponFlags::PHOTO_REQUIRED,
        }
    }

    #[test]
    fn the_record_reads_back_and_has_the_documented_layout() {
        let bytes = coupon().to_bytes();
        assert_eq!(Coupon::from_bytes(&bytes), Ok(coupon()));
        assert_eq!(bytes[..4], [0x04, 0x03, 0x02, 0x01]);
        assert_eq!(bytes[4..8], [0b101, 0, 0, 0]);
        assert_eq!(bytes[24..28], [77, 0, 0, 0]);
        assert_eq!(bytes[28..30], [3, 0]);
        assert_eq!(bytes[30..], [1, 0]);
    }

    #[test]
    fn incoherent_coupons_are_refused() {
        let refused = [
            Coupon { valid_until_unix_s: coupon().valid_from_unix_s, ..coupon() },
            Coupon { zones_bitmap: 0, ..coupon() },
            Coupon { flags: CouponFlags(0x8000), ..coupon() },
            Coupon { photo_reference: 0, ..coupon() },
        ];
        for bad in refused {
            assert!(bad.check().is_err(), "{bad:?}");
            assert!(Coupon::from_bytes(&bad.to_bytes()).is_err());
        }
    }

    #[test]
    fn validity_and_zones() {
        let c = coupon();
        assert!(c.is_valid_at(c.valid_from_unix_s));
        assert!(!c.is_valid_at(c.valid_until_unix_s));
        assert!(c.covers_zone(1) && !c.covers_zone(2) && c.covers_zone(3));
        assert!(!c.covers_zone(0) && !c.covers_zone(33));
    }
}
