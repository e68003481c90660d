//! CSV as a partner's importer reads it: exact strings for amounts, dates and instants,
//! RFC 4180 quoting, and text that a spreadsheet program would run as a formula defused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{at, czk, day, jpy, read_csv, read_xlsx, sales_table, xlsx_cell, xlsx_part};
use smartticket_core::Money;
use smartticket_export::{Cell, Column, Table, neutralise_formula, to_csv, to_xlsx};

#[test]
fn round_trip_gives_the_exact_strings() {
    let records = read_csv(&to_csv(&sales_table()).unwrap());
    assert_eq!(
        records,
        vec![
            vec!["partner", "channel", "day", "tickets", "revenue", "first_sale_at"],
            vec!["Kiosk 12", "counter", "2026-03-01", "41", "1234.50", "2026-03-01T05:30:00.123456Z"],
            vec!["Web shop", "web", "2026-03-01", "-1", "-0.05", ""],
        ],
        "header of keys, money with two decimals and no float noise, ISO dates, RFC 3339 UTC; no totals row"
    );
}

#[test]
fn currencies_without_minor_units_have_no_decimals() {
    let mut builder = Table::builder("JPY", vec![Column::money("amount", "Amount", jpy())]).unwrap();
    builder.push_row(vec![Cell::Money(Money::new(1200, jpy()))]).unwrap();
    builder.push_row(vec![Cell::Money(Money::new(-7, jpy()))]).unwrap();
    let records = read_csv(&to_csv(&builder.build().unwrap()).unwrap());
    assert_eq!(records, vec![vec!["amount"], vec!["1200"], vec!["-7"]]);
}

#[test]
fn lines_end_in_crlf_as_rfc_4180_says() {
    let bytes = to_csv(&sales_table()).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("partner,channel,day,tickets,revenue,first_sale_at\r\n"), "{text:?}");
    assert_eq!(text.matches("\r\n").count(), 3, "header and two rows, each ended by CRLF: {text:?}");
    assert_eq!(text.matches('\n').count(), 3, "no bare LF: {text:?}");
    assert!(!text.starts_with('\u{feff}'), "no byte-order mark");
}

fn one_text_column(texts: &[&str]) -> Table {
    let mut builder = Table::builder("Texts", vec![Column::text("text", "Text")]).unwrap();
    for text in texts {
        builder.push_row(vec![Cell::text(*text)]).unwrap();
    }
    builder.build().unwrap()
}

#[test]
fn formula_triggers_get_a_leading_apostrophe() {
    let dangerous = ["=1+1", "+1", "-1", "@SUM(A1:A9)", "\t=1", "\r=1", "=HYPERLINK(\"http://x\",\"y\")"];
    let records = read_csv(&to_csv(&one_text_column(&dangerous)).unwrap());
    for (record, text) in records[1..].iter().zip(dangerous) {
        assert_eq!(record[0], format!("'{text}"), "{text:?} must not start a formula");
    }
}

#[test]
fn harmless_text_is_left_alone() {
    let harmless = ["a=b", "Kiosk -1", "'quoted", "1+1", "e-mail@x", "Пересадка", ""];
    let records = read_csv(&to_csv(&one_text_column(&harmless)).unwrap());
    for (record, text) in records[1..].iter().zip(harmless) {
        assert_eq!(record[0], text);
    }
    assert_eq!(neutralise_formula("a=b"), "a=b");
}

#[test]
fn numbers_keep_their_minus_sign() {
    let mut builder = Table::builder(
        "Refunds",
        vec![Column::int("count", "Count"), Column::money("amount", "Amount", smartticket_core::Currency::CZK)],
    )
    .unwrap();
    builder.push_row(vec![Cell::Int(-5), czk(-12_345)]).unwrap();
    let records = read_csv(&to_csv(&builder.build().unwrap()).unwrap());
    assert_eq!(records[1], vec!["-5", "-123.45"], "only text is prefixed; a refund stays a number");
}

#[test]
fn xlsx_keeps_formula_like_text_as_plain_strings() {
    let table = one_text_column(&["=1+1", "@SUM(A1)"]);
    let bytes = to_xlsx(&table).unwrap();
    let (_, range) = read_xlsx(&bytes);
    assert_eq!(xlsx_cell(&range, 1, 0), calamine::Data::String("=1+1".into()), "no apostrophe needed in XLSX");
    assert_eq!(xlsx_cell(&range, 2, 0), calamine::Data::String("@SUM(A1)".into()));
    let sheet = xlsx_part(&bytes, "xl/worksheets/sheet1.xml");
    assert!(!sheet.contains("<f>"), "no cell is a formula: {sheet}");
}

#[test]
fn quotes_commas_and_newlines_survive() {
    let tricky = ["He said \"hi\", then left", "a,b", "\"", "line one\nline two", "crlf\r\ninside", " padded "];
    let bytes = to_csv(&one_text_column(&tricky)).unwrap();
    let records = read_csv(&bytes);
    assert_eq!(records.len(), 1 + tricky.len(), "embedded newlines must not split records");
    for (record, text) in records[1..].iter().zip(tricky) {
        assert_eq!(record, &vec![text.to_owned()]);
    }
    let raw = String::from_utf8(bytes).unwrap();
    assert!(raw.contains("\"He said \"\"hi\"\", then left\""), "quotes doubled inside a quoted field: {raw:?}");
    assert!(raw.contains("\r\n\"a,b\"\r\n"), "a comma forces quotes: {raw:?}");
}

#[test]
fn dates_and_instants_are_iso_and_utc() {
    let mut builder =
        Table::builder("Times", vec![Column::date("day", "Day"), Column::time("at", "At (UTC)")]).unwrap();
    builder.push_row(vec![Cell::Date(day(1900, 3, 1)), Cell::Time(at("2026-03-01T01:30:00+03:00"))]).unwrap();
    let records = read_csv(&to_csv(&builder.build().unwrap()).unwrap());
    assert_eq!(records[1], vec!["1900-03-01", "2026-02-28T22:30:00.000000Z"], "offsets are written as UTC");
}
