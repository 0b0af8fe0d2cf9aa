//! Errors of the OAuth protocol endpoints, in RFC 6749 terms
//! (`{"error", "error_description"}`). The HTTP edge picks the status from
//! the typed code.

use crate::error::{Error, OAuthCode};

/// An OAuth protocol error: a registered code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: OAuthCode,
    pub description: String,
    /// Seconds until a rate-limited client may retry (`slow_down`).
    pub retry_after: Option<u64>,
    /// A domain conflict that keeps its own code on the wire (an
    /// `Idempotency-Key` of an owner's registration): the edge answers 409
    /// with this code instead of `code`.
    pub conflict: Option<&'static str>,
}

impl OAuthError {
    pub fn new(code: OAuthCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
            conflict: None,
        }
    }

    /// The code as sent: the OAuth one, or a conflict's own.
    pub fn wire_code(&self) -> &'static str {
        self.conflict.unwrap_or(self.code.as_str())
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidGrant, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidScope, d)
    }
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidTarget, d)
    }
    pub fn invalid_client_metadata(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidClientMetadata, d)
    }
    pub fn invalid_redirect_uri(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidRedirectUri, d)
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.wire_code(), self.description)
    }
}

/// Domain errors reaching an OAuth endpoint, through the one public
/// rendering ([`Error::public`]): outages and rate limits keep their
/// meaning, a field error is `invalid_request`, a conflict keeps its code,
/// anything else is a `server_error`. The cause is logged, never sent.
impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        let public = e.into_public();
        let mut out = match public.oauth_code() {
            Some(code) => Self::new(code, public.message),
            None => Self {
                conflict: Some(public.code),
                ..Self::invalid_request(public.message)
            },
        };
        out.retry_after = public.retry_after;
        out
    }
}

impl From<sea_orm::DbErr> for OAuthError {
    fn from(e: sea_orm::DbErr) -> Self {
        Error::from(e).into()
    }
}

pub type OAuthResult<T> = std::result::Result<T, OAuthError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_keep_their_public_meaning() {
        let e = OAuthError::from(Error::validation("scope", "is too long"));
        assert_eq!(e.code, OAuthCode::InvalidRequest);
        assert_eq!(
            e.description,
            Error::validation("scope", "is too long").public().message
        );
        let e = OAuthError::from(Error::RateLimited {
            kind: "IP",
            retry_after_secs: 3,
        });
        assert_eq!((e.code, e.retry_after), (OAuthCode::SlowDown, Some(3)));
        let e = OAuthError::from(Error::Conflict {
            code: "idempotency_key_reused",
            message: "another body".into(),
        });
        assert_eq!(e.wire_code(), "idempotency_key_reused");
        let e = OAuthError::from(Error::caused_by("a secret cause", std::fmt::Error));
        assert_eq!(e.code, OAuthCode::ServerError);
        assert!(!e.description.contains("secret"), "{}", e.description);
    }
}
