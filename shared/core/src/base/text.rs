//! Free text that users give us and other users (or the same user, on
//! another device) are shown: names, device names, bios.

/// Characters refused in displayed text: controls (C0, DEL, C1) and the
/// bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069), which make `Pixel\u{202E}exe.jpg` display as something
/// else than it is.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `s` holds a control or direction-override character.
pub fn has_unsafe_chars(s: &str) -> bool {
    s.chars().any(is_unsafe_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_direction_overrides_are_unsafe_and_other_scripts_are_not() {
        for bad in [
            "a\u{0}b",
            "a\nb",
            "a\u{7f}",
            "a\u{85}",
            "Pixel \u{202E}3gnp.exe",
            "x\u{2066}y",
            "\u{2069}",
        ] {
            assert!(has_unsafe_chars(bad), "{bad:?}");
        }
        for good in [
            "Asha",
            "أحمد",
            "李小龙",
            "Zoë",
            "e\u{301}",
            "👩🏽‍💻",
            "O'Brien-Smith",
            "\u{200D}",
        ] {
            assert!(!has_unsafe_chars(good), "{good:?}");
        }
    }
}
