//! APDU and BER-TLV codecs against real bytes (EMV PPSE selection, DESFire native wrapping,
//! an EMV FCI and PDOL), one test per error, and property tests: encode→parse is the identity
//! and no parser panics on arbitrary input.

use hex_literal::hex;
use proptest::prelude::*;
use smartticket_card::apdu::{
    self, APDU_COMMAND_BYTES_MAX, ApduError, Command, ExchangeError, GET_RESPONSE_ROUNDS_MAX, Response, StatusKind,
    StatusWord,
};
use smartticket_card::codec::CodecError;
use smartticket_card::tlv::{self, TLV_DEPTH_MAX, TLV_NODES_MAX, Tag, Tlv, TlvError, Value};

const PPSE_NAME: &[u8] = b"2PAY.SYS.DDF01";

// ---------------------------------------------------------------------------------------------
// Command APDUs
// ---------------------------------------------------------------------------------------------

#[test]
fn select_ppse_is_case_4_short() {
    let bytes = hex!("00 A4 04 00 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00");
    let command = Command::parse(&bytes).unwrap();
    assert_eq!(command, Command::new(0x00, 0xA4, 0x04, 0x00).data(PPSE_NAME).le(256));
    assert!(!command.is_extended());
    assert_eq!(command.encode().unwrap(), bytes);
}

#[test]
fn desfire_native_wrapped_select_application() {
    // SelectApplication (5A) with AID 03 02 01, wrapped in ISO 7816-4 with CLA 90 and Le 00.
    let bytes = hex!("90 5A 00 00 03 01 02 03 00");
    let command = Command::parse(&bytes).unwrap();
    assert_eq!(command, Command::new(0x90, 0x5A, 0x00, 0x00).data([0x01, 0x02, 0x03]).le(256));
    assert_eq!(command.encode().unwrap(), bytes);
}

#[test]
fn short_cases_1_2_3() {
    let case_1 = hex!("00 44 00 00");
    assert_eq!(Command::parse(&case_1).unwrap(), Command::new(0x00, 0x44, 0x00, 0x00));
    assert_eq!(Command::new(0x00, 0x44, 0x00, 0x00).encode().unwrap(), case_1);

    // READ RECORD 1 of SFI 1, Le 00 = 256.
    let case_2 = hex!("00 B2 01 0C 00");
    assert_eq!(Command::parse(&case_2).unwrap(), Command::new(0x00, 0xB2, 0x01, 0x0C).le(256));
    assert_eq!(Command::new(0x00, 0xB2, 0x01, 0x0C).le(256).encode().unwrap(), case_2);

    // VERIFY with a plaintext PIN block.
    let case_3 = hex!("00 20 00 80 08 24 12 34 FF FF FF FF FF");
    let command = Command::parse(&case_3).unwrap();
    assert_eq!(command.data, hex!("24 12 34 FF FF FF FF FF"));
    assert_eq!(command.le, None);
    assert_eq!(command.encode().unwrap(), case_3);
}

#[test]
fn extended_case_3() {
    let data: Vec<u8> = (0..300_u16).map(|i| i as u8).collect();
    let mut bytes = hex!("00 D6 00 00 00 01 2C").to_vec();
    bytes.extend_from_slice(&data);
    let command = Command::parse(&bytes).unwrap();
    assert_eq!(command, Command::new(0x00, 0xD6, 0x00, 0x00).data(data));
    assert!(command.is_extended());
    assert_eq!(command.encode().unwrap(), bytes);
}

#[test]
fn extended_case_4() {
    // Five data bytes fit a short Lc, but Ne 512 does not fit a short Le: both go extended.
    let bytes = hex!("00 B0 00 00 00 00 05 01 02 03 04 05 02 00");
    let command = Command::parse(&bytes).unwrap();
    assert_eq!(command, Command::new(0x00, 0xB0, 0x00, 0x00).data(hex!("01 02 03 04 05")).le(512));
    assert_eq!(command.encode().unwrap(), bytes);

    let le_max = hex!("00 B0 00 00 00 00 01 AA 00 00");
    assert_eq!(Command::parse(&le_max).unwrap().le, Some(65_536));
}

#[test]
fn extended_case_2() {
    let bytes = hex!("00 B0 00 00 00 00 00");
    let command = Command::parse(&bytes).unwrap();
    assert_eq!(command, Command::new(0x00, 0xB0, 0x00, 0x00).le(65_536));
    assert_eq!(command.encode().unwrap(), bytes);

    // Extended encoding of a length that fits short form: accepted, re-encoded short.
    let command = Command::parse(&hex!("00 B0 00 00 00 01 00")).unwrap();
    assert_eq!(command.le, Some(256));
    assert_eq!(command.encode().unwrap(), hex!("00 B0 00 00 00"));
}

#[test]
fn largest_command_fits_the_constant() {
    let command = Command::new(0x00, 0xD6, 0x00, 0x00).data(vec![0xAB; 65_535]).le(65_536);
    let bytes = command.encode().unwrap();
    assert_eq!(bytes.len(), APDU_COMMAND_BYTES_MAX);
    assert_eq!(Command::parse(&bytes).unwrap(), command);
}

#[test]
fn truncated_apdu() {
    assert_eq!(Command::parse(&hex!("00 A4 04")), Err(ApduError::TooShort { length: 3 }));
    assert_eq!(Command::parse(&[]), Err(ApduError::TooShort { length: 0 }));
}

#[test]
fn lc_mismatch() {
    assert_eq!(Command::parse(&hex!("00 A4 04 00 0E 32 50 41")), Err(ApduError::LcMismatch { lc: 14, available: 3 }));
    assert_eq!(
        Command::parse(&hex!("00 D6 00 00 00 01 2C 01 02")),
        Err(ApduError::LcMismatch { lc: 300, available: 2 })
    );
}

#[test]
fn extended_lc_zero() {
    assert_eq!(Command::parse(&hex!("00 D6 00 00 00 00 00 01 02")), Err(ApduError::ExtendedLcZero));
}

#[test]
fn short_lc_zero_and_half_extended_le() {
    // 00 then one byte: a short Lc of 0 is not allowed, and it is too short for extended.
    assert_eq!(Command::parse(&hex!("00 B0 00 00 00 05")), Err(ApduError::BadLength { body_bytes: 2 }));
    // Extended case 3 followed by one byte: an extended Le needs two.
    assert_eq!(Command::parse(&hex!("00 D6 00 00 00 00 01 AA 00")), Err(ApduError::BadLength { body_bytes: 5 }));
}

#[test]
fn trailing_bytes_after_command() {
    assert_eq!(Command::parse(&hex!("00 A4 00 0C 02 3F 00 00 FF")), Err(ApduError::TrailingBytes(1)));
    assert_eq!(Command::parse(&hex!("00 D6 00 00 00 00 01 AA 00 00 FF")), Err(ApduError::TrailingBytes(1)));
}

#[test]
fn command_too_long() {
    let bytes = vec![0x00; APDU_COMMAND_BYTES_MAX + 1];
    assert_eq!(Command::parse(&bytes), Err(ApduError::CommandTooLong { length: APDU_COMMAND_BYTES_MAX + 1 }));
}

#[test]
fn encode_refuses_what_cannot_be_sent() {
    let too_long = Command::new(0x00, 0xD6, 0x00, 0x00).data(vec![0; 65_536]);
    assert_eq!(too_long.encode(), Err(ApduError::DataTooLong { length: 65_536, max: 65_535 }));
    assert_eq!(Command::new(0x00, 0xB0, 0x00, 0x00).le(0).encode(), Err(ApduError::LeOutOfRange { le: 0 }));
    assert_eq!(Command::new(0x00, 0xB0, 0x00, 0x00).le(65_537).encode(), Err(ApduError::LeOutOfRange { le: 65_537 }));
}

// ---------------------------------------------------------------------------------------------
// Responses and status words
// ---------------------------------------------------------------------------------------------

#[test]
fn responses_with_iso_and_desfire_status() {
    let ok = Response::parse(&hex!("90 00")).unwrap();
    assert_eq!(ok, Response::new(Vec::new(), StatusWord::SUCCESS));
    assert!(ok.sw.is_success());

    let desfire_ok = Response::parse(&hex!("01 02 03 91 00")).unwrap();
    assert_eq!(desfire_ok.data, hex!("01 02 03"));
    assert_eq!(desfire_ok.sw, StatusWord::DESFIRE_OK);
    assert!(!desfire_ok.sw.is_success());
    assert_eq!(desfire_ok.sw.kind(), StatusKind::Desfire(0x00));

    let more = Response::parse(&hex!("04 00 00 00 00 91 AF")).unwrap();
    assert_eq!(more.sw, StatusWord::DESFIRE_ADDITIONAL_FRAME);
    assert_eq!(more.sw.kind(), StatusKind::Desfire(0xAF));
    assert_eq!((more.sw.sw1(), more.sw.sw2()), (0x91, 0xAF));
    assert_eq!(more.encode().unwrap(), hex!("04 00 00 00 00 91 AF"));
}

#[test]
fn response_length_limits() {
    assert_eq!(Response::parse(&[]), Err(ApduError::TooShort { length: 0 }));
    assert_eq!(Response::parse(&[0x90]), Err(ApduError::TooShort { length: 1 }));
    let largest = vec![0x90; 65_538];
    assert_eq!(Response::parse(&largest).unwrap().data.len(), 65_536);
    assert_eq!(Response::parse(&[0x90; 65_539]), Err(ApduError::ResponseTooLong { length: 65_539 }));
    let too_much = Response::new(vec![0; 65_537], StatusWord::SUCCESS);
    assert_eq!(too_much.encode(), Err(ApduError::DataTooLong { length: 65_537, max: 65_536 }));
}

#[test]
fn status_kinds() {
    let cases = [
        (0x9000, StatusKind::Success),
        (0x611C, StatusKind::MoreData { available: 0x1C }),
        (0x6100, StatusKind::MoreData { available: 256 }),
        (0x6C1C, StatusKind::WrongLe { exact: 0x1C }),
        (0x6C00, StatusKind::WrongLe { exact: 256 }),
        (0x6283, StatusKind::WarningUnchanged(0x83)),
        (0x63C2, StatusKind::WarningChanged(0xC2)),
        (0x6700, StatusKind::WrongLength),
        (0x6982, StatusKind::SecurityStatusNotSatisfied),
        (0x6A82, StatusKind::FileNotFound),
        (0x6A86, StatusKind::IncorrectP1P2),
        (0x6D00, StatusKind::InsNotSupported),
        (0x6E00, StatusKind::ClaNotSupported),
        (0x6F00, StatusKind::NoPreciseDiagnosis),
        (0x91AE, StatusKind::Desfire(0xAE)),
        (0x6985, StatusKind::Unknown(0x6985)),
        (0x6701, StatusKind::Unknown(0x6701)),
        (0x0000, StatusKind::Unknown(0x0000)),
    ];
    for (value, kind) in cases {
        assert_eq!(StatusWord(value).kind(), kind, "{value:04X}");
    }
    assert_eq!(StatusWord::FILE_NOT_FOUND.to_string(), "6A82");
}

// ---------------------------------------------------------------------------------------------
// Chaining and the exchange loop
// ---------------------------------------------------------------------------------------------

#[test]
fn chain_splits_and_marks_all_but_the_last() {
    let data: Vec<u8> = (0..300_u16).map(|i| i as u8).collect();
    let command = Command::new(0x00, 0xDA, 0x01, 0x6E).data(data.clone()).le(256);
    let chain = apdu::chain(&command, 255);
    assert_eq!(chain.len(), 2);
    assert_eq!((chain[0].cla, chain[0].data.len(), chain[0].le), (0x10, 255, None));
    assert_eq!((chain[1].cla, chain[1].data.len(), chain[1].le), (0x00, 45, Some(256)));
    let joined: Vec<u8> = chain.iter().flat_map(|c| c.data.iter().copied()).collect();
    assert_eq!(joined, data);

    assert_eq!(apdu::chain(&command, 300), vec![command.clone()]);
    assert_eq!(apdu::chain(&command, 0).len(), 300, "chunk 0 is clamped to 1");
    let empty = Command::new(0x00, 0xB0, 0x00, 0x00).le(1);
    assert_eq!(apdu::chain(&empty, 10), vec![empty]);
}

/// A scripted card: answers each command with the next reply and records what it was sent.
fn scripted(replies: Vec<Vec<u8>>) -> (Vec<Vec<u8>>, std::vec::IntoIter<Vec<u8>>) {
    (Vec::new(), replies.into_iter())
}

#[test]
fn get_response_sequence_accumulates_data() {
    let fci = hex!("6F 1A 84 0E 31 50 41 59 2E 53 59 53 2E 44 44 46 30 31 A5 08 88 01 02 5F 2D 02 65 6E");
    let (first, second) = fci.split_at(10);
    let mut replies = vec![hex!("61 1C").to_vec(), [first, &hex!("61 12")].concat(), [second, &hex!("90 00")].concat()];
    replies.reverse();
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut transmit = |apdu: &[u8]| -> Result<Vec<u8>, String> {
        sent.push(apdu.to_vec());
        replies.pop().ok_or_else(|| "no more replies".to_string())
    };
    let select = Command::new(0x00, 0xA4, 0x04, 0x00).data(b"1PAY.SYS.DDF01".as_slice()).le(256);
    let response = apdu::exchange(&mut transmit, &select).unwrap();
    assert_eq!(response, Response::new(fci.to_vec(), StatusWord::SUCCESS));
    assert_eq!(sent, vec![select.encode().unwrap(), hex!("00 C0 00 00 1C").to_vec(), hex!("00 C0 00 00 12").to_vec()]);
}

#[test]
fn get_response_61_00_asks_for_256() {
    let (mut sent, mut replies) = scripted(vec![hex!("61 00").to_vec(), [vec![0xAB; 256], vec![0x90, 0x00]].concat()]);
    let mut transmit = |apdu: &[u8]| -> Result<Vec<u8>, String> {
        sent.push(apdu.to_vec());
        Ok(replies.next().unwrap())
    };
    let response = apdu::exchange(&mut transmit, &Command::new(0x80, 0xCA, 0x9F, 0x7F).le(256)).unwrap();
    assert_eq!(response.data.len(), 256);
    assert_eq!(sent[1], hex!("80 C0 00 00 00"));
}

#[test]
fn wrong_le_resends_once_with_the_exact_length() {
    let record = hex!("70 0A 5A 08 47 61 73 90 01 01 00 10");
    let (mut sent, mut replies) = scripted(vec![hex!("6C 0C").to_vec(), [&record[..], &hex!("90 00")].concat()]);
    let mut transmit = |apdu: &[u8]| -> Result<Vec<u8>, String> {
        sent.push(apdu.to_vec());
        Ok(replies.next().unwrap())
    };
    let read_record = Command::new(0x00, 0xB2, 0x01, 0x0C).le(256);
    let response = apdu::exchange(&mut transmit, &read_record).unwrap();
    assert_eq!(response.data, record);
    assert_eq!(sent, vec![hex!("00 B2 01 0C 00").to_vec(), hex!("00 B2 01 0C 0C").to_vec()]);
}

#[test]
fn wrong_le_twice_is_the_cards_fault() {
    let mut transmit = |_: &[u8]| -> Result<Vec<u8>, String> { Ok(hex!("6C 0C").to_vec()) };
    let error = apdu::exchange(&mut transmit, &Command::new(0x00, 0xB2, 0x01, 0x0C).le(256)).unwrap_err();
    assert!(matches!(error, ExchangeError::CardMisbehaved(_)), "{error}");
}

#[test]
fn endless_61xx_is_bounded() {
    let mut count = 0_usize;
    let mut transmit = |_: &[u8]| -> Result<Vec<u8>, String> {
        count += 1;
        Ok(hex!("01 61 01").to_vec())
    };
    let error = apdu::exchange(&mut transmit, &Command::new(0x00, 0xB0, 0x00, 0x00).le(1)).unwrap_err();
    assert!(matches!(error, ExchangeError::CardMisbehaved(_)), "{error}");
    assert_eq!(count, 1 + GET_RESPONSE_ROUNDS_MAX);
}

#[test]
fn accumulated_data_is_bounded() {
    let mut transmit = |_: &[u8]| -> Result<Vec<u8>, String> { Ok([vec![0; 40_000], vec![0x61, 0x00]].concat()) };
    let error = apdu::exchange(&mut transmit, &Command::new(0x00, 0xB0, 0x00, 0x00).le(1)).unwrap_err();
    assert!(matches!(error, ExchangeError::CardMisbehaved(ref why) if why.contains("65536")), "{error}");
}

#[test]
fn malformed_response_transport_error_and_bad_command() {
    let mut one_byte = |_: &[u8]| -> Result<Vec<u8>, String> { Ok(vec![0x90]) };
    let error = apdu::exchange(&mut one_byte, &Command::new(0x00, 0xB0, 0x00, 0x00)).unwrap_err();
    assert!(matches!(error, ExchangeError::CardMisbehaved(_)), "{error}");

    let mut unplugged = |_: &[u8]| -> Result<Vec<u8>, String> { Err("reader unplugged".to_string()) };
    let error = apdu::exchange(&mut unplugged, &Command::new(0x00, 0xB0, 0x00, 0x00)).unwrap_err();
    assert!(matches!(error, ExchangeError::Transport(ref e) if e == "reader unplugged"));

    let mut never = |_: &[u8]| -> Result<Vec<u8>, String> { unreachable!("nothing is sent") };
    let error = apdu::exchange(&mut never, &Command::new(0x00, 0xB0, 0x00, 0x00).le(0)).unwrap_err();
    assert!(matches!(error, ExchangeError::InvalidCommand(ApduError::LeOutOfRange { le: 0 })));
}

#[test]
fn other_status_ends_the_exchange() {
    let mut transmit = |_: &[u8]| -> Result<Vec<u8>, String> { Ok(hex!("6A 82").to_vec()) };
    let response = apdu::exchange(&mut transmit, &Command::new(0x00, 0xA4, 0x04, 0x00).data([0xA0]).le(256)).unwrap();
    assert_eq!(response.sw.kind(), StatusKind::FileNotFound);
}

// ---------------------------------------------------------------------------------------------
// BER-TLV
// ---------------------------------------------------------------------------------------------

#[test]
fn emv_fci_template() {
    let bytes = hex!("6F 1A 84 0E 31 50 41 59 2E 53 59 53 2E 44 44 46 30 31 A5 08 88 01 02 5F 2D 02 65 6E");
    let tlvs = tlv::parse_all(&bytes).unwrap();
    let expected = vec![Tlv::constructed(
        Tag(0x6F),
        vec![
            Tlv::primitive(Tag(0x84), b"1PAY.SYS.DDF01".as_slice()),
            Tlv::constructed(
                Tag(0xA5),
                vec![Tlv::primitive(Tag(0x88), [0x02]), Tlv::primitive(Tag(0x5F2D), b"en".as_slice())],
            ),
        ],
    )];
    assert_eq!(tlvs, expected);
    assert_eq!(tlv::encode_all(&tlvs), bytes);
    assert_eq!(tlvs[0].encode(), bytes);
    assert_eq!(tlv::find(&tlvs, Tag(0x88)).unwrap().value_bytes(), Some(&[0x02][..]));
    assert_eq!(tlv::find(&tlvs, Tag(0x5F2D)).unwrap().value_bytes(), Some(&b"en"[..]));
    assert_eq!(tlvs[0].find(Tag(0x6F)).unwrap().children().len(), 2);
    assert!(tlv::find(&tlvs, Tag(0x9F38)).is_none());
}

#[test]
fn ppse_fci_with_directory_entries() {
    let bytes = hex!(
        "6F 2F 84 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 30 31 A5 1D BF 0C 1A"
        "61 0C 4F 07 A0 00 00 00 03 10 10 87 01 01"
        "61 0A 4F 05 A0 00 00 06 58 87 01 02"
    );
    let tlvs = tlv::parse_all(&bytes).unwrap();
    let aids: Vec<&[u8]> = tlv::find_all(&tlvs, Tag(0x4F)).iter().map(|t| t.value_bytes().unwrap()).collect();
    assert_eq!(aids, vec![&hex!("A0 00 00 00 03 10 10")[..], &hex!("A0 00 00 06 58")[..]]);
    let order: Vec<String> = tlv::depth_first(&tlvs).map(|t| t.tag.to_string()).collect();
    assert_eq!(order, ["6F", "84", "A5", "BF0C", "61", "4F", "87", "61", "4F", "87"]);
    assert_eq!(tlv::encode_all(&tlvs), bytes);
}

#[test]
fn padding_is_skipped_where_a_tag_would_start() {
    let tlvs = tlv::parse_all(&hex!("00 00 5A 02 12 34 FF 70 06 5F 24 01 25 00 00 FF")).unwrap();
    assert_eq!(
        tlvs,
        vec![
            Tlv::primitive(Tag(0x5A), [0x12, 0x34]),
            Tlv::constructed(Tag(0x70), vec![Tlv::primitive(Tag(0x5F24), [0x25])]),
        ]
    );
    assert_eq!(tlv::parse_all(&hex!("00 FF 00")).unwrap(), vec![]);
}

#[test]
fn long_form_lengths() {
    let value = vec![0x11; 0x80];
    let bytes = [&hex!("5A 81 80")[..], &value].concat();
    let tlvs = tlv::parse_all(&bytes).unwrap();
    assert_eq!(tlvs, vec![Tlv::primitive(Tag(0x5A), value)]);
    assert_eq!(tlv::encode_all(&tlvs), bytes);

    let value = vec![0x22; 300];
    let bytes = [&hex!("9F 4B 82 01 2C")[..], &value].concat();
    let tlvs = tlv::parse_all(&bytes).unwrap();
    assert_eq!(tlvs[0].value_bytes().unwrap().len(), 300);
    assert_eq!(tlv::encode_all(&tlvs), bytes);

    // Non-minimal lengths are accepted and re-encoded in the shortest form.
    let tlvs = tlv::parse_all(&hex!("5A 84 00 00 00 02 12 34")).unwrap();
    assert_eq!(tlv::encode_all(&tlvs), hex!("5A 02 12 34"));
}

#[test]
fn tags() {
    assert_eq!(Tag(0x9F38).to_string(), "9F38");
    assert_eq!(Tag(0x6F).to_string(), "6F");
    assert_eq!(format!("{:?}", Tag(0x5F2D)), "Tag(5F2D)");
    assert_eq!(Tag(0x9F38).bytes(), hex!("9F 38"));
    assert_eq!(Tag(0x6F).bytes(), hex!("6F"));
    assert!(Tag(0x6F).is_constructed());
    assert!(Tag(0xBF0C).is_constructed());
    assert!(!Tag(0x9F38).is_constructed());
    assert!(!Tag(0x5F2D).is_constructed());
    assert!(Tag(0x9F38).is_well_formed());
    assert!(Tag(0x9F818203).is_well_formed());
    assert!(!Tag(0x9F).is_well_formed());
    assert!(!Tag(0x5A01).is_well_formed());
    assert!(Tag(0x9F8101).is_well_formed());
    assert!(!Tag(0x00).is_well_formed());
    assert!(!Tag(0xFF01).is_well_formed());

    let four_bytes = tlv::parse_all(&hex!("9F 81 82 03 01 AA")).unwrap();
    assert_eq!(four_bytes, vec![Tlv::primitive(Tag(0x9F818203), [0xAA])]);
}

#[test]
fn tlv_length_past_the_end() {
    assert_eq!(
        tlv::parse_all(&hex!("5A 05 12 34")),
        Err(TlvError::LengthPastEnd { tag: Tag(0x5A), length: 5, available: 2 })
    );
    assert_eq!(
        tlv::parse_all(&hex!("5A 84 FF FF FF FF 12")),
        Err(TlvError::LengthPastEnd { tag: Tag(0x5A), length: 0xFFFF_FFFF, available: 1 })
    );
}

#[test]
fn tlv_child_longer_than_its_parent() {
    // The whole input has enough bytes for the child, but its parent holds only 4.
    assert_eq!(
        tlv::parse_all(&hex!("6F 04 84 05 01 02 03 04 05")),
        Err(TlvError::ChildPastParent { parent: Tag(0x6F), tag: Tag(0x84), length: 5, available: 2 })
    );
}

/// `levels` constructed `A5` templates nested in each other around one primitive `88 01 02`.
fn nested(levels: usize) -> Vec<u8> {
    let mut tlv = Tlv::primitive(Tag(0x88), [0x02]);
    for _ in 0..levels {
        tlv = Tlv::constructed(Tag(0xA5), vec![tlv]);
    }
    tlv.encode()
}

#[test]
fn tlv_depth_over_the_limit() {
    assert!(tlv::parse_all(&nested(TLV_DEPTH_MAX - 1)).is_ok());
    assert_eq!(tlv::parse_all(&nested(TLV_DEPTH_MAX)), Err(TlvError::TooDeep { tag: Tag(0x88) }));
    assert_eq!(tlv::parse_all(&nested(100)), Err(TlvError::TooDeep { tag: Tag(0xA5) }));
}

#[test]
fn tlv_too_many_nodes() {
    let ok = hex!("5A 00").repeat(TLV_NODES_MAX);
    assert_eq!(tlv::parse_all(&ok).unwrap().len(), TLV_NODES_MAX);
    let too_many = hex!("5A 00").repeat(TLV_NODES_MAX + 1);
    assert_eq!(tlv::parse_all(&too_many), Err(TlvError::TooManyNodes));
}

#[test]
fn tlv_five_byte_tag() {
    assert_eq!(tlv::parse_all(&hex!("9F 81 82 83 04 00")), Err(TlvError::TagTooLong { offset: 0 }));
    assert_eq!(tlv::parse_all(&hex!("5A 00 00 9F 81 82 83 04 00")), Err(TlvError::TagTooLong { offset: 3 }));
}

#[test]
fn tlv_indefinite_and_unsupported_lengths() {
    assert_eq!(tlv::parse_all(&hex!("6F 80 84 00 00 00")), Err(TlvError::IndefiniteLength { tag: Tag(0x6F) }));
    assert_eq!(
        tlv::parse_all(&hex!("5A 85 00 00 00 00 01 AA")),
        Err(TlvError::LengthFormUnsupported { tag: Tag(0x5A), first_byte: 0x85 })
    );
}

#[test]
fn tlv_truncated_tag_and_length() {
    assert_eq!(tlv::parse_all(&hex!("9F")), Err(TlvError::TruncatedTag { offset: 0 }));
    assert_eq!(tlv::parse_all(&hex!("5A")), Err(TlvError::TruncatedLength { tag: Tag(0x5A) }));
    assert_eq!(tlv::parse_all(&hex!("5A 82 01")), Err(TlvError::TruncatedLength { tag: Tag(0x5A) }));
}

// ---------------------------------------------------------------------------------------------
// Data object lists
// ---------------------------------------------------------------------------------------------

#[test]
fn pdol() {
    let dol = tlv::parse_dol(&hex!("9F 66 04 9F 02 06 9F 37 04 5F 2A 02")).unwrap();
    assert_eq!(dol, vec![(Tag(0x9F66), 4), (Tag(0x9F02), 6), (Tag(0x9F37), 4), (Tag(0x5F2A), 2)]);
    assert_eq!(tlv::parse_dol(&[]).unwrap(), vec![]);
}

#[test]
fn dol_errors() {
    let too_many = hex!("9F 37 04").repeat(tlv::DOL_ENTRIES_MAX + 1);
    assert_eq!(tlv::parse_dol(&too_many), Err(TlvError::DolTooManyEntries));
    assert_eq!(tlv::parse_dol(&hex!("9F 37 04").repeat(tlv::DOL_ENTRIES_MAX)).unwrap().len(), 64);
    assert_eq!(tlv::parse_dol(&hex!("9F 02 81 FF")).unwrap(), vec![(Tag(0x9F02), 255)]);
    assert_eq!(
        tlv::parse_dol(&hex!("9F 02 82 01 00")),
        Err(TlvError::DolLengthTooLong { tag: Tag(0x9F02), length: 256 })
    );
    assert_eq!(tlv::parse_dol(&hex!("9F 37 04 00")), Err(TlvError::DolPadding { offset: 3 }));
    assert_eq!(tlv::parse_dol(&hex!("9F 37")), Err(TlvError::TruncatedLength { tag: Tag(0x9F37) }));
}

#[test]
fn codec_errors_surface_through_apdu() {
    let error: ApduError = CodecError::TrailingBytes(2).into();
    assert_eq!(error.to_string(), "2 trailing bytes after the end of the value");
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn data_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..=255),
        4 => proptest::collection::vec(any::<u8>(), 256..=1024),
        1 => proptest::collection::vec(any::<u8>(), 65_000..=65_535),
    ]
}

fn le_strategy() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        Just(None),
        (1_usize..=256).prop_map(Some),
        (1_usize..=65_536).prop_map(Some),
        Just(Some(256)),
        Just(Some(257)),
        Just(Some(65_536)),
    ]
}

fn command_strategy() -> impl Strategy<Value = Command> {
    (any::<[u8; 4]>(), data_strategy(), le_strategy()).prop_map(|([cla, ins, p1, p2], data, le)| Command {
        cla,
        ins,
        p1,
        p2,
        data,
        le,
    })
}

/// A well-formed tag whose constructed bit is `constructed`, one to four bytes long.
fn tag_strategy(constructed: bool) -> impl Strategy<Value = Tag> {
    (0_u8..4, 1_usize..=4, 0_u8..0x1F, any::<[u8; 3]>())
        .prop_map(move |(class, byte_count, number, subsequent)| {
            let first = (class << 6) | if constructed { 0x20 } else { 0x00 };
            if byte_count == 1 {
                return Tag(u32::from(first | number));
            }
            let mut value = u32::from(first | 0x1F);
            for (index, byte) in subsequent.iter().take(byte_count - 1).enumerate() {
                let more = if index + 2 < byte_count { 0x80 } else { 0x00 };
                value = (value << 8) | u32::from((byte & 0x7F) | more);
            }
            Tag(value)
        })
        .prop_filter("padding bytes cannot start a tag", |tag| tag.is_well_formed())
}

fn leaf_strategy() -> impl Strategy<Value = Tlv> {
    (tag_strategy(false), proptest::collection::vec(any::<u8>(), 0..300))
        .prop_map(|(tag, value)| Tlv::primitive(tag, value))
}

/// Random trees: leaves are level 1 and each recursion adds at most one, so at most
/// TLV_DEPTH_MAX levels (the property checks it too). Few children per level, so the budget
/// of 128 objects goes to depth rather than breadth.
fn tree_strategy() -> impl Strategy<Value = Tlv> {
    leaf_strategy().prop_recursive(TLV_DEPTH_MAX as u32 - 1, 128, 2, |inner| {
        (tag_strategy(true), proptest::collection::vec(inner, 0..4))
            .prop_map(|(tag, children)| Tlv::constructed(tag, children))
    })
}

/// A chain exactly TLV_DEPTH_MAX levels deep, with a primitive sibling on every level:
/// random recursion rarely reaches the limit.
fn spine_strategy() -> impl Strategy<Value = Tlv> {
    (
        proptest::collection::vec(tag_strategy(true), TLV_DEPTH_MAX - 1),
        leaf_strategy(),
        proptest::collection::vec(leaf_strategy(), TLV_DEPTH_MAX - 1),
    )
        .prop_map(|(tags, innermost, siblings)| {
            let mut tlv = innermost;
            for (tag, sibling) in tags.into_iter().zip(siblings) {
                tlv = Tlv::constructed(tag, vec![sibling, tlv]);
            }
            tlv
        })
}

fn depth(tlvs: &[Tlv]) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Tlv, usize)> = tlvs.iter().map(|t| (t, 1)).collect();
    while let Some((tlv, level)) = stack.pop() {
        deepest = deepest.max(level);
        if let Value::Constructed(children) = &tlv.value {
            stack.extend(children.iter().map(|c| (c, level + 1)));
        }
    }
    deepest
}

proptest! {
    #[test]
    fn command_encode_parse_is_identity(command in command_strategy()) {
        let bytes = command.encode().unwrap();
        prop_assert!(bytes.len() <= APDU_COMMAND_BYTES_MAX);
        let short_fits = command.data.len() <= 255 && command.le.is_none_or(|le| le <= 256);
        prop_assert_eq!(command.is_extended(), !short_fits);
        prop_assert_eq!(Command::parse(&bytes).unwrap(), command);
    }

    #[test]
    fn response_encode_parse_is_identity(
        data in prop_oneof![
            8 => proptest::collection::vec(any::<u8>(), 0..=600),
            1 => proptest::collection::vec(any::<u8>(), 65_536..=65_536),
        ],
        sw in any::<u16>(),
    ) {
        let response = Response::new(data, StatusWord(sw));
        let bytes = response.encode().unwrap();
        prop_assert_eq!(Response::parse(&bytes).unwrap(), response);
    }

    #[test]
    fn tlv_encode_parse_is_identity(
        tlvs in proptest::collection::vec(prop_oneof![4 => tree_strategy(), 1 => spine_strategy()], 0..5),
    ) {
        prop_assert!(depth(&tlvs) <= TLV_DEPTH_MAX);
        let bytes = tlv::encode_all(&tlvs);
        prop_assert_eq!(tlv::parse_all(&bytes).unwrap(), tlvs);
    }

    #[test]
    fn tlv_at_the_depth_limit_round_trips(spine in spine_strategy()) {
        prop_assert_eq!(depth(std::slice::from_ref(&spine)), TLV_DEPTH_MAX);
        let bytes = spine.encode();
        prop_assert_eq!(tlv::parse_all(&bytes).unwrap(), vec![spine.clone()]);
        // One more level is refused.
        let deeper = Tlv::constructed(Tag(0x70), vec![spine]).encode();
        let refused = matches!(tlv::parse_all(&deeper), Err(TlvError::TooDeep { .. }));
        prop_assert!(refused);
    }

    #[test]
    fn dol_encode_parse_is_identity(
        entries in proptest::collection::vec((tag_strategy(false), 0_usize..=255), 0..=64),
    ) {
        let mut bytes = Vec::new();
        for (tag, length) in &entries {
            bytes.extend_from_slice(&tag.bytes());
            // One length byte below 80, else the BER long form 81 xx.
            if *length >= 0x80 {
                bytes.push(0x81);
            }
            bytes.push(*length as u8);
        }
        prop_assert_eq!(tlv::parse_dol(&bytes).unwrap(), entries);
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(command) = Command::parse(&bytes) {
            prop_assert_eq!(Command::parse(&command.encode().unwrap()).unwrap(), command);
        }
        if let Ok(response) = Response::parse(&bytes) {
            prop_assert_eq!(response.encode().unwrap(), bytes.clone());
        }
        if let Ok(tlvs) = tlv::parse_all(&bytes) {
            prop_assert_eq!(tlv::parse_all(&tlv::encode_all(&tlvs)).unwrap(), tlvs);
        }
        let _ = tlv::parse_dol(&bytes);
    }

    /// Random bytes rarely get past the first length check; damaged valid encodings do.
    #[test]
    fn parsers_never_panic_on_damaged_encodings(
        tlvs in proptest::collection::vec(tree_strategy(), 1..4),
        command in command_strategy(),
        damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        for mut bytes in [tlv::encode_all(&tlvs), command.encode().unwrap()] {
            for (index, byte) in &damage {
                let at = index.index(bytes.len());
                bytes[at] = *byte;
            }
            let shortened = &bytes[..cut.index(bytes.len() + 1)];
            for input in [&bytes[..], shortened] {
                if let Ok(tlvs) = tlv::parse_all(input) {
                    prop_assert_eq!(tlv::parse_all(&tlv::encode_all(&tlvs)).unwrap(), tlvs);
                }
                if let Ok(command) = Command::parse(input) {
                    prop_assert_eq!(Command::parse(&command.encode().unwrap()).unwrap(), command);
                }
                let _ = Response::parse(input);
                let _ = tlv::parse_dol(input);
            }
        }
    }
}
