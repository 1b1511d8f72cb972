//! Command lines split into words as keepalived 2.x splits every script line
//! (`alloc_strvec_quoted_escaped`): no shell, so nothing in a config string or in the
//! arguments xlb appends is ever interpreted.
//!
//! keepalived's rules: words are separated by space, tab, FF, LF, CR or VT; `'...'` and
//! `"..."` quote (several quoted and unquoted pieces make one word); a backslash escapes
//! everywhere, inside quotes too, C-style: `\n \r \t \a \b \f \v \E`, `\xHH`, `\cX`
//! (control X), `\NNN` (octal), and any other character stands for itself. A trailing
//! backslash or an unterminated quote is an error.

use std::fmt;

/// Why a command line cannot be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    UnterminatedQuote(char),
    TrailingBackslash,
    Empty,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnterminatedQuote(q) => write!(f, "missing terminating {q}"),
            Self::TrailingBackslash => f.write_str("missing escaped character after the final \\"),
            Self::Empty => f.write_str("empty command"),
        }
    }
}

impl std::error::Error for SplitError {}

/// A command line split into words, and the first shell operator written outside
/// quotes, if any (it reaches the program as a plain argument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub argv: Vec<String>,
    pub shell_syntax: Option<String>,
}

const SEPARATORS: [char; 6] = [' ', '\t', '\u{c}', '\n', '\r', '\u{b}'];

/// Splits `line` into words with keepalived's rules (see the module doc).
pub fn split_command(line: &str) -> Result<Vec<String>, SplitError> {
    split(line).map(|s| s.argv)
}

/// [`split_command`], noting shell syntax left unquoted.
pub fn split(line: &str) -> Result<Split, SplitError> {
    let mut argv = Vec::new();
    let mut shell_syntax = None;
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| SEPARATORS.contains(c)).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) => word.push(unescape(&mut chars)?),
                (q, Some(open)) if q == open => quote = None,
                (c, Some(_)) => word.push(c),
                ('\'' | '"', None) => quote = Some(c),
                (c, None) if SEPARATORS.contains(&c) => break,
                (c, None) => {
                    if shell_syntax.is_none() {
                        shell_syntax = operator(c, chars.peek().copied());
                    }
                    word.push(c);
                }
            }
        }
        if let Some(q) = quote {
            return Err(SplitError::UnterminatedQuote(q));
        }
        argv.push(word);
    }
    if argv.is_empty() {
        return Err(SplitError::Empty);
    }
    Ok(Split { argv, shell_syntax })
}

/// The shell operator that `c` (followed by `next`) starts outside quotes: `|`, `&`,
/// `;`, `<`, `>`, a backquote, `$(`, `${` or `$NAME`.
fn operator(c: char, next: Option<char>) -> Option<String> {
    match c {
        '|' | '&' | ';' | '<' | '>' | '`' => Some(c.to_string()),
        '$' => match next {
            Some(n @ ('(' | '{')) => Some(format!("${n}")),
            Some(n) if n.is_ascii_alphabetic() || n == '_' => Some(format!("${n}")),
            _ => None,
        },
        _ => None,
    }
}

/// The character an escape after a backslash stands for (keepalived's escapes).
fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, SplitError> {
    let c = chars.next().ok_or(SplitError::TrailingBackslash)?;
    let digit = |d: char, radix: u32| d.to_digit(radix);
    Ok(match c {
        'x' if chars.peek().is_some_and(|d| d.is_ascii_hexdigit()) => {
            let mut v = 0u32;
            for _ in 0..2 {
                match chars.next_if(char::is_ascii_hexdigit) {
                    Some(d) => v = v * 16 + digit(d, 16).unwrap_or(0),
                    None => break,
                }
            }
            char::from_u32(v).unwrap_or('\0')
        }
        'c' if chars.peek().is_some() => {
            let x = chars.next().unwrap_or('@');
            char::from_u32(x as u32 & 0x1f).unwrap_or('\0')
        }
        '0'..='7' => {
            let mut v = digit(c, 8).unwrap_or(0);
            for _ in 0..2 {
                match chars.next_if(|d| ('0'..='7').contains(d)) {
                    Some(d) => v = v * 8 + digit(d, 8).unwrap_or(0),
                    None => break,
                }
            }
            // keepalived keeps one byte.
            char::from_u32(v & 0xff).unwrap_or('\0')
        }
        'a' => '\u{7}',
        'b' => '\u{8}',
        'E' => '\u{1b}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\u{b}',
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_command(line).unwrap()
    }

    #[test]
    fn command_lines_split_like_keepalived() {
        assert_eq!(
            words(r#"/usr/bin/curl -s 'http://a b/' "x\"y" z\ w"#),
            ["/usr/bin/curl", "-s", "http://a b/", "x\"y", "z w"]
        );
        // Quoted and unquoted pieces make one word; separators are keepalived's six.
        assert_eq!(words("a'b c'\"d e\"f\tg\u{b}h"), ["ab cd ef", "g", "h"]);
        // Backslashes escape inside single quotes too (keepalived, not POSIX sh).
        assert_eq!(words(r"'it\'s' '\\'"), ["it's", "\\"]);
        assert_eq!(
            words(r"a\nb \x41\x4a2 \101 \cA \t \q \E"),
            ["a\nb", "AJ2", "A", "\u{1}", "\t", "q", "\u{1b}"]
        );
        // `\x` without a hex digit is a plain x; one octal digit is enough.
        assert_eq!(words(r"\xg \0"), ["xg", "\0"]);
        assert_eq!(words(" ''  x "), ["", "x"]);
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert_eq!(
            split_command("echo 'oops"),
            Err(SplitError::UnterminatedQuote('\''))
        );
        assert_eq!(
            split_command("echo \"oops"),
            Err(SplitError::UnterminatedQuote('"'))
        );
        assert_eq!(split_command("echo \\"), Err(SplitError::TrailingBackslash));
        assert_eq!(split_command("  \t"), Err(SplitError::Empty));
    }

    #[test]
    fn unquoted_shell_operators_are_noted_quoted_ones_are_not() {
        let op = |line: &str| split(line).unwrap().shell_syntax;
        assert_eq!(op("/bin/echo a | tee x").as_deref(), Some("|"));
        assert_eq!(op("/bin/true && touch x").as_deref(), Some("&"));
        assert_eq!(op("/bin/true; reboot").as_deref(), Some(";"));
        assert_eq!(op("/bin/echo >/tmp/x").as_deref(), Some(">"));
        assert_eq!(op("/bin/echo $HOME").as_deref(), Some("$H"));
        assert_eq!(op("/bin/echo $(id)").as_deref(), Some("$("));
        assert_eq!(op("/bin/echo `id`").as_deref(), Some("`"));
        assert_eq!(op("/bin/sh -c 'echo a | tee x; id > $F'"), None);
        assert_eq!(op(r#"/bin/echo "a|b" \; pa$$ 5$"#), None);
    }
}
