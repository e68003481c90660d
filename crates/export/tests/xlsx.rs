//! XLSX as a clerk's spreadsheet shows it, read back with calamine: human titles in a bold
//! header, amounts as numbers with their currency's decimals, dates as dates, a frozen
//! header over an autofilter, and a bold totals row that adds up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use calamine::{Data, DataType};
use common::{czk, day, jpy, open_xlsx, read_xlsx, sales_table, xlsx_cell, xlsx_part};
use smartticket_core::{Currency, Money};
use smartticket_export::{Cell, Column, Table, to_xlsx};

#[test]
fn values_read_back_as_written() {
    let bytes = to_xlsx(&sales_table()).unwrap();
    let (name, range) = read_xlsx(&bytes);
    assert_eq!(name, "Sales 2026-03-01", "the title names the worksheet");

    let header: Vec<Data> = (0..6).map(|c| xlsx_cell(&range, 0, c)).collect();
    let titles = ["Partner", "Channel", "Business day", "Tickets sold", "Revenue, CZK", "First sale (UTC)"];
    assert_eq!(header, titles.map(|t| Data::String(t.into())).to_vec(), "human titles, not keys");

    assert_eq!(xlsx_cell(&range, 1, 0), Data::String("Kiosk 12".into()));
    assert_eq!(xlsx_cell(&range, 1, 3), Data::Float(41.0), "an integer is a number");
    assert_eq!(xlsx_cell(&range, 1, 4), Data::Float(1234.5), "money is a number, not text");
    assert_eq!(xlsx_cell(&range, 2, 4), Data::Float(-0.05));
    let business_day = xlsx_cell(&range, 1, 2);
    assert!(business_day.is_datetime(), "a date cell, not a number or text: {business_day:?}");
    assert_eq!(business_day.as_date(), Some(day(2026, 3, 1)));
    let first_sale = xlsx_cell(&range, 1, 5);
    assert!(first_sale.is_datetime(), "{first_sale:?}");
    assert_eq!(
        first_sale.as_datetime(),
        Some(day(2026, 3, 1).and_hms_milli_opt(5, 30, 0, 123).unwrap()),
        "UTC, to the millisecond a spreadsheet keeps"
    );
    assert_eq!(xlsx_cell(&range, 2, 5), Data::Empty);
}

#[test]
fn totals_row_adds_up_and_sits_below_the_filter() {
    let bytes = to_xlsx(&sales_table()).unwrap();
    let (_, range) = read_xlsx(&bytes);
    assert_eq!(xlsx_cell(&range, 3, 0), Data::String("Total".into()));
    assert_eq!(xlsx_cell(&range, 3, 1), Data::Empty);
    assert_eq!(xlsx_cell(&range, 3, 3), Data::Float(40.0), "41 + (-1)");
    assert_eq!(xlsx_cell(&range, 3, 4), Data::Float(1234.45), "1234.50 + (-0.05), summed in hellers");
    let sheet = xlsx_part(&bytes, "xl/worksheets/sheet1.xml");
    assert!(sheet.contains(r#"<autoFilter ref="A1:F3"/>"#), "header and data rows only: {sheet}");
}

#[test]
fn header_is_bold_and_frozen() {
    let bytes = to_xlsx(&sales_table()).unwrap();
    let styles = open_xlsx(&bytes).worksheet_style("Sales 2026-03-01").unwrap();
    for column in 0..6 {
        let style = styles.get((0, column)).unwrap();
        assert!(style.font.as_ref().is_some_and(|f| f.is_bold()), "header cell {column}: {style:?}");
    }
    let body = styles.get((1, 0));
    assert!(!body.and_then(|s| s.font.as_ref()).is_some_and(|f| f.is_bold()), "data is not bold: {body:?}");
    let total = styles.get((3, 4)).unwrap();
    assert!(total.font.as_ref().is_some_and(|f| f.is_bold()), "totals are bold: {total:?}");
    let sheet = xlsx_part(&bytes, "xl/worksheets/sheet1.xml");
    assert!(sheet.contains(r#"ySplit="1""#) && sheet.contains(r#"state="frozen""#), "header frozen: {sheet}");
}

fn number_format(bytes: &[u8], sheet: &str, row: u32, column: u32) -> String {
    let styles = open_xlsx(bytes).worksheet_style(sheet).unwrap();
    styles.get((row, column)).and_then(|s| s.number_format.clone()).unwrap().format_code
}

#[test]
fn number_formats_show_the_currency_decimals() {
    let bytes = to_xlsx(&sales_table()).unwrap();
    assert_eq!(number_format(&bytes, "Sales 2026-03-01", 1, 4), "#,##0.00");
    assert_eq!(number_format(&bytes, "Sales 2026-03-01", 3, 4), "#,##0.00", "the total too");
    assert_eq!(number_format(&bytes, "Sales 2026-03-01", 1, 2), "yyyy-mm-dd");
    assert_eq!(number_format(&bytes, "Sales 2026-03-01", 1, 5), "yyyy-mm-dd hh:mm:ss");

    let mut builder = Table::builder("JPY", vec![Column::money("amount", "Amount", jpy())]).unwrap();
    builder.push_row(vec![Cell::Money(Money::new(1200, jpy()))]).unwrap();
    let bytes = to_xlsx(&builder.build().unwrap()).unwrap();
    assert_eq!(number_format(&bytes, "JPY", 1, 0), "#,##0", "no decimals for yen");
    assert_eq!(xlsx_cell(&read_xlsx(&bytes).1, 1, 0), Data::Float(1200.0));
}

#[test]
fn the_largest_amount_comes_back_exactly() {
    let mut builder = Table::builder("Big", vec![Column::money("amount", "Amount", Currency::CZK).summed()]).unwrap();
    builder.push_row(vec![czk(999_999_999_999_999)]).unwrap();
    builder.push_row(vec![czk(-999_999_999_999_998)]).unwrap();
    let bytes = to_xlsx(&builder.build().unwrap()).unwrap();
    let (_, range) = read_xlsx(&bytes);
    let Data::Float(largest) = xlsx_cell(&range, 1, 0) else { panic!("a number") };
    assert_eq!(format!("{largest:.2}"), "9999999999999.99", "15 digits survive the double");
    assert_eq!(xlsx_cell(&range, 3, 0), Data::Float(0.01), "the total, summed in integers");
}

#[test]
fn same_table_same_bytes() {
    let first = to_xlsx(&sales_table()).unwrap();
    // The wall clock has second resolution in the document properties; cross a second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = to_xlsx(&sales_table()).unwrap();
    assert!(first == second, "no wall-clock stamp: a registry sent twice hashes the same");
    assert!(xlsx_part(&first, "docProps/core.xml").contains("1980-01-01T00:00:00Z"));
}

#[test]
fn columns_are_wide_enough_for_their_values() {
    let mut builder =
        Table::builder("Widths", vec![Column::text("note", "Note"), Column::money("amount", "Amount", Currency::CZK)])
            .unwrap();
    builder.push_row(vec![Cell::text("x".repeat(500)), czk(123_456_789_012)]).unwrap();
    let sheet = xlsx_part(&to_xlsx(&builder.build().unwrap()).unwrap(), "xl/worksheets/sheet1.xml");
    let widths: Vec<f64> = sheet
        .split("<col ")
        .skip(1)
        .map(|col| col.split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(widths.len(), 2, "{sheet}");
    assert!((60.0..62.0).contains(&widths[0]), "a long note is capped: {widths:?}");
    assert!(widths[1] >= "1,234,567,890.12".len() as f64, "an amount never shows as ####: {widths:?}");
}
