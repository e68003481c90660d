//! Application selection for contactless cards: the PPSE directory and its priorities (EMV
//! Contactless Book B §3.3; Application Priority Indicator, tag 87, EMV 4.4 Book 3 Annex A),
//! direct selection of known AIDs when a card has no PPSE, and the application's FCI
//! (label, preferred name, PDOL; EMV 4.4 Book 1 §11.3.4).

use crate::tlv::{Tag, Tlv};

/// DF name of the Proximity Payment System Environment.
pub const PPSE_NAME: &[u8] = b"2PAY.SYS.DDF01";

/// Shortest AID: the 5-byte registered application provider identifier (ISO/IEC 7816-5).
pub const AID_BYTES_MIN: usize = 5;

/// Longest AID: RID plus an 11-byte proprietary extension (ISO/IEC 7816-5).
pub const AID_BYTES_MAX: usize = 16;

/// Most directory entries (`61`) a PPSE may list. Real cards list one to four (a co-badged
/// card: scheme plus domestic debit); sixteen is generous and keeps a hostile card from
/// making us try hundreds of SELECTs during one tap.
pub const PPSE_DIRECTORY_ENTRIES_MAX: usize = 16;

/// Longest application label (50) or preferred name (9F12): 16 characters (Book 1 Annex B).
/// Longer values are cut, not refused: a label is only shown, never relied on.
pub const LABEL_BYTES_MAX: usize = 16;

/// A payment application we know by AID, tried by direct selection when the PPSE is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownAid {
    /// The AID (selected with P2 = 00, so a card's longer AID with this prefix matches).
    pub aid: &'static [u8],
    /// The scheme and product, for logs.
    pub name: &'static str,
}

/// The AIDs tried, in this order, on a card that has no PPSE (`6A82`). Scheme-assigned AIDs
/// as listed by the schemes and in EMVCo's registered RID list.
pub const KNOWN_AIDS: &[KnownAid] = &[
    KnownAid { aid: &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10], name: "Visa credit/debit" },
    KnownAid { aid: &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x20, 0x10], name: "Visa Electron" },
    KnownAid { aid: &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x20, 0x20], name: "V Pay" },
    KnownAid { aid: &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10], name: "Mastercard" },
    KnownAid { aid: &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x30, 0x60], name: "Maestro" },
    KnownAid { aid: &[0xA0, 0x00, 0x00, 0x00, 0x25, 0x01], name: "American Express" },
    KnownAid { aid: &[0xA0, 0x00, 0x00, 0x01, 0x52, 0x30, 0x10], name: "Discover" },
    KnownAid { aid: &[0xA0, 0x00, 0x00, 0x00, 0x65, 0x10, 0x10], name: "JCB" },
    KnownAid { aid: &[0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01], name: "UnionPay" },
    KnownAid { aid: &[0xA0, 0x00, 0x00, 0x00, 0x42, 0x10, 0x10], name: "Cartes Bancaires" },
    KnownAid { aid: &[0xA0, 0x00, 0x00, 0x03, 0x59, 0x10, 0x10, 0x02, 0x80, 0x01], name: "girocard" },
];
const _: () = assert!(KNOWN_AIDS.len() <= super::APPLICATIONS_TRIED_MAX);

/// An application to try: from the PPSE directory, or from [`KNOWN_AIDS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The AID to select.
    pub(crate) aid: Vec<u8>,
    /// The label the directory gave, if any.
    pub(crate) label: Option<String>,
}

/// What the PPSE answer lists, in the order to try: by Application Priority Indicator
/// (low nibble, 1 first, 15 last; 0 means "no priority" and sorts with entries that have no
/// indicator, after all numbered ones), ties in card order. Bit 8 ("cardholder confirmation")
/// is ignored: a gate cannot ask. Entries whose AID is not 5–16 bytes are skipped.
///
/// `Ok` with an empty list when the FCI has no directory (no `A5` or `BF0C`, or no `61`).
pub(crate) fn ppse_candidates(fci: &[Tlv]) -> Result<Vec<Candidate>, String> {
    let template = single_template(fci, Tag(0x6F))?;
    let Some(directory) = child(template, Tag(0xA5)).and_then(|proprietary| child(proprietary, Tag(0xBF0C))) else {
        return Ok(Vec::new());
    };
    let entries: Vec<&Tlv> = directory.children().iter().filter(|entry| entry.tag == Tag(0x61)).collect();
    if entries.len() > PPSE_DIRECTORY_ENTRIES_MAX {
        return Err(format!("{} directory entries, at most {PPSE_DIRECTORY_ENTRIES_MAX}", entries.len()));
    }
    let mut ranked: Vec<(u8, Candidate)> = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some(aid) =
            child_bytes(entry, Tag(0x4F)).filter(|aid| (AID_BYTES_MIN..=AID_BYTES_MAX).contains(&aid.len()))
        else {
            continue;
        };
        let rank = match child_bytes(entry, Tag(0x87)) {
            Some([indicator]) if indicator & 0x0F != 0 => indicator & 0x0F,
            _ => 0x10,
        };
        ranked.push((rank, Candidate { aid: aid.to_vec(), label: child_bytes(entry, Tag(0x50)).and_then(label_text) }));
    }
    // A stable sort keeps card order between equal priorities.
    ranked.sort_by_key(|(rank, _)| *rank);
    Ok(ranked.into_iter().map(|(_, candidate)| candidate).collect())
}

/// The known AIDs as candidates, for a card without a PPSE.
pub(crate) fn known_candidates() -> Vec<Candidate> {
    KNOWN_AIDS.iter().map(|known| Candidate { aid: known.aid.to_vec(), label: None }).collect()
}

/// An application the card accepted a SELECT for, with what its FCI says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SelectedApplication {
    /// The DF name the card answered (84), or the AID we selected if it gave none.
    pub(crate) aid: Vec<u8>,
    /// Application label (50), from the FCI or else the directory.
    pub(crate) label: Option<String>,
    /// Application preferred name (9F12).
    pub(crate) preferred_name: Option<String>,
    /// The PDOL (9F38), if the card asks for terminal data.
    pub(crate) pdol: Option<Vec<u8>>,
}

/// Reads the FCI a SELECT of `candidate` answered: `6F` with an optional DF name `84` that
/// must extend the AID we asked for (a partial selection may return a longer one), and the
/// proprietary template `A5` with the label, preferred name and PDOL.
pub(crate) fn application_from_fci(candidate: &Candidate, fci: &[Tlv]) -> Result<SelectedApplication, String> {
    let template = single_template(fci, Tag(0x6F))?;
    let aid = match child_bytes(template, Tag(0x84)) {
        None => candidate.aid.clone(),
        Some(name) if name.starts_with(&candidate.aid) && name.len() <= AID_BYTES_MAX => name.to_vec(),
        Some(name) => return Err(format!("answered for DF name {} instead", hex::encode_upper(name))),
    };
    let proprietary = child(template, Tag(0xA5));
    let field = |tag: Tag| proprietary.and_then(|template| child_bytes(template, tag));
    Ok(SelectedApplication {
        aid,
        label: field(Tag(0x50)).and_then(label_text).or_else(|| candidate.label.clone()),
        preferred_name: field(Tag(0x9F12)).and_then(label_text),
        pdol: field(Tag(0x9F38)).map(<[u8]>::to_vec),
    })
}

/// The one object `tlvs` must consist of, with tag `tag`.
pub(crate) fn single_template(tlvs: &[Tlv], tag: Tag) -> Result<&Tlv, String> {
    match tlvs {
        [template] if template.tag == tag => Ok(template),
        [other] => Err(format!("expected template {tag}, got {}", other.tag)),
        _ => Err(format!("expected one template {tag}, got {} objects", tlvs.len())),
    }
}

/// The first direct child of `template` with `tag`.
pub(crate) fn child(template: &Tlv, tag: Tag) -> Option<&Tlv> {
    template.children().iter().find(|tlv| tlv.tag == tag)
}

/// The value of the first primitive direct child of `template` with `tag`.
pub(crate) fn child_bytes(template: &Tlv, tag: Tag) -> Option<&[u8]> {
    child(template, tag).and_then(Tlv::value_bytes)
}

/// A label or preferred name as text we can show: at most [`LABEL_BYTES_MAX`] bytes,
/// printable ASCII kept and anything else (control bytes, code-table characters) shown as
/// `?`, trailing spaces dropped. `None` if nothing is left.
pub(crate) fn label_text(bytes: &[u8]) -> Option<String> {
    let text: String = bytes
        .iter()
        .take(LABEL_BYTES_MAX)
        .map(|&byte| if (0x20..=0x7E).contains(&byte) { char::from(byte) } else { '?' })
        .collect();
    let text = text.trim_end().to_owned();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_text_is_printable_and_bounded() {
        assert_eq!(label_text(b"Visa Debit").as_deref(), Some("Visa Debit"));
        assert_eq!(label_text(b"ABC\x07\xE9").as_deref(), Some("ABC??"));
        assert_eq!(label_text(b"0123456789ABCDEFGHIJ").as_deref(), Some("0123456789ABCDEF"));
        assert_eq!(label_text(b"   "), None);
    }
}
