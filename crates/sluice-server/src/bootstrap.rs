//! First start of an empty data directory: the account, its root identity and the root access
//! key, written once to `bootstrap-credentials.json` (mode 0600) for the operator.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use sluice_crypto::Secret;
use sluice_store::{IdentityRecord, Store};

use crate::clock::{Clock, render};
use crate::vault::SecretVault;

pub const CREDENTIALS_FILE: &str = "bootstrap-credentials.json";

pub(crate) fn random_from(alphabet: &[u8], length: usize) -> anyhow::Result<String> {
    let random = SystemRandom::new();
    let mut bytes = vec![0u8; length];
    random
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    // 256 is a multiple of neither alphabet length, so reject and redraw to stay uniform.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(length);
    let mut byte_index = 0;
    while out.len() < length {
        if byte_index == bytes.len() {
            random
                .fill(&mut bytes)
                .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
            byte_index = 0;
        }
        let byte = bytes[byte_index] as usize;
        byte_index += 1;
        if byte < limit {
            out.push(alphabet[byte % alphabet.len()] as char);
        }
    }
    Ok(out)
}

pub fn random_upper_alphanumeric(length: usize) -> anyhow::Result<String> {
    random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", length)
}

pub fn new_access_key() -> anyhow::Result<(String, Secret<String>)> {
    let access_key_id = format!("AKIA{}", random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)?);
    let secret = random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40)?;
    Ok((access_key_id, Secret::new(secret)))
}

/// Creates the root identity and key if the store has no identity yet. Idempotent. Returns the
/// account id.
pub async fn ensure_root(
    store: &dyn Store,
    vault: &dyn SecretVault,
    clock: &dyn Clock,
    data_dir: &Path,
) -> anyhow::Result<String> {
    let mut tx = store.begin().await?;
    if let Some(account_id) = tx.root_account_id().await? {
        return Ok(account_id);
    }
    let account_id = random_from(b"0123456789", 12)?;
    let root = IdentityRecord {
        identity_id: account_id.clone(),
        account_id: account_id.clone(),
        kind: "Root".into(),
        name: "root".into(),
        arn: format!("arn:aws:iam::{account_id}:root"),
    };
    let now = render(clock.now());
    tx.insert_identity(&root, &now).await?;
    let (access_key_id, secret) = new_access_key()?;
    tx.insert_access_key(
        &access_key_id,
        &root.identity_id,
        &vault.seal(&crate::keys::access_key_context(&access_key_id), &secret)?,
        &now,
    )
    .await?;

    // The file is written (0600, never world-readable, not even briefly) before the commit and
    // moved into place after it, so a crash leaves either both or neither.
    let final_path = data_dir.join(CREDENTIALS_FILE);
    let temporary_path = data_dir.join(format!("{CREDENTIALS_FILE}.tmp"));
    let body = serde_json::json!({ "AccessKeyId": access_key_id, "SecretAccessKey": secret.expose_secret() });
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary_path)
        .with_context(|| format!("cannot write {}", temporary_path.display()))?;
    file.write_all(serde_json::to_string_pretty(&body)?.as_bytes())?;
    file.sync_all()?;
    drop(file);
    if let Err(error) = tx.commit().await {
        let _ = std::fs::remove_file(&temporary_path);
        return Err(error.into());
    }
    std::fs::rename(&temporary_path, &final_path)?;
    eprintln!(
        "sluice: created account {account_id} and its root identity; the root access key is in {} (mode 0600)",
        final_path.display()
    );
    Ok(account_id)
}
