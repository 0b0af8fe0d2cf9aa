//! Scopes: what a credential may do. Enforced on every route.

use std::{collections::BTreeSet, fmt, str::FromStr};

/// One permission a credential can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    MemoriesRead,
    MemoriesWrite,
    ConnectionsRead,
    ConnectionsWrite,
    ConnectionsToken,
    KeysRead,
    KeysWrite,
}

impl Scope {
    /// Every scope, in canonical order.
    pub const ALL: [Scope; 7] = [
        Scope::MemoriesRead,
        Scope::MemoriesWrite,
        Scope::ConnectionsRead,
        Scope::ConnectionsWrite,
        Scope::ConnectionsToken,
        Scope::KeysRead,
        Scope::KeysWrite,
    ];

    /// The scope's wire name, e.g. `keys:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MemoriesRead => "memories:read",
            Scope::MemoriesWrite => "memories:write",
            Scope::ConnectionsRead => "connections:read",
            Scope::ConnectionsWrite => "connections:write",
            Scope::ConnectionsToken => "connections:token",
            Scope::KeysRead => "keys:read",
            Scope::KeysWrite => "keys:write",
        }
    }
}

impl Scope {
    /// What the scope allows, as shown on the consent page.
    pub fn description(self) -> &'static str {
        match self {
            Scope::MemoriesRead => "read and search your memories",
            Scope::MemoriesWrite => "create, change and delete your memories",
            Scope::ConnectionsRead => "see which third-party accounts you connected",
            Scope::ConnectionsWrite => "connect and disconnect third-party accounts",
            Scope::ConnectionsToken => "obtain access tokens for your connected accounts",
            Scope::KeysRead => "see your API keys, authorized apps and security events",
            Scope::KeysWrite => "create, rotate and revoke your API keys and authorizations",
        }
    }
}

impl Scopes {
    /// Iterate in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that mcpgate does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.chars().take(64).collect()))
    }
}

/// A set of scopes, always iterated in canonical order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

/// The OpenID Connect scope asking for a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The `scope` of an OAuth request or registration without
/// `offline_access`, which clients send to ask for a refresh token: it is
/// accepted and ignored, since refresh tokens are always issued. `None`
/// when nothing else is asked for.
pub fn requested(scope: Option<&str>) -> Option<String> {
    let rest = scope?
        .split_ascii_whitespace()
        .filter(|n| *n != OFFLINE_ACCESS)
        .collect::<Vec<_>>()
        .join(" ");
    (!rest.is_empty()).then_some(rest)
}

impl Scopes {
    /// Every scope: what a user's first key receives.
    pub fn all() -> Self {
        Self(Scope::ALL.into_iter().collect())
    }

    /// Parse a list of scope names, rejecting unknown ones.
    pub fn parse<I, S>(names: I) -> Result<Self, UnknownScope>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        names
            .into_iter()
            .map(|n| n.as_ref().trim().parse())
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }

    /// Parse the space-separated form stored in the database (and used by OAuth).
    pub fn parse_space_separated(s: &str) -> Result<Self, UnknownScope> {
        Self::parse(s.split_ascii_whitespace())
    }

    /// The space-separated form.
    pub fn to_space_separated(&self) -> String {
        self.names().join(" ")
    }

    /// The scope names in canonical order.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| s.as_str().to_owned()).collect()
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// The scopes of `other` that `self` lacks.
    pub fn missing_from(&self, other: &Scopes) -> Vec<Scope> {
        other.0.difference(&self.0).copied().collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_scope() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
        let all = Scopes::all();
        assert_eq!(
            Scopes::parse_space_separated(&all.to_space_separated()),
            Ok(all)
        );
    }

    #[test]
    fn rejects_unknown_and_orders_canonically() {
        assert_eq!(
            Scopes::parse(["keys:read", "admin"]),
            Err(UnknownScope("admin".into()))
        );
        let s = Scopes::parse(["keys:write", "memories:read", "keys:write"]).unwrap();
        assert_eq!(s.names(), ["memories:read", "keys:write"]);
        let read = Scopes::parse(["keys:read"]).unwrap();
        assert_eq!(s.missing_from(&read), [Scope::KeysRead]);
    }
}
