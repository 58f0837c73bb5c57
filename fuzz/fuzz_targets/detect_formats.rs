//! Any bytes scanned for sensitive data in every format, Parquet included (and as gzip): a report or a stated
//! problem, never a panic; every located occurrence points inside the input (lines within the
//! line count, CSV rows within the rows).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sluice_detect::{Detector, Format, Location, scan_object};

fn detector() -> &'static Detector {
    static DETECTOR: OnceLock<Detector> = OnceLock::new();
    DETECTOR.get_or_init(|| Detector::managed().expect("identifiers compile"))
}

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|byte| **byte == b'\n').count() as u64 + 1;
    for format in [Format::Text, Format::Csv, Format::Tsv, Format::Json, Format::JsonLines, Format::Parquet] {
        let report = scan_object(detector(), "fuzz", data, Some(format));
        for detail in report.detections.values().flat_map(|types| types.values()) {
            assert!(detail.count >= detail.located.len() as u64);
            for location in &detail.located {
                match location {
                    Location::Line { start, .. } => assert!(*start >= 1 && *start <= lines),
                    Location::Cell { row, column, .. } => assert!(*row >= 1 && *column >= 1),
                    Location::Record { json_path, .. } => assert!(json_path.starts_with('$')),
                }
            }
        }
    }
    // Arbitrary bytes that claim to be gzip: a problem is reported, nothing panics.
    let report = scan_object(detector(), "fuzz.log.gz", data, None);
    let _ = report.problem;
});
