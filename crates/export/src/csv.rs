//! CSV for machines: RFC 4180 (comma, `"` quoting only where needed, CRLF line ends), UTF-8
//! without a byte-order mark, a header of column keys, and values a program parses without
//! guessing: decimal amounts, ISO 8601 dates, RFC 3339 UTC instants.
//!
//! No BOM, because partners' importers read plain UTF-8 and some treat a BOM as part of the
//! first header; people who open registries in a spreadsheet get the XLSX.

use std::borrow::Cow;

use ::csv::{QuoteStyle, Terminator, WriterBuilder};

use crate::error::ExportError;
use crate::table::{Cell, Table, money_decimal};

/// The table as CSV: the header row of column keys, then one record per data row.
///
/// The totals row is left out: CSV is read by programs, which would take it for one more
/// data row and count everything twice; they sum the rows themselves.
pub fn to_csv(table: &Table) -> Result<Vec<u8>, ExportError> {
    // Every option stated, so a change of the crate's defaults cannot change our files.
    let mut writer = WriterBuilder::new()
        .delimiter(b',')
        .quote(b'"')
        .double_quote(true)
        .quote_style(QuoteStyle::Necessary)
        .terminator(Terminator::CRLF)
        .flexible(false)
        .from_writer(Vec::new());
    writer.write_record(table.columns().iter().map(|column| column.key)).map_err(ExportError::Csv)?;
    for row in table.rows() {
        writer.write_record(row.iter().map(|cell| into_bytes(field(cell)))).map_err(ExportError::Csv)?;
    }
    writer.into_inner().map_err(|failed| ExportError::Csv(failed.into_error().into()))
}

/// Text made safe to open in a spreadsheet program: a leading `'` when it begins with `=`,
/// `+`, `-`, `@`, tab or carriage return, which Excel, LibreOffice and Sheets would
/// otherwise run as a formula (OWASP, "CSV Injection"). A partner name such as
/// `=HYPERLINK(…)` from a retailer's sign-up form must reach a bank clerk as text.
///
/// Only text cells pass through here; numbers, amounts and dates are written by this crate
/// and a negative amount keeps its `-`.
pub fn neutralise_formula(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

fn field(cell: &Cell) -> Cow<'_, str> {
    match cell {
        Cell::Text(text) => neutralise_formula(text),
        Cell::Int(value) => Cow::Owned(value.to_string()),
        Cell::Money(money) => Cow::Owned(money_decimal(*money)),
        Cell::Date(date) => Cow::Owned(date.format("%Y-%m-%d").to_string()),
        Cell::Time(at) => Cow::Owned(at.to_rfc3339()),
        Cell::Empty => Cow::Borrowed(""),
    }
}

/// The csv writer takes bytes; a borrowed field stays borrowed.
fn into_bytes(text: Cow<'_, str>) -> Cow<'_, [u8]> {
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    }
}
