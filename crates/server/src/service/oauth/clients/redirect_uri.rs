//! The redirect-URI rules: what may be registered, and how a presented URI
//! matches a registered one.

use super::MAX_REDIRECT_URI_LEN;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
