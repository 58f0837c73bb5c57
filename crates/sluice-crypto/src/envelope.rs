//! Authenticated encryption at rest (AES-256-GCM) with a self-describing header and an
//! encryption context.
//!
//! Layout: `"SLE" | format (1) | key id length (1) | key id | key version (u32, big-endian) |
//! nonce (12) | ciphertext | tag (16)`. The associated data is the header followed by the
//! context (for example `pipeline/df-…/definition/3`), so a ciphertext moved to another row, or
//! with its header edited, fails to decrypt. Nonces come from the caller's random source.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::Secret;

const MAGIC: &[u8; 3] = b"SLE";
const FORMAT: u8 = 1;
pub const KEY_LEN: usize = 32;

/// 256 bits of key material, never printed.
#[derive(Clone)]
pub struct KeyMaterial(Secret<[u8; KEY_LEN]>);

impl KeyMaterial {
    pub fn from_bytes(bytes: &[u8]) -> Result<KeyMaterial, EnvelopeError> {
        let array: [u8; KEY_LEN] = bytes.try_into().map_err(|_| EnvelopeError::BadKey)?;
        Ok(KeyMaterial(Secret::new(array)))
    }

    pub fn expose(&self) -> &[u8; KEY_LEN] {
        self.0.expose_secret()
    }

    fn aead(&self) -> Result<LessSafeKey, EnvelopeError> {
        UnboundKey::new(&AES_256_GCM, self.expose())
            .map(LessSafeKey::new)
            .map_err(|_| EnvelopeError::BadKey)
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("KeyMaterial(**REDACTED**)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the key is not 256 bits")]
    BadKey,
    #[error("the ciphertext is not in Sluice's envelope format")]
    Malformed,
    #[error("the ciphertext needs key `{id}` version {version}, which is not available")]
    UnknownKey { id: String, version: u32 },
    #[error("the ciphertext does not decrypt: it was altered, or belongs to another context")]
    Authentication,
}

/// Who the ciphertext says encrypted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key_id: String,
    pub key_version: u32,
}

fn header_bytes(key_id: &str, key_version: u32) -> Vec<u8> {
    let mut header = Vec::with_capacity(3 + 1 + 1 + key_id.len() + 4);
    header.extend_from_slice(MAGIC);
    header.push(FORMAT);
    header.push(key_id.len() as u8);
    header.extend_from_slice(key_id.as_bytes());
    header.extend_from_slice(&key_version.to_be_bytes());
    header
}

fn associated_data(header: &[u8], context: &str) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(context.as_bytes());
    aad
}

/// Encrypts `plaintext` under `key` (`key_id` at `key_version`, at most 255 bytes of id).
pub fn seal(
    key: &KeyMaterial,
    key_id: &str,
    key_version: u32,
    context: &str,
    nonce: [u8; NONCE_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    if key_id.len() > 255 {
        return Err(EnvelopeError::BadKey);
    }
    let header = header_bytes(key_id, key_version);
    let mut in_out = plaintext.to_vec();
    key.aead()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated_data(&header, context)),
            &mut in_out,
        )
        .map_err(|_| EnvelopeError::BadKey)?;
    let mut sealed = header;
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&in_out);
    Ok(sealed)
}

/// Reads the header without decrypting.
pub fn header(sealed: &[u8]) -> Result<(Header, usize), EnvelopeError> {
    if sealed.len() < 5 || &sealed[..3] != MAGIC || sealed[3] != FORMAT {
        return Err(EnvelopeError::Malformed);
    }
    let id_len = sealed[4] as usize;
    let id_end = 5 + id_len;
    let header_end = id_end + 4;
    if sealed.len() < header_end + NONCE_LEN + 16 {
        return Err(EnvelopeError::Malformed);
    }
    let key_id = std::str::from_utf8(&sealed[5..id_end])
        .map_err(|_| EnvelopeError::Malformed)?
        .to_string();
    let key_version = u32::from_be_bytes(
        sealed[id_end..header_end]
            .try_into()
            .map_err(|_| EnvelopeError::Malformed)?,
    );
    Ok((Header { key_id, key_version }, header_end))
}

/// Decrypts with the key `lookup` gives for the header's id and version.
pub fn open(
    lookup: impl Fn(&Header) -> Option<KeyMaterial>,
    context: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let (header, header_end) = header(sealed)?;
    let key = lookup(&header).ok_or_else(|| EnvelopeError::UnknownKey {
        id: header.key_id.clone(),
        version: header.key_version,
    })?;
    let nonce: [u8; NONCE_LEN] = sealed[header_end..header_end + NONCE_LEN]
        .try_into()
        .map_err(|_| EnvelopeError::Malformed)?;
    let mut in_out = sealed[header_end + NONCE_LEN..].to_vec();
    let aad = associated_data(&sealed[..header_end], context);
    let plaintext = key
        .aead()?
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut in_out)
        .map_err(|_| EnvelopeError::Authentication)?;
    Ok(plaintext.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> KeyMaterial {
        KeyMaterial::from_bytes(&[byte; KEY_LEN]).expect("32 bytes")
    }

    #[test]
    fn round_trip_and_every_kind_of_failure() {
        let sealed = seal(
            &key(1),
            "kek",
            2,
            "pipeline/df-1/definition/1",
            [7; 12],
            b"{\"secret\":\"x\"}",
        )
        .expect("seal");
        assert_eq!(
            header(&sealed).expect("header").0,
            Header {
                key_id: "kek".into(),
                key_version: 2
            }
        );
        let lookup = |header: &Header| (header.key_id == "kek" && header.key_version == 2).then(|| key(1));
        assert_eq!(
            open(lookup, "pipeline/df-1/definition/1", &sealed).expect("opens"),
            b"{\"secret\":\"x\"}"
        );
        // Another row's context.
        assert_eq!(
            open(lookup, "pipeline/df-2/definition/1", &sealed),
            Err(EnvelopeError::Authentication)
        );
        // A flipped ciphertext byte.
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            open(lookup, "pipeline/df-1/definition/1", &tampered),
            Err(EnvelopeError::Authentication)
        );
        // The header claims another version: unknown.
        let mut relabelled = sealed.clone();
        relabelled[11] = 9;
        assert!(matches!(
            open(lookup, "pipeline/df-1/definition/1", &relabelled),
            Err(EnvelopeError::UnknownKey { version: 9, .. })
        ));
        // The wrong key for the right label.
        assert_eq!(
            open(|_: &Header| Some(key(3)), "pipeline/df-1/definition/1", &sealed),
            Err(EnvelopeError::Authentication)
        );
        assert_eq!(open(lookup, "c", b"plain json"), Err(EnvelopeError::Malformed));
        assert!(!sealed.windows(6).any(|window| window == b"secret"));
    }
}
