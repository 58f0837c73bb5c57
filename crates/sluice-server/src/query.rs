//! The query protocol of IAM and STS (form parameters in, XML out), so `aws iam ...`,
//! `aws sts get-session-token` / `get-caller-identity` and boto3's IAM and STS clients work
//! against Sluice. The request becomes the JSON the handlers take; the JSON answer becomes the
//! service's XML (lists as `member` elements).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde_json::Value;
use sluice_wire::{ApiError, ErrorKind, Operation};

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// The `Action` parameter, cut short (for the audit record of a call that names none we know).
pub fn action(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == "Action")
        .map(|(_, value)| value.chars().take(64).collect())
}

/// The operation and its JSON input. Query parameters name members by path: `UserName`,
/// `Tags.member.1.Key`, `ActionNames.member.2`; `member.N` is the N-th item of a list. Numbers
/// and booleans of the identity API are typed as its shapes want.
pub fn to_json(body: &[u8]) -> Result<(Operation, String), ApiError> {
    let action = action(body).unwrap_or_default();
    let operation = Operation::from_query_action(&action)?;
    let mut input = Value::Object(serde_json::Map::new());
    for (key, value) in form_urlencoded::parse(body) {
        if key == "Action" || key == "Version" {
            continue;
        }
        let value = match key.as_ref() {
            "DurationSeconds" | "MaxItems" | "MaxSessionDuration" => {
                Value::from(value.parse::<i64>().map_err(|_| {
                    ApiError::invalid_request(format!(
                        "1 validation error detected: Value at '{key}' must be a number"
                    ))
                })?)
            }
            "RequireMfa" | "GuardRailsAsErrors" | "PasswordResetRequired" => {
                Value::from(value.eq_ignore_ascii_case("true"))
            }
            _ => Value::from(value.into_owned()),
        };
        insert(&mut input, &key.split('.').collect::<Vec<_>>(), value)?;
    }
    Ok((operation, input.to_string()))
}

/// Places `value` at a parameter's path (`A.member.2.B`) inside `target`.
fn insert(target: &mut Value, path: &[&str], value: Value) -> Result<(), ApiError> {
    let malformed = || ApiError::invalid_request("a query parameter's name is not a member path");
    let Some((first, rest)) = path.split_first() else {
        *target = value;
        return Ok(());
    };
    if *first == "member" {
        let (index, rest) = rest.split_first().ok_or_else(malformed)?;
        let index: usize = index
            .parse()
            .ok()
            .filter(|index| (1..=1000).contains(index))
            .ok_or_else(malformed)?;
        if !target.is_array() {
            *target = Value::Array(Vec::new());
        }
        let items = target.as_array_mut().ok_or_else(malformed)?;
        if items.len() < index {
            items.resize(index, Value::Null);
        }
        return insert(&mut items[index - 1], rest, value);
    }
    if first.is_empty() || first.len() > 128 {
        return Err(malformed());
    }
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let members = target.as_object_mut().ok_or_else(malformed)?;
    insert(members.entry(first.to_string()).or_insert(Value::Null), rest, value)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A JSON object's members as XML elements: nested objects nested, list items as `member`.
fn elements(value: &Value, out: &mut String) {
    if let Value::Object(members) = value {
        for (name, member) in members {
            out.push_str(&format!("<{name}>"));
            content(member, out);
            out.push_str(&format!("</{name}>"));
        }
    }
}

fn content(value: &Value, out: &mut String) {
    match value {
        Value::Object(_) => elements(value, out),
        Value::Array(items) => {
            for item in items {
                out.push_str("<member>");
                content(item, out);
                out.push_str("</member>");
            }
        }
        Value::String(text) => out.push_str(&escape(text)),
        Value::Null => {}
        other => out.push_str(&escape(&other.to_string())),
    }
}

/// The XML namespace of an operation's service.
fn namespace(operation: Option<Operation>) -> &'static str {
    match operation.map(Operation::signing_service) {
        Some("iam") => IAM_NAMESPACE,
        _ => NAMESPACE,
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
            "<{name}Response xmlns=\"{}\"><{name}Result>{result}</{name}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{name}Response>",
            namespace(operation),
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

pub fn error(request_id: &str, operation: Option<Operation>, error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let party = if status.is_server_error() { "Receiver" } else { "Sender" };
    xml(
        status,
        request_id,
        format!(
            "<ErrorResponse xmlns=\"{}\"><Error><Type>{party}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            namespace(operation),
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
        let (operation, json) = to_json(
            b"Action=CreateUser&UserName=ann&Tags.member.1.Key=team&Tags.member.1.Value=blue&Tags.member.2.Key=x&Tags.member.2.Value=y",
        )
        .expect("parses");
        assert_eq!(operation, Operation::CreateUser);
        let value: Value = serde_json::from_str(&json).expect("json");
        assert_eq!(value["Tags"][1]["Key"], "x");
        assert_eq!(value["UserName"], "ann");
        let (_, json) = to_json(b"Action=SimulatePrincipalPolicy&ActionNames.member.1=a:b&ActionNames.member.2=c:d")
            .expect("parses");
        assert_eq!(
            serde_json::from_str::<Value>(&json).expect("json")["ActionNames"],
            serde_json::json!(["a:b", "c:d"])
        );
        assert!(to_json(b"Action=CreateUser&Tags.member.0.Key=x").is_err());
        assert!(to_json(b"Action=CreateUser&Tags.member.99999.Key=x").is_err());
        let mut out = String::new();
        elements(
            &serde_json::json!({"Users": [{"UserName": "a"}, {"UserName": "b"}]}),
            &mut out,
        );
        assert_eq!(
            out,
            "<Users><member><UserName>a</UserName></member><member><UserName>b</UserName></member></Users>"
        );
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
