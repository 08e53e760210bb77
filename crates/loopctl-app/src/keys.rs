//! API keys and tokens: minted from 30 random bytes, shown once, stored as SHA-256 only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppError;

/// A freshly minted key: the raw text (shown once) and what the store keeps.
pub struct MintedKey {
    pub raw: String,
    pub hash: Vec<u8>,
    pub prefix: String,
}

/// `lc_` + 40 characters of URL-safe base64, as the reference mints them.
///
/// # Errors
/// When the operating system's random source fails.
pub fn mint() -> Result<MintedKey, AppError> {
    let raw = format!("lc_{}", URL_SAFE_NO_PAD.encode(random::<30>()?));
    let prefix = raw.chars().take(8).collect();
    Ok(MintedKey { hash: hash(&raw), raw, prefix })
}

/// 32 random bytes as URL-safe base64: a session id or a CSRF token.
///
/// # Errors
/// When the operating system's random source fails.
pub fn random_token() -> Result<String, AppError> {
    Ok(URL_SAFE_NO_PAD.encode(random::<32>()?))
}

/// `N` bytes from the operating system's random source.
fn random<const N: usize>() -> Result<[u8; N], AppError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|err| {
        tracing::error!(%err, "random source failed");
        AppError::internal()
    })?;
    Ok(bytes)
}

pub fn hash(raw: &str) -> Vec<u8> {
    Sha256::digest(raw.as_bytes()).to_vec()
}

/// Constant-time comparison, so response timing says nothing about how much matched.
pub fn same_hash(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_have_the_reference_shape() {
        let key = mint().expect("random");
        assert!(key.raw.starts_with("lc_"));
        assert_eq!(key.raw.len(), 43);
        assert_eq!(key.prefix, key.raw[..8]);
        assert!(same_hash(&key.hash, &hash(&key.raw)));
        assert!(!same_hash(&key.hash, &hash("lc_other")));
        assert_ne!(mint().expect("random").raw, key.raw);
    }
}
