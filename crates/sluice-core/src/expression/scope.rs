//! A `Scope` over a component of a definition: its fields (own, then inherited through `parent`
//! and `Default`), the definition's parameters, and the component's identity. Instances and
//! attempts add runtime fields on top of this when the scheduler creates them.

use std::collections::HashMap;

use super::{Scope, Value};
use crate::model::{FieldValue, PipelineDefinition, PipelineObject};

const DEFAULT_ID: &str = "Default";
/// How deep a field's own `#{...}` may refer to other fields that hold expressions.
const MAX_FIELD_DEPTH: usize = 8;

pub struct ComponentScope<'a> {
    by_id: HashMap<&'a str, &'a PipelineObject>,
    parameters: HashMap<&'a str, Vec<&'a str>>,
    /// Parameters declared or valued with a `*` id: secret however an expression names them.
    secret_parameters: std::collections::HashSet<&'a str>,
    object: &'a PipelineObject,
    pipeline_id: &'a str,
    depth: usize,
    /// When false, `*` parameters and fields read as a mask instead of their value.
    reveal_secrets: bool,
    /// Runtime fields of the instance or attempt being evaluated (`@scheduledStartTime`, ...).
    runtime: HashMap<String, Value>,
}

/// What a masked secret reads as.
pub const MASK: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

impl<'a> ComponentScope<'a> {
    /// `None` when the definition has no object `object_id`.
    pub fn new(
        definition: &'a PipelineDefinition,
        pipeline_id: &'a str,
        object_id: &str,
    ) -> Option<ComponentScope<'a>> {
        let mut by_id = HashMap::new();
        for object in &definition.objects {
            by_id.entry(object.id.as_str()).or_insert(object);
        }
        let object = *by_id.get(object_id)?;
        let mut parameters: HashMap<&str, Vec<&str>> = HashMap::new();
        let secret_parameters = definition
            .values
            .iter()
            .map(|value| value.id.as_str())
            .chain(definition.parameters.iter().map(|parameter| parameter.id.as_str()))
            .filter(|id| id.starts_with('*'))
            .map(|id| id.trim_start_matches('*'))
            .collect();
        for value in &definition.values {
            parameters
                .entry(value.id.trim_start_matches('*'))
                .or_default()
                .push(value.value.as_str());
        }
        for parameter in &definition.parameters {
            let id = parameter.id.trim_start_matches('*');
            if !parameters.contains_key(id)
                && let Some(default) = parameter.attribute("default")
            {
                parameters.insert(id, vec![default]);
            }
        }
        Some(ComponentScope {
            by_id,
            parameters,
            secret_parameters,
            object,
            pipeline_id,
            depth: 0,
            reveal_secrets: true,
            runtime: HashMap::new(),
        })
    }

    /// `*` parameters and fields read as a mask: for callers who may evaluate expressions but not
    /// read secrets.
    pub fn masking_secrets(mut self) -> Self {
        self.reveal_secrets = false;
        self
    }

    /// Evaluates as an instance or attempt: these runtime fields are in scope, in the object's
    /// own fields and in the fields of objects it refers to (which run for the same interval).
    pub fn with_runtime(mut self, runtime: HashMap<String, Value>) -> Self {
        self.runtime = runtime;
        self
    }

    fn lineage(&self, object: &'a PipelineObject) -> Vec<&'a PipelineObject> {
        let mut chain = vec![object];
        let mut current = object;
        while let Some(parent) = current
            .first("parent")
            .and_then(FieldValue::as_ref_target)
            .and_then(|id| self.by_id.get(id))
        {
            if chain.iter().any(|seen| seen.id == parent.id) {
                break;
            }
            chain.push(parent);
            current = parent;
        }
        if object.id != DEFAULT_ID
            && let Some(default) = self.by_id.get(DEFAULT_ID)
            && !chain.iter().any(|seen| seen.id == DEFAULT_ID)
        {
            chain.push(default);
        }
        chain
    }

    fn field(&self, object: &'a PipelineObject, name: &str) -> Option<Value> {
        match name {
            "id" | "@id" => return Some(Value::String(object.id.clone())),
            "name" => return Some(Value::String(object.name.clone())),
            "@pipelineId" => return Some(Value::String(self.pipeline_id.to_string())),
            _ => {}
        }
        let values: Vec<&FieldValue> = self
            .lineage(object)
            .iter()
            .map(|ancestor| ancestor.values(name).collect::<Vec<_>>())
            .find(|values| !values.is_empty())?;
        let mut converted = Vec::with_capacity(values.len());
        for value in values {
            converted.push(match value {
                FieldValue::Ref(target) => Value::Ref(target.clone()),
                // A field's own expressions are evaluated in its object's context.
                FieldValue::String(text) if text.contains("#{") && self.depth < MAX_FIELD_DEPTH => {
                    let nested = ComponentScope {
                        by_id: self.by_id.clone(),
                        parameters: self.parameters.clone(),
                        secret_parameters: self.secret_parameters.clone(),
                        object,
                        pipeline_id: self.pipeline_id,
                        depth: self.depth + 1,
                        reveal_secrets: self.reveal_secrets,
                        runtime: self.runtime.clone(),
                    };
                    let parts = super::evaluate_template(text, &nested).ok()?;
                    Value::String(parts.join(","))
                }
                FieldValue::String(text) => Value::String(text.clone()),
            });
        }
        Some(if converted.len() == 1 {
            converted.remove(0)
        } else {
            Value::List(converted)
        })
    }
}

impl Scope for ComponentScope<'_> {
    fn resolve(&self, name: &str) -> Option<Value> {
        if let Some(value) = self.runtime.get(name) {
            return Some(value.clone());
        }
        if !self.reveal_secrets
            && (name.starts_with('*') || self.secret_parameters.contains(name.trim_start_matches('*')))
        {
            return Some(Value::String(MASK.to_string()));
        }
        if let Some(values) = self.parameters.get(name.trim_start_matches('*')) {
            return Some(if values.len() == 1 {
                Value::String(values[0].to_string())
            } else {
                Value::List(values.iter().map(|value| Value::String(value.to_string())).collect())
            });
        }
        self.field(self.object, name)
    }

    fn member(&self, object_id: &str, name: &str) -> Option<Value> {
        // Runtime objects (an action's `node`) are given as `<id>.<field>` runtime entries.
        if let Some(value) = self.runtime.get(&format!("{object_id}.{name}")) {
            return Some(value.clone());
        }
        let object = *self.by_id.get(object_id)?;
        // Runtime fields are not followed through references (reference §e.3), except the
        // object's own identity.
        if name.starts_with('@') && name != "@id" && name != "@pipelineId" {
            return None;
        }
        if !self.reveal_secrets && name.starts_with('*') {
            return Some(Value::String(MASK.to_string()));
        }
        self.field(object, name)
    }
}
