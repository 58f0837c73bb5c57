//! Every public AWS sample definition goes through parse and validate; the full report is a
//! golden file, reviewed by hand: each error in it is a real problem of the sample (most are
//! parameters without values, which the samples expect on the command line).
//! Refresh with `UPDATE_EXPECT=1 cargo test -p sluice-core --test samples`.

use std::fmt::Write;
use std::path::PathBuf;

use sluice_core::definition_file;
use sluice_core::{Limits, PipelineDefinition, validate};

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/dp-samples")
}

fn load(name: &str) -> Result<PipelineDefinition, String> {
    let text =
        std::fs::read_to_string(samples_dir().join(name)).map_err(|error| format!("cannot read {name}: {error}"))?;
    definition_file::parse(&text).map_err(|error| error.to_string())
}

/// Parameter and value files that belong to a definition, as a user would pass them with
/// `--parameter-objects` and `--parameter-values-uri`.
fn companions(name: &str) -> (Option<&'static str>, Option<&'static str>) {
    match name {
        "dynamo-db-export__DynamoDB-export.json" => (None, Some("dynamo-db-export__example-parameters.json")),
        "oracle-backup__definition.json" => (
            Some("oracle-backup__parameters.json"),
            Some("oracle-backup__values.json"),
        ),
        _ => (None, None),
    }
}

fn companion_file_text(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(samples_dir().join(name)).expect("companion file readable");
    serde_json::from_str(&text).expect("companion file is JSON")
}

#[test]
fn every_sample_parses_and_validates_as_recorded() {
    let mut names: Vec<String> = std::fs::read_dir(samples_dir())
        .expect("the shared reference samples are beside the repository")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 40, "expected the 43 samples, found {}", names.len());
    let companions_only = [
        "dynamo-db-export__example-parameters.json",
        "oracle-backup__parameters.json",
        "oracle-backup__values.json",
    ];
    let mut report = String::new();
    for name in &names {
        if companions_only.contains(&name.as_str()) {
            continue;
        }
        writeln!(report, "== {name}").unwrap();
        let mut definition = match load(name) {
            Ok(definition) => definition,
            Err(error) => {
                writeln!(report, "parse error: {error}").unwrap();
                continue;
            }
        };
        let (parameters_file, values_file) = companions(name);
        if let Some(parameters_file) = parameters_file {
            let value = companion_file_text(parameters_file);
            let wrapped = serde_json::json!({"objects": [], "parameters": value["parameters"].clone()});
            definition.parameters = definition_file::from_value(&wrapped)
                .expect("parameters parse")
                .parameters;
        }
        if let Some(values_file) = values_file {
            let value = companion_file_text(values_file);
            let wrapped = serde_json::json!({"objects": [], "values": value["values"].clone()});
            definition.values = definition_file::from_value(&wrapped).expect("values parse").values;
        }
        let result = validate(&definition, &Limits::default());
        writeln!(
            report,
            "objects: {}, parameters: {}, errored: {}",
            definition.objects.len(),
            definition.parameters.len(),
            result.errored()
        )
        .unwrap();
        for entry in &result.errors {
            for message in &entry.messages {
                writeln!(report, "error [{}] {message}", entry.id).unwrap();
            }
        }
        for entry in &result.warnings {
            for message in &entry.messages {
                writeln!(report, "warning [{}] {message}", entry.id).unwrap();
            }
        }
        // Round trip: the file format read back gives the same definition, up to the CLI's
        // sorting of keys (a stable sort, so repeated keys keep their order).
        let again = definition_file::from_value(&definition_file::to_value(&definition)).expect("round trip parses");
        let mut sorted = definition.clone();
        for object in &mut sorted.objects {
            object.fields.sort_by(|left, right| left.key.cmp(&right.key));
        }
        for parameter in &mut sorted.parameters {
            parameter.attributes.sort_by(|left, right| left.key.cmp(&right.key));
        }
        assert_eq!(again, sorted, "{name} does not round-trip through the file format");
    }
    expect_test::expect_file!["samples.expected"].assert_eq(&report);
}
