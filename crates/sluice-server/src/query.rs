//! The query protocol of STS (form parameters in, XML out), so `aws sts get-session-token` and
//! `aws sts get-caller-identity` — and boto3's STS client — work against Sluice. The request
//! becomes the JSON the handlers take; the JSON answer becomes STS's XML.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde_json::Value;
use sluice_wire::{ApiError, ErrorKind, Operation};

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The `Action` parameter, cut short (for the audit record of a call that names none we know).
pub fn action(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == "Action")
        .map(|(_, value)| value.chars().take(64).collect())
}

/// The operation and its JSON input.
pub fn to_json(body: &[u8]) -> Result<(Operation, String), ApiError> {
    let action = action(body).unwrap_or_default();
    let operation = Operation::from_query_action(&action)?;
    let mut input = serde_json::Map::new();
    for (key, value) in form_urlencoded::parse(body) {
        match (operation, key.as_ref()) {
            (Operation::GetSessionToken, "DurationSeconds") => {
                let seconds: i64 = value.parse().map_err(|_| {
                    ApiError::invalid_request(
                        "1 validation error detected: Value at 'DurationSeconds' must be a number",
                    )
                })?;
                input.insert(key.into_owned(), Value::from(seconds));
            }
            (Operation::GetSessionToken, "SerialNumber" | "TokenCode") => {
                input.insert(key.into_owned(), Value::from(value.into_owned()));
            }
            _ => {}
        }
    }
    Ok((operation, Value::Object(input).to_string()))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A JSON object's members as XML elements (nested objects nested).
fn elements(value: &Value, out: &mut String) {
    if let Value::Object(members) = value {
        for (name, member) in members {
            out.push_str(&format!("<{name}>"));
            match member {
                Value::Object(_) => elements(member, out),
                Value::String(text) => out.push_str(&escape(text)),
                other => out.push_str(&escape(&other.to_string())),
            }
            out.push_str(&format!("</{name}>"));
        }
    }
}

fn xml(status: StatusCode, request_id: &str, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

pub fn respond(request_id: &str, operation: Option<Operation>, json: &str) -> Response {
    let name = operation.map_or("Unknown", Operation::name);
    let value: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    let mut result = String::new();
    elements(&value, &mut result);
    xml(
        StatusCode::OK,
        request_id,
        format!(
            "<{name}Response xmlns=\"{NAMESPACE}\"><{name}Result>{result}</{name}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{name}Response>",
            escape(request_id)
        ),
    )
}

/// STS's error codes for the error types Sluice answers with.
fn code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::AccessDeniedException => "AccessDenied",
        ErrorKind::UnrecognizedClientException => "InvalidClientTokenId",
        ErrorKind::InvalidSignatureException => "SignatureDoesNotMatch",
        ErrorKind::ExpiredTokenException => "ExpiredToken",
        ErrorKind::InvalidRequestException | ErrorKind::SerializationException => "ValidationError",
        ErrorKind::UnknownOperationException => "InvalidAction",
        other => other.as_str(),
    }
}

pub fn error(request_id: &str, error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let party = if status.is_server_error() { "Receiver" } else { "Sender" };
    xml(
        status,
        request_id,
        format!(
            "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>{party}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            code(error.kind),
            escape(&error.message),
            escape(request_id)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_parameters_become_json_and_json_becomes_xml() {
        let (operation, json) =
            to_json(b"Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900&SerialNumber=arn%3Aaws%3Aiam%3A%3A1%3Amfa%2Fa&TokenCode=123456")
                .expect("parses");
        assert_eq!(operation, Operation::GetSessionToken);
        let value: Value = serde_json::from_str(&json).expect("json");
        assert_eq!(value["DurationSeconds"], 900);
        assert_eq!(value["SerialNumber"], "arn:aws:iam::1:mfa/a");
        assert!(to_json(b"Action=AssumeRole").is_err());
        assert!(to_json(b"Action=GetSessionToken&DurationSeconds=soon").is_err());
        let mut out = String::new();
        elements(
            &serde_json::json!({"Credentials": {"AccessKeyId": "ASIA<&>"}}),
            &mut out,
        );
        assert_eq!(
            out,
            "<Credentials><AccessKeyId>ASIA&lt;&amp;&gt;</AccessKeyId></Credentials>"
        );
    }
}
