//! Form and query parameters of the OAuth endpoints and the pages. RFC 6749
//! §3.1: a parameter sent more than once is an error (except `resource`,
//! RFC 8707). Text is text: a NUL character in any name or value is refused
//! here, before anything is stored or queried (Postgres cannot hold one in
//! `text`, and no field of ours means one).

use crate::service::oauth::OAuthError;

/// Largest form body accepted by the OAuth endpoints and pages.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parse `application/x-www-form-urlencoded` text (a body or a query
    /// string); `invalid_request` naming the parameter when a name or a
    /// value holds a NUL character.
    pub fn parse(encoded: &[u8]) -> Result<Self, OAuthError> {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(encoded).into_owned().collect();
        if let Some((name, _)) = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(nul_refused(name));
        }
        Ok(Self(pairs))
    }

    /// No parameters.
    pub fn empty() -> Self {
        Self(Vec::new())
    }

    /// The single value of `name`, if present and not empty.
    pub fn one(&self, name: &str) -> Result<Option<String>, OAuthError> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(OAuthError::invalid_request(format!(
                "{name} was sent more than once"
            )));
        }
        Ok(first.filter(|v| !v.is_empty()).cloned())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// `invalid_request`: parameter `field` holds a NUL character. The name is shown escaped and shortened, since it
/// may itself be the odd text.
pub fn nul_refused(field: &str) -> OAuthError {
    let shown: String = field.chars().take(60).collect::<String>();
    OAuthError::invalid_request(format!(
        "{} must not contain a NUL character",
        shown.escape_debug()
    ))
}

/// Read a form body (`application/x-www-form-urlencoded`, at most
/// [`MAX_FORM_BYTES`]).
pub async fn read_form(req: &poem::Request, body: poem::Body) -> Result<Params, OAuthError> {
    let content_type = req
        .headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.split(';').next().is_some_and(|t| {
        t.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    }) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = body.into_bytes_limit(MAX_FORM_BYTES).await.map_err(|_| {
        OAuthError::invalid_request(format!("the body must be at most {MAX_FORM_BYTES} bytes"))
    })?;
    Params::parse(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_refused_in_names_and_values() {
        for (input, named) in [
            (&b"client_id=a%00b"[..], "client_id"),
            (b"email=x&password=%00", "password"),
            (b"a%00b=1", "a\\0b"),
            (b"grant_type=x&scope=a\0b", "scope"),
        ] {
            let e = Params::parse(input).err().expect("refused");
            assert_eq!(e.code, crate::error::OAuthCode::InvalidRequest);
            assert_eq!(
                e.description,
                format!("{named} must not contain a NUL character"),
                "{input:?}"
            );
        }
        // Anything else is text: control characters, escapes that merely
        // spell a NUL, invalid UTF-8 (replaced).
        let p = Params::parse(b"a=%01%0A&b=%2500&c=%FF").expect("accepted");
        assert_eq!(p.one("a").unwrap().as_deref(), Some("\u{1}\n"));
        assert_eq!(p.one("b").unwrap().as_deref(), Some("%00"));
        assert_eq!(p.one("c").unwrap().as_deref(), Some("\u{FFFD}"));
    }
}
