//! The words around a code (SPEC §4): one SMS text and one email (subject,
//! plain text, HTML) per locale — `en`, `fr`, `sw`; any other locale gets
//! `en`.
//!
//! An SMS ends with the WebOTP line `@<domain> #<code>` (the origin-bound
//! code format browsers and iOS read), and carries the Android SMS
//! Retriever app hash on the line before it when one is configured. Every
//! SMS template is GSM-7 only, and in `en` (in fact in every locale) fits
//! one 160-character segment with an 8-digit code, the longest expiry and a
//! WebOTP domain of [`MAX_WEBOTP_DOMAIN_LEN`] characters — the test below
//! checks it.

use std::fmt;

use crate::base::otp::OtpCode;

pub use crate::base::config::{APP_HASH_LEN, MAX_WEBOTP_DOMAIN_LEN};

/// The languages messages are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
    Sw,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Fr, Lang::Sw];

    /// The language for a BCP-47 locale (`fr`, `fr-CA`, `sw_TZ`, …); `en`
    /// for anything unknown.
    pub fn from_locale(locale: &str) -> Lang {
        let primary = locale.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Lang::Fr,
            "sw" => Lang::Sw,
            _ => Lang::En,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
            Lang::Sw => "sw",
        }
    }

    fn words(self) -> &'static Words {
        match self {
            Lang::En => &EN,
            Lang::Fr => &FR,
            Lang::Sw => &SW,
        }
    }
}

/// One locale's words. `{code}` and `{minutes}` are filled in.
struct Words {
    /// GSM-7 only.
    sms: &'static str,
    subject: &'static str,
    lead: &'static str,
    expires: &'static str,
    ignore: &'static str,
}

const EN: Words = Words {
    sms: "Your Nambari code is {code}. It expires in {minutes} min. Never share it.",
    subject: "Your Nambari code",
    lead: "Your Nambari verification code is:",
    expires: "It expires in {minutes} minutes.",
    ignore: "If you did not ask for this code, ignore this email. Never share it with anyone.",
};

const FR: Words = Words {
    sms: "Votre code Nambari est {code}. Il expire dans {minutes} min. Ne le partagez pas.",
    subject: "Votre code Nambari",
    lead: "Votre code de vérification Nambari :",
    expires: "Il expire dans {minutes} minutes.",
    ignore: "Si vous n'avez pas demandé ce code, ignorez cet e-mail. Ne le partagez avec personne.",
};

const SW: Words = Words {
    sms: "Msimbo wako wa Nambari ni {code}. Unaisha baada ya dakika {minutes}. Usimpe mtu yeyote.",
    subject: "Msimbo wako wa Nambari",
    lead: "Msimbo wako wa uthibitisho wa Nambari ni:",
    expires: "Unaisha baada ya dakika {minutes}.",
    ignore: "Kama hukuomba msimbo huu, puuza barua pepe hii. Usimpe mtu yeyote.",
};

/// An email carrying a code. `Debug` hides the code.
#[derive(Clone)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email {{ subject: {:?}, text: ***, html: *** }}", self.subject)
    }
}

/// Renders messages for one deployment.
#[derive(Clone, Debug, Default)]
pub struct Templates {
    webotp_domain: Option<String>,
    app_hash: Option<String>,
    /// How long a code lives, in whole minutes (rounded up).
    minutes: i64,
}

impl Templates {
    /// `otp_ttl`: a code's life in seconds.
    pub fn new(webotp_domain: Option<String>, app_hash: Option<String>, otp_ttl: i64) -> Self {
        Self {
            webotp_domain,
            app_hash,
            minutes: ((otp_ttl + 59) / 60).max(1),
        }
    }

    pub fn from_settings(s: &crate::base::config::Settings) -> Self {
        Self::new(
            s.delivery.webotp_domain.clone(),
            s.delivery.android_app_hash.clone(),
            s.otp_ttl,
        )
    }

    /// These templates for a code that lives `ttl` seconds (`None`: the
    /// deployment's `OTP_TTL_SECONDS`).
    pub fn with_ttl(&self, ttl: Option<i64>) -> Templates {
        let mut t = self.clone();
        if let Some(secs) = ttl {
            t.minutes = ((secs + 59) / 60).max(1);
        }
        t
    }

    fn fill(&self, template: &str, code: &str) -> String {
        template
            .replace("{code}", code)
            .replace("{minutes}", &self.minutes.to_string())
    }

    /// The SMS text: the locale's sentence, then (after a blank line) the
    /// app hash line when configured and the WebOTP line last.
    pub fn sms(&self, locale: &str, code: &OtpCode) -> String {
        let code = code.expose();
        let mut text = self.fill(Lang::from_locale(locale).words().sms, code);
        if self.app_hash.is_some() || self.webotp_domain.is_some() {
            text.push('\n');
        }
        if let Some(hash) = &self.app_hash {
            text.push('\n');
            text.push_str(hash);
        }
        if let Some(domain) = &self.webotp_domain {
            text.push_str(&format!("\n@{domain} #{code}"));
        }
        text
    }

    /// The email: subject, plain text and HTML.
    pub fn email(&self, locale: &str, code: &OtpCode) -> Email {
        let w = Lang::from_locale(locale).words();
        let code = code.expose();
        let expires = self.fill(w.expires, code);
        let text = format!("{}\n\n{code}\n\n{expires}\n\n{}\n", w.lead, w.ignore);
        let html = format!(
            "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{subject}</title></head>\
             <body style=\"font-family:sans-serif\">\n<p>{lead}</p>\n\
             <p style=\"font-size:28px;font-weight:bold;letter-spacing:4px\">{code}</p>\n\
             <p>{expires}</p>\n<p style=\"color:#666\">{ignore}</p>\n</body></html>\n",
            lang = Lang::from_locale(locale).code(),
            subject = html_escape(w.subject),
            lead = html_escape(w.lead),
            code = html_escape(code),
            expires = html_escape(&expires),
            ignore = html_escape(w.ignore),
        );
        Email {
            subject: w.subject.to_owned(),
            text,
            html,
        }
    }
}

/// The invite SMS of each language: GSM-7, `{link}` filled in.
fn invite_words(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "You are invited to Nambari. Claim your account: {link}",
        Lang::Fr => "Vous etes invite sur Nambari. Activez votre compte : {link}",
        Lang::Sw => "Umealikwa kwenye Nambari. Dai akaunti yako: {link}",
    }
}

/// The text of an invite SMS (a claim link of at most 100 characters keeps
/// it in one segment).
pub fn invite_sms(locale: &str, link: &str) -> String {
    invite_words(Lang::from_locale(locale)).replace("{link}", link)
}

/// The words of a notice in one language: a subject and a sentence, GSM-7
/// only (the same sentence goes by SMS). Never a code or a sign-in link.
fn notice_words(lang: Lang, notice: crate::ports::sender::Notice) -> (&'static str, &'static str) {
    use crate::ports::sender::Notice;
    match (lang, notice) {
        (Lang::En, Notice::PinReset) => (
            "Your Nambari PIN was reset",
            "Your Nambari PIN was reset and your other devices were signed out. If this was not you, contact support.",
        ),
        (Lang::Fr, Notice::PinReset) => (
            "Votre code PIN Nambari a ete reinitialise",
            "Votre code PIN Nambari a ete reinitialise et vos autres appareils deconnectes. Si ce n'est pas vous, contactez le support.",
        ),
        (Lang::Sw, Notice::PinReset) => (
            "PIN yako ya Nambari imebadilishwa",
            "PIN yako ya Nambari imebadilishwa na vifaa vyako vingine vimetolewa. Kama si wewe, wasiliana na msaada.",
        ),
    }
}

/// The text of a notice SMS.
pub fn notice_sms(locale: &str, notice: crate::ports::sender::Notice) -> String {
    notice_words(Lang::from_locale(locale), notice).1.to_owned()
}

/// A notice email: subject, plain text and HTML.
pub fn notice_email(locale: &str, notice: crate::ports::sender::Notice) -> Email {
    let lang = Lang::from_locale(locale);
    let (subject, text) = notice_words(lang, notice);
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{subject}</title></head>\
         <body style=\"font-family:sans-serif\">\n<p>{text}</p>\n</body></html>\n",
        lang = lang.code(),
        subject = html_escape(subject),
        text = html_escape(text),
    );
    Email {
        subject: subject.to_owned(),
        text: format!("{text}\n"),
        html,
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The GSM 03.38 default alphabet (without the escape character).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                          ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each costs two septets (escape + character).
const GSM7_EXTENSION: &str = "\u{0C}^{}\\[~]|€";

/// The septets `s` takes in GSM-7, or `None` when a character is not in
/// the GSM-7 alphabet (the message would go as UCS-2, 70 characters a segment).
pub fn gsm7_septets(s: &str) -> Option<usize> {
    s.chars().try_fold(0usize, |n, c| {
        if GSM7_BASIC.contains(c) {
            Some(n + 1)
        } else if GSM7_EXTENSION.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONGEST_DOMAIN: &str = "a-very-long-subdomain-name-for-sign-in.example.com";

    fn worst_case() -> Templates {
        // 900 s is the longest OTP_TTL_SECONDS (15 minutes, two digits).
        Templates::new(Some(LONGEST_DOMAIN.to_owned()), Some("FA+9qCX9VSu".to_owned()), 900)
    }

    #[test]
    fn the_longest_domain_allowed_is_the_one_tested() {
        assert_eq!(LONGEST_DOMAIN.len(), MAX_WEBOTP_DOMAIN_LEN);
    }

    #[test]
    fn every_sms_template_is_gsm7_and_fits_one_segment_with_the_longest_domain() {
        for lang in Lang::ALL {
            for code in ["123456", "12345678"] {
                let text = worst_case().sms(lang.code(), &OtpCode::fixed(code));
                let septets = gsm7_septets(&text);
                assert!(septets.is_some(), "{lang:?} is not GSM-7: {text}");
                assert!(
                    septets.is_some_and(|n| n <= 160),
                    "{lang:?} takes {septets:?} septets: {text}"
                );
            }
        }
    }

    #[test]
    fn an_sms_carries_the_code_and_ends_with_the_webotp_line() {
        let text = worst_case().sms("en-GB", &OtpCode::fixed("042917"));
        assert!(text.starts_with("Your Nambari code is 042917. It expires in 15 min."));
        assert!(
            text.ends_with(&format!("\nFA+9qCX9VSu\n@{LONGEST_DOMAIN} #042917")),
            "{text}"
        );
        let plain = Templates::new(Some("example.com".into()), None, 120).sms("sw", &OtpCode::fixed("111222"));
        assert_eq!(
            plain,
            "Msimbo wako wa Nambari ni 111222. Unaisha baada ya dakika 2. Usimpe mtu yeyote.\n\n@example.com #111222"
        );
    }

    #[test]
    fn every_invite_sms_is_gsm7_and_fits_one_segment_with_a_100_character_link() {
        let link = format!("https://app.example.com/claim/{}", "x".repeat(70));
        assert_eq!(link.len(), 100);
        for lang in Lang::ALL {
            let text = invite_sms(lang.code(), &link);
            assert!(text.ends_with(&link), "{text}");
            assert!(gsm7_septets(&text).is_some_and(|n| n <= 160), "{lang:?}: {text}");
        }
    }

    #[test]
    fn every_notice_is_gsm7_fits_one_segment_and_carries_no_digits_or_links() {
        for lang in Lang::ALL {
            let sms = notice_sms(lang.code(), crate::ports::sender::Notice::PinReset);
            assert!(gsm7_septets(&sms).is_some_and(|n| n <= 160), "{lang:?}: {sms}");
            assert!(
                !sms.chars().any(|c| c.is_ascii_digit()) && !sms.contains("http"),
                "{sms}"
            );
            let email = notice_email(lang.code(), crate::ports::sender::Notice::PinReset);
            assert!(email.html.contains(&html_escape(&sms)), "{lang:?}");
        }
    }

    #[test]
    fn unknown_locales_fall_back_to_english() {
        assert_eq!(Lang::from_locale("de"), Lang::En);
        assert_eq!(Lang::from_locale("fr-CA"), Lang::Fr);
        assert_eq!(Lang::from_locale("SW"), Lang::Sw);
        assert_eq!(Lang::from_locale(""), Lang::En);
    }

    #[test]
    fn emails_carry_the_code_in_every_locale_and_escape_their_html() {
        for lang in Lang::ALL {
            let e = worst_case().email(lang.code(), &OtpCode::fixed("314159"));
            assert!(!e.subject.is_empty() && !e.subject.contains("314159"));
            assert!(e.text.contains("314159") && e.html.contains(">314159<"));
            assert!(e.text.contains("15"), "{}", e.text);
        }
        let fr = worst_case().email("fr", &OtpCode::fixed("314159"));
        assert!(fr.html.contains("n&#39;avez"));
        assert!(!format!("{fr:?}").contains("314159"));
    }

    #[test]
    fn gsm7_counts_extension_characters_twice_and_refuses_others() {
        assert_eq!(gsm7_septets("abc"), Some(3));
        assert_eq!(gsm7_septets("[€]"), Some(6));
        assert_eq!(gsm7_septets("ça"), None);
        assert_eq!(gsm7_septets("🙂"), None);
    }
}
