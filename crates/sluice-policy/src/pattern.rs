//! Wildcards: `*` any run, `?` one character.

/// Glob match; `case_insensitive` for actions.
pub fn glob(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let fold = |c: char| if case_insensitive { c.to_ascii_lowercase() } else { c };
    let pattern: Vec<char> = pattern.chars().map(fold).collect();
    let text: Vec<char> = text.chars().map(fold).collect();
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(position) = star {
            p = position + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == '*' {
        p += 1;
    }
    p == pattern.len()
}

/// ARN matching: the six colon-separated parts each match on their own, so a `*` cannot swallow
/// a `:` (the resource part, the sixth, keeps any further colons).
pub fn arn(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let pattern_parts: Vec<&str> = pattern.splitn(6, ':').collect();
    let text_parts: Vec<&str> = text.splitn(6, ':').collect();
    if pattern_parts.len() != 6 || text_parts.len() != 6 {
        return glob(pattern, text, false);
    }
    pattern_parts
        .iter()
        .zip(text_parts.iter())
        .all(|(pattern, text)| glob(pattern, text, false))
}
