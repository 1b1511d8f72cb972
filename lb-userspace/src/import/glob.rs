//! glob(3) with GLOB_BRACE as keepalived calls it for `include`: brace alternatives,
//! then `*`, `?`, `[...]` and `\` escapes per path component (fnmatch(3)), matches
//! sorted.

use std::fs;
use std::path::{Path, PathBuf};

pub(super) fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// glob(3) with GLOB_BRACE, as keepalived calls it: the matching paths of each brace
/// alternative, sorted; a pattern without metacharacters matches itself if it exists.
pub(super) fn glob(pattern: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for alt in expand_braces(pattern) {
        let mut found = Vec::new();
        let (root, rest) = match alt.strip_prefix('/') {
            Some(r) => (PathBuf::from("/"), r.to_owned()),
            None => (PathBuf::new(), alt.clone()),
        };
        let comps: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
        glob_walk(&root, &comps, &mut found);
        found.sort();
        out.extend(found);
    }
    out
}

fn glob_walk(base: &Path, comps: &[&str], found: &mut Vec<PathBuf>) {
    let Some((first, rest)) = comps.split_first() else {
        if base.exists() {
            found.push(base.to_path_buf());
        }
        return;
    };
    if !has_glob_chars(first) {
        let next = base.join(first);
        if rest.is_empty() {
            if next.exists() {
                found.push(next);
            }
        } else if next.is_dir() {
            glob_walk(&next, rest, found);
        }
        return;
    }
    let dir = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.') || first.starts_with('.'))
        .filter(|n| wildcard(first.as_bytes(), n.as_bytes()))
        .collect();
    names.sort();
    for name in names {
        let next = base.join(&name);
        if rest.is_empty() {
            found.push(next);
        } else if next.is_dir() {
            glob_walk(&next, rest, found);
        }
    }
}

/// `{a,b}c` -> `ac`, `bc` (nested braces too); unbalanced braces stay literal.
fn expand_braces(p: &str) -> Vec<String> {
    let bytes = p.as_bytes();
    let Some(open) = p.find('{') else {
        return vec![p.to_owned()];
    };
    let mut depth = 0;
    let mut commas = Vec::new();
    let mut close = None;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            b',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![p.to_owned()];
    };
    let (pre, post) = (&p[..open], &p[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alt = &p[w[0] + 1..w[1]];
        out.extend(expand_braces(&format!("{pre}{alt}{post}")));
    }
    out
}

/// fnmatch(3) without flags beyond what glob uses: `*`, `?`, `[...]` (with `!`/`^`
/// negation and ranges), `\` escapes.
fn wildcard(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star_p, mut star_n) = (None, 0);
    while n < name.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star_p = Some(p);
                    star_n = n;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, len)) = class(&pat[p..], name[n]) {
                        if matched {
                            p += len;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pat.len() => {
                    if pat[p + 1] == name[n] {
                        p += 2;
                        n += 1;
                        continue;
                    }
                }
                c => {
                    if c == name[n] {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
            }
        }
        match star_p {
            Some(sp) => {
                p = sp + 1;
                star_n += 1;
                n = star_n;
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at the start of `pat`: whether `c` matches, and the class length.
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &b = pat.get(i)?;
        if b == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&e| e != b']') {
            let e = pat[i + 2];
            if (b..=e).contains(&c) {
                matched = true;
            }
            i += 3;
        } else {
            if b == c {
                matched = true;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_lexer_globs() {
        assert!(wildcard(b"*.conf", b"a.conf"));
        assert!(!wildcard(b"*.conf", b"a.conf.bak"));
        assert!(wildcard(b"vs_[0-9]?.conf", b"vs_1a.conf"));
        assert!(!wildcard(b"vs_[!0-9].conf", b"vs_1.conf"));
        assert!(wildcard(b"a*b*c", b"aXXbYYc"));
        assert_eq!(
            expand_braces("/x/{a,b}/*.conf"),
            ["/x/a/*.conf", "/x/b/*.conf"]
        );
        assert_eq!(expand_braces("{a,{b,c}}d"), ["ad", "bd", "cd"]);
    }
}
