//! Any bytes as the content of a data node's file, read in every data format: reading must
//! return records or an error, never panic; and whatever records an escaping TSV or Custom
//! format reads, it writes back so that they read the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_runner::format::DataFormat;
use sluice_runner::task::{FieldValue, Object};

fn format(fields: &[(&str, &str)]) -> DataFormat {
    DataFormat::from_object(&Object {
        id: "Format".into(),
        fields: fields
            .iter()
            .map(|(key, value)| (key.to_string(), FieldValue::String(value.to_string())))
            .collect(),
    })
    .expect("a valid format")
}

fn read_all(format: &DataFormat, data: &[u8]) -> Option<Vec<Vec<Option<String>>>> {
    let mut reader = format.reader(Box::new(data));
    let mut records = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(record)) => records.push(record),
            Ok(None) => return Some(records),
            Err(_) => return None,
        }
    }
}

/// Built once: compiling the RegEx format's expression per input would dominate the run.
static FORMATS: std::sync::LazyLock<Vec<DataFormat>> = std::sync::LazyLock::new(|| {
    vec![
        format(&[("type", "CSV")]),
        format(&[("type", "CSV"), ("escapeChar", "\\")]),
        format(&[("type", "TSV")]),
        format(&[("type", "TSV"), ("escapeChar", "\\")]),
        format(&[("type", "Custom"), ("columnSeparator", "|"), ("recordSeparator", ";"), ("escapeChar", "^")]),
        format(&[("type", "RegEx"), ("inputRegEx", "(\\w*) (\\d+)?(.*)"), ("outputFormat", "%1$s %2$s%3$s")]),
    ]
});

fuzz_target!(|data: &[u8]| {
    for (index, format) in FORMATS.iter().enumerate() {
        let Some(records) = read_all(format, data) else {
            continue;
        };
        if index == 3 || index == 4 {
            let mut writer = format.writer(Vec::new()).expect("writer");
            for record in &records {
                writer.write_record(record).expect("an escaping format writes any record");
            }
            let written = writer.finish().expect("finish");
            let again = read_all(format, &written).expect("what was written reads");
            assert_eq!(again, records, "round trip through {}", format.kind);
        }
    }
});
