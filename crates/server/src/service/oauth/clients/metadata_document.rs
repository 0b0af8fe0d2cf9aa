//! Client ID Metadata Documents: an https `client_id` is resolved by
//! fetching its document, with SSRF limits, and cached.

use std::{net::IpAddr, time::Duration};

use super::{
    joined, registration::check, AuthMethod, Client, ClientKind, Registration, MAX_METADATA_URL_LEN,
};
use crate::{
    entity::oauth_client,
    service::oauth::error::{OAuthError, OAuthResult},
    state::AppState,
    store,
};

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
        return Ok(cached.map(Client::from_row).transpose()?);
    }
    let now = state.clock.now();
    if let Some(row) = &cached {
        if row.metadata_expires_at.is_some_and(|t| t > now) {
            return Ok(Some(Client::from_row(row.clone())?));
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
    Ok(Some(Client::from_row(row)?))
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

#[cfg(test)]
mod tests {
    use super::*;

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
