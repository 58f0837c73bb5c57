//! `*` fields and parameters: AWS Data Pipeline's mark for secret values. They are shown masked
//! to callers without the permission to read them, and a definition put back with the mask in a
//! `*` field keeps the value stored before, so a get → edit → put round trip loses nothing.

use crate::expression::MASK;
use crate::model::{FieldValue, PipelineDefinition};

pub fn is_secret_key(key: &str) -> bool {
    key.starts_with('*')
}

/// Attributes of a `*` parameter that would give its value away.
fn reveals_parameter_value(attribute: &str) -> bool {
    matches!(attribute, "default" | "allowedValues")
}

/// The definition with every secret value replaced by the mask: string values of `*` fields,
/// values of `*` parameters, and their `default` / `allowedValues` attributes.
pub fn masked(definition: &PipelineDefinition) -> PipelineDefinition {
    let mut masked = definition.clone();
    for object in &mut masked.objects {
        for field in &mut object.fields {
            if is_secret_key(&field.key) && matches!(field.value, FieldValue::String(_)) {
                field.value = FieldValue::String(MASK.to_string());
            }
        }
    }
    for parameter in &mut masked.parameters {
        if is_secret_key(&parameter.id) {
            for attribute in &mut parameter.attributes {
                if reveals_parameter_value(&attribute.key) {
                    attribute.value = MASK.to_string();
                }
            }
        }
    }
    for value in &mut masked.values {
        if is_secret_key(&value.id) {
            value.value = MASK.to_string();
        }
    }
    masked
}

/// Whether any secret place holds the mask (only then is the earlier version needed).
pub fn holds_mask(definition: &PipelineDefinition) -> bool {
    let field = definition.objects.iter().any(|object| {
        object
            .fields
            .iter()
            .any(|field| is_secret_key(&field.key) && field.value.as_string() == Some(MASK))
    });
    let parameter = definition.parameters.iter().any(|parameter| {
        is_secret_key(&parameter.id)
            && parameter
                .attributes
                .iter()
                .any(|attribute| reveals_parameter_value(&attribute.key) && attribute.value == MASK)
    });
    let value = definition
        .values
        .iter()
        .any(|value| is_secret_key(&value.id) && value.value == MASK);
    field || parameter || value
}

/// Puts back, in every secret place holding the mask, the value the same place holds in
/// `previous`: the same object's field with the same key (the n-th of a repeated key), the same
/// parameter's attribute, the n-th value of the same parameter. Returns the places where
/// `previous` has nothing to put back, as "field '*password' of object 'Db'".
pub fn restore_masked(definition: &mut PipelineDefinition, previous: Option<&PipelineDefinition>) -> Vec<String> {
    let mut unresolved = Vec::new();
    for object in &mut definition.objects {
        let earlier = previous.and_then(|previous| previous.object(&object.id));
        let mut seen: Vec<(String, usize)> = Vec::new();
        for field in &mut object.fields {
            if !is_secret_key(&field.key) {
                continue;
            }
            let nth = match seen.iter_mut().find(|(key, _)| *key == field.key) {
                Some((_, count)) => {
                    *count += 1;
                    *count - 1
                }
                None => {
                    seen.push((field.key.clone(), 1));
                    0
                }
            };
            if field.value.as_string() != Some(MASK) {
                continue;
            }
            match earlier.and_then(|earlier| earlier.values(&field.key).nth(nth)) {
                Some(value @ FieldValue::String(text)) if text != MASK => field.value = value.clone(),
                _ => unresolved.push(format!("field '{}' of object '{}'", field.key, object.id)),
            }
        }
    }
    for parameter in &mut definition.parameters {
        if !is_secret_key(&parameter.id) {
            continue;
        }
        let earlier = previous.and_then(|previous| previous.parameters.iter().find(|p| p.id == parameter.id));
        let mut seen: Vec<(String, usize)> = Vec::new();
        for attribute in &mut parameter.attributes {
            if !reveals_parameter_value(&attribute.key) {
                continue;
            }
            let nth = match seen.iter_mut().find(|(key, _)| *key == attribute.key) {
                Some((_, count)) => {
                    *count += 1;
                    *count - 1
                }
                None => {
                    seen.push((attribute.key.clone(), 1));
                    0
                }
            };
            if attribute.value != MASK {
                continue;
            }
            match earlier.and_then(|earlier| earlier.attributes(&attribute.key).nth(nth)) {
                Some(value) if value != MASK => attribute.value = value.to_string(),
                _ => unresolved.push(format!("attribute '{}' of parameter '{}'", attribute.key, parameter.id)),
            }
        }
    }
    let mut seen: Vec<(String, usize)> = Vec::new();
    for value in &mut definition.values {
        if !is_secret_key(&value.id) {
            continue;
        }
        let nth = match seen.iter_mut().find(|(id, _)| *id == value.id) {
            Some((_, count)) => {
                *count += 1;
                *count - 1
            }
            None => {
                seen.push((value.id.clone(), 1));
                0
            }
        };
        if value.value != MASK {
            continue;
        }
        let earlier =
            previous.and_then(|previous| previous.values.iter().filter(|earlier| earlier.id == value.id).nth(nth));
        match earlier {
            Some(earlier) if earlier.value != MASK => value.value = earlier.value.clone(),
            _ => unresolved.push(format!("value of parameter '{}'", value.id)),
        }
    }
    unresolved
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Field, ParameterAttribute, ParameterObject, ParameterValue, PipelineObject};

    fn definition(password: &str, second: &str, value: &str) -> PipelineDefinition {
        PipelineDefinition {
            objects: vec![PipelineObject {
                id: "Db".into(),
                name: "Db".into(),
                fields: vec![
                    Field::string("username", "u"),
                    Field::string("*password", password),
                    Field::string("*password", second),
                    Field::reference("*ref", "Other"),
                ],
            }],
            parameters: vec![ParameterObject {
                id: "*myPass".into(),
                attributes: vec![
                    ParameterAttribute {
                        key: "type".into(),
                        value: "String".into(),
                    },
                    ParameterAttribute {
                        key: "default".into(),
                        value: "fallback-secret".into(),
                    },
                ],
            }],
            values: vec![
                ParameterValue {
                    id: "*myPass".into(),
                    value: value.into(),
                },
                ParameterValue {
                    id: "plain".into(),
                    value: "visible".into(),
                },
            ],
        }
    }

    #[test]
    fn masks_every_secret_place_and_nothing_else() {
        let original = definition("p1", "p2", "v1");
        let shown = masked(&original);
        let object = &shown.objects[0];
        assert_eq!(object.first_string("username"), Some("u"));
        assert!(object.values("*password").all(|value| value.as_string() == Some(MASK)));
        assert_eq!(object.first("*ref").and_then(FieldValue::as_ref_target), Some("Other"));
        assert_eq!(shown.parameters[0].attribute("default"), Some(MASK));
        assert_eq!(shown.parameters[0].attribute("type"), Some("String"));
        assert_eq!(shown.values[0].value, MASK);
        assert_eq!(shown.values[1].value, "visible");
        assert!(holds_mask(&shown) && !holds_mask(&original));
    }

    #[test]
    fn a_masked_round_trip_keeps_the_stored_values_and_takes_new_ones() {
        let stored = definition("p1", "p2", "v1");
        let mut edited = masked(&stored);
        // The second password is changed; the rest comes back masked.
        edited.objects[0].fields[2].value = FieldValue::String("p2-new".into());
        assert!(restore_masked(&mut edited, Some(&stored)).is_empty());
        assert_eq!(edited, definition("p1", "p2-new", "v1"));
    }

    #[test]
    fn a_mask_with_nothing_behind_it_is_named() {
        let mut fresh = masked(&definition("p1", "p2", "v1"));
        fresh.objects[0].id = "NewDb".into();
        let unresolved = restore_masked(&mut fresh, Some(&definition("p1", "p2", "v1")));
        assert_eq!(
            unresolved,
            vec![
                "field '*password' of object 'NewDb'".to_string(),
                "field '*password' of object 'NewDb'".to_string()
            ]
        );
        let mut first = masked(&definition("p1", "p2", "v1"));
        assert_eq!(restore_masked(&mut first, None).len(), 4);
    }
}
