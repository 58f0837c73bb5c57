//! A principal's policies indexed by the literal start of their action patterns, so a decision
//! reads only the statements that can apply to the action (and every `NotAction` statement)
//! instead of all of them: the same decision as `evaluate`, for a user with a hundred policies.

use std::collections::{BTreeSet, HashMap};

use crate::{Decision, Policy, RequestContext};

#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Policy>,
    /// Lowercased literal prefix of an action pattern → the statements (policy, statement)
    /// with a pattern starting so.
    by_prefix: HashMap<String, Vec<(u32, u32)>>,
    /// The distinct prefix lengths, so a lookup tries only those.
    lengths: Vec<usize>,
    /// Statements with `NotAction`: always candidates.
    always: Vec<(u32, u32)>,
}

impl PolicySet {
    pub fn new(policies: Vec<Policy>) -> PolicySet {
        let mut by_prefix: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        let mut lengths = BTreeSet::new();
        let mut always = Vec::new();
        for (policy_index, policy) in policies.iter().enumerate() {
            for (statement_index, statement) in policy.statements.iter().enumerate() {
                let id = (policy_index as u32, statement_index as u32);
                if statement.not_action() {
                    always.push(id);
                    continue;
                }
                for pattern in statement.action_patterns() {
                    let literal = &pattern[..pattern.find(['*', '?']).unwrap_or(pattern.len())];
                    lengths.insert(literal.len());
                    by_prefix.entry(literal.to_string()).or_default().push(id);
                }
            }
        }
        PolicySet {
            policies,
            by_prefix,
            lengths: lengths.into_iter().collect(),
            always,
        }
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// AWS's evaluation over the statements that can apply: explicit Deny beats Allow (the first
    /// allowing statement in policy order is named), which beats the implicit deny.
    pub fn evaluate(&self, context: &RequestContext) -> Decision {
        let action = context.action.to_ascii_lowercase();
        let mut candidates: Vec<(u32, u32)> = self.always.clone();
        for &length in &self.lengths {
            if length > action.len() {
                break;
            }
            if let Some(found) = action.get(..length).and_then(|prefix| self.by_prefix.get(prefix)) {
                candidates.extend_from_slice(found);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut allow = None;
        for (policy_index, statement_index) in candidates {
            let statement = &self.policies[policy_index as usize].statements[statement_index as usize];
            if !statement.matches_lowered(context, &action) {
                continue;
            }
            let decided = (policy_index as usize, statement_index as usize, statement.sid.clone());
            match statement.effect {
                crate::Effect::Deny => {
                    return Decision::ExplicitDeny {
                        policy: decided.0,
                        statement: decided.1,
                        sid: decided.2,
                    };
                }
                crate::Effect::Allow => {
                    allow.get_or_insert(Decision::Allow {
                        policy: decided.0,
                        statement: decided.1,
                        sid: decided.2,
                    });
                }
            }
        }
        allow.unwrap_or(Decision::ImplicitDeny)
    }
}
