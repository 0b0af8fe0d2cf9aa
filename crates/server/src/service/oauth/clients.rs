//! OAuth clients: dynamic registration (RFC 7591), operator registration,
//! Client ID Metadata Documents, and the redirect-URI rules.
//!
//! Redirect URIs are compared exactly, except that a loopback redirect
//! (`http://127.0.0.1`, `http://[::1]`, `http://localhost`) matches on any
//! port (RFC 8252 §7.3). `https` is accepted for any host, `http` only for
//! loopback, private-use schemes (`cursor://`, `vscode://`, ...) as given;
//! `javascript:`, `data:` and similar never.

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::error::{OAuthError, OAuthResult};
use crate::{
    entity::oauth_client,
    scope::Scopes,
    state::AppState,
    store,
    token::{self, Kind},
    vocabulary::vocabulary,
};

/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;
/// Longest client id URL of a metadata document.
pub const MAX_METADATA_URL_LEN: usize = 512;

vocabulary! {
    /// How a client was registered.
    pub enum ClientKind ("client kind") {
        /// `POST /oauth/register`: unverified, shown with a warning.
        Dynamic = "dynamic",
        /// `mcpgate admin clients create`: trusted by the operator.
        Operator = "operator",
        /// An https `client_id` whose metadata document was fetched.
        MetadataDocument = "metadata_document",
    }
}

vocabulary! {
    /// How a client authenticates at the token endpoint
    /// (`token_endpoint_auth_method`, RFC 7591).
    pub enum AuthMethod ("token endpoint auth method") {
        /// A public client: no secret.
        None = "none",
        /// The secret in an HTTP Basic `Authorization` header.
        ClientSecretBasic = "client_secret_basic",
        /// The secret in the form body.
        ClientSecretPost = "client_secret_post",
    }
}

vocabulary! {
    /// An OAuth grant type (RFC 6749) a client may use.
    pub enum GrantType ("grant type") {
        AuthorizationCode = "authorization_code",
        RefreshToken = "refresh_token",
        ClientCredentials = "client_credentials",
    }
}

/// A registered client. Never holds a plaintext secret.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    pub scopes: Scopes,
    pub grant_types: Vec<GrantType>,
    pub auth_method: AuthMethod,
    pub owner_user_id: Option<Uuid>,
    /// The API key that registered an owned client.
    pub owner_key_id: Option<String>,
    pub client_uri: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    secret_hash: Option<Vec<u8>>,
}

impl Client {
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Constant-time check of a presented client secret.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_hash {
            Some(hash) => token::hashes_match(&token::hash_secret(presented), hash),
            None => false,
        }
    }

    /// The redirect URI of a request: the registered one it matches, or the
    /// only registered one when none was sent.
    pub fn resolve_redirect(&self, presented: Option<&str>) -> Option<String> {
        match presented {
            Some(p) => self
                .redirect_uris
                .iter()
                .any(|r| redirect_matches(r, p))
                .then(|| p.to_owned()),
            None if self.redirect_uris.len() == 1 => Some(self.redirect_uris[0].clone()),
            None => None,
        }
    }

    fn from_row(row: oauth_client::Model) -> OAuthResult<Self> {
        let internal = |what: &str, e: &dyn std::fmt::Display| {
            OAuthError::from(crate::error::Error::Internal(format!(
                "client {} {what}: {e}",
                row.id
            )))
        };
        let redirect_uris: Vec<String> =
            serde_json::from_str(&row.redirect_uris).map_err(|e| internal("redirect_uris", &e))?;
        let scopes =
            Scopes::parse_space_separated(&row.scopes).map_err(|e| internal("scopes", &e))?;
        let kind = row.kind.parse().map_err(|e| internal("kind", &e))?;
        let auth_method = row
            .token_endpoint_auth_method
            .parse()
            .map_err(|e| internal("token_endpoint_auth_method", &e))?;
        let grant_types = row
            .grant_types
            .split_ascii_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| internal("grant_types", &e))?;
        Ok(Self {
            kind,
            auth_method,
            grant_types,
            id: row.id,
            name: row.name,
            redirect_uris,
            scopes,
            owner_user_id: row.owner_user_id,
            owner_key_id: row.owner_key_id,
            client_uri: row.client_uri,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            secret_hash: row.secret_hash,
        })
    }
}

/// The names of `grants` joined with `sep` (a space, as stored).
pub fn joined(grants: &[GrantType], sep: &str) -> String {
    grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(sep)
}

/// True for hosts that name this machine.
fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Check one redirect URI for registration.
pub fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(format!("longer than {MAX_REDIRECT_URI_LEN} characters"));
    }
    let url = url::Url::parse(uri).map_err(|_| "not an absolute URI".to_owned())?;
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => match url.host() {
            Some(h) if is_loopback_host(&h) => Ok(()),
            _ => Err("http is allowed only for loopback redirects (127.0.0.1, [::1], localhost); use https".into()),
        },
        "javascript" | "data" | "vbscript" | "file" | "about" | "blob" | "ftp" | "ws" | "wss" => {
            Err(format!("the {} scheme is not allowed", url.scheme()))
        }
        // Private-use schemes of native apps (RFC 8252 §7.1): cursor://, vscode://, ...
        _ => Ok(()),
    }
}

/// Exact match, except a loopback registration matches any port.
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(r), Ok(p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    let loopback = r.scheme() == "http" && r.host().is_some_and(|h| is_loopback_host(&h));
    loopback
        && p.scheme() == "http"
        && r.host_str() == p.host_str()
        && r.path() == p.path()
        && r.query() == p.query()
        && p.fragment().is_none()
        && p.username().is_empty()
        && p.password().is_none()
}

/// What a client asks to be registered with (RFC 7591 metadata).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Registration {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub scope: Option<String>,
    pub client_uri: Option<String>,
}

/// A client just registered, with its secret (shown once).
pub struct Registered {
    pub client: Client,
    pub secret: Option<SecretString>,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("client", &self.client)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Validated registration metadata, ready to store.
struct Checked {
    name: String,
    redirect_uris: Vec<String>,
    scopes: Scopes,
    grant_types: Vec<GrantType>,
    auth_method: AuthMethod,
    client_uri: Option<String>,
}

/// Who an owned client acts for, and with what: the registering
/// credential's account, its key (none for operator clients), and the
/// scopes the client may hold at most.
#[derive(Debug, Clone)]
pub struct Owner {
    pub user_id: Uuid,
    pub key_id: Option<String>,
    pub scopes: Scopes,
}

fn check(reg: Registration, default_name: &str, owner: Option<&Owner>) -> OAuthResult<Checked> {
    let owned = owner.is_some();
    let auth_method = match reg.token_endpoint_auth_method.as_deref() {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => m.parse().map_err(|_| {
            OAuthError::invalid_client_metadata(format!(
                "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post (got {:?})",
                m.chars().take(40).collect::<String>()
            ))
        })?,
    };
    let asked = match reg.grant_types {
        None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        Some(names) => names
            .iter()
            .map(|g| {
                g.parse::<GrantType>().map_err(|_| {
                    OAuthError::invalid_client_metadata(format!(
                        "unsupported grant type {:?}; supported: {}",
                        g.chars().take(60).collect::<String>(),
                        joined(GrantType::ALL, ", ")
                    ))
                })
            })
            .collect::<OAuthResult<_>>()?,
    };
    if asked.is_empty() {
        return Err(OAuthError::invalid_client_metadata(
            "grant_types must not be empty",
        ));
    }
    let mut grant_types: Vec<GrantType> = GrantType::ALL
        .iter()
        .copied()
        .filter(|g| asked.contains(g))
        .collect();
    if grant_types.contains(&GrantType::AuthorizationCode)
        && !grant_types.contains(&GrantType::RefreshToken)
    {
        // Refresh tokens are always issued with the code grant.
        grant_types.insert(1, GrantType::RefreshToken);
    }
    if grant_types.contains(&GrantType::ClientCredentials) {
        if auth_method == AuthMethod::None {
            return Err(OAuthError::invalid_client_metadata(
                "client_credentials needs a confidential client (client_secret_basic or client_secret_post)",
            ));
        }
        if !owned {
            return Err(OAuthError::invalid_client_metadata(
                "client_credentials tokens act for the client's owner: register with an API key holding keys:write",
            ));
        }
    }
    if let Some(rt) = &reg.response_types {
        if rt.iter().any(|r| r != "code") {
            return Err(OAuthError::invalid_client_metadata(
                "response_types must be [\"code\"]",
            ));
        }
    }
    let uses_code = grant_types.contains(&GrantType::AuthorizationCode);
    if uses_code && reg.redirect_uris.is_empty() {
        return Err(OAuthError::invalid_redirect_uri(
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    if reg.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::invalid_redirect_uri(format!(
            "at most {MAX_REDIRECT_URIS} redirect_uris"
        )));
    }
    for uri in &reg.redirect_uris {
        validate_redirect_uri(uri).map_err(|why| {
            OAuthError::invalid_redirect_uri(format!(
                "redirect URI {:?}: {why}",
                uri.chars().take(100).collect::<String>()
            ))
        })?;
    }
    let scopes = match crate::scope::requested(reg.scope.as_deref()).as_deref() {
        // An owned client holds at most what registered it; an unowned one
        // may ask for any scope, each authorization then bounded by consent.
        None => owner.map(|o| o.scopes.clone()).unwrap_or_else(Scopes::all),
        Some(s) => Scopes::parse_space_separated(s)
            .map_err(|e| OAuthError::invalid_client_metadata(format!("scope: {e}")))?,
    };
    if let Some(o) = owner {
        let missing = o.scopes.missing_from(&scopes);
        if !missing.is_empty() {
            return Err(OAuthError::new(
                "invalid_scope",
                format!(
                    "an owned client may hold at most the scopes of the credential registering it; it lacks {}",
                    missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
                ),
            ));
        }
    }
    let name = match reg.client_name.as_deref().map(str::trim) {
        None | Some("") => default_name.to_owned(),
        Some(n) => {
            if n.chars().count() > 100 || n.chars().any(char::is_control) {
                return Err(OAuthError::invalid_client_metadata(
                    "client_name must be at most 100 characters without control characters",
                ));
            }
            n.to_owned()
        }
    };
    let client_uri = match reg.client_uri {
        None => None,
        Some(u) => {
            let parsed = url::Url::parse(&u)
                .ok()
                .filter(|p| p.scheme() == "https" && u.len() <= 512);
            if parsed.is_none() {
                return Err(OAuthError::invalid_client_metadata(
                    "client_uri must be an https URL of at most 512 characters",
                ));
            }
            Some(u)
        }
    };
    Ok(Checked {
        name,
        redirect_uris: reg.redirect_uris,
        scopes,
        grant_types,
        auth_method,
        client_uri,
    })
}

/// Register a client. `owner` is the account of the credential the request
/// carried, if any (required for `client_credentials`).
pub async fn register(
    state: &AppState,
    reg: Registration,
    kind: ClientKind,
    owner: Option<Owner>,
) -> OAuthResult<Registered> {
    let checked = check(reg, "Unnamed client", owner.as_ref())?;
    let now = state.clock.now();
    let id = format!("mcpg_ci_{}", token::random_base62(24));
    let (secret, secret_hash) = if checked.auth_method == AuthMethod::None {
        (None, None)
    } else {
        let new = token::generate(Kind::ClientSecret);
        (Some(new.key), Some(new.hash.to_vec()))
    };
    let row = oauth_client::Model {
        id,
        secret_hash,
        name: checked.name,
        kind: kind.as_str().into(),
        redirect_uris: serde_json::to_string(&checked.redirect_uris)
            .unwrap_or_else(|_| "[]".into()),
        scopes: checked.scopes.to_space_separated(),
        grant_types: joined(&checked.grant_types, " "),
        token_endpoint_auth_method: checked.auth_method.as_str().into(),
        owner_user_id: owner.as_ref().map(|o| o.user_id),
        owner_key_id: owner.and_then(|o| o.key_id),
        client_uri: checked.client_uri,
        created_at: now,
        last_used_at: None,
        metadata_expires_at: None,
    };
    store::oauth::insert_client(&state.db, row.clone()).await?;
    Ok(Registered {
        client: Client::from_row(row)?,
        secret,
    })
}

/// Look a client up by id; an https id is resolved through its metadata
/// document (cached as the document's HTTP headers allow).
pub async fn find(state: &AppState, client_id: &str) -> OAuthResult<Option<Client>> {
    if client_id.is_empty() || client_id.len() > MAX_METADATA_URL_LEN {
        return Ok(None);
    }
    let cached = store::oauth::find_client(&state.db, client_id).await?;
    let is_url = client_id.starts_with("https://")
        || (state.config.client_metadata_allow_http && client_id.starts_with("http://"));
    if !is_url {
        return cached.map(Client::from_row).transpose();
    }
    let now = state.clock.now();
    if let Some(row) = &cached {
        if row.metadata_expires_at.is_some_and(|t| t > now) {
            return Client::from_row(row.clone()).map(Some);
        }
    }
    let (doc, max_age) = fetch_metadata(state, client_id).await?;
    let checked = check(doc, &host_of(client_id), None)?;
    if checked.auth_method != AuthMethod::None {
        return Err(OAuthError::invalid_client(
            "a client metadata document client must use token_endpoint_auth_method \"none\"",
        ));
    }
    let row = oauth_client::Model {
        id: client_id.to_owned(),
        secret_hash: None,
        name: checked.name,
        kind: ClientKind::MetadataDocument.as_str().into(),
        redirect_uris: serde_json::to_string(&checked.redirect_uris)
            .unwrap_or_else(|_| "[]".into()),
        scopes: checked.scopes.to_space_separated(),
        grant_types: joined(&checked.grant_types, " "),
        token_endpoint_auth_method: AuthMethod::None.as_str().into(),
        owner_user_id: None,
        owner_key_id: None,
        client_uri: checked.client_uri,
        created_at: now,
        last_used_at: cached.as_ref().and_then(|c| c.last_used_at),
        metadata_expires_at: Some(now + max_age),
    };
    if cached.is_some() {
        store::oauth::replace_client(&state.db, row.clone()).await?;
    } else if let Err(e) = store::oauth::insert_client(&state.db, row.clone()).await {
        // Another request cached it meanwhile: theirs is as fresh as ours.
        if !store::is_unique_violation(&e) {
            return Err(e.into());
        }
    }
    Client::from_row(row).map(Some)
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "client".into())
}

/// True for addresses a metadata fetch must not reach by default.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64) // 100.64/10
                || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
        }
    }
}

/// Fetch and parse a client ID metadata document: no redirects, a time and
/// size limit, and (unless configured) no private or loopback addresses,
/// checked on the resolved address the connection then uses.
async fn fetch_metadata(
    state: &AppState,
    client_id: &str,
) -> OAuthResult<(Registration, chrono::Duration)> {
    let fail = |why: &str| OAuthError::invalid_client(format!("client metadata document: {why}"));
    let url = url::Url::parse(client_id).map_err(|_| fail("client_id is not a URL"))?;
    if url.fragment().is_some() || !url.username().is_empty() || url.path() == "/" {
        return Err(fail(
            "client_id must be a URL with a path and no fragment or credentials",
        ));
    }
    let host = url.host_str().ok_or_else(|| fail("no host"))?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
        .await
        .map_err(|_| fail("host does not resolve"))?
        .collect();
    let Some(first) = addrs.first().copied() else {
        return Err(fail("host does not resolve"));
    };
    if !state.config.client_metadata_allow_private_addresses
        && addrs.iter().any(|a| is_private(a.ip()))
    {
        return Err(fail("host resolves to a private or loopback address"));
    }
    crate::http_client::install_crypto();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(
            state.config.client_metadata_timeout_ms,
        ))
        .resolve(&lookup_host, first)
        .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|_| fail("HTTP client unavailable"))?;
    let mut resp = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                fail("fetch timed out")
            } else {
                fail("fetch failed")
            }
        })?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(fail(&format!(
            "fetch answered HTTP {}",
            resp.status().as_u16()
        )));
    }
    let max_age = cache_lifetime(resp.headers().get(reqwest::header::CACHE_CONTROL));
    let limit = state.config.client_metadata_max_bytes;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|_| fail("fetch failed"))? {
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            return Err(fail(&format!("larger than {limit} bytes")));
        }
    }
    #[derive(serde::Deserialize)]
    struct Doc {
        client_id: String,
        #[serde(flatten)]
        registration: Registration,
    }
    let doc: Doc = serde_json::from_slice(&body).map_err(|_| fail("not valid JSON metadata"))?;
    if doc.client_id != client_id {
        return Err(fail(
            "its client_id does not equal the URL it was fetched from",
        ));
    }
    Ok((doc.registration, max_age))
}

/// How long to cache a document: `max-age` clamped to 1 minute..1 day,
/// 1 minute for `no-cache`/`no-store`, 1 hour when unspecified.
fn cache_lifetime(header: Option<&reqwest::header::HeaderValue>) -> chrono::Duration {
    let value = header.and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut secs = 3600;
    for directive in value.split(',').map(str::trim) {
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            secs = 60;
            break;
        }
        if let Some(n) = directive
            .strip_prefix("max-age=")
            .and_then(|n| n.parse::<i64>().ok())
        {
            secs = n;
        }
    }
    chrono::Duration::seconds(secs.clamp(60, 86_400))
}

/// The client id of Swagger UI at `/docs`, registered by every server at start-up.
pub const DOCS_CLIENT_ID: &str = "mcpgate-docs";

/// Register (or re-point, when the public URL changed) the public client
/// Swagger UI uses to authorize against this server.
pub async fn ensure_docs_client(state: &AppState) -> crate::error::Result<()> {
    let redirect = format!("{}/docs/oauth2-redirect.html", state.config.public_url);
    let row = oauth_client::Model {
        id: DOCS_CLIENT_ID.into(),
        secret_hash: None,
        name: "mcpgate API docs (Swagger UI)".into(),
        kind: ClientKind::Operator.as_str().into(),
        redirect_uris: serde_json::to_string(&[&redirect]).unwrap_or_else(|_| "[]".into()),
        scopes: Scopes::all().to_space_separated(),
        grant_types: joined(
            &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            " ",
        ),
        token_endpoint_auth_method: AuthMethod::None.as_str().into(),
        owner_user_id: None,
        owner_key_id: None,
        client_uri: None,
        created_at: state.clock.now(),
        last_used_at: None,
        metadata_expires_at: None,
    };
    match store::oauth::find_client(&state.db, DOCS_CLIENT_ID).await? {
        Some(existing) if existing.redirect_uris == row.redirect_uris => Ok(()),
        Some(_) => Ok(store::oauth::replace_client(&state.db, row).await?),
        None => match store::oauth::insert_client(&state.db, row).await {
            Err(e) if !store::is_unique_violation(&e) => Err(e.into()),
            _ => Ok(()),
        },
    }
}

/// Operator registration (`mcpgate admin clients create`).
pub struct OperatorClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub scopes: Option<String>,
    pub confidential: bool,
    pub owner_email: Option<String>,
    pub client_credentials: bool,
}

pub async fn create_operator_client(
    state: &AppState,
    input: OperatorClient,
) -> anyhow::Result<Registered> {
    let owner = match &input.owner_email {
        None => None,
        Some(email) => Some(
            store::users::find_by_email(&state.db, &email.trim().to_lowercase())
                .await?
                .ok_or_else(|| anyhow::anyhow!("no account has the email {email}"))?
                .id,
        )
        .map(|user_id| Owner {
            user_id,
            key_id: None,
            scopes: Scopes::all(),
        }),
    };
    let mut grant_types = Vec::new();
    if !input.redirect_uris.is_empty() {
        grant_types.push(GrantType::AuthorizationCode.as_str().to_owned());
    }
    if input.client_credentials {
        grant_types.push(GrantType::ClientCredentials.as_str().to_owned());
    }
    let reg = Registration {
        redirect_uris: input.redirect_uris,
        client_name: Some(input.name),
        token_endpoint_auth_method: Some(
            if input.confidential {
                AuthMethod::ClientSecretBasic
            } else {
                AuthMethod::None
            }
            .as_str()
            .into(),
        ),
        grant_types: Some(grant_types),
        response_types: None,
        scope: input.scopes,
        client_uri: None,
    };
    register(state, reg, ClientKind::Operator, owner)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.description))
}

pub async fn list(state: &AppState) -> anyhow::Result<Vec<Client>> {
    store::oauth::list_clients(&state.db)
        .await?
        .into_iter()
        .map(|r| Client::from_row(r).map_err(|e| anyhow::anyhow!("{}", e.description)))
        .collect()
}

pub async fn delete(state: &AppState, client_id: &str) -> anyhow::Result<bool> {
    Ok(store::oauth::delete_client(&state.db, client_id).await? == 1)
}

/// The OAuth clients the caller owns (registered with one of their API keys
/// for `client_credentials`), newest first.
pub async fn owned(
    state: &AppState,
    principal: &crate::service::auth::Principal,
) -> crate::error::Result<Vec<Client>> {
    principal.require(crate::scope::Scope::KeysRead)?;
    store::oauth::clients_of_owner(&state.db, principal.user_id)
        .await?
        .into_iter()
        .map(|r| {
            Client::from_row(r).map_err(|e| crate::error::Error::Internal(e.description.clone()))
        })
        .collect()
}

/// One client the caller owns; another account's, or an unowned one, is 404.
pub async fn get_owned(
    state: &AppState,
    principal: &crate::service::auth::Principal,
    client_id: &str,
) -> crate::error::Result<Client> {
    principal.require(crate::scope::Scope::KeysRead)?;
    if client_id.len() > MAX_METADATA_URL_LEN {
        return Err(crate::error::Error::NotFound("client"));
    }
    let row = store::oauth::find_client(&state.db, client_id)
        .await?
        .filter(|c| c.owner_user_id == Some(principal.user_id))
        .ok_or(crate::error::Error::NotFound("client"))?;
    Client::from_row(row).map_err(|e| crate::error::Error::Internal(e.description))
}

/// Delete a client the caller owns; its grants and tokens go with it (the
/// schema cascades). Another account's client, or an unowned one, is 404.
pub async fn delete_owned(
    state: &AppState,
    principal: &crate::service::auth::Principal,
    client_id: &str,
) -> crate::error::Result<()> {
    use crate::service::audit;
    principal.require(crate::scope::Scope::KeysWrite)?;
    if client_id.len() > MAX_METADATA_URL_LEN {
        return Err(crate::error::Error::NotFound("client"));
    }
    let now = state.clock.now();
    let txn = crate::db::begin_write(&state.db).await?;
    let deleted = store::oauth::delete_owned_client(&txn, principal.user_id, client_id).await?;
    if deleted == 0 {
        return Err(crate::error::Error::NotFound("client"));
    }
    audit::record(
        &txn,
        now,
        audit::Event {
            user_id: principal.user_id,
            action: audit::AuditAction::OAuthClientDeleted,
            credential_id: Some(&principal.credential.id),
            target: Some(client_id),
            details: serde_json::json!({ "client_id": client_id }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The name to show for a client already known to this server, without
/// fetching anything (the login page uses it to say where sign-in leads).
pub async fn known_name(state: &AppState, client_id: &str) -> crate::error::Result<Option<String>> {
    if client_id.len() > MAX_METADATA_URL_LEN {
        return Ok(None);
    }
    Ok(store::oauth::find_client(&state.db, client_id)
        .await?
        .map(|c| c.name))
}

/// Expose a new client secret for the one response that shows it.
pub fn reveal(secret: &SecretString) -> String {
    secret.expose_secret().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::assert_round_trip;

    #[test]
    fn vocabularies_round_trip_and_refuse_unknown_names() {
        assert_round_trip(ClientKind::ALL, "static");
        assert_round_trip(AuthMethod::ALL, "private_key_jwt");
        assert_round_trip(GrantType::ALL, "password");
    }

    #[test]
    fn a_stored_client_with_an_unknown_name_is_a_server_error() {
        let row = oauth_client::Model {
            id: "mcpg_ci_x".into(),
            secret_hash: None,
            name: "x".into(),
            kind: "dynamic".into(),
            redirect_uris: "[]".into(),
            scopes: "memories:read".into(),
            grant_types: "authorization_code refresh_token".into(),
            token_endpoint_auth_method: "none".into(),
            owner_user_id: None,
            owner_key_id: None,
            client_uri: None,
            created_at: chrono::Utc::now(),
            last_used_at: None,
            metadata_expires_at: None,
        };
        let c = Client::from_row(row.clone()).expect("a valid row");
        assert_eq!(c.kind, ClientKind::Dynamic);
        assert_eq!(c.auth_method, AuthMethod::None);
        assert_eq!(
            c.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        let bad = [
            oauth_client::Model {
                kind: "static".into(),
                ..row.clone()
            },
            oauth_client::Model {
                token_endpoint_auth_method: "private_key_jwt".into(),
                ..row.clone()
            },
            oauth_client::Model {
                grant_types: "authorization_code password".into(),
                ..row
            },
        ];
        for row in bad {
            let e = Client::from_row(row).expect_err("no silent default");
            assert_eq!(e.code, "server_error");
        }
    }

    #[test]
    fn redirect_uri_rules() {
        for ok in [
            "https://claude.ai/api/mcp/auth_callback",
            "http://127.0.0.1:33418/callback",
            "http://localhost/cb",
            "http://[::1]:9000/cb",
            "cursor://anysphere.cursor-retrieval/oauth/user-callback",
            "vscode://vscode.github-authentication/did-authenticate",
        ] {
            assert_eq!(validate_redirect_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "http://evil.example/cb",
            "https://example.com/cb#frag",
            "https://user:pw@example.com/cb",
            "/relative",
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_matches_any_port_and_nothing_else_loosens() {
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000/cb"
        ));
        assert!(redirect_matches(
            "http://localhost:1/cb",
            "http://localhost:2/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000/other"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://localhost:5000/cb"
        ));
        assert!(!redirect_matches(
            "https://a.example/cb",
            "https://a.example/cb/"
        ));
        assert!(!redirect_matches(
            "https://a.example/cb",
            "https://a.example:444/cb"
        ));
        assert!(!redirect_matches(
            "https://a.example/cb",
            "https://a.example/cb?x=1"
        ));
    }

    #[test]
    fn private_addresses_are_recognized() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "100.64.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn cache_lifetime_is_clamped() {
        use reqwest::header::HeaderValue;
        assert_eq!(cache_lifetime(None).num_seconds(), 3600);
        assert_eq!(
            cache_lifetime(Some(&HeaderValue::from_static("public, max-age=5"))).num_seconds(),
            60
        );
        assert_eq!(
            cache_lifetime(Some(&HeaderValue::from_static("max-age=999999"))).num_seconds(),
            86_400
        );
        assert_eq!(
            cache_lifetime(Some(&HeaderValue::from_static("no-store"))).num_seconds(),
            60
        );
    }
}
