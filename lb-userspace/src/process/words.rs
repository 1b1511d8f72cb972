//! Command lines split into words as keepalived splits `misc_path` (quotes and
//! backslashes, no shell).

/// Splits a command line into words: whitespace separates, `'...'` is literal,
/// `"..."` allows `\"` and `\\`, a backslash outside quotes escapes the next
/// character.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated ' in {line:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(format!("unterminated \" in {line:?}")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated \" in {line:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `command` run through `sh -c`, as keepalived runs `vrrp_script` and notify commands:
/// pipes, `&&` and redirections work.
pub fn shell(command: &str) -> Vec<String> {
    vec!["/bin/sh".to_owned(), "-c".to_owned(), command.to_owned()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_misc_command_lines_split_like_keepalived() {
        assert_eq!(
            split_command(r#"/usr/bin/curl -s 'http://a b/' "x\"y" z\ w"#).unwrap(),
            vec!["/usr/bin/curl", "-s", "http://a b/", "x\"y", "z w"]
        );
        assert_eq!(split_command("  ").unwrap(), Vec::<String>::new());
        assert!(split_command("echo 'oops").is_err());
    }
}
