//! The definition model shared by both JSON formats: objects with ordered fields (a repeated key is
//! how a list is written), parameter objects and parameter values.

use serde::{Deserialize, Serialize};

/// A whole pipeline definition as the API stores it: exactly what `PutPipelineDefinition` received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineDefinition {
    pub objects: Vec<PipelineObject>,
    pub parameters: Vec<ParameterObject>,
    pub values: Vec<ParameterValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineObject {
    pub id: String,
    pub name: String,
    /// In the order received; repeated keys keep their relative order.
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub key: String,
    pub value: FieldValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldValue {
    String(String),
    Ref(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterObject {
    pub id: String,
    pub attributes: Vec<ParameterAttribute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterAttribute {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterValue {
    pub id: String,
    pub value: String,
}

impl Field {
    pub fn string(key: impl Into<String>, value: impl Into<String>) -> Self {
        Field {
            key: key.into(),
            value: FieldValue::String(value.into()),
        }
    }

    pub fn reference(key: impl Into<String>, target: impl Into<String>) -> Self {
        Field {
            key: key.into(),
            value: FieldValue::Ref(target.into()),
        }
    }
}

impl FieldValue {
    pub fn as_str(&self) -> &str {
        match self {
            FieldValue::String(value) | FieldValue::Ref(value) => value,
        }
    }

    pub fn as_string(&self) -> Option<&str> {
        match self {
            FieldValue::String(value) => Some(value),
            FieldValue::Ref(_) => None,
        }
    }

    pub fn as_ref_target(&self) -> Option<&str> {
        match self {
            FieldValue::Ref(target) => Some(target),
            FieldValue::String(_) => None,
        }
    }
}

impl PipelineObject {
    /// Every value of `key`, in order.
    pub fn values<'a, 'k>(&'a self, key: &'k str) -> impl Iterator<Item = &'a FieldValue> + use<'a, 'k> {
        self.fields
            .iter()
            .filter(move |field| field.key == key)
            .map(|field| &field.value)
    }

    pub fn first(&self, key: &str) -> Option<&FieldValue> {
        self.values(key).next()
    }

    pub fn first_string(&self, key: &str) -> Option<&str> {
        self.first(key).and_then(FieldValue::as_string)
    }

    /// The `type` field, if the object sets one itself.
    pub fn object_type(&self) -> Option<&str> {
        self.first_string("type")
    }
}

impl ParameterObject {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|attribute| attribute.key == key)
            .map(|attribute| attribute.value.as_str())
    }

    pub fn attributes<'a, 'k>(&'a self, key: &'k str) -> impl Iterator<Item = &'a str> + use<'a, 'k> {
        self.attributes
            .iter()
            .filter(move |attribute| attribute.key == key)
            .map(|attribute| attribute.value.as_str())
    }
}

impl PipelineDefinition {
    pub fn object(&self, id: &str) -> Option<&PipelineObject> {
        self.objects.iter().find(|object| object.id == id)
    }
}
