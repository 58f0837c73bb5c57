//! The one place the server reads the time, so tests can substitute their own.

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods, reason = "this is the one clock")]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Tests only (`sluice serve --clock-file`): the time written in a file, so a test can move a
/// server through days of schedule in seconds. Falls back to the system clock while the file is
/// missing or unreadable.
pub struct FileClock {
    path: std::path::PathBuf,
}

impl FileClock {
    pub fn new(path: std::path::PathBuf) -> FileClock {
        FileClock { path }
    }
}

impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| DateTime::parse_from_rfc3339(text.trim()).ok())
            .map_or_else(|| SystemClock.now(), |time| time.with_timezone(&Utc))
    }
}

/// DateTime as Data Pipeline renders it: `YYYY-MM-DDTHH:MM:SS`, UTC, no suffix.
pub fn render(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S").to_string()
}
