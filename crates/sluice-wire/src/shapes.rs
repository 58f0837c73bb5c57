//! Request and response shapes of the operations Sluice answers (member names exactly as the
//! botocore model spells them), each request with its constraint check.

use serde::{Deserialize, Serialize};
use sluice_core::model::{self, FieldValue};

use crate::{ApiError, Check};

const ID_MAX: usize = 1024;
const KEY_MAX: usize = 256;
const VALUE_MAX: usize = 10_240;
const TAG_KEY_MAX: usize = 128;
const TAG_VALUE_MAX: usize = 256;
const TAGS_MAX: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ref_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineObject {
    pub id: String,
    pub name: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterAttribute {
    pub key: String,
    pub string_value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterObject {
    pub id: String,
    pub attributes: Vec<ParameterAttribute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterValue {
    pub id: String,
    pub string_value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

fn check_tags(check: &mut Check, path: &str, tags: &[Tag]) {
    check.count(path, tags.len(), 0, TAGS_MAX);
    for (index, tag) in tags.iter().enumerate() {
        check.length(&format!("{path}.{}.member.key", index + 1), &tag.key, 1, TAG_KEY_MAX);
        check.length(
            &format!("{path}.{}.member.value", index + 1),
            &tag.value,
            0,
            TAG_VALUE_MAX,
        );
    }
}

fn check_pipeline_id(check: &mut Check, pipeline_id: &str) {
    check.string("pipelineId", pipeline_id, 1, ID_MAX);
}

// ---- CreatePipeline

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePipelineInput {
    pub name: String,
    pub unique_id: String,
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl CreatePipelineInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check
            .string("name", &self.name, 1, ID_MAX)
            .string("uniqueId", &self.unique_id, 1, ID_MAX);
        if let Some(description) = &self.description {
            check.string("description", description, 0, ID_MAX);
        }
        check_tags(&mut check, "tags", &self.tags);
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePipelineOutput {
    pub pipeline_id: String,
}

// ---- DeletePipeline, and the other inputs that carry only a pipeline id

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineIdInput {
    pub pipeline_id: String,
}

impl PipelineIdInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_pipeline_id(&mut check, &self.pipeline_id);
        check.finish()
    }
}

// ---- DescribePipelines

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribePipelinesInput {
    pub pipeline_ids: Vec<String>,
}

/// The model documents 25 ids per call; the AWS CLI's own helpers send up to 100, so 100 it is.
pub const DESCRIBE_MAX_IDS: usize = 100;

impl DescribePipelinesInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check.count("pipelineIds", self.pipeline_ids.len(), 1, DESCRIBE_MAX_IDS);
        for (index, id) in self.pipeline_ids.iter().enumerate() {
            check.string(&format!("pipelineIds.{}.member", index + 1), id, 1, ID_MAX);
        }
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineDescription {
    pub pipeline_id: String,
    pub name: String,
    pub fields: Vec<Field>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribePipelinesOutput {
    pub pipeline_description_list: Vec<PipelineDescription>,
}

// ---- ListPipelines

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPipelinesInput {
    pub marker: Option<String>,
}

impl ListPipelinesInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        if let Some(marker) = &self.marker {
            check.string("marker", marker, 0, ID_MAX);
        }
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineIdName {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPipelinesOutput {
    pub pipeline_id_list: Vec<PipelineIdName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    pub has_more_results: bool,
}

// ---- PutPipelineDefinition / ValidatePipelineDefinition

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutPipelineDefinitionInput {
    pub pipeline_id: String,
    pub pipeline_objects: Vec<PipelineObject>,
    #[serde(default)]
    pub parameter_objects: Vec<ParameterObject>,
    #[serde(default)]
    pub parameter_values: Vec<ParameterValue>,
}

impl PutPipelineDefinitionInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_pipeline_id(&mut check, &self.pipeline_id);
        for (index, object) in self.pipeline_objects.iter().enumerate() {
            let path = format!("pipelineObjects.{}.member", index + 1);
            check.string(&format!("{path}.id"), &object.id, 1, ID_MAX).string(
                &format!("{path}.name"),
                &object.name,
                1,
                ID_MAX,
            );
            for (field_index, field) in object.fields.iter().enumerate() {
                let field_path = format!("{path}.fields.{}.member", field_index + 1);
                check.string(&format!("{field_path}.key"), &field.key, 1, KEY_MAX);
                if let Some(value) = &field.string_value {
                    check.string(&format!("{field_path}.stringValue"), value, 0, VALUE_MAX);
                }
                if let Some(target) = &field.ref_value {
                    check.string(&format!("{field_path}.refValue"), target, 1, KEY_MAX);
                }
            }
        }
        for (index, parameter) in self.parameter_objects.iter().enumerate() {
            let path = format!("parameterObjects.{}.member", index + 1);
            check.string(&format!("{path}.id"), &parameter.id, 1, KEY_MAX);
            for (attribute_index, attribute) in parameter.attributes.iter().enumerate() {
                let attribute_path = format!("{path}.attributes.{}.member", attribute_index + 1);
                check.string(&format!("{attribute_path}.key"), &attribute.key, 1, KEY_MAX);
                check.string(
                    &format!("{attribute_path}.stringValue"),
                    &attribute.string_value,
                    0,
                    VALUE_MAX,
                );
            }
        }
        for (index, value) in self.parameter_values.iter().enumerate() {
            let path = format!("parameterValues.{}.member", index + 1);
            check.string(&format!("{path}.id"), &value.id, 1, KEY_MAX);
            check.string(&format!("{path}.stringValue"), &value.string_value, 0, VALUE_MAX);
        }
        check.finish()
    }

    /// The definition in the model. A field must carry exactly one of `stringValue` and
    /// `refValue` (the model's own rule).
    pub fn to_definition(&self) -> Result<model::PipelineDefinition, ApiError> {
        let mut objects = Vec::with_capacity(self.pipeline_objects.len());
        for object in &self.pipeline_objects {
            let mut fields = Vec::with_capacity(object.fields.len());
            for field in &object.fields {
                let value = match (&field.string_value, &field.ref_value) {
                    (Some(text), None) => FieldValue::String(text.clone()),
                    (None, Some(target)) => FieldValue::Ref(target.clone()),
                    (Some(_), Some(_)) => {
                        return Err(ApiError::invalid_request(format!(
                            "field '{}' of object '{}' has both stringValue and refValue; give exactly one",
                            field.key, object.id
                        )));
                    }
                    (None, None) => {
                        return Err(ApiError::invalid_request(format!(
                            "field '{}' of object '{}' has neither stringValue nor refValue; give exactly one",
                            field.key, object.id
                        )));
                    }
                };
                fields.push(model::Field {
                    key: field.key.clone(),
                    value,
                });
            }
            objects.push(model::PipelineObject {
                id: object.id.clone(),
                name: object.name.clone(),
                fields,
            });
        }
        let parameters = self
            .parameter_objects
            .iter()
            .map(|parameter| model::ParameterObject {
                id: parameter.id.clone(),
                attributes: parameter
                    .attributes
                    .iter()
                    .map(|attribute| model::ParameterAttribute {
                        key: attribute.key.clone(),
                        value: attribute.string_value.clone(),
                    })
                    .collect(),
            })
            .collect();
        let values = self
            .parameter_values
            .iter()
            .map(|value| model::ParameterValue {
                id: value.id.clone(),
                value: value.string_value.clone(),
            })
            .collect();
        Ok(model::PipelineDefinition {
            objects,
            parameters,
            values,
        })
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationError {
    pub id: String,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationWarning {
    pub id: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationOutput {
    pub validation_errors: Vec<ValidationError>,
    pub validation_warnings: Vec<ValidationWarning>,
    pub errored: bool,
}

impl ValidationOutput {
    pub fn from_report(report: &sluice_core::ValidationReport) -> Self {
        ValidationOutput {
            validation_errors: report
                .errors
                .iter()
                .map(|entry| ValidationError {
                    id: entry.id.clone(),
                    errors: entry.messages.clone(),
                })
                .collect(),
            validation_warnings: report
                .warnings
                .iter()
                .map(|entry| ValidationWarning {
                    id: entry.id.clone(),
                    warnings: entry.messages.clone(),
                })
                .collect(),
            errored: report.errored(),
        }
    }
}

// ---- GetPipelineDefinition

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPipelineDefinitionInput {
    pub pipeline_id: String,
    pub version: Option<String>,
}

impl GetPipelineDefinitionInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_pipeline_id(&mut check, &self.pipeline_id);
        if let Some(version) = &self.version {
            check.string("version", version, 0, ID_MAX);
        }
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPipelineDefinitionOutput {
    pub pipeline_objects: Vec<PipelineObject>,
    pub parameter_objects: Vec<ParameterObject>,
    pub parameter_values: Vec<ParameterValue>,
}

impl GetPipelineDefinitionOutput {
    pub fn from_definition(definition: &model::PipelineDefinition) -> Self {
        GetPipelineDefinitionOutput {
            pipeline_objects: definition
                .objects
                .iter()
                .map(|object| PipelineObject {
                    id: object.id.clone(),
                    name: object.name.clone(),
                    fields: object.fields.iter().map(wire_field).collect(),
                })
                .collect(),
            parameter_objects: definition
                .parameters
                .iter()
                .map(|parameter| ParameterObject {
                    id: parameter.id.clone(),
                    attributes: parameter
                        .attributes
                        .iter()
                        .map(|attribute| ParameterAttribute {
                            key: attribute.key.clone(),
                            string_value: attribute.value.clone(),
                        })
                        .collect(),
                })
                .collect(),
            parameter_values: definition
                .values
                .iter()
                .map(|value| ParameterValue {
                    id: value.id.clone(),
                    string_value: value.value.clone(),
                })
                .collect(),
        }
    }
}

pub fn wire_field(field: &model::Field) -> Field {
    match &field.value {
        FieldValue::String(text) => Field {
            key: field.key.clone(),
            string_value: Some(text.clone()),
            ref_value: None,
        },
        FieldValue::Ref(target) => Field {
            key: field.key.clone(),
            string_value: None,
            ref_value: Some(target.clone()),
        },
    }
}

// ---- AddTags / RemoveTags

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddTagsInput {
    pub pipeline_id: String,
    pub tags: Vec<Tag>,
}

impl AddTagsInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_pipeline_id(&mut check, &self.pipeline_id);
        check_tags(&mut check, "tags", &self.tags);
        check.finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveTagsInput {
    pub pipeline_id: String,
    pub tag_keys: Vec<String>,
}

impl RemoveTagsInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_pipeline_id(&mut check, &self.pipeline_id);
        for (index, key) in self.tag_keys.iter().enumerate() {
            check.string(&format!("tagKeys.{}.member", index + 1), key, 0, ID_MAX);
        }
        check.finish()
    }
}

// ---- DescribeObjects

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeObjectsInput {
    pub pipeline_id: String,
    pub object_ids: Vec<String>,
    #[serde(default)]
    pub evaluate_expressions: bool,
    pub marker: Option<String>,
}

impl DescribeObjectsInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_pipeline_id(&mut check, &self.pipeline_id);
        check.count("objectIds", self.object_ids.len(), 1, DESCRIBE_MAX_IDS);
        for (index, id) in self.object_ids.iter().enumerate() {
            check.string(&format!("objectIds.{}.member", index + 1), id, 1, ID_MAX);
        }
        if let Some(marker) = &self.marker {
            check.string("marker", marker, 0, ID_MAX);
        }
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeObjectsOutput {
    pub pipeline_objects: Vec<PipelineObject>,
    pub has_more_results: bool,
}

// ---- QueryObjects

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operator {
    #[serde(rename = "type")]
    pub operator_type: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    pub field_name: Option<String>,
    pub operator: Option<Operator>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Query {
    #[serde(default)]
    pub selectors: Vec<Selector>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryObjectsInput {
    pub pipeline_id: String,
    pub query: Option<Query>,
    pub sphere: String,
    pub marker: Option<String>,
    pub limit: Option<i64>,
}

/// Reference §j: at most 10 selectors; QueryObjects pages default to 100.
pub const MAX_SELECTORS: usize = 10;

impl QueryObjectsInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_pipeline_id(&mut check, &self.pipeline_id);
        check.string("sphere", &self.sphere, 0, ID_MAX);
        if let Some(marker) = &self.marker {
            check.string("marker", marker, 0, ID_MAX);
        }
        if let Some(query) = &self.query {
            check.count("query.selectors", query.selectors.len(), 0, MAX_SELECTORS);
            for (index, selector) in query.selectors.iter().enumerate() {
                if let Some(name) = &selector.field_name {
                    check.string(
                        &format!("query.selectors.{}.member.fieldName", index + 1),
                        name,
                        0,
                        ID_MAX,
                    );
                }
                for (value_index, value) in selector
                    .operator
                    .iter()
                    .flat_map(|operator| operator.values.iter())
                    .enumerate()
                {
                    check.string(
                        &format!(
                            "query.selectors.{}.member.operator.values.{}.member",
                            index + 1,
                            value_index + 1
                        ),
                        value,
                        0,
                        ID_MAX,
                    );
                }
            }
        }
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryObjectsOutput {
    /// Always present, even empty: `aws datapipeline list-runs` indexes it.
    pub ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    pub has_more_results: bool,
}

// ---- ActivatePipeline / DeactivatePipeline / SetStatus

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivatePipelineInput {
    pub pipeline_id: String,
    #[serde(default)]
    pub parameter_values: Vec<ParameterValue>,
    /// Epoch seconds, as the JSON protocol sends timestamps.
    pub start_timestamp: Option<f64>,
}

impl ActivatePipelineInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_pipeline_id(&mut check, &self.pipeline_id);
        for (index, value) in self.parameter_values.iter().enumerate() {
            let path = format!("parameterValues.{}.member", index + 1);
            check.string(&format!("{path}.id"), &value.id, 1, KEY_MAX);
            check.string(&format!("{path}.stringValue"), &value.string_value, 0, VALUE_MAX);
        }
        check.finish()
    }

    pub fn values(&self) -> Vec<model::ParameterValue> {
        self.parameter_values
            .iter()
            .map(|value| model::ParameterValue {
                id: value.id.clone(),
                value: value.string_value.clone(),
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeactivatePipelineInput {
    pub pipeline_id: String,
    pub cancel_active: Option<bool>,
}

impl DeactivatePipelineInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_pipeline_id(&mut check, &self.pipeline_id);
        check.finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetStatusInput {
    pub pipeline_id: String,
    pub object_ids: Vec<String>,
    pub status: String,
}

impl SetStatusInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_pipeline_id(&mut check, &self.pipeline_id);
        check.count("objectIds", self.object_ids.len(), 1, DESCRIBE_MAX_IDS);
        for (index, id) in self.object_ids.iter().enumerate() {
            check.string(&format!("objectIds.{}.member", index + 1), id, 1, ID_MAX);
        }
        check.string("status", &self.status, 0, ID_MAX);
        check.finish()
    }
}

// ---- The task-runner protocol

const TASK_ID_MAX: usize = 2048;
/// The model sets no bound on `errorMessage`; 64 KiB is plenty for a message and bounds storage.
const ERROR_MESSAGE_MAX: usize = 65_536;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceIdentity {
    pub document: Option<String>,
    pub signature: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollForTaskInput {
    pub worker_group: String,
    pub hostname: Option<String>,
    pub instance_identity: Option<InstanceIdentity>,
}

impl PollForTaskInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check.string("workerGroup", &self.worker_group, 0, ID_MAX);
        if let Some(hostname) = &self.hostname {
            check.string("hostname", hostname, 1, ID_MAX);
        }
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskObject {
    pub task_id: String,
    pub pipeline_id: String,
    pub attempt_id: String,
    /// The attempt, its instance and the objects they refer to, by id.
    pub objects: std::collections::BTreeMap<String, PipelineObject>,
    /// Sluice's extension: temporary credentials of the task's `resourceRole`, ending with the
    /// attempt (`roleArn`, `accessKeyId`, `secretAccessKey`, `sessionToken`, `expiration`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sluice_task_credentials: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PollForTaskOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_object: Option<TaskObject>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportTaskProgressInput {
    pub task_id: String,
    #[serde(default)]
    pub fields: Vec<Field>,
}

impl ReportTaskProgressInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check.string("taskId", &self.task_id, 1, TASK_ID_MAX);
        check.count("fields", self.fields.len(), 0, 50);
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportTaskProgressOutput {
    pub canceled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetTaskStatusInput {
    pub task_id: String,
    pub task_status: String,
    pub error_id: Option<String>,
    pub error_message: Option<String>,
    pub error_stack_trace: Option<String>,
}

impl SetTaskStatusInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check.string("taskId", &self.task_id, 1, TASK_ID_MAX);
        if let Some(error_id) = &self.error_id {
            check.string("errorId", error_id, 0, ID_MAX);
        }
        if let Some(message) = &self.error_message {
            check.length("errorMessage", message, 0, ERROR_MESSAGE_MAX);
        }
        if let Some(trace) = &self.error_stack_trace {
            check.string("errorStackTrace", trace, 0, ID_MAX);
        }
        check.finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportTaskRunnerHeartbeatInput {
    pub taskrunner_id: String,
    pub worker_group: Option<String>,
    pub hostname: Option<String>,
}

impl ReportTaskRunnerHeartbeatInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check.string("taskrunnerId", &self.taskrunner_id, 1, ID_MAX);
        if let Some(group) = &self.worker_group {
            check.string("workerGroup", group, 0, ID_MAX);
        }
        if let Some(hostname) = &self.hostname {
            check.string("hostname", hostname, 1, ID_MAX);
        }
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportTaskRunnerHeartbeatOutput {
    pub terminate: bool,
}

// ---- EvaluateExpression

/// The model allows expressions up to 20 MiB.
pub const EXPRESSION_MAX: usize = 20_971_520;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateExpressionInput {
    pub pipeline_id: String,
    pub object_id: String,
    pub expression: String,
}

impl EvaluateExpressionInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_pipeline_id(&mut check, &self.pipeline_id);
        check
            .string("objectId", &self.object_id, 1, ID_MAX)
            .string("expression", &self.expression, 0, EXPRESSION_MAX);
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateExpressionOutput {
    pub evaluated_expression: String,
}

// ---- CloudTrail LookupEvents (PascalCase members, timestamps as epoch seconds)

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupAttribute {
    pub attribute_key: String,
    pub attribute_value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsInput {
    #[serde(default)]
    pub lookup_attributes: Vec<LookupAttribute>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub event_category: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupResource {
    pub resource_type: String,
    pub resource_name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEvent {
    pub event_id: String,
    pub event_name: String,
    pub read_only: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    pub event_time: f64,
    pub event_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub resources: Vec<LookupResource>,
    pub cloud_trail_event: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsOutput {
    pub events: Vec<LookupEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, parse_body};

    #[test]
    fn wrong_types_name_the_member() {
        let error = parse_body::<PutPipelineDefinitionInput>(
            br#"{"pipelineId":"df-1","pipelineObjects":[{"id":"A","name":"A","fields":[{"key":"maximumRetries","stringValue":3}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidRequestException);
        assert_eq!(
            error.message,
            "invalid value at 'pipelineObjects[0].fields[0].stringValue': invalid type: integer `3`, expected a string"
        );
        let missing = parse_body::<CreatePipelineInput>(br#"{"name":"n"}"#).unwrap_err();
        assert_eq!(missing.message, "the request body is invalid: missing field `uniqueId`");
        let malformed = parse_body::<CreatePipelineInput>(b"{\"name\":").unwrap_err();
        assert_eq!(malformed.kind, ErrorKind::SerializationException);
    }

    #[test]
    fn oversize_members_are_named_without_their_value() {
        let input = CreatePipelineInput {
            name: "x".repeat(1025),
            unique_id: "u\u{1}".into(),
            description: None,
            tags: vec![],
        };
        let error = input.check().unwrap_err();
        assert!(
            error
                .message
                .starts_with("2 validation errors detected: Value at 'name' failed to satisfy constraint"),
            "{}",
            error.message
        );
        assert!(!error.message.contains("xxxx"));
    }
}
