//! Field checks shared by the services. Each failure names its field.

use crate::error::{Error, Result};

/// Display names of accounts and keys.
pub const NAME_MAX_CHARS: usize = 100;
/// RFC 5321's limit on a forward path.
pub const EMAIL_MAX_CHARS: usize = 254;

/// Trim `value` and check it is 1..=max characters without control characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::validation(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(Error::validation(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::validation(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// Optional text: `None` stays `None`; present values follow [`text`].
pub fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    value.map(|v| text(field, v, max)).transpose()
}

/// A plausible email address, trimmed and lower-cased.
pub fn email(field: &str, value: &str) -> Result<String> {
    let value = text(field, value, EMAIL_MAX_CHARS)?.to_lowercase();
    let invalid = || Error::validation(field, "must be an email address like name@example.com");
    let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
        || value.chars().any(char::is_whitespace)
        // RFC 5321's limits, which the spec's `format: email` implies.
        || local.chars().count() > 64
        || domain.split('.').any(|label| label.chars().count() > 63)
    {
        return Err(invalid());
    }
    Ok(value)
}

/// An integer within `range`.
pub fn range(field: &str, value: i64, min: i64, max: i64) -> Result<i64> {
    if value < min || value > max {
        return Err(Error::validation(
            field,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(Error::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn text_rules() {
        assert_eq!(text("name", "  ci  ", 10).unwrap(), "ci");
        assert_eq!(field_of(text("name", "   ", 10)), "name");
        assert_eq!(field_of(text("name", "abcdefghijk", 10)), "name");
        assert_eq!(text("name", "ééééé", 5).unwrap(), "ééééé");
        assert_eq!(field_of(text("name", "a\u{0}b", 10)), "name");
    }

    #[test]
    fn email_rules() {
        assert_eq!(
            email("email", " Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a@b@c.d",
            "a b@c.d",
            "a@.c",
            "a@c..d",
            &format!("{}@example.com", "l".repeat(65)),
            &format!("a@{}.com", "d".repeat(64)),
        ] {
            assert_eq!(field_of(email("email", bad)), "email", "{bad}");
        }
    }
}
