//! Validation of a definition against the type catalogue, the parameter rules and the service
//! limits. Problems in user input are values: the result has the shape
//! `ValidatePipelineDefinition` answers with (errors and warnings per object id).
//!
//! Messages read `<CODE>: <text>`, the form of the one verbatim AWS message known
//! (`INVALID_FIELD_VALUE: 'startDateTime' value must be a literal datetime value.`).

use std::collections::{HashMap, HashSet};

use crate::catalogue::{self, Category, FieldSpec, GroupRule, Presence, RefTarget, TypeSpec, ValueKind};
use crate::expression_scan;
use crate::model::{FieldValue, PipelineDefinition, PipelineObject};
use crate::values::{Period, parse_boolean, parse_date_time, parse_double, parse_integer};

/// Service limits (reference §j). Defaults are AWS's, except the shortest schedule period: AWS
/// refuses periods under 15 minutes, Sluice accepts 1 minute, the shortest a Period can say.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_objects: usize,
    pub max_fields_per_object: usize,
    pub max_field_value_bytes: usize,
    pub max_object_bytes: usize,
    pub max_identifier_bytes: usize,
    pub max_parameters: usize,
    pub min_schedule_period_minutes: u64,
    pub max_schedule_period_minutes: u64,
    pub max_active_instances: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_objects: 100,
            max_fields_per_object: 50,
            max_field_value_bytes: 10_240,
            max_object_bytes: 15_360,
            max_identifier_bytes: 256,
            max_parameters: 50,
            min_schedule_period_minutes: 1,
            max_schedule_period_minutes: 3 * 365 * 24 * 60 + 24 * 60,
            max_active_instances: 5,
        }
    }
}

/// Messages for one object (or parameter) id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMessages {
    pub id: String,
    pub messages: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationReport {
    pub errors: Vec<ObjectMessages>,
    pub warnings: Vec<ObjectMessages>,
    /// Errors that stop `PutPipelineDefinition` from saving anything (they also appear in
    /// `errors`): empty values, missing ids, exceeded service limits.
    pub fatal: Vec<String>,
}

impl ValidationReport {
    pub fn errored(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn has_fatal_errors(&self) -> bool {
        !self.fatal.is_empty()
    }

    /// Where the account says so, personal data in ids and names is an error that stops a Put.
    pub fn personal_data_as_errors(&mut self) {
        for entry in &mut self.warnings {
            let (personal, rest): (Vec<String>, Vec<String>) = entry
                .messages
                .drain(..)
                .partition(|message| message.starts_with("PERSONAL_DATA:"));
            entry.messages = rest;
            for message in personal {
                self.fatal.push(format!("[{}] {message}", entry.id));
                match self.errors.iter_mut().find(|errors| errors.id == entry.id) {
                    Some(errors) => errors.messages.push(message),
                    None => self.errors.push(ObjectMessages {
                        id: entry.id.clone(),
                        messages: vec![message],
                    }),
                }
            }
        }
        self.warnings.retain(|entry| !entry.messages.is_empty());
    }
}

#[derive(Default)]
struct Collector {
    entries: Vec<ObjectMessages>,
}

impl Collector {
    fn push(&mut self, id: &str, message: String) {
        match self.entries.iter_mut().find(|entry| entry.id == id) {
            Some(entry) => {
                if !entry.messages.contains(&message) {
                    entry.messages.push(message);
                }
            }
            None => self.entries.push(ObjectMessages {
                id: id.to_string(),
                messages: vec![message],
            }),
        }
    }
}

const DEFAULT_ID: &str = "Default";

struct Context<'a> {
    definition: &'a PipelineDefinition,
    limits: &'a Limits,
    by_id: HashMap<&'a str, &'a PipelineObject>,
    parameter_values: HashMap<&'a str, Vec<&'a str>>,
    /// Declared parameter ids and ids that only have values, without any leading `*`: a
    /// definition may write `#{myPassword}` for a parameter declared as `*myPassword` (sample
    /// LoadTsvFilesInS3ToRedshift does).
    declared_parameters: HashSet<&'a str>,
    used_as_parent: HashSet<&'a str>,
    on_demand: bool,
    errors: Collector,
    warnings: Collector,
    fatal: Vec<String>,
}

/// Validates a whole definition. Pure: the same input always gives the same report.
pub fn validate(definition: &PipelineDefinition, limits: &Limits) -> ValidationReport {
    let mut by_id = HashMap::new();
    for object in &definition.objects {
        by_id.entry(object.id.as_str()).or_insert(object);
    }
    let used_as_parent = definition
        .objects
        .iter()
        .flat_map(|object| object.values("parent").filter_map(FieldValue::as_ref_target))
        .collect();
    let mut context = Context {
        definition,
        limits,
        by_id,
        parameter_values: HashMap::new(),
        declared_parameters: definition
            .parameters
            .iter()
            .map(|parameter| parameter.id.as_str())
            .chain(definition.values.iter().map(|value| value.id.as_str()))
            .map(unstarred)
            .collect(),
        used_as_parent,
        on_demand: false,
        errors: Collector::default(),
        warnings: Collector::default(),
        fatal: Vec::new(),
    };
    context.parameter_values = effective_parameter_values(definition);
    context.on_demand = context
        .by_id
        .get(DEFAULT_ID)
        .and_then(|default| default.first_string("scheduleType"))
        .is_some_and(|schedule_type| schedule_type.eq_ignore_ascii_case("ondemand"));

    check_limits(&mut context);
    let mut seen = HashSet::new();
    for object in &definition.objects {
        if !seen.insert(object.id.as_str()) {
            context.errors.push(
                &object.id,
                format!(
                    "INVALID_OBJECT_ID: the id '{}' is used by more than one object",
                    object.id
                ),
            );
            continue;
        }
        check_object(&mut context, object);
    }
    check_depends_on_cycles(&mut context);
    check_parameters(&mut context);
    for (id, message) in crate::runtime::support::unsupported(definition) {
        context.warnings.push(
            &id,
            format!("NOT_SUPPORTED: {message}; ActivatePipeline will refuse this pipeline until it can"),
        );
    }
    ValidationReport {
        errors: context.errors.entries,
        warnings: context.warnings.entries,
        fatal: context.fatal,
    }
}

fn fatal(context: &mut Context<'_>, id: &str, message: String) {
    context.fatal.push(format!("[{id}] {message}"));
    context.errors.push(id, message);
}

fn check_limits(context: &mut Context<'_>) {
    let limits = context.limits.clone();
    let definition = context.definition;
    if definition.objects.len() > limits.max_objects {
        let id = definition.objects[limits.max_objects].id.as_str();
        let message = format!(
            "LIMIT_EXCEEDED: the definition has {} objects; the limit is {} per pipeline",
            definition.objects.len(),
            limits.max_objects
        );
        fatal(context, id, message);
    }
    if definition.parameters.len() > limits.max_parameters {
        let id = definition.parameters[limits.max_parameters].id.as_str();
        let message = format!(
            "LIMIT_EXCEEDED: the definition has {} parameters; the limit is {}",
            definition.parameters.len(),
            limits.max_parameters
        );
        fatal(context, id, message);
    }
    for object in &definition.objects {
        let id = if object.id.is_empty() {
            "(empty id)"
        } else {
            object.id.as_str()
        };
        if object.id.is_empty() {
            fatal(
                context,
                id,
                "MISSING_REQUIRED_FIELD: an object has an empty 'id'".into(),
            );
        }
        if object.name.is_empty() {
            fatal(
                context,
                id,
                "MISSING_REQUIRED_FIELD: the object has an empty 'name'".into(),
            );
        }
        if object.id.len() > limits.max_identifier_bytes {
            let message = format!(
                "LIMIT_EXCEEDED: the id is {} bytes; the limit is {}",
                object.id.len(),
                limits.max_identifier_bytes
            );
            fatal(context, id, message);
        }
        if object.fields.len() > limits.max_fields_per_object {
            let message = format!(
                "LIMIT_EXCEEDED: the object has {} fields; the limit is {}",
                object.fields.len(),
                limits.max_fields_per_object
            );
            fatal(context, id, message);
        }
        let mut object_bytes = object.id.len() + object.name.len();
        for field in &object.fields {
            object_bytes += field.key.len() + field.value.as_str().len();
            if field.value.as_str().is_empty() {
                let message = format!("INVALID_FIELD_VALUE: field '{}' has an empty value", field.key);
                fatal(context, id, message);
            }
            if field.key.len() > limits.max_identifier_bytes {
                let message = format!(
                    "LIMIT_EXCEEDED: a field name is {} bytes; the limit is {}",
                    field.key.len(),
                    limits.max_identifier_bytes
                );
                fatal(context, id, message);
            }
            if field.value.as_str().len() > limits.max_field_value_bytes {
                let message = format!(
                    "LIMIT_EXCEEDED: field '{}' is {} bytes; the limit is {}",
                    field.key,
                    field.value.as_str().len(),
                    limits.max_field_value_bytes
                );
                fatal(context, id, message);
            }
        }
        if object_bytes > limits.max_object_bytes {
            let message = format!(
                "LIMIT_EXCEEDED: the object is {object_bytes} bytes; the limit is {}",
                limits.max_object_bytes
            );
            fatal(context, id, message);
        }
    }
}

/// The object, then its explicit parents in order, then `Default`. Stops before a repeat, which
/// `check_object` reports as a cycle.
fn lineage<'a>(context: &Context<'a>, object: &'a PipelineObject) -> (Vec<&'a PipelineObject>, Option<Vec<String>>) {
    let mut chain = vec![object];
    let mut current = object;
    while let Some(parent_id) = current.first("parent").and_then(FieldValue::as_ref_target) {
        if chain.iter().any(|seen| seen.id == parent_id) {
            let mut loop_ids: Vec<String> = chain.iter().map(|seen| seen.id.clone()).collect();
            loop_ids.push(parent_id.to_string());
            return (chain, Some(loop_ids));
        }
        let Some(parent) = context.by_id.get(parent_id) else {
            break;
        };
        chain.push(parent);
        current = parent;
    }
    if object.id != DEFAULT_ID
        && let Some(default) = context.by_id.get(DEFAULT_ID)
        && !chain.iter().any(|seen| seen.id == DEFAULT_ID)
    {
        chain.push(default);
    }
    (chain, None)
}

/// The values an object ends up with for `key`: its own if it has any, else the nearest ancestor's.
fn effective<'a>(chain: &[&'a PipelineObject], key: &str) -> Vec<&'a FieldValue> {
    chain
        .iter()
        .map(|object| object.values(key).collect::<Vec<_>>())
        .find(|values| !values.is_empty())
        .unwrap_or_default()
}

fn effective_type<'a>(chain: &[&'a PipelineObject]) -> Option<&'a str> {
    chain
        .iter()
        .filter(|object| object.id != DEFAULT_ID)
        .find_map(|object| object.object_type())
}

fn check_object<'a>(context: &mut Context<'a>, object: &'a PipelineObject) {
    let id = object.id.as_str();
    let (chain, parent_loop) = lineage(context, object);
    if let Some(loop_ids) = parent_loop {
        context.errors.push(
            id,
            format!("INVALID_REFERENCE: the 'parent' chain loops: {}", loop_ids.join(" -> ")),
        );
    }
    let type_name = effective_type(&chain);
    let type_spec = type_name.and_then(catalogue::type_spec);
    let is_default = id == DEFAULT_ID;
    for (what, text) in [("id", object.id.as_str()), ("name", object.name.as_str())] {
        if let Some(kind) = crate::guard::personal_data_in(text) {
            context.warnings.push(
                id,
                format!("PERSONAL_DATA: the object's {what} seems to hold {kind}; ids and names reach logs and audit records unencrypted"),
            );
        }
    }
    for field in &object.fields {
        if let FieldValue::String(text) = &field.value
            && !field.key.starts_with('*')
            && let Some(kind) = crate::guard::credential_in(text)
        {
            let message = format!(
                "CREDENTIAL_IN_DEFINITION: field '{}' holds {kind}; put the secret in a '*' field or a '*my' parameter",
                field.key
            );
            fatal(context, id, message);
        }
    }

    if is_default && object.object_type().is_some() {
        context.errors.push(
            id,
            "INVALID_FIELD_NAME: 'Default' holds pipeline-wide settings and must not have a 'type'".into(),
        );
    }
    match (type_name, type_spec) {
        (Some(name), None) if object.object_type() == Some(name) => {
            context
                .errors
                .push(id, format!("INVALID_OBJECT_TYPE: '{name}' is not a known object type"));
        }
        (None, _) if !is_default && !context.used_as_parent.contains(id) => {
            context.errors.push(id, "MISSING_REQUIRED_FIELD: 'type' is required (only 'Default' and objects used as a 'parent' may omit it)".into());
        }
        _ => {}
    }

    check_own_fields(context, object, &chain, type_name, type_spec);
    if let Some(spec) = type_spec
        && !is_default
    {
        check_required(context, object, &chain, spec);
    }
}

fn check_own_fields<'a>(
    context: &mut Context<'a>,
    object: &'a PipelineObject,
    chain: &[&'a PipelineObject],
    type_name: Option<&str>,
    type_spec: Option<&'static TypeSpec>,
) {
    let id = object.id.as_str();
    let is_default = id == DEFAULT_ID;
    let mut counted: Vec<&str> = Vec::new();
    for field in &object.fields {
        let key = field.key.as_str();
        if key.starts_with('@') {
            context.errors.push(
                id,
                format!("INVALID_FIELD_NAME: '{key}' is a read-only runtime field and cannot be set"),
            );
            continue;
        }
        if key == "id" {
            context.errors.push(
                id,
                "INVALID_FIELD_NAME: 'id' is the object's identifier, not a field".into(),
            );
            continue;
        }
        if let FieldValue::String(text) = &field.value {
            check_expressions(context, id, key, text, chain);
        }
        if key == "type" {
            if field.value.as_ref_target().is_some() {
                context.errors.push(
                    id,
                    "INVALID_FIELD_VALUE: 'type' must be a string value, found a reference".into(),
                );
            }
            continue;
        }
        if key == "name" {
            continue;
        }
        if catalogue::is_user_field(key) {
            if let FieldValue::Ref(target) = &field.value
                && !context.by_id.contains_key(target.as_str())
            {
                context.errors.push(
                    id,
                    format!("INVALID_REFERENCE: '{key}' references '{target}', which is not defined"),
                );
            }
            if key.starts_with('*') {
                check_literal_secret(context, id, key, &field.value);
            }
            continue;
        }
        let spec = match (type_spec, is_default || type_name.is_none()) {
            (Some(spec), false) => spec.field(key),
            (_, true) => catalogue::any_type_field(key),
            (None, false) => continue, // unknown type: already reported, fields cannot be judged
        };
        let Some(spec) = spec else {
            if catalogue::RUNTIME_FIELDS.contains(&key) {
                context.errors.push(id, format!("INVALID_FIELD_NAME: '{key}' is a runtime field that the service sets; a definition cannot set it"));
                continue;
            }
            // Definitions that ran on AWS must keep running, and the documented catalogue is
            // known to miss fields AWS accepted, so an unknown field is a warning, not an error.
            let suggestion = suggest(key, type_spec.filter(|_| !is_default))
                .map(|near| format!("; did you mean '{near}'?"))
                .unwrap_or_default();
            let message = match (type_name, is_default) {
                (Some(name), false) => format!(
                    "INVALID_FIELD_NAME: '{key}' is not a known field of {name} and is ignored (user-defined fields start with 'my'){suggestion}"
                ),
                _ => format!(
                    "INVALID_FIELD_NAME: '{key}' is not a known field of any object type and is ignored (user-defined fields start with 'my')"
                ),
            };
            context.warnings.push(id, message);
            continue;
        };
        if spec.presence == Presence::NotAllowed && !is_default {
            context.errors.push(
                id,
                format!(
                    "INVALID_FIELD_NAME: '{key}' is not allowed on {}",
                    type_name.unwrap_or("this type")
                ),
            );
            continue;
        }
        if !spec.repeatable && !counted.contains(&key) {
            counted.push(key);
            let n_values = object.values(key).count();
            if n_values > 1 {
                context.errors.push(
                    id,
                    format!("INVALID_FIELD_VALUE: '{key}' takes one value, found {n_values}"),
                );
            }
        }
        if key.starts_with('*') {
            check_literal_secret(context, id, key, &field.value);
        }
        check_value(context, id, spec, &field.value);
    }
}

/// The field of the type closest to a misspelt name (at most two edits away).
fn suggest(key: &str, type_spec: Option<&'static TypeSpec>) -> Option<&'static str> {
    let candidates: Vec<&'static str> = match type_spec {
        Some(spec) => spec.all_fields().map(|field| field.name).collect(),
        None => catalogue::TYPES
            .iter()
            .flat_map(|spec| spec.all_fields().map(|field| field.name))
            .collect(),
    };
    candidates
        .into_iter()
        .map(|candidate| {
            (
                edit_distance(&key.to_ascii_lowercase(), &candidate.to_ascii_lowercase()),
                candidate,
            )
        })
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (row, left_char) in left.chars().enumerate() {
        let mut current = vec![row + 1];
        for (column, right_char) in right.iter().enumerate() {
            let substitution = previous[column] + usize::from(left_char != *right_char);
            current.push(substitution.min(previous[column + 1] + 1).min(current[column] + 1));
        }
        previous = current;
    }
    previous[right.len()]
}

/// `*` fields are encrypted, but a literal secret in the definition still travels in every copy
/// of it; a `*my` parameter keeps it out of the object itself.
fn check_literal_secret(context: &mut Context<'_>, id: &str, key: &str, value: &FieldValue) {
    if let FieldValue::String(text) = value
        && !text.contains("#{")
    {
        context.warnings.push(
            id,
            format!("LITERAL_SECRET: '{key}' holds a literal value; pass it as a '*my...' parameter so it is masked and kept out of the definition"),
        );
    }
}

fn check_value(context: &mut Context<'_>, id: &str, spec: &FieldSpec, value: &FieldValue) {
    let key = spec.name;
    match (spec.kind, value) {
        (ValueKind::Ref(target_rule), FieldValue::Ref(target)) => {
            let Some(target_object) = context.by_id.get(target.as_str()) else {
                context.errors.push(
                    id,
                    format!("INVALID_REFERENCE: '{key}' references '{target}', which is not defined"),
                );
                return;
            };
            let (target_chain, _) = lineage(context, target_object);
            let Some(target_type) = effective_type(&target_chain) else {
                return;
            };
            let Some(target_spec) = catalogue::type_spec(target_type) else {
                return;
            };
            let fits = match target_rule {
                RefTarget::Any => true,
                RefTarget::Categories(categories) => categories.contains(&target_spec.category),
                RefTarget::Types(types) => types.contains(&target_spec.name),
            };
            if !fits {
                let wanted = match target_rule {
                    RefTarget::Any => String::new(),
                    RefTarget::Categories(categories) => categories
                        .iter()
                        .map(|category| category.describe())
                        .collect::<Vec<_>>()
                        .join(" or "),
                    RefTarget::Types(types) => types.join(" or "),
                };
                context.errors.push(
                    id,
                    format!("INVALID_REFERENCE: '{key}' must reference a {wanted}, but '{target}' is a {target_type}"),
                );
            }
        }
        (ValueKind::Ref(_), FieldValue::String(_)) => {
            context.errors.push(
                id,
                format!(
                    "INVALID_FIELD_VALUE: '{key}' must be a reference ({{\"ref\": \"<objectId>\"}}), found a string"
                ),
            );
        }
        (_, FieldValue::Ref(target)) => {
            context.errors.push(
                id,
                format!("INVALID_FIELD_VALUE: '{key}' must be a string value, found a reference to '{target}'"),
            );
        }
        (kind, FieldValue::String(text)) => {
            let Some(candidates) = substitute_parameters(context, text) else {
                return; // an expression evaluated only when instances are created
            };
            for candidate in candidates {
                if let Err(problem) = check_literal(context.limits, spec, kind, &candidate) {
                    context
                        .errors
                        .push(id, format!("INVALID_FIELD_VALUE: '{key}': {problem}"));
                }
            }
        }
    }
}

fn check_literal(limits: &Limits, spec: &FieldSpec, kind: ValueKind, text: &str) -> Result<(), String> {
    match kind {
        ValueKind::String | ValueKind::Ref(_) => Ok(()),
        ValueKind::Integer { min, max } => {
            let value = parse_integer(text)?;
            if value < min || value > max {
                return Err(match (min, max) {
                    (min, i64::MAX) => format!("{value} is below the minimum of {min}"),
                    (min, max) => format!("{value} is outside {min}..{max}"),
                });
            }
            Ok(())
        }
        ValueKind::Double { min, max } => {
            let value = parse_double(text)?;
            if value < min || value > max {
                return Err(format!("{value} is outside {min}..{max}"));
            }
            Ok(())
        }
        ValueKind::Boolean => parse_boolean(text).map(|_| ()),
        ValueKind::DateTime => parse_date_time(text).map(|_| ()),
        ValueKind::Period => {
            if spec.name == "period" && text == "ONDEMAND_PERIOD" {
                return Ok(());
            }
            let period = Period::parse(text)?;
            if spec.name == "period" {
                let minutes = period.approximate_minutes();
                if minutes < limits.min_schedule_period_minutes {
                    return Err(format!(
                        "'{text}' is shorter than the minimum period of {} minutes",
                        limits.min_schedule_period_minutes
                    ));
                }
                if minutes > limits.max_schedule_period_minutes {
                    return Err(format!("'{text}' is longer than the maximum period of 3 years"));
                }
            }
            Ok(())
        }
        ValueKind::PeriodOrHours => {
            if Period::parse(text).is_ok() || parse_integer(text).is_ok_and(|hours| hours > 0) {
                Ok(())
            } else {
                Err(format!(
                    "'{text}' is neither a period such as '2 hours' nor a whole number of hours"
                ))
            }
        }
        ValueKind::Enum(allowed) => {
            if allowed.iter().any(|candidate| candidate.eq_ignore_ascii_case(text)) {
                Ok(())
            } else {
                Err(format!("'{text}' is not one of {}", allowed.join(", ")))
            }
        }
    }
}

/// Resolves a value whose every expression is a bare parameter reference, giving the literal(s)
/// it stands for (several for an array parameter). `None` when an expression needs runtime
/// context, or when a parameter has no value (reported with the parameters).
fn substitute_parameters(context: &Context<'_>, text: &str) -> Option<Vec<String>> {
    let spans = expression_scan::expressions(text).ok()?;
    if spans.is_empty() {
        return Some(vec![text.to_string()]);
    }
    let mut results = vec![String::new()];
    let mut cursor = 0;
    for span in spans {
        let name = unstarred(span.body.trim());
        let values = context.parameter_values.get(name)?;
        let literal = &text[cursor..span.offset];
        let expanded: Vec<String> = if values.len() == 1 || results.len() > 1 {
            results
                .iter()
                .map(|prefix| format!("{prefix}{literal}{}", values[0]))
                .collect()
        } else {
            values
                .iter()
                .map(|value| format!("{}{literal}{value}", results[0]))
                .collect()
        };
        results = expanded;
        cursor = span.offset + span.body.len() + 3;
    }
    let tail = &text[cursor..];
    Some(results.into_iter().map(|prefix| format!("{prefix}{tail}")).collect())
}

fn check_expressions(context: &mut Context<'_>, id: &str, key: &str, text: &str, chain: &[&PipelineObject]) {
    let spans = match expression_scan::expressions(text) {
        Ok(spans) => spans,
        Err(error) => {
            context.errors.push(
                id,
                format!(
                    "INVALID_FIELD_VALUE: '{key}': the expression starting at position {} is not closed with '}}'",
                    error.offset
                ),
            );
            return;
        }
    };
    for span in spans {
        let parsed = crate::expression::parse(span.body);
        let problems = match &parsed {
            Ok(tree) => crate::expression::static_problems(tree),
            Err(problem) => vec![problem.clone()],
        };
        if let Some(problem) = problems.first() {
            context.errors.push(
                id,
                format!(
                    "INVALID_FIELD_VALUE: '{key}': {} at position {}",
                    problem.message,
                    span.offset + 2 + problem.position
                ),
            );
            continue;
        }
        if span.body.trim().is_empty() {
            context.errors.push(
                id,
                format!(
                    "INVALID_FIELD_VALUE: '{key}': the expression at position {} is empty",
                    span.offset
                ),
            );
        }
        for name in expression_scan::bare_names(span.body) {
            if !catalogue::is_user_field(name) || context.declared_parameters.contains(unstarred(name)) {
                continue;
            }
            if chain.iter().any(|object| object.first(name).is_some()) {
                continue;
            }
            context.errors.push(
                id,
                format!(
                    "INVALID_FIELD_VALUE: '{key}': '#{{{name}}}' at position {} is neither a declared parameter nor a field of this object",
                    span.offset
                ),
            );
        }
    }
}

fn check_required<'a>(
    context: &mut Context<'a>,
    object: &'a PipelineObject,
    chain: &[&'a PipelineObject],
    spec: &TypeSpec,
) {
    let id = object.id.as_str();
    let has = |key: &str| !effective(chain, key).is_empty();
    for field in spec.all_fields() {
        match field.presence {
            Presence::Required if !has(field.name) => {
                context.errors.push(
                    id,
                    format!("MISSING_REQUIRED_FIELD: '{}' is required on {}", field.name, spec.name),
                );
            }
            Presence::Schedule if !has(field.name) && !context.on_demand => {
                context.errors.push(
                    id,
                    format!("MISSING_REQUIRED_FIELD: 'schedule' is required on {} (set it here or on Default, or make the pipeline ondemand)", spec.name),
                );
            }
            _ => {}
        }
    }
    for group in spec.groups {
        let present: Vec<&str> = group.members.iter().copied().filter(|member| has(member)).collect();
        let quoted = |names: &[&str]| {
            names
                .iter()
                .map(|name| format!("'{name}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (group.rule, present.len()) {
            (GroupRule::ExactlyOne | GroupRule::RunsOnOrWorkerGroup, 0) => context.errors.push(
                id,
                format!("MISSING_REQUIRED_FIELD: {} needs one of {}", spec.name, quoted(group.members)),
            ),
            (GroupRule::ExactlyOne | GroupRule::AtMostOne, n) if n > 1 => context.errors.push(
                id,
                format!("CONFLICTING_FIELDS: only one of {} may be set, found {}", quoted(group.members), quoted(&present)),
            ),
            (GroupRule::RunsOnOrWorkerGroup, 2) => context.warnings.push(
                id,
                "CONFLICTING_FIELDS: both 'runsOn' and 'workerGroup' are set; 'workerGroup' is ignored and the task runs on 'runsOn'".into(),
            ),
            _ => {}
        }
    }
    if let Some(schedule_type) = object.first_string("scheduleType")
        && SCHEDULE_TYPE_ONDEMAND.eq_ignore_ascii_case(schedule_type)
    {
        context.errors.push(
            id,
            "INVALID_FIELD_VALUE: 'scheduleType' ondemand may only be set on Default".into(),
        );
    } else if context.on_demand
        && let Some(schedule_type) = object.first_string("scheduleType")
        && !schedule_type.contains("#{")
    {
        context.errors.push(
            id,
            format!("INVALID_FIELD_VALUE: 'scheduleType' is '{schedule_type}', but the pipeline is ondemand; an ondemand pipeline uses no other schedule type"),
        );
    }
    if let Some(max_active) = effective(chain, "maxActiveInstances")
        .first()
        .and_then(|value| value.as_string())
        && let Ok(max_active) = parse_integer(max_active)
        && max_active > context.limits.max_active_instances
    {
        context.errors.push(
            id,
            format!(
                "LIMIT_EXCEEDED: 'maxActiveInstances' is {max_active}; the limit is {} active instances per object",
                context.limits.max_active_instances
            ),
        );
    }
}

const SCHEDULE_TYPE_ONDEMAND: &str = "ondemand";

fn check_depends_on_cycles(context: &mut Context<'_>) {
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for object in &context.definition.objects {
        let (chain, _) = lineage(context, object);
        let is_runnable = effective_type(&chain)
            .and_then(catalogue::type_spec)
            .is_some_and(|spec| matches!(spec.category, Category::Activity | Category::DataNode));
        if is_runnable {
            let targets = effective(&chain, "dependsOn")
                .into_iter()
                .filter_map(FieldValue::as_ref_target)
                .collect();
            edges.insert(object.id.as_str(), targets);
        }
    }
    // Iterative depth-first search with colours; a grey target closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour: HashMap<&str, Colour> = edges.keys().map(|id| (*id, Colour::White)).collect();
    let mut cycles: Vec<Vec<&str>> = Vec::new();
    for object in &context.definition.objects {
        let start = object.id.as_str();
        if colour.get(start) != Some(&Colour::White) {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        colour.insert(start, Colour::Grey);
        while let Some((node, next_edge)) = path.last().copied() {
            let targets = edges.get(node).map(Vec::as_slice).unwrap_or_default();
            if next_edge < targets.len() {
                if let Some(last) = path.last_mut() {
                    last.1 += 1;
                }
                let target = targets[next_edge];
                match colour.get(target) {
                    Some(Colour::White) => {
                        colour.insert(target, Colour::Grey);
                        path.push((target, 0));
                    }
                    Some(Colour::Grey) => {
                        let position = path.iter().position(|(id, _)| *id == target).unwrap_or(0);
                        let mut cycle: Vec<&str> = path[position..].iter().map(|(id, _)| *id).collect();
                        cycle.push(target);
                        cycles.push(cycle);
                    }
                    _ => {}
                }
            } else {
                colour.insert(node, Colour::Black);
                path.pop();
            }
        }
    }
    for cycle in cycles {
        let rendered = cycle.join(" -> ");
        for id in &cycle[..cycle.len() - 1] {
            context
                .errors
                .push(id, format!("INVALID_REFERENCE: 'dependsOn' forms a cycle: {rendered}"));
        }
    }
}

fn unstarred(name: &str) -> &str {
    name.strip_prefix('*').unwrap_or(name)
}

/// Parameter values in force, by id without `*`: the definition's values where given, else the
/// declared default.
fn effective_parameter_values(definition: &PipelineDefinition) -> HashMap<&str, Vec<&str>> {
    let mut values: HashMap<&str, Vec<&str>> = HashMap::new();
    for value in &definition.values {
        values
            .entry(unstarred(&value.id))
            .or_default()
            .push(value.value.as_str());
    }
    for parameter in &definition.parameters {
        if !values.contains_key(unstarred(&parameter.id))
            && let Some(default) = parameter.attribute("default")
        {
            values.insert(unstarred(&parameter.id), vec![default]);
        }
    }
    values
}

const PARAMETER_TYPES: &[&str] = &["String", "Integer", "Double", "AWS::S3::ObjectKey"];

fn check_parameter_value(parameter_type: &str, allowed: &[&str], value: &str) -> Result<(), String> {
    if parameter_type.eq_ignore_ascii_case("Integer") {
        parse_integer(value)?;
    } else if parameter_type.eq_ignore_ascii_case("Double") {
        parse_double(value)?;
    } else if parameter_type.eq_ignore_ascii_case("AWS::S3::ObjectKey")
        && !value.is_empty()
        && !value.starts_with("s3://")
    {
        return Err(format!("'{value}' is not an S3 object key (s3://bucket/key)"));
    }
    if !allowed.is_empty() && !allowed.contains(&value) {
        return Err(format!(
            "'{value}' is not one of the allowed values {}",
            allowed.join(", ")
        ));
    }
    Ok(())
}

fn check_parameters(context: &mut Context<'_>) {
    let definition = context.definition;
    let mut seen = HashSet::new();
    for parameter in &definition.parameters {
        let id = parameter.id.as_str();
        if !seen.insert(id) {
            context.errors.push(
                id,
                format!("INVALID_OBJECT_ID: parameter '{id}' is declared more than once"),
            );
            continue;
        }
        if !catalogue::is_user_field(id) {
            context.errors.push(
                id,
                format!("INVALID_FIELD_NAME: parameter id '{id}' must start with 'my' (or '*my' for a secret)"),
            );
        }
        for attribute in &parameter.attributes {
            if attribute.key.len() > context.limits.max_identifier_bytes
                || attribute.value.len() > context.limits.max_field_value_bytes
            {
                let message = format!("LIMIT_EXCEEDED: attribute '{}' is too long", attribute.key);
                fatal(context, id, message);
            }
        }
        let parameter_type = parameter.attribute("type").unwrap_or("String");
        if !PARAMETER_TYPES
            .iter()
            .any(|known| known.eq_ignore_ascii_case(parameter_type))
        {
            context.errors.push(
                id,
                format!(
                    "INVALID_FIELD_VALUE: parameter type '{parameter_type}' is not one of {}",
                    PARAMETER_TYPES.join(", ")
                ),
            );
            continue;
        }
        let mut flags = [false, false];
        for (slot, attribute) in ["optional", "isArray"].iter().enumerate() {
            if let Some(text) = parameter.attribute(attribute) {
                match parse_boolean(text) {
                    Ok(flag) => flags[slot] = flag,
                    Err(problem) => context
                        .errors
                        .push(id, format!("INVALID_FIELD_VALUE: '{attribute}': {problem}")),
                }
            }
        }
        let [optional, is_array] = flags;
        let allowed: Vec<&str> = parameter.attributes("allowedValues").collect();
        for value in &allowed {
            if let Err(problem) = check_parameter_value(parameter_type, &[], value) {
                context
                    .errors
                    .push(id, format!("INVALID_FIELD_VALUE: 'allowedValues': {problem}"));
            }
        }
        if let Some(default) = parameter.attribute("default")
            && let Err(problem) = check_parameter_value(parameter_type, &allowed, default)
        {
            context
                .errors
                .push(id, format!("INVALID_FIELD_VALUE: 'default': {problem}"));
        }
        let given: Vec<&str> = definition
            .values
            .iter()
            .filter(|value| unstarred(&value.id) == unstarred(id))
            .map(|value| value.value.as_str())
            .collect();
        if given.len() > 1 && !is_array {
            context.errors.push(
                id,
                format!("INVALID_FIELD_VALUE: parameter '{id}' takes one value, found {} (declare \"isArray\": \"true\" for a list)", given.len()),
            );
        }
        for value in &given {
            if !id.starts_with('*')
                && let Some(kind) = crate::guard::credential_in(value)
            {
                let message = format!(
                    "CREDENTIAL_IN_DEFINITION: the value of parameter '{id}' holds {kind}; declare it as '*{id}'"
                );
                fatal(context, id, message);
            }
            if let Err(problem) = check_parameter_value(parameter_type, &allowed, value) {
                context
                    .errors
                    .push(id, format!("INVALID_FIELD_VALUE: value of parameter '{id}': {problem}"));
            }
        }
        if given.is_empty() && parameter.attribute("default").is_none() && !optional {
            context.errors.push(
                id,
                format!("MISSING_REQUIRED_FIELD: parameter '{id}' has no value and no default; supply a value or declare it \"optional\": \"true\""),
            );
        }
    }
    // A value without a parameter object: AWS's own samples send them (the boto3 setup scripts),
    // so it is used as a String parameter, with a warning.
    let declared: HashSet<&str> = definition
        .parameters
        .iter()
        .map(|parameter| unstarred(&parameter.id))
        .collect();
    let mut reported = HashSet::new();
    for value in &definition.values {
        if !declared.contains(unstarred(&value.id)) && reported.insert(value.id.as_str()) {
            context.warnings.push(
                &value.id,
                format!("UNDECLARED_PARAMETER: a value is given for '{}', which has no parameter object; it is used as a String", value.id),
            );
        }
    }
}
