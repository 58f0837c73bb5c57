//! Schedule math (reference §g): the intervals a `Schedule` defines, when each interval's
//! instance becomes runnable under `cron` or `timeseries`, and which are due at a given time.
//! Pure: the activation time and "now" are arguments.

use chrono::{Duration, Months, NaiveDateTime};

use crate::values::{Period, PeriodUnit, parse_date_time, parse_integer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleType {
    /// Runnable at the start of its interval (the default).
    Cron,
    /// Runnable at the end of its interval.
    Timeseries,
    /// One run per activation; no Schedule.
    OnDemand,
}

impl ScheduleType {
    pub fn parse(text: Option<&str>) -> Result<ScheduleType, String> {
        match text.map(str::to_ascii_lowercase).as_deref() {
            None | Some("cron") => Ok(ScheduleType::Cron),
            Some("timeseries") => Ok(ScheduleType::Timeseries),
            Some("ondemand") => Ok(ScheduleType::OnDemand),
            Some(other) => Err(format!("'{other}' is not a schedule type (cron, timeseries, ondemand)")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    At(NaiveDateTime),
    FirstActivation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Never,
    /// No interval starts at or after this time.
    Before(NaiveDateTime),
    Occurrences(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub period: Period,
    pub start: Start,
    pub end: End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub index: u32,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

/// `start + amount × unit`, with calendar months and years clamping to the month's end as Joda
/// does. Always computed from the schedule's start, so clamping never accumulates (31 Jan, then
/// 28 Feb, then 31 Mar).
fn advance(start: NaiveDateTime, unit: PeriodUnit, amount: u64) -> Option<NaiveDateTime> {
    let amount_i64 = i64::try_from(amount).ok()?;
    match unit {
        PeriodUnit::Minute => start.checked_add_signed(Duration::try_minutes(amount_i64)?),
        PeriodUnit::Hour => start.checked_add_signed(Duration::try_hours(amount_i64)?),
        PeriodUnit::Day => start.checked_add_signed(Duration::try_days(amount_i64)?),
        PeriodUnit::Week => start.checked_add_signed(Duration::try_weeks(amount_i64)?),
        PeriodUnit::Month => start.checked_add_months(Months::new(u32::try_from(amount).ok()?)),
        PeriodUnit::Year => start.checked_add_months(Months::new(u32::try_from(amount.checked_mul(12)?).ok()?)),
    }
}

impl Schedule {
    /// Builds a schedule from a Schedule object's (already substituted) field values.
    pub fn from_fields(
        period: Option<&str>,
        start_date_time: Option<&str>,
        start_at: Option<&str>,
        end_date_time: Option<&str>,
        occurrences: Option<&str>,
    ) -> Result<Schedule, String> {
        let period = Period::parse(period.ok_or("'period' is required")?)?;
        let start = match (start_date_time, start_at) {
            (Some(text), None) => Start::At(parse_date_time(text)?),
            (None, Some(text)) if text.eq_ignore_ascii_case("FIRST_ACTIVATION_DATE_TIME") => Start::FirstActivation,
            (None, Some(other)) => return Err(format!("'startAt' is '{other}', not FIRST_ACTIVATION_DATE_TIME")),
            (Some(_), Some(_)) => return Err("only one of 'startDateTime' and 'startAt' may be set".into()),
            (None, None) => return Err("one of 'startDateTime' and 'startAt' is required".into()),
        };
        let end = match (end_date_time, occurrences) {
            (None, None) => End::Never,
            (Some(text), None) => End::Before(parse_date_time(text)?),
            (None, Some(text)) => {
                let count = parse_integer(text)?;
                End::Occurrences(
                    u32::try_from(count)
                        .ok()
                        .filter(|count| *count > 0)
                        .ok_or_else(|| format!("'occurrences' must be positive, not {count}"))?,
                )
            }
            (Some(_), Some(_)) => return Err("only one of 'endDateTime' and 'occurrences' may be set".into()),
        };
        if let (Start::At(start), End::Before(end)) = (start, end)
            && end <= start
        {
            return Err("'endDateTime' must be later than the start".into());
        }
        Ok(Schedule { period, start, end })
    }

    pub fn first_start(&self, first_activation: NaiveDateTime) -> NaiveDateTime {
        match self.start {
            Start::At(time) => time,
            Start::FirstActivation => first_activation,
        }
    }

    /// Interval `index`, or `None` past the schedule's end.
    pub fn interval(&self, index: u32, first_activation: NaiveDateTime) -> Option<Interval> {
        if let End::Occurrences(count) = self.end
            && index >= count
        {
            return None;
        }
        let origin = self.first_start(first_activation);
        let count = u64::from(self.period.count);
        let start = advance(origin, self.period.unit, u64::from(index) * count)?;
        let end = advance(origin, self.period.unit, (u64::from(index) + 1) * count)?;
        if let End::Before(limit) = self.end
            && start >= limit
        {
            return None;
        }
        Some(Interval { index, start, end })
    }

    /// The last interval that ends no later than `end`, if any.
    pub fn last_ending_by(&self, end: NaiveDateTime, first_activation: NaiveDateTime) -> Option<Interval> {
        let origin = self.first_start(first_activation);
        let minutes = (end - origin).num_minutes();
        let length = i64::try_from(self.period.approximate_minutes()).ok()?.max(1);
        // Months count 28 days here, so the estimate is never too small: step down from it.
        let mut index = u32::try_from((minutes / length).clamp(0, i64::from(u32::MAX))).ok()?;
        loop {
            if let Some(interval) = self.interval(index, first_activation)
                && interval.end <= end
            {
                // Step up too, in case the estimate fell short (it cannot for fixed units).
                let mut best = interval;
                while let Some(next) = best
                    .index
                    .checked_add(1)
                    .and_then(|next| self.interval(next, first_activation))
                {
                    if next.end > end {
                        break;
                    }
                    best = next;
                }
                return Some(best);
            }
            index = index.checked_sub(1)?;
        }
    }

    /// The index of the first interval starting after `time` (the cursor after an instance for
    /// an interval starting at `time`); `None` past the schedule's end or out of range.
    pub fn index_after(&self, time: NaiveDateTime, first_activation: NaiveDateTime) -> Option<u32> {
        let origin = self.first_start(first_activation);
        if time < origin {
            return Some(0);
        }
        let minutes = (time - origin).num_minutes();
        let length = i64::try_from(self.period.approximate_minutes()).ok()?.max(1);
        let mut index = u32::try_from((minutes / length + 1).clamp(0, i64::from(u32::MAX))).ok()?;
        // The estimate is never too small; step down while the interval before also starts after.
        while index > 0 {
            match self.interval(index - 1, first_activation) {
                Some(previous) if previous.start > time => index -= 1,
                None => index -= 1,
                Some(_) => break,
            }
        }
        Some(index)
    }

    /// The intervals from `from_index` on whose instances are runnable at `now`, at most `limit`
    /// of them, and whether the schedule has no interval left after them.
    pub fn due(
        &self,
        schedule_type: ScheduleType,
        first_activation: NaiveDateTime,
        now: NaiveDateTime,
        from_index: u32,
        limit: usize,
    ) -> (Vec<Interval>, bool) {
        let mut due = Vec::new();
        let mut index = from_index;
        loop {
            let Some(interval) = self.interval(index, first_activation) else {
                return (due, true);
            };
            if due.len() == limit || runnable_at(&interval, schedule_type) > now {
                return (due, false);
            }
            due.push(interval);
            index += 1;
        }
    }
}

/// When an interval's instance becomes runnable.
pub fn runnable_at(interval: &Interval, schedule_type: ScheduleType) -> NaiveDateTime {
    match schedule_type {
        ScheduleType::Timeseries => interval.end,
        ScheduleType::Cron | ScheduleType::OnDemand => interval.start,
    }
}

/// The backfill guard (reference §g.3): activating a schedule whose first interval began more
/// than `allowed` ago, without an explicit start time, is refused with this message.
pub fn backfill_problem(schedule: &Schedule, first_activation: NaiveDateTime, allowed: Duration) -> Option<String> {
    let first = schedule.first_start(first_activation);
    (first < first_activation - allowed).then(|| {
        format!(
            "the first scheduled start {} is more than {} hours before activation; pass startTimestamp to backfill from a chosen time",
            first.format("%Y-%m-%dT%H:%M:%S"),
            allowed.num_hours()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> NaiveDateTime {
        parse_date_time(text).expect("test time")
    }

    #[test]
    fn the_documented_hourly_month() {
        let schedule = Schedule::from_fields(
            Some("1 hour"),
            Some("2012-09-01T00:00:00"),
            None,
            Some("2012-10-01T00:00:00"),
            None,
        )
        .expect("valid");
        let first = schedule.interval(0, time("2020-01-01T00:00:00")).expect("first");
        assert_eq!(
            (first.start, first.end),
            (time("2012-09-01T00:00:00"), time("2012-09-01T01:00:00"))
        );
        assert_eq!(
            schedule
                .interval(719, time("2020-01-01T00:00:00"))
                .map(|interval| interval.start),
            Some(time("2012-09-30T23:00:00"))
        );
        assert_eq!(schedule.interval(720, time("2020-01-01T00:00:00")), None);
        let (due, finished) = schedule.due(
            ScheduleType::Cron,
            time("2020-01-01T00:00:00"),
            time("2030-01-01T00:00:00"),
            0,
            10_000,
        );
        assert_eq!((due.len(), finished), (720, true));
    }

    #[test]
    fn cron_runs_at_the_start_and_timeseries_at_the_end() {
        let schedule =
            Schedule::from_fields(Some("30 minutes"), Some("2026-01-01T22:00:00"), None, None, None).expect("valid");
        let activation = time("2026-01-01T21:00:00");
        let at = time("2026-01-01T22:10:00");
        let (cron, _) = schedule.due(ScheduleType::Cron, activation, at, 0, 10);
        let (series, _) = schedule.due(ScheduleType::Timeseries, activation, at, 0, 10);
        assert_eq!(cron.len(), 1);
        assert!(series.is_empty(), "the first timeseries run is at 22:30");
        let (series, finished) = schedule.due(ScheduleType::Timeseries, activation, time("2026-01-01T22:30:00"), 0, 10);
        assert_eq!((series.len(), finished), (1, false));
    }

    #[test]
    fn first_activation_and_occurrences() {
        let schedule = Schedule::from_fields(Some("1 Day"), None, Some("FIRST_ACTIVATION_DATE_TIME"), None, Some("3"))
            .expect("valid");
        let activation = time("2026-11-28T17:00:00");
        let (due, finished) = schedule.due(ScheduleType::Cron, activation, time("2030-01-01T00:00:00"), 0, 10);
        assert_eq!(
            due.iter().map(|interval| interval.start).collect::<Vec<_>>(),
            vec![
                time("2026-11-28T17:00:00"),
                time("2026-11-29T17:00:00"),
                time("2026-11-30T17:00:00")
            ]
        );
        assert!(finished);
        let (rest, _) = schedule.due(ScheduleType::Cron, activation, time("2026-11-29T12:00:00"), 1, 10);
        assert!(rest.is_empty(), "the second day's run is not due at noon before it");
    }

    #[test]
    fn month_periods_clamp_without_drifting() {
        let schedule =
            Schedule::from_fields(Some("1 month"), Some("2026-01-31T00:00:00"), None, None, None).expect("valid");
        let starts: Vec<_> = (0..4)
            .map(|index| {
                schedule
                    .interval(index, time("2026-01-01T00:00:00"))
                    .expect("interval")
                    .start
            })
            .collect();
        assert_eq!(
            starts,
            vec![
                time("2026-01-31T00:00:00"),
                time("2026-02-28T00:00:00"),
                time("2026-03-31T00:00:00"),
                time("2026-04-30T00:00:00")
            ]
        );
    }

    #[test]
    fn the_last_interval_ending_by_a_time() {
        let hourly =
            Schedule::from_fields(Some("1 hour"), Some("2026-01-01T00:00:00"), None, None, None).expect("valid");
        let activation = time("2026-01-01T00:00:00");
        let found = hourly
            .last_ending_by(time("2026-01-02T00:00:00"), activation)
            .expect("found");
        assert_eq!(found.start, time("2026-01-01T23:00:00"));
        let found = hourly
            .last_ending_by(time("2026-01-01T05:30:00"), activation)
            .expect("found");
        assert_eq!(found.start, time("2026-01-01T04:00:00"));
        assert_eq!(hourly.last_ending_by(time("2026-01-01T00:59:59"), activation), None);
        let monthly =
            Schedule::from_fields(Some("1 month"), Some("2026-01-31T00:00:00"), None, None, None).expect("valid");
        let found = monthly
            .last_ending_by(time("2027-01-01T00:00:00"), activation)
            .expect("found");
        assert_eq!(found.start, time("2026-11-30T00:00:00"));
        let limited =
            Schedule::from_fields(Some("1 day"), Some("2026-01-01T00:00:00"), None, None, Some("3")).expect("valid");
        let found = limited
            .last_ending_by(time("2027-01-01T00:00:00"), activation)
            .expect("found");
        assert_eq!(found.index, 2);
        assert_eq!(hourly.index_after(time("2026-01-01T05:00:00"), activation), Some(6));
        assert_eq!(hourly.index_after(time("2026-01-01T05:30:00"), activation), Some(6));
        assert_eq!(hourly.index_after(time("2025-12-31T00:00:00"), activation), Some(0));
        assert_eq!(monthly.index_after(time("2026-02-28T00:00:00"), activation), Some(2));
    }

    #[test]
    fn bad_schedules_and_the_backfill_guard() {
        assert!(Schedule::from_fields(Some("1 day"), None, None, None, None).is_err());
        assert!(
            Schedule::from_fields(
                Some("1 day"),
                Some("2026-01-02T00:00:00"),
                None,
                Some("2026-01-01T00:00:00"),
                None
            )
            .is_err()
        );
        assert!(Schedule::from_fields(Some("1 day"), Some("2026-01-02T00:00:00"), None, None, Some("0")).is_err());
        assert_eq!(ScheduleType::parse(Some("TIMESERIES")), Ok(ScheduleType::Timeseries));
        assert_eq!(ScheduleType::parse(None), Ok(ScheduleType::Cron));
        let old = Schedule::from_fields(Some("1 day"), Some("2026-01-01T00:00:00"), None, None, None).expect("valid");
        let problem = backfill_problem(&old, time("2026-11-28T00:00:00"), Duration::days(1)).expect("blocked");
        assert!(problem.contains("2026-01-01T00:00:00"), "{problem}");
        assert!(backfill_problem(&old, time("2026-01-01T12:00:00"), Duration::days(1)).is_none());
    }
}
