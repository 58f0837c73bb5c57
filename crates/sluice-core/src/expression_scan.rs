//! A light scan of `#{...}` expressions inside string values, enough for validation at Put time:
//! unterminated expressions, and the bare names an expression reads (parameters and user fields).
//! Evaluation is the expression language's job; this only finds names.

/// One `#{...}` occurrence: the byte offset of `#{` in the value and the expression text inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpressionSpan<'a> {
    pub offset: usize,
    pub body: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    /// Byte offset of the `#{` that never closes.
    pub offset: usize,
}

/// Finds every `#{...}`. Braces and quotes inside the expression are honoured, so a `}` within a
/// string literal does not close it.
pub fn expressions(value: &str) -> Result<Vec<ExpressionSpan<'_>>, ScanError> {
    let bytes = value.as_bytes();
    let mut spans = Vec::new();
    let mut index = 0;
    while index + 1 < bytes.len() {
        if bytes[index] == b'#' && bytes[index + 1] == b'{' {
            let start = index;
            let body_start = index + 2;
            let mut depth = 1usize;
            let mut quote: Option<u8> = None;
            let mut cursor = body_start;
            while cursor < bytes.len() && depth > 0 {
                let byte = bytes[cursor];
                match quote {
                    Some(open) if byte == open => quote = None,
                    Some(_) => {}
                    None => match byte {
                        b'\'' | b'"' => quote = Some(byte),
                        b'{' => depth += 1,
                        b'}' => depth -= 1,
                        _ => {}
                    },
                }
                cursor += 1;
            }
            if depth > 0 {
                return Err(ScanError { offset: start });
            }
            spans.push(ExpressionSpan {
                offset: start,
                body: &value[body_start..cursor - 1],
            });
            index = cursor;
        } else {
            index += 1;
        }
    }
    Ok(spans)
}

/// The bare names an expression reads: identifiers (optionally `*`-prefixed) that are not string
/// literals, not function names, not members after a `.`, and not runtime `@` fields.
pub fn bare_names(body: &str) -> Vec<&str> {
    let bytes = body.as_bytes();
    let mut names = Vec::new();
    let mut index = 0;
    let mut previous_significant: Option<u8> = None;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'\'' || byte == b'"' {
            let close = bytes[index + 1..].iter().position(|candidate| *candidate == byte);
            index = close.map_or(bytes.len(), |close| index + close + 2);
            previous_significant = Some(byte);
            continue;
        }
        let starts_name = byte.is_ascii_alphabetic() || byte == b'_' || byte == b'@' || byte == b'*';
        // A `*` starts a name only when a letter follows (`*myPassword`); otherwise it multiplies.
        let star_is_operator = byte == b'*' && !bytes.get(index + 1).is_some_and(u8::is_ascii_alphabetic);
        if starts_name && !star_is_operator {
            let start = index;
            index += 1;
            while index < bytes.len() && (bytes[index].is_ascii_alphanumeric() || bytes[index] == b'_') {
                index += 1;
            }
            let name = &body[start..index];
            let mut lookahead = index;
            while lookahead < bytes.len() && bytes[lookahead] == b' ' {
                lookahead += 1;
            }
            let is_call = bytes.get(lookahead) == Some(&b'(');
            let is_member = previous_significant == Some(b'.');
            if !is_call && !is_member && !name.starts_with('@') {
                names.push(name);
            }
            previous_significant = Some(b'a');
            continue;
        }
        if byte.is_ascii_digit() {
            // Numbers such as 1.5 must not make `5` look like a member name.
            while index < bytes.len() && (bytes[index].is_ascii_digit() || bytes[index] == b'.') {
                index += 1;
            }
            previous_significant = Some(b'0');
            continue;
        }
        if byte != b' ' {
            previous_significant = Some(byte);
        }
        index += 1;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_expressions_and_their_names() {
        let value = "s3://b/#{myBucket}/#{format(@scheduledStartTime,'YYYY-MM-dd')}/#{input.directoryPath}";
        let spans = expressions(value).expect("balanced");
        let names: Vec<Vec<&str>> = spans.iter().map(|span| bare_names(span.body)).collect();
        assert_eq!(names, vec![vec!["myBucket"], vec![], vec!["input"]]);
        assert_eq!(spans[0].offset, 7);
    }

    #[test]
    fn quotes_protect_braces_and_stars_mark_secrets() {
        let spans = expressions("#{'}' + *myPassword}").expect("balanced");
        assert_eq!(bare_names(spans[0].body), vec!["*myPassword"]);
        assert_eq!(expressions("echo #{myX").unwrap_err(), ScanError { offset: 5 });
        assert!(
            expressions("${INPUT1_STAGING_DIR} and # alone")
                .expect("no expression")
                .is_empty()
        );
    }

    #[test]
    fn arithmetic_is_not_a_name() {
        let spans = expressions("#{1.5 * myFactor - 2}").expect("balanced");
        assert_eq!(bare_names(spans[0].body), vec!["myFactor"]);
    }
}
