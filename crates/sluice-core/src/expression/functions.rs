//! Evaluation: arithmetic and concatenation (element-wise over lists), names through the scope,
//! and the built-in functions of reference §e.5.

use chrono::{Datelike, Duration, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;

use super::parse::{BinaryOperator, Expr, ExprKind};
use super::{ExpressionError, Scope, Value};
use crate::values::{Period, PeriodUnit};

fn error(expression: &Expr, message: impl Into<String>) -> ExpressionError {
    ExpressionError::new(expression.position, message)
}

pub fn evaluate(expression: &Expr, scope: &dyn Scope) -> Result<Value, ExpressionError> {
    match &expression.kind {
        ExprKind::Integer(value) => Ok(Value::Integer(*value)),
        ExprKind::Double(value) => Ok(Value::Double(*value)),
        ExprKind::String(text) => Ok(Value::String(text.clone())),
        ExprKind::Name(name) => scope
            .resolve(name)
            .ok_or_else(|| error(expression, format!("'{name}' is not defined here"))),
        ExprKind::Member(object, name) => {
            let target = evaluate(object, scope)?;
            match target {
                Value::Ref(id) => scope
                    .member(&id, name)
                    .ok_or_else(|| error(expression, format!("'{id}' has no field '{name}'"))),
                other => Err(error(
                    expression,
                    format!("'.{name}' needs a reference, found {}", other.type_name()),
                )),
            }
        }
        ExprKind::Negate(operand) => match evaluate(operand, scope)? {
            Value::Integer(value) => value
                .checked_neg()
                .map(Value::Integer)
                .ok_or_else(|| error(expression, "integer overflow")),
            Value::Double(value) => Ok(Value::Double(-value)),
            other => Err(error(expression, format!("cannot negate {}", other.type_name()))),
        },
        ExprKind::Binary(operator, left, right) => {
            let left = evaluate(left, scope)?;
            let right = evaluate(right, scope)?;
            binary(expression, *operator, left, right)
        }
        ExprKind::Call(name, arguments) => {
            let values = arguments
                .iter()
                .map(|argument| evaluate(argument, scope))
                .collect::<Result<Vec<_>, _>>()?;
            call(expression, name, values)
        }
    }
}

/// Most values a list result may hold, and most bytes a string result may have: an expression
/// comes from a definition, and must not be able to exhaust memory.
pub const MAX_LIST_VALUES: usize = 1_000;
pub const MAX_STRING_BYTES: usize = 1 << 20;

fn size(value: &Value) -> usize {
    match value {
        Value::List(values) => values.iter().map(size).sum::<usize>().max(1),
        _ => 1,
    }
}

fn binary(expression: &Expr, operator: BinaryOperator, left: Value, right: Value) -> Result<Value, ExpressionError> {
    if size(&left).saturating_mul(size(&right)) > MAX_LIST_VALUES {
        return Err(error(
            expression,
            format!("the result would hold more than {MAX_LIST_VALUES} values"),
        ));
    }
    // Lists apply element-wise: 'this is ' + myList is a list.
    match (left, right) {
        (Value::List(items), right) => items
            .into_iter()
            .map(|item| binary(expression, operator, item, right.clone()))
            .collect::<Result<_, _>>()
            .map(Value::List),
        (left, Value::List(items)) => items
            .into_iter()
            .map(|item| binary(expression, operator, left.clone(), item))
            .collect::<Result<_, _>>()
            .map(Value::List),
        (left @ Value::String(_), right) | (left, right @ Value::String(_)) if operator == BinaryOperator::Add => {
            let joined = format!("{}{}", left.render(), right.render());
            if joined.len() > MAX_STRING_BYTES {
                return Err(error(
                    expression,
                    format!("the string would be longer than {MAX_STRING_BYTES} bytes"),
                ));
            }
            Ok(Value::String(joined))
        }
        (Value::Integer(a), Value::Integer(b)) => match operator {
            BinaryOperator::Add => a
                .checked_add(b)
                .map(Value::Integer)
                .ok_or_else(|| error(expression, "integer overflow")),
            BinaryOperator::Subtract => a
                .checked_sub(b)
                .map(Value::Integer)
                .ok_or_else(|| error(expression, "integer overflow")),
            BinaryOperator::Multiply => a
                .checked_mul(b)
                .map(Value::Integer)
                .ok_or_else(|| error(expression, "integer overflow")),
            BinaryOperator::Divide => {
                if b == 0 {
                    Err(error(expression, "division by zero"))
                } else {
                    Ok(Value::Integer(a / b))
                }
            }
            BinaryOperator::Power => Ok(Value::Double((a as f64).powf(b as f64))),
        },
        (left, right) => {
            let (Some(a), Some(b)) = (as_double(&left), as_double(&right)) else {
                return Err(error(
                    expression,
                    format!("cannot combine {} and {}", left.type_name(), right.type_name()),
                ));
            };
            let result = match operator {
                BinaryOperator::Add => a + b,
                BinaryOperator::Subtract => a - b,
                BinaryOperator::Multiply => a * b,
                BinaryOperator::Divide => a / b,
                BinaryOperator::Power => a.powf(b),
            };
            if result.is_finite() {
                Ok(Value::Double(result))
            } else {
                Err(error(expression, "the result is not a finite number"))
            }
        }
    }
}

fn as_double(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(value) => Some(*value as f64),
        Value::Double(value) => Some(*value),
        _ => None,
    }
}

/// A datetime argument as its local time, and its zone and instant when it has a zone.
type Local = (NaiveDateTime, Option<(Tz, NaiveDateTime)>);

fn zoned(expression: &Expr, value: &Value) -> Result<Local, ExpressionError> {
    match value {
        Value::Zoned(instant, zone) => Ok((zone.from_utc_datetime(instant).naive_local(), Some((*zone, *instant)))),
        other => date_time(expression, other).map(|time| (time, None)),
    }
}

/// A local time in a zone as a value; a time that does not exist there (a DST gap) moves
/// forward by the gap, and an ambiguous one takes the earlier instant, as Joda does.
fn in_zone(local: NaiveDateTime, zone: Option<(Tz, NaiveDateTime)>) -> Value {
    match zone {
        None => Value::DateTime(local),
        Some((zone, _)) => Value::Zoned(instant_of(local, zone), zone),
    }
}

fn instant_of(local: NaiveDateTime, zone: Tz) -> NaiveDateTime {
    let mut candidate = local;
    for _ in 0..4 {
        match zone.from_local_datetime(&candidate) {
            LocalResult::Single(time) | LocalResult::Ambiguous(time, _) => return time.naive_utc(),
            LocalResult::None => candidate += Duration::minutes(30),
        }
    }
    local
}

/// Minutes and hours move the instant (an hour later is an hour later across a DST change);
/// days and longer move the local calendar, as Joda does.
fn shift_zoned(
    expression: &Expr,
    (time, zone): Local,
    unit: PeriodUnit,
    amount: i64,
) -> Result<Value, ExpressionError> {
    match (zone, unit) {
        (Some((zone, instant)), PeriodUnit::Minute | PeriodUnit::Hour) => {
            Ok(Value::Zoned(shift(expression, instant, unit, amount)?, zone))
        }
        _ => shift(expression, time, unit, amount).map(|local| in_zone(local, zone)),
    }
}

fn date_time(expression: &Expr, value: &Value) -> Result<NaiveDateTime, ExpressionError> {
    match value {
        Value::DateTime(time) => Ok(*time),
        // As an instant: what a zoned time is in UTC.
        Value::Zoned(instant, _) => Ok(*instant),
        Value::String(text) => crate::values::parse_date_time(text).map_err(|problem| error(expression, problem)),
        other => Err(error(
            expression,
            format!("expected a datetime, found {}", other.type_name()),
        )),
    }
}

fn integer(expression: &Expr, value: &Value) -> Result<i64, ExpressionError> {
    match value {
        Value::Integer(value) => Ok(*value),
        Value::String(text) => text
            .trim()
            .parse()
            .map_err(|_| error(expression, format!("'{text}' is not an integer"))),
        other => Err(error(
            expression,
            format!("expected an integer, found {}", other.type_name()),
        )),
    }
}

fn shift(
    expression: &Expr,
    time: NaiveDateTime,
    unit: PeriodUnit,
    amount: i64,
) -> Result<NaiveDateTime, ExpressionError> {
    let overflow = || error(expression, "the date is out of range");
    match unit {
        PeriodUnit::Minute => time
            .checked_add_signed(Duration::try_minutes(amount).ok_or_else(overflow)?)
            .ok_or_else(overflow),
        PeriodUnit::Hour => time
            .checked_add_signed(Duration::try_hours(amount).ok_or_else(overflow)?)
            .ok_or_else(overflow),
        PeriodUnit::Day => time
            .checked_add_signed(Duration::try_days(amount).ok_or_else(overflow)?)
            .ok_or_else(overflow),
        PeriodUnit::Week => time
            .checked_add_signed(Duration::try_weeks(amount).ok_or_else(overflow)?)
            .ok_or_else(overflow),
        // Calendar months and years clamp to the month's last day, as Joda does.
        PeriodUnit::Month | PeriodUnit::Year => {
            let months = if unit == PeriodUnit::Year {
                amount.checked_mul(12).ok_or_else(overflow)?
            } else {
                amount
            };
            let magnitude = Months::new(u32::try_from(months.unsigned_abs()).map_err(|_| overflow())?);
            if months >= 0 {
                time.checked_add_months(magnitude)
            } else {
                time.checked_sub_months(magnitude)
            }
            .ok_or_else(overflow)
        }
    }
}

fn arity(expression: &Expr, name: &str, values: &[Value], wanted: usize) -> Result<(), ExpressionError> {
    if values.len() == wanted {
        Ok(())
    } else {
        Err(error(
            expression,
            format!("{name}() takes {wanted} argument(s), got {}", values.len()),
        ))
    }
}

fn call(expression: &Expr, name: &str, values: Vec<Value>) -> Result<Value, ExpressionError> {
    let shift_unit = |suffix: &str| match suffix {
        "Minutes" => Some(PeriodUnit::Minute),
        "Hours" => Some(PeriodUnit::Hour),
        "Days" => Some(PeriodUnit::Day),
        "Weeks" => Some(PeriodUnit::Week),
        "Months" => Some(PeriodUnit::Month),
        "Years" => Some(PeriodUnit::Year),
        _ => None,
    };
    if let Some((sign, unit)) = name
        .strip_prefix("plus")
        .and_then(|suffix| shift_unit(suffix).map(|unit| (1, unit)))
        .or_else(|| {
            name.strip_prefix("minus")
                .and_then(|suffix| shift_unit(suffix).map(|unit| (-1, unit)))
        })
    {
        arity(expression, name, &values, 2)?;
        let time = zoned(expression, &values[0])?;
        let amount = integer(expression, &values[1])?;
        return shift_zoned(expression, time, unit, sign * amount);
    }
    match name {
        "year" | "month" | "day" | "hour" | "minute" | "dayOfYear" => {
            arity(expression, name, &values, 1)?;
            let (time, _) = zoned(expression, &values[0])?;
            let part = match name {
                "year" => i64::from(time.year()),
                "month" => i64::from(time.month()),
                "day" => i64::from(time.day()),
                "hour" => i64::from(time.hour()),
                "minute" => i64::from(time.minute()),
                _ => i64::from(time.ordinal()),
            };
            Ok(Value::Integer(part))
        }
        "yesterday" => {
            arity(expression, name, &values, 1)?;
            shift_zoned(expression, zoned(expression, &values[0])?, PeriodUnit::Day, -1)
        }
        "midnight" => {
            arity(expression, name, &values, 1)?;
            let (time, zone) = zoned(expression, &values[0])?;
            Ok(in_zone(time.date().and_time(NaiveTime::MIN), zone))
        }
        "firstOfMonth" => {
            // The documented example keeps the time of day.
            arity(expression, name, &values, 1)?;
            let (time, zone) = zoned(expression, &values[0])?;
            time.with_day(1)
                .map(|time| in_zone(time, zone))
                .ok_or_else(|| error(expression, "the date is out of range"))
        }
        "sunday" => {
            arity(expression, name, &values, 1)?;
            let (time, zone) = zoned(expression, &values[0])?;
            let back = i64::from(time.weekday().num_days_from_sunday());
            shift_zoned(expression, (time, zone), PeriodUnit::Day, -back)
        }
        "makeDate" | "makeDateTime" => {
            let wanted = if name == "makeDate" { 3 } else { 5 };
            arity(expression, name, &values, wanted)?;
            let numbers = values
                .iter()
                .map(|value| integer(expression, value))
                .collect::<Result<Vec<_>, _>>()?;
            let as_u32 = |value: i64| u32::try_from(value).ok();
            let date = i32::try_from(numbers[0])
                .ok()
                .and_then(|year| NaiveDate::from_ymd_opt(year, as_u32(numbers[1])?, as_u32(numbers[2])?));
            let time = if wanted == 5 {
                NaiveTime::from_hms_opt(as_u32(numbers[3]).unwrap_or(99), as_u32(numbers[4]).unwrap_or(99), 0)
            } else {
                Some(NaiveTime::MIN)
            };
            match (date, time) {
                (Some(date), Some(time)) => Ok(Value::DateTime(date.and_time(time))),
                _ => Err(error(expression, format!("{name}() was given no such date or time"))),
            }
        }
        "format" => {
            arity(expression, name, &values, 2)?;
            let (time, zone) = zoned(expression, &values[0])?;
            let Value::String(pattern) = &values[1] else {
                return Err(error(expression, "format() takes a pattern string"));
            };
            super::format::format_date_time_in(time, zone, pattern)
                .map(Value::String)
                .map_err(|problem| error(expression, problem))
        }
        "plusPeriod" | "minusPeriod" => {
            arity(expression, name, &values, 2)?;
            let time = zoned(expression, &values[0])?;
            let Value::String(text) = &values[1] else {
                return Err(error(expression, format!("{name}() takes a period such as '1 day'")));
            };
            let period = Period::parse(text).map_err(|problem| error(expression, problem))?;
            let sign = if name == "plusPeriod" { 1 } else { -1 };
            shift_zoned(expression, time, period.unit, sign * i64::from(period.count))
        }
        "inTimeZone" => {
            arity(expression, name, &values, 2)?;
            let instant = date_time(expression, &values[0])?;
            let Value::String(zone_id) = &values[1] else {
                return Err(error(
                    expression,
                    "inTimeZone() takes a zone id such as 'America/Los_Angeles'",
                ));
            };
            let zone: Tz = zone_id.parse().map_err(|_| {
                error(
                    expression,
                    format!("'{zone_id}' is not a time zone id (IANA, such as 'America/Los_Angeles' or 'UTC')"),
                )
            })?;
            Ok(Value::Zoned(instant, zone))
        }
        other => Err(error(
            expression,
            format!("'{other}' is not a function of the expression language"),
        )),
    }
}
