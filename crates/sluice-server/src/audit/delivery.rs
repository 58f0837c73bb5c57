//! Delivery of the audit trail in CloudTrail's layout, to a folder or a bucket: gzip JSON log
//! files `{"Records": [...]}`, and signed digest files that list the log files' SHA-256 and chain
//! to the previous digest's signature. The signing key lives in its own file, apart from the
//! database, so whoever can edit the database still cannot forge a digest.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use sluice_crypto::audit::{self, DigestSigner, SIGNATURE_ALGORITHM};
use sluice_crypto::sigv4::sha256_hex;
use sluice_store::{AuditDigestRecord, AuditFileRecord, Store};

use super::destination::AuditDestination;
use crate::bootstrap::random_upper_alphanumeric;
use crate::clock::{Clock, render};

/// CloudTrail names the bucket in every digest; a local folder has none, so this stands in.
pub const LOCAL_BUCKET: &str = "local";
const RECORDS_PER_FILE: i64 = 10_000;

pub struct AuditDelivery {
    pub destination: AuditDestination,
    pub account_id: String,
    pub region: String,
    signer: DigestSigner,
    pub fingerprint: String,
}

impl AuditDelivery {
    /// The public half of the digest signing key (what verification checks digests with).
    pub fn public_key(&self) -> Vec<u8> {
        self.signer.public_key()
    }
}

pub fn default_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("audit-signing.pk8")
}

/// Loads the Ed25519 signing key, creating it (mode 0600) on first use.
pub fn load_or_create_signing_key(path: &Path) -> anyhow::Result<DigestSigner> {
    if !path.exists() {
        let parent = path.parent().context("the signing key path has no folder")?;
        std::fs::create_dir_all(parent)?;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))?;
        let pkcs8 = audit::generate_signing_key(&SystemRandom::new())?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(&pkcs8)?;
        file.sync_all()?;
    }
    load_existing_signing_key(path)
}

/// Loads the signing key without creating one (for verification).
pub fn load_existing_signing_key(path: &Path) -> anyhow::Result<DigestSigner> {
    let pkcs8 = std::fs::read(path).with_context(|| format!("cannot read the audit signing key {}", path.display()))?;
    Ok(DigestSigner::from_pkcs8(&pkcs8)?)
}

pub fn gzip(content: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(content)?;
    Ok(encoder.finish()?)
}

pub fn gunzip(compressed: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut decoder = GzDecoder::new(compressed);
    let mut content = Vec::new();
    decoder.read_to_end(&mut content)?;
    // Data after the gzip stream is tampering too (CloudTrail's validator flags it).
    if !decoder.into_inner().is_empty() {
        anyhow::bail!("data follows the end of the gzip stream");
    }
    Ok(content)
}

/// The digest's signature sits beside it (CloudTrail keeps it in object metadata, which a folder
/// does not have).
pub fn signature_key(digest_key: &str) -> String {
    format!("{digest_key}.sig")
}

impl AuditDelivery {
    pub async fn open(
        destination: AuditDestination,
        key_path: &Path,
        account_id: String,
        region: String,
    ) -> anyhow::Result<AuditDelivery> {
        let signer = load_or_create_signing_key(key_path)?;
        let public_key = signer.public_key();
        let fingerprint = audit::fingerprint(&public_key);
        let public_key_key = format!("public-keys/{fingerprint}.pub");
        if destination.get(&public_key_key).await?.is_none() {
            destination
                .put(&public_key_key, hex::encode(&public_key).into_bytes())
                .await?;
        }
        Ok(AuditDelivery {
            destination,
            account_id,
            region,
            signer,
            fingerprint,
        })
    }

    fn log_key(&self, now: DateTime<Utc>) -> anyhow::Result<String> {
        Ok(format!(
            "AWSLogs/{account}/CloudTrail/{region}/{date}/{account}_CloudTrail_{region}_{stamp}_{random}.json.gz",
            account = self.account_id,
            region = self.region,
            date = now.format("%Y/%m/%d"),
            stamp = now.format("%Y%m%dT%H%MZ"),
            random = random_upper_alphanumeric(16)?,
        ))
    }

    /// CloudTrail's digest name ends at the second; a random part keeps two digests in one second
    /// (a scheduled one and the one at shutdown) apart.
    fn digest_key(&self, end: DateTime<Utc>) -> anyhow::Result<String> {
        Ok(format!(
            "AWSLogs/{account}/CloudTrail-Digest/{region}/{date}/{account}_CloudTrail-Digest_{region}_sluice_{region}_{stamp}_{random}.json.gz",
            account = self.account_id,
            region = self.region,
            date = end.format("%Y/%m/%d"),
            stamp = end.format("%Y%m%dT%H%M%SZ"),
            random = random_upper_alphanumeric(8)?,
        ))
    }

    /// Writes every record not yet in a file into new log files. Returns how many records.
    pub async fn deliver(&self, store: &dyn Store, clock: &dyn Clock) -> anyhow::Result<usize> {
        let mut n_delivered = 0;
        loop {
            let mut tx = store.begin().await?;
            let after = tx.last_delivered_seq().await?;
            let records = tx.audit_records_after(after, RECORDS_PER_FILE).await?;
            let (Some(first), Some(last)) = (records.first(), records.last()) else {
                return Ok(n_delivered);
            };
            let now = clock.now();
            let key = self.log_key(now)?;
            let bodies: Vec<&str> = records.iter().map(|record| record.record.as_str()).collect();
            let content = format!("{{\"Records\":[{}]}}", bodies.join(","));
            let times = || records.iter().map(|record| record.event_time.clone());
            let file = AuditFileRecord {
                file_id: 0,
                object_key: key.clone(),
                first_seq: first.seq,
                last_seq: last.seq,
                sha256: sha256_hex(content.as_bytes()),
                oldest_event_time: times().min().unwrap_or_default(),
                newest_event_time: times().max().unwrap_or_default(),
                digest_id: None,
            };
            // Index, then file, then commit: a failure leaves no index entry and no stray file.
            tx.insert_audit_file(&file, &render(now)).await?;
            self.destination.put(&key, gzip(content.as_bytes())?).await?;
            if let Err(error) = tx.commit().await {
                let _ = self.destination.delete(&key).await;
                return Err(error.into());
            }
            n_delivered += records.len();
        }
    }

    /// Writes a signed digest of the files delivered since the previous digest (possibly none:
    /// an empty digest still proves nothing was delivered in the period).
    pub async fn digest(&self, store: &dyn Store, clock: &dyn Clock) -> anyhow::Result<()> {
        let mut tx = store.begin().await?;
        let files: Vec<AuditFileRecord> = tx
            .audit_files()
            .await?
            .into_iter()
            .filter(|file| file.digest_id.is_none())
            .collect();
        let previous = tx.audit_digests().await?.pop();
        let end = clock.now();
        let end_time = super::render_event_time(end);
        let start_time = match &previous {
            Some(previous) => previous.end_time.clone(),
            None => files
                .first()
                .map_or_else(|| end_time.clone(), |file| file.oldest_event_time.clone()),
        };
        let key = self.digest_key(end)?;
        let bucket = &self.destination.bucket_label;
        let log_files: Vec<Value> = files
            .iter()
            .map(|file| {
                json!({
                    "s3Bucket": bucket,
                    "s3Object": file.object_key,
                    "hashValue": file.sha256,
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": file.newest_event_time,
                    "oldestEventTime": file.oldest_event_time,
                })
            })
            .collect();
        let document = json!({
            "awsAccountId": self.account_id,
            "digestStartTime": start_time,
            "digestEndTime": end_time,
            "digestS3Bucket": bucket,
            "digestS3Object": key,
            "digestPublicKeyFingerprint": self.fingerprint,
            "digestSignatureAlgorithm": SIGNATURE_ALGORITHM,
            "newestEventTime": files.iter().map(|file| file.newest_event_time.clone()).max(),
            "oldestEventTime": files.iter().map(|file| file.oldest_event_time.clone()).min(),
            "previousDigestS3Bucket": previous.as_ref().map(|_| bucket.clone()),
            "previousDigestS3Object": previous.as_ref().map(|previous| previous.object_key.clone()),
            "previousDigestHashValue": previous.as_ref().map(|previous| previous.sha256.clone()),
            "previousDigestHashAlgorithm": previous.as_ref().map(|_| "SHA-256"),
            "previousDigestSignature": previous.as_ref().map(|previous| previous.signature.clone()),
            "logFiles": log_files,
        });
        let content = serde_json::to_vec(&document)?;
        let sha256 = sha256_hex(&content);
        let previous_signature = previous.as_ref().map(|previous| previous.signature.as_str());
        let to_sign = audit::digest_string_to_sign(&end_time, bucket, &key, &sha256, previous_signature);
        let signature = self.signer.sign_hex(&to_sign);
        let sidecar = json!({ "signature": signature, "signatureAlgorithm": SIGNATURE_ALGORITHM });
        let record = AuditDigestRecord {
            digest_id: 0,
            object_key: key.clone(),
            start_time,
            end_time,
            sha256,
            signature,
        };
        let file_ids: Vec<i64> = files.iter().map(|file| file.file_id).collect();
        // Index first (its unique key refuses a clash), files second, commit last: a failure at
        // any step leaves no digest in the index, and a stray file is removed.
        tx.insert_audit_digest(&record, &file_ids).await?;
        let signature_key = signature_key(&key);
        let written = match self.destination.put(&key, gzip(&content)?).await {
            Ok(()) => {
                self.destination
                    .put(&signature_key, sidecar.to_string().into_bytes())
                    .await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            let _ = self.destination.delete(&key).await;
            return Err(error);
        }
        if let Err(error) = tx.commit().await {
            let _ = self.destination.delete(&key).await;
            let _ = self.destination.delete(&signature_key).await;
            return Err(error.into());
        }
        Ok(())
    }

    /// Drops records and log files older than the retention period, keeping the chain anchor.
    pub async fn prune(&self, store: &dyn Store, before: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut tx = store.begin().await?;
        let keys = tx.prune_audit(&super::render_event_time(before)).await?;
        tx.commit().await?;
        for key in &keys {
            if let Err(error) = self.destination.delete(key).await {
                tracing::warn!(key = %key, error = %format!("{error:#}"), "could not remove a pruned audit file");
            }
        }
        Ok(keys.len())
    }
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub delivery_interval: Duration,
    pub digest_interval: Duration,
    pub retention: Option<chrono::Duration>,
}

/// The background worker: delivers on one interval and digests on another until shut down,
/// then delivers and digests once more so nothing recorded is left out.
pub async fn run(
    delivery: Arc<AuditDelivery>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    schedule: Schedule,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    scheduler: Arc<crate::scheduler::Scheduler>,
) {
    let mut deliver_tick = tokio::time::interval(schedule.delivery_interval);
    let mut digest_tick = tokio::time::interval(schedule.digest_interval);
    deliver_tick.tick().await;
    digest_tick.tick().await;
    let report = |what: &str, result: anyhow::Result<()>| {
        if let Err(error) = result {
            tracing::error!(error = %format!("{error:#}"), "{what} failed");
        }
    };
    // With several servers on one database, the one holding the scheduler's lease delivers
    // (one trail, one signing key, one destination).
    loop {
        tokio::select! {
            _ = deliver_tick.tick() => {
                if !scheduler.is_leader() {
                    continue;
                }
                report("audit delivery", delivery.deliver(store.as_ref(), clock.as_ref()).await.map(drop));
            }
            _ = digest_tick.tick() => {
                if !scheduler.is_leader() {
                    continue;
                }
                report("audit delivery", delivery.deliver(store.as_ref(), clock.as_ref()).await.map(drop));
                report("audit digest", delivery.digest(store.as_ref(), clock.as_ref()).await);
                if let Some(retention) = schedule.retention {
                    match delivery.prune(store.as_ref(), clock.now() - retention).await {
                        Ok(0) => {}
                        Ok(n_files) => tracing::info!(n_files, "audit retention pruned old log files"),
                        Err(error) => tracing::error!(error = %format!("{error:#}"), "audit pruning failed"),
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    if !scheduler.is_leader() {
        return;
    }
    report(
        "final audit delivery",
        delivery.deliver(store.as_ref(), clock.as_ref()).await.map(drop),
    );
    report(
        "final audit digest",
        delivery.digest(store.as_ref(), clock.as_ref()).await,
    );
}
