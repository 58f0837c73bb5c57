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
