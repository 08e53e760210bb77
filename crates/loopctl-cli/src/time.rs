//! Times and durations as people type them: `--ttl 2h`, `changes --since 10m`, and times
//! printed to the second. chrono reads and writes the times (as the server does), humantime
//! reads the durations.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, Utc};

/// What `changes --since` accepts, for the message when a value is none of them.
pub const SINCE_FORMS: &str = "a cursor (42), an RFC 3339 time (2026-12-01T08:00:00Z), a date (2026-12-01, midnight UTC) \
     or a time ago (45s, 10m, 2h, 3d)";

/// A duration like `45s`, `10m`, `2h`, `3d` or `1h30m` (a day is 24 hours). The one duration
/// parser of the CLI, so `--ttl` and `--since` read the same words.
pub fn duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if names_a_calendar_unit(text) {
        return None;
    }
    humantime::parse_duration(text).ok()
}

/// Months and years have no fixed length: humantime would count them as 30.44 and 365.25
/// days, which is not what anyone typing `--since 1y` expects to the second, so they are
/// refused.
fn names_a_calendar_unit(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphabetic())
        .any(|unit| matches!(unit, "M" | "month" | "months" | "y" | "yr" | "yrs" | "year" | "years"))
}

/// An RFC 3339 time in any offset (`2026-01-02T03:04:05.123456Z`), in UTC.
pub fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|time| time.to_utc())
}

/// Where a feed starts: a cursor, or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Cursor(u64),
    Time(DateTime<Utc>),
}

impl Since {
    /// `--since` as the user typed it; `now` is what "10m" counts back from.
    ///
    /// # Errors
    /// A message naming the accepted forms.
    pub fn parse(text: &str, now: DateTime<Utc>) -> Result<Since, String> {
        let text = text.trim();
        if let Ok(cursor) = text.parse::<u64>() {
            return Ok(Since::Cursor(cursor));
        }
        if let Some(time) = instant(text) {
            return Ok(Since::Time(time));
        }
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(Since::Time(date.and_time(chrono::NaiveTime::MIN).and_utc()));
        }
        // "10m ago" means to the second; finer would be a precision nobody asked for.
        if let Some(ago) = duration(text).and_then(|ago| TimeDelta::from_std(ago).ok())
            && let Some(time) = now.checked_sub_signed(ago)
            && let Some(time) = DateTime::from_timestamp(time.timestamp(), 0)
        {
            return Ok(Since::Time(time));
        }
        Err(format!("--since `{text}` is not {SINCE_FORMS}"))
    }

    /// The value the server's `since=` takes: the cursor, or the time in RFC 3339 UTC (as
    /// precise as it was given).
    pub fn query_value(self) -> String {
        match self {
            Since::Cursor(cursor) => cursor.to_string(),
            Since::Time(time) => as_sent(time),
        }
    }
}

/// A time from the server shown to the second in UTC (`2026-12-01T22:40:00Z`); `-` for none.
pub fn shown(time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(|| "-".into(), to_the_second)
}

/// A time as the server sends it in JSON (RFC 3339 UTC, as precise as it is).
pub fn as_sent(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn to_the_second(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("a test timestamp")
    }

    #[test]
    fn durations_read_seconds_minutes_hours_and_days() {
        assert_eq!(duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(duration("10m"), Some(Duration::from_mins(10)));
        assert_eq!(duration("2h"), Some(Duration::from_hours(2)));
        assert_eq!(duration("3d"), Some(Duration::from_hours(72)));
        assert_eq!(duration("1h30m"), Some(Duration::from_mins(90)));
        for bad in ["", "h", "10", "ten minutes", "-10m", "2mo", "1y"] {
            assert_eq!(duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn since_reads_a_cursor_a_time_a_date_or_a_time_ago() {
        let now = at("2026-12-01T12:00:00Z");
        assert_eq!(Since::parse("0", now), Ok(Since::Cursor(0)));
        assert_eq!(Since::parse(" 42 ", now), Ok(Since::Cursor(42)));
        assert_eq!(Since::parse("2026-11-30T08:15:00+02:00", now), Ok(Since::Time(at("2026-11-30T06:15:00Z"))));
        assert_eq!(Since::parse("2026-11-30", now), Ok(Since::Time(at("2026-11-30T00:00:00Z"))));
        assert_eq!(Since::parse("10m", now), Ok(Since::Time(at("2026-12-01T11:50:00Z"))));
        assert_eq!(Since::parse("45s", now), Ok(Since::Time(at("2026-12-01T11:59:15Z"))));
        assert_eq!(Since::parse("2h", now), Ok(Since::Time(at("2026-12-01T10:00:00Z"))));
        assert_eq!(Since::parse("3d", now), Ok(Since::Time(at("2026-11-28T12:00:00Z"))));
    }

    #[test]
    fn a_bad_since_names_every_accepted_form() {
        let now = at("2026-12-01T12:00:00Z");
        for bad in ["yesterday", "-5", "2026-13-01", "10x", "-"] {
            let message = Since::parse(bad, now).expect_err(bad);
            assert!(message.contains(bad) && message.contains(SINCE_FORMS), "{message}");
        }
    }

    #[test]
    fn the_query_value_is_the_cursor_or_rfc3339_utc() {
        let now = at("2026-12-01T12:00:00.75Z");
        assert_eq!(Since::Cursor(7).query_value(), "7");
        let given = Since::parse("2026-11-30T08:15:00.987+02:00", now).map(Since::query_value);
        assert_eq!(given.as_deref(), Ok("2026-11-30T06:15:00.987Z"), "a time given keeps its precision");
        let ago = Since::parse("10m", now).map(Since::query_value);
        assert_eq!(ago.as_deref(), Ok("2026-12-01T11:50:00Z"), "a time ago is to the second");
    }

    #[test]
    fn server_times_are_shown_to_the_second() {
        assert_eq!(shown(instant("2026-12-01T22:40:00.123456Z")), "2026-12-01T22:40:00Z");
        assert_eq!(shown(None), "-");
    }
}
