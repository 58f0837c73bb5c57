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

fn type_of<'a>(definition: &'a PipelineDefinition, object: &'a PipelineObject) -> Option<&'a str> {
    let mut current = Some(object);
    let mut hops = 0;
    while let Some(found) = current {
        if let Some(kind) = found.object_type() {
            return Some(kind);
        }
        hops += 1;
        if hops > 32 {
            return None;
        }
        current = found
            .first("parent")
            .and_then(FieldValue::as_ref_target)
            .and_then(|parent| definition.object(parent));
    }
    None
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
        if kind == "HiveActivity" && object.first("stage").and_then(FieldValue::as_string) != Some("false") {
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

/// HiveActivity stages its inputs and outputs as tables (`${input1}`, `${output1}`): each must be
/// an S3DataNode with a directory or file and a delimited or RegEx data format with columns.
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
            let format = node
                .first("dataFormat")
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
            if !HIVE_FORMATS.contains(&format_type) {
                problems.push((
                    activity.id.clone(),
                    format!("HiveActivity stages {table} ({node_id}) with data format {}, a {format_type}; Sluice stages CSV, TSV, Custom and RegEx", format.id),
                ));
            } else if format.values("column").next().is_none() {
                problems.push((
                    activity.id.clone(),
                    format!("HiveActivity stages {table} ({node_id}) as a table, whose columns come from data format {}: give it `column` fields ('name TYPE')", format.id),
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
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
