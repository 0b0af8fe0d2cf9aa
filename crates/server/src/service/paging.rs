//! Keyset paging shared by every listing: a `limit` within bounds, and an
//! opaque cursor naming the last row served (base64url of `<kind>:<seq>`), so
//! pages stay stable while rows are added.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use super::validate;
use crate::error::{Error, Result};

/// The page size: `value` or `default`, within 1..=`max` (else 400 `limit`).
pub fn limit(value: Option<i64>, default: i64, max: i64) -> Result<u64> {
    Ok(validate::range("limit", value.unwrap_or(default), 1, max)? as u64)
}

fn encode(kind: &str, seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{seq}"))
}

/// The sequence number a cursor of `kind` points after (else 400 `cursor`).
pub fn decode(kind: &str, cursor: &str) -> Result<i64> {
    let invalid = || Error::validation("cursor", "is not a cursor returned by this API");
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(invalid)
}

/// Cut rows fetched with `limit + 1` to the page, with the cursor of the next
/// page when there is one.
pub fn split<T>(
    mut rows: Vec<T>,
    limit: u64,
    kind: &str,
    seq: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<String>) {
    if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        let next = rows.last().map(|r| encode(kind, seq(r)));
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_kind_specific() {
        let (page, next) = split(vec![9, 8, 7], 2, "m1", |n| *n);
        assert_eq!(page, [9, 8]);
        let next = next.unwrap();
        assert_eq!(decode("m1", &next).unwrap(), 8);
        assert!(decode("a", &next).is_err());
        assert!(decode("m1", "bogus").is_err());
        assert_eq!(split(vec![1], 2, "m1", |n| *n).1, None);
        assert!(limit(Some(0), 20, 100).is_err());
        assert_eq!(limit(None, 20, 100).unwrap(), 20);
    }
}
