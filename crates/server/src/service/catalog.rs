//! The provider catalog for connections: built-in entries (GitHub, Google,
//! OwnerRez, in `crates/server/providers.toml`) merged with the operator's
//! `[providers.<name>]` tables, field by field. A provider without client
//! credentials is listed as unavailable rather than failing start-up; an
//! entry that cannot work (no URLs, a non-https endpoint) fails start-up
//! with a message naming it.

use std::collections::BTreeMap;

use secrecy::SecretString;

use crate::config::{ConfigError, ProviderConfig, TokenAuthMethod};

const BUILT_IN: &str = include_str!("../../providers.toml");

/// A provider ready to use.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The name in routes: `/api/v1/connect/<name>/…`.
    pub name: String,
    pub display_name: String,
    pub authorization_url: url::Url,
    pub token_url: url::Url,
    pub revocation_url: Option<url::Url>,
    pub userinfo_url: Option<url::Url>,
    /// JSON pointer of the external account id in the user-info document.
    pub account_id_pointer: Option<String>,
    pub scopes: Vec<String>,
    pub scope_separator: String,
    pub pkce: bool,
    pub token_auth_method: TokenAuthMethod,
    /// Extra parameters of the authorization request.
    pub authorization_params: BTreeMap<String, String>,
    /// `None` when no client credentials are configured: listed, unavailable.
    pub credentials: Option<Credentials>,
}

/// The client credentials mcpgate uses at a provider.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl Provider {
    pub fn available(&self) -> bool {
        self.credentials.is_some()
    }
}

/// Every configured provider, by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    providers: BTreeMap<String, Provider>,
}

impl Catalog {
    /// Merge the built-in entries with `configured` (whose fields win).
    pub fn build(configured: &BTreeMap<String, ProviderConfig>) -> Result<Self, ConfigError> {
        let built_in: BTreeMap<String, ProviderConfig> = toml::from_str(BUILT_IN)
            .map_err(|e| ConfigError::Invalid(format!("built-in provider catalog: {e}")))?;
        let mut providers = BTreeMap::new();
        let names: std::collections::BTreeSet<&String> =
            built_in.keys().chain(configured.keys()).collect();
        for name in names {
            let merged = match (built_in.get(name), configured.get(name)) {
                (Some(base), Some(over)) => base.clone().overridden_by(over.clone()),
                (Some(base), None) => base.clone(),
                (None, Some(own)) => own.clone(),
                (None, None) => continue,
            };
            providers.insert(name.clone(), resolve(name, merged)?);
        }
        Ok(Self { providers })
    }

    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.providers.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }
}

fn invalid(name: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid(format!("providers.{name}: {why}"))
}

/// An endpoint URL: https, or http on a loopback host (a provider on the
/// same machine, such as another mcpgate in development).
fn endpoint(name: &str, field: &str, value: Option<&str>) -> Result<Option<url::Url>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    let url = url::Url::parse(value).map_err(|_| invalid(name, format!("{field} is not a URL")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "https" || (url.scheme() == "http" && loopback) {
        Ok(Some(url))
    } else {
        Err(invalid(
            name,
            format!("{field} must be https (http only for loopback hosts)"),
        ))
    }
}

fn resolve(name: &str, c: ProviderConfig) -> Result<Provider, ConfigError> {
    let valid_name = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid_name {
        return Err(invalid(
            name,
            "names are 1-32 characters of a-z, 0-9, - and _",
        ));
    }
    let authorization_url = endpoint(name, "authorization_url", c.authorization_url.as_deref())?
        .ok_or_else(|| invalid(name, "authorization_url is required"))?;
    let token_url = endpoint(name, "token_url", c.token_url.as_deref())?
        .ok_or_else(|| invalid(name, "token_url is required"))?;
    if let Some(p) = &c.account_id_pointer {
        if !p.is_empty() && !p.starts_with('/') {
            return Err(invalid(
                name,
                "account_id_pointer must be a JSON pointer such as /id",
            ));
        }
    }
    let credentials = match (c.client_id, c.client_secret) {
        (Some(id), Some(secret)) if !id.trim().is_empty() => Some(Credentials {
            client_id: id,
            client_secret: secret,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                name,
                "client_id is set but client_secret is not (or client_secret_file)",
            ))
        }
        (None, Some(_)) | (Some(_), Some(_)) => {
            return Err(invalid(name, "client_secret is set but client_id is not"))
        }
    };
    Ok(Provider {
        name: name.to_owned(),
        display_name: c.display_name.unwrap_or_else(|| name.to_owned()),
        authorization_url,
        token_url,
        revocation_url: endpoint(name, "revocation_url", c.revocation_url.as_deref())?,
        userinfo_url: endpoint(name, "userinfo_url", c.userinfo_url.as_deref())?,
        account_id_pointer: c.account_id_pointer.filter(|p| !p.is_empty()),
        scopes: c.scopes.unwrap_or_default(),
        scope_separator: c.scope_separator.unwrap_or_else(|| " ".into()),
        pkce: c.pkce.unwrap_or(true),
        token_auth_method: c.token_auth_method.unwrap_or_default(),
        authorization_params: c.authorization_params.unwrap_or_default(),
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Option<SecretString> {
        Some(SecretString::from(s.to_owned()))
    }

    #[test]
    fn built_ins_are_listed_unavailable_without_credentials() {
        let catalog = Catalog::build(&BTreeMap::new()).unwrap();
        let names: Vec<_> = catalog.all().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["github", "google", "ownerrez"]);
        assert!(catalog.all().all(|p| !p.available()));
        let google = catalog.get("google").unwrap();
        assert_eq!(
            google
                .authorization_params
                .get("access_type")
                .map(String::as_str),
            Some("offline")
        );
        assert!(google.revocation_url.is_some());
    }

    #[test]
    fn configured_fields_override_and_custom_providers_join() {
        let mut configured = BTreeMap::new();
        configured.insert(
            "github".to_owned(),
            ProviderConfig {
                client_id: Some("id".into()),
                client_secret: secret("s"),
                scopes: Some(vec!["repo".into()]),
                ..Default::default()
            },
        );
        configured.insert(
            "upstream".to_owned(),
            ProviderConfig {
                display_name: Some("Team mcpgate".into()),
                authorization_url: Some("http://127.0.0.1:9000/oauth/authorize".into()),
                token_url: Some("http://127.0.0.1:9000/oauth/token".into()),
                client_id: Some("c".into()),
                client_secret: secret("s"),
                ..Default::default()
            },
        );
        let catalog = Catalog::build(&configured).unwrap();
        let github = catalog.get("github").unwrap();
        assert!(github.available());
        assert_eq!(github.scopes, ["repo"]);
        assert_eq!(
            github.token_url.as_str(),
            "https://github.com/login/oauth/access_token"
        );
        let upstream = catalog.get("upstream").unwrap();
        assert_eq!(upstream.display_name, "Team mcpgate");
        assert!(upstream.pkce);
        assert!(
            !format!("{upstream:?}").contains("\"s\""),
            "the secret is redacted"
        );
    }

    #[test]
    fn unusable_entries_fail_naming_the_provider() {
        for (name, cfg, why) in [
            (
                "nourl",
                ProviderConfig::default(),
                "authorization_url is required",
            ),
            (
                "plain",
                ProviderConfig {
                    authorization_url: Some("http://id.example.com/a".into()),
                    token_url: Some("https://id.example.com/t".into()),
                    ..Default::default()
                },
                "must be https",
            ),
            (
                "half",
                ProviderConfig {
                    authorization_url: Some("https://id.example.com/a".into()),
                    token_url: Some("https://id.example.com/t".into()),
                    client_id: Some("c".into()),
                    ..Default::default()
                },
                "client_secret",
            ),
            ("Bad Name", ProviderConfig::default(), "names are"),
        ] {
            let mut configured = BTreeMap::new();
            configured.insert(name.to_owned(), cfg);
            let err = Catalog::build(&configured).unwrap_err().to_string();
            assert!(
                err.contains(&format!("providers.{name}")) && err.contains(why),
                "{err}"
            );
        }
    }
}
