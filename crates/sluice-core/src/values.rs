//! Literal value syntaxes of definitions (reference §e.1): Period, DateTime, Boolean, numbers.

use chrono::NaiveDateTime;

/// A calendar-aware duration as definitions write it: `15 minutes`, `1 Day`, `2 weeks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub count: u32,
    pub unit: PeriodUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeriodUnit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    pub fn parse(text: &str) -> Result<Period, String> {
        let mut parts = text.split_whitespace();
        let (Some(count), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "'{text}' is not a period: expected '<number> <unit>', e.g. '15 minutes'"
            ));
        };
        let count: u32 = count
            .parse()
            .ok()
            .filter(|count| *count > 0)
            .ok_or_else(|| format!("'{text}' is not a period: '{count}' is not a positive whole number"))?;
        let unit = match unit.to_ascii_lowercase().as_str() {
            "minute" | "minutes" => PeriodUnit::Minute,
            "hour" | "hours" => PeriodUnit::Hour,
            "day" | "days" => PeriodUnit::Day,
            "week" | "weeks" => PeriodUnit::Week,
            "month" | "months" => PeriodUnit::Month,
            "year" | "years" => PeriodUnit::Year,
            other => {
                return Err(format!(
                    "'{text}' is not a period: unit '{other}' is not one of minutes, hours, days, weeks, months, years"
                ));
            }
        };
        Ok(Period { count, unit })
    }

    /// Lower bound of the period's length in minutes (a month counts 28 days, a year 365): enough
    /// to check the service limits, which are stated in minutes and years.
    pub fn approximate_minutes(&self) -> u64 {
        let per_unit: u64 = match self.unit {
            PeriodUnit::Minute => 1,
            PeriodUnit::Hour => 60,
            PeriodUnit::Day => 60 * 24,
            PeriodUnit::Week => 60 * 24 * 7,
            PeriodUnit::Month => 60 * 24 * 28,
            PeriodUnit::Year => 60 * 24 * 365,
        };
        u64::from(self.count) * per_unit
    }
}

/// `YYYY-MM-DDTHH:MM:SS`, UTC, no zone suffix: the only DateTime form definitions accept.
pub fn parse_date_time(text: &str) -> Result<NaiveDateTime, String> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 19
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            10 => *byte == b'T',
            13 | 16 => *byte == b':',
            _ => byte.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(format!(
            "'{text}' is not a datetime: expected YYYY-MM-DDTHH:MM:SS in UTC"
        ));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .map_err(|_| format!("'{text}' is not a datetime: no such calendar date or time"))
}

pub fn parse_boolean(text: &str) -> Result<bool, String> {
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!("'{text}' is not a boolean: expected true or false"))
    }
}

pub fn parse_integer(text: &str) -> Result<i64, String> {
    text.trim().parse().map_err(|_| format!("'{text}' is not an integer"))
}

pub fn parse_double(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite())
        .ok_or_else(|| format!("'{text}' is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_accept_the_spellings_samples_use() {
        for text in [
            "15 minutes",
            "1 Day",
            "1 days",
            "15 Minutes",
            "1 hours",
            "70 Minutes",
            "1 Week",
            "3 years",
        ] {
            assert!(Period::parse(text).is_ok(), "{text}");
        }
        for text in [
            "",
            "15",
            "0 minutes",
            "-1 day",
            "1 fortnight",
            "1 day extra",
            "1.5 hours",
        ] {
            assert!(Period::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn datetimes_are_strict() {
        assert!(parse_date_time("2012-12-12T00:00:00").is_ok());
        for text in [
            "2012-12-12 00:00:00",
            "2012-12-12T00:00:00Z",
            "2012-02-30T00:00:00",
            "bad-time",
            "+2012-12-12T00:00:0",
        ] {
            assert!(parse_date_time(text).is_err(), "{text}");
        }
    }
}
