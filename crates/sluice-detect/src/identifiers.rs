//! The managed data identifiers: what each finds (a regular expression over bytes, never
//! crossing a line), the keywords that must be near it (Macie's 30 characters, or a column name /
//! JSON path), the checks it must pass, and Macie's severity by count. Names and categories are
//! Macie's; EMAIL_ADDRESS, IP_ADDRESS, AWS_ACCESS_KEY_ID and the service tokens are Sluice's
//! additions (Macie has no e-mail identifier).

use crate::validate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Credentials,
    Financial,
    Personal,
    Custom,
}

impl Category {
    /// Macie's `sensitiveData[].category`.
    pub fn macie(self) -> &'static str {
        match self {
            Category::Credentials => "CREDENTIALS",
            Category::Financial => "FINANCIAL_INFORMATION",
            Category::Personal => "PERSONAL_INFORMATION",
            Category::Custom => "CUSTOM_IDENTIFIER",
        }
    }

    /// The finding type's suffix (`SensitiveData:S3Object/<suffix>`).
    pub fn finding_suffix(self) -> &'static str {
        match self {
            Category::Credentials => "Credentials",
            Category::Financial => "Financial",
            Category::Personal => "Personal",
            Category::Custom => "CustomIdentifier",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Low = 1,
    Medium = 2,
    High = 3,
}

impl Severity {
    pub fn description(self) -> &'static str {
        match self {
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
        }
    }
}

/// Severity for 1, 2–99 and ≥ 100 occurrences in one object (Macie's table).
pub type SeverityByCount = [Severity; 3];

const HIGH: SeverityByCount = [Severity::High; 3];
const LOW_MEDIUM_HIGH: SeverityByCount = [Severity::Low, Severity::Medium, Severity::High];
const MEDIUM_HIGH_HIGH: SeverityByCount = [Severity::Medium, Severity::High, Severity::High];
const LOW_MEDIUM_MEDIUM: SeverityByCount = [Severity::Low, Severity::Medium, Severity::Medium];

pub type Validator = fn(&[u8]) -> bool;

#[derive(Debug, Clone)]
pub struct Identifier {
    /// Macie's type name, e.g. `CREDIT_CARD_NUMBER`.
    pub id: String,
    pub category: Category,
    /// Over bytes, ASCII classes; must not match a line break.
    pub pattern: String,
    /// Case-insensitive; a keyword with spaces also matches it with `_`, `-` or nothing between.
    pub keywords: Vec<String>,
    pub keyword_required: bool,
    /// How far a keyword may be: characters either side (managed), or between the keyword's end
    /// and the match's end (custom identifiers, where the keyword must precede).
    pub max_distance: usize,
    pub keyword_must_precede: bool,
    pub validator: Option<Validator>,
    /// Values that never count (issuers' test numbers, documentation examples).
    pub ignore_values: Vec<String>,
    /// Custom identifiers: a match containing one of these (case-sensitive) is dropped.
    pub ignore_words: Vec<String>,
    pub severity: SeverityByCount,
    /// Bytes that may not touch the match on either side (a 40-character key inside a longer
    /// base64 string is not a key).
    pub not_adjoining: Option<fn(u8) -> bool>,
}

fn base64_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'+' | b'=')
}

fn managed(
    id: &str,
    category: Category,
    pattern: &str,
    keywords: &[&str],
    keyword_required: bool,
    validator: Option<Validator>,
    severity: SeverityByCount,
) -> Identifier {
    Identifier {
        id: id.to_string(),
        category,
        pattern: pattern.to_string(),
        keywords: keywords.iter().map(|keyword| keyword.to_string()).collect(),
        keyword_required,
        max_distance: 30,
        keyword_must_precede: false,
        validator,
        ignore_values: Vec::new(),
        ignore_words: Vec::new(),
        severity,
        not_adjoining: None,
    }
}

/// Every managed identifier Sluice ships.
pub fn managed_identifiers() -> Vec<Identifier> {
    use Category::{Credentials, Financial, Personal};
    let mut identifiers = vec![
        // ---- Credentials
        managed(
            "AWS_ACCESS_KEY_ID",
            Credentials,
            r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b",
            &[],
            false,
            None,
            HIGH,
        ),
        managed(
            "AWS_CREDENTIALS",
            Credentials,
            r"[A-Za-z0-9/+]{40}",
            &[
                "aws_secret_access_key",
                "secret access key",
                "secret key",
                "aws secret",
                "credentials",
                "set-awscredential",
                "secretaccesskey",
            ],
            true,
            Some(validate::aws_secret),
            HIGH,
        ),
        managed(
            "OPENSSH_PRIVATE_KEY",
            Credentials,
            r"-----BEGIN OPENSSH PRIVATE KEY-----",
            &[],
            false,
            None,
            HIGH,
        ),
        managed(
            "PKCS",
            Credentials,
            r"-----BEGIN (?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY-----",
            &[],
            false,
            None,
            HIGH,
        ),
        managed(
            "PGP_PRIVATE_KEY",
            Credentials,
            r"-----BEGIN PGP PRIVATE KEY BLOCK-----",
            &[],
            false,
            None,
            HIGH,
        ),
        managed(
            "PUTTY_PRIVATE_KEY",
            Credentials,
            r"PuTTY-User-Key-File-[23]: [a-z0-9-]+",
            &[],
            false,
            None,
            HIGH,
        ),
        managed(
            "JSON_WEB_TOKEN",
            Credentials,
            r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
            &[],
            false,
            Some(validate::jwt),
            HIGH,
        ),
        managed(
            "HTTP_BASIC_AUTH_HEADER",
            Credentials,
            r"(?i:(?:proxy-)?authorization)[ \t]*:[ \t]*(?i:basic)[ \t]+[A-Za-z0-9+/]{4,}={0,2}",
            &[],
            false,
            Some(validate::basic_auth),
            HIGH,
        ),
        managed(
            "STRIPE_CREDENTIALS",
            Credentials,
            r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{24,99}\b",
            &[],
            false,
            None,
            HIGH,
        ),
        managed(
            "GITHUB_TOKEN",
            Credentials,
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b",
            &[],
            false,
            None,
            HIGH,
        ),
        managed(
            "SLACK_TOKEN",
            Credentials,
            r"\bxox[baprs]-[0-9A-Za-z-]{10,250}",
            &[],
            false,
            None,
            HIGH,
        ),
        managed(
            "GCP_API_KEY",
            Credentials,
            r"\bAIza[0-9A-Za-z_-]{35}\b",
            &[
                "gcp api key",
                "google api key",
                "google-api-key",
                "x-goog-api-key",
                "g_places_key",
                "api key",
                "apikey",
                "key=",
            ],
            true,
            None,
            HIGH,
        ),
        managed(
            "URL_WITH_CREDENTIALS",
            Credentials,
            r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^ \t\r\n:/@]{1,64}:[^ \t\r\n@/]{1,128}@[A-Za-z0-9.-]+",
            &[],
            false,
            None,
            HIGH,
        ),
        managed(
            "CONNECTION_STRING_PASSWORD",
            Credentials,
            r"(?i:\b(?:password|pwd|passwd))[ \t]*=[ \t]*[^ \t\r\n;'&]{3,128}",
            &[
                "server",
                "host",
                "database",
                "data source",
                "user id",
                "uid",
                "jdbc",
                "connection",
            ],
            true,
            None,
            HIGH,
        ),
        // ---- Financial
        managed(
            "CREDIT_CARD_NUMBER",
            Financial,
            r"\b(?:\d[ -]?){12,18}\d\b",
            &[],
            false,
            Some(validate::credit_card),
            HIGH,
        ),
        managed(
            "CREDIT_CARD_SECURITY_CODE",
            Financial,
            r"\b\d{3,4}\b",
            &[
                "cvv",
                "cvc",
                "cvv2",
                "cvc2",
                "card verification",
                "security code",
                "csc",
            ],
            true,
            None,
            MEDIUM_HIGH_HIGH,
        ),
        managed(
            "CREDIT_CARD_EXPIRATION",
            Financial,
            r"\b(?:0[1-9]|1[0-2])[ ]?[/-][ ]?(?:20)?\d{2}\b",
            &[
                "exp",
                "expiration",
                "expiry",
                "expires",
                "valid thru",
                "valid through",
                "exp d/m/y",
            ],
            true,
            None,
            LOW_MEDIUM_HIGH,
        ),
        managed(
            "BANK_ACCOUNT_NUMBER",
            Financial,
            r"\b\d{9,17}\b",
            &[
                "bank account",
                "checking account",
                "savings account",
                "account number",
                "acct no",
                "account no",
                "bank acct",
            ],
            true,
            Some(validate::not_repeated),
            HIGH,
        ),
        managed(
            "IBAN",
            Financial,
            r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b",
            &[],
            false,
            Some(validate::iban),
            HIGH,
        ),
        // ---- Personal
        managed(
            "EMAIL_ADDRESS",
            Personal,
            r"\b[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b",
            &[],
            false,
            None,
            LOW_MEDIUM_HIGH,
        ),
        managed(
            "PHONE_NUMBER",
            Personal,
            r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}\b",
            &[],
            false,
            Some(validate::international_phone),
            LOW_MEDIUM_HIGH,
        ),
        managed(
            "PHONE_NUMBER",
            Personal,
            r"(?:\b|\()[2-9]\d{2}\)?[ .-]\d{3}[ .-]\d{4}\b",
            &["phone", "telephone", "tel", "mobile", "cell", "fax", "call"],
            true,
            None,
            LOW_MEDIUM_HIGH,
        ),
        managed(
            "USA_SOCIAL_SECURITY_NUMBER",
            Personal,
            r"\b(?:\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}|\d{9})\b",
            &["social security", "ssn", "ss#", "ss #", "ssa number", "social sec"],
            true,
            Some(validate::ssn),
            HIGH,
        ),
        managed(
            "USA_PASSPORT_NUMBER",
            Personal,
            r"\b[A-Z]?\d{8,9}\b",
            &["passport"],
            true,
            Some(validate::not_repeated),
            MEDIUM_HIGH_HIGH,
        ),
        managed(
            "UK_NATIONAL_INSURANCE_NUMBER",
            Personal,
            r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][ ]?\d{2}[ ]?\d{2}[ ]?\d{2}[ ]?[A-D]\b",
            &["national insurance", "nino", "ni number", "insurance no"],
            true,
            Some(validate::nino),
            HIGH,
        ),
        managed(
            "DRIVERS_LICENSE",
            Personal,
            r"\b[A-Z]{1,2}\d{6,12}\b",
            &[
                "driver's license",
                "drivers license",
                "driver license",
                "driving licence",
                "dl#",
                "dl number",
                "licence number",
                "license number",
            ],
            true,
            None,
            LOW_MEDIUM_HIGH,
        ),
        managed(
            "DATE_OF_BIRTH",
            Personal,
            r"\b(?:(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])|(?:0?[1-9]|[12]\d|3[01])[/.](?:0?[1-9]|1[0-2])[/.](?:19|20)\d{2}|(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])/(?:19|20)\d{2})\b",
            &[
                "dob",
                "date of birth",
                "birthdate",
                "birth date",
                "birthday",
                "born",
                "bday",
                "b-day",
            ],
            true,
            None,
            LOW_MEDIUM_HIGH,
        ),
        managed(
            "LATITUDE_LONGITUDE",
            Personal,
            r"-?\b\d{1,2}\.\d{4,8},[ ]?-?\d{1,3}\.\d{4,8}\b",
            &["lat", "latitude", "long", "longitude", "gps", "coordinates", "location"],
            true,
            None,
            LOW_MEDIUM_MEDIUM,
        ),
        managed(
            "HTTP_COOKIE",
            Personal,
            r"(?i:\b(?:set-)?cookie)[ \t]*:[ \t]*[A-Za-z0-9_.-]{1,64}=[^ \t\r\n;]{4,}",
            &[],
            false,
            None,
            LOW_MEDIUM_HIGH,
        ),
        managed(
            "IP_ADDRESS",
            Personal,
            r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
            &[],
            false,
            Some(validate::public_ipv4),
            LOW_MEDIUM_HIGH,
        ),
    ];
    for identifier in &mut identifiers {
        identifier.ignore_values = match identifier.id.as_str() {
            "AWS_ACCESS_KEY_ID" => vec!["AKIAIOSFODNN7EXAMPLE".into(), "AKIAI44QH8DHBEXAMPLE".into()],
            "AWS_CREDENTIALS" => vec![
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY".into(),
            ],
            "STRIPE_CREDENTIALS" => vec!["sk_test_4eC39HqLyjWDarjtT1zdp7dc".into()],
            _ => Vec::new(),
        };
        if identifier.id == "AWS_CREDENTIALS" {
            identifier.not_adjoining = Some(base64_byte);
        }
    }
    identifiers
}

/// A custom data identifier, as Macie's CreateCustomDataIdentifier takes it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomIdentifier {
    pub name: String,
    pub regex: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub ignore_words: Vec<String>,
    /// 1–300 characters between a keyword's end and the match's end (default 50).
    pub maximum_match_distance: Option<usize>,
}

impl CustomIdentifier {
    pub fn identifier(&self) -> anyhow::Result<Identifier> {
        if self.name.is_empty() || self.name.len() > 128 {
            anyhow::bail!("a custom identifier's name must be 1 to 128 characters");
        }
        if self.regex.is_empty() || self.regex.len() > 512 {
            anyhow::bail!("custom identifier {}: the regex must be 1 to 512 characters", self.name);
        }
        if self.keywords.len() > 50 || self.keywords.iter().any(|keyword| !(3..=90).contains(&keyword.len())) {
            anyhow::bail!(
                "custom identifier {}: at most 50 keywords of 3 to 90 characters",
                self.name
            );
        }
        if self.ignore_words.len() > 10 || self.ignore_words.iter().any(|word| !(4..=90).contains(&word.len())) {
            anyhow::bail!(
                "custom identifier {}: at most 10 ignore words of 4 to 90 characters",
                self.name
            );
        }
        let distance = self.maximum_match_distance.unwrap_or(50);
        if !(1..=300).contains(&distance) {
            anyhow::bail!("custom identifier {}: maximumMatchDistance must be 1 to 300", self.name);
        }
        Ok(Identifier {
            id: self.name.clone(),
            category: Category::Custom,
            pattern: self.regex.clone(),
            keywords: self.keywords.clone(),
            keyword_required: !self.keywords.is_empty(),
            max_distance: distance,
            keyword_must_precede: true,
            validator: None,
            ignore_values: Vec::new(),
            ignore_words: self.ignore_words.clone(),
            severity: [Severity::Medium; 3],
            not_adjoining: None,
        })
    }
}
