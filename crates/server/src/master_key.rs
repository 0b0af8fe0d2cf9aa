//! The master key for encryption at rest.
//!
//! Read from `MCPGATE_ENCRYPTION_KEY` (base64 of 32 bytes) or
//! `MCPGATE_ENCRYPTION_KEY_FILE`. With neither, a key file `master.key` in the
//! data dir is used, generated on the first run with mode 0600 and a warning:
//! that keeps a first local run free of setup, while production deployments
//! are told to manage the key themselves.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};

use crate::config::Config;

/// Name of the generated key file inside the data dir.
pub const KEY_FILE_NAME: &str = "master.key";

/// 32 secret bytes, zeroized on drop, never printed.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("{source_name} is not valid: expected base64 of exactly 32 bytes (generate one with `openssl rand -base64 32`)")]
    Invalid { source_name: String },
    #[error("could not {action} master key file {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the key came from, for the start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Configured,
    ExistingFile(PathBuf),
    GeneratedFile(PathBuf),
}

impl MasterKey {
    /// Decode a base64 key.
    pub fn from_base64(text: &str, source_name: &str) -> Result<Self, MasterKeyError> {
        let invalid = || MasterKeyError::Invalid {
            source_name: source_name.to_owned(),
        };
        let bytes = zeroize::Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| invalid())?);
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| invalid())?;
        Ok(Self(SecretBox::new(Box::new(array))))
    }

    /// Load the key the configuration names, or the data dir's key file,
    /// generating that file when it does not exist.
    pub fn load(config: &Config) -> Result<(Self, KeySource), MasterKeyError> {
        if let Some(key) = &config.encryption_key {
            let name = if config.encryption_key_file.is_some() {
                "MCPGATE_ENCRYPTION_KEY_FILE"
            } else {
                "MCPGATE_ENCRYPTION_KEY"
            };
            return Ok((
                Self::from_base64(key.expose_secret(), name)?,
                KeySource::Configured,
            ));
        }
        let path = config.data_dir.join(KEY_FILE_NAME);
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|source| MasterKeyError::Io {
                action: "read",
                path: path.clone(),
                source,
            })?;
            let key = Self::from_base64(&text, &path.display().to_string())?;
            return Ok((key, KeySource::ExistingFile(path)));
        }
        let key = Self::generate_file(&path)?;
        Ok((key, KeySource::GeneratedFile(path)))
    }

    fn generate_file(path: &Path) -> Result<Self, MasterKeyError> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        let encoded = zeroize::Zeroizing::new(STANDARD.encode(bytes.as_ref()));
        let io = |action| {
            move |source| MasterKeyError::Io {
                action,
                path: path.to_owned(),
                source,
            }
        };
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(io("create the directory of"))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io("create"))?;
        file.write_all(encoded.as_bytes()).map_err(io("write"))?;
        file.write_all(b"\n").map_err(io("write"))?;
        file.sync_all().map_err(io("sync"))?;
        Ok(Self(SecretBox::new(Box::new(*bytes))))
    }

    /// A 32-byte key for one purpose, derived as HMAC-SHA256(master, label),
    /// so each use (CSRF tokens, refresh rotation, ...) has its own key.
    pub fn derive(&self, label: &str) -> zeroize::Zeroizing<[u8; 32]> {
        use hmac::Mac;
        let mut mac = crate::crypto::hmac_sha256(self.expose());
        mac.update(label.as_bytes());
        zeroize::Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// The raw key bytes, for the cipher.
    pub fn expose(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

/// Create `dir` (mode 0700 on Unix) unless it exists.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_private_file_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("fresh"),
            ..Config::default()
        };
        let (first, source) = MasterKey::load(&config).unwrap();
        let path = dir.path().join("fresh").join(KEY_FILE_NAME);
        assert_eq!(source, KeySource::GeneratedFile(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (second, source) = MasterKey::load(&config).unwrap();
        assert_eq!(source, KeySource::ExistingFile(path));
        assert_eq!(first.expose(), second.expose());
    }

    #[test]
    fn configured_keys_must_be_32_bytes_and_are_never_printed() {
        let short = STANDARD.encode([1u8; 16]);
        let err = MasterKey::from_base64(&short, "MCPGATE_ENCRYPTION_KEY").unwrap_err();
        assert!(err.to_string().contains("MCPGATE_ENCRYPTION_KEY"));
        assert!(!err.to_string().contains(&short));
        let good = STANDARD.encode([7u8; 32]);
        let key = MasterKey::from_base64(&good, "x").unwrap();
        assert_eq!(key.expose(), &[7u8; 32]);
        assert_eq!(format!("{key:?}"), "MasterKey([REDACTED])");
    }
}
