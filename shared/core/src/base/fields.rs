//! Reading request fields: a required one, and several at once whose 422s
//! merge into one answer naming every bad field.

use crate::base::error::{Error, FieldErrors, Result};

/// A required field's value, or a 422 naming it (empty or blank counts as
/// missing).
pub fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(Error::field(name, "is required")),
    }
}

/// Several parsed fields at once: every value, or one 422 with the field
/// errors of all of them. An error that is not a 422 (an invalid token, …)
/// is returned as it is, the first one in order.
pub trait AllFields {
    type Values;
    fn all(self) -> Result<Self::Values>;
}

macro_rules! all_fields_of {
    ($($v:ident: $t:ident),+) => {
        impl<$($t),+> AllFields for ($(Result<$t>,)+) {
            type Values = ($($t,)+);
            fn all(self) -> Result<Self::Values> {
                let ($($v,)+) = self;
                let mut fields = FieldErrors::new();
                $(
                    let $v = match $v {
                        Ok(x) => Some(x),
                        Err(Error::Validation(m)) => {
                            fields.extend(m);
                            None
                        }
                        Err(other) => return Err(other),
                    };
                )+
                match ($($v,)+) {
                    ($(Some($v),)+) if fields.is_empty() => Ok(($($v,)+)),
                    _ => Err(Error::Validation(fields)),
                }
            }
        }
    };
}

all_fields_of!(a: A);
all_fields_of!(a: A, b: B);
all_fields_of!(a: A, b: B, c: C);
all_fields_of!(a: A, b: B, c: C, d: D);
all_fields_of!(a: A, b: B, c: C, d: D, e: E);
all_fields_of!(a: A, b: B, c: C, d: D, e: E, f: F);

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: Result<impl Sized>) -> Vec<String> {
        match r {
            Err(Error::Validation(m)) => m.into_keys().collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn every_bad_field_is_named_in_one_422() {
        let r = (required(None, "a"), Ok::<_, Error>(1), required(Some(" "), "c")).all();
        assert_eq!(names(r), ["a", "c"]);
        let ok = (required(Some("x"), "a"), Ok::<_, Error>(2)).all();
        assert_eq!(ok.ok(), Some(("x", 2)));
    }

    #[test]
    fn an_error_that_is_not_a_422_wins_over_field_errors() {
        let r = (required(None, "a"), Err::<(), _>(Error::TokenAlreadyUsed)).all();
        assert!(matches!(r, Err(Error::TokenAlreadyUsed)));
    }
}
