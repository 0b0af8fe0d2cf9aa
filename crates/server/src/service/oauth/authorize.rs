//! The authorization endpoint: checking a request, remembered consent, and
//! the approval or denial that answers it.

use secrecy::ExposeSecret;
use uuid::Uuid;

use super::{
    clients, error::OAuthError, error::OAuthResult, resource, secs, Client, GrantType, Resource,
};
use crate::{
    entity::oauth_code,
    error::{Error, Result},
    scope::Scopes,
    service::{
        audit,
        sessions::{self, Session},
    },
    state::AppState,
    store,
    token::{self, Kind},
};

/// The parameters of `GET /oauth/authorize` (also carried by the consent form).
#[derive(Debug, Default, Clone)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub resource: Vec<String>,
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client: Client,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub resources: Vec<Resource>,
    pub state: Option<String>,
    pub code_challenge: String,
}

/// Why an authorization request failed, and where the answer goes.
#[derive(Debug)]
pub enum AuthorizeFailure {
    /// The client or redirect URI is not trustworthy: never redirect, show
    /// the user a page instead.
    Page(OAuthError),
    /// A trustworthy redirect URI gets the error (RFC 6749 §4.1.2.1).
    Redirect(String),
}

impl From<OAuthError> for AuthorizeFailure {
    fn from(e: OAuthError) -> Self {
        AuthorizeFailure::Page(e)
    }
}

impl AuthorizeParams {
    /// The parameters as sent, to carry through the consent form.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let single = [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
        ];
        for (name, value) in single {
            if let Some(v) = value {
                out.push((name, v.clone()));
            }
        }
        for r in &self.resource {
            out.push(("resource", r.clone()));
        }
        out
    }

    /// The same-origin path back to this authorization (after signing in,
    /// or switching account).
    pub fn return_to(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.fields() {
            s.append_pair(k, &v);
        }
        format!("/oauth/authorize?{}", s.finish())
    }
}

/// What the browser sees next at the authorization endpoint.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// Ask the signed-in user to approve or deny the request.
    ShowConsent {
        request: Box<AuthorizeRequest>,
        session: Session,
    },
    /// Back to the client: a code, a denial, or an error its redirect URI
    /// may receive.
    Redirect(String),
    /// Nobody is signed in: the login page, then back to this path.
    Login(String),
    /// The client or redirect URI is not trustworthy: a page, never a
    /// redirect.
    Refused(OAuthError),
    /// The consent form came back without a decision.
    NoDecision,
    /// The server could not answer (its database, most likely).
    Error(Error),
}

/// The user's answer on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

impl From<AuthorizeFailure> for AuthorizeOutcome {
    fn from(f: AuthorizeFailure) -> Self {
        match f {
            AuthorizeFailure::Page(e) => AuthorizeOutcome::Refused(e),
            AuthorizeFailure::Redirect(location) => AuthorizeOutcome::Redirect(location),
        }
    }
}

impl From<Result<String>> for AuthorizeOutcome {
    fn from(r: Result<String>) -> Self {
        match r {
            Ok(location) => AuthorizeOutcome::Redirect(location),
            Err(e) => AuthorizeOutcome::Error(e),
        }
    }
}

/// A valid request and the session of the browser that sent it, or what
/// to answer instead.
async fn checked(
    state: &AppState,
    p: &AuthorizeParams,
    session_cookie: Option<&str>,
) -> std::result::Result<(AuthorizeRequest, Session), AuthorizeOutcome> {
    let valid = validate_authorize(state, p).await?;
    let session = match session_cookie {
        Some(c) => sessions::current(state, c).await,
        None => Ok(None),
    };
    match session {
        Ok(Some(s)) => Ok((valid, s)),
        Ok(None) => Err(AuthorizeOutcome::Login(p.return_to())),
        Err(e) => Err(AuthorizeOutcome::Error(e)),
    }
}

/// `GET /oauth/authorize`: a consent the user already gave (for at least
/// these scopes) is approved without asking again.
pub async fn authorize(
    state: &AppState,
    p: &AuthorizeParams,
    session_cookie: Option<&str>,
) -> AuthorizeOutcome {
    let (valid, session) = match checked(state, p, session_cookie).await {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    match consent_remembered(state, session.user_id, &valid).await {
        Ok(true) => approve(state, session.user_id, &valid).await.into(),
        Ok(false) => AuthorizeOutcome::ShowConsent {
            request: Box::new(valid),
            session,
        },
        Err(e) => AuthorizeOutcome::Error(e),
    }
}

/// `POST /oauth/authorize`: the user's decision on the consent page; the
/// request is checked again, as it came back through the browser.
pub async fn decide(
    state: &AppState,
    p: &AuthorizeParams,
    session_cookie: Option<&str>,
    decision: Option<Decision>,
) -> AuthorizeOutcome {
    let (valid, session) = match checked(state, p, session_cookie).await {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    match decision {
        Some(Decision::Approve) => approve(state, session.user_id, &valid).await.into(),
        Some(Decision::Deny) => AuthorizeOutcome::Redirect(deny(state, &valid)),
        None => AuthorizeOutcome::NoDecision,
    }
}

/// The redirect URL carrying `params` and `iss` (RFC 9207).
pub fn redirect_with(
    state: &AppState,
    redirect_uri: &str,
    params: &[(&str, &str)],
    oauth_state: Option<&str>,
) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return redirect_uri.to_owned();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = oauth_state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &state.config.public_url);
    }
    url.to_string()
}

/// Check an authorization request, in the order RFC 6749 requires: first
/// what decides whether redirecting is safe (client, redirect URI), then the
/// rest, whose errors go back to the client.
async fn validate_authorize(
    state: &AppState,
    p: &AuthorizeParams,
) -> std::result::Result<AuthorizeRequest, AuthorizeFailure> {
    let client_id = p
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
    let client = clients::find(state, client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("unknown client_id"))?;
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            crate::error::OAuthCode::UnauthorizedClient,
            "this client may not use the authorization code grant",
        )
        .into());
    }
    let redirect_uri = client
        .resolve_redirect(p.redirect_uri.as_deref())
        .ok_or_else(|| {
            OAuthError::invalid_request(if p.redirect_uri.is_some() {
                "redirect_uri does not match any URI registered for this client"
            } else {
                "redirect_uri is required when a client registered several"
            })
        })?;
    let st = p.state.clone();
    let fail = |e: OAuthError| {
        AuthorizeFailure::Redirect(redirect_with(
            state,
            &redirect_uri,
            &[
                ("error", e.wire_code()),
                ("error_description", &e.description),
            ],
            st.as_deref(),
        ))
    };
    if p.state.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(fail(OAuthError::invalid_request(
            "state longer than 1024 characters",
        )));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(fail(OAuthError::invalid_request(
                "response_type is required",
            )))
        }
        Some(_) => {
            return Err(fail(OAuthError::new(
                crate::error::OAuthCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )))
        }
    }
    let challenge = p.code_challenge.as_deref().ok_or_else(|| {
        fail(OAuthError::invalid_request(
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        ))
    })?;
    if p.code_challenge_method.as_deref() != Some("S256") {
        return Err(fail(OAuthError::invalid_request(
            "code_challenge_method must be S256 (plain is not accepted)",
        )));
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(fail(OAuthError::invalid_request(
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        )));
    }
    let scopes = requested_scopes(p.scope.as_deref(), &client.scopes).map_err(fail)?;
    let resources = resource::parse(state, &p.resource).map_err(fail)?;
    Ok(AuthorizeRequest {
        client,
        redirect_uri,
        scopes,
        resources,
        state: p.state.clone(),
        code_challenge: challenge.to_owned(),
    })
}

/// The scopes of a request: those asked for (each allowed to the client),
/// or all the client's scopes when none are.
pub(super) fn requested_scopes(scope: Option<&str>, allowed: &Scopes) -> OAuthResult<Scopes> {
    // `offline_access` alone asks for nothing more than the defaults.
    match crate::scope::requested(scope).as_deref() {
        None => Ok(allowed.clone()),
        Some(s) => {
            let asked = Scopes::parse_space_separated(s)
                .map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            let missing = allowed.missing_from(&asked);
            if missing.is_empty() {
                Ok(asked)
            } else {
                Err(OAuthError::invalid_scope(format!(
                    "this client may not request {}",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                )))
            }
        }
    }
}

/// True when the user already approved these scopes for this client.
async fn consent_remembered(
    state: &AppState,
    user_id: Uuid,
    req: &AuthorizeRequest,
) -> Result<bool> {
    let Some(consent) = store::oauth::find_consent(&state.db, user_id, &req.client.id).await?
    else {
        return Ok(false);
    };
    let granted = Scopes::parse_space_separated(&consent.scopes).unwrap_or_default();
    Ok(granted.missing_from(&req.scopes).is_empty())
}

/// The user approved: remember the consent, issue a code, and return the
/// redirect URL carrying it.
async fn approve(state: &AppState, user_id: Uuid, req: &AuthorizeRequest) -> Result<String> {
    let now = state.clock.now();
    let code = token::generate(Kind::AuthorizationCode);
    let txn = crate::db::begin_write(&state.db).await?;
    let remembered = store::oauth::find_consent(&txn, user_id, &req.client.id).await?;
    let mut granted: Vec<_> = remembered
        .and_then(|c| Scopes::parse_space_separated(&c.scopes).ok())
        .map(|s| s.names())
        .unwrap_or_default();
    granted.extend(req.scopes.names());
    let granted =
        Scopes::parse(granted).map_err(|e| Error::caused_by("remembered consent scopes", e))?;
    store::oauth::upsert_consent(
        &txn,
        user_id,
        &req.client.id,
        &granted.to_space_separated(),
        now,
    )
    .await?;
    store::oauth::insert_code(
        &txn,
        oauth_code::Model {
            id: code.id.clone(),
            secret_hash: code.hash.to_vec(),
            client_id: req.client.id.clone(),
            user_id,
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.to_space_separated(),
            resources: resource::join(&req.resources),
            code_challenge: req.code_challenge.clone(),
            created_at: now,
            expires_at: now + secs(state.config.authorization_code_ttl_secs),
            consumed_at: None,
        },
    )
    .await?;
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id,
            action: audit::AuditAction::OAuthConsentGranted,
            credential_id: None,
            target: Some(&req.client.id),
            details: serde_json::json!({
                "client_id": req.client.id,
                "client_name": req.client.name,
                "scopes": req.scopes.names(),
                "resources": resource::uris(state, &req.resources),
            }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(redirect_with(
        state,
        &req.redirect_uri,
        &[("code", code.key.expose_secret())],
        req.state.as_deref(),
    ))
}

/// The user denied: the redirect URL carrying `access_denied`.
fn deny(state: &AppState, req: &AuthorizeRequest) -> String {
    redirect_with(
        state,
        &req.redirect_uri,
        &[
            ("error", "access_denied"),
            ("error_description", "The user denied the request."),
        ],
        req.state.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    /// A server on a fresh SQLite database, one user signed in (the session
    /// cookie) and one public client redirecting to `https://app.example/cb`
    /// that may ask for `memories:read memories:write`.
    async fn setup() -> (tempfile::TempDir, AppState, SecretString, String) {
        let (dir, state) = crate::service::oauth::test_state(|_| {}).await;
        let user_id = Uuid::now_v7();
        store::users::insert(
            &state.db,
            store::users::NewUser {
                id: user_id,
                name: Some("Ada".into()),
                email: Some("ada@example.com".into()),
                password_hash: None,
                created_at: state.clock.now(),
            },
        )
        .await
        .unwrap();
        let user = store::users::find(&state.db, user_id)
            .await
            .unwrap()
            .unwrap();
        let (cookie, _) = sessions::open(&state, &user, serde_json::json!({}))
            .await
            .unwrap();
        let client = clients::register(
            &state,
            clients::Registration {
                redirect_uris: vec!["https://app.example/cb".into()],
                token_endpoint_auth_method: Some("none".into()),
                scope: Some("memories:read memories:write".into()),
                ..Default::default()
            },
            clients::ClientKind::Dynamic,
            None,
        )
        .await
        .unwrap();
        (dir, state, cookie, client.client.id)
    }

    fn params(client_id: &str) -> AuthorizeParams {
        AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some(client_id.into()),
            scope: Some("memories:read".into()),
            state: Some("xyz".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            code_challenge_method: Some("S256".into()),
            ..Default::default()
        }
    }

    fn redirect(outcome: AuthorizeOutcome) -> url::Url {
        match outcome {
            AuthorizeOutcome::Redirect(location) => url::Url::parse(&location).unwrap(),
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    fn query(url: &url::Url, name: &str) -> Option<String> {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    #[tokio::test]
    async fn authorize_outcomes_follow_the_request_the_session_and_the_consent() {
        let (_dir, state, cookie, client_id) = setup().await;
        let cookie = Some(cookie.expose_secret());

        // An unknown client: a page, never a redirect.
        match authorize(&state, &params("mcpg_ci_unknown"), cookie).await {
            AuthorizeOutcome::Refused(e) => {
                assert_eq!(e.code, crate::error::OAuthCode::InvalidClient)
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // A known client and redirect URI: errors go back to the client.
        let bad = AuthorizeParams {
            code_challenge_method: Some("plain".into()),
            ..params(&client_id)
        };
        let to = redirect(authorize(&state, &bad, cookie).await);
        assert_eq!(query(&to, "error").as_deref(), Some("invalid_request"));
        assert_eq!(query(&to, "state").as_deref(), Some("xyz"));

        // Signed out: the login page, coming back to this request.
        let p = params(&client_id);
        match authorize(&state, &p, None).await {
            AuthorizeOutcome::Login(back) => {
                assert_eq!(back, p.return_to());
                assert!(back.starts_with("/oauth/authorize?response_type=code&client_id="));
            }
            other => panic!("expected the login page, got {other:?}"),
        }
        match authorize(&state, &p, Some("not a session")).await {
            AuthorizeOutcome::Login(_) => {}
            other => panic!("expected the login page, got {other:?}"),
        }

        // Signed in, no consent yet: ask.
        match authorize(&state, &p, cookie).await {
            AuthorizeOutcome::ShowConsent { request, session } => {
                assert_eq!(request.client.id, client_id);
                assert_eq!(request.redirect_uri, "https://app.example/cb");
                assert_eq!(session.email.as_deref(), Some("ada@example.com"));
            }
            other => panic!("expected the consent page, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_decision_redirects_and_a_remembered_consent_skips_the_page() {
        let (_dir, state, cookie, client_id) = setup().await;
        let cookie = Some(cookie.expose_secret());
        let p = params(&client_id);

        match decide(&state, &p, cookie, None).await {
            AuthorizeOutcome::NoDecision => {}
            other => panic!("expected no decision, got {other:?}"),
        }
        match decide(&state, &p, None, Some(Decision::Approve)).await {
            AuthorizeOutcome::Login(back) => assert_eq!(back, p.return_to()),
            other => panic!("expected the login page, got {other:?}"),
        }
        let denied = redirect(decide(&state, &p, cookie, Some(Decision::Deny)).await);
        assert_eq!(query(&denied, "error").as_deref(), Some("access_denied"));
        assert_eq!(query(&denied, "code"), None);

        let approved = redirect(decide(&state, &p, cookie, Some(Decision::Approve)).await);
        assert_eq!(approved.host_str(), Some("app.example"));
        assert!(query(&approved, "code").is_some_and(|c| c.starts_with("mcpg_ac_")));
        assert_eq!(query(&approved, "state").as_deref(), Some("xyz"));

        // The consent is remembered: the next request is approved at once.
        let again = redirect(authorize(&state, &p, cookie).await);
        assert!(query(&again, "code").is_some_and(|c| c.starts_with("mcpg_ac_")));
        // Asking for more than was approved asks again.
        let more = AuthorizeParams {
            scope: Some("memories:read memories:write".into()),
            ..p.clone()
        };
        match authorize(&state, &more, cookie).await {
            AuthorizeOutcome::ShowConsent { request, .. } => {
                assert_eq!(request.scopes.names(), ["memories:read", "memories:write"]);
            }
            other => panic!("expected the consent page, got {other:?}"),
        }
    }

    #[test]
    fn requested_scopes_stay_within_the_client() {
        let allowed = Scopes::parse(["memories:read", "memories:write"]).unwrap();
        assert_eq!(requested_scopes(None, &allowed).unwrap(), allowed);
        assert_eq!(
            requested_scopes(Some("memories:read"), &allowed)
                .unwrap()
                .names(),
            ["memories:read"]
        );
        assert_eq!(
            requested_scopes(Some("keys:write"), &allowed)
                .unwrap_err()
                .code,
            crate::error::OAuthCode::InvalidScope
        );
        assert_eq!(
            requested_scopes(Some("nope"), &allowed).unwrap_err().code,
            crate::error::OAuthCode::InvalidScope
        );
    }
}
