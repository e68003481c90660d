//! What the builder refuses, with the place at fault, and that a refused row changes
//! nothing: a registry either builds whole and valid or tells the caller why not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{at, czk, day};
use smartticket_core::{Currency, Money};
use smartticket_export::{
    COLUMNS_MAX, Cell, Column, ExportError, Kind, NUMBER_ABS_MAX, Place, ROWS_MAX, TEXT_CHARS_MAX, Table, to_csv,
};

fn two_columns() -> smartticket_export::TableBuilder {
    Table::builder(
        "Sales",
        vec![Column::text("partner", "Partner"), Column::money("revenue", "Revenue", Currency::CZK).summed()],
    )
    .unwrap()
}

#[test]
fn a_row_of_the_wrong_length_is_refused_and_changes_nothing() {
    let mut builder = two_columns();
    builder.push_row(vec![Cell::text("Kiosk"), czk(100)]).unwrap();
    let short = builder.push_row(vec![Cell::text("Kiosk")]).unwrap_err();
    assert!(matches!(short, ExportError::RowLength { row: 1, expected: 2, found: 1 }), "{short:?}");
    let long = builder.push_row(vec![Cell::text("Kiosk"), czk(1), Cell::Empty]).unwrap_err();
    assert!(matches!(long, ExportError::RowLength { row: 1, expected: 2, found: 3 }), "{long:?}");
    assert!(matches!(builder.push_row(vec![]), Err(ExportError::RowLength { found: 0, .. })));
    assert_eq!(builder.row_count(), 1);
    let table = builder.build().unwrap();
    assert_eq!(table.rows().len(), 1);
    assert_eq!(table.totals().unwrap()[1], czk(100), "refused rows did not reach the total");
}

#[test]
fn mixed_currencies_in_a_column_are_refused() {
    let mut builder = two_columns();
    builder.push_row(vec![Cell::text("Kiosk"), czk(100)]).unwrap();
    let err = builder.push_row(vec![Cell::text("Kiosk"), Cell::Money(Money::new(100, Currency::EUR))]).unwrap_err();
    match err {
        ExportError::MixedCurrencies { place, expected, found } => {
            assert_eq!(place, Place::Cell { row: 1, column: "revenue" });
            assert_eq!((expected, found), (Currency::CZK, Currency::EUR));
        }
        other => panic!("expected MixedCurrencies, got {other:?}"),
    }
    assert!(err_text(&two_columns(), vec![Cell::text("x"), Cell::Money(Money::new(1, Currency::RUB))]).contains("RUB"));
}

fn err_text(builder: &smartticket_export::TableBuilder, row: Vec<Cell>) -> String {
    builder.clone().push_row(row).unwrap_err().to_string()
}

#[test]
fn a_cell_of_another_kind_is_refused() {
    let mut builder = two_columns();
    let err = builder.push_row(vec![Cell::Int(5), czk(1)]).unwrap_err();
    assert!(
        matches!(err, ExportError::WrongKind { expected: Kind::Text, found: "integer", .. }),
        "a number in a text column: {err:?}"
    );
    let err = builder.push_row(vec![Cell::text("x"), Cell::text("12.50")]).unwrap_err();
    assert!(matches!(err, ExportError::WrongKind { expected: Kind::Money(Currency::CZK), found: "text", .. }));
    builder.push_row(vec![Cell::Empty, Cell::Empty]).unwrap();
}

#[test]
fn too_many_columns_are_refused() {
    let keys: Vec<&'static str> = (0..=COLUMNS_MAX).map(|i| &*Box::leak(format!("c{i}").into_boxed_str())).collect();
    let columns = |n: usize| keys[..n].iter().map(|key| Column::int(key, *key)).collect::<Vec<_>>();
    Table::builder("Wide", columns(COLUMNS_MAX)).unwrap();
    let err = Table::builder("Wide", columns(COLUMNS_MAX + 1)).unwrap_err();
    assert!(matches!(err, ExportError::TooManyColumns { count: 257, max: 256 }), "{err:?}");
    assert!(matches!(Table::builder("Empty", vec![]), Err(ExportError::NoColumns)));
}

#[test]
fn too_many_rows_are_refused() {
    let mut builder = Table::builder("Long", vec![Column::int("n", "N")]).unwrap();
    for _ in 0..ROWS_MAX {
        builder.push_row(vec![Cell::Empty]).unwrap();
    }
    let err = builder.push_row(vec![Cell::Empty]).unwrap_err();
    assert!(matches!(err, ExportError::TooManyRows { max: 1_000_000 }), "{err:?}");
    assert_eq!(builder.row_count(), ROWS_MAX);
}

#[test]
fn text_longer_than_a_cell_holds_is_refused() {
    let mut builder = Table::builder("Notes", vec![Column::text("note", "Note")]).unwrap();
    builder.push_row(vec![Cell::text("a".repeat(TEXT_CHARS_MAX))]).unwrap();
    let err = builder.push_row(vec![Cell::text("a".repeat(TEXT_CHARS_MAX + 1))]).unwrap_err();
    assert!(matches!(err, ExportError::TextTooLong { units: 32_768, max: 32_767, .. }), "{err:?}");
    // Excel counts UTF-16 units: 16,384 emoji are 16,384 chars but 32,768 units.
    let emoji = "😀".repeat(TEXT_CHARS_MAX / 2 + 1);
    assert!(emoji.chars().count() < TEXT_CHARS_MAX);
    let err = builder.push_row(vec![Cell::text(emoji)]).unwrap_err();
    assert!(matches!(err, ExportError::TextTooLong { units: 32_768, .. }), "{err:?}");
    let err = Table::builder("Notes", vec![Column::text("note", "n".repeat(TEXT_CHARS_MAX + 1))]).unwrap_err();
    assert!(matches!(err, ExportError::TextTooLong { place: Place::ColumnTitle("note"), .. }), "{err:?}");
}

#[test]
fn control_characters_are_refused() {
    let mut builder = Table::builder("Notes", vec![Column::text("note", "Note")]).unwrap();
    for bad in ["nul\0", "bell\u{7}", "esc\u{1b}[31m", "del\u{7f}", "c1\u{85}"] {
        let err = builder.push_row(vec![Cell::text(bad)]).unwrap_err();
        assert!(matches!(err, ExportError::ControlCharacter { .. }), "{bad:?}: {err:?}");
    }
    builder.push_row(vec![Cell::text("tab\there\r\nand lines")]).unwrap();
}

#[test]
fn numbers_past_fifteen_digits_are_refused() {
    let mut builder =
        Table::builder("Big", vec![Column::int("n", "N"), Column::money("m", "M", Currency::CZK)]).unwrap();
    builder.push_row(vec![Cell::Int(NUMBER_ABS_MAX), czk(-NUMBER_ABS_MAX)]).unwrap();
    let err = builder.push_row(vec![Cell::Int(NUMBER_ABS_MAX + 1), Cell::Empty]).unwrap_err();
    assert!(matches!(err, ExportError::NumberOutOfRange { place: Place::Cell { column: "n", .. }, .. }));
    let err = builder.push_row(vec![Cell::Empty, czk(-NUMBER_ABS_MAX - 1)]).unwrap_err();
    assert!(matches!(err, ExportError::NumberOutOfRange { place: Place::Cell { column: "m", .. }, .. }));
    let err = builder.push_row(vec![Cell::Int(i64::MIN), Cell::Empty]).unwrap_err();
    assert!(matches!(err, ExportError::NumberOutOfRange { value: i64::MIN, .. }));
}

#[test]
fn a_total_past_fifteen_digits_is_refused() {
    let mut builder = two_columns();
    builder.push_row(vec![Cell::text("a"), czk(NUMBER_ABS_MAX)]).unwrap();
    builder.push_row(vec![Cell::text("b"), czk(1)]).unwrap();
    let err = builder.build().unwrap_err();
    assert!(
        matches!(err, ExportError::NumberOutOfRange { place: Place::Total("revenue"), value: 1_000_000_000_000_000 }),
        "{err:?}"
    );
}

#[test]
fn dates_a_spreadsheet_cannot_show_are_refused() {
    let mut builder = Table::builder("Days", vec![Column::date("day", "Day"), Column::time("at", "At")]).unwrap();
    builder.push_row(vec![Cell::Date(day(1900, 3, 1)), Cell::Time(at("9999-12-31T23:59:59.999999Z"))]).unwrap();
    for bad in [day(1900, 2, 28), day(1899, 12, 31), day(10_000, 1, 1)] {
        let err = builder.push_row(vec![Cell::Date(bad), Cell::Empty]).unwrap_err();
        assert!(matches!(err, ExportError::DateOutOfRange { date, .. } if date == bad), "{bad}: {err:?}");
    }
    let err = builder.push_row(vec![Cell::Empty, Cell::Time(at("1900-02-28T23:59:59Z"))]).unwrap_err();
    assert!(matches!(err, ExportError::DateOutOfRange { place: Place::Cell { column: "at", .. }, .. }));
}

#[test]
fn titles_that_cannot_name_a_worksheet_are_refused() {
    let columns = || vec![Column::int("n", "N")];
    Table::builder("x".repeat(31), columns()).unwrap();
    for bad in
        ["x".repeat(32), String::new(), "Sales 2026/03".into(), "a:b".into(), "'quoted'".into(), "history".into()]
    {
        let err = Table::builder(bad.clone(), columns()).unwrap_err();
        assert!(matches!(err, ExportError::BadTitle { .. }), "{bad:?}: {err:?}");
    }
}

#[test]
fn column_keys_must_be_stable_machine_names() {
    for bad in ["", "Revenue", "1st", "a-b", "a b", "=cmd", "поле"] {
        let err = Table::builder("Keys", vec![Column::int(bad, "N")]).unwrap_err();
        assert!(matches!(err, ExportError::BadColumnKey { .. }), "{bad:?}: {err:?}");
    }
    let long: &'static str = Box::leak("k".repeat(65).into_boxed_str());
    assert!(matches!(Table::builder("Keys", vec![Column::int(long, "N")]), Err(ExportError::BadColumnKey { .. })));
    let err = Table::builder("Keys", vec![Column::int("n", "N"), Column::text("n", "Again")]).unwrap_err();
    assert!(matches!(err, ExportError::DuplicateColumnKey { key: "n" }), "{err:?}");
}

#[test]
fn only_numbers_are_summed_and_the_label_needs_a_place() {
    let err = Table::builder("Sums", vec![Column::text("partner", "Partner").summed()]).unwrap_err();
    assert!(matches!(err, ExportError::NotSummable { key: "partner", kind: Kind::Text }), "{err:?}");
    let err = Table::builder("Sums", vec![Column::date("day", "Day").summed()]).unwrap_err();
    assert!(matches!(err, ExportError::NotSummable { .. }));
    let numbers_first = Table::builder("Sums", vec![Column::int("n", "N").summed(), Column::text("t", "T")]);
    assert!(matches!(numbers_first.unwrap().totals_label("Total"), Err(ExportError::NoPlaceForTotalsLabel)));
    let nothing_summed = Table::builder("Sums", vec![Column::text("t", "T"), Column::int("n", "N")]);
    assert!(matches!(nothing_summed.unwrap().totals_label("Total"), Err(ExportError::NoPlaceForTotalsLabel)));
}

#[test]
fn a_table_without_summed_columns_has_no_totals_row() {
    let mut builder = Table::builder("Plain", vec![Column::int("n", "N")]).unwrap();
    builder.push_row(vec![Cell::Int(1)]).unwrap();
    let table = builder.build().unwrap();
    assert_eq!(table.totals(), None);
    assert_eq!(to_csv(&table).unwrap(), b"n\r\n1\r\n");
}

#[test]
fn errors_name_the_place() {
    let mut builder = two_columns();
    builder.push_row(vec![Cell::text("a"), czk(1)]).unwrap();
    let err = builder.push_row(vec![Cell::text("b"), Cell::Money(Money::new(1, Currency::EUR))]).unwrap_err();
    assert_eq!(err.to_string(), "data row 1, column `revenue`: an amount in EUR in a column of CZK");
}
