//! Joda-Time `DateTimeFormat` patterns for `format()` (reference §e.6). `YYYY` is the year of
//! era, not the week-year; quoted text is literal; an unknown letter is an error.

use chrono::{Datelike, NaiveDateTime, Offset, TimeZone, Timelike, Weekday};
use chrono_tz::{OffsetName, Tz};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn padded(value: i64, width: usize) -> String {
    format!("{value:0width$}")
}

fn text(full: &str, count: usize) -> String {
    if count >= 4 {
        full.to_string()
    } else {
        full.chars().take(3).collect()
    }
}

/// Formats a UTC time.
pub fn format_date_time(time: NaiveDateTime, pattern: &str) -> Result<String, String> {
    format_date_time_in(time, None, pattern)
}

/// The zone's abbreviation, offset in seconds and id at an instant (`None`: UTC).
fn zone_facts(zone: Option<(Tz, NaiveDateTime)>) -> (String, i32, String) {
    let Some((zone, instant)) = zone else {
        return ("UTC".into(), 0, "UTC".into());
    };
    let offset = zone.offset_from_utc_datetime(&instant);
    (
        offset.abbreviation().unwrap_or(zone.name()).to_string(),
        offset.fix().local_minus_utc(),
        zone.name().to_string(),
    )
}

fn offset_text(seconds: i32, colon: bool) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    let (hours, minutes) = (minutes / 60, minutes % 60);
    if colon {
        format!("{sign}{hours:02}:{minutes:02}")
    } else {
        format!("{sign}{hours:02}{minutes:02}")
    }
}

/// Formats a local time; `zone` (with the instant, for the offset in force then) is what `z` and
/// `Z` show, UTC when `None`. `zzzz` gives the zone id (Joda gives a long name such as "Pacific
/// Standard Time", which the zone database does not carry).
pub fn format_date_time_in(
    time: NaiveDateTime,
    zone: Option<(Tz, NaiveDateTime)>,
    pattern: &str,
) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut index = 0;
    while index < chars.len() {
        let letter = chars[index];
        if letter == '\'' {
            // '' is a quote; 'text' is literal.
            if chars.get(index + 1) == Some(&'\'') {
                out.push('\'');
                index += 2;
                continue;
            }
            let mut end = index + 1;
            while end < chars.len() {
                if chars[end] == '\'' {
                    if chars.get(end + 1) == Some(&'\'') {
                        out.push('\'');
                        end += 2;
                        continue;
                    }
                    break;
                }
                out.push(chars[end]);
                end += 1;
            }
            if end == chars.len() {
                return Err(format!("the quoted text in pattern '{pattern}' is not closed"));
            }
            index = end + 1;
            continue;
        }
        if !letter.is_ascii_alphabetic() {
            out.push(letter);
            index += 1;
            continue;
        }
        let mut count = 1;
        while chars.get(index + count) == Some(&letter) {
            count += 1;
        }
        index += count;
        let year = i64::from(time.year());
        let rendered = match letter {
            'G' => "AD".to_string(),
            'C' => padded(year / 100, count),
            'Y' | 'y' => {
                if count == 2 {
                    padded(year.rem_euclid(100), 2)
                } else {
                    padded(year, count)
                }
            }
            'x' => {
                let week_year = i64::from(time.iso_week().year());
                if count == 2 {
                    padded(week_year.rem_euclid(100), 2)
                } else {
                    padded(week_year, count)
                }
            }
            'w' => padded(i64::from(time.iso_week().week()), count),
            'e' => padded(i64::from(time.weekday().number_from_monday()), count),
            'E' => text(weekday_name(time.weekday()), count),
            'D' => padded(i64::from(time.ordinal()), count),
            'M' => {
                if count >= 3 {
                    text(MONTHS[time.month0() as usize], count)
                } else {
                    padded(i64::from(time.month()), count)
                }
            }
            'd' => padded(i64::from(time.day()), count),
            'a' => (if time.hour() < 12 { "AM" } else { "PM" }).to_string(),
            'K' => padded(i64::from(time.hour() % 12), count),
            'h' => padded(
                i64::from(if time.hour().is_multiple_of(12) {
                    12
                } else {
                    time.hour() % 12
                }),
                count,
            ),
            'H' => padded(i64::from(time.hour()), count),
            'k' => padded(i64::from(if time.hour() == 0 { 24 } else { time.hour() }), count),
            'm' => padded(i64::from(time.minute()), count),
            's' => padded(i64::from(time.second()), count),
            'S' => {
                let millis = format!("{:03}", time.nanosecond() / 1_000_000);
                let mut fraction: String = millis.chars().chain(std::iter::repeat('0')).take(count).collect();
                fraction.truncate(count);
                fraction
            }
            'z' => {
                let (abbreviation, _, id) = zone_facts(zone);
                if count >= 4 { id } else { abbreviation }
            }
            'Z' => {
                let (_, offset, id) = zone_facts(zone);
                match count {
                    1 => offset_text(offset, false),
                    2 => offset_text(offset, true),
                    _ => id,
                }
            }
            other => {
                return Err(format!(
                    "'{other}' is not a letter of Joda date patterns (in '{pattern}')"
                ));
            }
        };
        out.push_str(&rendered);
    }
    Ok(out)
}
