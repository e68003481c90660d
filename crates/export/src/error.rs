//! Why a table was refused or could not be written, and where in the table.
//!
//! Nearly every refusal comes from the builder, naming the cell at fault, so a caller can
//! report "row 1 204, column `revenue`" instead of a broken file reaching a bank.

use std::fmt;

use chrono::NaiveDate;
use smartticket_core::Currency;
use thiserror::Error;

use crate::table::Kind;

/// Where in a table a refused value sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Place {
    /// The table's title.
    Title,
    /// The title of the column with this key.
    ColumnTitle(&'static str),
    /// The label of the totals row.
    TotalsLabel,
    /// A data cell.
    Cell {
        /// The data row's index from 0, in the order rows were pushed; the header row is not
        /// counted.
        row: usize,
        /// The column's key.
        column: &'static str,
    },
    /// The totals row's cell in the column with this key.
    Total(&'static str),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Title => f.write_str("the table title"),
            Place::ColumnTitle(key) => write!(f, "the title of column `{key}`"),
            Place::TotalsLabel => f.write_str("the totals label"),
            Place::Cell { row, column } => write!(f, "data row {row}, column `{column}`"),
            Place::Total(key) => write!(f, "the total of column `{key}`"),
        }
    }
}

/// Why a table was refused or could not be encoded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A table needs at least one column.
    #[error("a table needs at least one column")]
    NoColumns,
    /// More columns than [`COLUMNS_MAX`](crate::COLUMNS_MAX).
    #[error("{count} columns, more than the {max} a registry may have")]
    TooManyColumns {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A column key is not a stable machine name (`[a-z][a-z0-9_]*`, at most
    /// [`COLUMN_KEY_BYTES_MAX`](crate::COLUMN_KEY_BYTES_MAX) bytes).
    #[error("column key {key:?} is refused: {why}")]
    BadColumnKey {
        /// The key given.
        key: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Two columns share a key, so a CSV reader could not tell them apart.
    #[error("column key `{key}` is used twice")]
    DuplicateColumnKey {
        /// The repeated key.
        key: &'static str,
    },
    /// Only integer and money columns can be summed.
    #[error("column `{key}` holds {kind} cells, which cannot be summed")]
    NotSummable {
        /// The column's key.
        key: &'static str,
        /// What the column holds.
        kind: Kind,
    },
    /// The table title cannot name an XLSX worksheet.
    #[error("{title:?} cannot be a worksheet name: {why}")]
    BadTitle {
        /// The title given.
        title: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A totals label needs a first column of unsummed text to stand in, and a summed column
    /// for there to be a totals row at all.
    #[error("a totals label needs a first column of unsummed text and some summed column")]
    NoPlaceForTotalsLabel,
    /// More data rows than [`ROWS_MAX`](crate::ROWS_MAX).
    #[error("more than {max} data rows")]
    TooManyRows {
        /// The limit.
        max: usize,
    },
    /// A row has more or fewer cells than the table has columns.
    #[error("data row {row} has {found} cells for {expected} columns")]
    RowLength {
        /// The data row's index from 0.
        row: usize,
        /// How many columns the table has.
        expected: usize,
        /// How many cells the row has.
        found: usize,
    },
    /// A cell's kind is not its column's.
    #[error("{place}: {found} cell in a {expected} column")]
    WrongKind {
        /// The cell.
        place: Place,
        /// What the column holds.
        expected: Kind,
        /// What the cell was, e.g. `"text"`.
        found: &'static str,
    },
    /// An amount in another currency than its column's.
    #[error("{place}: an amount in {found} in a column of {expected}")]
    MixedCurrencies {
        /// The cell.
        place: Place,
        /// The column's currency.
        expected: Currency,
        /// The cell's currency.
        found: Currency,
    },
    /// Text longer than an XLSX cell holds.
    #[error("{place}: {units} UTF-16 units of text, more than the {max} a cell holds")]
    TextTooLong {
        /// Where the text is.
        place: Place,
        /// Its length in UTF-16 code units, as Excel counts.
        units: usize,
        /// The limit.
        max: usize,
    },
    /// Text with a control character other than tab, line feed or carriage return.
    #[error("{place}: control character U+{code:04X} in text")]
    ControlCharacter {
        /// Where the text is.
        place: Place,
        /// The character's code point.
        code: u32,
    },
    /// An integer or an amount's minor units past [`NUMBER_ABS_MAX`](crate::NUMBER_ABS_MAX).
    #[error("{place}: {value} has more than the 15 digits a spreadsheet keeps exactly")]
    NumberOutOfRange {
        /// Where the number is (a data cell, or a column's total).
        place: Place,
        /// The number, in minor units for money; saturated at the `i64` range for a total.
        value: i64,
    },
    /// A date, or a timestamp's UTC date, outside [`DATE_MIN`](crate::DATE_MIN) ..=
    /// [`DATE_MAX`](crate::DATE_MAX).
    #[error("{place}: {date} is outside the dates a spreadsheet shows correctly")]
    DateOutOfRange {
        /// The cell.
        place: Place,
        /// The date (UTC for a timestamp).
        date: NaiveDate,
    },
    /// The `csv` writer failed; writing into memory, only a bug can cause it.
    #[error("writing CSV: {0}")]
    Csv(#[source] ::csv::Error),
    /// The XLSX writer failed; every value was checked beforehand, so only a bug can cause it.
    #[error("writing XLSX: {0}")]
    Xlsx(#[source] rust_xlsxwriter::XlsxError),
}
