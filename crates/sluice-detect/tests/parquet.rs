//! Parquet files written by pyarrow (the fixtures; snappy, zstd and gzip pages, nested structs
//! and lists, nulls): every planted value is found at its row and column path, nothing else is.

use std::collections::BTreeSet;

use sluice_detect::{Detector, Format, Location, scan_object};

const SNAPPY: &[u8] = include_bytes!("fixtures/customers.snappy.parquet");
const ZSTD: &[u8] = include_bytes!("fixtures/customers.zstd.parquet");
const CLEAN: &[u8] = include_bytes!("fixtures/orders-clean.parquet");

/// `(type, record index, JSON path)` of every located occurrence.
fn located(name: &str, bytes: &[u8]) -> (Format, BTreeSet<(String, u64, String)>) {
    let detector = Detector::managed().expect("managed identifiers compile");
    let report = scan_object(&detector, name, bytes, None);
    assert_eq!(report.problem, None, "{name}");
    assert_eq!(report.size_classified, bytes.len() as u64);
    let mut found = BTreeSet::new();
    for types in report.detections.values() {
        for (kind, detail) in types {
            assert_eq!(detail.count as usize, detail.located.len(), "{kind}");
            for location in &detail.located {
                let Location::Record {
                    record_index,
                    json_path,
                } = location
                else {
                    panic!("a Parquet occurrence is located by record: {location:?}");
                };
                found.insert((kind.clone(), *record_index, json_path.clone()));
            }
        }
    }
    (report.format, found)
}

fn expected() -> BTreeSet<(String, u64, String)> {
    [
        ("EMAIL_ADDRESS", 0, "$.email"),
        ("EMAIL_ADDRESS", 1, "$.email"),
        ("EMAIL_ADDRESS", 3, "$.email"),
        // The column's name is the SSN's keyword; the card number is an int64 column.
        ("USA_SOCIAL_SECURITY_NUMBER", 0, "$.ssn"),
        ("CREDIT_CARD_NUMBER", 1, "$.card_number"),
        ("AWS_CREDENTIALS", 1, "$.notes"),
        // A struct's member and a list's element carry their path.
        ("PHONE_NUMBER", 0, "$.address.phone"),
        ("GERMANY_BANK_ACCOUNT_NUMBER", 2, "$.tags[0]"),
    ]
    .into_iter()
    .map(|(kind, row, path)| (kind.to_string(), row, path.to_string()))
    .collect()
}

#[test]
fn planted_values_are_found_at_their_row_and_column_in_snappy_and_zstd_files() {
    for (name, bytes) in [("customers.snappy.parquet", SNAPPY), ("customers.zstd.parquet", ZSTD)] {
        let (format, found) = located(name, bytes);
        assert_eq!(format, Format::Parquet);
        // The lookalike column (Luhn failures, no issuer prefix) and the names give nothing.
        assert_eq!(found, expected(), "{name}");
    }
}

#[test]
fn a_parquet_file_is_recognised_by_its_first_bytes_whatever_its_name() {
    let (format, found) = located("part-00000", SNAPPY);
    assert_eq!(format, Format::Parquet);
    assert_eq!(found, expected());
}

#[test]
fn a_clean_file_has_no_finding_and_a_damaged_one_is_a_problem_not_a_panic() {
    let (_, found) = located("orders.parquet", CLEAN);
    assert!(found.is_empty(), "{found:?}");

    let detector = Detector::managed().expect("managed identifiers compile");
    let mut truncated = SNAPPY[..SNAPPY.len() / 2].to_vec();
    truncated.extend_from_slice(b"PAR1");
    let report = scan_object(&detector, "broken.parquet", truncated.as_slice(), None);
    assert!(report.problem.is_some());
    let report = scan_object(&detector, "empty.parquet", &b""[..], None);
    assert!(report.problem.is_some());
}
