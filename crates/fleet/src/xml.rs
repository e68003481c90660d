//! The greenlist web service for carriers' systems (KIDSOK 2.1): the published greenlist as
//! an XML document described by `schema/greenlist.xsd`, in full or as the changes since a
//! version, with the photo of every discounted coupon inline in its medium. It says what
//! the binary file of the same version says, read back from that file.

use std::collections::{BTreeSet, HashMap};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use smartticket_acceptance::lists::{Coupon, CouponFlags, Greenlist, GreenlistDelta, ListKind, MediumKey, MediumKind};
use smartticket_catalog::CatalogStore;
use smartticket_core::Timestamp;
use smartticket_store::{Db, sql};

use crate::FleetError;
use crate::versions::{self, ListVersionInfo};

/// The XML schema of the document, as served to carriers.
pub const GREENLIST_XSD: &str = include_str!("../schema/greenlist.xsd");
/// Largest document the service builds (in memory). A full list with many discounted
/// coupons is mostly photos; a carrier keeping up with deltas never comes near it.
pub const XML_BYTES_MAX: usize = 256 * 1024 * 1024;
/// The media type of stored photos (`sales` re-encodes every upload to JPEG).
const PHOTO_MEDIA_TYPE: &str = "image/jpeg";
/// Photo references looked up per query.
const PHOTO_REFS_PER_QUERY: usize = 500;

/// What the XML service answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlDownload {
    /// A document bringing the caller to `version`: every listed medium (`base_version` 0),
    /// or the media changed and removed since `base_version`.
    Document {
        /// The greenlist version it describes.
        version: u64,
        /// 0 for the full list, else the version the changes are counted from.
        base_version: u64,
        /// The UTF-8 XML document.
        xml: Vec<u8>,
    },
    /// The caller holds the latest version already.
    UpToDate {
        /// The latest version.
        version: u64,
    },
}

/// The document for a carrier holding `since` (none: nothing).
pub(crate) async fn greenlist_xml(
    db: &Db,
    catalog: &CatalogStore,
    since: Option<u64>,
    now: Timestamp,
) -> Result<XmlDownload, FleetError> {
    let kind = ListKind::Greenlist;
    let head = versions::latest(db, kind).await?.ok_or(FleetError::NothingPublished(kind))?;
    let unknown = |since| FleetError::UnknownVersion { kind, since, latest: head.version };
    if since == Some(head.version) {
        return Ok(XmlDownload::UpToDate { version: head.version });
    }
    if since.is_some_and(|since| since == 0 || since > head.version) {
        return Err(unknown(since.unwrap_or(0)));
    }
    let latest = versions::greenlist(db, head.version).await?.ok_or(FleetError::NothingPublished(kind))?;
    let (removals, updates) = match since {
        None => (Vec::new(), latest),
        Some(since) => {
            let base = versions::greenlist(db, since).await?.ok_or_else(|| unknown(since))?;
            let delta = GreenlistDelta::between(&base, &latest);
            (delta.removals().to_vec(), delta.updates().clone())
        }
    };
    let photos = photos_of(db, &updates).await?;
    let names = match catalog.in_force_at(now).await {
        Ok((_, catalog)) => Names {
            products: catalog.products().map(|p| (p.card_code, p.code.clone())).collect(),
            discounts: catalog.discounts().map(|d| (d.card_code, d.code.clone())).collect(),
        },
        Err(error) => {
            // The numbers are the contract; the codes only help people read the document.
            tracing::warn!(%error, "greenlist XML without product and discount codes: no catalogue in force");
            Names::default()
        }
    };
    let xml = render(&head, since.unwrap_or(0), &updates, &removals, &photos, &names)?;
    Ok(XmlDownload::Document { version: head.version, base_version: since.unwrap_or(0), xml })
}

/// The catalogue's codes for the card numbers of products and discounts.
#[derive(Default)]
struct Names {
    products: HashMap<u32, String>,
    discounts: HashMap<u16, String>,
}

/// The JPEG of every photo the coupons of `list` refer to, refusing to collect more than a
/// document may hold.
async fn photos_of(db: &Db, list: &Greenlist) -> Result<HashMap<u32, Vec<u8>>, FleetError> {
    let references: BTreeSet<u32> = list
        .iter()
        .flat_map(|(_, coupons)| coupons.iter().map(|c| c.photo_reference))
        .filter(|reference| *reference != 0)
        .collect();
    let references: Vec<i64> = references.into_iter().map(i64::from).collect();
    let mut photos = HashMap::with_capacity(references.len());
    let mut encoded_bytes = 0_usize;
    let mut tx = db.begin_read().await?;
    for chunk in references.chunks(PHOTO_REFS_PER_QUERY) {
        let rows: Vec<(i64, Vec<u8>)> = sql!(tx.conn(), |c| {
            let mut select = sqlx::QueryBuilder::new(
                "SELECT p.reference, ph.jpeg FROM list_photo_refs p JOIN photos ph ON ph.id = p.photo_id \
                 WHERE p.reference IN (",
            );
            let mut list = select.separated(", ");
            for reference in chunk {
                list.push_bind(*reference);
            }
            select.push(")");
            select.build_query_as().fetch_all(c).await
        })?;
        for (reference, jpeg) in rows {
            encoded_bytes = encoded_bytes.saturating_add(jpeg.len().div_ceil(3) * 4);
            if encoded_bytes > XML_BYTES_MAX {
                return Err(FleetError::XmlTooLarge { bytes_max: XML_BYTES_MAX });
            }
            if let Ok(reference) = u32::try_from(reference) {
                photos.insert(reference, jpeg);
            }
        }
    }
    tx.rollback().await?;
    Ok(photos)
}

fn xml_error(error: impl std::fmt::Display) -> FleetError {
    FleetError::Xml(error.to_string())
}

fn render(
    head: &ListVersionInfo,
    base_version: u64,
    updates: &Greenlist,
    removals: &[MediumKey],
    photos: &HashMap<u32, Vec<u8>>,
    names: &Names,
) -> Result<Vec<u8>, FleetError> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None))).map_err(xml_error)?;
    let version = head.version.to_string();
    let base = base_version.to_string();
    let issued = date_time(head.issued_at);
    let key_version = head.key_version.get().to_string();
    let root = BytesStart::new("greenlist").with_attributes([
        ("version", version.as_str()),
        ("baseVersion", base.as_str()),
        ("issuedAt", issued.as_str()),
        ("keyVersion", key_version.as_str()),
    ]);
    writer.write_event(Event::Start(root)).map_err(xml_error)?;
    for (key, coupons) in updates.iter() {
        write_medium(&mut writer, key, coupons, photos, names)?;
        if writer.get_ref().len() > XML_BYTES_MAX {
            return Err(FleetError::XmlTooLarge { bytes_max: XML_BYTES_MAX });
        }
    }
    for key in removals {
        let (kind, token) = medium_attributes(key);
        let removed = BytesStart::new("removed").with_attributes([("kind", kind), ("token", token.as_str())]);
        writer.write_event(Event::Empty(removed)).map_err(xml_error)?;
    }
    writer.write_event(Event::End(BytesEnd::new("greenlist"))).map_err(xml_error)?;
    let mut xml = writer.into_inner();
    xml.push(b'\n');
    Ok(xml)
}

fn write_medium(
    writer: &mut Writer<Vec<u8>>,
    key: &MediumKey,
    coupons: &[Coupon],
    photos: &HashMap<u32, Vec<u8>>,
    names: &Names,
) -> Result<(), FleetError> {
    let (kind, token) = medium_attributes(key);
    let medium = BytesStart::new("medium").with_attributes([("kind", kind), ("token", token.as_str())]);
    writer.write_event(Event::Start(medium)).map_err(xml_error)?;
    let mut shown: BTreeSet<u32> = BTreeSet::new();
    for coupon in coupons {
        let product = coupon.product_code.to_string();
        let zones = zone_list(coupon.zones_bitmap);
        let from = unix_date_time(coupon.valid_from_unix_s)?;
        let until = unix_date_time(coupon.valid_until_unix_s)?;
        let discount = coupon.discount_code.to_string();
        let photo = coupon.photo_reference.to_string();
        let mut element = BytesStart::new("coupon").with_attributes([("product", product.as_str())]);
        if let Some(code) = names.products.get(&coupon.product_code) {
            element.push_attribute(("productCode", code.as_str()));
        }
        element.extend_attributes([
            ("zones", zones.as_str()),
            ("validFrom", from.as_str()),
            ("validUntil", until.as_str()),
            ("discount", discount.as_str()),
        ]);
        if let Some(code) = names.discounts.get(&coupon.discount_code) {
            element.push_attribute(("discountCode", code.as_str()));
        }
        if coupon.flags.contains(CouponFlags::PHOTO_REQUIRED) {
            element.push_attribute(("photoRef", photo.as_str()));
            shown.insert(coupon.photo_reference);
        }
        writer.write_event(Event::Empty(element)).map_err(xml_error)?;
    }
    // Each photo once per medium, after its coupons, so the driver's display has it inline.
    for reference in &shown {
        let Some(jpeg) = photos.get(reference) else {
            tracing::warn!(reference, "greenlist XML: a coupon's photo is missing from the photo store");
            continue;
        };
        let reference = reference.to_string();
        let photo =
            BytesStart::new("photo").with_attributes([("ref", reference.as_str()), ("mediaType", PHOTO_MEDIA_TYPE)]);
        writer.write_event(Event::Start(photo)).map_err(xml_error)?;
        writer.write_event(Event::Text(BytesText::new(&BASE64.encode(jpeg)))).map_err(xml_error)?;
        writer.write_event(Event::End(BytesEnd::new("photo"))).map_err(xml_error)?;
    }
    writer.write_event(Event::End(BytesEnd::new("medium"))).map_err(xml_error)?;
    Ok(())
}

/// The `kind` and `token` attributes of a medium: its kind's name and its 16 identity bytes
/// in hex, exactly as the binary list keys it.
fn medium_attributes(key: &MediumKey) -> (&'static str, String) {
    let kind = match key.kind() {
        MediumKind::BankCardToken => "bank_card",
        MediumKind::PhoneToken => "phone_token",
        MediumKind::QrToken => "qr_token",
        MediumKind::CardNumber => "card_number",
        MediumKind::CardUid => "card_uid",
    };
    let [_, id @ ..] = key.as_bytes();
    (kind, hex::encode(id))
}

/// The zones of a bitmap, ascending, space-separated (an `xs:list`).
fn zone_list(bitmap: u32) -> String {
    (1..=32_u32)
        .filter(|zone| bitmap & (1 << (zone - 1)) != 0)
        .map(|zone| zone.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `xs:dateTime` in UTC with whole seconds.
fn date_time(at: Timestamp) -> String {
    at.datetime().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn unix_date_time(seconds: u64) -> Result<String, FleetError> {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| s.checked_mul(1_000_000))
        .and_then(Timestamp::from_unix_micros)
        .map(date_time)
        .ok_or_else(|| FleetError::Xml(format!("time {seconds} s is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_times_are_written_as_the_schema_says() {
        assert_eq!(zone_list(0b1011), "1 2 4");
        assert_eq!(zone_list(1 << 31), "32");
        assert_eq!(unix_date_time(1_796_083_200).unwrap(), "2026-12-01T00:00:00Z");
        assert!(unix_date_time(u64::MAX).is_err());
    }
}
