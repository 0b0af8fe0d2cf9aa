//! Signed identity assertions: a short-lived JWS saying who a caller is, which
//! a server behind mcpgate verifies offline against the keys published at
//! `/.well-known/jwks.json`, without sharing a database or seeing the
//! caller's own token.
//!
//! The signing keys are Ed25519 (JWS `alg` `EdDSA`, RFC 8037), derived from
//! the master key and a period number: the key of period `n` is
//! `Ed25519(HMAC(HMAC(master, label), n))`. Every replica computes the same
//! keys with nothing stored, a key rotates at each period boundary, and no
//! private key exists anywhere but in memory. The set published holds the
//! previous, current and next period's keys under the current master key
//! (so a verifier caching the set for a while already knows the next key),
//! plus the previous and current period's keys under a previous master key
//! during a master-key rotation (an assertion lives a minute).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use hmac::Mac;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::master_key::MasterKey;

/// Lifetime of an assertion (seconds).
pub const ASSERTION_TTL_SECS: i64 = 60;

/// The label the signing keys are derived under.
const LABEL: &str = "mcpgate identity signing v1";

/// What an assertion says about the caller (JWT claims, RFC 7519).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Claims {
    /// This server's public URL.
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The server the assertion is for.
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique per assertion, for a verifier that refuses replays.
    pub jti: String,
    /// The credential's scopes, space-separated.
    pub scope: String,
    /// The credential's public id (an API key's id, an OAuth client's id).
    pub credential_id: String,
    /// `api_key`, `access_token` or `web_session`.
    pub credential_kind: String,
}

/// The derivation roots of the signing keys: one per master key, the
/// current first.
pub struct IdentityKeys {
    roots: Vec<Zeroizing<[u8; 32]>>,
    period_secs: i64,
}

impl std::fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKeys")
            .field("roots", &self.roots.len())
            .field("period_secs", &self.period_secs)
            .finish()
    }
}

/// One signing key: its `kid` (the RFC 7638 thumbprint) and the pair.
struct SigningKey {
    kid: String,
    pair: Ed25519KeyPair,
}

impl SigningKey {
    fn x(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.pair.public_key().as_ref())
    }

    fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.x(),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key (base64url SHA-256 of
/// the required members in lexicographic order).
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

impl IdentityKeys {
    /// Keys under `current` (signing) and `previous` (published only), each
    /// rotating every `period_days`.
    pub fn new(current: &MasterKey, previous: &[MasterKey], period_days: u32) -> Self {
        Self {
            roots: std::iter::once(current)
                .chain(previous)
                .map(|m| m.derive(LABEL))
                .collect(),
            period_secs: i64::from(period_days.max(1)) * 86_400,
        }
    }

    fn period(&self, at: DateTime<Utc>) -> i64 {
        at.timestamp().div_euclid(self.period_secs)
    }

    fn key(&self, root: &[u8; 32], period: i64) -> SigningKey {
        let mut mac = crate::crypto::hmac_sha256(root);
        mac.update(&period.to_be_bytes());
        let seed = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.as_slice())
            .unwrap_or_else(|_| unreachable!("any 32 bytes are an Ed25519 seed"));
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        SigningKey {
            kid: thumbprint(&x),
            pair,
        }
    }

    /// The key signing at `at`: the current master key's, for its period.
    fn signing_key(&self, at: DateTime<Utc>) -> SigningKey {
        self.key(&self.roots[0], self.period(at))
    }

    /// The JWK Set to publish at `at` (RFC 7517).
    pub fn jwks(&self, at: DateTime<Utc>) -> serde_json::Value {
        let p = self.period(at);
        let mut keys: Vec<serde_json::Value> = (p - 1..=p + 1)
            .map(|n| self.key(&self.roots[0], n).jwk())
            .collect();
        for root in &self.roots[1..] {
            keys.extend((p - 1..=p).map(|n| self.key(root, n).jwk()));
        }
        serde_json::json!({ "keys": keys })
    }

    /// Sign `claims` as a compact JWS (`typ` `JWT`, `alg` `EdDSA`) with the
    /// key of the period holding `claims.iat`.
    pub fn sign(&self, claims: &Claims) -> String {
        let at = DateTime::from_timestamp(claims.iat, 0).unwrap_or_default();
        let key = self.signing_key(at);
        let header = serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": key.kid });
        let mut jws = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default())
        );
        let signature = key.pair.sign(jws.as_bytes());
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        jws
    }

    /// The claims of an assertion about `principal` for `audience`, issued
    /// at `now` for [`ASSERTION_TTL_SECS`].
    pub fn claims(
        issuer: &str,
        principal: &crate::service::auth::Principal,
        audience: &str,
        now: DateTime<Utc>,
    ) -> Claims {
        Claims {
            iss: issuer.to_owned(),
            sub: principal.user_id.to_string(),
            aud: audience.to_owned(),
            iat: now.timestamp(),
            exp: now.timestamp() + ASSERTION_TTL_SECS,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            scope: principal.credential.scopes.to_space_separated(),
            credential_id: principal.credential.id.clone(),
            credential_kind: principal.credential.kind.as_str().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ED25519};

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_base64(
            &base64::engine::general_purpose::STANDARD.encode([byte; 32]),
            "t",
        )
        .unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn claims(iat: i64) -> Claims {
        Claims {
            iss: "https://gate.example".into(),
            sub: uuid::Uuid::nil().to_string(),
            aud: "https://gate.example/mcp/rentals".into(),
            iat,
            exp: iat + ASSERTION_TTL_SECS,
            jti: "j".into(),
            scope: "memories:read".into(),
            credential_id: "key1".into(),
            credential_kind: "api_key".into(),
        }
    }

    /// Verify `jws` the way an upstream does: find the `kid` in the set,
    /// check the signature with the published `x`, decode the claims.
    fn verify(jwks: &serde_json::Value, jws: &str) -> Result<Claims, String> {
        let mut parts = jws.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not three parts".into());
        };
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        assert_eq!(header["alg"], "EdDSA");
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == header["kid"])
            .ok_or("kid not published")?;
        assert_eq!(thumbprint(jwk["x"].as_str().unwrap()), jwk["kid"]);
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        UnparsedPublicKey::new(&ED25519, x)
            .verify(
                format!("{h}.{c}").as_bytes(),
                &URL_SAFE_NO_PAD.decode(s).unwrap(),
            )
            .map_err(|_| "bad signature".to_string())?;
        Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).unwrap()).unwrap())
    }

    #[test]
    fn an_assertion_verifies_against_the_published_set() {
        let keys = IdentityKeys::new(&master(1), &[], 30);
        let now = 1_800_000_000;
        let jws = keys.sign(&claims(now));
        assert_eq!(verify(&keys.jwks(at(now)), &jws), Ok(claims(now)));
        // Another server's keys (another master key) do not verify it.
        let other = IdentityKeys::new(&master(2), &[], 30);
        assert_eq!(
            verify(&other.jwks(at(now)), &jws),
            Err("kid not published".into())
        );
        // A changed claim breaks the signature.
        let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
        let mut forged = claims(now);
        forged.sub = "someone-else".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            verify(&keys.jwks(at(now)), &parts.join(".")),
            Err("bad signature".into())
        );
    }

    #[test]
    fn every_replica_derives_the_same_keys() {
        let a = IdentityKeys::new(&master(1), &[], 30);
        let b = IdentityKeys::new(&master(1), &[], 30);
        let now = at(1_800_000_000);
        assert_eq!(a.jwks(now), b.jwks(now));
        let jws = a.sign(&claims(now.timestamp()));
        assert!(verify(&b.jwks(now), &jws).is_ok());
    }

    #[test]
    fn keys_rotate_each_period_and_the_set_overlaps() {
        let keys = IdentityKeys::new(&master(1), &[], 1);
        let day = 86_400;
        let t = 20_000 * day + 100;
        let kid = |t: i64| keys.signing_key(at(t)).kid;
        assert_eq!(kid(t), kid(t + day - 200), "one key within a period");
        assert_ne!(kid(t), kid(t + day), "a new key in the next period");
        let published = |t: i64| -> Vec<String> {
            keys.jwks(at(t))["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect()
        };
        // The next period's key is published a period ahead, the previous
        // one a period after.
        assert!(published(t).contains(&kid(t + day)));
        assert!(published(t + day).contains(&kid(t)));
        assert!(!published(t + 2 * day).contains(&kid(t)));
        assert_eq!(published(t).len(), 3);
    }

    #[test]
    fn a_master_key_rotation_keeps_recent_assertions_valid() {
        let old = IdentityKeys::new(&master(1), &[], 30);
        let rotated = IdentityKeys::new(&master(2), &[master(1)], 30);
        let now = 1_800_000_000;
        let jws = old.sign(&claims(now));
        assert!(verify(&rotated.jwks(at(now + 30)), &jws).is_ok());
        assert_eq!(rotated.jwks(at(now))["keys"].as_array().unwrap().len(), 5);
        // New assertions are signed under the new master key only.
        let fresh = rotated.sign(&claims(now));
        assert!(verify(&old.jwks(at(now)), &fresh).is_err());
    }

    #[test]
    fn nothing_secret_is_printed_or_published() {
        let keys = IdentityKeys::new(&master(1), &[], 30);
        let debug = format!("{keys:?}");
        assert!(!debug.contains('['), "{debug}");
        let set = keys.jwks(at(1_800_000_000)).to_string();
        for k in ["\"d\"", "seed", "private"] {
            assert!(!set.contains(k), "{set}");
        }
    }
}
