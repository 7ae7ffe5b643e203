//! Text for a human's terminal. Names, paths and values in a report come from the input,
//! and an attacker chooses them: an object named `x\x1b]0;pwned\x07\x1b[2J` would retitle
//! and clear the terminal of whoever reads `rayward audit` (or `kubectl`'s admission
//! message), and a CR or a bidi override can make a line say something else than it holds.
//! Every human-readable output passes such text through [`escape`]; JSON, SARIF and JUnit
//! keep the exact values (their writers escape them).

use std::borrow::Cow;

/// Would this character act on a terminal or reorder text, rather than print?
fn is_unsafe(c: char) -> bool {
    c.is_control() // C0 (tab, CR, LF, ESC, BEL, …), DEL and C1
        || matches!(c,
            '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{200e}' | '\u{200f}' | '\u{061c}' // direction marks
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{feff}')
}

/// `text` with every control character, bidi control and line separator written as a
/// visible escape (`\x1b`, `\r`, `\n`, `\u{202e}`); other text, accents and CJK included,
/// as it is. Borrowed when there is nothing to escape (nearly always).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Like [`escape`], but keeps line breaks: for multi-line messages that rayward itself
/// composed, whose parts were escaped with [`escape`] already or are rayward's own text.
pub fn escape_keep_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.split('\n')
            .map(|l| escape(l).into_owned())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_become_visible() {
        assert_eq!(escape("ray-head"), "ray-head");
        assert_eq!(escape("名前-é"), "名前-é");
        assert_eq!(
            escape("x\x1b]0;pwned\x07\x1b[2J\r\u{202e}y\u{9b}"),
            "x\\x1b]0;pwned\\x07\\x1b[2J\\r\\u{202e}y\\x9b"
        );
        assert_eq!(escape_keep_lines("a\nb\x1b"), "a\nb\\x1b");
    }
}
