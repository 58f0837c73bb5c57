//! Condition operators (reference §1.3) with AWS's rules for absent keys, negation, `IfExists`
//! and the `ForAnyValue` / `ForAllValues` set qualifiers.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::parse::expand;
use crate::{RequestContext, pattern};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnLike,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone)]
pub struct Condition {
    comparison: Comparison,
    negated: bool,
    if_exists: bool,
    set: SetQualifier,
    key: String,
    values: Vec<String>,
    /// The operator as the policy writes it (for explanations).
    operator: String,
}

fn operator(name: &str) -> Option<(Comparison, bool)> {
    use Comparison::*;
    Some(match name {
        "StringEquals" => (StringEquals, false),
        "StringNotEquals" => (StringEquals, true),
        "StringEqualsIgnoreCase" => (StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (StringEqualsIgnoreCase, true),
        "StringLike" => (StringLike, false),
        "StringNotLike" => (StringLike, true),
        "NumericEquals" => (NumericEquals, false),
        "NumericNotEquals" => (NumericEquals, true),
        "NumericLessThan" => (NumericLessThan, false),
        "NumericLessThanEquals" => (NumericLessThanEquals, false),
        "NumericGreaterThan" => (NumericGreaterThan, false),
        "NumericGreaterThanEquals" => (NumericGreaterThanEquals, false),
        "DateEquals" => (DateEquals, false),
        "DateNotEquals" => (DateEquals, true),
        "DateLessThan" => (DateLessThan, false),
        "DateLessThanEquals" => (DateLessThanEquals, false),
        "DateGreaterThan" => (DateGreaterThan, false),
        "DateGreaterThanEquals" => (DateGreaterThanEquals, false),
        "Bool" => (Bool, false),
        "BinaryEquals" => (BinaryEquals, false),
        "IpAddress" => (IpAddress, false),
        "NotIpAddress" => (IpAddress, true),
        "ArnEquals" | "ArnLike" => (ArnLike, false),
        "ArnNotEquals" | "ArnNotLike" => (ArnLike, true),
        "Null" => (Null, false),
        _ => return None,
    })
}

fn date(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(seconds) = text.parse::<i64>() {
        return DateTime::from_timestamp(seconds, 0);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|time| time.and_utc())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|day| day.and_hms_opt(0, 0, 0))
                .map(|time| time.and_utc())
        })
}

fn in_network(address: &str, network: &str) -> bool {
    let Ok(address) = address.parse::<IpAddr>() else {
        return false;
    };
    let (base, bits) = match network.split_once('/') {
        Some((base, bits)) => (base, bits.parse::<u32>().ok()),
        None => (network, None),
    };
    let Ok(base) = base.parse::<IpAddr>() else { return false };
    match (address, base) {
        (IpAddr::V4(address), IpAddr::V4(base)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(address) & mask == u32::from(base) & mask
        }
        (IpAddr::V6(address), IpAddr::V6(base)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(address) & mask == u128::from(base) & mask
        }
        _ => false,
    }
}

impl Condition {
    pub fn new(name: &str, key: &str, values: Vec<String>) -> Result<Condition, String> {
        let (set, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (SetQualifier::ForAnyValue, rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (SetQualifier::ForAllValues, rest)
        } else {
            (SetQualifier::None, name)
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let (comparison, negated) = operator(base).ok_or_else(|| format!("'{name}' is not a condition operator"))?;
        if comparison == Comparison::Null && if_exists {
            return Err("Null cannot take IfExists".into());
        }
        for value in &values {
            let valid = match comparison {
                Comparison::NumericEquals
                | Comparison::NumericLessThan
                | Comparison::NumericLessThanEquals
                | Comparison::NumericGreaterThan
                | Comparison::NumericGreaterThanEquals => value.parse::<f64>().is_ok(),
                Comparison::DateEquals
                | Comparison::DateLessThan
                | Comparison::DateLessThanEquals
                | Comparison::DateGreaterThan
                | Comparison::DateGreaterThanEquals => date(value).is_some(),
                Comparison::Bool | Comparison::Null => {
                    value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
                }
                Comparison::IpAddress => value
                    .split('/')
                    .next()
                    .is_some_and(|base| base.parse::<IpAddr>().is_ok()),
                _ => true,
            };
            if !valid && !value.contains("${") {
                return Err(format!("'{value}' is not a valid value for {name} on '{key}'"));
            }
        }
        Ok(Condition {
            comparison,
            negated,
            if_exists,
            set,
            key: key.to_ascii_lowercase(),
            values,
            operator: name.to_string(),
        })
    }

    /// Why the condition does not hold, in words: the operator, the key, what the policy wants
    /// and what the request has.
    pub fn explain_failure(&self, context: &RequestContext) -> String {
        let request = match context.values(&self.key).filter(|values| !values.is_empty()) {
            Some(values) => format!("the request has {values:?}"),
            None => "the request does not have the key".to_string(),
        };
        format!(
            "condition {} on {} with {:?} does not hold: {request}",
            self.operator, self.key, self.values
        )
    }

    /// One request value against one policy value, for the positive form of the operator.
    fn compare(&self, request: &str, policy: &str) -> bool {
        use Comparison::*;
        match self.comparison {
            StringEquals => request == policy,
            StringEqualsIgnoreCase => request.eq_ignore_ascii_case(policy),
            StringLike => pattern::glob(policy, request, false),
            NumericEquals | NumericLessThan | NumericLessThanEquals | NumericGreaterThan | NumericGreaterThanEquals => {
                let (Ok(request), Ok(policy)) = (request.parse::<f64>(), policy.parse::<f64>()) else {
                    return false;
                };
                match self.comparison {
                    NumericEquals => request == policy,
                    NumericLessThan => request < policy,
                    NumericLessThanEquals => request <= policy,
                    NumericGreaterThan => request > policy,
                    _ => request >= policy,
                }
            }
            DateEquals | DateLessThan | DateLessThanEquals | DateGreaterThan | DateGreaterThanEquals => {
                let (Some(request), Some(policy)) = (date(request), date(policy)) else {
                    return false;
                };
                match self.comparison {
                    DateEquals => request == policy,
                    DateLessThan => request < policy,
                    DateLessThanEquals => request <= policy,
                    DateGreaterThan => request > policy,
                    _ => request >= policy,
                }
            }
            Bool => request.eq_ignore_ascii_case(policy),
            BinaryEquals => request == policy,
            IpAddress => in_network(request, policy),
            ArnLike => pattern::arn(policy, request),
            Null => false,
        }
    }

    /// Whether one request value satisfies the condition (negation applied: a negated operator
    /// holds when the value matches none of the policy values).
    fn satisfied_by(&self, request: &str, context: &RequestContext, variables: bool) -> bool {
        let expands = matches!(
            self.comparison,
            Comparison::StringEquals
                | Comparison::StringEqualsIgnoreCase
                | Comparison::StringLike
                | Comparison::ArnLike
                | Comparison::Bool
        );
        let matched = self.values.iter().any(|value| {
            let value = if variables && expands {
                expand(value, context)
            } else {
                Some(std::borrow::Cow::Borrowed(value.as_str()))
            };
            // A variable without a value matches nothing.
            value.is_some_and(|value| self.compare(request, &value))
        });
        matched != self.negated
    }

    pub fn holds(&self, context: &RequestContext, variables: bool) -> bool {
        let present = context.values(&self.key).filter(|values| !values.is_empty());
        if self.comparison == Comparison::Null {
            let wants_absent = self.values.iter().any(|value| value.eq_ignore_ascii_case("true"));
            return present.is_none() == wants_absent;
        }
        let Some(values) = present else {
            return match self.set {
                SetQualifier::ForAllValues => true,
                // IfExists: "if the key is not present, the condition evaluates to true",
                // whatever the operator.
                SetQualifier::ForAnyValue => self.if_exists,
                SetQualifier::None => self.if_exists || self.negated,
            };
        };
        match self.set {
            SetQualifier::ForAllValues => values.iter().all(|value| self.satisfied_by(value, context, variables)),
            SetQualifier::ForAnyValue | SetQualifier::None => {
                values.iter().any(|value| self.satisfied_by(value, context, variables))
            }
        }
    }
}
