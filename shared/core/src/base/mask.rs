//! Masking for display, exactly as the endpoint contract shows it:
//! phone `••• ••• ••50`, email `j••••••@g••••.com`.

const DOT: char = '•';

/// `••• ••• ••` followed by the last two digits of the number.
pub fn mask_phone(e164: &str) -> String {
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    format!("••• ••• ••{tail}")
}

/// The first character of the local part and of the domain name, the rest
/// of each replaced by dots; the top-level domain is kept.
pub fn mask_email(email: &str) -> String {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return mask_word(email);
    };
    let masked_domain = match domain.rsplit_once('.') {
        Some((name, tld)) => format!("{}.{tld}", mask_word(name)),
        None => mask_word(domain),
    };
    format!("{}@{masked_domain}", mask_word(local))
}

fn mask_word(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        None => String::new(),
        Some(first) => std::iter::once(first).chain(chars.map(|_| DOT)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_is_masked_to_its_last_two_digits() {
        assert_eq!(mask_phone("+255745051250"), "••• ••• ••50");
    }

    #[test]
    fn email_keeps_first_letters_and_tld_like_the_reference() {
        assert_eq!(mask_email("joshuas@gmail.com"), "j••••••@g••••.com");
        assert_eq!(mask_email("a@b.io"), "a@b.io");
        assert_eq!(mask_email("ann@mail.example.org"), "a••@m•••••••••••.org");
    }
}
