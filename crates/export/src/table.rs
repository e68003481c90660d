//! The typed table both encoders read, and the builder that checks every value once.
//!
//! The limits are the tighter of what a registry needs and what XLSX can hold, so a table
//! that builds can always be written in both formats with the same values.

use std::fmt;

use chrono::NaiveDate;
use smartticket_core::{Currency, Money, Timestamp};

use crate::error::{ExportError, Place};

/// Most data rows in one table. An XLSX worksheet has 1,048,576 rows (Excel's "Excel
/// specifications and limits": "Total number of rows and columns on a worksheet"); a round
/// million leaves room for the header and totals rows, and a registry past it should be
/// split by day or partner anyway.
pub const ROWS_MAX: usize = 1_000_000;

/// Most columns in one table: far more than any registry has (XLSX allows 16,384), few
/// enough that a mistaken "one column per ticket" table is refused early.
pub const COLUMNS_MAX: usize = 256;

/// Longest text in a cell, title or label, counted as Excel counts: UTF-16 code units.
/// Excel's "Excel specifications and limits": "Total number of characters that a cell can
/// contain: 32,767 characters"; longer text cannot be written to XLSX.
pub const TEXT_CHARS_MAX: usize = 32_767;

/// Longest table title, which names the XLSX worksheet: Excel refuses sheet names longer
/// than 31 characters (UTF-16 code units, counted as for cells).
pub const TITLE_CHARS_MAX: usize = 31;

/// Longest column key. Keys are CSV headers that importers map to fields, so they stay short.
pub const COLUMN_KEY_BYTES_MAX: usize = 64;

/// Largest magnitude of an integer cell, or of an amount in minor units: 15 digits.
/// XLSX stores every number as an IEEE 754 double, and a double keeps any decimal of up to
/// 15 significant digits exactly through a write and a read (`DBL_DIG` = 15), which is also
/// the precision Excel displays. So a 15-digit amount, scaled to major units, comes back
/// from the spreadsheet to the same decimal the CSV holds. It is also below 2^53, so the
/// integer itself converts to a double exactly.
pub const NUMBER_ABS_MAX: i64 = 999_999_999_999_999;

/// Earliest date a cell may hold. Excel's date serials count a 29 February 1900 that never
/// was (kept for Lotus 1-2-3 compatibility), so serials before 1 March 1900 are off by one
/// and readers disagree about them; no transit registry needs those days.
pub const DATE_MIN: NaiveDate = match NaiveDate::from_ymd_opt(1900, 3, 1) {
    Some(date) => date,
    None => NaiveDate::MIN,
};

/// Latest date a cell may hold: Excel's last date.
pub const DATE_MAX: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(date) => date,
    None => NaiveDate::MAX,
};

// The header and totals rows must fit in a worksheet beside the data rows.
const _: () = assert!(ROWS_MAX + 2 <= 1_048_576);
const _: () = assert!(COLUMNS_MAX <= 16_384);
// A double holds every integer up to 2^53 exactly.
const _: () = assert!(NUMBER_ABS_MAX < 1 << 53);

/// One value in a table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cell {
    /// Text, written as a string in both formats and never read as a formula.
    Text(String),
    /// A whole number, such as a count of tickets.
    Int(i64),
    /// An amount; its currency must be its column's.
    Money(Money),
    /// A calendar date, such as a business day.
    Date(NaiveDate),
    /// An instant, written in UTC.
    Time(Timestamp),
    /// No value: an empty field in CSV, a blank cell in XLSX.
    Empty,
}

impl Cell {
    /// A text cell.
    pub fn text(text: impl Into<String>) -> Self {
        Cell::Text(text.into())
    }

    /// What the cell holds, for error messages.
    fn kind_name(&self) -> &'static str {
        match self {
            Cell::Text(_) => "text",
            Cell::Int(_) => "integer",
            Cell::Money(_) => "money",
            Cell::Date(_) => "date",
            Cell::Time(_) => "timestamp",
            Cell::Empty => "empty",
        }
    }
}

/// What a column holds. Every cell in the column is of this kind or [`Cell::Empty`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// [`Cell::Text`].
    Text,
    /// [`Cell::Int`].
    Int,
    /// [`Cell::Money`] in this one currency. The currency is declared, not inferred from the
    /// first amount, so an empty column still gets the right decimals and a mixed column is
    /// refused at the first stray amount.
    Money(Currency),
    /// [`Cell::Date`].
    Date,
    /// [`Cell::Time`].
    Time,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Text => f.write_str("text"),
            Kind::Int => f.write_str("integer"),
            Kind::Money(currency) => write!(f, "money ({currency})"),
            Kind::Date => f.write_str("date"),
            Kind::Time => f.write_str("timestamp"),
        }
    }
}

/// A column: a stable machine key, a human title, what it holds, and whether the totals row
/// sums it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Stable machine name (`[a-z][a-z0-9_]*`): the CSV header, which partners' importers
    /// map to their fields, so it must not change when the human title is reworded.
    pub key: &'static str,
    /// Human title: the XLSX header.
    pub title: String,
    /// What the column holds.
    pub kind: Kind,
    /// Whether the totals row sums this column (integer and money columns only).
    pub summed: bool,
}

impl Column {
    /// A column of `kind`, not summed.
    pub fn new(key: &'static str, title: impl Into<String>, kind: Kind) -> Self {
        Self { key, title: title.into(), kind, summed: false }
    }

    /// A text column.
    pub fn text(key: &'static str, title: impl Into<String>) -> Self {
        Self::new(key, title, Kind::Text)
    }

    /// An integer column.
    pub fn int(key: &'static str, title: impl Into<String>) -> Self {
        Self::new(key, title, Kind::Int)
    }

    /// A money column in `currency`.
    pub fn money(key: &'static str, title: impl Into<String>, currency: Currency) -> Self {
        Self::new(key, title, Kind::Money(currency))
    }

    /// A date column.
    pub fn date(key: &'static str, title: impl Into<String>) -> Self {
        Self::new(key, title, Kind::Date)
    }

    /// A timestamp column, written in UTC; say so in the title.
    pub fn time(key: &'static str, title: impl Into<String>) -> Self {
        Self::new(key, title, Kind::Time)
    }

    /// This column, summed in the totals row.
    #[must_use]
    pub fn summed(mut self) -> Self {
        self.summed = true;
        self
    }
}

/// A checked table: every row has one cell per column, every cell fits its column and the
/// limits. Built only through [`Table::builder`], so the encoders can trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    title: String,
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
    totals: Option<Vec<Cell>>,
}

impl Table {
    /// Starts a table named `title` (also the XLSX worksheet name, so at most
    /// [`TITLE_CHARS_MAX`] long and without `[ ] : * ? / \`) with these columns.
    pub fn builder(title: impl Into<String>, columns: Vec<Column>) -> Result<TableBuilder, ExportError> {
        let title = title.into();
        check_title(&title)?;
        check_columns(&columns)?;
        let sums = vec![0; columns.len()];
        Ok(TableBuilder { title, columns, rows: Vec::new(), totals_label: None, sums })
    }

    /// The title, also the worksheet name.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The data rows, in the order they were pushed; each has one cell per column.
    pub fn rows(&self) -> &[Vec<Cell>] {
        &self.rows
    }

    /// The totals row, present when some column is summed; one cell per column.
    pub fn totals(&self) -> Option<&[Cell]> {
        self.totals.as_deref()
    }
}

/// Collects and checks rows for a [`Table`]. A refused row leaves the builder as it was.
#[derive(Debug, Clone)]
pub struct TableBuilder {
    title: String,
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
    totals_label: Option<String>,
    // Running sums per column, in minor units for money. i128 cannot overflow here: at most
    // ROWS_MAX values of at most NUMBER_ABS_MAX each is below 10^22. The range of a total
    // is checked once, in `build`.
    sums: Vec<i128>,
}

impl TableBuilder {
    /// Puts `label` (such as "Total") in the first cell of the totals row. The first column
    /// must hold text and not be summed, and some other column must be summed.
    pub fn totals_label(mut self, label: impl Into<String>) -> Result<Self, ExportError> {
        let label = label.into();
        check_text(Place::TotalsLabel, &label)?;
        let first_is_text = self.columns.first().is_some_and(|c| c.kind == Kind::Text && !c.summed);
        let some_summed = self.columns.iter().any(|c| c.summed);
        if !first_is_text || !some_summed {
            return Err(ExportError::NoPlaceForTotalsLabel);
        }
        self.totals_label = Some(label);
        Ok(self)
    }

    /// Adds a data row after checking its length, each cell's kind and currency, and the
    /// limits. On error nothing is added.
    pub fn push_row(&mut self, cells: Vec<Cell>) -> Result<(), ExportError> {
        let row = self.rows.len();
        if row >= ROWS_MAX {
            return Err(ExportError::TooManyRows { max: ROWS_MAX });
        }
        if cells.len() != self.columns.len() {
            return Err(ExportError::RowLength { row, expected: self.columns.len(), found: cells.len() });
        }
        for (column, cell) in self.columns.iter().zip(&cells) {
            check_cell(Place::Cell { row, column: column.key }, column.kind, cell)?;
        }
        // Only after the whole row passed, so a refused row leaves the sums untouched.
        for ((column, cell), sum) in self.columns.iter().zip(&cells).zip(&mut self.sums) {
            if column.summed {
                *sum = sum.saturating_add(summand(cell));
            }
        }
        self.rows.push(cells);
        Ok(())
    }

    /// How many data rows have been pushed.
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// The checked table, with its totals row computed from the rows (never supplied by the
    /// caller, so it always adds up).
    pub fn build(self) -> Result<Table, ExportError> {
        let any_summed = self.columns.iter().any(|c| c.summed);
        let totals = if any_summed { Some(self.totals_row()?) } else { None };
        Ok(Table { title: self.title, columns: self.columns, rows: self.rows, totals })
    }

    fn totals_row(&self) -> Result<Vec<Cell>, ExportError> {
        let mut totals = Vec::with_capacity(self.columns.len());
        for (index, (column, sum)) in self.columns.iter().zip(&self.sums).enumerate() {
            let cell = if column.summed {
                let place = Place::Total(column.key);
                let value = i64::try_from(*sum)
                    .ok()
                    .filter(|v| v.unsigned_abs() <= NUMBER_ABS_MAX.unsigned_abs())
                    .ok_or(ExportError::NumberOutOfRange { place, value: saturate(*sum) })?;
                match column.kind {
                    Kind::Money(currency) => Cell::Money(Money::new(value, currency)),
                    _ => Cell::Int(value),
                }
            } else if index == 0
                && let Some(label) = &self.totals_label
            {
                Cell::Text(label.clone())
            } else {
                Cell::Empty
            };
            totals.push(cell);
        }
        Ok(totals)
    }
}

/// What a cell adds to its column's total; `check_columns` allows sums only of integer and
/// money columns, and `check_cell` only cells of the column's kind.
fn summand(cell: &Cell) -> i128 {
    match cell {
        Cell::Int(value) => i128::from(*value),
        Cell::Money(money) => i128::from(money.amount_minor),
        _ => 0,
    }
}

fn saturate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

fn check_columns(columns: &[Column]) -> Result<(), ExportError> {
    if columns.is_empty() {
        return Err(ExportError::NoColumns);
    }
    if columns.len() > COLUMNS_MAX {
        return Err(ExportError::TooManyColumns { count: columns.len(), max: COLUMNS_MAX });
    }
    for (index, column) in columns.iter().enumerate() {
        check_key(column.key)?;
        if columns.iter().take(index).any(|earlier| earlier.key == column.key) {
            return Err(ExportError::DuplicateColumnKey { key: column.key });
        }
        check_text(Place::ColumnTitle(column.key), &column.title)?;
        if column.summed && !matches!(column.kind, Kind::Int | Kind::Money(_)) {
            return Err(ExportError::NotSummable { key: column.key, kind: column.kind });
        }
    }
    Ok(())
}

/// Keys are CSV headers: lower-case ASCII keeps them stable across importers and spreadsheet
/// programs, and unable to start a formula.
fn check_key(key: &'static str) -> Result<(), ExportError> {
    let bad = |why| Err(ExportError::BadColumnKey { key, why });
    let mut bytes = key.bytes();
    match bytes.next() {
        None => return bad("it is empty"),
        Some(first) if !first.is_ascii_lowercase() => return bad("it must start with a letter a-z"),
        Some(_) => {}
    }
    if !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return bad("only a-z, 0-9 and _ are allowed");
    }
    if key.len() > COLUMN_KEY_BYTES_MAX {
        return bad("it is longer than 64 bytes");
    }
    Ok(())
}

/// The title names the worksheet, and Excel's rules for sheet names are checked here so that
/// writing XLSX cannot fail on them later.
fn check_title(title: &str) -> Result<(), ExportError> {
    let bad = |why| Err(ExportError::BadTitle { title: title.to_owned(), why });
    check_text(Place::Title, title)?;
    if title.is_empty() {
        return bad("it is empty");
    }
    if title.encode_utf16().count() > TITLE_CHARS_MAX {
        return bad("Excel allows at most 31 characters");
    }
    if title.contains(['[', ']', ':', '*', '?', '/', '\\']) {
        return bad("Excel forbids [ ] : * ? / \\ in sheet names");
    }
    if title.starts_with('\'') || title.ends_with('\'') {
        return bad("Excel forbids an apostrophe at either end");
    }
    if title.eq_ignore_ascii_case("History") {
        return bad("Excel reserves `History`");
    }
    if title.contains(['\t', '\n', '\r']) {
        return bad("a sheet name is one line");
    }
    Ok(())
}

/// Text limits shared by cells, titles and labels. Control characters other than tab, line
/// feed and carriage return are refused: XML cannot carry most of them, spreadsheet programs
/// show them as garbage, and in a partner name or a note they are always a data error.
fn check_text(place: Place, text: &str) -> Result<(), ExportError> {
    if let Some(control) = text.chars().find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return Err(ExportError::ControlCharacter { place, code: u32::from(control) });
    }
    // Cheap first: UTF-8 is never shorter in bytes than UTF-16 in units, so short byte
    // strings need no count.
    if text.len() > TEXT_CHARS_MAX {
        let units = text.encode_utf16().count();
        if units > TEXT_CHARS_MAX {
            return Err(ExportError::TextTooLong { place, units, max: TEXT_CHARS_MAX });
        }
    }
    Ok(())
}

fn check_number(place: Place, value: i64) -> Result<(), ExportError> {
    if value.unsigned_abs() > NUMBER_ABS_MAX.unsigned_abs() {
        return Err(ExportError::NumberOutOfRange { place, value });
    }
    Ok(())
}

fn check_date(place: Place, date: NaiveDate) -> Result<(), ExportError> {
    if !(DATE_MIN..=DATE_MAX).contains(&date) {
        return Err(ExportError::DateOutOfRange { place, date });
    }
    Ok(())
}

fn check_cell(place: Place, kind: Kind, cell: &Cell) -> Result<(), ExportError> {
    match (kind, cell) {
        (_, Cell::Empty) => Ok(()),
        (Kind::Text, Cell::Text(text)) => check_text(place, text),
        (Kind::Int, Cell::Int(value)) => check_number(place, *value),
        (Kind::Money(expected), Cell::Money(money)) => {
            if money.currency != expected {
                return Err(ExportError::MixedCurrencies { place, expected, found: money.currency });
            }
            check_number(place, money.amount_minor)
        }
        (Kind::Date, Cell::Date(date)) => check_date(place, *date),
        (Kind::Time, Cell::Time(at)) => check_date(place, at.datetime().date_naive()),
        (expected, found) => Err(ExportError::WrongKind { place, expected, found: found.kind_name() }),
    }
}

/// An amount as a decimal in major units with exactly the currency's minor digits
/// (`1234.50` CZK, `-0.05` CZK, `1200` JPY), from integer minor units: never through a float.
pub(crate) fn money_decimal(money: Money) -> String {
    money.major_decimal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_decimal_uses_the_currency_exponent() {
        let jpy = Currency::from_code("JPY").unwrap();
        let bhd = Currency::from_code("BHD").unwrap();
        assert_eq!(money_decimal(Money::new(123_450, Currency::CZK)), "1234.50");
        assert_eq!(money_decimal(Money::new(-5, Currency::CZK)), "-0.05");
        assert_eq!(money_decimal(Money::new(0, Currency::CZK)), "0.00");
        assert_eq!(money_decimal(Money::new(1200, jpy)), "1200");
        assert_eq!(money_decimal(Money::new(-1_234_567, bhd)), "-1234.567");
        assert_eq!(money_decimal(Money::new(i64::MIN, Currency::CZK)), "-92233720368547758.08");
    }

    #[test]
    fn date_limits_are_what_they_say() {
        assert_eq!(DATE_MIN, NaiveDate::from_ymd_opt(1900, 3, 1).unwrap());
        assert_eq!(DATE_MAX, NaiveDate::from_ymd_opt(9999, 12, 31).unwrap());
    }
}
