//! Guard rails on what users type into definitions, names and tags (the warnings of AWS's data
//! protection page, enforced): credentials written into URLs or fields are refused, and personal
//! or financial data in free-form names, descriptions and tags is flagged — those reach logs,
//! audit records and bills.
//!
//! Both ask the sensitive-data detector (`sluice-detect`, the managed identifiers that scan
//! pipelines' data), so a name is judged by the same validators (Luhn and issuer prefixes,
//! mod-97, SSN rules, keywords) as a data file; a few URL rules come first because a
//! definition's `#{...}` parameters in a URL's password slot are the right way to write one.

use std::sync::LazyLock;

use regex::Regex;
use sluice_detect::Category;

static URL_WITH_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]+:([^/\s@]+)@").expect("valid pattern"));
static URL_WITH_AWS_SIGNATURE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[?&](X-Amz-Signature|Signature|X-Amz-Credential|AWSAccessKeyId)=").expect("valid pattern")
});
/// Documentation's example keys too: in a definition they are still a key written in clear.
static AWS_ACCESS_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b").expect("valid pattern"));

/// Identifiers not flagged in names and tags: a host's address or a site's coordinates are how
/// infrastructure is described, and the URL rules above judge URLs (parameters allowed).
const NOT_GUARDED: &[&str] = &[
    "IP_ADDRESS",
    "LATITUDE_LONGITUDE",
    "URL_WITH_CREDENTIALS",
    "CONNECTION_STRING_PASSWORD",
    "HTTP_COOKIE",
    "AWS_ACCESS_KEY_ID",
];

/// The type of the first detection in `text` whose category `wanted` accepts.
fn first_detection(text: &str, wanted: impl Fn(Category) -> bool) -> Option<String> {
    // `None` only if the identifiers failed to compile (the detector's own tests rule it out);
    // the URL rules still apply then.
    let detector = sluice_detect::managed()?;
    let bytes = text.as_bytes();
    detector.candidates(bytes).next()?;
    let mut hits = Vec::new();
    detector.scan_unit(bytes, None, &mut hits);
    let identifiers = detector.identifiers();
    hits.into_iter()
        .find(|hit| {
            identifiers
                .get(hit.identifier)
                .is_some_and(|identifier| wanted(identifier.category) && !NOT_GUARDED.contains(&identifier.id.as_str()))
        })
        .map(|hit| hit.type_name)
}

/// A credential written where it does not belong; the text says what and where, never the value.
pub fn credential_in(value: &str) -> Option<String> {
    if let Some(captures) = URL_WITH_PASSWORD.captures(value) {
        // A password slot that is one `#{...}` expression is a parameter the service
        // substitutes: fine. Anything else there (`#{x}hunter2` too) is a password.
        let password = captures.get(1).map_or("", |found| found.as_str());
        let one_expression =
            password.starts_with("#{") && password.ends_with('}') && !password[2..password.len() - 1].contains('}');
        if !one_expression {
            return Some("a password inside a URL".into());
        }
    }
    if URL_WITH_AWS_SIGNATURE.is_match(value) {
        return Some("a signed URL (its signature is a credential)".into());
    }
    if AWS_ACCESS_KEY.is_match(value) {
        return Some("an AWS access key id".into());
    }
    first_detection(value, |category| category == Category::Credentials).map(|kind| format!("a credential ({kind})"))
}

/// What kind of personal or financial data a free-form text seems to hold.
pub fn personal_data_in(value: &str) -> Option<String> {
    let kind = first_detection(value, |category| {
        matches!(category, Category::Personal | Category::Financial)
    })?;
    Some(match kind.as_str() {
        "EMAIL_ADDRESS" => "an email address".into(),
        "USA_SOCIAL_SECURITY_NUMBER" => "a US social security number".into(),
        "CREDIT_CARD_NUMBER" => "a payment card number".into(),
        "PHONE_NUMBER" => "a phone number".into(),
        other => format!("personal or financial data ({other})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn says(found: Option<String>) -> Option<&'static str> {
        found.map(|kind| &*Box::leak(kind.into_boxed_str()))
    }

    #[test]
    fn credentials_in_urls_and_fields_are_found_and_parameters_are_not() {
        assert_eq!(
            says(credential_in("jdbc:mysql://admin:hunter2@db.internal:3306/sales")),
            Some("a password inside a URL")
        );
        assert_eq!(
            says(credential_in("https://user:pw@example.com/x")),
            Some("a password inside a URL")
        );
        assert_eq!(
            says(credential_in("s3://bucket/x?X-Amz-Signature=abc&X-Amz-Credential=def")),
            Some("a signed URL (its signature is a credential)")
        );
        assert_eq!(
            says(credential_in("key AKIAIOSFODNN7EXAMPLE in text")),
            Some("an AWS access key id")
        );
        // What the detector knows as credentials, beyond URLs.
        assert_eq!(
            says(credential_in(
                "curl -H 'Authorization: Basic YWRtaW46aHVudGVyMg==' https://api.internal"
            )),
            Some("a credential (HTTP_BASIC_AUTH_HEADER)")
        );
        assert_eq!(
            says(credential_in("GITHUB=ghp_Zx9kQ2vLmN4pR7sT1uW3yB5dF8hJ0kL2nP4r")),
            Some("a credential (GITHUB_TOKEN)")
        );
        assert_eq!(
            says(credential_in("-----BEGIN OPENSSH PRIVATE KEY-----")),
            Some("a credential (OPENSSH_PRIVATE_KEY)")
        );
        assert_eq!(
            says(credential_in("jdbc:mysql://admin:#{myUser}hunter2@db:3306/sales")),
            Some("a password inside a URL")
        );
        for fine in [
            "jdbc:mysql://admin:#{*myPassword}@db:3306/sales",
            "jdbc:mysql://db.internal:3306/sales",
            "s3://bucket/path/#{format(@scheduledStartTime,'YYYY')}",
            "mailto:someone@example.com",
            "jdbc:postgresql://db:5432/sales?user=etl&password=#{*myPassword}",
            "echo hello > ${OUTPUT1_STAGING_DIR}/out.txt",
        ] {
            assert_eq!(credential_in(fine), None, "{fine}");
        }
    }

    #[test]
    fn personal_data_is_recognised_by_the_detector_and_ordinary_names_are_not() {
        assert_eq!(
            says(personal_data_in("owner jane.doe@example.com")),
            Some("an email address")
        );
        assert_eq!(
            says(personal_data_in("ssn 536-22-1234")),
            Some("a US social security number")
        );
        assert_eq!(
            says(personal_data_in("card 4556 7375 8689 9855")),
            Some("a payment card number")
        );
        assert_eq!(
            says(personal_data_in("iban DE89370400440532013000")),
            Some("personal or financial data (GERMANY_BANK_ACCOUNT_NUMBER)")
        );
        for ordinary in [
            "nightly-orders",
            "Copy 2026-11-28",
            "df-06372391ZG65EXAMPLE",
            "ShellCommandActivity_HelloWorld",
            // Fails Luhn; an issuer's published test number; a host's address.
            "4556 7375 8689 9856",
            "card 4111 1111 1111 1111",
            "primary db at 10.0.4.17",
        ] {
            assert_eq!(personal_data_in(ordinary), None, "{ordinary}");
        }
    }
}
