//! AWS Signature Version 4 for header-signed requests (reference data-protection.md §1.8).
//!
//! The server parses the `Authorization` header, looks up the secret for the access key, and calls
//! [`verify`], which rebuilds the canonical request from the bytes received and compares
//! signatures in constant time. Every failure maps to the AWS error type clients expect.

use aws_lc_rs::{constant_time, digest, hmac};

use crate::Secret;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Why a request is not authenticated, with the AWS error type each case answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("Missing Authentication Token")]
    MissingAuthentication,
    #[error("{0}")]
    Incomplete(String),
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
    )]
    SignatureMismatch,
    #[error("{0}")]
    InvalidScope(String),
    #[error("Signature expired: {request_time} is now earlier than {earliest} ({now} - 5 min.)")]
    Expired {
        request_time: String,
        earliest: String,
        now: String,
    },
    #[error("Signature not yet current: {request_time} is still later than {latest} ({now} + 5 min.)")]
    NotYetCurrent {
        request_time: String,
        latest: String,
        now: String,
    },
}

impl SigV4Error {
    /// The `__type` AWS answers with.
    pub fn aws_error_type(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthentication => "MissingAuthenticationToken",
            SigV4Error::Incomplete(_) => "IncompleteSignature",
            SigV4Error::SignatureMismatch | SigV4Error::InvalidScope(_) => "InvalidSignatureException",
            SigV4Error::Expired { .. } | SigV4Error::NotYetCurrent { .. } => "RequestExpired",
        }
    }
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    pub fn scope(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
    }
}

/// `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=…`
pub fn parse_authorization(header: &str) -> Result<Authorization, SigV4Error> {
    let incomplete = |what: &str| {
        SigV4Error::Incomplete(format!(
            "Authorization header {what}. Authorization={ALGORITHM} Credential=…, SignedHeaders=…, Signature=… is expected"
        ))
    };
    let rest = header
        .strip_prefix(ALGORITHM)
        .ok_or_else(|| incomplete("does not use AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(value) = part.strip_prefix("Credential=") {
            credential = Some(value);
        } else if let Some(value) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(value);
        } else if let Some(value) = part.strip_prefix("Signature=") {
            signature = Some(value);
        } else if !part.is_empty() {
            return Err(incomplete("has an unknown element"));
        }
    }
    let credential = credential.ok_or_else(|| incomplete("lacks Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| incomplete("lacks SignedHeaders"))?;
    let signature = signature.ok_or_else(|| incomplete("lacks Signature"))?;
    let mut scope = credential.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some(terminator), None) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    ) else {
        return Err(SigV4Error::Incomplete(
            "Credential must have the form <AccessKeyId>/<date>/<region>/<service>/aws4_request".into(),
        ));
    };
    if terminator != "aws4_request" {
        return Err(SigV4Error::InvalidScope(
            "Credential should be scoped with a valid terminator: 'aws4_request'".into(),
        ));
    }
    if access_key_id.is_empty() || date.len() != 8 || !date.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(SigV4Error::Incomplete(
            "Credential has an empty access key or a malformed date".into(),
        ));
    }
    if signature.len() != 64 || !signature.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(SigV4Error::Incomplete(
            "Signature must be 64 hexadecimal characters".into(),
        ));
    }
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_string).collect();
    if signed_headers
        .iter()
        .any(|name| name.is_empty() || name.bytes().any(|byte| byte.is_ascii_uppercase()))
    {
        return Err(SigV4Error::Incomplete(
            "SignedHeaders must be lower-case names separated by ';'".into(),
        ));
    }
    Ok(Authorization {
        access_key_id: access_key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// The parts of an HTTP request that SigV4 covers. Header names must be lower case; a name may
/// appear several times.
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The path as received, still percent-encoded.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(input.len());
    for &byte in input {
        if is_unreserved(byte) || (keep_slash && byte == b'/') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&input[index + 1..index + 3], 16)
        {
            decoded.push(byte);
            index += 3;
            continue;
        }
        decoded.push(if bytes[index] == b'+' { b' ' } else { bytes[index] });
        index += 1;
    }
    decoded
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(name), false),
                uri_encode(&percent_decode(value), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

/// The canonical request over `signed_headers` (already sorted as the client listed them).
pub fn canonical_request(request: &RequestParts<'_>, signed_headers: &[String]) -> String {
    // Non-S3 services encode the path twice: the received (encoded) path is encoded once more.
    let path = if request.path.is_empty() { "/" } else { request.path };
    let canonical_uri = uri_encode(path.as_bytes(), true);
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(header, _)| header == name)
            .map(|(_, value)| canonical_header_value(value))
            .collect();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_uri,
        canonical_query(request.query),
        canonical_headers,
        signed_headers.join(";"),
        sha256_hex(request.body)
    )
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

pub fn signing_key(secret_access_key: &Secret<String>, date: &str, region: &str, service: &str) -> Vec<u8> {
    let date_key = hmac_sha256(
        format!("AWS4{}", secret_access_key.expose_secret()).as_bytes(),
        date.as_bytes(),
    );
    let region_key = hmac_sha256(&date_key, region.as_bytes());
    let service_key = hmac_sha256(&region_key, service.as_bytes());
    hmac_sha256(&service_key, b"aws4_request")
}

/// Computes the signature of a request for the given scope: used by clients and by tests.
pub fn signature(
    request: &RequestParts<'_>,
    signed_headers: &[String],
    secret_access_key: &Secret<String>,
    amz_date: &str,
    region: &str,
    service: &str,
) -> String {
    let date = &amz_date[..amz_date.len().min(8)];
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = string_to_sign(amz_date, &scope, &canonical_request(request, signed_headers));
    hex::encode(hmac_sha256(
        &signing_key(secret_access_key, date, region, service),
        to_sign.as_bytes(),
    ))
}

/// Checks the structure rules that need no secret: the signed headers include `host` and every
/// `x-amz-*` header sent, the scope date matches `X-Amz-Date`, the body hash header (if any)
/// matches the body. Call it before looking up the key.
pub fn check_structure(
    authorization: &Authorization,
    request: &RequestParts<'_>,
    amz_date: &str,
) -> Result<(), SigV4Error> {
    if !authorization.signed_headers.iter().any(|name| name == "host") {
        return Err(SigV4Error::Incomplete("'Host' must be a signed header".into()));
    }
    for (name, _) in request.headers {
        if name.starts_with("x-amz-") && name != "x-amz-security-token" && !authorization.signed_headers.contains(name)
        {
            return Err(SigV4Error::Incomplete(format!("'{name}' must be a signed header")));
        }
    }
    for name in &authorization.signed_headers {
        if !request.headers.iter().any(|(header, _)| header == name) {
            return Err(SigV4Error::Incomplete(format!(
                "signed header '{name}' is not in the request"
            )));
        }
    }
    if !amz_date.starts_with(&authorization.date) {
        return Err(SigV4Error::InvalidScope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            authorization.date,
            &amz_date[..amz_date.len().min(8)]
        )));
    }
    if let Some((_, claimed)) = request.headers.iter().find(|(name, _)| name == "x-amz-content-sha256")
        && !claimed.eq_ignore_ascii_case(&sha256_hex(request.body))
    {
        return Err(SigV4Error::Incomplete(
            "x-amz-content-sha256 does not match the body".into(),
        ));
    }
    Ok(())
}

/// Verifies the signature with the secret of `authorization.access_key_id`.
pub fn verify(
    authorization: &Authorization,
    request: &RequestParts<'_>,
    secret_access_key: &Secret<String>,
    amz_date: &str,
) -> Result<(), SigV4Error> {
    let expected = signature(
        request,
        &authorization.signed_headers,
        secret_access_key,
        amz_date,
        &authorization.region,
        &authorization.service,
    );
    constant_time::verify_slices_are_equal(expected.as_bytes(), authorization.signature.as_bytes())
        .map_err(|_| SigV4Error::SignatureMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // AWS SigV4 test suite, "get-vanilla".
    fn vanilla_headers() -> Vec<(String, String)> {
        vec![
            ("host".into(), "example.amazonaws.com".into()),
            ("x-amz-date".into(), "20150830T123600Z".into()),
        ]
    }

    #[test]
    fn matches_the_aws_get_vanilla_vector() {
        let headers = vanilla_headers();
        let request = RequestParts {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let signed = vec!["host".to_string(), "x-amz-date".to_string()];
        let canonical = canonical_request(&request, &signed);
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        let secret = Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string());
        let signature = signature(&request, &signed, &secret, "20150830T123600Z", "us-east-1", "service");
        assert_eq!(
            signature,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );

        let header = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}"
        );
        let authorization = parse_authorization(&header).expect("parses");
        check_structure(&authorization, &request, "20150830T123600Z").expect("well formed");
        verify(&authorization, &request, &secret, "20150830T123600Z").expect("verifies");
        let wrong = Secret::new("not-the-secret".to_string());
        assert_eq!(
            verify(&authorization, &request, &wrong, "20150830T123600Z"),
            Err(SigV4Error::SignatureMismatch)
        );
    }

    #[test]
    fn refuses_unsigned_amz_headers_and_bad_headers() {
        let mut headers = vanilla_headers();
        headers.push(("x-amz-target".into(), "DataPipeline.ListPipelines".into()));
        let request = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"{}",
        };
        let authorization = parse_authorization(&format!(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/datapipeline/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
            "0".repeat(64)
        ))
        .expect("parses");
        assert!(matches!(
            check_structure(&authorization, &request, "20150830T123600Z"),
            Err(SigV4Error::Incomplete(_))
        ));
        for bad in [
            "Bearer abc",
            "AWS4-HMAC-SHA256 Credential=AKID/2015/us-east-1/x/aws4_request, SignedHeaders=host, Signature=00",
        ] {
            assert!(
                matches!(parse_authorization(bad), Err(SigV4Error::Incomplete(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn canonical_query_sorts_and_encodes() {
        assert_eq!(canonical_query("b=2&a=x y&c"), "a=x%20y&b=2&c=");
    }
}
