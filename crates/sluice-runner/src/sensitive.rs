//! Outputs are scanned for sensitive data before they are published, and the data node's (or
//! the activity's) `sensitiveDataPolicy` — a Sluice extension — decides: ALLOW publishes without
//! looking, WARN (the default) publishes and reports what was found, MASK rewrites every detected
//! value to `*` before publishing, QUARANTINE publishes to `<location>.quarantine/<attempt>/`
//! instead and fails the attempt, FAIL fails the attempt and publishes nothing.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sluice_detect::{Detector, Format, ObjectReport, scan_object};

use crate::task::{Object, Task};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Allow,
    Warn,
    Mask,
    Quarantine,
    Fail,
}

impl Policy {
    /// The output node's policy, else the activity's, else WARN.
    pub fn for_output(task: &Task, node: &Object) -> Policy {
        let named = node
            .string("sensitiveDataPolicy")
            .or_else(|| task.attempt().string("sensitiveDataPolicy"));
        match named.map(str::to_ascii_uppercase).as_deref() {
            Some("ALLOW") => Policy::Allow,
            Some("MASK") => Policy::Mask,
            Some("QUARANTINE") => Policy::Quarantine,
            Some("FAIL") => Policy::Fail,
            _ => Policy::Warn,
        }
    }
}

fn detector() -> anyhow::Result<&'static Detector> {
    sluice_detect::managed().ok_or_else(|| anyhow::anyhow!("the sensitive-data identifiers do not compile"))
}

/// What the review of one output decided.
#[derive(Debug, Default)]
pub struct Review {
    /// One line per object with sensitive data: types, counts, severity (never values).
    pub lines: Vec<String>,
    pub found: bool,
    /// Files MASK cannot rewrite (Parquet), with what they hold.
    pub unmaskable: Vec<String>,
}

impl Review {
    pub fn summary(&self) -> String {
        self.lines.join("; ")
    }
}

/// The line a log and a failure carry: what was found where, and what the policy did.
pub fn note(policy: Policy, what: &str, review: &Review) -> String {
    let did = match policy {
        Policy::Allow | Policy::Warn => "published as it is (sensitiveDataPolicy WARN)",
        Policy::Mask => "published with every detected value masked (sensitiveDataPolicy MASK)",
        Policy::Quarantine => "published to the quarantine location instead (sensitiveDataPolicy QUARANTINE)",
        Policy::Fail => "nothing was published (sensitiveDataPolicy FAIL)",
    };
    format!("sensitive data in {what}: {}; {did}", review.summary())
}

/// Where QUARANTINE puts an output: beside the declared location, per attempt.
pub fn quarantine_location(location: &str, attempt_id: &str) -> String {
    format!(
        "{}.quarantine/{}",
        location.trim_end_matches('/'),
        crate::execute::safe(attempt_id)
    )
}

/// Every file below `folder` (or `folder` itself when it is a file), sorted; a missing folder
/// holds none.
pub fn files_below(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if folder.is_file() {
        files.push(folder.to_path_buf());
        return Ok(files);
    }
    let mut pending = vec![folder.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let entries = match std::fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn describe(report: &ObjectReport, name: &str) -> String {
    let types: Vec<String> = report
        .detections
        .values()
        .flatten()
        .map(|(kind, detail)| format!("{kind} ×{} ({})", detail.count, detail.severity().description()))
        .collect();
    format!("{name}: {}", types.join(", "))
}

/// Scans every file under `folder` (an output about to be published) and applies `policy`:
/// with MASK the files are rewritten in place. Runs on a blocking thread.
/// `location` is where the output goes (it names the objects in findings); findings gather in
/// `findings` for the service (ReportFindings).
pub async fn review(
    folder: &Path,
    policy: Policy,
    location: &str,
    findings: &std::sync::Mutex<Vec<serde_json::Value>>,
) -> anyhow::Result<Review> {
    if policy == Policy::Allow {
        return Ok(Review::default());
    }
    let folder = folder.to_path_buf();
    let location = location.to_string();
    let (review, found) = tokio::task::spawn_blocking(move || review_blocking(&folder, policy, &location)).await??;
    if let Ok(mut gathered) = findings.lock() {
        gathered.extend(found);
    }
    if !review.unmaskable.is_empty() {
        // Rewriting Parquet would mean re-encoding every column page: refusing is better than
        // publishing the values, or a file other tools cannot read.
        anyhow::bail!(
            "sensitive data in {}: sensitiveDataPolicy MASK cannot rewrite Parquet files; nothing was published (use QUARANTINE or FAIL for Parquet outputs)",
            review.unmaskable.join("; ")
        );
    }
    Ok(review)
}

fn review_blocking(folder: &Path, policy: Policy, location: &str) -> anyhow::Result<(Review, Vec<serde_json::Value>)> {
    let mut findings = Vec::new();
    let detector = detector()?;
    let files = files_below(folder)?;
    let mut review = Review::default();
    for file in files {
        let name = file
            .strip_prefix(folder)
            .ok()
            .filter(|relative| !relative.as_os_str().is_empty())
            .unwrap_or(file.file_name().map(Path::new).unwrap_or(&file))
            .display()
            .to_string();
        let reader = std::fs::File::open(&file).with_context(|| format!("cannot read {name}"))?;
        let report = scan_object(detector, &file.to_string_lossy(), reader, None);
        if let Some(problem) = &report.problem {
            anyhow::bail!("{name} could not be scanned for sensitive data: {problem}");
        }
        if report.total() == 0 {
            continue;
        }
        review.found = true;
        review.lines.push(describe(&report, &name));
        let object = if folder.is_file() {
            location.to_string()
        } else {
            format!("{}/{name}", location.trim_end_matches('/'))
        };
        let resource = serde_json::json!({ "object": { "path": object, "size": report.size_classified } });
        if let Some(finding) = report.finding("", "", "", "", resource) {
            findings.push(finding);
        }
        if policy == Policy::Mask {
            if report.format == Format::Parquet {
                // Rewriting Parquet would mean re-encoding every column page; refusing is
                // better than publishing the values or a file other tools cannot read.
                review.unmaskable.push(describe(&report, &name));
                continue;
            }
            mask_file(detector, &file).with_context(|| format!("cannot mask {name}"))?;
        }
    }
    Ok((review, findings))
}

/// Masks what the detector finds in one log line; whether anything was.
pub fn mask_detected(line: &mut [u8]) -> bool {
    detector().is_ok_and(|detector| sluice_detect::mask_line(detector, line, &[]))
}

/// Rewrites a file with every detected value replaced by `*` of the same length (so layouts,
/// columns and JSON stay valid); gzip files stay gzip.
fn mask_file(detector: &Detector, file: &Path) -> anyhow::Result<()> {
    let (format, gzip) = Format::of_name(&file.to_string_lossy());
    let raw = std::fs::read(file)?;
    let mut content = if gzip {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(raw.as_slice()), &mut plain)?;
        plain
    } else {
        raw
    };
    match format {
        Format::Csv | Format::Tsv => {
            mask_delimited(detector, &mut content, if format == Format::Csv { b',' } else { b'\t' })?
        }
        _ => mask_lines(detector, &mut content),
    }
    let output = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut encoder, &content)?;
        encoder.finish()?
    } else {
        content
    };
    std::fs::write(file, output)?;
    Ok(())
}

/// Text and JSON (line by line: a JSON string's value is masked inside its quotes). Keys
/// written as JSON object members carry their keywords on the same line.
fn mask_lines(detector: &Detector, content: &mut [u8]) {
    let mut hits = Vec::new();
    let mut start = 0;
    while start < content.len() {
        let end = content[start..]
            .iter()
            .position(|byte| *byte == b'\n')
            .map_or(content.len(), |position| start + position);
        hits.clear();
        detector.scan_unit(&content[start..end], None, &mut hits);
        for hit in &hits {
            for byte in &mut content[start + hit.start..start + hit.end] {
                if !matches!(*byte, b'"' | b'\\') {
                    *byte = b'*';
                }
            }
        }
        start = end + 1;
    }
}

/// CSV/TSV: cells are masked with their column name as context, and the file is written back
/// record by record.
fn mask_delimited(detector: &Detector, content: &mut Vec<u8>, delimiter: u8) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(content.as_slice());
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_writer(Vec::with_capacity(content.len()));
    let mut contexts: Vec<Vec<bool>> = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut hits = Vec::new();
    let mut first = true;
    while reader.read_byte_record(&mut record)? {
        if first {
            first = false;
            contexts = record
                .iter()
                .map(|name| detector.context_matches(&String::from_utf8_lossy(name)))
                .collect();
        }
        let mut masked = csv::ByteRecord::new();
        for (column, field) in record.iter().enumerate() {
            let mut field = field.to_vec();
            hits.clear();
            detector.scan_unit(&field, contexts.get(column).map(Vec::as_slice), &mut hits);
            for hit in &hits {
                field[hit.start..hit.end].fill(b'*');
            }
            masked.push_field(&field);
        }
        writer.write_byte_record(&masked)?;
    }
    *content = writer.into_inner().map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}
