//! A task as PollForTask hands it out: the attempt, its instance and the instances it refers to,
//! every field evaluated by the service.

use std::collections::HashMap;

use anyhow::{Context, bail};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    String(String),
    Ref(String),
}

#[derive(Debug, Clone)]
pub struct Object {
    pub id: String,
    pub fields: Vec<(String, FieldValue)>,
}

impl Object {
    pub fn strings<'a, 'k>(&'a self, key: &'k str) -> impl Iterator<Item = &'a str> + use<'a, 'k> {
        self.fields.iter().filter_map(move |(name, value)| match value {
            FieldValue::String(text) if name == key => Some(text.as_str()),
            _ => None,
        })
    }

    pub fn string(&self, key: &str) -> Option<&str> {
        self.strings(key).next()
    }

    /// The object's name in the definition: its component's id for an instance.
    pub fn component_id(&self) -> &str {
        self.refs("@componentParent").next().unwrap_or(&self.id)
    }

    pub fn refs<'a, 'k>(&'a self, key: &'k str) -> impl Iterator<Item = &'a str> + use<'a, 'k> {
        self.fields.iter().filter_map(move |(name, value)| match value {
            FieldValue::Ref(target) if name == key => Some(target.as_str()),
            _ => None,
        })
    }
}

/// A `*` field whose value is `role-secret:<name>` takes the task role's secret `<name>`.
pub const ROLE_SECRET_PREFIX: &str = "role-secret:";

#[derive(Debug, Clone)]
pub struct Task {
    pub task_id: String,
    pub pipeline_id: String,
    pub attempt_id: String,
    pub objects: HashMap<String, Object>,
    /// The task's own credentials (its pipeline's `resourceRole`), when the service gave any.
    pub credentials: Option<crate::credentials::TaskCredentials>,
}

impl Task {
    /// Reads `taskObject` of a PollForTask response.
    pub fn from_json(task: &Value) -> anyhow::Result<Task> {
        let text = |name: &str| {
            task.get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .with_context(|| format!("the task has no {name}"))
        };
        let mut objects = HashMap::new();
        if let Some(map) = task.get("objects").and_then(Value::as_object) {
            for (id, object) in map {
                let mut fields = Vec::new();
                for field in object.get("fields").and_then(Value::as_array).into_iter().flatten() {
                    let Some(key) = field.get("key").and_then(Value::as_str) else {
                        continue;
                    };
                    if let Some(text) = field.get("stringValue").and_then(Value::as_str) {
                        fields.push((key.to_string(), FieldValue::String(text.to_string())));
                    } else if let Some(target) = field.get("refValue").and_then(Value::as_str) {
                        fields.push((key.to_string(), FieldValue::Ref(target.to_string())));
                    }
                }
                objects.insert(id.clone(), Object { id: id.clone(), fields });
            }
        }
        let credentials = task
            .get("sluiceTaskCredentials")
            .and_then(crate::credentials::TaskCredentials::from_json);
        let task = Task {
            task_id: text("taskId")?,
            pipeline_id: text("pipelineId")?,
            attempt_id: text("attemptId")?,
            objects,
            credentials,
        };
        if !task.objects.contains_key(&task.attempt_id) {
            bail!("the task does not carry its attempt {}", task.attempt_id);
        }
        Ok(task)
    }

    /// Puts the task's role secrets where a `*` field says `role-secret:<name>` (a database's
    /// `*password`, say), so the definition names the secret instead of holding it. A name the
    /// role does not carry is an error naming the field.
    pub fn resolve_role_secrets(&mut self) -> Result<(), String> {
        let credentials = self.credentials.clone();
        for object in self.objects.values_mut() {
            for (key, value) in &mut object.fields {
                let FieldValue::String(text) = value else { continue };
                let Some(name) = text.strip_prefix(ROLE_SECRET_PREFIX) else {
                    continue;
                };
                if !key.starts_with('*') {
                    return Err(format!(
                        "field '{key}' of {} names a role secret, but only `*` fields may (their values are kept out of logs)",
                        object.id
                    ));
                }
                match credentials.as_ref().and_then(|credentials| credentials.secret(name)) {
                    Some(secret) => *text = secret.to_string(),
                    None => {
                        return Err(format!(
                            "field '{key}' of {} names the role secret '{name}', which the task's resourceRole does not carry",
                            object.id
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn attempt(&self) -> &Object {
        &self.objects[&self.attempt_id]
    }

    /// The objects an attempt field refers to, in the order the fields list them.
    pub fn referenced(&self, key: &str) -> Vec<&Object> {
        self.attempt().refs(key).filter_map(|id| self.objects.get(id)).collect()
    }

    /// Values of `*` fields anywhere in the task (passwords, tokens): what logs must not show.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = self
            .objects
            .values()
            .flat_map(|object| object.fields.iter())
            .filter_map(|(key, value)| match value {
                FieldValue::String(text) if key.starts_with('*') && text.len() >= 4 => Some(text.clone()),
                _ => None,
            })
            .collect();
        // The task's own credentials and its role's secrets.
        if let Some(credentials) = &self.credentials {
            secrets.push(credentials.secret_access_key.expose_secret().clone());
            secrets.push(credentials.session_token.expose_secret().clone());
            secrets.extend(
                credentials
                    .secrets
                    .iter()
                    .map(|(_, value)| value.expose_secret().clone())
                    .filter(|value| value.len() >= 4),
            );
        }
        // A multi-line secret (a PEM key) is masked line by line too: logs are masked per line.
        let lines: Vec<String> = secrets
            .iter()
            .filter(|secret| secret.contains('\n'))
            .flat_map(|secret| secret.lines().map(str::trim).map(str::to_string).collect::<Vec<_>>())
            .filter(|line| line.len() >= 4)
            .collect();
        secrets.extend(lines);
        // Longest first, so a secret containing another is hidden whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        secrets.dedup();
        secrets
    }

    pub fn component(&self) -> &str {
        self.attempt().refs("@componentParent").next().unwrap_or("unknown")
    }

    pub fn instance(&self) -> &str {
        self.attempt().refs("@instanceParent").next().unwrap_or("unknown")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_task_object() {
        let json = serde_json::json!({
            "taskId": "T", "pipelineId": "df-1", "attemptId": "@A_1_Attempt=1",
            "objects": {
                "@A_1_Attempt=1": {"id": "@A_1_Attempt=1", "name": "x", "fields": [
                    {"key": "type", "stringValue": "ShellCommandActivity"},
                    {"key": "scriptArgument", "stringValue": "one"},
                    {"key": "scriptArgument", "stringValue": "two"},
                    {"key": "input", "refValue": "@In_1"},
                    {"key": "@componentParent", "refValue": "A"}]},
                "@In_1": {"id": "@In_1", "name": "@In_1", "fields": [{"key": "directoryPath", "stringValue": "file:///x"}]}
            }
        });
        let task = Task::from_json(&json).expect("parses");
        assert_eq!(task.attempt().string("type"), Some("ShellCommandActivity"));
        assert_eq!(
            task.attempt().strings("scriptArgument").collect::<Vec<_>>(),
            vec!["one", "two"]
        );
        assert_eq!(task.referenced("input")[0].string("directoryPath"), Some("file:///x"));
        assert_eq!(task.component(), "A");
        assert!(Task::from_json(&serde_json::json!({"taskId": "T"})).is_err());
    }
}
