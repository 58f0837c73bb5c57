//! Keys at rest: the key-encryption key (KEK) ring and the envelope operations on it.
//!
//! The KEK lives in files `kek-v<N>.key` (32 raw bytes, mode 0600) in a key folder the operator
//! controls (`DIR/keys` by default; mount it from a secret store to keep it off the database's
//! disk). Rotation adds a version; every version stays available to decrypt. Each pipeline has
//! its own data key, wrapped by the newest KEK and bound to the pipeline, so deleting that one
//! row destroys the pipeline's data (crypto-shredding).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use sluice_crypto::envelope::{self, EnvelopeError, Header, KEY_LEN, KeyMaterial};

const KEK_ID: &str = "kek";

/// Key-encryption keys given as `(version, 32 bytes)` pairs.
pub type KekVersions = Vec<(u32, Vec<u8>)>;

pub struct Keyring {
    versions: BTreeMap<u32, KeyMaterial>,
}

fn version_of(file_name: &str) -> Option<u32> {
    file_name.strip_prefix("kek-v")?.strip_suffix(".key")?.parse().ok()
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    Ok(bytes)
}

fn write_key_file(path: &Path, key: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create key file {}", path.display()))?;
    file.write_all(key)?;
    file.sync_all()?;
    Ok(())
}

impl Keyring {
    /// Loads every KEK version in `directory`; creates version 1 when there is none and
    /// `may_create` (a new data directory). An existing store without its keys is refused: a new
    /// KEK would leave everything already sealed unreadable.
    pub fn open_or_create(directory: &Path, may_create: bool) -> anyhow::Result<Keyring> {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("cannot create key folder {}", directory.display()))?;
        std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o700))?;
        let keyring = Keyring::open(directory)?;
        if !keyring.versions.is_empty() {
            return Ok(keyring);
        }
        if !may_create {
            anyhow::bail!(
                "the key folder {} holds no key-encryption key, but the store already holds data sealed with one: restore the key files (kek-v<N>.key) or point --key-dir at them",
                directory.display()
            );
        }
        write_key_file(&directory.join("kek-v1.key"), &random_bytes::<KEY_LEN>()?)?;
        eprintln!(
            "sluice: created key-encryption key version 1 in {} (mode 0600); back it up: without it the data cannot be read",
            directory.display()
        );
        Keyring::open(directory)
    }

    /// A keyring handed over by the operator's environment (for example from a KMS or Vault
    /// agent) instead of a folder: `(version, 32 bytes)` pairs.
    pub fn from_versions(versions: KekVersions) -> anyhow::Result<Keyring> {
        let mut keyring = Keyring {
            versions: BTreeMap::new(),
        };
        for (version, bytes) in versions {
            let key = KeyMaterial::from_bytes(&bytes)
                .map_err(|_| anyhow::anyhow!("key-encryption key version {version} is not 32 bytes"))?;
            keyring.versions.insert(version, key);
        }
        if keyring.versions.is_empty() {
            anyhow::bail!("no key-encryption key was given");
        }
        Ok(keyring)
    }

    pub fn open(directory: &Path) -> anyhow::Result<Keyring> {
        let mut versions = BTreeMap::new();
        let entries = match std::fs::read_dir(directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Keyring { versions }),
            Err(error) => return Err(error).with_context(|| format!("cannot read key folder {}", directory.display())),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(version) = version_of(&name) else { continue };
            let bytes =
                std::fs::read(entry.path()).with_context(|| format!("cannot read {}", entry.path().display()))?;
            let key = KeyMaterial::from_bytes(&bytes)
                .map_err(|_| anyhow::anyhow!("{} does not hold a 256-bit key", entry.path().display()))?;
            versions.insert(version, key);
        }
        Ok(Keyring { versions })
    }

    /// Adds a new KEK version; returns its number. Earlier versions stay for decryption.
    pub fn rotate(directory: &Path) -> anyhow::Result<u32> {
        let current = Keyring::open(directory)?;
        let next = current.versions.keys().next_back().map_or(1, |newest| newest + 1);
        std::fs::create_dir_all(directory)?;
        write_key_file(&directory.join(format!("kek-v{next}.key")), &random_bytes::<KEY_LEN>()?)?;
        Ok(next)
    }

    pub fn newest_version(&self) -> Option<u32> {
        self.versions.keys().next_back().copied()
    }
}

pub fn default_key_directory(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// Envelope encryption over the keyring. A version added by `sluice keys rotate` while the
/// server runs is picked up: sealing uses the newest version in the folder, and an unknown
/// version met while opening reloads the folder once.
pub struct Cipher {
    directory: Option<PathBuf>,
    keyring: std::sync::RwLock<Arc<Keyring>>,
    loaded_at: std::sync::Mutex<Option<std::time::SystemTime>>,
}

fn sealing_error(error: EnvelopeError) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

fn modified(directory: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(directory)
        .and_then(|metadata| metadata.modified())
        .ok()
}

impl Cipher {
    /// A cipher over the keyring loaded from `directory`, watching it for new versions.
    pub fn from_directory(directory: &Path, keyring: Keyring) -> anyhow::Result<Cipher> {
        let mut cipher = Cipher::new(keyring)?;
        cipher.directory = Some(directory.to_path_buf());
        cipher.loaded_at = std::sync::Mutex::new(modified(directory));
        Ok(cipher)
    }

    pub fn new(keyring: Keyring) -> anyhow::Result<Cipher> {
        if keyring.newest_version().is_none() {
            anyhow::bail!("the key folder holds no key-encryption key");
        }
        Ok(Cipher {
            directory: None,
            keyring: std::sync::RwLock::new(Arc::new(keyring)),
            loaded_at: std::sync::Mutex::new(None),
        })
    }

    fn current(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(keyring) => keyring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the key folder if it changed (or when `force`).
    fn refresh(&self, force: bool) {
        let Some(directory) = &self.directory else { return };
        let now = modified(directory);
        let Ok(mut loaded_at) = self.loaded_at.lock() else {
            return;
        };
        if !force && *loaded_at == now {
            return;
        }
        match Keyring::open(directory) {
            Ok(keyring) if keyring.newest_version().is_some() => {
                if let Ok(mut current) = self.keyring.write() {
                    *current = Arc::new(keyring);
                }
                *loaded_at = now;
            }
            Ok(_) => {
                tracing::error!(directory = %directory.display(), "the key folder lost its keys; keeping the ones loaded")
            }
            Err(error) => tracing::error!(error = %format!("{error:#}"), "cannot reload the key folder"),
        }
    }

    /// The key folder, when the keys come from one (not from the environment).
    pub fn directory(&self) -> Option<&Path> {
        self.directory.as_deref()
    }

    /// The KEK versions known, oldest first (after picking up any added to the folder).
    pub fn versions(&self) -> Vec<u32> {
        self.refresh(false);
        self.current().versions.keys().copied().collect()
    }

    /// Adds a KEK version to the key folder and seals with it from now on.
    pub fn rotate(&self) -> anyhow::Result<u32> {
        let directory = self
            .directory
            .as_deref()
            .context("the key-encryption keys do not come from a key folder")?;
        let version = Keyring::rotate(directory)?;
        self.refresh(true);
        Ok(version)
    }

    fn newest(&self) -> anyhow::Result<(u32, KeyMaterial)> {
        self.refresh(false);
        let keyring = self.current();
        let (version, key) = keyring.versions.iter().next_back().context("the keyring is empty")?;
        Ok((*version, key.clone()))
    }

    fn kek_lookup(keyring: &Keyring) -> impl Fn(&Header) -> Option<KeyMaterial> + '_ {
        |header: &Header| {
            if header.key_id == KEK_ID {
                keyring.versions.get(&header.key_version).cloned()
            } else {
                None
            }
        }
    }

    /// Seals directly under the newest KEK (small secrets: access keys, MFA seeds, data keys).
    pub fn seal_with_kek(&self, context: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let (version, key) = self.newest()?;
        envelope::seal(&key, KEK_ID, version, context, random_bytes()?, plaintext).map_err(sealing_error)
    }

    pub fn open_with_kek(&self, context: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        let keyring = self.current();
        match envelope::open(Cipher::kek_lookup(&keyring), context, sealed) {
            Err(EnvelopeError::UnknownKey { .. }) => {
                self.refresh(true);
                let keyring = self.current();
                envelope::open(Cipher::kek_lookup(&keyring), context, sealed).map_err(sealing_error)
            }
            other => other.map_err(sealing_error),
        }
    }

    /// Whether a KEK-sealed value is under an older KEK version than the newest.
    pub fn needs_rewrap(&self, sealed: &[u8]) -> bool {
        let Ok((newest, _)) = self.newest() else { return false };
        envelope::header(sealed).is_ok_and(|(header, _)| header.key_id == KEK_ID && header.key_version != newest)
    }

    fn data_key_context(pipeline_id: &str) -> String {
        format!("data-key/{pipeline_id}")
    }

    /// A fresh data key for a pipeline, and its KEK-wrapped form to store.
    pub fn new_data_key(&self, pipeline_id: &str) -> anyhow::Result<(KeyMaterial, Vec<u8>)> {
        let bytes = random_bytes::<KEY_LEN>()?;
        let key = KeyMaterial::from_bytes(&bytes).map_err(sealing_error)?;
        let wrapped = self.seal_with_kek(&Cipher::data_key_context(pipeline_id), key.expose())?;
        Ok((key, wrapped))
    }

    pub fn unwrap_data_key(&self, pipeline_id: &str, wrapped: &[u8]) -> anyhow::Result<KeyMaterial> {
        let bytes = self.open_with_kek(&Cipher::data_key_context(pipeline_id), wrapped)?;
        KeyMaterial::from_bytes(&bytes).map_err(sealing_error)
    }

    /// Re-wraps a pipeline's data key under the newest KEK (the data it protects is untouched).
    pub fn rewrap_data_key(&self, pipeline_id: &str, wrapped: &[u8]) -> anyhow::Result<Vec<u8>> {
        let key = self.unwrap_data_key(pipeline_id, wrapped)?;
        self.seal_with_kek(&Cipher::data_key_context(pipeline_id), key.expose())
    }

    pub fn seal_with_data_key(
        &self,
        data_key: &KeyMaterial,
        pipeline_id: &str,
        context: &str,
        plaintext: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        envelope::seal(
            data_key,
            &format!("dek:{pipeline_id}"),
            1,
            context,
            random_bytes()?,
            plaintext,
        )
        .map_err(sealing_error)
    }

    pub fn open_with_data_key(
        &self,
        data_key: &KeyMaterial,
        pipeline_id: &str,
        context: &str,
        sealed: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        let expected_id = format!("dek:{pipeline_id}");
        envelope::open(
            |header: &Header| (header.key_id == expected_id).then(|| data_key.clone()),
            context,
            sealed,
        )
        .map_err(sealing_error)
    }
}

/// Context binding a definition version's ciphertext to its row.
pub fn definition_context(pipeline_id: &str, version: i64) -> String {
    format!("pipeline/{pipeline_id}/definition/{version}")
}

/// Context binding a runner's report on an attempt to the attempt.
pub fn attempt_report_context(pipeline_id: &str, attempt_id: &str) -> String {
    format!("pipeline/{pipeline_id}/attempt/{attempt_id}/report")
}

/// Context binding an access key's sealed secret to its key id.
pub fn access_key_context(access_key_id: &str) -> String {
    format!("access-key/{access_key_id}")
}

/// Context binding a virtual MFA device's sealed seed to its serial number.
pub fn mfa_seed_context(serial_number: &str) -> String {
    format!("mfa-seed/{serial_number}")
}

/// What `rewrap` re-sealed, or (from `pending`) what is not yet under the newest KEK.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RewrapReport {
    pub access_keys: usize,
    pub data_keys: usize,
    pub mfa_seeds: usize,
    pub plaintext_definitions: usize,
    #[serde(default)]
    pub role_secrets: usize,
}

impl RewrapReport {
    pub fn total(&self) -> usize {
        self.access_keys + self.data_keys + self.mfa_seeds + self.plaintext_definitions + self.role_secrets
    }
}

/// A value sealed under a KEK version older than the newest, or stored before encryption at
/// rest (format 0).
fn stale(cipher: &Cipher, sealed: &[u8]) -> bool {
    sealed.first() == Some(&0) || cipher.needs_rewrap(sealed)
}

/// Counts what `rewrap` would re-seal, in one read.
pub async fn pending(tx: &mut dyn sluice_store::Transaction, cipher: &Cipher) -> anyhow::Result<RewrapReport> {
    let count = |items: Vec<(String, Vec<u8>)>| items.iter().filter(|(_, sealed)| stale(cipher, sealed)).count();
    Ok(RewrapReport {
        access_keys: count(tx.access_key_secrets().await?),
        data_keys: count(tx.data_keys().await?),
        mfa_seeds: count(tx.mfa_seeds().await?),
        role_secrets: tx
            .all_role_secrets()
            .await?
            .iter()
            .filter(|(_, _, sealed)| stale(cipher, sealed))
            .count(),
        plaintext_definitions: tx
            .definition_versions()
            .await?
            .iter()
            .filter(|(_, _, format)| *format == sluice_store::DEFINITION_FORMAT_PLAINTEXT)
            .count(),
    })
}

/// Re-seals a KEK-sealed small secret (or a format-0 plaintext one) under the newest KEK.
fn reseal(cipher: &Cipher, context: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
    let plaintext = match sealed.split_first() {
        Some((0, rest)) => rest.to_vec(),
        _ => cipher.open_with_kek(context, sealed)?,
    };
    cipher.seal_with_kek(context, &plaintext)
}

/// Re-seals everything under the newest KEK: access-key secrets (including any from before
/// encryption at rest), MFA seeds, role secrets, pipeline data keys, and definitions stored in plaintext. Each
/// item is its own transaction, so the server keeps serving and an interrupted run resumes where
/// it stopped (items already under the newest key are skipped).
pub async fn rewrap(store: &dyn sluice_store::Store, cipher: &Cipher, now: &str) -> anyhow::Result<RewrapReport> {
    let mut report = RewrapReport::default();
    let access_keys = store.begin_read().await?.access_key_secrets().await?;
    for (access_key_id, sealed) in access_keys {
        if !stale(cipher, &sealed) {
            continue;
        }
        let resealed = reseal(cipher, &access_key_context(&access_key_id), &sealed)?;
        let mut tx = store.begin().await?;
        tx.replace_access_key_secret(&access_key_id, &resealed).await?;
        tx.commit().await?;
        report.access_keys += 1;
    }
    let seeds = store.begin_read().await?.mfa_seeds().await?;
    for (serial_number, sealed) in seeds {
        if !stale(cipher, &sealed) {
            continue;
        }
        let resealed = reseal(cipher, &mfa_seed_context(&serial_number), &sealed)?;
        let mut tx = store.begin().await?;
        tx.replace_mfa_seed(&serial_number, &resealed).await?;
        tx.commit().await?;
        report.mfa_seeds += 1;
    }
    let role_secrets = store.begin_read().await?.all_role_secrets().await?;
    for (role_id, name, sealed) in role_secrets {
        if !stale(cipher, &sealed) {
            continue;
        }
        let resealed = reseal(cipher, &crate::roles::role_secret_context(&role_id, &name), &sealed)?;
        let mut tx = store.begin().await?;
        if tx.reseal_role_secret(&role_id, &name, &sealed, &resealed).await? {
            report.role_secrets += 1;
        }
        tx.commit().await?;
    }
    let data_keys = store.begin_read().await?.data_keys().await?;
    for (pipeline_id, wrapped) in data_keys {
        if !cipher.needs_rewrap(&wrapped) {
            continue;
        }
        let rewrapped = cipher.rewrap_data_key(&pipeline_id, &wrapped)?;
        let mut tx = store.begin().await?;
        tx.replace_data_key(&pipeline_id, &rewrapped).await?;
        tx.commit().await?;
        report.data_keys += 1;
    }
    let versions = store.begin_read().await?.definition_versions().await?;
    for (pipeline_id, version, format) in versions {
        if format != sluice_store::DEFINITION_FORMAT_PLAINTEXT {
            continue;
        }
        let mut tx = store.begin().await?;
        let Some(stored) = tx.definition(&pipeline_id, version).await? else {
            continue;
        };
        if stored.format_version != sluice_store::DEFINITION_FORMAT_PLAINTEXT {
            continue;
        }
        let wrapped = match tx.data_key(&pipeline_id).await? {
            Some(wrapped) => wrapped,
            None => {
                let (_, wrapped) = cipher.new_data_key(&pipeline_id)?;
                tx.insert_data_key(&pipeline_id, &wrapped, now).await?;
                wrapped
            }
        };
        let data_key = cipher.unwrap_data_key(&pipeline_id, &wrapped)?;
        let body = cipher.seal_with_data_key(
            &data_key,
            &pipeline_id,
            &definition_context(&pipeline_id, version),
            &stored.body,
        )?;
        let sealed = sluice_store::StoredDefinition {
            format_version: sluice_store::DEFINITION_FORMAT_SEALED,
            body,
            errored: stored.errored,
        };
        tx.replace_definition_body(&pipeline_id, version, &sealed).await?;
        tx.commit().await?;
        report.plaintext_definitions += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_old_versions_readable_and_data_keys_bound_to_their_pipeline() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let cipher = Cipher::new(Keyring::open_or_create(directory.path(), true).expect("keyring")).expect("cipher");
        let sealed_v1 = cipher.seal_with_kek("access-key/AKIA1", b"secret").expect("seal");
        let (_, wrapped_v1) = cipher.new_data_key("df-1").expect("data key");
        assert_eq!(Keyring::rotate(directory.path()).expect("rotate"), 2);
        let rotated = Cipher::new(Keyring::open(directory.path()).expect("keyring")).expect("cipher");
        assert!(rotated.needs_rewrap(&sealed_v1));
        assert_eq!(
            rotated
                .open_with_kek("access-key/AKIA1", &sealed_v1)
                .expect("old version opens"),
            b"secret"
        );
        assert!(
            rotated.open_with_kek("access-key/AKIA2", &sealed_v1).is_err(),
            "bound to its key id"
        );
        let rewrapped = rotated.rewrap_data_key("df-1", &wrapped_v1).expect("rewrap");
        assert!(!rotated.needs_rewrap(&rewrapped));
        let data_key = rotated.unwrap_data_key("df-1", &rewrapped).expect("unwrap");
        assert!(
            rotated.unwrap_data_key("df-2", &rewrapped).is_err(),
            "bound to its pipeline"
        );
        let body = rotated
            .seal_with_data_key(&data_key, "df-1", &definition_context("df-1", 1), b"{}")
            .expect("seal");
        assert!(
            rotated
                .open_with_data_key(&data_key, "df-1", &definition_context("df-1", 2), &body)
                .is_err(),
            "bound to its version"
        );
        assert_eq!(
            rotated
                .open_with_data_key(&data_key, "df-1", &definition_context("df-1", 1), &body)
                .expect("opens"),
            b"{}"
        );
        // A key file is private.
        let mode = std::fs::metadata(directory.path().join("kek-v2.key"))
            .expect("file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}
