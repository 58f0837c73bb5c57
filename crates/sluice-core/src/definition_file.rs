//! The definition-file format (`objects` / `parameters` / `values`) that `aws datapipeline
//! put-pipeline-definition --pipeline-definition file://…` reads, translated to and from the model
//! exactly as the AWS CLI translator does (reference §c.2 and §c.3).
//!
//! Also reads the "wire format in a file" variant some samples use (`objects[].fields[]`,
//! `parameters[].attributes[]`, `parameterValues[]`), so that every public sample can be loaded.

use serde_json::{Map, Value};

use crate::model::{
    Field, FieldValue, ParameterAttribute, ParameterObject, ParameterValue, PipelineDefinition, PipelineObject,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionFileError {
    #[error("not valid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("the definition must be a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    #[error("missing \"objects\" key")]
    MissingObjects,
    #[error("{location}: {message}")]
    Shape { location: String, message: String },
}

fn shape(location: impl Into<String>, message: impl Into<String>) -> DefinitionFileError {
    DefinitionFileError::Shape {
        location: location.into(),
        message: message.into(),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses a definition file. Both the CLI's file format and the wire format written to a file are
/// accepted; the wire variant is recognised by `pipelineObjects` at the top level or by objects that
/// carry a `fields` array of `{key, stringValue|refValue}` entries.
pub fn parse(text: &str) -> Result<PipelineDefinition, DefinitionFileError> {
    let document: Value = serde_json::from_str(text).map_err(|error| {
        let full = error.to_string();
        // serde_json appends " at line L column C"; we report those as numbers of our own.
        let message = match full.rfind(" at line ") {
            Some(position) => full[..position].to_string(),
            None => full,
        };
        let (line, column) = position_of(text, error.line(), error.column());
        DefinitionFileError::Json { line, column, message }
    })?;
    from_value(&document)
}

/// serde_json reports a raw line break inside a string at column 0 of the next line; point at the
/// line break itself instead, where an editor shows the problem (Python's parser does the same).
fn position_of(text: &str, line: usize, column: usize) -> (usize, usize) {
    if column > 0 || line < 2 {
        return (line, column);
    }
    let previous = text.lines().nth(line - 2).unwrap_or_default();
    (line - 1, previous.chars().count() + 1)
}

pub fn from_value(document: &Value) -> Result<PipelineDefinition, DefinitionFileError> {
    let Value::Object(top) = document else {
        return Err(DefinitionFileError::NotAnObject {
            found: json_kind(document),
        });
    };
    if top.contains_key("pipelineObjects") || looks_like_wire_objects(top) {
        return from_wire_value(top);
    }
    let Some(objects) = top.get("objects") else {
        return Err(DefinitionFileError::MissingObjects);
    };
    let Value::Array(objects) = objects else {
        return Err(shape(
            "objects",
            format!("must be an array, found {}", json_kind(objects)),
        ));
    };
    let mut definition = PipelineDefinition::default();
    for (index, element) in objects.iter().enumerate() {
        definition.objects.push(object_from_file(index, element)?);
    }
    if let Some(parameters) = top.get("parameters") {
        let Value::Array(parameters) = parameters else {
            return Err(shape(
                "parameters",
                format!("must be an array, found {}", json_kind(parameters)),
            ));
        };
        for (index, element) in parameters.iter().enumerate() {
            definition.parameters.push(parameter_from_file(index, element)?);
        }
    }
    if let Some(values) = top.get("values") {
        definition.values = values_from_file(values)?;
    }
    Ok(definition)
}

fn looks_like_wire_objects(top: &Map<String, Value>) -> bool {
    let Some(Value::Array(objects)) = top.get("objects") else {
        return false;
    };
    objects.first().and_then(|object| object.get("fields")).is_some_and(
        |fields| matches!(fields, Value::Array(entries) if entries.iter().all(|entry| entry.get("key").is_some())),
    )
}

fn object_from_file(index: usize, element: &Value) -> Result<PipelineObject, DefinitionFileError> {
    let location = format!("objects[{index}]");
    let Value::Object(members) = element else {
        return Err(shape(
            location,
            format!("must be an object, found {}", json_kind(element)),
        ));
    };
    let id = match members.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(other) => {
            return Err(shape(
                format!("{location}.id"),
                format!("must be a string, found {}", json_kind(other)),
            ));
        }
        None => return Err(shape(location, "missing \"id\" key")),
    };
    let location = format!("object `{id}`");
    let name = match members.get("name") {
        Some(Value::String(name)) => name.clone(),
        Some(other) => {
            return Err(shape(
                format!("{location}.name"),
                format!("must be a string, found {}", json_kind(other)),
            ));
        }
        None => id.clone(),
    };
    // The CLI sorts the remaining keys by code point, so `type` lands among the others.
    let mut keys: Vec<&String> = members.keys().filter(|key| *key != "id" && *key != "name").collect();
    keys.sort();
    let mut fields = Vec::new();
    for key in keys {
        let value = &members[key.as_str()];
        match value {
            Value::Array(elements) => {
                for element in elements {
                    fields.push(Field {
                        key: key.clone(),
                        value: field_value_from_file(&location, key, element)?,
                    });
                }
            }
            single => fields.push(Field {
                key: key.clone(),
                value: field_value_from_file(&location, key, single)?,
            }),
        }
    }
    Ok(PipelineObject { id, name, fields })
}

fn field_value_from_file(location: &str, key: &str, value: &Value) -> Result<FieldValue, DefinitionFileError> {
    match value {
        Value::String(text) => Ok(FieldValue::String(text.clone())),
        Value::Object(members) if members.len() == 1 && members.contains_key("ref") => match &members["ref"] {
            Value::String(target) => Ok(FieldValue::Ref(target.clone())),
            other => Err(shape(
                format!("{location}.{key}"),
                format!("\"ref\" must be a string, found {}", json_kind(other)),
            )),
        },
        Value::Object(_) => Err(shape(
            format!("{location}.{key}"),
            "an object value must be exactly {\"ref\": \"<objectId>\"}",
        )),
        // The AWS CLI forwards numbers and booleans unchanged and botocore then rejects the call;
        // we say so up front, with the fix.
        other => Err(shape(
            format!("{location}.{key}"),
            format!(
                "must be a string, a {{\"ref\": ...}} or a list of them, found {} (write it as \"{}\")",
                json_kind(other),
                other
            ),
        )),
    }
}

fn parameter_from_file(index: usize, element: &Value) -> Result<ParameterObject, DefinitionFileError> {
    let location = format!("parameters[{index}]");
    let Value::Object(members) = element else {
        return Err(shape(
            location,
            format!("must be an object, found {}", json_kind(element)),
        ));
    };
    let id = match members.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(other) => {
            return Err(shape(
                format!("{location}.id"),
                format!("must be a string, found {}", json_kind(other)),
            ));
        }
        None => return Err(shape(location, "missing \"id\" key")),
    };
    let location = format!("parameter `{id}`");
    let mut keys: Vec<&String> = members.keys().filter(|key| *key != "id").collect();
    keys.sort();
    let mut attributes = Vec::new();
    for key in keys {
        let elements = match &members[key.as_str()] {
            Value::Array(elements) => elements.iter().collect::<Vec<_>>(),
            single => vec![single],
        };
        for element in elements {
            let Value::String(value) = element else {
                return Err(shape(
                    format!("{location}.{key}"),
                    format!("must be a string or a list of strings, found {}", json_kind(element)),
                ));
            };
            attributes.push(ParameterAttribute {
                key: key.clone(),
                value: value.clone(),
            });
        }
    }
    Ok(ParameterObject { id, attributes })
}

fn values_from_file(values: &Value) -> Result<Vec<ParameterValue>, DefinitionFileError> {
    let Value::Object(members) = values else {
        return Err(shape(
            "values",
            format!("must be an object, found {}", json_kind(values)),
        ));
    };
    let mut parameter_values = Vec::new();
    for (id, value) in members {
        let elements = match value {
            Value::Array(elements) => elements.iter().collect::<Vec<_>>(),
            single => vec![single],
        };
        for element in elements {
            let Value::String(text) = element else {
                return Err(shape(
                    format!("values.{id}"),
                    format!("must be a string or a list of strings, found {}", json_kind(element)),
                ));
            };
            parameter_values.push(ParameterValue {
                id: id.clone(),
                value: text.clone(),
            });
        }
    }
    Ok(parameter_values)
}

/// Reads the wire shapes (`pipelineObjects` or `objects` with `fields`, `parameterObjects` or
/// `parameters` with `attributes`, `parameterValues`) from a file.
fn from_wire_value(top: &Map<String, Value>) -> Result<PipelineDefinition, DefinitionFileError> {
    let objects_key = if top.contains_key("pipelineObjects") {
        "pipelineObjects"
    } else {
        "objects"
    };
    let parameters_key = if top.contains_key("parameterObjects") {
        "parameterObjects"
    } else {
        "parameters"
    };
    let mut definition = PipelineDefinition::default();
    for (index, object) in array_member(top, objects_key)?.iter().enumerate() {
        let location = format!("{objects_key}[{index}]");
        let id = string_member(object, "id", &location)?;
        let name = string_member(object, "name", &location).unwrap_or_else(|_| id.clone());
        let mut fields = Vec::new();
        for (field_index, field) in array_of(object, "fields", &location)?.iter().enumerate() {
            let field_location = format!("{location}.fields[{field_index}]");
            let key = string_member(field, "key", &field_location)?;
            let value = match (field.get("stringValue"), field.get("refValue")) {
                (Some(Value::String(text)), None) => FieldValue::String(text.clone()),
                (None, Some(Value::String(target))) => FieldValue::Ref(target.clone()),
                _ => {
                    return Err(shape(
                        field_location,
                        "needs exactly one of \"stringValue\" and \"refValue\", as a string",
                    ));
                }
            };
            fields.push(Field { key, value });
        }
        definition.objects.push(PipelineObject { id, name, fields });
    }
    if top.contains_key(parameters_key) {
        for (index, parameter) in array_member(top, parameters_key)?.iter().enumerate() {
            let location = format!("{parameters_key}[{index}]");
            let id = string_member(parameter, "id", &location)?;
            let mut attributes = Vec::new();
            for (attribute_index, attribute) in array_of(parameter, "attributes", &location)?.iter().enumerate() {
                let attribute_location = format!("{location}.attributes[{attribute_index}]");
                attributes.push(ParameterAttribute {
                    key: string_member(attribute, "key", &attribute_location)?,
                    value: string_member(attribute, "stringValue", &attribute_location)?,
                });
            }
            definition.parameters.push(ParameterObject { id, attributes });
        }
    }
    if top.contains_key("parameterValues") {
        for (index, value) in array_member(top, "parameterValues")?.iter().enumerate() {
            let location = format!("parameterValues[{index}]");
            definition.values.push(ParameterValue {
                id: string_member(value, "id", &location)?,
                value: string_member(value, "stringValue", &location)?,
            });
        }
    }
    Ok(definition)
}

fn array_member<'a>(top: &'a Map<String, Value>, key: &str) -> Result<&'a Vec<Value>, DefinitionFileError> {
    match top.get(key) {
        Some(Value::Array(elements)) => Ok(elements),
        Some(other) => Err(shape(key, format!("must be an array, found {}", json_kind(other)))),
        None => Err(shape(key, "is missing")),
    }
}

fn array_of<'a>(value: &'a Value, key: &str, location: &str) -> Result<&'a Vec<Value>, DefinitionFileError> {
    match value.get(key) {
        Some(Value::Array(elements)) => Ok(elements),
        Some(other) => Err(shape(
            format!("{location}.{key}"),
            format!("must be an array, found {}", json_kind(other)),
        )),
        None => Err(shape(location, format!("missing \"{key}\" key"))),
    }
}

fn string_member(value: &Value, key: &str, location: &str) -> Result<String, DefinitionFileError> {
    match value.get(key) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(shape(
            format!("{location}.{key}"),
            format!("must be a string, found {}", json_kind(other)),
        )),
        None => Err(shape(location, format!("missing \"{key}\" key"))),
    }
}

/// Renders a definition in the file format, aggregating repeated keys into lists exactly as the
/// AWS CLI's `get-pipeline-definition` does (§c.3): first occurrence a scalar, later ones a list.
pub fn to_value(definition: &PipelineDefinition) -> Value {
    let objects = definition
        .objects
        .iter()
        .map(|object| {
            let mut members = Map::new();
            members.insert("id".into(), Value::String(object.id.clone()));
            members.insert("name".into(), Value::String(object.name.clone()));
            for field in &object.fields {
                let value = match &field.value {
                    FieldValue::String(text) => Value::String(text.clone()),
                    FieldValue::Ref(target) => serde_json::json!({ "ref": target }),
                };
                aggregate(&mut members, &field.key, value);
            }
            Value::Object(members)
        })
        .collect();
    let mut top = Map::new();
    top.insert("objects".into(), Value::Array(objects));
    let parameters = definition
        .parameters
        .iter()
        .map(|parameter| {
            let mut members = Map::new();
            members.insert("id".into(), Value::String(parameter.id.clone()));
            for attribute in &parameter.attributes {
                aggregate(&mut members, &attribute.key, Value::String(attribute.value.clone()));
            }
            Value::Object(members)
        })
        .collect();
    top.insert("parameters".into(), Value::Array(parameters));
    let mut values = Map::new();
    for value in &definition.values {
        aggregate(&mut values, &value.id, Value::String(value.value.clone()));
    }
    top.insert("values".into(), Value::Object(values));
    Value::Object(top)
}

fn aggregate(members: &mut Map<String, Value>, key: &str, value: Value) {
    match members.get_mut(key) {
        None => {
            members.insert(key.to_string(), value);
        }
        // Field values are never arrays, so an array here is an aggregate built by this loop.
        Some(Value::Array(list)) => list.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_the_cli_worked_example_exactly() {
        // Reference §c.2: the request body captured from the real CLI.
        let file = r#"{"objects":[{"id":"Default","name":"Default","scheduleType":"ondemand","failureAndRerunMode":"CASCADE"},
            {"id":"A","type":"ShellCommandActivity","command":"echo hi",
             "dependsOn":[{"ref":"B"},{"ref":"C"}],"scriptArgument":["a","b"],"schedule":{"ref":"S"}}],
            "parameters":[{"id":"myP","type":"String","allowedValues":["a","b"],"optional":"true"}],
            "values":{"myP":["a","b"],"myQ":"z"}}"#;
        let definition = parse(file).expect("parses");
        let a = &definition.objects[1];
        assert_eq!(a.name, "A");
        let keys: Vec<_> = a
            .fields
            .iter()
            .map(|field| (field.key.as_str(), field.value.clone()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("command", FieldValue::String("echo hi".into())),
                ("dependsOn", FieldValue::Ref("B".into())),
                ("dependsOn", FieldValue::Ref("C".into())),
                ("schedule", FieldValue::Ref("S".into())),
                ("scriptArgument", FieldValue::String("a".into())),
                ("scriptArgument", FieldValue::String("b".into())),
                ("type", FieldValue::String("ShellCommandActivity".into())),
            ]
        );
        let attribute_keys: Vec<_> = definition.parameters[0]
            .attributes
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            attribute_keys,
            vec![
                ("allowedValues", "a"),
                ("allowedValues", "b"),
                ("optional", "true"),
                ("type", "String")
            ]
        );
        let values: Vec<_> = definition
            .values
            .iter()
            .map(|v| (v.id.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(values, vec![("myP", "a"), ("myP", "b"), ("myQ", "z")]);
    }

    #[test]
    fn round_trips_through_the_file_format() {
        let file = r#"{"objects":[{"id":"A","name":"a","type":"ShellCommandActivity","scriptArgument":["x","y","z"],"dependsOn":{"ref":"B"}}],
            "parameters":[{"id":"myP","allowedValues":["1","2"]}],"values":{"myP":"1"}}"#;
        let definition = parse(file).expect("parses");
        let again = from_value(&to_value(&definition)).expect("re-parses");
        assert_eq!(definition, again);
    }

    #[test]
    fn reports_line_and_column_of_bad_json() {
        let error = parse("{\n  \"objects\": [\n    {\"id\": \"a\nb\"}]}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "not valid JSON at line 3, column 14: control character (\\u0000-\\u001F) found while parsing a string"
        );
    }

    #[test]
    fn names_the_field_holding_a_number() {
        let error = parse(r#"{"objects":[{"id":"A","maximumRetries":3}]}"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            "object `A`.maximumRetries: must be a string, a {\"ref\": ...} or a list of them, found a number (write it as \"3\")"
        );
    }
}
