//! Registries handed to partners, carriers and banks' back offices, written as CSV and XLSX
//! from one typed [`Table`]. This crate owns the table's validation and both encodings; what
//! goes into a registry (sales, carrier revenue, cash reconciliation) is its caller's business.
//!
//! Every check happens while the table is built, so [`to_csv`] and [`to_xlsx`] see the same
//! valid table and cannot disagree: a value XLSX could not hold exactly (an amount past 15
//! digits, a date before 1900) is refused for both formats, not silently rounded in one.
//!
//! ```
//! use chrono::NaiveDate;
//! use smartticket_core::{Currency, Money};
//! use smartticket_export::{Cell, Column, Table, to_csv, to_xlsx};
//!
//! let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
//! let mut sales = Table::builder(
//!     "Sales 2026-03-01",
//!     vec![
//!         Column::text("partner", "Partner"),
//!         Column::date("day", "Day"),
//!         Column::int("tickets", "Tickets").summed(),
//!         Column::money("revenue", "Revenue, CZK", Currency::CZK).summed(),
//!     ],
//! )?
//! .totals_label("Total")?;
//! sales.push_row(vec![
//!     Cell::text("Kiosk 12"),
//!     Cell::Date(day),
//!     Cell::Int(41),
//!     Cell::Money(Money::new(123_450, Currency::CZK)),
//! ])?;
//! let table = sales.build()?;
//! let csv = to_csv(&table)?;
//! assert_eq!(csv, b"partner,day,tickets,revenue\r\nKiosk 12,2026-03-01,41,1234.50\r\n");
//! let xlsx = to_xlsx(&table)?;
//! assert!(xlsx.starts_with(b"PK"), "an XLSX file is a zip archive");
//! # Ok::<(), smartticket_export::ExportError>(())
//! ```
#![forbid(unsafe_code)]

mod csv;
mod error;
mod table;
mod xlsx;

pub use crate::csv::{neutralise_formula, to_csv};
pub use crate::error::{ExportError, Place};
pub use crate::table::{
    COLUMN_KEY_BYTES_MAX, COLUMNS_MAX, Cell, Column, DATE_MAX, DATE_MIN, Kind, NUMBER_ABS_MAX, ROWS_MAX,
    TEXT_CHARS_MAX, TITLE_CHARS_MAX, Table, TableBuilder,
};
pub use crate::xlsx::to_xlsx;
