//! Guard rails on what users type into definitions, names and tags (the warnings of AWS's data
//! protection page, enforced): credentials written into URLs are refused, and personal data in
//! free-form names, descriptions and tags is flagged — those reach logs, audit records and bills.
//!
//! This is a small, fast first line; the sensitive-data detector scans the data itself.

use std::sync::LazyLock;

use regex::Regex;

static URL_WITH_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]+:([^/\s@]+)@").expect("valid pattern"));
static URL_WITH_AWS_SIGNATURE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[?&](X-Amz-Signature|Signature|X-Amz-Credential|AWSAccessKeyId)=").expect("valid pattern")
});
static AWS_ACCESS_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b").expect("valid pattern"));
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b").expect("valid pattern"));
static US_SSN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b\d{3}-\d{2}-\d{4}\b").expect("valid pattern"));
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[^\w])\+\d[\d \-]{8,14}\d\b").expect("valid pattern"));
static CARD_CANDIDATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:\d[ \-]?){12,18}\d\b").expect("valid pattern"));

/// A credential written where it does not belong; the text says what and where, never the value.
pub fn credential_in(value: &str) -> Option<&'static str> {
    if let Some(captures) = URL_WITH_PASSWORD.captures(value) {
        // `#{...}` in the password slot is a parameter the service substitutes: fine.
        let password = captures.get(1).map_or("", |found| found.as_str());
        if !password.starts_with("#{") {
            return Some("a password inside a URL");
        }
    }
    if URL_WITH_AWS_SIGNATURE.is_match(value) {
        return Some("a signed URL (its signature is a credential)");
    }
    if AWS_ACCESS_KEY.is_match(value) {
        return Some("an AWS access key id");
    }
    None
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, digit)| {
            if index % 2 == 1 {
                if digit * 2 > 9 { digit * 2 - 9 } else { digit * 2 }
            } else {
                *digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// What kind of personal data a free-form text seems to hold.
pub fn personal_data_in(value: &str) -> Option<&'static str> {
    if EMAIL.is_match(value) {
        return Some("an email address");
    }
    if US_SSN.is_match(value) {
        return Some("a US social security number");
    }
    for candidate in CARD_CANDIDATE.find_iter(value) {
        let digits: Vec<u32> = candidate
            .as_str()
            .chars()
            .filter_map(|character| character.to_digit(10))
            .collect();
        if (13..=19).contains(&digits.len()) && luhn(&digits) {
            return Some("a payment card number");
        }
    }
    if PHONE.is_match(value) {
        return Some("a phone number");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_found_and_parameters_are_not() {
        assert_eq!(
            credential_in("jdbc:mysql://admin:hunter2@db.internal:3306/sales"),
            Some("a password inside a URL")
        );
        assert_eq!(
            credential_in("https://user:pw@example.com/x"),
            Some("a password inside a URL")
        );
        assert_eq!(
            credential_in("s3://bucket/x?X-Amz-Signature=abc&X-Amz-Credential=def"),
            Some("a signed URL (its signature is a credential)")
        );
        assert_eq!(
            credential_in("key AKIAIOSFODNN7EXAMPLE in text"),
            Some("an AWS access key id")
        );
        assert_eq!(credential_in("jdbc:mysql://admin:#{*myPassword}@db:3306/sales"), None);
        assert_eq!(credential_in("jdbc:mysql://db.internal:3306/sales"), None);
        assert_eq!(
            credential_in("s3://bucket/path/#{format(@scheduledStartTime,'YYYY')}"),
            None
        );
        assert_eq!(credential_in("mailto:someone@example.com"), None);
    }

    #[test]
    fn personal_data_is_recognised_and_ordinary_names_are_not() {
        assert_eq!(personal_data_in("owner jane.doe@example.com"), Some("an email address"));
        assert_eq!(personal_data_in("ssn 123-45-6789"), Some("a US social security number"));
        assert_eq!(
            personal_data_in("card 4111 1111 1111 1111"),
            Some("a payment card number")
        );
        assert_eq!(personal_data_in("call +44 20 7946 0958"), Some("a phone number"));
        for ordinary in [
            "nightly-orders",
            "Copy 2026-11-28",
            "df-06372391ZG65EXAMPLE",
            "ShellCommandActivity_HelloWorld",
            "4111 1111 1111 1112",
        ] {
            assert_eq!(personal_data_in(ordinary), None, "{ordinary}");
        }
    }
}
