//! Dates and times as the API writes them (UTC, no offset).

use time::{Date, Month};

/// Epoch seconds as `YYYY-MM-DDTHH:MM:SS` (UTC, like `action_time`).
pub fn fmt_time(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => String::new(),
    }
}

/// A `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

/// A date as `YYYY-MM-DD`.
pub fn fmt_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// The date `years` after `birth` (29 February → 1 March in common years).
pub fn anniversary(birth: Date, years: u8) -> Option<Date> {
    let y = birth.year() + i32::from(years);
    Date::from_calendar_date(y, birth.month(), birth.day())
        .or_else(|_| Date::from_calendar_date(y, Month::March, 1))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leap_day_birthday_falls_on_the_first_of_march_in_common_years() {
        let leap = parse_date("2008-02-29").unwrap_or(Date::MIN);
        assert_eq!(anniversary(leap, 18).map(fmt_date).as_deref(), Some("2026-03-01"));
        assert_eq!(anniversary(leap, 16).map(fmt_date).as_deref(), Some("2024-02-29"));
    }

    #[test]
    fn times_are_written_without_an_offset() {
        assert_eq!(fmt_time(0), "1970-01-01T00:00:00");
    }
}
