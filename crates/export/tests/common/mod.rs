//! Readers for what the export crate wrote, through independent crates: `csv` for CSV,
//! `calamine` for XLSX values and styles, `zip` for the worksheet XML itself.
#![allow(dead_code)]

use std::io::{Cursor, Read};

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::NaiveDate;
use smartticket_core::{Currency, Money, Timestamp};
use smartticket_export::{Cell, Column, Table};

pub fn czk(minor: i64) -> Cell {
    Cell::Money(Money::new(minor, Currency::CZK))
}

pub fn jpy() -> Currency {
    Currency::from_code("JPY").unwrap()
}

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn at(rfc3339: &str) -> Timestamp {
    Timestamp::parse_rfc3339(rfc3339).unwrap()
}

/// Every record, header first, as the strings a CSV reader sees.
pub fn read_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(false).from_reader(bytes);
    reader.records().map(|record| record.unwrap().iter().map(str::to_owned).collect()).collect()
}

pub fn open_xlsx(bytes: &[u8]) -> Xlsx<Cursor<Vec<u8>>> {
    open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap()
}

/// The only worksheet's name and cells, by absolute (row, column) position.
pub fn read_xlsx(bytes: &[u8]) -> (String, calamine::Range<Data>) {
    let mut workbook = open_xlsx(bytes);
    let names = workbook.sheet_names();
    assert_eq!(names.len(), 1, "one worksheet per registry");
    let name = names[0].clone();
    let range = workbook.worksheet_range(&name).unwrap();
    (name, range)
}

/// A cell by absolute position; positions past the used range are blank.
pub fn xlsx_cell(range: &calamine::Range<Data>, row: usize, column: usize) -> Data {
    range.get_value((row as u32, column as u32)).cloned().unwrap_or(Data::Empty)
}

/// One part of the XLSX zip archive as text, e.g. `xl/worksheets/sheet1.xml`.
pub fn xlsx_part(bytes: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut text = String::new();
    archive.by_name(name).unwrap().read_to_string(&mut text).unwrap();
    text
}

/// A day's sales by partner and channel: the first registry the crate serves.
pub fn sales_table() -> Table {
    let mut builder = Table::builder(
        "Sales 2026-03-01",
        vec![
            Column::text("partner", "Partner"),
            Column::text("channel", "Channel"),
            Column::date("day", "Business day"),
            Column::int("tickets", "Tickets sold").summed(),
            Column::money("revenue", "Revenue, CZK", Currency::CZK).summed(),
            Column::time("first_sale_at", "First sale (UTC)"),
        ],
    )
    .unwrap()
    .totals_label("Total")
    .unwrap();
    builder
        .push_row(vec![
            Cell::text("Kiosk 12"),
            Cell::text("counter"),
            Cell::Date(day(2026, 3, 1)),
            Cell::Int(41),
            czk(123_450),
            Cell::Time(at("2026-03-01T05:30:00.123456Z")),
        ])
        .unwrap();
    builder
        .push_row(vec![
            Cell::text("Web shop"),
            Cell::text("web"),
            Cell::Date(day(2026, 3, 1)),
            Cell::Int(-1),
            czk(-5),
            Cell::Empty,
        ])
        .unwrap();
    builder.build().unwrap()
}
