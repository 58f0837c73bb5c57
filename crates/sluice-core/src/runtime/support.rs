//! What Sluice can run today. Definitions with other types are accepted by Put and Validate
//! (with a warning, so a pipeline can be brought over and its gaps seen) and refused by
//! ActivatePipeline with the list, never a failure of a run at 3 a.m.

use crate::model::{FieldValue, PipelineDefinition, PipelineObject};

const ACTIVITIES: &[&str] = &[
    "ShellCommandActivity",
    "CopyActivity",
    "SqlActivity",
    "RedshiftCopyActivity",
    // On Apache Spark (`spark-submit`, `spark-sql`), the engine EMR users already run.
    "EmrActivity",
    "HadoopActivity",
    "HiveActivity",
];
/// The data formats HiveActivity stages as tables.
const HIVE_FORMATS: &[&str] = &["CSV", "TSV", "Custom", "RegEx"];
/// What CopyActivity reads and writes.
const COPY_NODES: &[&str] = &["S3DataNode", "SqlDataNode", "MySqlDataNode", "RedshiftDataNode"];
/// The databases the runner speaks to, by JDBC URL prefix.
const JDBC_PREFIXES: &[&str] = &["jdbc:postgresql:", "jdbc:redshift:", "jdbc:mysql:", "jdbc:mariadb:"];
const PRECONDITIONS: &[&str] = &["ShellCommandPrecondition", "Exists", "S3KeyExists", "S3PrefixNotEmpty"];
const UNSUPPORTED: &[&str] = &["DynamoDBDataNode", "DynamoDBDataFormat", "DynamoDBExportDataFormat"];

/// The object, then its `parent`, its parent's parent, ... (at most 32 hops: cycles are
/// validation's to report).
fn lineage<'a>(
    definition: &'a PipelineDefinition,
    object: &'a PipelineObject,
) -> impl Iterator<Item = &'a PipelineObject> {
    std::iter::successors(Some(object), |found| {
        found
            .first("parent")
            .and_then(FieldValue::as_ref_target)
            .and_then(|parent| definition.object(parent))
    })
    .take(33)
}

fn type_of<'a>(definition: &'a PipelineDefinition, object: &'a PipelineObject) -> Option<&'a str> {
    lineage(definition, object).find_map(PipelineObject::object_type)
}

/// What an EmrCluster's `sparkMaster` may name: `local`, `local[N]`, `local[*]`, `local[N,F]`,
/// `spark://…`, `yarn`, `k8s://…`, `mesos://…`.
pub fn is_spark_master(master: &str) -> bool {
    master == "local"
        || master == "yarn"
        || (master.starts_with("local[") && master.ends_with(']'))
        || ["spark://", "k8s://", "mesos://"]
            .iter()
            .any(|prefix| master.len() > prefix.len() && master.starts_with(prefix))
}

/// `(object id, why it cannot run on Sluice yet)` for every object that cannot.
pub fn unsupported(definition: &PipelineDefinition) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for object in &definition.objects {
        let Some(kind) = type_of(definition, object) else {
            continue;
        };
        let Some(spec) = crate::catalogue::type_spec(kind) else {
            continue;
        };
        let supported = match spec.category {
            crate::catalogue::Category::Activity => ACTIVITIES.contains(&kind),
            crate::catalogue::Category::Precondition => PRECONDITIONS.contains(&kind),
            _ => !UNSUPPORTED.contains(&kind),
        };
        if kind == "PigActivity" {
            problems.push((
                object.id.clone(),
                "Sluice does not run Pig Latin: no engine it runs (Apache Spark) executes Pig scripts; port the script to HiveQL (HiveActivity, run with spark-sql) or to a Spark job (EmrActivity)".into(),
            ));
            continue;
        }
        if !supported {
            problems.push((object.id.clone(), format!("Sluice does not support {kind} yet")));
            continue;
        }
        if kind == "EmrCluster"
            && let Some(master) = object.first("sparkMaster").and_then(FieldValue::as_string)
            && !master.contains("#{")
            && !is_spark_master(master)
        {
            problems.push((
                object.id.clone(),
                format!("sparkMaster '{master}' is not a Spark master: use local, local[N], local[*], spark://HOST:PORT, yarn or k8s://URL"),
            ));
        }
        if kind == "HiveActivity"
            && stages(
                inherited(definition, object, "stage").and_then(FieldValue::as_string),
                kind,
            )
        {
            problems.extend(hive_staging_problems(definition, object));
        }
        if kind == "CopyActivity" {
            for key in ["input", "output"] {
                for node in object.values(key).filter_map(FieldValue::as_ref_target) {
                    let node_type = definition
                        .object(node)
                        .and_then(|node| type_of(definition, node))
                        .unwrap_or("");
                    if !COPY_NODES.contains(&node_type) && !UNSUPPORTED.contains(&node_type) {
                        problems.push((
                            object.id.clone(),
                            format!("Sluice's CopyActivity copies between S3DataNode, SqlDataNode, MySqlDataNode and RedshiftDataNode; its {key} {node} is a {node_type}"),
                        ));
                    }
                }
            }
        }
        if matches!(
            kind,
            "JdbcDatabase" | "RdsDatabase" | "RedshiftDatabase" | "MySqlDataNode"
        ) {
            match object.first("connectionString").and_then(FieldValue::as_string) {
                // Known once parameters are: the runner says so if it is not a database it speaks.
                Some(url) if url.contains("#{") => {}
                Some(url) if JDBC_PREFIXES.iter().any(|prefix| url.starts_with(prefix)) => {}
                Some(url) => problems.push((
                    object.id.clone(),
                    format!(
                        "Sluice connects to PostgreSQL, Redshift (over PostgreSQL's protocol), MySQL and MariaDB; '{}' is none of them",
                        // Only the driver: the rest may carry a host or credentials.
                        url.splitn(3, ':').take(2).collect::<Vec<_>>().join(":")
                    ),
                )),
                None if kind == "MySqlDataNode" => {}
                None => problems.push((
                    object.id.clone(),
                    format!("Sluice connects to databases by connectionString, which this {kind} does not set"),
                )),
            }
        }
    }
    problems
}

/// A field as the object sees it: its own, its `parent` chain's, then Default's.
fn inherited<'a>(definition: &'a PipelineDefinition, object: &'a PipelineObject, key: &str) -> Option<&'a FieldValue> {
    lineage(definition, object)
        .find_map(|found| found.first(key))
        .or_else(|| {
            definition
                .object("Default")
                .filter(|default| default.id != object.id)
                .and_then(|default| default.first(key))
        })
}

/// Whether an activity stages its data nodes: `stage` as written (any case), else the type's
/// default (HiveActivity stages; the others do not).
pub fn stages(stage: Option<&str>, activity_type: &str) -> bool {
    match stage {
        Some(flag) => flag.trim().eq_ignore_ascii_case("true"),
        None => activity_type == "HiveActivity",
    }
}

/// A name Hive and shells take as is: a letter or `_`, then letters, digits or `_`.
pub fn is_identifier(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
}

/// A data format's `column` (`name TYPE`, TYPE defaulting to STRING) as a Hive column:
/// `(name, TYPE)`, or why it cannot be one.
pub fn hive_column(column: &str) -> Result<(String, String), String> {
    let column = column.trim();
    let (name, kind) = column.split_once(char::is_whitespace).unwrap_or((column, "STRING"));
    let kind = kind.trim();
    if !is_identifier(name) {
        return Err(format!("column '{column}': '{name}' is not a column name"));
    }
    if kind.is_empty()
        || !kind
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "_(),<>: ".contains(character))
    {
        return Err(format!("column '{column}': '{kind}' is not a Hive type"));
    }
    Ok((name.to_string(), kind.to_string()))
}

/// One separator character as a Hive string literal's content: `\t`, printable ASCII as itself,
/// other ASCII in octal (`\001`); or why it cannot be one.
pub fn hive_separator(text: &str) -> Result<String, String> {
    let character = match text {
        "\\t" => '\t',
        "\\n" => '\n',
        _ => {
            let mut characters = text.chars();
            match (characters.next(), characters.next()) {
                (Some(character), None) => character,
                _ => return Err(format!("separator {text:?} is not one character")),
            }
        }
    };
    Ok(match character {
        '\t' => "\\t".to_string(),
        '\'' | '\\' => format!("\\{:03o}", character as u32),
        ' '..='~' => character.to_string(),
        _ if character.is_ascii() => format!("\\{:03o}", character as u32),
        _ => return Err(format!("separator {text:?} is not an ASCII character")),
    })
}

/// Why a data format cannot be a staged Hive table (`None`: it can): CSV, TSV and Custom as
/// delimited text, RegEx (read-only: Hive's RegexSerDe cannot write) with columns that are Hive
/// columns, one-character separators, records ending with a newline.
pub fn hive_format_problem(
    format_type: &str,
    field: &dyn Fn(&str) -> Option<String>,
    columns: &[String],
    output: bool,
) -> Option<String> {
    if !HIVE_FORMATS.contains(&format_type) {
        return Some(format!("a {format_type}; Sluice stages CSV, TSV, Custom and RegEx"));
    }
    if format_type == "RegEx" && output {
        return Some("RegEx, which Hive reads but cannot write (its RegexSerDe does not serialize); use CSV, TSV or Custom for outputs".into());
    }
    if format_type == "RegEx" && field("inputRegEx").is_none() {
        return Some("RegEx without inputRegEx".into());
    }
    if columns.is_empty() {
        return Some("without `column` fields ('name TYPE') to make the table from".into());
    }
    for column in columns {
        if let Err(problem) = hive_column(column) {
            return Some(problem);
        }
    }
    if matches!(format_type, "CSV" | "TSV" | "Custom") {
        let separator = field("columnSeparator");
        if format_type == "Custom" && separator.is_none() {
            return Some("Custom without columnSeparator".into());
        }
        for text in separator.into_iter().chain(field("escapeChar")) {
            if let Err(problem) = hive_separator(&text) {
                return Some(problem);
            }
        }
        if let Some(records) = field("recordSeparator")
            && !matches!(records.as_str(), "\n" | "\\n")
        {
            return Some(format!(
                "recordSeparator {records:?}: Hive's text tables end records with a newline only"
            ));
        }
    }
    None
}

/// HiveActivity stages its inputs and outputs as tables (`${input1}`, `${output1}`): each must be
/// an S3DataNode with a data format Hive can read (and, for outputs, write).
fn hive_staging_problems(definition: &PipelineDefinition, activity: &PipelineObject) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for key in ["input", "output"] {
        for (index, node_id) in activity.values(key).filter_map(FieldValue::as_ref_target).enumerate() {
            let table = format!("{key}{}", index + 1);
            let Some(node) = definition.object(node_id) else {
                continue;
            };
            let node_type = type_of(definition, node).unwrap_or("");
            if node_type != "S3DataNode" {
                problems.push((
                    activity.id.clone(),
                    format!("HiveActivity stages {table} ({node_id}) as a table from an S3DataNode; {node_id} is a {node_type} (set stage to false and name your tables in the script)"),
                ));
                continue;
            }
            let format = inherited(definition, node, "dataFormat")
                .and_then(FieldValue::as_ref_target)
                .and_then(|id| definition.object(id));
            let Some(format) = format else {
                problems.push((
                    activity.id.clone(),
                    format!("HiveActivity stages {table} ({node_id}) as a table, which needs the node's dataFormat (CSV, TSV, Custom or RegEx with `column` fields)"),
                ));
                continue;
            };
            let format_type = type_of(definition, format).unwrap_or("");
            let field = |key: &str| {
                inherited(definition, format, key)
                    .and_then(FieldValue::as_string)
                    .map(str::to_string)
            };
            let columns: Vec<String> = lineage(definition, format)
                .map(|object| {
                    object
                        .values("column")
                        .filter_map(FieldValue::as_string)
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .find(|columns| !columns.is_empty())
                .unwrap_or_default();
            if let Some(problem) = hive_format_problem(format_type, &field, &columns, key == "output") {
                problems.push((
                    activity.id.clone(),
                    format!(
                        "HiveActivity stages {table} ({node_id}) with data format {}: {problem}",
                        format.id
                    ),
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    #[test]
    fn hive_staging_formats() {
        let none = |_: &str| None::<String>;
        let columns = vec!["name STRING".to_string(), "age INT".to_string()];
        assert_eq!(super::hive_format_problem("CSV", &none, &columns, true), None);
        assert!(
            super::hive_format_problem("Custom", &none, &columns, false)
                .unwrap()
                .contains("columnSeparator")
        );
        let regex = |key: &str| (key == "inputRegEx").then(|| "(.*)".to_string());
        assert_eq!(super::hive_format_problem("RegEx", &regex, &columns, false), None);
        assert!(
            super::hive_format_problem("RegEx", &regex, &columns, true)
                .unwrap()
                .contains("cannot write")
        );
        assert!(
            super::hive_format_problem("CSV", &none, &[], false)
                .unwrap()
                .contains("column")
        );
        assert!(super::hive_format_problem("CSV", &none, &["x`y INT".to_string()], false).is_some());
        let records = |key: &str| (key == "recordSeparator").then(|| ";".to_string());
        assert!(
            super::hive_format_problem("TSV", &records, &columns, false)
                .unwrap()
                .contains("newline")
        );
        assert_eq!(super::hive_separator("\t").unwrap(), "\\t");
        assert_eq!(super::hive_separator("'").unwrap(), "\\047");
        assert!(super::hive_separator("ab").is_err());
        assert_eq!(super::hive_column("price DECIMAL(10,2)").unwrap().1, "DECIMAL(10,2)");
        assert!(super::hive_column("x INT'; --").is_err());
        assert!(!super::stages(Some("FALSE "), "HiveActivity"));
        assert!(super::stages(None, "HiveActivity") && !super::stages(None, "ShellCommandActivity"));
    }

    #[test]
    fn spark_masters() {
        for good in [
            "local",
            "local[*]",
            "local[2]",
            "local[2,3]",
            "yarn",
            "spark://h:7077",
            "k8s://https://k:6443",
        ] {
            assert!(super::is_spark_master(good), "{good}");
        }
        for bad in ["", "local[", "spark://", "http://x", "yarn-client", "localhost"] {
            assert!(!super::is_spark_master(bad), "{bad}");
        }
    }
}
