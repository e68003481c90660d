//! Decoding helpers shared by every repository: stored text ids and microsecond times
//! become typed values, and anything that fails to decode is [`StoreError::Corrupt`].

use smartticket_core::{IdParseError, Timestamp};

use crate::StoreError;

/// Reads a stored id with its type's `from_db`, mapping failure to [`StoreError::Corrupt`].
pub fn decode_id<T>(text: &str, from_db: impl Fn(&str) -> Result<T, IdParseError>) -> Result<T, StoreError> {
    from_db(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Reads a stored instant (microseconds since the Unix epoch).
pub fn decode_time(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_unix_micros(micros).ok_or_else(|| StoreError::Corrupt(format!("time {micros} µs is out of range")))
}

/// The stored form of an instant.
pub fn encode_time(at: Timestamp) -> i64 {
    at.unix_micros()
}

/// PostgreSQL multi-row statements are cut into chunks of these sizes only (largest
/// first), so the number of distinct statement texts stays small: each is prepared once
/// and reused from the connection's statement cache, and a statement stays well under the
/// 64 KiB a loopback TCP segment holds. Both matter because sqlx 0.9.0 no longer sets
/// TCP_NODELAY (sqlx issue #4335): a new statement's extra round trip, or a message
/// spanning two segments, meets the Nagle/delayed-ACK stall of about 40 ms.
pub const POSTGRES_ROW_CHUNKS: [usize; 4] = [32, 8, 2, 1];

/// SQLite rows per statement: preparing is cheap in-process, so one statement per batch
/// is best; 500 rows of at most 18 columns stay below its 32,766 bound parameters.
pub const SQLITE_ROWS_PER_STATEMENT: usize = 500;

/// Cuts `rows` into chunks of the sizes in [`POSTGRES_ROW_CHUNKS`].
pub fn postgres_chunks<T>(rows: &[T]) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut rest = rows;
    for size in POSTGRES_ROW_CHUNKS {
        while rest.len() >= size {
            let (chunk, tail) = rest.split_at(size);
            chunks.push(chunk);
            rest = tail;
        }
    }
    debug_assert!(rest.is_empty(), "the smallest chunk size is 1");
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_once_in_order_with_few_sizes() {
        for n in 0..300_usize {
            let rows: Vec<usize> = (0..n).collect();
            let chunks = postgres_chunks(&rows);
            let joined: Vec<usize> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(joined, rows);
            assert!(chunks.iter().all(|c| POSTGRES_ROW_CHUNKS.contains(&c.len())));
            assert!(chunks.len() <= n / 32 + 3 + 3 + 1, "{n}: {} chunks", chunks.len());
        }
    }
}
