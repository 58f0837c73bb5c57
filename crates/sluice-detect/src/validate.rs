//! Checks a candidate must pass to count: checksums (Luhn, ISO 7064 mod-97), issuer prefixes,
//! and the rules that rule out impossible numbers. Pure functions over the matched bytes.

fn digits(text: &[u8]) -> Vec<u8> {
    text.iter()
        .filter(|byte| byte.is_ascii_digit())
        .map(|byte| byte - b'0')
        .collect()
}

/// The Luhn checksum (ISO/IEC 7812-1).
pub fn luhn(digits: &[u8]) -> bool {
    if digits.len() < 2 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, &digit)| {
            let digit = u32::from(digit);
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Card numbers of the issuers Macie names (Amex, Dankort, Diners, Discover, Electron, JCB,
/// Mastercard, UnionPay, Visa): length and prefix.
fn issuer_prefix(digits: &[u8]) -> bool {
    let number = |count: usize| -> u32 { digits.iter().take(count).fold(0, |acc, &d| acc * 10 + u32::from(d)) };
    let length = digits.len();
    let (p1, p2, p3, p4, p6) = (number(1), number(2), number(3), number(4), number(6));
    match length {
        15 => p2 == 34 || p2 == 37 || (2131 == p4 || 1800 == p4) || p2 == 30 || p2 == 36,
        14 => (300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 || p3 == 309,
        13 => p1 == 4,
        16..=19 => {
            p1 == 4
                || (51..=55).contains(&p2)
                || (2221..=2720).contains(&p4)
                || p4 == 6011
                || p2 == 65
                || (644..=649).contains(&p3)
                || (622_126..=622_925).contains(&p6)
                || p2 == 62
                || (3528..=3589).contains(&p4)
                || p4 == 5019
                || p2 == 36
        }
        _ => false,
    }
}

/// Issuers' published test numbers: not real cards (Macie ignores them too).
const TEST_CARDS: &[&str] = &[
    "4111111111111111",
    "4012888888881881",
    "4222222222222",
    "4242424242424242",
    "4000056655665556",
    "5555555555554444",
    "5105105105105100",
    "5200828282828210",
    "2223003122003222",
    "378282246310005",
    "371449635398431",
    "378734493671000",
    "6011111111111117",
    "6011000990139424",
    "3530111333300000",
    "3566002020360505",
    "30569309025904",
    "38520000023237",
    "36227206271667",
    "6200000000000005",
    "5019717010103742",
];

pub fn credit_card(text: &[u8]) -> bool {
    let digits = digits(text);
    if !(13..=19).contains(&digits.len()) || !luhn(&digits) || !issuer_prefix(&digits) {
        return false;
    }
    let number: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    !TEST_CARDS.contains(&number.as_str()) && !all_same(&digits)
}

fn all_same(digits: &[u8]) -> bool {
    digits.windows(2).all(|pair| pair[0] == pair[1])
}

/// IBAN lengths by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// The country of a valid IBAN (length for its country, mod-97 = 1), or `None`.
pub fn iban_country(text: &[u8]) -> Option<String> {
    let compact: Vec<u8> = text
        .iter()
        .filter(|byte| !matches!(byte, b' ' | b'-'))
        .map(u8::to_ascii_uppercase)
        .collect();
    let country = std::str::from_utf8(compact.get(..2)?).ok()?;
    let (_, length) = IBAN_LENGTHS.iter().find(|(code, _)| *code == country)?;
    if compact.len() != *length || !compact.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut remainder: u32 = 0;
    for &byte in compact[4..].iter().chain(&compact[..4]) {
        let value = if byte.is_ascii_digit() {
            u32::from(byte - b'0')
        } else {
            u32::from(byte - b'A') + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    (remainder == 1).then(|| country.to_string())
}

/// Macie's type for a bank account by IBAN country.
pub fn iban_type(country: &str) -> &'static str {
    match country {
        "DE" => "GERMANY_BANK_ACCOUNT_NUMBER",
        "FR" => "FRANCE_BANK_ACCOUNT_NUMBER",
        "IT" => "ITALY_BANK_ACCOUNT_NUMBER",
        "ES" => "SPAIN_BANK_ACCOUNT_NUMBER",
        "GB" => "UK_BANK_ACCOUNT_NUMBER",
        "NL" => "NETHERLANDS_BANK_ACCOUNT_NUMBER",
        "BE" => "BELGIUM_BANK_ACCOUNT_NUMBER",
        "AT" => "AUSTRIA_BANK_ACCOUNT_NUMBER",
        "CH" => "SWITZERLAND_BANK_ACCOUNT_NUMBER",
        "IE" => "IRELAND_BANK_ACCOUNT_NUMBER",
        "PL" => "POLAND_BANK_ACCOUNT_NUMBER",
        "PT" => "PORTUGAL_BANK_ACCOUNT_NUMBER",
        "SE" => "SWEDEN_BANK_ACCOUNT_NUMBER",
        "DK" => "DENMARK_BANK_ACCOUNT_NUMBER",
        "FI" => "FINLAND_BANK_ACCOUNT_NUMBER",
        "NO" => "NORWAY_BANK_ACCOUNT_NUMBER",
        _ => "IBAN_BANK_ACCOUNT_NUMBER",
    }
}

pub fn iban(text: &[u8]) -> bool {
    iban_country(text).is_some()
}

/// US SSN: no area 000, 666 or 9xx, no group 00, no serial 0000, not one digit repeated, and
/// not the numbers published in advertising (078-05-1120, 219-09-9999).
pub fn ssn(text: &[u8]) -> bool {
    let digits = digits(text);
    if digits.len() != 9 || all_same(&digits) {
        return false;
    }
    let area = u32::from(digits[0]) * 100 + u32::from(digits[1]) * 10 + u32::from(digits[2]);
    let group = u32::from(digits[3]) * 10 + u32::from(digits[4]);
    let serial = digits[5..].iter().fold(0u32, |acc, &d| acc * 10 + u32::from(d));
    let number: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && number != "078051120"
        && number != "219099999"
}

/// UK NINO: prefixes that are never issued are refused.
pub fn nino(text: &[u8]) -> bool {
    let letters: Vec<u8> = text.iter().filter(|b| b.is_ascii_alphabetic()).copied().collect();
    let prefix = &letters[..2.min(letters.len())];
    !matches!(prefix, b"BG" | b"GB" | b"NK" | b"KN" | b"TN" | b"NT" | b"ZZ") && !prefix.ends_with(b"O")
}

/// A JWT: the first part decodes to a JSON header naming `alg`.
pub fn jwt(text: &[u8]) -> bool {
    use base64::Engine;
    let header = text.split(|byte| *byte == b'.').next().unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|value| value.get("alg").is_some())
}

/// `Authorization: Basic <base64 of user:password>`.
pub fn basic_auth(text: &[u8]) -> bool {
    use base64::Engine;
    let token = text
        .rsplit(|byte| *byte == b' ' || *byte == b'\t')
        .next()
        .unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .is_some_and(|decoded| decoded.contains(&b':') && decoded.len() >= 3)
}

/// A 40-character AWS secret key candidate mixes cases and digits (not a hash, not a word).
pub fn aws_secret(text: &[u8]) -> bool {
    text.iter().any(u8::is_ascii_lowercase)
        && text.iter().any(u8::is_ascii_uppercase)
        && text.iter().any(u8::is_ascii_digit)
}

/// A phone number with a country code: 8 to 15 digits in all (E.164).
pub fn international_phone(text: &[u8]) -> bool {
    (8..=15).contains(&digits(text).len())
}

/// IPv4 addresses that identify someone: not unspecified, loopback or broadcast.
pub fn public_ipv4(text: &[u8]) -> bool {
    !(text.starts_with(b"0.") || text.starts_with(b"127.") || text == b"255.255.255.255")
}

/// Not one digit repeated (0000000000 is a placeholder, not an account).
pub fn not_repeated(text: &[u8]) -> bool {
    let digits = digits(text);
    !digits.is_empty() && !all_same(&digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_and_rules() {
        assert!(credit_card(b"4556 7375 8689 9855"));
        assert!(!credit_card(b"4556 7375 8689 9856"), "Luhn fails");
        assert!(!credit_card(b"4111111111111111"), "issuer test number");
        assert!(!credit_card(b"9556737586899855"), "no issuer");
        assert_eq!(iban_country(b"DE89 3704 0044 0532 0130 00").as_deref(), Some("DE"));
        assert_eq!(iban_country(b"GB82WEST12345698765432").as_deref(), Some("GB"));
        assert!(iban_country(b"DE89 3704 0044 0532 0130 01").is_none(), "mod-97 fails");
        assert!(ssn(b"536-22-1234"));
        assert!(!ssn(b"666-22-1234") && !ssn(b"536-00-1234") && !ssn(b"536-22-0000") && !ssn(b"912-22-1234"));
        assert!(!ssn(b"111-11-1111") && !ssn(b"078-05-1120"));
        assert!(jwt(b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig"));
        assert!(!jwt(b"eyJub3RoaW5nIjoxfQ.eyJzdWIiOiIxMjMifQ.sig"));
        assert!(basic_auth(b"Authorization: Basic dXNlcjpwYXNz"));
        assert!(!basic_auth(b"Authorization: Basic bm9jb2xvbg=="));
        assert!(nino(b"AB 12 34 56 C") && !nino(b"GB 12 34 56 C"));
    }
}
