//! Access-control mode end to end on a real directory: every decision and reason, identifier
//! rules, the list file surviving reopen and refusing damage, and the journal holding every
//! decision and change in order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use proptest::prelude::*;
use smartticket_acceptance::access::{
    ACCESS_LIST_ENTRIES_MAX, AccessDecision, AccessError, AccessEvent, AccessList, Controller, DenyReason, Doors,
    Grant, GrantError, Identifier, IdentifierError, JOURNAL_DIRECTORY_NAME, LABEL_BYTES_MAX, LIST_FILE_NAME,
    ListMalformed, decode_header,
};
use smartticket_acceptance::journal::{DeviceId, Journal, JournalLimits};
use smartticket_core::Timestamp;

const DEVICE: u32 = 7;
const PASSBACK_S: u32 = 30;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_750_000_000_000_000 + seconds * 1_000_000).unwrap()
}

fn id(text: &str) -> Identifier {
    text.parse().unwrap()
}

fn open(directory: &Path) -> Controller {
    Controller::open(directory, DEVICE, PASSBACK_S).unwrap().0
}

fn denied(reason: DenyReason) -> AccessDecision {
    AccessDecision::Denied { reason }
}

#[test]
fn every_decision_and_reason() {
    let directory = tempfile::tempdir().unwrap();
    let mut controller = open(directory.path());
    let everywhere = id("26:1A2B3C");
    let blocked = id("26:1");
    let later = id("26:2");
    let door_two = id("34:ABCDEF01");
    controller.put(everywhere, Grant::everywhere("Petra"), "test", at(0)).unwrap();
    controller.put(blocked, Grant { blocked: true, ..Grant::everywhere("Lost card") }, "test", at(0)).unwrap();
    let window = Grant { valid_from: Some(at(100)), valid_until: Some(at(200)), ..Grant::everywhere("Visitor") };
    controller.put(later, window, "test", at(0)).unwrap();
    let doors = Grant { doors: Some(Doors::from_numbers([2]).unwrap()), ..Grant::everywhere("Ivan") };
    controller.put(door_two, doors, "test", at(0)).unwrap();

    let mut decide = |identifier, door, seconds| controller.present(identifier, door, at(seconds)).unwrap().decision;
    assert_eq!(decide(everywhere, 1, 10), AccessDecision::Granted);
    assert_eq!(decide(everywhere, 1, 20), denied(DenyReason::Passback), "within the window, same door");
    assert_eq!(decide(everywhere, 3, 21), AccessDecision::Granted, "another door is another passage");
    assert_eq!(decide(everywhere, 1, 40), AccessDecision::Granted, "after the window");
    assert_eq!(decide(id("26:FFFFFF"), 1, 10), denied(DenyReason::Unknown));
    assert_eq!(decide(blocked, 1, 10), denied(DenyReason::Blocked));
    assert_eq!(decide(later, 1, 99), denied(DenyReason::NotYetValid));
    assert_eq!(decide(later, 1, 100), AccessDecision::Granted, "valid_from is inclusive");
    assert_eq!(decide(later, 1, 200), denied(DenyReason::Expired), "valid_until is exclusive");
    assert_eq!(decide(door_two, 1, 10), denied(DenyReason::WrongDoor));
    assert_eq!(decide(door_two, 2, 10), AccessDecision::Granted);

    let error = controller.present(everywhere, 0, at(50)).unwrap_err();
    assert!(matches!(error, AccessError::DoorOutOfRange { door: 0 }));
    assert!(matches!(controller.present(everywhere, 33, at(50)), Err(AccessError::DoorOutOfRange { door: 33 })));
}

#[test]
fn identifiers_of_different_lengths_are_different() {
    let directory = tempfile::tempdir().unwrap();
    let mut controller = open(directory.path());
    controller.put(id("26:1A2B3C"), Grant::everywhere("short"), "test", at(0)).unwrap();
    let longer = id("34:1A2B3C");
    assert_ne!(longer, id("26:1A2B3C"));
    assert_eq!(controller.present(longer, 1, at(1)).unwrap().decision, denied(DenyReason::Unknown));
    let widest = Identifier::new(64, u64::MAX).unwrap();
    assert_eq!(widest.to_string(), "64:FFFFFFFFFFFFFFFF");
    controller.put(widest, Grant::everywhere("widest"), "test", at(0)).unwrap();
    assert_eq!(controller.present(widest, 1, at(2)).unwrap().decision, AccessDecision::Granted);
    assert_eq!(controller.list(0, 10).len(), 2);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    assert_eq!(Identifier::new(65, 1), Err(IdentifierError::BitsOutOfRange { bits: 65 }));
    assert_eq!("65:1".parse::<Identifier>(), Err(IdentifierError::BitsOutOfRange { bits: 65 }));
    assert_eq!(Identifier::new(26, 1 << 26), Err(IdentifierError::ValueTooLarge { bits: 26, value: 1 << 26 }));
    assert!(matches!("26:4000000".parse::<Identifier>(), Err(IdentifierError::ValueTooLarge { .. })));
    assert!(matches!("26".parse::<Identifier>(), Err(IdentifierError::Syntax(_))));
    assert!(matches!("26:xyz".parse::<Identifier>(), Err(IdentifierError::Syntax(_))));

    let directory = tempfile::tempdir().unwrap();
    let mut controller = open(directory.path());
    let list_before = std::fs::read(directory.path().join(LIST_FILE_NAME)).unwrap();
    let sequence_before = controller.sequence_next();
    let who = id("26:10");
    let oversized = Grant::everywhere("x".repeat(LABEL_BYTES_MAX + 1));
    let error = controller.put(who, oversized, "test", at(0)).unwrap_err();
    assert!(matches!(error, AccessError::Grant(GrantError::LabelTooLong { bytes: 65 })), "{error}");
    assert!(error.is_bad_input());
    let control = Grant::everywhere("bell\u{7}");
    assert!(matches!(controller.put(who, control, "test", at(0)), Err(AccessError::Grant(_))));
    let inverted = Grant { valid_from: Some(at(10)), valid_until: Some(at(10)), ..Grant::everywhere("a") };
    assert!(matches!(
        controller.put(who, inverted, "test", at(0)),
        Err(AccessError::Grant(GrantError::ValidityInverted))
    ));
    assert!(matches!(controller.put(who, Grant::everywhere("a"), "", at(0)), Err(AccessError::InvalidActor)));
    let long_actor = "a".repeat(65);
    assert!(matches!(controller.put(who, Grant::everywhere("a"), &long_actor, at(0)), Err(AccessError::InvalidActor)));
    assert_eq!(controller.remove(who, "test", at(0)).unwrap(), None, "removing what is not there");

    assert_eq!(controller.sequence_next(), sequence_before, "nothing journalled");
    assert_eq!(std::fs::read(directory.path().join(LIST_FILE_NAME)).unwrap(), list_before, "nothing stored");
    assert!(matches!(Controller::open(directory.path(), DEVICE, 86_401), Err(AccessError::PassbackWindow { .. })));
}

#[test]
fn list_survives_reopen_and_changes_are_journalled_in_order() {
    let directory = tempfile::tempdir().unwrap();
    let petra = id("26:1A2B3C");
    let ivan = id("40:ABCDEF0123");
    {
        let mut controller = open(directory.path());
        controller.put(petra, Grant::everywhere("Petra"), "admin", at(0)).unwrap();
        controller.put(ivan, Grant::everywhere("Ivan"), "admin", at(1)).unwrap();
        assert_eq!(controller.present(petra, 1, at(2)).unwrap().sequence, 3);
        let replaced = controller.put(petra, Grant { blocked: true, ..Grant::everywhere("Petra") }, "api", at(3));
        assert_eq!(replaced.unwrap().previous, Some(Grant::everywhere("Petra")));
        let removed = controller.remove(ivan, "api", at(4)).unwrap().unwrap();
        assert_eq!((removed.sequence, removed.revision), (5, 4));
        controller.present(ivan, 1, at(5)).unwrap();
    }
    let (mut controller, recovery) = Controller::open(directory.path(), DEVICE, PASSBACK_S).unwrap();
    assert!(!recovery.created);
    assert_eq!(controller.access_list().revision(), 4);
    assert_eq!(controller.get(&petra).map(|grant| grant.blocked), Some(true));
    assert_eq!(controller.get(&ivan), None);
    assert_eq!(controller.present(petra, 1, at(6)).unwrap().decision, denied(DenyReason::Blocked));

    let events = controller.events(0, 100).unwrap();
    let sequences: Vec<u64> = events.iter().map(|event| event.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5, 6, 7]);
    let kinds: Vec<String> = events
        .iter()
        .map(|event| match &event.event {
            AccessEvent::AccessPresented(presented) => {
                format!("present {} {:?}", presented.identifier, presented.decision)
            }
            AccessEvent::AccessPut(change) => {
                format!("put {} by {} r{}", change.identifier, change.actor, change.list_revision)
            }
            AccessEvent::AccessRemoved(change) => format!("remove {} by {}", change.identifier, change.actor),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "put 26:1A2B3C by admin r1",
            "put 40:ABCDEF0123 by admin r2",
            "present 26:1A2B3C Granted",
            "put 26:1A2B3C by api r3",
            "remove 40:ABCDEF0123 by api",
            "present 40:ABCDEF0123 Denied { reason: Unknown }",
            "present 26:1A2B3C Denied { reason: Blocked }",
        ]
    );
    // Paging: after a sequence, and bounded.
    let page: Vec<u64> = controller.events(5, 1).unwrap().iter().map(|event| event.sequence).collect();
    assert_eq!(page, [6]);
    assert!(controller.events(7, 10).unwrap().is_empty());
    // The label is in the journal with the decision: it reads as who came.
    let AccessEvent::AccessPresented(presented) = &events[2].event else { panic!("a presentation") };
    assert_eq!(presented.label.as_deref(), Some("Petra"));
    assert_eq!(presented.list_revision, 2);
}

#[test]
fn corrupt_list_is_refused_with_a_typed_error_and_left_alone() {
    let directory = tempfile::tempdir().unwrap();
    {
        let mut controller = open(directory.path());
        controller.put(id("26:1"), Grant::everywhere("one"), "test", at(0)).unwrap();
    }
    let path = directory.path().join(LIST_FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 6;
    bytes[last] ^= 0x20; // inside the label: only the checksum can tell
    std::fs::write(&path, &bytes).unwrap();

    let error = Controller::open(directory.path(), DEVICE, PASSBACK_S).unwrap_err();
    let AccessError::ListCorrupt { error: decode, .. } = &error else { panic!("{error}") };
    assert_eq!(decode.malformed, ListMalformed::Checksum);
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the damaged file is kept as it was");

    // Another device's list, copied in, is told apart from damage.
    let other = tempfile::tempdir().unwrap();
    drop(open(other.path()));
    let copied = other.path().join(LIST_FILE_NAME);
    let theirs = std::fs::read(&copied).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(fresh.path().join(LIST_FILE_NAME), &theirs).unwrap();
    let error = Controller::open(fresh.path(), DEVICE + 1, PASSBACK_S).unwrap_err();
    assert!(matches!(error, AccessError::ListOtherDevice { expected: 8, found: 7, .. }), "{error}");
    assert_eq!(std::fs::read(fresh.path().join(LIST_FILE_NAME)).unwrap(), theirs);
}

#[test]
fn a_missing_list_with_a_journal_is_an_error_and_a_leftover_is_removed() {
    let directory = tempfile::tempdir().unwrap();
    {
        let mut controller = open(directory.path());
        controller.put(id("26:1"), Grant::everywhere("one"), "test", at(0)).unwrap();
    }
    let path = directory.path().join(LIST_FILE_NAME);
    let saved = std::fs::read(&path).unwrap();
    std::fs::write(directory.path().join(format!("{LIST_FILE_NAME}.tmp")), b"half written").unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(Controller::open(directory.path(), DEVICE, PASSBACK_S), Err(AccessError::ListMissing { .. })));
    std::fs::write(&path, saved).unwrap();
    let controller = open(directory.path());
    assert_eq!(controller.access_list().len(), 1);
    assert!(!directory.path().join(format!("{LIST_FILE_NAME}.tmp")).exists());
}

#[test]
fn a_second_controller_on_the_same_directory_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let _first = open(directory.path());
    let error = Controller::open(directory.path(), DEVICE, PASSBACK_S).unwrap_err();
    assert!(matches!(error, AccessError::Journal(_)), "{error}");
}

#[test]
fn journal_read_from_starts_anywhere_and_moves_no_upload_position() {
    let directory = tempfile::tempdir().unwrap();
    let device = DeviceId([3; 16]);
    // Small segments so that reads cross them.
    let limits = JournalLimits { segment_bytes_max: 8 * 1024, segment_count_max: 64 };
    let (mut journal, _) = Journal::open(directory.path(), device, limits).unwrap();
    for n in 0..20_u32 {
        journal.append(&vec![n as u8; 1000]).unwrap();
    }
    assert!(journal.segment_count() > 1);
    let read = journal.read_from(5, 10).unwrap();
    assert_eq!(read.iter().map(|record| record.sequence).collect::<Vec<_>>(), (5..15).collect::<Vec<_>>());
    assert!(read.iter().all(|record| record.payload == vec![(record.sequence - 1) as u8; 1000]));
    assert_eq!(journal.read_from(21, 10).unwrap(), []);
    assert_eq!(journal.next_batch(1, 4096).unwrap().unwrap().id.sequence_first, 1, "upload position unmoved");
    journal.acknowledge(12).unwrap();
    let oldest = journal.read_from(1, 1).unwrap()[0].sequence;
    assert!(oldest > 1 && oldest <= 13, "starts at the oldest record still on disk ({oldest})");
}

#[test]
fn journal_directory_is_the_controllers_own() {
    let directory = tempfile::tempdir().unwrap();
    drop(open(directory.path()));
    assert!(directory.path().join(JOURNAL_DIRECTORY_NAME).is_dir());
}

/// What the fuzz target `access_list` checks, for bytes that decode.
fn check_decoded(bytes: &[u8]) {
    let header = decode_header(bytes);
    let Ok(list) = AccessList::decode(bytes) else {
        return;
    };
    let header = header.expect("a list that decodes has a header that decodes");
    assert_eq!(list.device(), header.device);
    assert_eq!(list.revision(), header.revision);
    assert_eq!(list.len(), header.entry_count as usize);
    assert!(list.len() <= ACCESS_LIST_ENTRIES_MAX as usize);
    let mut previous = None;
    for (identifier, grant) in list.iter() {
        assert!(previous < Some(*identifier), "keys not strictly ascending");
        assert!(grant.check().is_ok());
        assert_eq!(identifier.to_string().parse(), Ok(*identifier));
        previous = Some(*identifier);
    }
    assert_eq!(list.encode(), bytes, "a list re-encodes to its own bytes");
}

fn sample_list_bytes() -> Vec<u8> {
    let mut list = AccessList::new(9);
    list.put(id("26:1A2B3C"), Grant::everywhere("Petra")).unwrap();
    let grant = Grant {
        valid_from: Some(at(0)),
        valid_until: Some(at(60)),
        doors: Some(Doors::from_numbers([1, 4]).unwrap()),
        blocked: true,
        ..Grant::everywhere("Иван")
    };
    list.put(id("40:1A2B3C"), grant).unwrap();
    list.encode()
}

proptest! {
    #[test]
    fn list_bytes_never_panic_and_what_decodes_re_encodes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_decoded(&bytes);
    }

    #[test]
    fn damaged_lists_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
        let mut bytes = sample_list_bytes();
        check_decoded(&bytes);
        for (index, byte) in edits {
            let index = index % bytes.len();
            bytes[index] = byte;
        }
        check_decoded(&bytes);
        bytes.truncate(cut % (bytes.len() + 1));
        check_decoded(&bytes);
    }

    #[test]
    fn identifier_text_round_trips(bits in 1_u8..=64, raw in any::<u64>()) {
        let value = if bits == 64 { raw } else { raw & ((1_u64 << bits) - 1) };
        let identifier = Identifier::new(bits, value).unwrap();
        let text = identifier.to_string();
        prop_assert_eq!(text.parse::<Identifier>(), Ok(identifier));
        prop_assert_eq!(text.to_lowercase().parse::<Identifier>(), Ok(identifier));
        let json = serde_json::to_string(&identifier).unwrap();
        prop_assert_eq!(serde_json::from_str::<Identifier>(&json).unwrap(), identifier);
        prop_assert_eq!(Identifier::from_number(u32::from(bits), &value.to_string()), Ok(identifier));
    }

    #[test]
    fn parsing_any_text_never_panics(text in ".{0,40}", bits in any::<u32>()) {
        if let Ok(identifier) = text.parse::<Identifier>() {
            prop_assert_eq!(identifier.to_string().parse::<Identifier>(), Ok(identifier));
        }
        let _ = Identifier::from_number(bits, &text);
    }

    #[test]
    fn parsing_identifier_like_text_never_panics(text in "[0-9]{0,3}:?(0x)?[0-9a-fA-F+-]{0,20}") {
        let _ = text.parse::<Identifier>();
        let _ = Identifier::from_number(26, &text);
    }
}
