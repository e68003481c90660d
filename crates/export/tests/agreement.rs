//! For random tables, CSV read back with `csv` and XLSX read back with `calamine` agree
//! with the table, and so with each other, cell by cell: the promise this crate exists for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use calamine::{Data, DataType};
use chrono::{NaiveDate, SubsecRound};
use common::{read_csv, read_xlsx, xlsx_cell};
use proptest::prelude::*;
use smartticket_core::{Currency, Money, Timestamp};
use smartticket_export::{
    Cell, Column, DATE_MAX, DATE_MIN, ExportError, Kind, NUMBER_ABS_MAX, Table, neutralise_formula, to_csv, to_xlsx,
};

const KEYS: [&str; 6] = ["c0", "c1", "c2", "c3", "c4", "c5"];

fn currency() -> impl Strategy<Value = Currency> {
    // Two, zero and three minor digits.
    prop_oneof![
        Just(Currency::CZK),
        Just(Currency::from_code("JPY").unwrap()),
        Just(Currency::from_code("BHD").unwrap()),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Text), Just(Kind::Int), currency().prop_map(Kind::Money), Just(Kind::Date), Just(Kind::Time)]
}

fn number() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -NUMBER_ABS_MAX..=NUMBER_ABS_MAX,
        2 => -1_000_i64..=1_000,
        1 => Just(NUMBER_ABS_MAX),
        1 => Just(-NUMBER_ABS_MAX),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Formula triggers, CSV specials, whitespace, non-ASCII and astral characters.
        6 => "[=+@\\-\t\r\n\",' a-zA-Z0-9čřж€😀]{0,12}",
        // Looks like the escapes XLSX uses for control characters; must stay literal.
        1 => Just("_x000D_".to_owned()),
        1 => Just("  ".to_owned()),
    ]
}

fn date() -> impl Strategy<Value = NaiveDate> {
    let days = |d: NaiveDate| d.signed_duration_since(NaiveDate::MIN).num_days();
    (days(DATE_MIN)..=days(DATE_MAX)).prop_map(|n| NaiveDate::MIN + chrono::Duration::days(n))
}

fn instant() -> impl Strategy<Value = Timestamp> {
    let first = DATE_MIN.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros();
    let last = DATE_MAX.and_hms_micro_opt(23, 59, 59, 999_999).unwrap().and_utc().timestamp_micros();
    (first..=last).prop_map(|micros| Timestamp::from_unix_micros(micros).unwrap())
}

fn value(kind: Kind) -> BoxedStrategy<Cell> {
    match kind {
        Kind::Text => text().prop_map(Cell::Text).boxed(),
        Kind::Int => number().prop_map(Cell::Int).boxed(),
        Kind::Money(currency) => number().prop_map(move |n| Cell::Money(Money::new(n, currency))).boxed(),
        Kind::Date => date().prop_map(Cell::Date).boxed(),
        Kind::Time => instant().prop_map(Cell::Time).boxed(),
        _ => unreachable!("a kind this test does not know"),
    }
}

fn cell(kind: Kind) -> impl Strategy<Value = Cell> {
    prop_oneof![1 => Just(Cell::Empty), 5 => value(kind)]
}

/// Columns (kind, summed) and rows of cells fitting them.
fn table() -> impl Strategy<Value = (Vec<(Kind, bool)>, Vec<Vec<Cell>>)> {
    prop::collection::vec((kind(), any::<bool>()), 1..=KEYS.len()).prop_flat_map(|columns| {
        let row: Vec<_> = columns.iter().map(|(kind, _)| cell(*kind)).collect();
        (Just(columns), prop::collection::vec(row, 0..8))
    })
}

fn build(columns: &[(Kind, bool)], rows: &[Vec<Cell>]) -> Result<Table, ExportError> {
    let columns = KEYS
        .iter()
        .zip(columns)
        .map(|(key, (kind, summed))| {
            let column = Column::new(key, format!("Title of {key}"), *kind);
            if *summed && matches!(kind, Kind::Int | Kind::Money(_)) { column.summed() } else { column }
        })
        .collect();
    let mut builder = Table::builder("Random", columns)?;
    for row in rows {
        builder.push_row(row.clone())?;
    }
    builder.build()
}

/// The CSV field for `cell`, written from core's own formatting rather than the crate's.
fn expected_csv(cell: &Cell) -> String {
    match cell {
        Cell::Text(text) => neutralise_formula(text).into_owned(),
        Cell::Int(n) => n.to_string(),
        Cell::Money(money) => money.to_string().trim_end_matches(money.currency.code()).trim_end().to_owned(),
        Cell::Date(date) => date.to_string(),
        Cell::Time(at) => at.to_rfc3339(),
        Cell::Empty => String::new(),
        _ => unreachable!(),
    }
}

/// `csv` and `xlsx` both hold `cell`.
fn agree(cell: &Cell, csv: &str, xlsx: &Data) -> Result<(), TestCaseError> {
    prop_assert_eq!(csv, expected_csv(cell), "CSV for {:?}", cell);
    match cell {
        Cell::Empty => prop_assert_eq!(xlsx, &Data::Empty),
        Cell::Text(text) if text.is_empty() => prop_assert_eq!(xlsx, &Data::Empty),
        Cell::Text(text) => prop_assert_eq!(xlsx, &Data::String(text.clone())),
        Cell::Int(n) => {
            prop_assert_eq!(xlsx, &Data::Float(*n as f64));
            prop_assert_eq!(csv.parse::<i64>().unwrap(), *n);
        }
        Cell::Money(money) => {
            let Data::Float(major) = xlsx else { return Err(TestCaseError::fail(format!("{xlsx:?}"))) };
            let digits = money.currency.minor_digits() as usize;
            prop_assert_eq!(format!("{major:.digits$}"), csv, "the double rounds back to the CSV's decimal");
            prop_assert_eq!(Money::parse_major(csv, money.currency).unwrap(), *money);
        }
        Cell::Date(date) => {
            prop_assert!(xlsx.is_datetime(), "{:?}", xlsx);
            prop_assert_eq!(xlsx.as_date(), Some(*date));
        }
        Cell::Time(at) => {
            prop_assert!(xlsx.is_datetime(), "{:?}", xlsx);
            prop_assert_eq!(Timestamp::parse_rfc3339(csv).unwrap(), *at, "CSV keeps microseconds");
            let to_the_milli = at.datetime().naive_utc().trunc_subsecs(3);
            prop_assert_eq!(xlsx.as_datetime(), Some(to_the_milli), "XLSX keeps milliseconds");
        }
        _ => unreachable!(),
    }
    Ok(())
}

/// A column's total, summed here independently of the crate.
fn expected_total<'a>(column: &(Kind, bool), cells: impl Iterator<Item = &'a Cell>) -> Cell {
    let sum: i64 = cells
        .map(|cell| match cell {
            Cell::Int(n) => *n,
            Cell::Money(money) => money.amount_minor,
            _ => 0,
        })
        .sum();
    match column {
        (Kind::Int, true) => Cell::Int(sum),
        (Kind::Money(currency), true) => Cell::Money(Money::new(sum, *currency)),
        _ => Cell::Empty,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn csv_and_xlsx_agree_cell_by_cell((columns, rows) in table()) {
        let table = match build(&columns, &rows) {
            Ok(table) => table,
            // Two 15-digit amounts in a summed column; refusals are tested elsewhere.
            Err(ExportError::NumberOutOfRange { .. }) => return Err(TestCaseError::reject("total out of range")),
            Err(other) => return Err(TestCaseError::fail(other.to_string())),
        };
        let records = read_csv(&to_csv(&table).unwrap());
        let (_, range) = read_xlsx(&to_xlsx(&table).unwrap());

        prop_assert_eq!(records.len(), 1 + rows.len(), "header and data, no totals in CSV");
        for (index, column) in table.columns().iter().enumerate() {
            prop_assert_eq!(&records[0][index], column.key);
            prop_assert_eq!(xlsx_cell(&range, 0, index), Data::String(column.title.clone()));
        }
        for (number, (row, record)) in rows.iter().zip(&records[1..]).enumerate() {
            prop_assert_eq!(record.len(), row.len());
            for (index, (cell, field)) in row.iter().zip(record).enumerate() {
                agree(cell, field, &xlsx_cell(&range, number + 1, index))?;
            }
        }
        if let Some(totals) = table.totals() {
            for (index, total) in totals.iter().enumerate() {
                prop_assert_eq!(total, &expected_total(&columns[index], rows.iter().map(|row| &row[index])));
                let xlsx = xlsx_cell(&range, rows.len() + 1, index);
                agree(total, &expected_csv(total), &xlsx)?;
            }
        } else {
            for index in 0..columns.len() {
                prop_assert_eq!(xlsx_cell(&range, rows.len() + 1, index), Data::Empty, "nothing below the data");
            }
        }
    }
}
