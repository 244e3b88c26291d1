use std::fmt::Display;
use std::str::FromStr;

use sallyport_core::time::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::StoreError;

/// Parses a stored text column back into its validated type.
pub(super) fn parse<T>(what: impl FnOnce() -> String, text: &str) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: Display,
{
    text.parse().map_err(|e: T::Err| StoreError::Corrupt {
        what: what(),
        why: e.to_string(),
    })
}

/// A comma-separated column into validated values; empty text is an empty list.
pub(super) fn parse_list<T>(what: impl Fn() -> String, text: &str) -> Result<Vec<T>, StoreError>
where
    T: FromStr,
    T::Err: Display,
{
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| parse(&what, s))
        .collect()
}

/// Joins values for a comma-separated column.
pub(super) fn join<T: Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn text(row: &AnyRow, col: &str) -> Result<String, StoreError> {
    Ok(row.try_get::<String, _>(col)?)
}

pub(super) fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>, StoreError> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

pub(super) fn int(row: &AnyRow, col: &str) -> Result<i64, StoreError> {
    Ok(row.try_get::<i64, _>(col)?)
}

pub(super) fn time(row: &AnyRow, col: &str) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_millis(int(row, col)?))
}

pub(super) fn opt_time(row: &AnyRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(row
        .try_get::<Option<i64>, _>(col)?
        .map(Timestamp::from_millis))
}
