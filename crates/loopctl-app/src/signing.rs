//! The server's Ed25519 keys for verification runs. The secrets live in files of the server
//! (a directory readable only by its user), never in the database: a copy of the database
//! cannot sign a run. Each key has an id (from its public key), every run names the key that
//! signed it, and older keys keep verifying after a new one is made (rotation).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// The keys a server signs and verifies with; cheap to clone.
#[derive(Clone)]
pub struct SigningKeys {
    inner: Arc<Keys>,
}

struct Keys {
    /// Signs new runs: the newest key.
    current: (String, SigningKey),
    /// Every key this server knows, by id, for verifying.
    known: BTreeMap<String, VerifyingKey>,
    /// The key directory (none for an ephemeral key): the server's own files, outside the
    /// database, where it also keeps the audit chain heads it signed.
    dir: Option<PathBuf>,
}

/// Names the signing key's id only: the secret never reaches a log.
impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys").field("current", &self.inner.current.0).finish_non_exhaustive()
    }
}

/// Why the key directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyDirError {
    #[error("cannot use the signing-key directory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a signing key (expected 32 bytes, base64); remove it or restore the original")]
    Malformed { path: PathBuf },
    #[error("no randomness for a new signing key")]
    Random,
}

const KEY_SUFFIX: &str = ".ed25519";

impl SigningKeys {
    /// A key that lives only as long as this process (tests, benchmarks, tools): runs it signs
    /// stop verifying when the process ends.
    ///
    /// # Panics
    /// When the system has no randomness at all.
    #[must_use]
    pub fn ephemeral() -> SigningKeys {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the system provides randomness");
        SigningKeys::from_secrets(vec![secret], None)
    }

    /// Loads every key in `dir` (files `<created>-<id>.ed25519`, base64 of 32 secret bytes),
    /// creating the directory (0700) and a first key (0600) when there is none. The newest
    /// file (by name) signs.
    ///
    /// # Errors
    /// When the directory cannot be read or created, or holds a malformed key file.
    pub fn load_or_create(dir: &Path) -> Result<SigningKeys, KeyDirError> {
        let io = |source| KeyDirError::Io { path: dir.to_path_buf(), source };
        create_private_dir(dir).map_err(io)?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.to_string_lossy().ends_with(KEY_SUFFIX))
            .collect();
        files.sort();
        if files.is_empty() {
            files.push(SigningKeys::create_key(dir)?);
        }
        let mut secrets = Vec::with_capacity(files.len());
        for path in &files {
            let text =
                std::fs::read_to_string(path).map_err(|source| KeyDirError::Io { path: path.clone(), source })?;
            let bytes = STANDARD.decode(text.trim()).map_err(|_| KeyDirError::Malformed { path: path.clone() })?;
            let secret: [u8; 32] = bytes.try_into().map_err(|_| KeyDirError::Malformed { path: path.clone() })?;
            secrets.push(secret);
        }
        Ok(SigningKeys::from_secrets(secrets, Some(dir.to_path_buf())))
    }

    /// Writes a new key file into `dir` (0600); the next `load_or_create` signs with it.
    ///
    /// # Errors
    /// When the file cannot be written or there is no randomness.
    pub fn create_key(dir: &Path) -> Result<PathBuf, KeyDirError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|_| KeyDirError::Random)?;
        let id = key_id(&SigningKey::from_bytes(&secret).verifying_key());
        let created = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        let path = dir.join(format!("{created}-{id}{KEY_SUFFIX}"));
        write_private(&path, &STANDARD.encode(secret))
            .map_err(|source| KeyDirError::Io { path: path.clone(), source })?;
        Ok(path)
    }

    fn from_secrets(secrets: Vec<[u8; 32]>, dir: Option<PathBuf>) -> SigningKeys {
        let keys: Vec<SigningKey> = secrets.iter().map(SigningKey::from_bytes).collect();
        let known = keys.iter().map(|k| (key_id(&k.verifying_key()), k.verifying_key())).collect();
        let newest = keys.last().cloned().unwrap_or_else(|| SigningKey::from_bytes(&[0; 32]));
        let current = (key_id(&newest.verifying_key()), newest);
        SigningKeys { inner: Arc::new(Keys { current, known, dir }) }
    }

    /// Signs `payload` with the current key: (key id, base64 signature).
    #[must_use]
    pub fn sign(&self, payload: &str) -> (String, String) {
        let (id, key) = &self.inner.current;
        (id.clone(), STANDARD.encode(key.sign(payload.as_bytes()).to_bytes()))
    }

    /// Whether `signature` is a signature over exactly `payload` by the known key `key_id`.
    #[must_use]
    pub fn verify(&self, key_id: &str, payload: &str, signature: &str) -> bool {
        let Some(key) = self.inner.known.get(key_id) else {
            return false;
        };
        let Ok(bytes) = STANDARD.decode(signature) else {
            return false;
        };
        Signature::from_slice(&bytes).is_ok_and(|signature| key.verify(payload.as_bytes(), &signature).is_ok())
    }

    /// The public keys, newest last, as `(id, base64 public key)`.
    #[must_use]
    pub fn public_keys(&self) -> Vec<(String, String)> {
        self.inner.known.iter().map(|(id, key)| (id.clone(), STANDARD.encode(key.as_bytes()))).collect()
    }

    /// The key directory these keys were loaded from (none for an ephemeral key).
    #[must_use]
    pub fn dir(&self) -> Option<&Path> {
        self.inner.dir.as_deref()
    }

    /// The id of the key that signs new runs.
    #[must_use]
    pub fn current_id(&self) -> &str {
        &self.inner.current.0
    }
}

/// Bytes as lowercase hex digits.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex digits as bytes; `None` for anything else.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// A key's id: the first 16 hex digits of the SHA-256 of its public key.
fn key_id(key: &VerifyingKey) -> String {
    hex(&Sha256::digest(key.as_bytes())[..8])
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_signed_with_one_key_verifies_only_with_that_key_and_exact_bytes() {
        let keys = SigningKeys::ephemeral();
        let (id, signature) = keys.sign(r#"{"result":"pass"}"#);
        assert!(keys.verify(&id, r#"{"result":"pass"}"#, &signature));
        assert!(!keys.verify(&id, r#"{"result": "pass"}"#, &signature), "other bytes, other signature");
        assert!(!keys.verify("0000000000000000", r#"{"result":"pass"}"#, &signature), "unknown key id");
        let other = SigningKeys::ephemeral();
        assert!(!other.verify(&id, r#"{"result":"pass"}"#, &signature), "another server's key");
    }

    #[test]
    fn keys_live_in_private_files_and_old_keys_keep_verifying_after_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys_dir = dir.path().join("signing-keys");
        let first = SigningKeys::load_or_create(&keys_dir).expect("first key");
        let (old_id, old_signature) = first.sign("old run");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&keys_dir).expect("dir").permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{mode:o}");
            for entry in std::fs::read_dir(&keys_dir).expect("list") {
                let mode = entry.expect("entry").metadata().expect("meta").permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{mode:o}");
            }
        }
        assert_eq!(SigningKeys::load_or_create(&keys_dir).expect("reload").current_id(), old_id, "reuses its key");
        std::thread::sleep(std::time::Duration::from_millis(2));
        SigningKeys::create_key(&keys_dir).expect("rotate");
        let rotated = SigningKeys::load_or_create(&keys_dir).expect("after rotation");
        assert_ne!(rotated.current_id(), old_id, "the new key signs");
        assert!(rotated.verify(&old_id, "old run", &old_signature), "the old key still verifies");
        assert_eq!(rotated.public_keys().len(), 2);
    }

    #[test]
    fn a_malformed_key_file_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("x.ed25519"), "not a key").expect("write");
        let Err(err) = SigningKeys::load_or_create(dir.path()) else { panic!("a malformed key is refused") };
        assert!(err.to_string().contains("x.ed25519"), "{err}");
    }
}
