//! Encryption at rest for upstream secrets (connection tokens).
//!
//! AES-256-GCM with a fresh 96-bit nonce per encryption and associated data
//! that binds a ciphertext to its row and field, so a ciphertext copied to
//! another row or column fails to decrypt instead of yielding another
//! account's token. The envelope names the key it was sealed with:
//!
//! ```text
//! v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>
//! ```
//!
//! The key id is a fingerprint of the master key. A [`Keyring`] holds the
//! current key and any previous ones (decrypt only), so `mcpgate admin
//! rotate-key` can re-encrypt every row while replicas keep reading both.

use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Nonce,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::master_key::MasterKey;

const VERSION: &str = "v1";
const NONCE_LEN: usize = 12;

/// Why a ciphertext could not be opened. Never carries plaintext or key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("not an encryption envelope")]
    Malformed,
    #[error("sealed with key {0}, which is not configured")]
    UnknownKey(String),
    #[error(
        "authentication failed: the ciphertext was altered or belongs to another row or field"
    )]
    Tampered,
}

/// What a ciphertext is bound to: table, row id and field.
pub struct Binding<'a> {
    pub table: &'a str,
    pub row: &'a str,
    pub field: &'a str,
}

impl Binding<'_> {
    fn aad(&self) -> Vec<u8> {
        format!(
            "mcpgate/{VERSION}/{}/{}/{}",
            self.table, self.row, self.field
        )
        .into_bytes()
    }
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn from_master(master: &MasterKey) -> Self {
        let key = master.derive("mcpgate upstream-token encryption v1");
        let fingerprint = master.derive("mcpgate key id v1");
        let id = fingerprint[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            id,
            cipher: Aes256Gcm::new(key.as_slice().into()),
        }
    }
}

/// The current key and the previous ones still accepted for decryption.
pub struct Keyring {
    current: Key,
    previous: Vec<Key>,
    /// HMAC key of [`Keyring::fingerprint`].
    fingerprint: zeroize::Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    pub fn new(current: &MasterKey, previous: &[MasterKey]) -> Self {
        Self {
            current: Key::from_master(current),
            previous: previous.iter().map(Key::from_master).collect(),
            fingerprint: current.derive("mcpgate request fingerprint v1"),
        }
    }

    /// The id of the key new ciphertexts are sealed with.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// A keyed fingerprint (HMAC-SHA256 under a key derived from the current
    /// master key) of `parts`, each length-prefixed: it identifies a request
    /// that may carry a secret (a password change) without storing a fast
    /// hash anyone with the database could test guesses against.
    pub fn fingerprint(&self, parts: &[&[u8]]) -> Vec<u8> {
        use hmac::Mac;
        let mut mac = hmac_sha256(self.fingerprint.as_slice());
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// Seal `plaintext` for `binding` under the current key.
    pub fn encrypt(&self, plaintext: &SecretString, binding: &Binding<'_>) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = binding.aad();
        let sealed = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption of a bounded buffer cannot fail"));
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!(
            "{VERSION}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(out)
        )
    }

    /// Open an envelope sealed for `binding` by any configured key.
    pub fn decrypt(
        &self,
        envelope: &str,
        binding: &Binding<'_>,
    ) -> Result<SecretString, CryptoError> {
        let mut parts = envelope.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Malformed);
        };
        let key = std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id == key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.chars().take(16).collect()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CryptoError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let aad = binding.aad();
        let plain = zeroize::Zeroizing::new(
            key.cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| CryptoError::Tampered)?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| CryptoError::Tampered)?;
        Ok(SecretString::from(text.to_owned()))
    }

    /// True when `envelope` was sealed by a key other than the current one.
    pub fn needs_rotation(&self, envelope: &str) -> bool {
        envelope.split('.').nth(1) != Some(self.current.id.as_str())
    }
}

/// HMAC-SHA256 keyed with `key`, ready for `update`. HMAC takes a key of
/// any length, so this cannot fail.
pub fn hmac_sha256(key: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    use hmac::{Hmac, Mac};
    <Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_base64(
            &base64::engine::general_purpose::STANDARD.encode([byte; 32]),
            "test",
        )
        .unwrap()
    }

    const ROW: Binding<'static> = Binding {
        table: "connections",
        row: "r1",
        field: "access_token",
    };

    #[test]
    fn round_trips_with_a_fresh_nonce_each_time() {
        let ring = Keyring::new(&key(1), &[]);
        let secret = SecretString::from("gho_upstream_token".to_owned());
        let a = ring.encrypt(&secret, &ROW);
        let b = ring.encrypt(&secret, &ROW);
        assert_ne!(a, b, "fresh nonce");
        assert!(!a.contains("gho_upstream_token"));
        assert!(a.starts_with(&format!("v1.{}.", ring.current_id())));
        assert_eq!(
            ring.decrypt(&a, &ROW).unwrap().expose_secret(),
            "gho_upstream_token"
        );
    }

    #[test]
    fn another_row_or_field_or_a_flipped_bit_is_an_error_never_garbage() {
        let ring = Keyring::new(&key(1), &[]);
        let sealed = ring.encrypt(&SecretString::from("t".to_owned()), &ROW);
        let other_row = Binding { row: "r2", ..ROW };
        let other_field = Binding {
            field: "refresh_token",
            ..ROW
        };
        assert_eq!(
            ring.decrypt(&sealed, &other_row).unwrap_err(),
            CryptoError::Tampered
        );
        assert_eq!(
            ring.decrypt(&sealed, &other_field).unwrap_err(),
            CryptoError::Tampered
        );
        let (head, body) = sealed.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(body).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let flipped = format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(
            ring.decrypt(&flipped, &ROW).unwrap_err(),
            CryptoError::Tampered
        );
        assert_eq!(
            ring.decrypt("plaintext", &ROW).unwrap_err(),
            CryptoError::Malformed
        );
    }

    #[test]
    fn rotation_reads_old_keys_and_writes_the_new_one() {
        let old = Keyring::new(&key(1), &[]);
        let sealed = old.encrypt(&SecretString::from("t".to_owned()), &ROW);
        let new_only = Keyring::new(&key(2), &[]);
        assert!(matches!(
            new_only.decrypt(&sealed, &ROW),
            Err(CryptoError::UnknownKey(_))
        ));
        let both = Keyring::new(&key(2), &[key(1)]);
        assert!(both.needs_rotation(&sealed));
        let plain = both.decrypt(&sealed, &ROW).unwrap();
        let resealed = both.encrypt(&plain, &ROW);
        assert!(!both.needs_rotation(&resealed));
        assert_eq!(
            new_only.decrypt(&resealed, &ROW).unwrap().expose_secret(),
            "t"
        );
        assert!(!format!("{both:?}").contains("t\""));
    }
}
