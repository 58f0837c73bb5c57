//! IAM-style policies (reference data-protection.md §1): parsing the JSON grammar with errors that
//! name the place, and AWS's evaluation logic — an explicit Deny beats an Allow, which beats the
//! implicit deny — with wildcards, condition operators, `IfExists`, `ForAnyValue`/`ForAllValues`
//! and policy variables.
//!
//! Pure: the request context (time included) is an argument; no I/O, no clock.

mod condition;
mod index;
mod parse;
mod pattern;

use std::collections::HashMap;

pub use index::PolicySet;
pub use parse::{Effect, Policy, PolicyError, Statement, parse};

/// What a request looks like to a policy. Keys are matched case-insensitively; a key may hold
/// several values (`aws:TagKeys`).
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub action: String,
    pub resource: String,
    keys: HashMap<String, Vec<String>>,
}

impl RequestContext {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        RequestContext {
            action: action.into(),
            resource: resource.into(),
            keys: HashMap::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.keys
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.into());
        self
    }

    pub fn with_values(mut self, key: &str, values: &[&str]) -> Self {
        self.keys.insert(
            key.to_ascii_lowercase(),
            values.iter().map(|value| value.to_string()).collect(),
        );
        self
    }

    pub fn values(&self, key: &str) -> Option<&[String]> {
        if key.bytes().any(|byte| byte.is_ascii_uppercase()) {
            self.keys.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
        } else {
            self.keys.get(key).map(Vec::as_slice)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the statement named (policy index, statement index, Sid).
    Allow {
        policy: usize,
        statement: usize,
        sid: Option<String>,
    },
    /// Denied by an explicit Deny statement.
    ExplicitDeny {
        policy: usize,
        statement: usize,
        sid: Option<String>,
    },
    /// No statement allowed it.
    ImplicitDeny,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// One statement's part in a decision (`explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementReport {
    pub policy: usize,
    pub statement: usize,
    pub sid: Option<String>,
    pub effect: Effect,
    /// `None` when the statement applies to the request; else why not.
    pub why_not: Option<String>,
}

/// The decision and, for every statement, whether it applied and why not (policy simulation).
pub fn explain(policies: &[Policy], context: &RequestContext) -> (Decision, Vec<StatementReport>) {
    let mut reports = Vec::new();
    for (policy_index, policy) in policies.iter().enumerate() {
        for (statement_index, statement) in policy.statements.iter().enumerate() {
            reports.push(StatementReport {
                policy: policy_index,
                statement: statement_index,
                sid: statement.sid.clone(),
                effect: statement.effect,
                why_not: statement.why_not(context),
            });
        }
    }
    (evaluate(policies, context), reports)
}

/// Evaluates a request against every policy that applies to the principal.
pub fn evaluate(policies: &[Policy], context: &RequestContext) -> Decision {
    let mut allow = None;
    let action = context.action.to_ascii_lowercase();
    for (policy_index, policy) in policies.iter().enumerate() {
        for (statement_index, statement) in policy.statements.iter().enumerate() {
            if !statement.matches_lowered(context, &action) {
                continue;
            }
            match statement.effect {
                Effect::Deny => {
                    return Decision::ExplicitDeny {
                        policy: policy_index,
                        statement: statement_index,
                        sid: statement.sid.clone(),
                    };
                }
                Effect::Allow => {
                    allow.get_or_insert(Decision::Allow {
                        policy: policy_index,
                        statement: statement_index,
                        sid: statement.sid.clone(),
                    });
                }
            }
        }
    }
    allow.unwrap_or(Decision::ImplicitDeny)
}

#[cfg(test)]
mod tests;
