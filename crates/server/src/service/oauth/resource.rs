//! Resource indicators (RFC 8707): the protected resources tokens are bound to.
//!
//! mcpgate protects two: `<public url>/mcp` and `<public url>/api`. A request
//! may name one or both; naming the bare public URL means both (it is the
//! resource of the root protected-resource metadata); naming none means
//! `/api`. A token is accepted only by the resources it names.

use super::error::{OAuthError, OAuthResult};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    Api,
    Mcp,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Api => "api",
            Resource::Mcp => "mcp",
        }
    }

    /// What a token for the resource reaches, in words for the consent page.
    pub fn description(self) -> &'static str {
        match self {
            Resource::Api => "your account, through the mcpgate API",
            Resource::Mcp => "your memories, over MCP",
        }
    }

    /// The canonical URI of the resource.
    pub fn uri(self, state: &AppState) -> String {
        format!("{}/{}", state.config.public_url, self.as_str())
    }
}

/// Parse `resource` parameters into a sorted, de-duplicated list.
pub fn parse(state: &AppState, values: &[String]) -> OAuthResult<Vec<Resource>> {
    if values.len() > 4 {
        return Err(OAuthError::invalid_target("at most 4 resource parameters"));
    }
    // No `resource` (RFC 8707 is optional, and clients of the 2024-11-05 and
    // 2025-03-26 MCP revisions never send it) means the root resource: both.
    if values.is_empty() {
        return Ok(vec![Resource::Api, Resource::Mcp]);
    }
    let base = &state.config.public_url;
    let mut out = Vec::new();
    for v in values {
        let v = v.trim_end_matches('/');
        if v == base {
            out.extend([Resource::Api, Resource::Mcp]);
        } else if v == format!("{base}/api") {
            out.push(Resource::Api);
        } else if v == format!("{base}/mcp") {
            out.push(Resource::Mcp);
        } else {
            return Err(OAuthError::invalid_target(format!(
                "unknown resource; this server protects {base}/mcp and {base}/api"
            )));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The stored, space-separated form.
pub fn join(resources: &[Resource]) -> String {
    resources
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parse the stored form (unknown names are dropped).
pub fn split(stored: &str) -> Vec<Resource> {
    stored
        .split_ascii_whitespace()
        .filter_map(|s| match s {
            "api" => Some(Resource::Api),
            "mcp" => Some(Resource::Mcp),
            _ => None,
        })
        .collect()
}

/// The URIs of resources.
pub fn uris(state: &AppState, resources: &[Resource]) -> Vec<String> {
    resources.iter().map(|r| r.uri(state)).collect()
}
