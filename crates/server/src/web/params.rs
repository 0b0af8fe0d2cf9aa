//! Form and query parameters of the OAuth endpoints. RFC 6749 §3.1: a
//! parameter sent more than once is an error (except `resource`, RFC 8707).

use crate::service::oauth::OAuthError;

/// Largest form body accepted by the OAuth endpoints and pages.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(encoded: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(encoded).into_owned().collect())
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
    Ok(Params::parse(&bytes))
}
