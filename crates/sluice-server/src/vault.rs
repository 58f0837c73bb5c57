//! Sealing of secrets before they reach the store: under the KEK, bound to what they belong to.
//! Format 0 ("not encrypted", a leading zero byte) from before encryption at rest is still read,
//! and `sluice keys rewrap` seals such values.

use std::sync::Arc;

use sluice_crypto::Secret;

use crate::keys::Cipher;

pub trait SecretVault: Send + Sync + 'static {
    fn seal(&self, context: &str, secret: &Secret<String>) -> anyhow::Result<Vec<u8>>;
    fn open(&self, context: &str, sealed: &[u8]) -> Option<Secret<String>>;
}

const FORMAT_UNSEALED: u8 = 0;

pub struct KekVault {
    pub cipher: Arc<Cipher>,
}

impl SecretVault for KekVault {
    fn seal(&self, context: &str, secret: &Secret<String>) -> anyhow::Result<Vec<u8>> {
        self.cipher.seal_with_kek(context, secret.expose_secret().as_bytes())
    }

    fn open(&self, context: &str, sealed: &[u8]) -> Option<Secret<String>> {
        let plaintext = match sealed.split_first() {
            Some((&FORMAT_UNSEALED, rest)) => rest.to_vec(),
            _ => self.cipher.open_with_kek(context, sealed).ok()?,
        };
        String::from_utf8(plaintext).ok().map(Secret::new)
    }
}
