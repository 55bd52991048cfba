//! Text a peer chose, made fit for a terminal and a log line: bounded, without control
//! characters (an escape sequence from a hostile peer must not reach an operator's terminal).

/// `text` with control characters escaped (`\u{1b}`, `\n`) and cut after `max_chars`.
pub fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (index, c) in text.chars().enumerate() {
        if index == max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters_and_bounds_the_length() {
        assert_eq!(printable("plain text", 100), "plain text");
        assert_eq!(
            printable("\u{1b}[2Jgone\nfake line", 100),
            "\\u{1b}[2Jgone\\nfake line"
        );
        assert_eq!(printable(&"x".repeat(10), 4), "xxxx…");
        assert_eq!(printable("café", 4), "café");
    }
}
