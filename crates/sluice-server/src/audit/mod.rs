//! The audit trail: one CloudTrail-shaped record per request (allowed, denied, failed, or not
//! authenticated), hash-chained, written in the request's own transaction when the request
//! changes state, so that the change and its record commit together or not at all.
//!
//! Redaction happens here, before anything is stored: `*` fields and parameters, secret-looking
//! member names, keys, tokens and codes become `HIDDEN_DUE_TO_SECURITY_REASONS`.

pub mod delivery;
pub mod destination;
pub mod lookup;
pub mod verify;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sluice_crypto::audit::chain_hash;
use sluice_store::{AuditRecord, StoreError, Transaction};
use sluice_wire::Operation;

use crate::api::Principal;

pub const EVENT_VERSION: &str = "1.08";
pub const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";
/// CloudTrail truncates request parameters and response elements at 100 KB.
const MAX_ELEMENT_BYTES: usize = 100 * 1024;
const MAX_USER_AGENT_BYTES: usize = 1024;
const MAX_ERROR_MESSAGE_BYTES: usize = 1024;
pub const PIPELINE_RESOURCE_TYPE: &str = "AWS::DataPipeline::Pipeline";

/// What the connection told us, gathered before the request is processed.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub host: Option<String>,
    pub tls_version: Option<String>,
    pub cipher_suite: Option<String>,
}

/// Everything a record says about one call.
pub struct CallRecord<'a> {
    pub context: &'a RequestContext,
    pub event_time: DateTime<Utc>,
    pub account_id: &'a str,
    pub region: &'a str,
    pub operation: Option<Operation>,
    /// The raw operation name when the target was not one we know.
    pub unknown_event_name: Option<String>,
    pub principal: Option<&'a Principal>,
    /// The access key a caller claimed when authentication failed.
    pub claimed_access_key_id: Option<&'a str>,
    pub request_body: Option<&'a [u8]>,
    pub response_body: Option<&'a str>,
    pub error: Option<(&'a str, &'a str)>,
}

fn is_sensitive_name(name: &str) -> bool {
    let name = name.trim_start_matches('*').to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "apikey",
        "api_key",
        "privatekey",
        "private_key",
        // MFA: a device's seed (and the URI or QR code carrying it), and one-time codes.
        "seed",
        "otpauth",
        "qrcode",
        "authenticationcode",
    ]
    .iter()
    .any(|marker| name.contains(marker))
}

/// Replaces secrets inside a request or response document, in place.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(members) => {
            // `{"key": "*password", "stringValue": ...}` (fields and parameter attributes) and
            // `{"id": "*myPassword", "stringValue": ...}` (parameter values).
            let named = members
                .get("key")
                .or_else(|| members.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(name) = named
                && (name.starts_with('*') || is_sensitive_name(&name))
                && members.contains_key("stringValue")
            {
                members.insert("stringValue".into(), Value::String(HIDDEN.into()));
            }
            // A `*` parameter object hides its default.
            let secret_parameter = members
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id.starts_with('*'));
            for (name, member) in members.iter_mut() {
                if is_sensitive_name(name) && !matches!(member, Value::Object(_) | Value::Array(_)) {
                    *member = Value::String(HIDDEN.into());
                } else if secret_parameter && name == "attributes" {
                    if let Value::Array(attributes) = member {
                        for attribute in attributes {
                            if attribute.get("key").and_then(Value::as_str) == Some("default")
                                && let Some(Value::Object(attribute)) = Some(attribute)
                            {
                                attribute.insert("stringValue".into(), Value::String(HIDDEN.into()));
                            }
                        }
                    }
                } else {
                    redact(member);
                }
            }
        }
        Value::Array(elements) => elements.iter_mut().for_each(redact),
        // A credential typed where it does not belong (a password in a URL in a tag, say) is
        // refused by the guard rails, but the refusal is recorded too: not with the credential.
        Value::String(text) if sluice_core::guard::credential_in(text).is_some() => {
            *value = Value::String(HIDDEN.into())
        }
        _ => {}
    }
}

fn truncate_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// What a runner reports about a task (error text, progress fields) comes from the task and may
/// quote the data it processed: like definition values, it is kept as a SHA-256 fingerprint.
fn fingerprint_task_report(request: &mut Value) {
    let Value::Object(members) = request else { return };
    for name in ["errorMessage", "errorStackTrace"] {
        if let Some(value) = members.get_mut(name)
            && let Some(text) = value.as_str()
        {
            *value = Value::String(format!("sha256:{}", sluice_crypto::sigv4::sha256_hex(text.as_bytes())));
        }
    }
    if let Some(Value::Array(fields)) = members.get_mut("fields") {
        for field in fields {
            if let Some(Value::Object(field)) = Some(field)
                && let Some(text) = field.get("stringValue").and_then(Value::as_str)
            {
                let fingerprint = format!("sha256:{}", sluice_crypto::sigv4::sha256_hex(text.as_bytes()));
                field.insert("stringValue".into(), Value::String(fingerprint));
            }
        }
    }
}

/// PollForTask's response reduced to which task went out: never the task's objects.
fn findings_summary(request: &Value) -> Value {
    let findings = request.get("findings").and_then(Value::as_array);
    json!({
        "taskId": request.get("taskId"),
        "findings": findings.map_or(0, Vec::len),
        "types": findings
            .into_iter()
            .flatten()
            .filter_map(|finding| finding.get("type").and_then(Value::as_str))
            .collect::<Vec<_>>(),
    })
}

fn task_handout_summary(response: &Value) -> Value {
    match response.get("taskObject") {
        Some(task) => json!({ "taskObject": {
            "taskId": task.get("taskId"),
            "pipelineId": task.get("pipelineId"),
            "attemptId": task.get("attemptId"),
        }}),
        None => response.clone(),
    }
}

/// Definition values are data the pipeline's owner may consider sensitive, and the definition is
/// encrypted at rest; the audit record keeps each value's SHA-256 instead, so it still shows
/// what changed (and can confirm a known value) without holding the value itself.
pub fn fingerprint_definition_values(request: &mut Value) {
    let fingerprint = |value: &mut Value| {
        if let Some(text) = value.as_str()
            && text != HIDDEN
        {
            *value = Value::String(format!("sha256:{}", sluice_crypto::sigv4::sha256_hex(text.as_bytes())));
        }
    };
    if let Some(objects) = request.get_mut("pipelineObjects").and_then(Value::as_array_mut) {
        for object in objects {
            for field in object
                .get_mut("fields")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(value) = field.get_mut("stringValue") {
                    fingerprint(value);
                }
            }
        }
    }
    if let Some(values) = request.get_mut("parameterValues").and_then(Value::as_array_mut) {
        for parameter_value in values {
            if let Some(value) = parameter_value.get_mut("stringValue") {
                fingerprint(value);
            }
        }
    }
    if let Some(parameters) = request.get_mut("parameterObjects").and_then(Value::as_array_mut) {
        for parameter in parameters {
            for attribute in parameter
                .get_mut("attributes")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if attribute.get("key").and_then(Value::as_str) == Some("default")
                    && let Some(value) = attribute.get_mut("stringValue")
                {
                    fingerprint(value);
                }
            }
        }
    }
}

/// Personal data in a pipeline's name, description or tags, which AWS warns never to put there:
/// flagged in the record (without the value) so that an operator can find and fix it.
pub fn guard_rail_findings(request: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let mut flag = |what: String, text: Option<&str>| {
        if let Some(kind) = text.and_then(sluice_core::guard::personal_data_in) {
            findings.push(format!("{what} seems to hold {kind}"));
        }
    };
    flag("the pipeline name".into(), request.get("name").and_then(Value::as_str));
    flag(
        "the description".into(),
        request.get("description").and_then(Value::as_str),
    );
    // Tags by position: the finding must not repeat what it flags.
    for (index, tag) in request
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        flag(
            format!("the key of tag {}", index + 1),
            tag.get("key").and_then(Value::as_str),
        );
        flag(
            format!("the value of tag {}", index + 1),
            tag.get("value").and_then(Value::as_str),
        );
    }
    findings
}

fn bounded(mut value: Value) -> Value {
    redact(&mut value);
    let size = serde_json::to_string(&value).map(|text| text.len()).unwrap_or(0);
    if size > MAX_ELEMENT_BYTES {
        json!({ "truncated": true, "originalSizeBytes": size })
    } else {
        value
    }
}

/// Pipeline ids a call names, from its request and response.
fn pipeline_ids(request: &Value, response: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for document in [request, response] {
        if let Some(id) = document.get("pipelineId").and_then(Value::as_str) {
            ids.push(id.to_string());
        }
        if let Some(list) = document.get("pipelineIds").and_then(Value::as_array) {
            ids.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
        }
    }
    ids.dedup();
    ids
}

pub fn render_event_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The record's JSON and the columns LookupEvents filters on.
pub fn build(call: &CallRecord<'_>) -> (Value, AuditRecord) {
    // Version 7: time-ordered, so the event id index grows at its end instead of everywhere.
    let event_id = uuid::Uuid::now_v7().to_string();
    let event_time = render_event_time(call.event_time);
    let event_name = match (call.operation, &call.unknown_event_name) {
        (Some(operation), _) => operation.name().to_string(),
        (None, Some(name)) => name.clone(),
        (None, None) => "Unknown".to_string(),
    };
    let event_source = call
        .operation
        .map_or("datapipeline.amazonaws.com", Operation::event_source);
    let read_only = call.operation.is_some_and(Operation::read_only);

    let request: Value = call
        .request_body
        .and_then(|body| serde_json::from_slice(body).ok())
        .unwrap_or(Value::Null);
    // Only a successful mutating call's response goes into the record: reads can be large and
    // are not parsed at all.
    let response: Value = match call.response_body {
        Some(body) if !read_only && call.error.is_none() => serde_json::from_str(body).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let ids = pipeline_ids(&request, &response);

    let user_identity = match call.principal {
        Some(principal) => {
            let mut identity = json!({
                "type": principal.identity.kind,
                "principalId": principal.identity.identity_id,
                "arn": principal.identity.arn,
                "accountId": principal.identity.account_id,
                "accessKeyId": principal.access_key_id,
            });
            match &principal.session_issuer {
                // CloudTrail's AssumedRole: the session, and the role it is a session of.
                Some(role) => {
                    identity["sessionContext"] = json!({
                        "sessionIssuer": {
                            "type": "Role",
                            "principalId": role.identity_id,
                            "arn": role.arn,
                            "accountId": role.account_id,
                            "userName": role.name,
                        },
                        "attributes": { "mfaAuthenticated": "false" },
                    });
                }
                None if principal.identity.kind != "Root" => {
                    identity["userName"] = Value::String(principal.identity.name.clone());
                }
                None => {}
            }
            identity
        }
        None => match call.claimed_access_key_id {
            Some(key) => json!({ "type": "Unknown", "accessKeyId": key }),
            None => json!({ "type": "Unknown" }),
        },
    };

    let mut record = Map::new();
    record.insert("eventVersion".into(), EVENT_VERSION.into());
    record.insert("userIdentity".into(), user_identity);
    record.insert("eventTime".into(), event_time.clone().into());
    record.insert("eventSource".into(), event_source.into());
    record.insert("eventName".into(), event_name.clone().into());
    record.insert("awsRegion".into(), call.region.into());
    record.insert(
        "sourceIPAddress".into(),
        call.context
            .source_ip
            .clone()
            .unwrap_or_else(|| "unknown".into())
            .into(),
    );
    if let Some(agent) = &call.context.user_agent {
        record.insert("userAgent".into(), truncate_bytes(agent, MAX_USER_AGENT_BYTES).into());
    }
    if let Some((code, message)) = call.error {
        record.insert("errorCode".into(), code.into());
        record.insert(
            "errorMessage".into(),
            truncate_bytes(message, MAX_ERROR_MESSAGE_BYTES).into(),
        );
    }
    let mut request = request;
    if matches!(call.operation, Some(Operation::CreatePipeline | Operation::AddTags)) {
        let findings = guard_rail_findings(&request);
        if !findings.is_empty() {
            record.insert("additionalEventData".into(), json!({ "guardRailFindings": findings }));
        }
    }
    if matches!(
        call.operation,
        Some(Operation::PutPipelineDefinition | Operation::ValidatePipelineDefinition)
    ) {
        redact(&mut request);
        fingerprint_definition_values(&mut request);
    }
    if matches!(
        call.operation,
        Some(Operation::SetTaskStatus | Operation::ReportTaskProgress)
    ) {
        fingerprint_task_report(&mut request);
    }
    // Findings name objects and carry redacted samples; they are sealed in the store, and the
    // record keeps what was reported, not the findings themselves.
    if call.operation == Some(Operation::ReportFindings) {
        request = findings_summary(&request);
    }
    let response = match call.operation {
        // A task carries the evaluated objects, `*` fields included: the record names the task.
        Some(Operation::PollForTask) => task_handout_summary(&response),
        _ => response,
    };
    record.insert("requestParameters".into(), bounded(request));
    // CloudTrail gives response elements for mutating calls only.
    let response_elements = if response.is_null() {
        Value::Null
    } else {
        bounded(response)
    };
    record.insert("responseElements".into(), response_elements);
    record.insert("requestID".into(), call.context.request_id.clone().into());
    record.insert("eventID".into(), event_id.clone().into());
    record.insert("readOnly".into(), read_only.into());
    if !ids.is_empty() {
        let resources: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({
                    "ARN": format!("arn:aws:datapipeline:{}:{}:pipeline/{id}", call.region, call.account_id),
                    "accountId": call.account_id,
                    "type": PIPELINE_RESOURCE_TYPE,
                })
            })
            .collect();
        record.insert("resources".into(), Value::Array(resources));
    }
    record.insert("eventType".into(), "AwsApiCall".into());
    record.insert("managementEvent".into(), true.into());
    record.insert("recipientAccountId".into(), call.account_id.into());
    record.insert("eventCategory".into(), "Management".into());
    if let Some(version) = &call.context.tls_version {
        record.insert(
            "tlsDetails".into(),
            json!({
                "tlsVersion": version,
                "cipherSuite": call.context.cipher_suite,
                "clientProvidedHostHeader": call.context.host,
            }),
        );
    }
    let record = Value::Object(record);
    let row = AuditRecord {
        seq: 0,
        event_id,
        event_time,
        event_name,
        event_source: event_source.to_string(),
        username: call.principal.map(|principal| principal.identity.name.clone()),
        access_key_id: call
            .principal
            .map(|principal| principal.access_key_id.clone())
            .or(call.claimed_access_key_id.map(str::to_string)),
        resource_name: ids.first().cloned(),
        resource_type: ids.first().map(|_| PIPELINE_RESOURCE_TYPE.to_string()),
        read_only,
        record: String::new(),
        previous_hash: String::new(),
        hash: String::new(),
    };
    (record, row)
}

/// A record of something the service did on its own (CloudTrail's `AwsServiceEvent`): an
/// action fired, a task handed out again. `details` go under `serviceEventDetails`.
pub fn service_event(
    app: &crate::api::AppState,
    pipeline_id: &str,
    event_name: &str,
    details: Value,
) -> (Value, AuditRecord) {
    let event_id = uuid::Uuid::now_v7().to_string();
    let event_time = render_event_time(app.clock.now());
    let source = "datapipeline.amazonaws.com";
    let record = json!({
        "eventVersion": EVENT_VERSION,
        "userIdentity": { "accountId": app.account_id, "invokedBy": source },
        "eventTime": event_time,
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": app.region,
        "sourceIPAddress": source,
        "userAgent": source,
        "requestParameters": Value::Null,
        "responseElements": Value::Null,
        "eventID": event_id,
        "readOnly": false,
        "resources": [{
            "ARN": format!("arn:aws:datapipeline:{}:{}:pipeline/{pipeline_id}", app.region, app.account_id),
            "accountId": app.account_id,
            "type": PIPELINE_RESOURCE_TYPE,
        }],
        "eventType": "AwsServiceEvent",
        "managementEvent": true,
        "recipientAccountId": app.account_id,
        "serviceEventDetails": bounded(details),
        "eventCategory": "Management",
    });
    let row = AuditRecord {
        seq: 0,
        event_id,
        event_time,
        event_name: event_name.to_string(),
        event_source: source.to_string(),
        username: None,
        access_key_id: None,
        resource_name: Some(pipeline_id.to_string()),
        resource_type: Some(PIPELINE_RESOURCE_TYPE.to_string()),
        read_only: false,
        record: String::new(),
        previous_hash: String::new(),
        hash: String::new(),
    };
    (record, row)
}

/// Appends a record at the end of the chain, inside `tx`.
pub async fn append(tx: &mut dyn Transaction, record: &Value, mut row: AuditRecord) -> Result<(), StoreError> {
    let (last_seq, last_hash) = tx.last_audit_link().await?;
    row.record = serde_json::to_string(record).map_err(|error| StoreError::Corrupt(error.to_string()))?;
    row.seq = last_seq + 1;
    row.hash = chain_hash(&last_hash, &row.record);
    row.previous_hash = last_hash;
    tx.append_audit(&row).await
}

/// Appends many records at once, chained in order: one read of the chain's end and a few
/// multi-row inserts, so a batch of service events commits as one group.
pub async fn append_batch(tx: &mut dyn Transaction, batch: Vec<(Value, AuditRecord)>) -> Result<(), StoreError> {
    let (mut seq, mut previous) = tx.last_audit_link().await?;
    let mut rows = Vec::with_capacity(batch.len());
    for (record, mut row) in batch {
        row.record = serde_json::to_string(&record).map_err(|error| StoreError::Corrupt(error.to_string()))?;
        seq += 1;
        row.seq = seq;
        row.hash = chain_hash(&previous, &row.record);
        row.previous_hash = std::mem::replace(&mut previous, row.hash.clone());
        rows.push(row);
    }
    tx.append_audit_batch(&rows).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_wherever_they_appear() {
        let mut request = json!({
            "pipelineId": "df-1",
            "pipelineObjects": [{"id": "Db", "name": "Db", "fields": [
                {"key": "*password", "stringValue": "hunter2"},
                {"key": "username", "stringValue": "alice"},
                {"key": "myApiToken", "stringValue": "tok-123"}]}],
            "parameterObjects": [{"id": "*myPass", "attributes": [{"key": "default", "stringValue": "dflt-secret"}, {"key": "type", "stringValue": "String"}]}],
            "parameterValues": [{"id": "*myPass", "stringValue": "value-secret"}, {"id": "myRegion", "stringValue": "eu"}],
            "SecretAccessKey": "abc", "SessionToken": "def", "TokenCode": "123456",
            "tags": [{"key": "db", "value": "postgres://app:pa55word@db/x"}]
        });
        redact(&mut request);
        let text = request.to_string();
        for secret in [
            "hunter2",
            "tok-123",
            "dflt-secret",
            "value-secret",
            "\"abc\"",
            "\"def\"",
            "123456",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        for kept in ["alice", "eu", "String", "df-1"] {
            assert!(text.contains(kept), "{kept} lost: {text}");
        }
        fingerprint_definition_values(&mut request);
        let text = request.to_string();
        assert!(!text.contains("alice") && !text.contains("\"eu\""), "{text}");
        assert!(
            text.contains(&format!("sha256:{}", sluice_crypto::sigv4::sha256_hex(b"alice"))),
            "{text}"
        );
        assert!(
            text.contains(HIDDEN) && text.contains("\"username\"") && text.contains("\"Db\""),
            "{text}"
        );
    }
}
