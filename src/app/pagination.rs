//! Cursor pagination shared by the list endpoints.
//!
//! A cursor is opaque to clients: base64url of `{"sort", "value", "id"}`, naming the last row
//! of the previous page. It is only valid with the sort it was made for.

use crate::domain::Validation;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cursor {
    pub sort: String,
    pub value: String,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(raw: &str) -> Result<Self, String> {
        URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| "is not a cursor returned by this API".to_owned())
    }
}

/// `limit` from the query string: 1..=200, default 50.
pub fn parse_limit(v: &mut Validation, raw: Option<&str>) -> i64 {
    let Some(raw) = raw else { return DEFAULT_LIMIT };
    v.check("/query/limit", raw, |s| match s.parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!(
            "must be an integer from 1 to {MAX_LIMIT}, not '{s}'"
        )),
    })
    .unwrap_or(DEFAULT_LIMIT)
}

/// `cursor` from the query string, checked against the sort in force.
pub fn parse_cursor(v: &mut Validation, raw: Option<&str>, sort: &str) -> Option<Cursor> {
    let cursor = v.check("/query/cursor", raw?, Cursor::decode)?;
    if cursor.sort != sort {
        v.push(
            "/query/cursor",
            format!("was made for sort '{}', not '{sort}'", cursor.sort),
        );
        return None;
    }
    Some(cursor)
}

/// Trims a `limit + 1` fetch to `limit` rows and makes the cursor for the next page.
pub fn page<T>(
    mut rows: Vec<T>,
    limit: i64,
    sort: &str,
    key: impl Fn(&T) -> (String, Uuid),
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return (rows, None);
    }
    rows.truncate(limit);
    let next = rows.last().map(|last| {
        let (value, id) = key(last);
        Cursor {
            sort: sort.to_owned(),
            value,
            id,
        }
        .encode()
    });
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            sort: "name".to_owned(),
            value: "Depot 7".to_owned(),
            id: Uuid::nil(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        assert!(Cursor::decode("not-a-cursor").is_err());
    }

    #[test]
    fn page_cuts_at_the_limit() {
        let rows: Vec<u8> = vec![1, 2, 3];
        let (items, next) = page(rows.clone(), 3, "name", |r| (r.to_string(), Uuid::nil()));
        assert_eq!((items.len(), next), (3, None));
        let (items, next) = page(rows, 2, "name", |r| (r.to_string(), Uuid::nil()));
        assert_eq!(items, vec![1, 2]);
        assert_eq!(Cursor::decode(&next.unwrap()).unwrap().value, "2");
    }
}
