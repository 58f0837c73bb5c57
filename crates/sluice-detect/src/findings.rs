//! Findings in Macie's shape: per object, the detections by category and type with their counts,
//! up to 15 located occurrences each, severity by Macie's rules, and a few redacted samples.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::formats::{Format, Location, Occurrence};
use crate::identifiers::{Category, Identifier, Severity};

/// Macie locates at most this many occurrences per type.
pub const MAX_LOCATED: usize = 15;
const MAX_SAMPLES: usize = 3;

#[derive(Debug, Clone, Default)]
pub struct TypeReport {
    pub count: u64,
    pub located: Vec<Location>,
    pub samples: Vec<String>,
    pub severity_by_count: Option<[Severity; 3]>,
}

impl TypeReport {
    pub fn severity(&self) -> Severity {
        let levels = self.severity_by_count.unwrap_or([Severity::Medium; 3]);
        match self.count {
            0 | 1 => levels[0],
            2..=99 => levels[1],
            _ => levels[2],
        }
    }
}

/// What one scanned object holds.
#[derive(Debug, Clone)]
pub struct ObjectReport {
    pub path: String,
    pub format: Format,
    pub size_classified: u64,
    /// By category, then type.
    pub detections: BTreeMap<Category, BTreeMap<String, TypeReport>>,
    /// Set when the object could not be read whole (status PARTIAL with this reason).
    pub problem: Option<String>,
}

/// A sample never shows the value: its first and last two characters at most, the rest `*`.
pub fn redact(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let characters: Vec<char> = text.chars().collect();
    if characters.len() <= 8 {
        return "*".repeat(characters.len());
    }
    let keep = 2;
    let mut out: String = characters[..keep].iter().collect();
    out.push_str(&"*".repeat(characters.len() - 2 * keep));
    out.extend(&characters[characters.len() - keep..]);
    out
}

impl ObjectReport {
    pub fn new(path: impl Into<String>, format: Format) -> ObjectReport {
        ObjectReport {
            path: path.into(),
            format,
            size_classified: 0,
            detections: BTreeMap::new(),
            problem: None,
        }
    }

    pub fn add(&mut self, identifiers: &[Identifier], occurrence: Occurrence) {
        let identifier = &identifiers[occurrence.hit.identifier];
        let report = self
            .detections
            .entry(identifier.category)
            .or_default()
            .entry(occurrence.hit.type_name.clone())
            .or_default();
        report.count += 1;
        report.severity_by_count = Some(identifier.severity);
        if report.located.len() < MAX_LOCATED {
            report.located.push(occurrence.location);
        }
        if report.samples.len() < MAX_SAMPLES {
            report.samples.push(redact(occurrence.value));
        }
    }

    pub fn total(&self) -> u64 {
        self.detections
            .values()
            .flat_map(BTreeMap::values)
            .map(|report| report.count)
            .sum()
    }

    /// The highest severity over every type found.
    pub fn severity(&self) -> Option<Severity> {
        self.detections
            .values()
            .flat_map(BTreeMap::values)
            .map(TypeReport::severity)
            .max()
    }

    /// `SensitiveData:S3Object/<Category>`, or `/Multiple` for several categories.
    pub fn finding_type(&self) -> Option<String> {
        let mut categories = self.detections.keys();
        let first = categories.next()?;
        Some(if categories.next().is_some() {
            "SensitiveData:S3Object/Multiple".to_string()
        } else {
            format!("SensitiveData:S3Object/{}", first.finding_suffix())
        })
    }

    /// The finding as Macie shapes it (`None` when nothing was found). `resource` goes in
    /// `resourcesAffected`; `now` is `createdAt`/`updatedAt`.
    pub fn finding(&self, id: &str, account_id: &str, region: &str, now: &str, resource: Value) -> Option<Value> {
        let finding_type = self.finding_type()?;
        let severity = self.severity().unwrap_or(Severity::Low);
        let occurrence_key = match self.format {
            Format::Text => "lineRanges",
            Format::Csv | Format::Tsv => "cells",
            Format::Json | Format::JsonLines | Format::Parquet => "records",
        };
        let mut additional = false;
        let sensitive: Vec<Value> = self
            .detections
            .iter()
            .filter(|(category, _)| **category != Category::Custom)
            .map(|(category, types)| {
                json!({
                    "category": category.macie(),
                    "totalCount": types.values().map(|report| report.count).sum::<u64>(),
                    "detections": types.iter().map(|(name, report)| {
                        additional |= report.count > report.located.len() as u64;
                        json!({
                            "type": name,
                            "count": report.count,
                            "occurrences": { occurrence_key: report.located },
                            "sluiceSeverity": report.severity().description(),
                            "sluiceSamples": report.samples,
                        })
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        let custom = self.detections.get(&Category::Custom);
        let custom_detections: Vec<Value> = custom
            .into_iter()
            .flatten()
            .map(|(name, report)| {
                additional |= report.count > report.located.len() as u64;
                json!({
                    "name": name,
                    "count": report.count,
                    "occurrences": { occurrence_key: report.located },
                    "sluiceSamples": report.samples,
                })
            })
            .collect();
        let total: u64 = self.total();
        Some(json!({
            "id": id,
            "accountId": account_id,
            "region": region,
            "partition": "aws",
            "type": finding_type,
            "category": "CLASSIFICATION",
            "title": format!("The object contains sensitive information ({total} occurrence(s))."),
            "description": format!("{} holds {} type(s) of sensitive data.", self.path,
                self.detections.values().map(BTreeMap::len).sum::<usize>()),
            "severity": { "score": severity as u8, "description": severity.description() },
            "count": 1,
            "createdAt": now,
            "updatedAt": now,
            "archived": false,
            "schemaVersion": "1.0",
            "sample": false,
            "resourcesAffected": resource,
            "classificationDetails": {
                "originType": "SENSITIVE_DATA_DISCOVERY_JOB",
                "result": {
                    "status": match &self.problem {
                        Some(reason) => json!({ "code": "PARTIAL", "reason": reason }),
                        None => json!({ "code": "COMPLETE" }),
                    },
                    "mimeType": self.format.mime_type(),
                    "sizeClassified": self.size_classified,
                    "additionalOccurrences": additional,
                    "sensitiveData": sensitive,
                    "customDataIdentifiers": {
                        "totalCount": custom_detections.iter().map(|d| d["count"].as_u64().unwrap_or(0)).sum::<u64>(),
                        "detections": custom_detections,
                    },
                },
            },
        }))
    }
}
