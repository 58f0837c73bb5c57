//! Sensitive-data discovery, as Amazon Macie does it for S3, inside Sluice: managed data
//! identifiers for credentials, financial and personal data (and custom ones), found in one pass
//! over the bytes, validated (Luhn, mod-97, the SSN rules, JWT headers, ...), kept only with a
//! keyword nearby where Macie requires one (30 characters, or the column name / JSON path), and
//! reported as Macie findings with located occurrences and redacted samples.
//!
//! Invariant: pure — no clock, no network, no environment; the caller reads the bytes.

pub mod engine;
pub mod findings;
pub mod formats;
pub mod identifiers;
pub mod validate;

pub use engine::{AllowList, Detector, Hit};
pub use findings::ObjectReport;
pub use formats::{Format, Location};
pub use identifiers::{Category, CustomIdentifier, Identifier, Severity, managed_identifiers};

/// The managed identifiers, compiled once per process (`None` only if they do not compile, which
/// the crate's own tests rule out).
pub fn managed() -> Option<&'static Detector> {
    static MANAGED: std::sync::OnceLock<Option<Detector>> = std::sync::OnceLock::new();
    MANAGED.get_or_init(|| Detector::managed().ok()).as_ref()
}

/// Rewrites every detected value in one line (a log line) to `*` of the same length, except
/// types named in `keep`; whether anything was.
pub fn mask_line(detector: &Detector, line: &mut [u8], keep: &[&str]) -> bool {
    if detector.candidates(line).next().is_none() {
        return false;
    }
    let mut hits = Vec::new();
    detector.scan_unit(line, None, &mut hits);
    let mut masked = false;
    for hit in hits.iter().filter(|hit| !keep.contains(&hit.type_name.as_str())) {
        line[hit.start..hit.end].fill(b'*');
        masked = true;
    }
    masked
}

/// Scans one object read from `reader`, named `name` (its extension picks the format unless
/// `format` is given).
pub fn scan_object(
    detector: &Detector,
    name: &str,
    reader: impl std::io::Read,
    format: Option<Format>,
) -> ObjectReport {
    let (named, gzip) = Format::of_name(name);
    let format = format.unwrap_or(named);
    let mut report = ObjectReport::new(name, format);
    let identifiers = detector.identifiers();
    let result = {
        let mut sink = |occurrence: formats::Occurrence| report.add(identifiers, occurrence);
        formats::scan(detector, reader, format, gzip, &mut sink)
    };
    match result {
        Ok((size, read_as)) => {
            report.size_classified = size;
            report.format = read_as;
        }
        Err(error) => report.problem = Some(format!("the object could not be read whole: {error}")),
    }
    report
}
