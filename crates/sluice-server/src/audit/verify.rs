//! `sluice audit verify`: checks the hash chain of the records, the delivered log files against
//! the index and the records, and the signed digests against the files and each other. Names the
//! first record or file that was altered, deleted, reordered, inserted or truncated.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::destination::AuditDestination;

use serde_json::Value;
use sluice_crypto::audit::{chain_hash, digest_string_to_sign, fingerprint, verify_hex};
use sluice_crypto::sigv4::sha256_hex;
use sluice_store::{AUDIT_GENESIS_HASH, Store};

use super::delivery::{gunzip, signature_key};

#[derive(Debug, Default)]
pub struct Verification {
    pub n_records: usize,
    pub n_files: usize,
    pub n_digests: usize,
    /// In the order found: the first names the first tampering.
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// Limits what is reported to a time range (`YYYY-MM-DDTHH:MM:SSZ`); links are still checked
/// across the whole trail, since a range starts from the link before it.
#[derive(Debug, Default, Clone)]
pub struct Range {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Range {
    fn overlaps(&self, oldest: &str, newest: &str) -> bool {
        self.from.as_deref().is_none_or(|from| newest >= from) && self.to.as_deref().is_none_or(|to| oldest <= to)
    }
}

async fn list_keys(destination: &AuditDestination, marker: &str) -> anyhow::Result<BTreeSet<String>> {
    Ok(destination
        .list("AWSLogs")
        .await?
        .into_iter()
        .filter(|key| key.ends_with(".json.gz") && key.contains(marker))
        .collect())
}

/// A delivered object's uncompressed bytes, or `None` with the problem recorded (missing,
/// truncated, corrupt).
async fn fetch(
    destination: &AuditDestination,
    kind: &str,
    key: &str,
    problems: &mut Vec<String>,
) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(compressed) = destination.get(key).await? else {
        problems.push(format!("{kind} {key} is missing: deleted"));
        return Ok(None);
    };
    match gunzip(&compressed) {
        Ok(content) => Ok(Some(content)),
        Err(error) => {
            problems.push(format!("{kind} {key} is truncated or corrupt: {error}"));
            Ok(None)
        }
    }
}

pub async fn verify(
    store: &dyn Store,
    destination: &AuditDestination,
    public_key: &[u8],
    range: &Range,
) -> anyhow::Result<Verification> {
    let mut report = Verification::default();
    let mut tx = store.begin_read().await?;

    // 1. The chain of records.
    let anchor = tx.audit_anchor().await?;
    let (mut expected_seq, mut expected_previous) = match anchor.clone() {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, AUDIT_GENESIS_HASH.to_string()),
    };
    let mut records_by_seq: HashMap<i64, String> = HashMap::new();
    // After retention pruned old records, files wholly older than the first kept record are gone
    // by design, not by tampering.
    let mut retained_from: Option<String> = None;
    let mut after = expected_seq - 1;
    loop {
        let page = tx.audit_records_after(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in page {
            let reported = range.overlaps(&record.event_time, &record.event_time);
            if record.seq != expected_seq && reported {
                report.problems.push(format!(
                    "records {}..{} are missing before record {} ({}): deleted",
                    expected_seq,
                    record.seq - 1,
                    record.seq,
                    record.event_id
                ));
            }
            if record.previous_hash != expected_previous && record.seq == expected_seq && reported {
                report.problems.push(format!(
                    "record {} ({}) does not follow its predecessor: reordered or inserted",
                    record.seq, record.event_id
                ));
            }
            if chain_hash(&record.previous_hash, &record.record) != record.hash && reported {
                report.problems.push(format!(
                    "record {} ({}) was altered: its hash does not match its content",
                    record.seq, record.event_id
                ));
            }
            if retained_from.is_none() {
                retained_from = Some(record.event_time.clone());
            }
            expected_seq = record.seq + 1;
            expected_previous = record.hash.clone();
            records_by_seq.insert(record.seq, record.record);
            report.n_records += 1;
        }
    }

    // 2. Log files against the index and against the records.
    let files = tx.audit_files().await?;
    let mut actual_hashes: HashMap<String, String> = HashMap::new();
    for file in &files {
        if !range.overlaps(&file.oldest_event_time, &file.newest_event_time) {
            continue;
        }
        report.n_files += 1;
        let Some(content) = fetch(destination, "log file", &file.object_key, &mut report.problems).await? else {
            continue;
        };
        let hash = sha256_hex(&content);
        actual_hashes.insert(file.object_key.clone(), hash.clone());
        if hash != file.sha256 {
            report.problems.push(format!(
                "log file {} was altered: its SHA-256 differs from the one recorded at delivery",
                file.object_key
            ));
            continue;
        }
        let records = serde_json::from_slice::<Value>(&content)
            .ok()
            .and_then(|document| document.get("Records").and_then(Value::as_array).cloned());
        let Some(records) = records else {
            report
                .problems
                .push(format!("log file {} has no Records array", file.object_key));
            continue;
        };
        let expected_count = (file.last_seq - file.first_seq + 1) as usize;
        if records.len() != expected_count {
            report.problems.push(format!(
                "log file {} holds {} records, the index says {expected_count}",
                file.object_key,
                records.len()
            ));
        }
        for (offset, delivered) in records.iter().enumerate() {
            let seq = file.first_seq + offset as i64;
            if let Some(stored) = records_by_seq.get(&seq)
                && serde_json::from_str::<Value>(stored).ok().as_ref() != Some(delivered)
            {
                report.problems.push(format!(
                    "record {seq} differs from its delivered copy in {}: altered in the database",
                    file.object_key
                ));
            }
        }
    }
    let indexed: BTreeSet<String> = files.iter().map(|file| file.object_key.clone()).collect();
    for extra in list_keys(destination, "/CloudTrail/").await?.difference(&indexed) {
        report
            .problems
            .push(format!("log file {extra} is not in the audit index: inserted"));
    }

    // 3. Digests: signature, chain, and the files each lists.
    let digests = tx.audit_digests().await?;
    let our_fingerprint = fingerprint(public_key);
    let mut previous: Option<(String, String)> = None;
    for digest in &digests {
        let reported = range.overlaps(&digest.start_time, &digest.end_time);
        let previous_link = previous.replace((digest.object_key.clone(), digest.signature.clone()));
        if !reported {
            continue;
        }
        report.n_digests += 1;
        let Some(content) = fetch(destination, "digest", &digest.object_key, &mut report.problems).await? else {
            continue;
        };
        let Ok(document) = serde_json::from_slice::<Value>(&content) else {
            report
                .problems
                .push(format!("digest {} is not valid JSON", digest.object_key));
            continue;
        };
        let text = |key: &str| document.get(key).and_then(Value::as_str).map(str::to_string);
        let signature = destination
            .get(&signature_key(&digest.object_key))
            .await?
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|sidecar| sidecar.get("signature").and_then(Value::as_str).map(str::to_string));
        let Some(signature) = signature else {
            report
                .problems
                .push(format!("digest {} has no signature file", digest.object_key));
            continue;
        };
        if text("digestPublicKeyFingerprint").as_deref() != Some(our_fingerprint.as_str()) {
            report.problems.push(format!(
                "digest {} is signed by another key than the one given",
                digest.object_key
            ));
            continue;
        }
        let to_sign = digest_string_to_sign(
            &text("digestEndTime").unwrap_or_default(),
            &text("digestS3Bucket").unwrap_or_default(),
            &text("digestS3Object").unwrap_or_default(),
            &sha256_hex(&content),
            text("previousDigestSignature").as_deref(),
        );
        if !verify_hex(public_key, &to_sign, &signature) {
            report.problems.push(format!(
                "digest {} was altered or replaced: its signature does not verify",
                digest.object_key
            ));
            continue;
        }
        if text("digestS3Object").as_deref() != Some(digest.object_key.as_str())
            || text("digestS3Bucket").as_deref() != Some(destination.bucket_label.as_str())
        {
            report.problems.push(format!(
                "digest {} was moved from its original location",
                digest.object_key
            ));
        }
        if signature != digest.signature || sha256_hex(&content) != digest.sha256 {
            report
                .problems
                .push(format!("digest {} does not match the audit index", digest.object_key));
        }
        let previous_signature = previous_link.as_ref().map(|(_, signature)| signature.clone());
        if text("previousDigestSignature") != previous_signature {
            let before = previous_link.map_or_else(|| "none".to_string(), |(key, _)| key);
            report.problems.push(format!(
                "digest {} does not chain to the digest before it ({before}): one was removed or replaced",
                digest.object_key
            ));
        }
        let listed: Vec<(String, String, String)> = document
            .get("logFiles")
            .and_then(Value::as_array)
            .map(|files| {
                files
                    .iter()
                    .filter_map(|file| {
                        Some((
                            file.get("s3Object")?.as_str()?.to_string(),
                            file.get("hashValue")?.as_str()?.to_string(),
                            file.get("newestEventTime")?.as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (key, hash, newest) in &listed {
            let pruned = anchor.is_some() && retained_from.as_deref().is_none_or(|kept| newest.as_str() < kept);
            match actual_hashes.get(key) {
                Some(actual) if actual != hash => {
                    report.problems.push(format!(
                        "log file {key} does not match the hash in signed digest {}: altered",
                        digest.object_key
                    ));
                }
                None if !indexed.contains(key) && !pruned => {
                    report.problems.push(format!(
                        "log file {key}, listed in digest {}, is not in the audit index: deleted",
                        digest.object_key
                    ));
                }
                _ => {}
            }
        }
        for file in files.iter().filter(|file| file.digest_id == Some(digest.digest_id)) {
            if !listed.iter().any(|(key, _, _)| key == &file.object_key) {
                report.problems.push(format!(
                    "log file {} is indexed under digest {} but not listed in it",
                    file.object_key, digest.object_key
                ));
            }
        }
    }
    let indexed_digests: BTreeSet<String> = digests.iter().map(|digest| digest.object_key.clone()).collect();
    for extra in list_keys(destination, "/CloudTrail-Digest/")
        .await?
        .difference(&indexed_digests)
    {
        report
            .problems
            .push(format!("digest {extra} is not in the audit index: inserted"));
    }
    let n_undigested = files.iter().filter(|file| file.digest_id.is_none()).count();
    if n_undigested > 0 {
        report.notes.push(format!(
            "{n_undigested} log file(s) are newer than the last digest; the next digest will cover them"
        ));
    }
    if let Some(last) = digests.last() {
        report
            .notes
            .push(format!("the newest digest ends at {}", last.end_time));
    }
    Ok(report)
}

/// The verifying key: the hex public key file, or the one derived from the signing key.
pub fn load_public_key(public_key_file: Option<&PathBuf>, signing_key_file: &Path) -> anyhow::Result<Vec<u8>> {
    match public_key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)?;
            Ok(hex::decode(text.trim())?)
        }
        None => Ok(super::delivery::load_existing_signing_key(signing_key_file)?.public_key()),
    }
}
