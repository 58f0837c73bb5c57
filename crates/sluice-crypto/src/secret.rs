//! A value that must not be printed, logged or serialized by accident.

use std::fmt;

/// Holds a secret. `Debug` and `Display` print `**REDACTED**`; there is no `Serialize`; the
/// plaintext leaves only through [`Secret::expose_secret`], which is easy to grep for.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    pub fn expose_secret(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("**REDACTED**")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("**REDACTED**")
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let secret = Secret::new("wJalrXUtnFEMI".to_string());
        assert_eq!(format!("{secret} {secret:?}"), "**REDACTED** **REDACTED**");
        assert_eq!(secret.expose_secret(), "wJalrXUtnFEMI");
    }
}
