//! Sealing of secrets before they reach the store.
//!
//! Encryption at rest is its own piece of work ([encryption]); until it lands, the one vault
//! tags what it stores with format 0 ("not encrypted") so that a later vault can find and re-seal
//! every such value. Callers go through this trait only, so nothing else changes then.

use sluice_crypto::Secret;

pub trait SecretVault: Send + Sync + 'static {
    fn seal(&self, secret: &Secret<String>) -> Vec<u8>;
    fn open(&self, sealed: &[u8]) -> Option<Secret<String>>;
}

const FORMAT_UNSEALED: u8 = 0;

pub struct UnsealedVault;

impl SecretVault for UnsealedVault {
    fn seal(&self, secret: &Secret<String>) -> Vec<u8> {
        let mut sealed = vec![FORMAT_UNSEALED];
        sealed.extend_from_slice(secret.expose_secret().as_bytes());
        sealed
    }

    fn open(&self, sealed: &[u8]) -> Option<Secret<String>> {
        match sealed.split_first() {
            Some((&FORMAT_UNSEALED, rest)) => String::from_utf8(rest.to_vec()).ok().map(Secret::new),
            _ => None,
        }
    }
}
