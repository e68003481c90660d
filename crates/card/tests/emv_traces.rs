//! The EMV read flow against published card exchanges, replayed by a scripted transport that
//! checks every command we send (by prefix, in order) and answers with the recorded bytes.
//! Each vector cites where its bytes come from; a vector marked "derived" changes named bytes
//! of a published one to make a fault. Then nonsense at every step, and property tests: the
//! flow never panics on arbitrary answers and only ever returns a Luhn-valid PAN.

// Test helpers outside #[test] functions unwrap too: a failure there is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use smartticket_card::apdu::StatusWord;
use smartticket_card::emv::{self, EmvCard, EmvError, Step, TerminalData};
use smartticket_card::tlv::Tag;
use smartticket_card::transport::{Transport, TransportError};
use smartticket_crypto::token::{Expiry, luhn_valid};

// ---------------------------------------------------------------------------------------------
// Scripted card
// ---------------------------------------------------------------------------------------------

/// Answers each command with the next scripted response, after checking that the command
/// starts with the scripted prefix. Panics (fails the test) on any other command.
struct Scripted {
    steps: Vec<(Vec<u8>, Vec<u8>)>,
    next: usize,
}

impl Scripted {
    fn new(steps: &[(&str, &str)]) -> Scripted {
        let decode = |text: &str| hex::decode(text.split_whitespace().collect::<String>()).unwrap();
        Scripted {
            steps: steps.iter().map(|(command, response)| (decode(command), decode(response))).collect(),
            next: 0,
        }
    }

    fn assert_finished(&self) {
        assert_eq!(self.next, self.steps.len(), "the flow stopped before the end of the script");
    }
}

impl Transport for Scripted {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let Some((prefix, response)) = self.steps.get(self.next) else {
            panic!("unexpected command {} after the end of the script", hex::encode_upper(command));
        };
        assert!(
            command.starts_with(prefix),
            "step {}: sent {}, the script expects {}",
            self.next,
            hex::encode_upper(command),
            hex::encode_upper(prefix)
        );
        self.next += 1;
        Ok(response.clone())
    }

    fn describe(&self) -> String {
        "scripted card".into()
    }
}

fn read_card(script: &mut Scripted, terminal: &TerminalData) -> Result<EmvCard, EmvError> {
    emv::read_card(script, terminal)
}

fn transit_terminal() -> TerminalData {
    TerminalData::transit(276, 978, 260115, [0x12, 0x34, 0x56, 0x78])
}

const SELECT_PPSE: &str = "00A404000E325041592E5359532E444446303100";
const GPO_EMPTY_PDOL: &str = "80A8000002830000";

// ---------------------------------------------------------------------------------------------
// Vector 1: Visa Debit with a PDOL, GPO format 2 with track 2 inside, AFL SFI 2 records 1-3.
// Source: MichaelsPlayground/TalkToYourCreditCardPart7, `docs/talk DKB m visa credit.html`
// (commit 6f258af), first card of the log (expired 07/2025, published by the card's owner).
// ---------------------------------------------------------------------------------------------

const VISA_PPSE: &str = "6f3a840e325041592e5359532e4444463031a528bf0c2561234f07a0000000031010500a566973612044656269748701019f0a0800010501000000009000";
const VISA_SELECT: &str = "00a4040007a000000003101000";
const VISA_FCI: &str = "6f6f8407a0000000031010a564500a566973612044656269749f120f636f6d6469726563742044656269749f1101018701015f2d046465656e9f38189f66049f02069f03069f1a0295055f2a029a039c019f3704bf0c1a9f0a0800010501000000009f5a053109780276bf6304df2001809000";
/// The trace's GPO: TTQ 27000000, amount 10.00, other 0, country 0978, TVR 0, currency 0978,
/// date 230301, type 00, unpredictable number 38393031.
const VISA_GPO: &str = "80a8000023832127000000000000001000000000000000097800000000000978230301003839303100";
const VISA_GPO_RESPONSE: &str = "7781c68202202094041001030057134871780082770574d25072211328662101000f9f100706011203a000009f2608ec1c5779ff2670379f2701809f360200c39f6c0204009f4b81809016903df9bad2d289d580a82ea1cf58d51d7ba234a7df6df83e4d115d93f31e8f98d95abdd8aac65c5b2fbcabaef5f7480fdf274eff4ffdab9e30e775660d4ffbf52629f2c63fdb93eb11cebaca3ac030e883bd864e3d19b8929119fe7d613529c106d0ae7270c4b645cc1f45e21c49c37f15f1686d949f367b11a6e731a97a9000";
const VISA_RECORD_2_1: &str = "7081fb9081f85ab54faf4ad810b3cca4ed42c38e1e768fca3187ed1be4196c6779c4633cbe88751889c12b05e10ee87cb198518793ff61e87534f66850e96239b76648429eced4cc207608d0d2a932dd9e8c4bb0d139c4eca59e1ef5f4708f72d80dc5b66c45f4566c91b55384dfdeabb55faa622c6764cc9fb4c4900b6ab2cec5abad9057e2cf63a881bb4ec2a5d96634d7c11366eb908a168d33aa3c544822fc83e74c104b9275b2ef1cf41375b404a260bbf8fb3d4452af3d0630bb1ec2a01676ba588ae7820727622a6d9df5c93a3ce807d54b79ae007c3d401f8787dc3e235e8b9ae6b1b9279328cb1ca94105434010f15eb07f487f4d5c94f4a5a79000";
const VISA_RECORD_2_2: &str = "70078f01099f3201039000";
const VISA_RECORD_2_3: &str = "7081eb9f4681b02c4b62dfaede136b9bafeddebaaf41e5f4fdc9920b077817de896e6503c69c8f80ece2559cdf721ce1b7b2bc159fe77ec8d6eb45296876fbf4a6bd4bb4a11511ebd80fdf1c7bb8e1f4a2cdb7c4db0cc6f9fda7f6696c30d3846e1b98f4c849b7385f349d280fd92d75774dcbed96a5328f657f7eceb4bfa3ec3f9f39a64414bdbf0f03b15c49cbf0475bfa6a5f2513689c195faea031ae2391998be2028aa1671b380eb19a69a6c454bd2a30d11bc63c9f4701035a0848717800827705745f24032507315f3401015f280202769f070200809f4a01829f6e04207000009f690701859209cf04009000";

/// The terminal values the trace's reader sent, so our GPO is byte for byte the same.
fn visa_trace_terminal() -> TerminalData {
    TerminalData {
        terminal_transaction_qualifiers: [0x27, 0x00, 0x00, 0x00],
        amount_authorised_minor: 1000,
        terminal_country_code: 978,
        transaction_date_yymmdd: 230301,
        unpredictable_number: [0x38, 0x39, 0x30, 0x31],
        ..TerminalData::transit(0, 978, 0, [0; 4])
    }
}

fn visa_script_after_gpo() -> Vec<(&'static str, &'static str)> {
    vec![("00b2011400", VISA_RECORD_2_1), ("00b2021400", VISA_RECORD_2_2), ("00b2031400", VISA_RECORD_2_3)]
}

#[test]
fn visa_debit_with_pdol_and_format_2() {
    let mut steps = vec![(SELECT_PPSE, VISA_PPSE), (VISA_SELECT, VISA_FCI), (VISA_GPO, VISA_GPO_RESPONSE)];
    steps.extend(visa_script_after_gpo());
    let mut card = Scripted::new(&steps);
    let read = read_card(&mut card, &visa_trace_terminal()).unwrap();
    card.assert_finished();
    assert_eq!(read.pan().digits(), "4871780082770574");
    assert_eq!(read.masked_pan(), "4871 **** **** 0574");
    assert_eq!(read.expiry(), Expiry::new(25, 7).unwrap());
    assert_eq!(read.pan_sequence_number(), Some(1));
    assert_eq!(read.aid(), hex::decode("A0000000031010").unwrap());
    assert_eq!(read.label(), Some("Visa Debit"));
    assert_eq!(read.preferred_name(), Some("comdirect Debit"));
    assert_eq!(read.application_interchange_profile(), [0x20, 0x20]);
    assert_eq!(read.token_input().as_slice(), b"4871780082770574=2507");
    // Debug never shows the whole PAN.
    let debug = format!("{read:?}");
    assert!(!debug.contains("4871780082770574"), "{debug}");
}

/// Derived from vector 1: the card refuses our PDOL answer with `69 85` (the status a card
/// gives a PDOL answer it does not accept, as in openemv/emv-utils
/// `tests/emv_initiate_application_processing_test.c`, test 3) and then accepts an empty PDOL
/// with the recorded answer.
#[test]
fn visa_refusing_the_pdol_answer_is_retried_with_an_empty_pdol() {
    let mut steps = vec![
        (SELECT_PPSE, VISA_PPSE),
        (VISA_SELECT, VISA_FCI),
        (VISA_GPO, "6985"),
        (GPO_EMPTY_PDOL, VISA_GPO_RESPONSE),
    ];
    steps.extend(visa_script_after_gpo());
    let mut card = Scripted::new(&steps);
    let read = read_card(&mut card, &visa_trace_terminal()).unwrap();
    card.assert_finished();
    assert_eq!(read.pan().digits(), "4871780082770574");
}

/// Derived from vector 1: the card refuses the PDOL answer and the empty PDOL.
#[test]
fn visa_refusing_both_gpo_attempts_is_a_clear_error() {
    let steps = [(SELECT_PPSE, VISA_PPSE), (VISA_SELECT, VISA_FCI), (VISA_GPO, "6985"), (GPO_EMPTY_PDOL, "6984")];
    let mut card = Scripted::new(&steps);
    let error = read_card(&mut card, &visa_trace_terminal()).unwrap_err();
    card.assert_finished();
    assert_eq!(error, EmvError::GpoRefused { with_pdol: StatusWord(0x6985), with_empty_pdol: StatusWord(0x6984) });
    assert_eq!(error.step(), Some(Step::GetProcessingOptions));
}

/// `6A 81` to GET PROCESSING OPTIONS (openemv/emv-utils
/// `tests/emv_initiate_application_processing_test.c`, test 6) is not a PDOL complaint:
/// no retry.
#[test]
fn gpo_function_not_supported_is_not_retried() {
    let steps = [(SELECT_PPSE, VISA_PPSE), (VISA_SELECT, VISA_FCI), (VISA_GPO, "6A81")];
    let mut card = Scripted::new(&steps);
    let error = read_card(&mut card, &visa_trace_terminal()).unwrap_err();
    card.assert_finished();
    assert_eq!(error, EmvError::Refused { step: Step::GetProcessingOptions, sw: StatusWord(0x6A81) });
}

// ---------------------------------------------------------------------------------------------
// Vector 2: Debit Mastercard without a PDOL, GPO format 2, AFL of three entries (SFI 1, 2, 4).
// Source: MichaelsPlayground/TalkToYourCreditCardPart7, `docs/talk aab m mc debit.html`
// (commit 6f258af); the card expired 03/2024 and was blocked before publication.
// ---------------------------------------------------------------------------------------------

const MC_PPSE: &str = "6f3c840e325041592e5359532e4444463031a52abf0c2761254f07a000000004101050104465626974204d6173746572436172648701019f0a04000101019000";
const MC_SELECT: &str = "00a4040007a000000004101000";
const MC_FCI: &str = "6f528407a0000000041010a54750104465626974204d6173746572436172649f12104465626974204d6173746572436172648701019f1101015f2d046465656ebf0c119f0a04000101019f6e07028000003030009000";
const MC_GPO_RESPONSE: &str = "771282021980940c0801010010010101200102009000";
const MC_RECORD_1_1: &str = "70759f6c0200019f6206000000000f009f63060000000000fe563442353337353035303030303136303131305e202f5e323430333232313237393433323930303030303030303030303030303030309f6401029f65020f009f660200fe9f6b135375050000160110d24032210000000000000f9f6701029000";
const MC_RECORD_2_1: &str = "7081a69f420209785f25032203015f24032403315a0853750500001601105f3401009f0702ffc09f080200028c279f02069f03069f1a0295055f2a029a039c019f37049f35019f45029f4c089f34039f21039f7c148d0c910a8a0295059f37049f4c088e0e000000000000000042031e031f039f0d05b4508400009f0e0500000000009f0f05b4708480005f280202809f4a018257135375050000160110d24032212794329000000f9000";
const MC_RECORD_4_1: &str = "7081b89f4701039f4681b03cada902afb40289fbdfea01950c498191442c1b48234dcaff66bca63cbf821a3121fa808e4275a4e894b154c1874bddb00f16276e92c73c04468253b373f1e6a9a89e2705b4670682d0adff05617a21d7684031a1cdb438e66cd98d591dc376398c8aab4f137a2226122990d9b2b4c72ded6495d637338fefa893ae7fb4eb845f8ec2e260d2385a780f9fda64b3639a9547adad806f78c9bc9f17f9d4c5b26474b9ba03892a754ffdf24df04c702f869000";
const MC_RECORD_4_2: &str = "7081e08f01059f3201039224abfd2ebc115c3796e382be7e9863b92c266ccabc8bd014923024c80563234e8a11710a019081b004cc60769cabe557a9f2d83c7c73f8b177dbf69288e332f151fba10027301bb9a18203ba421bda9c2cc8186b975885523bf6707f287a5e88f0f6cd79a076319c1404fcdd1f4fa011f7219e1bf74e07b25e781d6af017a9404df9fd805b05b76874663ea88515018b2cb6140dc001a998016d28c4af8e49dfcc7d9cee314e72ae0d993b52cae91a5b5c76b0b33e7ac14a7294b59213ca0c50463cfb8b040bb8ac953631b80fa85a698b00228b5ff442239000";

fn mastercard_script(record_2_1: &str) -> Scripted {
    Scripted::new(&[
        (SELECT_PPSE, MC_PPSE),
        (MC_SELECT, MC_FCI),
        (GPO_EMPTY_PDOL, MC_GPO_RESPONSE),
        ("00b2010c00", MC_RECORD_1_1),
        ("00b2011400", record_2_1),
        ("00b2012400", MC_RECORD_4_1),
        ("00b2022400", MC_RECORD_4_2),
    ])
}

#[test]
fn debit_mastercard_without_pdol() {
    let mut card = mastercard_script(MC_RECORD_2_1);
    let read = read_card(&mut card, &transit_terminal()).unwrap();
    card.assert_finished();
    assert_eq!(read.pan().digits(), "5375050000160110");
    assert_eq!(read.expiry(), Expiry::new(24, 3).unwrap());
    assert_eq!(read.pan_sequence_number(), Some(0));
    assert_eq!(read.label(), Some("Debit MasterCard"));
    assert_eq!(read.preferred_name(), Some("Debit MasterCard"));
    assert_eq!(read.application_interchange_profile(), [0x19, 0x80]);
}

/// A card without a PDOL that refuses GET PROCESSING OPTIONS (`69 85`, status from
/// openemv/emv-utils `tests/emv_initiate_application_processing_test.c`, test 3): the empty
/// PDOL was the only attempt, so there is no retry.
#[test]
fn mastercard_refusing_gpo_is_not_retried_with_the_same_empty_pdol() {
    let mut card = Scripted::new(&[(SELECT_PPSE, MC_PPSE), (MC_SELECT, MC_FCI), (GPO_EMPTY_PDOL, "6985")]);
    let error = read_card(&mut card, &transit_terminal()).unwrap_err();
    card.assert_finished();
    assert_eq!(error, EmvError::Refused { step: Step::GetProcessingOptions, sw: StatusWord(0x6985) });
}

/// Derived from vector 2: the last PAN digit (`0` → `1`) changed in both 5A and 57 of SFI 2
/// record 1, which breaks the check digit.
#[test]
fn luhn_failure() {
    let record = MC_RECORD_2_1
        .replace("5a085375050000160110", "5a085375050000160111")
        .replace("57135375050000160110", "57135375050000160111");
    let mut card = mastercard_script(&record);
    assert_eq!(read_card(&mut card, &transit_terminal()).unwrap_err(), EmvError::LuhnFailed);
}

/// Derived from vector 2: track 2 in SFI 2 record 1 carries another (Luhn-valid) PAN than 5A.
#[test]
fn pan_in_5a_and_track_2_must_agree() {
    let record = MC_RECORD_2_1.replace("57135375050000160110", "57134111111111111111");
    let mut card = mastercard_script(&record);
    assert_eq!(read_card(&mut card, &transit_terminal()).unwrap_err(), EmvError::PanMismatch);
}

/// Derived from vector 2: expiry 5F24 month 13.
#[test]
fn expiry_month_out_of_range() {
    let record = MC_RECORD_2_1.replace("5f2403240331", "5f2403241331");
    let mut card = mastercard_script(&record);
    let error = read_card(&mut card, &transit_terminal()).unwrap_err();
    assert!(matches!(error, EmvError::ExpiryOutOfRange { .. }), "{error}");
}

/// Derived from vector 2: the AFL names SFI 1 with the low bits of its byte set (`09`), the
/// malformed AFL of openemv/emv-utils `tests/emv_read_application_data_test.c`, test 2.
#[test]
fn malformed_afl() {
    let mut card = Scripted::new(&[
        (SELECT_PPSE, MC_PPSE),
        (MC_SELECT, MC_FCI),
        (GPO_EMPTY_PDOL, "771282021980940c0902020010010400180102019000"),
    ]);
    let error = read_card(&mut card, &transit_terminal()).unwrap_err();
    card.assert_finished();
    assert!(matches!(error, EmvError::BadAfl { .. }), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Vector 3: no PPSE; direct selection finds V PAY; GPO format 1; the Visa test card
// 4761 7390 0101 0119 "EXPIRED/CARD".
// Sources, all openemv/emv-utils:
// - `tests/emv_ep_build_candidate_list_test.c`, `test_ppse_not_found`: PPSE answers 6A82;
// - `tests/emv_build_candidate_list_test.c`, `test_aid_multi_exact_match_app_supported`:
//   A0000000031010 not found, A0000000032010 (V PAY) FCI;
// - `tests/emv_initiate_application_processing_test.c`, test 1: GPO format 1, AIP 7800;
// - `tests/emv_read_application_data_test.c`, test 9: its AFL (SFI 1 record 2, SFI 2
//   records 1-2) and those three records.
// Assembled: the AIP of one test with the AFL and records of another.
// ---------------------------------------------------------------------------------------------

#[test]
fn no_ppse_direct_selection_and_format_1() {
    let mut card = Scripted::new(&[
        (SELECT_PPSE, "6A82"),
        ("00A4040007A000000003101000", "6A82"),
        (
            "00A4040007A000000003201000",
            "6F2F8407A0000000032010A52450055620504159870102 5F2D046E6C656EBF0C109F4D020B059F0A080001050100000000 9000",
        ),
        (GPO_EMPTY_PDOL, "800A 7800 0802020010010201 9000"),
        (
            "00B2020C00",
            "703357114761739001010119D22122011758928889 5F200C455850495245442F434152449F1F0E3137353839303936303030303030 9000",
        ),
        ("00B2011400", "70145A0847617390010101195F3401015F24032212319000"),
        ("00B2021400", "70138F01949200 9F3201039F4701039F49039F3704 9000"),
    ]);
    let read = read_card(&mut card, &transit_terminal()).unwrap();
    card.assert_finished();
    assert_eq!(read.pan().digits(), "4761739001010119");
    assert_eq!(read.expiry(), Expiry::new(22, 12).unwrap());
    assert_eq!(read.pan_sequence_number(), Some(1));
    assert_eq!(read.aid(), hex::decode("A0000000032010").unwrap());
    assert_eq!(read.label(), Some("V PAY"));
    assert_eq!(read.application_interchange_profile(), [0x78, 0x00]);
}

/// openemv/emv-utils `tests/emv_read_application_data_test.c`, test 3: READ RECORD answered
/// `69 85` ends the read, naming the record.
#[test]
fn read_record_refused() {
    let mut card = Scripted::new(&[
        (SELECT_PPSE, MC_PPSE),
        (MC_SELECT, MC_FCI),
        (GPO_EMPTY_PDOL, "800E7800080202001001040018010201 9000"),
        ("00B2020C00", "6985"),
    ]);
    let error = read_card(&mut card, &transit_terminal()).unwrap_err();
    card.assert_finished();
    assert_eq!(error, EmvError::Refused { step: Step::ReadRecord { sfi: 1, record: 2 }, sw: StatusWord(0x6985) });
}

/// openemv/emv-utils `tests/emv_read_application_data_test.c`, tests 4 and 6: a record that
/// is not a `70` template (`71 00`), and one whose last object (9F1F, length 0F) runs past
/// its template.
#[test]
fn malformed_records() {
    for record in [
        "71009000",
        "703357114761739001010119D22122011758928889 5F200C455850495245442F434152449F1F0F3137353839303936303030303030 9000",
    ] {
        let mut card = Scripted::new(&[
            (SELECT_PPSE, MC_PPSE),
            (MC_SELECT, MC_FCI),
            (GPO_EMPTY_PDOL, "800E7800080202001001040018010201 9000"),
            ("00B2020C00", record),
        ]);
        let error = read_card(&mut card, &transit_terminal()).unwrap_err();
        assert!(
            matches!(error, EmvError::CardMisbehaved { step: Step::ReadRecord { sfi: 1, record: 2 }, .. }),
            "{error}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Vector 4: PPSE directories (openemv/emv-utils `tests/emv_ep_build_candidate_list_test.c`).
// ---------------------------------------------------------------------------------------------

/// `test_ppse_priority_sorting`: entries with priority F, 0, none and 1, in that card order.
/// Expected order: 1 (A0000000031010), F (A0000000032010), then 0 and none, which both mean
/// "no priority", in card order (A0000000032020, A0000000041010). Every SELECT answers 6A82.
#[test]
fn ppse_priority_order() {
    let ppse = "6F66840E325041592E5359532E4444463031A554BF0C51\
                61134F07A0000000032010500541505020328701 0F\
                61134F07A0000000032020500541505020338701 00\
                61104F07A0000000041010500541505020 34\
                61134F07A0000000031010500541505020318701 01\
                9000";
    let mut card = Scripted::new(&[
        (SELECT_PPSE, ppse),
        ("00A4040007A000000003101000", "6A82"),
        ("00A4040007A000000003201000", "6A82"),
        ("00A4040007A000000003202000", "6A82"),
        ("00A4040007A000000004101000", "6A82"),
    ]);
    let error = read_card(&mut card, &transit_terminal()).unwrap_err();
    card.assert_finished();
    assert!(matches!(error, EmvError::NoApplication { .. }), "{error}");
}

/// `test_ppse_invalid_dir_entry`: an entry with a 3-byte AID is skipped; the Visa entry after
/// it is tried.
#[test]
fn ppse_entry_with_invalid_aid_is_skipped() {
    let ppse = "6F31840E325041592E5359532E4444463031A51FBF0C1C61054F03A00000\
                61134F07A0000000031010500541505020318701019000";
    let mut card = Scripted::new(&[(SELECT_PPSE, ppse), ("00A4040007A000000003101000", "6A82")]);
    let error = read_card(&mut card, &transit_terminal()).unwrap_err();
    card.assert_finished();
    assert!(matches!(error, EmvError::NoApplication { .. }), "{error}");
}

/// `test_ppse_no_dir_entries` (`BF0C 00`): a PPSE listing nothing is treated as no PPSE, so
/// every known AID is tried by direct selection.
#[test]
fn empty_ppse_directory_falls_back_to_known_aids() {
    let mut steps = vec![(SELECT_PPSE.to_owned(), "6F15840E325041592E5359532E4444463031A503BF0C009000".to_owned())];
    for known in emv::KNOWN_AIDS {
        let command = format!("00A40400{:02X}{}00", known.aid.len(), hex::encode_upper(known.aid));
        steps.push((command, "6A82".to_owned()));
    }
    let steps: Vec<(&str, &str)> =
        steps.iter().map(|(command, response)| (command.as_str(), response.as_str())).collect();
    let mut card = Scripted::new(&steps);
    let error = read_card(&mut card, &transit_terminal()).unwrap_err();
    card.assert_finished();
    assert!(matches!(error, EmvError::NoApplication { .. }), "{error}");
}

/// `test_ppse_card_blocked`: `6A 81` to SELECT PPSE is a blocked card, not a missing PPSE.
#[test]
fn blocked_card() {
    let mut card = Scripted::new(&[(SELECT_PPSE, "6A81")]);
    let error = read_card(&mut card, &transit_terminal()).unwrap_err();
    assert_eq!(error, EmvError::Refused { step: Step::SelectPpse, sw: StatusWord(0x6A81) });
}

/// `test_ppse_ttl_failure`: a one-byte answer is not a response APDU.
#[test]
fn one_byte_answer() {
    let mut card = Scripted::new(&[(SELECT_PPSE, "00")]);
    let error = read_card(&mut card, &transit_terminal()).unwrap_err();
    assert!(matches!(error, EmvError::CardMisbehaved { step: Step::SelectPpse, .. }), "{error}");
}

// ---------------------------------------------------------------------------------------------
// PDOL answers (EMV 4.4 Book 3 §5.4)
// ---------------------------------------------------------------------------------------------

/// Stack Overflow question 48553155 ("emv PDOL demands 2 bytes of Terminal capabilities"):
/// PDOL `9F33 02 9F35 01 9F40 01`, terminal capabilities A0A0C0, 9F35 = 16 and 9F40 =
/// 700080B001. Rule c cuts binary values on the right, giving the data of the GPO quoted
/// there, `80 A8 00 00 06 83 04 A0 A0 16 70 00`.
#[test]
fn pdol_answer_cuts_binary_values_on_the_right() {
    let terminal = TerminalData {
        terminal_capabilities: [0xA0, 0xA0, 0xC0],
        terminal_type: 0x16,
        additional_terminal_capabilities: [0x70, 0x00, 0x80, 0xB0, 0x01],
        ..transit_terminal()
    };
    let answer = terminal.pdol_answer(&hex::decode("9F33029F35019F4001").unwrap()).unwrap();
    assert_eq!(answer, [0xA0, 0xA0, 0x16, 0x70]);
}

/// openemv/emv-utils `tests/emv_initiate_application_processing_test.c`, test 4: the FCI
/// with PDOL `9F33 03`, our GPO with terminal capabilities 60F0C8 (`83 03 60 F0 C8`) and the
/// format 1 answer. The PPSE in front is the one of the PayPass example on
/// nicolas.riousset.com ("Example of a MasterCard PayPass ContactLess transaction") with its
/// AID replaced by the test's A0000000031003; the final `6A 83` is ours, to end the script.
#[test]
fn pdol_answer_of_emv_utils_test_4() {
    let terminal = TerminalData { terminal_capabilities: [0x60, 0xF0, 0xC8], ..transit_terminal() };
    let ppse = "6F23840E325041592E5359532E4444463031A511BF0C0E610C4F07A00000000310038701019000";
    let mut card = Scripted::new(&[
        (SELECT_PPSE, ppse),
        ("00A4040007A000000003100300", "6F188407A0000000031003A50D50054465626974 9F38039F3303 9000"),
        ("80A80000058303 60F0C8 00", "800E7800080202001001040018010201 9000"),
        ("00B2020C00", "6A83"),
    ]);
    let error = read_card(&mut card, &terminal).unwrap_err();
    card.assert_finished();
    assert_eq!(error, EmvError::Refused { step: Step::ReadRecord { sfi: 1, record: 2 }, sw: StatusWord(0x6A83) });
}

#[test]
fn pdol_answer_fills_unknown_and_constructed_tags_with_zeros_and_fits_numbers() {
    // 9F02 asked in 4 bytes keeps its rightmost digits; 9F1A in 3 bytes gets a leading zero;
    // DF8101 is unknown and BF50 constructed: zeros; 9F6E comes from `extra`, padded.
    let terminal = TerminalData {
        amount_authorised_minor: 1_234_567,
        extra: vec![(Tag(0x9F6E), vec![0xAB])],
        ..transit_terminal()
    };
    let pdol = hex::decode("9F02049F1A03DF8101029F6E02BF5001").unwrap();
    let answer = terminal.pdol_answer(&pdol).unwrap();
    assert_eq!(answer, hex::decode("01234567 000276 0000 AB00 00".replace(' ', "")).unwrap());
}

#[test]
fn pdol_answer_refuses_what_a_gpo_cannot_carry() {
    let terminal = transit_terminal();
    // 9F7C asking 200 bytes and DF01 asking 60: 260 bytes in all.
    let too_long = terminal.pdol_answer(&hex::decode("9F7C81C8DF013C").unwrap()).unwrap_err();
    assert_eq!(too_long, emv::PdolError::TooLong { total_bytes: 260 });
    // An entry asking for 256 bytes, and a truncated tag.
    assert!(matches!(terminal.pdol_answer(&hex::decode("9F7C820100").unwrap()), Err(emv::PdolError::Malformed(_))));
    assert!(matches!(terminal.pdol_answer(&[0x9F]), Err(emv::PdolError::Malformed(_))));
    // Exactly at the limit.
    assert_eq!(terminal.pdol_answer(&hex::decode("9F7C81C8DF0134").unwrap()).unwrap().len(), 252);
}

// ---------------------------------------------------------------------------------------------
// Nonsense at each step (our own bytes, on top of the published PPSE and FCI answers).
// ---------------------------------------------------------------------------------------------

#[test]
fn nonsense_at_each_step_is_a_clear_error() {
    let cases: [(&[(&str, &str)], Step); 6] = [
        (&[(SELECT_PPSE, "0102039000")], Step::SelectPpse),
        (&[(SELECT_PPSE, "A5039F01009000")], Step::SelectPpse),
        (&[(SELECT_PPSE, MC_PPSE), (MC_SELECT, "6F0584030102039000")], Step::SelectApplication),
        (&[(SELECT_PPSE, MC_PPSE), (MC_SELECT, MC_FCI), (GPO_EMPTY_PDOL, "71009000")], Step::GetProcessingOptions),
        (&[(SELECT_PPSE, MC_PPSE), (MC_SELECT, MC_FCI), (GPO_EMPTY_PDOL, "8001789000")], Step::GetProcessingOptions),
        (
            &[(SELECT_PPSE, MC_PPSE), (MC_SELECT, MC_FCI), (GPO_EMPTY_PDOL, "7704 82023900 9000")],
            Step::GetProcessingOptions,
        ),
    ];
    for (steps, step) in cases {
        let mut card = Scripted::new(steps);
        let error = read_card(&mut card, &transit_terminal()).unwrap_err();
        card.assert_finished();
        assert_eq!(error.step(), Some(step), "{error}");
        assert!(!matches!(error, EmvError::Transport { .. }), "{error}");
    }
}

#[test]
fn format_2_without_afl_names_the_missing_tag() {
    let mut card =
        Scripted::new(&[(SELECT_PPSE, MC_PPSE), (MC_SELECT, MC_FCI), (GPO_EMPTY_PDOL, "7704 82023900 9000")]);
    let error = read_card(&mut card, &transit_terminal()).unwrap_err();
    assert_eq!(error, EmvError::MissingTag { step: Step::GetProcessingOptions, tag: Tag(0x94) });
}

#[test]
fn oversized_response_is_refused() {
    // A record of 2 000 bytes (61xx chained would allow it): over EMV_RESPONSE_BYTES_MAX.
    let huge = format!("7082{:04X}{}9000", 1996, "00".repeat(1996));
    let mut card = Scripted::new(&[
        (SELECT_PPSE, MC_PPSE),
        (MC_SELECT, MC_FCI),
        (GPO_EMPTY_PDOL, "800E7800080202001001040018010201 9000"),
        ("00B2020C00", &huge),
    ]);
    let error = read_card(&mut card, &transit_terminal()).unwrap_err();
    assert!(matches!(error, EmvError::CardMisbehaved { step: Step::ReadRecord { .. }, .. }), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

/// Answers with the given responses in turn, whatever the command; then "card removed".
struct Answers(std::vec::IntoIter<Vec<u8>>);

impl Transport for Answers {
    fn transmit(&mut self, _command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.0.next().ok_or(TransportError::CardRemoved)
    }

    fn describe(&self) -> String {
        "arbitrary answers".into()
    }
}

/// The recorded Mastercard answers, in order, as a base to mutate.
fn mastercard_answers() -> Vec<Vec<u8>> {
    [MC_PPSE, MC_FCI, MC_GPO_RESPONSE, MC_RECORD_1_1, MC_RECORD_2_1, MC_RECORD_4_1, MC_RECORD_4_2]
        .iter()
        .map(|answer| hex::decode(answer).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_answers(answers in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..12)) {
        let mut card = Answers(answers.into_iter());
        if let Ok(read) = emv::read_card(&mut card, &transit_terminal()) {
            prop_assert!(luhn_valid(read.pan().digits()));
        }
    }

    #[test]
    fn never_panics_on_mutated_real_answers(
        flips in prop::collection::vec((0_usize..7, any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut answers = mastercard_answers();
        for (answer, index, byte) in flips {
            let target = &mut answers[answer];
            let position = index.index(target.len());
            target[position] = byte;
        }
        let mut card = Answers(answers.into_iter());
        if let Ok(read) = emv::read_card(&mut card, &transit_terminal()) {
            prop_assert!(luhn_valid(read.pan().digits()));
            prop_assert!((12..=19).contains(&read.pan().digits().len()));
        }
    }
}
