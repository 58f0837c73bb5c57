//! The expression language inside `#{...}` (reference §e): parsing, values, built-in functions,
//! Joda-Time date patterns, and evaluation against a caller-supplied scope.
//!
//! Pure: no clock, no I/O. What a name means (a field, a parameter, a runtime field of an
//! instance, a referenced object) is the scope's business.

mod format;
mod functions;
mod parse;
mod scope;

use chrono::NaiveDateTime;

pub use format::{format_date_time, format_date_time_in};
pub use parse::{BinaryOperator, Expr, ExprKind, parse};
pub use scope::{ComponentScope, MASK};

/// A parse or evaluation problem, with the byte position inside the expression text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at position {position})")]
pub struct ExpressionError {
    pub position: usize,
    pub message: String,
}

impl ExpressionError {
    pub fn new(position: usize, message: impl Into<String>) -> Self {
        ExpressionError {
            position,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Integer(i64),
    Double(f64),
    String(String),
    Boolean(bool),
    /// A UTC date and time (what every runtime field and date function gives).
    DateTime(NaiveDateTime),
    /// The result of `inTimeZone`: an instant (UTC) shown in an IANA zone. Date functions work
    /// on its local time and keep the zone; `format` shows the zone's name and offset.
    Zoned(NaiveDateTime, chrono_tz::Tz),
    /// A reference to another object, by id.
    Ref(String),
    List(Vec<Value>),
}

impl Value {
    /// How a value reads when spliced into a string: DateTime as `YYYY-MM-DDTHH:MM:SS`, a
    /// Double always with a fraction (Java's `4.0`), a reference as the object's id.
    pub fn render(&self) -> String {
        match self {
            Value::Integer(value) => value.to_string(),
            Value::Double(value) => {
                if value.fract() == 0.0 && value.abs() < 1e15 {
                    format!("{value:.1}")
                } else {
                    value.to_string()
                }
            }
            Value::String(text) => text.clone(),
            Value::Boolean(flag) => flag.to_string(),
            Value::DateTime(time) => time.format("%Y-%m-%dT%H:%M:%S").to_string(),
            Value::Zoned(instant, zone) => {
                use chrono::TimeZone;
                zone.from_utc_datetime(instant).format("%Y-%m-%dT%H:%M:%S").to_string()
            }
            Value::Ref(id) => id.clone(),
            Value::List(values) => values.iter().map(Value::render).collect::<Vec<_>>().join(","),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Integer(_) => "an integer",
            Value::Double(_) => "a number",
            Value::String(_) => "a string",
            Value::Boolean(_) => "a boolean",
            Value::DateTime(_) | Value::Zoned(..) => "a datetime",
            Value::Ref(_) => "a reference",
            Value::List(_) => "a list",
        }
    }
}

/// What names mean where an expression is evaluated.
pub trait Scope {
    /// A bare name: a field of the current object, a parameter (`myX`, `*myX`), or a runtime
    /// field (`@scheduledStartTime`). `None` when nothing by that name is in scope.
    fn resolve(&self, name: &str) -> Option<Value>;
    /// `object.name` where `object` evaluated to a reference.
    fn member(&self, object_id: &str, name: &str) -> Option<Value>;
}

/// Function names the language knows (reference §e.5, plus plusPeriod/minusPeriod).
pub const FUNCTIONS: &[&str] = &[
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "dayOfYear",
    "plusMinutes",
    "plusHours",
    "plusDays",
    "plusWeeks",
    "plusMonths",
    "plusYears",
    "minusMinutes",
    "minusHours",
    "minusDays",
    "minusWeeks",
    "minusMonths",
    "minusYears",
    "yesterday",
    "midnight",
    "firstOfMonth",
    "sunday",
    "makeDate",
    "makeDateTime",
    "format",
    "plusPeriod",
    "minusPeriod",
    "inTimeZone",
];

/// Problems a parsed expression shows without being evaluated: calls of unknown functions.
pub fn static_problems(expression: &Expr) -> Vec<ExpressionError> {
    let mut problems = Vec::new();
    let mut stack = vec![expression];
    while let Some(node) = stack.pop() {
        match &node.kind {
            ExprKind::Call(name, arguments) => {
                if !FUNCTIONS.contains(&name.as_str()) {
                    problems.push(ExpressionError::new(
                        node.position,
                        format!("'{name}' is not a function of the expression language"),
                    ));
                }
                stack.extend(arguments.iter());
            }
            ExprKind::Member(object, _) | ExprKind::Negate(object) => stack.push(object),
            ExprKind::Binary(_, left, right) => {
                stack.push(left);
                stack.push(right);
            }
            ExprKind::Integer(_) | ExprKind::Double(_) | ExprKind::String(_) | ExprKind::Name(_) => {}
        }
    }
    problems.sort_by_key(|problem| problem.position);
    problems
}

/// Evaluates one expression.
pub fn evaluate(expression: &str, scope: &dyn Scope) -> Result<Value, ExpressionError> {
    let tree = parse(expression)?;
    functions::evaluate(&tree, scope)
}

/// Evaluates a string with any number of `#{...}` parts. A list-valued part gives several
/// results, one per element (reference §e.4).
pub fn evaluate_template(text: &str, scope: &dyn Scope) -> Result<Vec<String>, ExpressionError> {
    let spans = crate::expression_scan::expressions(text)
        .map_err(|error| ExpressionError::new(error.offset, "the expression is not closed with '}'"))?;
    let mut results = vec![String::new()];
    let mut cursor = 0;
    for span in spans {
        let literal = &text[cursor..span.offset];
        let value = evaluate(span.body, scope)
            .map_err(|error| ExpressionError::new(span.offset + 2 + error.position, error.message))?;
        let parts: Vec<String> = match value {
            Value::List(values) => values.iter().map(Value::render).collect(),
            single => vec![single.render()],
        };
        if results.len().saturating_mul(parts.len()) > functions::MAX_LIST_VALUES {
            return Err(ExpressionError::new(
                span.offset,
                format!(
                    "the value would expand to more than {} values",
                    functions::MAX_LIST_VALUES
                ),
            ));
        }
        results = results
            .iter()
            .flat_map(|prefix| parts.iter().map(move |part| format!("{prefix}{literal}{part}")))
            .collect();
        cursor = span.offset + span.body.len() + 3;
    }
    let tail = &text[cursor..];
    Ok(results.into_iter().map(|prefix| format!("{prefix}{tail}")).collect())
}

#[cfg(test)]
mod tests;
