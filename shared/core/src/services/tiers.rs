//! Account tiers from the birthdate (docs/DESIGN.md §2): FULL from
//! `ADULT_AGE`, RESTRICTED from `MIN_AGE`, MINOR below (blocked until the
//! `MIN_AGE` birthday).

use time::Date;

use crate::App;
use crate::base::time::{anniversary, fmt_date, parse_date};
use crate::model::claims::Tier;
use crate::model::records::User;

/// Today's date on the App's clock (UTC).
pub fn today(app: &App) -> Date {
    app.clock.now().date()
}

/// The tier of someone born on `birth`, today.
pub fn tier_of(app: &App, birth: Date) -> Tier {
    let now = today(app);
    let reached = |age| anniversary(birth, age).is_some_and(|d| d <= now);
    if reached(app.settings.adult_age) {
        Tier::Full
    } else if reached(app.settings.min_age) {
        Tier::Restricted
    } else {
        Tier::Minor
    }
}

/// The date a blocked (under-age) user may sign in, if still in the future.
pub fn blocked_until(app: &App, user: &User) -> Option<String> {
    let until = parse_date(user.blocked_until.as_deref()?)?;
    (until > today(app)).then(|| fmt_date(until))
}

/// Whether `user` may not sign in now: blocked by an operator, or under age.
pub fn barred(app: &App, user: &User) -> bool {
    user.blocked || blocked_until(app, user).is_some()
}

/// The tier of `user` today (RESTRICTED when the birthdate is unknown).
pub fn tier_of_user(app: &App, user: &User) -> Tier {
    user.birth_date
        .as_deref()
        .and_then(parse_date)
        .map(|b| tier_of(app, b))
        .unwrap_or(Tier::Restricted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_the_birthdays_of_the_two_ages() {
        let t = crate::testing::app();
        let today = today(&t.app);
        let born = |years: i32| Date::from_calendar_date(today.year() - years, today.month(), 1).unwrap_or(today);
        assert_eq!(tier_of(&t.app, born(30)), Tier::Full);
        assert_eq!(
            tier_of(&t.app, born(i32::from(t.app.settings.min_age))),
            Tier::Restricted
        );
        assert_eq!(tier_of(&t.app, born(5)), Tier::Minor);
    }
}
