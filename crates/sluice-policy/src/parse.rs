//! The policy grammar (reference §1.1), parsed with errors that say where: JSON syntax errors by
//! line and column, everything else by path (`Statement[1].Condition.StringLike`). Unknown
//! elements and operators are errors, never silently false.

use serde_json::Value;

use crate::condition::Condition;
use crate::{RequestContext, pattern};

/// Managed-policy size limit, not counting white space.
pub const MAX_POLICY_CHARACTERS: usize = 6_144;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(message.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    actions: Vec<String>,
    not_action: bool,
    resources: Vec<String>,
    not_resource: bool,
    conditions: Vec<Condition>,
    /// Policy variables are expanded only with Version 2012-10-17.
    variables: bool,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

/// Expands `${key}`, `${key, 'default'}` and the escapes `${*}`, `${?}`, `${$}`. `None` when a
/// variable has no value and no default: the pattern then matches nothing.
pub fn expand<'a>(text: &'a str, context: &RequestContext) -> Option<std::borrow::Cow<'a, str>> {
    if !text.contains("${") {
        return Some(std::borrow::Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Some(std::borrow::Cow::Owned(out));
        };
        let inner = after[..end].trim();
        match inner {
            "*" | "?" | "$" => out.push_str(inner),
            _ => {
                let (key, default) = match inner.split_once(',') {
                    Some((key, default)) => (key.trim(), Some(default.trim().trim_matches('\'').to_string())),
                    None => (inner, None),
                };
                let value = context
                    .values(key)
                    .and_then(|values| values.first().cloned())
                    .or(default)?;
                out.push_str(&value);
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(std::borrow::Cow::Owned(out))
}

impl Statement {
    /// Whether the statement applies to the request (its effect decides what that means).
    /// Why the statement does not apply to the request, or `None` when it does.
    pub fn why_not(&self, context: &RequestContext) -> Option<String> {
        if self.action_listed(&context.action.to_ascii_lowercase()) == self.not_action {
            return Some(if self.not_action {
                format!("NotAction lists {}", context.action)
            } else {
                format!("Action does not list {}", context.action)
            });
        }
        if self.resource_listed(context) == self.not_resource {
            return Some(if self.not_resource {
                format!("NotResource lists {}", context.resource)
            } else {
                format!("Resource does not match {}", context.resource)
            });
        }
        self.conditions
            .iter()
            .find(|condition| !condition.holds(context, self.variables))
            .map(|condition| condition.explain_failure(context))
    }

    /// Whether an Action/NotAction pattern lists the (lowercased) action.
    fn action_listed(&self, action: &str) -> bool {
        self.actions.iter().any(|pattern| {
            // The literal start of the pattern must be the action's start: most statements
            // fail here without running the glob.
            let literal = pattern.find(['*', '?']).unwrap_or(pattern.len());
            action.as_bytes().get(..literal) == Some(&pattern.as_bytes()[..literal])
                && (literal == pattern.len() && action.len() == literal || pattern::glob(pattern, action, false))
        })
    }

    /// Whether a Resource/NotResource pattern (variables expanded) matches the resource.
    fn resource_listed(&self, context: &RequestContext) -> bool {
        self.resources.iter().any(|resource| {
            let resource = if self.variables {
                expand(resource, context)
            } else {
                Some(std::borrow::Cow::Borrowed(resource.as_str()))
            };
            resource.is_some_and(|resource| pattern::arn(&resource, &context.resource))
        })
    }

    /// The action patterns, lowercased.
    pub fn action_patterns(&self) -> &[String] {
        &self.actions
    }

    pub fn not_action(&self) -> bool {
        self.not_action
    }

    pub fn matches(&self, context: &RequestContext) -> bool {
        self.matches_lowered(context, &context.action.to_ascii_lowercase())
    }

    /// `matches`, with the request's action already lowercased (once per evaluation).
    pub(crate) fn matches_lowered(&self, context: &RequestContext, action: &str) -> bool {
        self.action_listed(action) != self.not_action
            && self.resource_listed(context) != self.not_resource
            && self
                .conditions
                .iter()
                .all(|condition| condition.holds(context, self.variables))
    }
}

fn strings(value: &Value, path: &str) -> Result<Vec<String>, PolicyError> {
    match value {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::String(text) => Ok(text.clone()),
                _ => fail(format!("{path}[{index}]: must be a string")),
            })
            .collect(),
        _ => fail(format!("{path}: must be a string or a non-empty list of strings")),
    }
}

/// Condition values may be strings, numbers or booleans, alone or in a list.
fn condition_values(value: &Value, path: &str) -> Result<Vec<String>, PolicyError> {
    let one = |item: &Value, path: &str| match item {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        _ => fail(format!(
            "{path}: a condition value must be a string, a number or a boolean"
        )),
    };
    match value {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(index, item)| one(item, &format!("{path}[{index}]")))
            .collect(),
        Value::Array(_) => fail(format!("{path}: must not be an empty list")),
        single => Ok(vec![one(single, path)?]),
    }
}

fn statement(value: &Value, path: &str, variables: bool) -> Result<Statement, PolicyError> {
    let Value::Object(members) = value else {
        return fail(format!("{path}: must be an object"));
    };
    for key in members.keys() {
        if !matches!(
            key.as_str(),
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Condition"
        ) {
            let hint = if key == "Principal" || key == "NotPrincipal" {
                " (identity policies name no principal)"
            } else {
                ""
            };
            return fail(format!("{path}: '{key}' is not a statement element{hint}"));
        }
    }
    let sid = match members.get("Sid") {
        None => None,
        Some(Value::String(sid)) if sid.chars().all(|c| c.is_ascii_alphanumeric()) => Some(sid.clone()),
        Some(_) => return fail(format!("{path}.Sid: must be letters and digits only")),
    };
    let effect = match members.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return fail(format!("{path}.Effect: must be \"Allow\" or \"Deny\"")),
    };
    let (actions, not_action) = match (members.get("Action"), members.get("NotAction")) {
        (Some(value), None) => (strings(value, &format!("{path}.Action"))?, false),
        (None, Some(value)) => (strings(value, &format!("{path}.NotAction"))?, true),
        _ => return fail(format!("{path}: needs exactly one of Action and NotAction")),
    };
    for action in &actions {
        if action != "*" && !action.contains(':') {
            return fail(format!("{path}: action '{action}' must look like service:Name"));
        }
    }
    let (resources, not_resource) = match (members.get("Resource"), members.get("NotResource")) {
        (Some(value), None) => (strings(value, &format!("{path}.Resource"))?, false),
        (None, Some(value)) => (strings(value, &format!("{path}.NotResource"))?, true),
        _ => return fail(format!("{path}: needs exactly one of Resource and NotResource")),
    };
    let mut conditions = Vec::new();
    if let Some(block) = members.get("Condition") {
        let Value::Object(operators) = block else {
            return fail(format!("{path}.Condition: must be an object"));
        };
        for (operator, keys) in operators {
            let operator_path = format!("{path}.Condition.{operator}");
            let Value::Object(keys) = keys else {
                return fail(format!("{operator_path}: must map condition keys to values"));
            };
            for (key, values) in keys {
                let values = condition_values(values, &format!("{operator_path}.{key}"))?;
                conditions.push(
                    Condition::new(operator, key, values)
                        .map_err(|problem| PolicyError(format!("{operator_path}: {problem}")))?,
                );
            }
        }
    }
    Ok(Statement {
        sid,
        effect,
        // Actions match without regard to case: kept lowercased, so matching is a plain glob.
        actions: actions.iter().map(|action| action.to_ascii_lowercase()).collect(),
        not_action,
        resources,
        not_resource,
        conditions,
        variables,
    })
}

/// Parses a policy document.
pub fn parse(text: &str) -> Result<Policy, PolicyError> {
    if let Some(bad) = text
        .chars()
        .find(|c| !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}'))
    {
        return fail(format!(
            "the policy contains the character U+{:04X}, outside what IAM accepts",
            bad as u32
        ));
    }
    let size = text.chars().filter(|c| !c.is_whitespace()).count();
    if size > MAX_POLICY_CHARACTERS {
        return fail(format!(
            "the policy has {size} characters (white space not counted); the limit is {MAX_POLICY_CHARACTERS}"
        ));
    }
    let document: Value = serde_json::from_str(text).map_err(|error| {
        let full = error.to_string();
        let message = full
            .rsplit_once(" at line ")
            .map_or(full.as_str(), |(head, _)| head)
            .to_string();
        PolicyError(format!("line {}, column {}: {message}", error.line(), error.column()))
    })?;
    let Value::Object(members) = &document else {
        return fail("the policy must be a JSON object");
    };
    for key in members.keys() {
        if !matches!(key.as_str(), "Version" | "Statement") {
            return fail(format!(
                "'{key}' is not a policy element (identity policies have Version and Statement)"
            ));
        }
    }
    let variables = match members.get("Version").and_then(Value::as_str) {
        Some("2012-10-17") => true,
        Some("2008-10-17") | None if members.get("Version").is_none_or(Value::is_string) => false,
        _ => return fail("Version: must be \"2012-10-17\" or \"2008-10-17\""),
    };
    let statements = match members.get("Statement") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(index, item)| statement(item, &format!("Statement[{index}]"), variables))
            .collect::<Result<Vec<_>, _>>()?,
        Some(single @ Value::Object(_)) => vec![statement(single, "Statement", variables)?],
        _ => return fail("Statement: must be a statement or a non-empty list of them"),
    };
    let mut seen = std::collections::HashSet::new();
    for statement in &statements {
        if let Some(sid) = &statement.sid
            && !seen.insert(sid.clone())
        {
            return fail(format!("Sid '{sid}' is used twice"));
        }
    }
    Ok(Policy { statements })
}
