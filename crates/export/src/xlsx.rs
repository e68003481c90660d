//! XLSX for people: one worksheet named by the table's title, a bold header of human titles
//! frozen above an autofilter, amounts as numbers with their currency's decimals, dates and
//! instants as real spreadsheet dates, and the totals row in bold below the filtered range.
//!
//! Values are the table's, converted at the last step and nowhere else: amounts become
//! doubles only when written, and text is always a string cell, never a formula.

use chrono::{Datelike, NaiveDate, Timelike};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, Worksheet};
use smartticket_core::{Money, Timestamp};

use crate::error::{ExportError, Place};
use crate::table::{COLUMNS_MAX, Cell, Column, Kind, ROWS_MAX, Table, money_decimal};

/// Column widths, in the spreadsheet's character units: wide enough for a date, narrow
/// enough that a long note does not push the other columns off screen.
const COLUMN_WIDTH_MIN: usize = 8;
const COLUMN_WIDTH_MAX: usize = 60;
const _: () = assert!(COLUMN_WIDTH_MAX <= u16::MAX as usize);
/// Margin around a value: a number that does not fit shows as `####`.
const CELL_PADDING_WIDTH: usize = 2;
/// Room for the autofilter's drop-down button beside a header title.
const FILTER_BUTTON_WIDTH: usize = 3;

/// ISO 8601 order, because registries go to partners in several countries and `03/01`
/// means a different day in each. Instants are in UTC, as in the CSV.
const DATE_FORMAT: &str = "yyyy-mm-dd";
const TIME_FORMAT: &str = "yyyy-mm-dd hh:mm:ss";
/// Integers are counts and numbers (a partner's number, a year): no thousands separator.
const INT_FORMAT: &str = "0";

/// The table as an XLSX workbook of one worksheet.
///
/// Instants keep millisecond precision, which is all a spreadsheet's time has; the CSV keeps
/// the microseconds. The same table always gives the same bytes: the document's creation
/// date is fixed rather than read from the wall clock.
pub fn to_xlsx(table: &Table) -> Result<Vec<u8>, ExportError> {
    let mut workbook = Workbook::new();
    // rust_xlsxwriter would stamp the wall clock here. A fixed date (the zip entries' own,
    // 1980-01-01) keeps this crate free of clocks and the output reproducible, so a registry
    // sent twice hashes the same; the period a registry covers is in its title and rows.
    let created = ExcelDateTime::from_ymd(1980, 1, 1).map_err(ExportError::Xlsx)?;
    workbook.set_properties(&DocProperties::new().set_title(table.title()).set_creation_datetime(&created));
    let sheet = workbook.add_worksheet();
    // `Table::builder` checked the title against Excel's sheet-name rules.
    sheet.set_name(table.title()).map_err(ExportError::Xlsx)?;

    let formats: Vec<ColumnFormats> = table.columns().iter().map(ColumnFormats::new).collect();
    write_header(sheet, table.columns())?;
    for (index, row) in table.rows().iter().enumerate() {
        let sheet_row = sheet_row(index)?;
        for (((number, column), cell), format) in (0_u16..).zip(table.columns()).zip(row).zip(&formats) {
            let place = Place::Cell { row: index, column: column.key };
            write_cell(sheet, sheet_row, number, cell, &format.body, place)?;
        }
    }
    if let Some(totals) = table.totals() {
        let sheet_row = sheet_row(table.rows().len())?;
        for (((number, column), cell), format) in (0_u16..).zip(table.columns()).zip(totals).zip(&formats) {
            write_cell(sheet, sheet_row, number, cell, &format.totals, Place::Total(column.key))?;
        }
    }

    // The header stays in view while scrolling a long registry.
    sheet.set_freeze_panes(1, 0).map_err(ExportError::Xlsx)?;
    // The filter covers header and data only: sorting must not move the totals row into the
    // data, nor a data row below the totals.
    let data_last = u32::try_from(table.rows().len()).map_err(|_| ExportError::TooManyRows { max: ROWS_MAX })?;
    let column_count = table.columns().len();
    let column_last = column_count
        .checked_sub(1)
        .and_then(|last| u16::try_from(last).ok())
        .ok_or(ExportError::TooManyColumns { count: column_count, max: COLUMNS_MAX })?;
    sheet.autofilter(0, 0, data_last, column_last).map_err(ExportError::Xlsx)?;
    for (number, width) in (0_u16..).zip(column_widths(table)) {
        sheet.set_column_width(number, f64::from(width)).map_err(ExportError::Xlsx)?;
    }
    workbook.save_to_buffer().map_err(ExportError::Xlsx)
}

/// The formats one column's cells are written with.
struct ColumnFormats {
    body: Format,
    totals: Format,
}

impl ColumnFormats {
    fn new(column: &Column) -> Self {
        let body = match column.kind {
            Kind::Text => Format::new(),
            Kind::Int => Format::new().set_num_format(INT_FORMAT),
            Kind::Money(currency) => Format::new().set_num_format(money_format(currency.minor_digits())),
            Kind::Date => Format::new().set_num_format(DATE_FORMAT),
            Kind::Time => Format::new().set_num_format(TIME_FORMAT),
        };
        let totals = body.clone().set_bold();
        Self { body, totals }
    }
}

/// `#,##0.00` for a currency with two minor digits, `#,##0` for one with none (JPY): the
/// spreadsheet shows exactly the decimals the CSV has.
fn money_format(minor_digits: u32) -> String {
    let mut format = String::from("#,##0");
    if minor_digits > 0 {
        format.push('.');
        for _ in 0..minor_digits {
            format.push('0');
        }
    }
    format
}

fn write_header(sheet: &mut Worksheet, columns: &[Column]) -> Result<(), ExportError> {
    let bold = Format::new().set_bold();
    for (number, column) in (0_u16..).zip(columns) {
        sheet.write_string_with_format(0, number, column.title.as_str(), &bold).map_err(ExportError::Xlsx)?;
    }
    Ok(())
}

fn write_cell(
    sheet: &mut Worksheet,
    row: u32,
    column: u16,
    cell: &Cell,
    format: &Format,
    place: Place,
) -> Result<(), ExportError> {
    match cell {
        // Blank, like the CSV's empty field: an empty string and no value read back alike.
        Cell::Empty => return Ok(()),
        Cell::Text(text) if text.is_empty() => return Ok(()),
        // A string cell: never parsed as a formula, so no `'` prefix is needed (or wanted: it
        // would show). `neutralise_formula` is for CSV only.
        Cell::Text(text) => sheet.write_string_with_format(row, column, text.as_str(), format),
        Cell::Int(value) => {
            let number = exact_f64(*value).ok_or(ExportError::NumberOutOfRange { place, value: *value })?;
            sheet.write_number_with_format(row, column, number, format)
        }
        Cell::Money(money) => {
            let number =
                money_major_f64(*money).ok_or(ExportError::NumberOutOfRange { place, value: money.amount_minor })?;
            sheet.write_number_with_format(row, column, number, format)
        }
        Cell::Date(date) => {
            let serial = excel_date(*date).ok_or(ExportError::DateOutOfRange { place, date: *date })?;
            sheet.write_datetime_with_format(row, column, &serial, format)
        }
        Cell::Time(at) => {
            let serial =
                excel_time(*at).ok_or(ExportError::DateOutOfRange { place, date: at.datetime().date_naive() })?;
            sheet.write_datetime_with_format(row, column, &serial, format)
        }
    }
    .map_err(ExportError::Xlsx)?;
    Ok(())
}

/// `value` as a double, when that is exact: every integer up to 2^53 is. The builder keeps
/// values to 15 digits, so this refuses only if that check is ever lost.
fn exact_f64(value: i64) -> Option<f64> {
    const EXACT_MAX: u64 = 1 << 53;
    (value.unsigned_abs() <= EXACT_MAX).then_some(value as f64)
}

/// The amount in major units as a double, the one place money touches floating point.
///
/// Safe because both operands are exact and IEEE 754 division is correctly rounded: the
/// minor units are an integer of at most 15 digits (< 2^53, so exact as a double), and
/// 10^digits is exact for any real currency (up to 10^22 is). The quotient is therefore the
/// double nearest the true amount, the same one a person typing `1234.50` into the
/// spreadsheet gets, and with at most 15 significant digits it rounds back to exactly the
/// decimal the CSV holds. Sums are made in integers by the builder, never here.
fn money_major_f64(money: Money) -> Option<f64> {
    let minor = exact_f64(money.amount_minor)?;
    let digits = i32::try_from(money.currency.minor_digits()).ok().filter(|d| *d <= 22)?;
    Some(minor / 10_f64.powi(digits))
}

fn excel_date(date: NaiveDate) -> Option<ExcelDateTime> {
    let year = u16::try_from(date.year()).ok()?;
    let month = u8::try_from(date.month()).ok()?;
    let day = u8::try_from(date.day()).ok()?;
    ExcelDateTime::from_ymd(year, month, day).ok()
}

fn excel_time(at: Timestamp) -> Option<ExcelDateTime> {
    let at = at.datetime();
    let time = at.time();
    let hour = u16::try_from(time.hour()).ok()?;
    let minute = u8::try_from(time.minute()).ok()?;
    let second = u8::try_from(time.second()).ok()?;
    // Microseconds are cut to the spreadsheet's milliseconds. chrono puts a leap second in
    // the nanoseconds (1_000_000_000 and up); it shows as the last millisecond of :59.
    let milli = u16::try_from((time.nanosecond() / 1_000_000).min(999)).ok()?;
    excel_date(at.date_naive())?.and_hms_milli(hour, minute, second, milli).ok()
}

/// The worksheet row of data row `index`: the header is row 0.
fn sheet_row(index: usize) -> Result<u32, ExportError> {
    index.checked_add(1).and_then(|row| u32::try_from(row).ok()).ok_or(ExportError::TooManyRows { max: ROWS_MAX })
}

/// Widths from the longest value shown in each column, header included, within the bounds
/// above; one pass over the rows.
fn column_widths(table: &Table) -> Vec<u16> {
    let mut widths: Vec<usize> =
        table.columns().iter().map(|column| column.title.chars().count().saturating_add(FILTER_BUTTON_WIDTH)).collect();
    for row in table.rows().iter().map(Vec::as_slice).chain(table.totals()) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(shown_width(cell));
        }
    }
    widths
        .into_iter()
        .map(|w| {
            u16::try_from(w.saturating_add(CELL_PADDING_WIDTH).clamp(COLUMN_WIDTH_MIN, COLUMN_WIDTH_MAX))
                .unwrap_or(u16::MAX)
        })
        .collect()
}

/// About how many characters the spreadsheet shows for `cell`.
fn shown_width(cell: &Cell) -> usize {
    match cell {
        Cell::Text(text) => text.lines().map(|line| line.chars().count()).max().unwrap_or(0),
        Cell::Int(value) => value.to_string().len(),
        Cell::Money(money) => {
            // The decimal plus one thousands separator per three whole digits.
            let decimal = money_decimal(*money);
            let whole = decimal.trim_start_matches('-').split('.').next().map_or(0, str::len);
            decimal.len().saturating_add(whole.saturating_sub(1) / 3)
        }
        Cell::Date(_) => DATE_FORMAT.len(),
        Cell::Time(_) => TIME_FORMAT.len(),
        Cell::Empty => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartticket_core::Currency;

    #[test]
    fn money_formats_follow_the_minor_digits() {
        assert_eq!(money_format(2), "#,##0.00");
        assert_eq!(money_format(0), "#,##0");
        assert_eq!(money_format(3), "#,##0.000");
    }

    #[test]
    fn money_becomes_the_nearest_double() {
        assert_eq!(money_major_f64(Money::new(123_450, Currency::CZK)), Some(1234.5));
        assert_eq!(money_major_f64(Money::new(-5, Currency::CZK)), Some(-0.05));
        assert_eq!(money_major_f64(Money::new(1200, Currency::from_code("JPY").unwrap())), Some(1200.0));
        assert_eq!(money_major_f64(Money::new(i64::MAX, Currency::CZK)), None);
    }

    #[test]
    fn widths_count_thousands_separators() {
        assert_eq!(shown_width(&Cell::Money(Money::new(123_456_789, Currency::CZK))), "1,234,567.89".len());
        assert_eq!(shown_width(&Cell::Money(Money::new(-100, Currency::CZK))), "-1.00".len());
        assert_eq!(shown_width(&Cell::text("short\na much longer line")), 18);
    }
}
