//! What Sluice can run today. Definitions with other types are accepted by Put and Validate
//! (with a warning, so a pipeline can be brought over and its gaps seen) and refused by
//! ActivatePipeline with the list, never a failure of a run at 3 a.m.

use crate::model::{FieldValue, PipelineDefinition, PipelineObject};

const ACTIVITIES: &[&str] = &[
    "ShellCommandActivity",
    "CopyActivity",
    "SqlActivity",
    "RedshiftCopyActivity",
];
/// What CopyActivity reads and writes.
const COPY_NODES: &[&str] = &["S3DataNode", "SqlDataNode", "MySqlDataNode", "RedshiftDataNode"];
/// The databases the runner speaks to, by JDBC URL prefix.
const JDBC_PREFIXES: &[&str] = &["jdbc:postgresql:", "jdbc:redshift:", "jdbc:mysql:", "jdbc:mariadb:"];
const PRECONDITIONS: &[&str] = &["ShellCommandPrecondition", "Exists", "S3KeyExists", "S3PrefixNotEmpty"];
const UNSUPPORTED: &[&str] = &[
    "EmrCluster",
    "DynamoDBDataNode",
    "DynamoDBDataFormat",
    "DynamoDBExportDataFormat",
];

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
        if !supported {
            problems.push((object.id.clone(), format!("Sluice does not support {kind} yet")));
            continue;
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
