//! Wildcards: `*` any run, `?` one character.

/// Glob match; `case_insensitive` for actions. Allocation-free over bytes when both sides are
/// ASCII (every action and nearly every ARN), over characters otherwise.
pub fn glob(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        let fold = |byte: u8| {
            if case_insensitive {
                byte.to_ascii_lowercase()
            } else {
                byte
            }
        };
        return glob_over(
            pattern.as_bytes(),
            text.as_bytes(),
            |byte| *byte == b'*',
            |byte| *byte == b'?',
            |left, right| fold(*left) == fold(*right),
        );
    }
    let fold = |character: char| {
        if case_insensitive {
            character.to_ascii_lowercase()
        } else {
            character
        }
    };
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    glob_over(
        &pattern,
        &text,
        |character| *character == '*',
        |character| *character == '?',
        |left, right| fold(*left) == fold(*right),
    )
}

fn glob_over<T>(
    pattern: &[T],
    text: &[T],
    is_star: impl Fn(&T) -> bool,
    is_any: impl Fn(&T) -> bool,
    same: impl Fn(&T, &T) -> bool,
) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && !is_star(&pattern[p]) && (is_any(&pattern[p]) || same(&pattern[p], &text[t])) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && is_star(&pattern[p]) {
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
    while p < pattern.len() && is_star(&pattern[p]) {
        p += 1;
    }
    p == pattern.len()
}

/// The six colon-separated parts of an ARN (the sixth keeps further colons).
fn six_parts(text: &str) -> Option<[&str; 6]> {
    let mut parts = [""; 6];
    let mut pieces = text.splitn(6, ':');
    for part in parts.iter_mut() {
        *part = pieces.next()?;
    }
    Some(parts)
}

/// ARN matching: the six colon-separated parts each match on their own, so a `*` cannot swallow
/// a `:` (the resource part, the sixth, keeps any further colons).
pub fn arn(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match (six_parts(pattern), six_parts(text)) {
        (Some(pattern_parts), Some(text_parts)) => pattern_parts
            .iter()
            .zip(text_parts.iter())
            .all(|(pattern, text)| glob(pattern, text, false)),
        _ => glob(pattern, text, false),
    }
}
