//! Identity assertions: the JWK Set at `/.well-known/jwks.json`, verified the
//! way a server behind mcpgate does it (an off-the-shelf JWT library and
//! nothing else), across replicas, a key period and a master-key rotation.

use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey, Validation};
use mcpgate_e2e::oauth::http;
use mcpgate_server::{
    clock::Clock,
    identity::{Claims, IdentityKeys},
};
use sha2::Digest;

use super::*;

async fn jwks(url: &str) -> (reqwest::header::HeaderMap, serde_json::Value) {
    let resp = http()
        .get(format!("{url}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    (headers, resp.json().await.unwrap())
}

fn kids(set: &serde_json::Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Sign an assertion about a real principal of `server`.
async fn assertion(server: &TestServer, audience: &str) -> (String, Claims) {
    let key = server.register().await.api_key;
    let principal = mcpgate_server::service::auth::authenticate(
        server.state(),
        &key,
        mcpgate_server::service::oauth::Resource::Mcp,
    )
    .await
    .unwrap();
    let claims = IdentityKeys::claims(&server.url, &principal, audience, server.clock.now());
    (server.state().identity.sign(&claims), claims)
}

/// What an upstream does: pick the key by `kid`, check signature, issuer,
/// audience and expiry.
fn verify(
    set: &serde_json::Value,
    jws: &str,
    issuer: &str,
    audience: &str,
) -> Result<Claims, String> {
    let set: JwkSet = serde_json::from_value(set.clone()).map_err(|e| e.to_string())?;
    let header = jsonwebtoken::decode_header(jws).map_err(|e| e.to_string())?;
    let jwk = set
        .find(header.kid.as_deref().unwrap_or_default())
        .ok_or("kid not published")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Claims>(jws, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

e2e! {
    async fn the_published_keys_verify_an_assertion(backend) {
        let server = TestServer::start(backend).await;
        let (headers, set) = jwks(&server.url).await;
        assert_eq!(headers["cache-control"], "public, max-age=3600");
        assert_eq!(headers["access-control-allow-origin"], "*");
        let keys = set["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 3, "the previous, current and next period's keys");
        for k in keys {
            assert_eq!((k["kty"].as_str(), k["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
            assert_eq!((k["alg"].as_str(), k["use"].as_str()), (Some("EdDSA"), Some("sig")));
            assert!(k.get("d").is_none(), "no private part: {k}");
            // The kid is the RFC 7638 thumbprint.
            let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, k["x"].as_str().unwrap());
            let thumbprint = base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                sha2::Sha256::digest(canonical.as_bytes()),
            );
            assert_eq!(k["kid"], thumbprint.as_str());
        }

        let audience = format!("{}/mcp/rentals", server.url);
        let (jws, claims) = assertion(&server, &audience).await;
        let verified = verify(&set, &jws, &server.url, &audience).unwrap();
        assert_eq!(verified, claims);
        assert_eq!(verified.exp - verified.iat, 60, "an assertion lives a minute");
        assert_eq!(verified.credential_kind, "api_key");
        assert!(verified.scope.contains("memories:read"), "{}", verified.scope);
        // Meant for another upstream, or from another issuer: refused.
        assert!(verify(&set, &jws, &server.url, &format!("{}/mcp/other", server.url)).is_err());
        assert!(verify(&set, &jws, "https://elsewhere.example", &audience).is_err());
        // A forged payload fails the signature.
        let mut parts: Vec<&str> = jws.split('.').collect();
        let mut forged = claims.clone();
        forged.sub = uuid::Uuid::new_v4().to_string();
        let forged = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&forged).unwrap(),
        );
        parts[1] = &forged;
        assert!(verify(&set, &parts.join("."), &server.url, &audience).is_err());
        server.stop().await;
    }

    async fn replicas_publish_one_set_and_rotate_it_each_period(backend) {
        let server = TestServer::start_with(backend, |c| c.identity_key_rotation_days = 1).await;
        let replica = server.replica().await;
        let (_, first) = jwks(&server.url).await;
        let (_, same) = jwks(&replica.url).await;
        assert_eq!(first, same, "every replica derives the same keys");
        // An assertion signed by one replica verifies with the other's set.
        let audience = format!("{}/mcp/rentals", server.url);
        let (jws, _) = assertion(&server, &audience).await;
        verify(&same, &jws, &server.url, &audience).unwrap();

        server.clock.advance(chrono::Duration::days(1));
        let (_, next) = jwks(&replica.url).await;
        let (before, after) = (kids(&first), kids(&next));
        assert_eq!(after[..2], before[1..], "the set moves by one period");
        assert!(!after.contains(&before[0]));
        replica.stop().await;
        server.stop().await;
    }

    async fn a_master_key_rotation_keeps_the_old_keys_published(backend) {
        let old = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let new = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
        let server = TestServer::start_with(backend, |c| c.encryption_key = Some(old.to_owned().into())).await;
        let audience = format!("{}/mcp/rentals", server.url);
        let (jws, _) = assertion(&server, &audience).await;
        let (_, before) = jwks(&server.url).await;
        let server = server.reconfigure(|c| {
            c.encryption_key = Some(new.to_owned().into());
            c.encryption_key_previous = Some(old.to_owned().into());
        }).await;
        let (_, during) = jwks(&server.url).await;
        assert_eq!(kids(&during).len(), 5);
        verify(&during, &jws, &server.url, &audience).expect("signed before the rotation");
        let (fresh, _) = assertion(&server, &audience).await;
        assert!(verify(&before, &fresh, &server.url, &audience).is_err(), "signed by the new key");
        let server = server.reconfigure(|c| c.encryption_key_previous = None).await;
        let (_, after) = jwks(&server.url).await;
        assert!(verify(&after, &jws, &server.url, &audience).is_err(), "the old key is gone");
        verify(&after, &fresh, &server.url, &audience).unwrap();
        server.stop().await;
    }
}
