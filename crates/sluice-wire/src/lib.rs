//! The AWS Data Pipeline API on the wire (AWS JSON 1.1): the operation named by `X-Amz-Target`,
//! request and response shapes, the model's input constraints, and error types.
//!
//! This crate only describes and checks shapes; it never does I/O and holds no state.

mod constraints;
pub mod error;
pub mod iam;
pub mod operation;
pub mod shapes;

pub use constraints::Check;
pub use error::{ApiError, ErrorKind};
pub use operation::Operation;

/// Parses a JSON request body into `T`, naming the member at fault on failure.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    if escapes_nul(body) {
        return Err(ApiError::new(
            ErrorKind::SerializationException,
            "the request body holds a NUL character (\\u0000), which no field may contain",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::new(
                ErrorKind::SerializationException,
                format!(
                    "the request body is not valid JSON (line {}, column {})",
                    inner.line(),
                    inner.column()
                ),
            )
        } else {
            let detail = inner.to_string();
            let detail = detail
                .rsplit_once(" at line ")
                .map_or(detail.as_str(), |(head, _)| head)
                .to_string();
            if path == "." {
                ApiError::invalid_request(format!("the request body is invalid: {detail}"))
            } else {
                ApiError::invalid_request(format!("invalid value at '{path}': {detail}"))
            }
        }
    })?;
    deserializer.end().map_err(|_| {
        ApiError::new(
            ErrorKind::SerializationException,
            "the request body has data after the JSON object",
        )
    })?;
    Ok(value)
}

/// Whether a JSON text escapes a NUL character (`\u0000`) in a string: no field of any
/// operation may hold one (PostgreSQL's text cannot, and no AWS name or value does).
fn escapes_nul(body: &[u8]) -> bool {
    let mut index = 0;
    while index < body.len() {
        if body[index] == b'\\' {
            if body.get(index + 1) == Some(&b'u') && body.get(index + 2..index + 6) == Some(b"0000".as_slice()) {
                return true;
            }
            index += 2;
        } else {
            index += 1;
        }
    }
    false
}

#[cfg(test)]
mod nul_tests {
    use super::escapes_nul;

    #[test]
    fn an_escaped_nul_is_found_and_an_escaped_backslash_is_not_one() {
        assert!(escapes_nul(br#"{"name": "a\u0000b"}"#));
        assert!(!escapes_nul(br#"{"name": "a\\u0000b"}"#));
        assert!(!escapes_nul(br#"{"name": "a\u0041"}"#));
    }
}
