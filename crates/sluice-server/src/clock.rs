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

/// DateTime as Data Pipeline renders it: `YYYY-MM-DDTHH:MM:SS`, UTC, no suffix.
pub fn render(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S").to_string()
}
