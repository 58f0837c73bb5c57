//! The model's member constraints (lengths, counts, the XML character pattern), which clients do
//! not check and the server must (reference §a.1). Messages name the member, never its value:
//! values may be secrets.

use crate::ApiError;

#[derive(Default)]
pub struct Check {
    violations: Vec<String>,
}

fn is_xml_char(character: char) -> bool {
    matches!(character, '\t' | '\n' | '\r')
        || (!character.is_control() && character != '\u{FFFE}' && character != '\u{FFFF}')
}

impl Check {
    pub fn new() -> Self {
        Check::default()
    }

    /// Length in characters within `min..=max`, and only characters the model's pattern allows.
    pub fn string(&mut self, path: &str, value: &str, min: usize, max: usize) -> &mut Self {
        let length = value.chars().count();
        if length < min {
            self.violations.push(format!(
                "Value at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
            ));
        } else if length > max {
            self.violations.push(format!(
                "Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}"
            ));
        }
        if let Some(position) = value.chars().position(|character| !is_xml_char(character)) {
            self.violations.push(format!(
                "Value at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern [\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]* (control character at position {position})"
            ));
        }
        self
    }

    /// Length only, for members without a pattern (tags, error messages).
    pub fn length(&mut self, path: &str, value: &str, min: usize, max: usize) -> &mut Self {
        let length = value.chars().count();
        if length < min || length > max {
            self.violations.push(format!(
                "Value at '{path}' failed to satisfy constraint: Member must have length between {min} and {max}"
            ));
        }
        self
    }

    pub fn count(&mut self, path: &str, count: usize, min: usize, max: usize) -> &mut Self {
        if count < min || count > max {
            self.violations.push(format!("Value at '{path}' failed to satisfy constraint: Member must have between {min} and {max} items, found {count}"));
        }
        self
    }

    /// A violation the helpers above do not describe (a pattern, an enumeration).
    pub fn violation(&mut self, message: String) -> &mut Self {
        self.violations.push(message);
        self
    }

    pub fn finish(&mut self) -> Result<(), ApiError> {
        match self.violations.len() {
            0 => Ok(()),
            n => {
                let shown: Vec<&str> = self.violations.iter().take(10).map(String::as_str).collect();
                let noun = if n == 1 { "error" } else { "errors" };
                Err(ApiError::invalid_request(format!(
                    "{n} validation {noun} detected: {}",
                    shown.join("; ")
                )))
            }
        }
    }
}
