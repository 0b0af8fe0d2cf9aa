//! The shape of every secret mcpgate hands out.
//!
//! An API key is `mcpg_` + 16-char base62 public id + `_` + 43-char base62
//! secret + 6-char base62 CRC32 of everything before it. The checksum lets a
//! mistyped or truncated key be refused without touching the database; the
//! public id is the lookup key and the listing prefix. Only the SHA-256 of the
//! whole key is stored, and it is compared in constant time.

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Prefix of every API key.
pub const API_KEY_PREFIX: &str = "mcpg_";
/// Length of the public id.
pub const ID_LEN: usize = 16;
/// Length of the random secret (43 base62 chars carry 256 bits).
pub const SECRET_LEN: usize = 43;
/// Length of the base62 CRC32 checksum.
pub const CHECKSUM_LEN: usize = 6;
/// Total length of an API key.
pub const API_KEY_LEN: usize = API_KEY_PREFIX.len() + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

/// SHA-256 digest of a secret, the only form stored at rest.
pub type SecretHash = [u8; 32];

/// Random base62 string of `len` characters from the thread-local CSPRNG.
pub fn random_base62(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

/// CRC32 of `body` as exactly six base62 digits.
fn checksum(body: &str) -> String {
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A freshly generated API key. The full key lives only in a [`SecretString`].
pub struct NewApiKey {
    pub id: String,
    pub key: SecretString,
    pub hash: SecretHash,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.id)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// Generate a key with a new public id.
pub fn generate_api_key() -> NewApiKey {
    generate_api_key_with_id(random_base62(ID_LEN))
}

/// Generate a new secret for an existing public id (rotation).
pub fn generate_api_key_with_id(id: String) -> NewApiKey {
    generate_with(Kind::ApiKey, id, &random_base62(SECRET_LEN))
}

/// The kinds of secret mcpgate issues; each has its own prefix and the same
/// `<prefix><16-char id>_<43-char secret><6-char checksum>` shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `mcpg_`: an API key.
    ApiKey,
    /// `mcpg_at_`: an OAuth access token.
    AccessToken,
    /// `mcpg_rt_`: an OAuth refresh token.
    RefreshToken,
    /// `mcpg_ac_`: an OAuth authorization code.
    AuthorizationCode,
    /// `mcpg_cs_`: an OAuth client secret.
    ClientSecret,
    /// `mcpg_ws_`: a web-login session (the cookie value).
    WebSession,
    /// `mcpg_st_`: the state of a connection flow.
    ConnectState,
}

impl Kind {
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::ApiKey => API_KEY_PREFIX,
            Kind::AccessToken => "mcpg_at_",
            Kind::RefreshToken => "mcpg_rt_",
            Kind::AuthorizationCode => "mcpg_ac_",
            Kind::ClientSecret => "mcpg_cs_",
            Kind::WebSession => "mcpg_ws_",
            Kind::ConnectState => "mcpg_st_",
        }
    }

    /// Total length of a secret of this kind.
    pub fn total_len(self) -> usize {
        self.prefix().len() + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN
    }
}

/// Generate a secret of `kind` with a new public id.
pub fn generate(kind: Kind) -> NewApiKey {
    generate_with(kind, random_base62(ID_LEN), &random_base62(SECRET_LEN))
}

/// Build a secret of `kind` from a given id and secret part.
pub fn generate_with(kind: Kind, id: String, secret: &str) -> NewApiKey {
    let body = format!("{}{id}_{secret}", kind.prefix());
    let key = format!("{body}{}", checksum(&body));
    let hash = hash_secret(&key);
    NewApiKey {
        id,
        key: SecretString::from(key),
        hash,
    }
}

/// Map 32 pseudo-random bytes to `len` base62 characters (for secrets derived
/// from a keyed hash rather than drawn from the CSPRNG).
pub fn base62_from_bytes(bytes: &[u8], len: usize) -> String {
    // Rejection-free: each character consumes a fresh 16-bit window of a
    // repeated SHA-256 stream, so the bias is below 2^-10 per character.
    let mut out = String::with_capacity(len);
    let mut block: [u8; 32] = Sha256::digest(bytes).into();
    let mut i = 0;
    while out.len() < len {
        if i + 2 > block.len() {
            block = Sha256::digest(block).into();
            i = 0;
        }
        let n = u16::from_be_bytes([block[i], block[i + 1]]) as usize;
        out.push(BASE62[n % 62] as char);
        i += 2;
    }
    out
}

/// Why a presented key was refused before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Prefix,
    Length,
    Charset,
    Checksum,
}

/// Check a presented key's shape and checksum; return its public id.
/// Costs no database query.
pub fn parse_api_key(raw: &str) -> Result<&str, Malformed> {
    parse(Kind::ApiKey, raw)
}

/// Which kind of secret `raw` claims to be, by its prefix.
pub fn kind_of(raw: &str) -> Option<Kind> {
    [
        Kind::AccessToken,
        Kind::RefreshToken,
        Kind::AuthorizationCode,
        Kind::ClientSecret,
        Kind::WebSession,
        Kind::ConnectState,
    ]
    .into_iter()
    .find(|k| raw.starts_with(k.prefix()))
    .or_else(|| raw.starts_with(API_KEY_PREFIX).then_some(Kind::ApiKey))
}

/// Check a presented secret of `kind`: shape and checksum; return its public
/// id. Costs no database query.
pub fn parse(kind: Kind, raw: &str) -> Result<&str, Malformed> {
    let rest = raw.strip_prefix(kind.prefix()).ok_or(Malformed::Prefix)?;
    if raw.len() != kind.total_len() {
        return Err(Malformed::Length);
    }
    if !raw.is_ascii() {
        return Err(Malformed::Charset);
    }
    let (id, rest) = rest.split_at(ID_LEN);
    let secret_and_sum = rest.strip_prefix('_').ok_or(Malformed::Charset)?;
    if !is_base62(id) || !is_base62(secret_and_sum) {
        return Err(Malformed::Charset);
    }
    let (body, sum) = raw.split_at(kind.total_len() - CHECKSUM_LEN);
    if checksum(body).as_bytes().ct_eq(sum.as_bytes()).into() {
        Ok(id)
    } else {
        Err(Malformed::Checksum)
    }
}

/// True when `id` has the shape of a public key id (16 base62 characters).
pub fn is_key_id(id: &str) -> bool {
    id.len() == ID_LEN && is_base62(id)
}

/// SHA-256 of a presented secret.
pub fn hash_secret(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time comparison of two stored-form digests.
pub fn hashes_match(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The prefix shown in listings: `mcpg_<public id>`.
pub fn listing_prefix(id: &str) -> String {
    format!("{API_KEY_PREFIX}{id}")
}

/// Expose a generated key for the one response that shows it.
pub fn reveal(key: &SecretString) -> String {
    key.expose_secret().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_have_the_documented_shape() {
        for _ in 0..200 {
            let new = generate_api_key();
            let key = new.key.expose_secret();
            assert_eq!(key.len(), API_KEY_LEN);
            assert_eq!(key.len(), 71);
            assert!(key.starts_with("mcpg_"));
            assert_eq!(parse_api_key(key), Ok(new.id.as_str()));
            assert_eq!(hash_secret(key), new.hash);
        }
    }

    #[test]
    fn any_single_character_change_is_caught() {
        let new = generate_api_key();
        let key = new.key.expose_secret().to_owned();
        for i in API_KEY_PREFIX.len()..key.len() {
            let mut bytes = key.clone().into_bytes();
            if bytes[i] == b'_' {
                continue;
            }
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert!(parse_api_key(&typo).is_err(), "typo at {i} accepted");
        }
    }

    #[test]
    fn malformed_inputs_are_classified() {
        let key = generate_api_key().key.expose_secret().to_owned();
        assert_eq!(parse_api_key("sk_live_x"), Err(Malformed::Prefix));
        assert_eq!(parse_api_key(&key[..70]), Err(Malformed::Length));
        assert_eq!(parse_api_key(&format!("{key}0")), Err(Malformed::Length));
        let mut bad = key.clone();
        bad.replace_range(30..31, "-");
        assert_eq!(parse_api_key(&bad), Err(Malformed::Charset));
        let unicode = format!("mcpg_{}", "é".repeat(33));
        assert_eq!(parse_api_key(&unicode), Err(Malformed::Charset));
        let odd = format!("mcpg_a{}", "é".repeat(32));
        assert_eq!(odd.len(), 70);
        assert!(parse_api_key(&odd).is_err());
    }

    #[test]
    fn every_kind_round_trips_and_kinds_do_not_mix() {
        for kind in [
            Kind::ApiKey,
            Kind::AccessToken,
            Kind::RefreshToken,
            Kind::AuthorizationCode,
            Kind::ClientSecret,
            Kind::WebSession,
        ] {
            let new = generate(kind);
            let raw = new.key.expose_secret();
            assert_eq!(raw.len(), kind.total_len());
            assert_eq!(kind_of(raw), Some(kind));
            assert_eq!(parse(kind, raw), Ok(new.id.as_str()));
            let other = if kind == Kind::AccessToken {
                Kind::RefreshToken
            } else {
                Kind::AccessToken
            };
            assert!(parse(other, raw).is_err());
        }
    }

    #[test]
    fn derived_secrets_are_deterministic_base62() {
        let a = base62_from_bytes(b"seed", SECRET_LEN);
        assert_eq!(a, base62_from_bytes(b"seed", SECRET_LEN));
        assert_ne!(a, base62_from_bytes(b"seed2", SECRET_LEN));
        assert_eq!(a.len(), SECRET_LEN);
        assert!(is_base62(&a));
    }

    #[test]
    fn checksum_is_six_base62_digits() {
        assert_eq!(checksum(""), "000000");
        let sum = checksum("mcpg_x");
        assert_eq!(sum.len(), 6);
        assert!(is_base62(&sum));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let new = generate_api_key();
        let printed = format!("{new:?}");
        assert!(!printed.contains(new.key.expose_secret()));
        assert!(printed.contains(&new.id));
    }
}
