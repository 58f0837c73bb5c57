//! A labelled corpus, generated: realistic text lines, CSV rows and JSON lines, each carrying one
//! planted value of a known identifier (valid by that identifier's rules), and lookalikes that
//! must not match (numbers failing Luhn or mod-97, impossible SSNs, issuers' test numbers,
//! documentation keys, values without their keyword). Precision and recall per identifier are
//! printed (`cargo test -p sluice-detect --test corpus -- --nocapture`); recall must be ≥ 0.99 for
//! every identifier and no lookalike may match anything.

use std::collections::BTreeMap;

use base64::Engine;
use sluice_detect::{Detector, Format, Location, scan_object};

struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
    fn digits(&mut self, count: usize) -> String {
        (0..count).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn from(&mut self, alphabet: &[u8], count: usize) -> String {
        (0..count)
            .map(|_| char::from(alphabet[self.below(alphabet.len() as u64) as usize]))
            .collect()
    }
}

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn luhn_complete(prefix: &str, length: usize, random: &mut Random) -> String {
    let mut number = format!("{prefix}{}", random.digits(length - prefix.len() - 1));
    for check in 0..10 {
        let candidate = format!("{number}{check}");
        let digits: Vec<u8> = candidate.bytes().map(|b| b - b'0').collect();
        if sluice_detect::validate::luhn(&digits) {
            number = candidate;
            break;
        }
    }
    number
}

fn iban(country: &str, bban: &str) -> String {
    let rearranged = format!("{bban}{country}00");
    let mut remainder: u64 = 0;
    for character in rearranged.chars() {
        let value = character.to_digit(36).expect("alphanumeric") as u64;
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    format!("{country}{:02}{bban}", 98 - remainder)
}

fn group4(text: &str) -> String {
    text.as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One planted value: the identifier it must be found as, the bare value, the text a line or
/// note carries it in, and the column name / JSON key structured data keeps it under.
struct Plant {
    kind: &'static str,
    value: String,
    sentence: String,
    column: &'static str,
}

fn plant(kind: &'static str, random: &mut Random) -> Plant {
    let name = random.pick(&["ada", "grace", "linus", "barbara", "ken", "frances"]);
    let (value, sentence, column) = match kind {
        "CREDIT_CARD_NUMBER" => {
            let number = luhn_complete(random.pick(&["4", "51", "53", "55"]), 16, random);
            let shown = if random.below(2) == 0 { group4(&number) } else { number };
            (
                shown.clone(),
                format!("charged card {shown} for the renewal"),
                "card_number",
            )
        }
        "CREDIT_CARD_EXPIRATION" => {
            let value = format!("{:02}/{}", 1 + random.below(12), 27 + random.below(6));
            (value.clone(), format!("card expiry {value} on file"), "card_expiration")
        }
        "CREDIT_CARD_SECURITY_CODE" => {
            let value = format!("{}", 100 + random.below(900));
            (value.clone(), format!("cvv {value} entered at checkout"), "cvv")
        }
        "BANK_ACCOUNT_NUMBER" => {
            let value = format!("{}{}", 1 + random.below(9), random.digits(11));
            (
                value.clone(),
                format!("bank account {value} for payroll"),
                "bank_account",
            )
        }
        "IBAN" => {
            let value = if random.below(2) == 0 {
                iban("DE", &random.digits(18))
            } else {
                iban("GB", &format!("{}{}", random.from(UPPER, 4), random.digits(14)))
            };
            let shown = if random.below(2) == 0 { group4(&value) } else { value };
            (shown.clone(), format!("transfer to {shown} by friday"), "payee")
        }
        "EMAIL_ADDRESS" => {
            let value = format!(
                "{name}.{}@{}.com",
                random.from(b"abcdefghij", 5),
                random.pick(&["mail", "corp", "post"])
            );
            (value.clone(), format!("reply sent to {value} this morning"), "contact")
        }
        "PHONE_NUMBER" => {
            let value = if random.below(2) == 0 {
                format!("+44 20 7946 {}", random.digits(4))
            } else {
                format!("+1 415 {} {}", 200 + random.below(700), random.digits(4))
            };
            (
                value.clone(),
                format!("reach the driver at {value} before noon"),
                "driver",
            )
        }
        "USA_SOCIAL_SECURITY_NUMBER" => {
            let area = loop {
                let area = 1 + random.below(899);
                if area != 666 {
                    break area;
                }
            };
            let value = format!("{area:03}-{:02}-{:04}", 1 + random.below(99), 1 + random.below(9999));
            (value.clone(), format!("employee ssn {value} verified"), "ssn")
        }
        "USA_PASSPORT_NUMBER" => {
            let value = format!("{}{}", random.from(UPPER, 1), random.digits(8));
            (
                value.clone(),
                format!("passport {value} scanned at the desk"),
                "passport",
            )
        }
        "UK_NATIONAL_INSURANCE_NUMBER" => {
            let value = format!(
                "{}{} {} {} {} {}",
                random.pick(&["A", "C", "J", "P"]),
                random.pick(&["B", "E", "H", "R"]),
                random.digits(2),
                random.digits(2),
                random.digits(2),
                random.pick(&["A", "B", "C", "D"])
            );
            (value.clone(), format!("national insurance {value} on the form"), "nino")
        }
        "DRIVERS_LICENSE" => {
            let value = format!("{}{}", random.from(UPPER, 1), random.digits(7));
            (
                value.clone(),
                format!("driver's license {value} checked"),
                "drivers_license",
            )
        }
        "DATE_OF_BIRTH" => {
            let value = format!(
                "{}-{:02}-{:02}",
                1950 + random.below(50),
                1 + random.below(12),
                1 + random.below(28)
            );
            (value.clone(), format!("date of birth {value} confirmed"), "dob")
        }
        "LATITUDE_LONGITUDE" => {
            let value = format!(
                "{}.{}, -{}.{}",
                10 + random.below(70),
                random.digits(5),
                random.below(170),
                random.digits(5)
            );
            (value.clone(), format!("gps {value} at drop-off"), "gps")
        }
        "HTTP_COOKIE" => {
            let value = format!("Cookie: session={}", random.from(ALNUM, 24));
            (value.clone(), format!("request header {value}"), "header")
        }
        "IP_ADDRESS" => {
            let value = format!("203.0.{}.{}", random.below(256), 1 + random.below(254));
            (value.clone(), format!("login from {value} accepted"), "client")
        }
        "AWS_ACCESS_KEY_ID" => {
            let value = format!("AKIA{}", random.from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16));
            (value.clone(), format!("deploy used {value} yesterday"), "deploy_key")
        }
        "AWS_CREDENTIALS" => {
            let value = format!("{}aZ9{}", random.from(ALNUM, 20), random.from(ALNUM, 17));
            (
                value.clone(),
                format!("aws_secret_access_key = {value}"),
                "aws_secret_access_key",
            )
        }
        "OPENSSH_PRIVATE_KEY" => {
            let value = "-----BEGIN OPENSSH PRIVATE KEY-----".to_string();
            (value.clone(), format!("{value} b3BlbnNzaC1rZXktdjE"), "key")
        }
        "PKCS" => {
            let value = "-----BEGIN RSA PRIVATE KEY-----".to_string();
            (value.clone(), format!("{value} MIIEpAIBAAKCAQEA"), "key")
        }
        "PGP_PRIVATE_KEY" => {
            let value = "-----BEGIN PGP PRIVATE KEY BLOCK-----".to_string();
            (value.clone(), value.clone(), "key")
        }
        "PUTTY_PRIVATE_KEY" => {
            let value = "PuTTY-User-Key-File-3: ssh-ed25519".to_string();
            (value.clone(), value.clone(), "key")
        }
        "JSON_WEB_TOKEN" => {
            let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("{{\"sub\":\"{name}\",\"n\":{}}}", random.below(1000)));
            let value = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.{}", random.from(ALNUM, 22));
            (value.clone(), format!("bearer {value} expired"), "jwt")
        }
        "HTTP_BASIC_AUTH_HEADER" => {
            let value = format!(
                "Authorization: Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{name}:{}", random.from(ALNUM, 10)))
            );
            (value.clone(), value.clone(), "header")
        }
        "STRIPE_CREDENTIALS" => {
            let value = format!("sk_live_{}", random.from(ALNUM, 24));
            (value.clone(), format!("billing uses {value} now"), "billing")
        }
        "GITHUB_TOKEN" => {
            let value = format!("ghp_{}", random.from(ALNUM, 36));
            (value.clone(), format!("ci token {value} rotated"), "ci")
        }
        "SLACK_TOKEN" => {
            let value = format!("xoxb-{}-{}", random.digits(11), random.from(ALNUM, 24));
            (value.clone(), format!("bot {value} posted"), "bot")
        }
        "GCP_API_KEY" => {
            let value = format!("AIza{}", random.from(ALNUM, 35));
            (
                value.clone(),
                format!("google api key {value} restricted"),
                "google_api_key",
            )
        }
        "URL_WITH_CREDENTIALS" => {
            let value = format!(
                "postgres://{name}:{}@db{}.internal",
                random.from(ALNUM, 12),
                random.below(10)
            );
            (value.clone(), format!("connect with {value}/orders"), "dsn")
        }
        "CONNECTION_STRING_PASSWORD" => {
            let value = format!("Password={}", random.from(ALNUM, 12));
            (
                value.clone(),
                format!("Server=db1;Database=orders;User Id={name};{value};"),
                "connection",
            )
        }
        other => panic!("no generator for {other}"),
    };
    Plant {
        kind,
        value,
        sentence,
        column,
    }
}

const KINDS: &[&str] = &[
    "CREDIT_CARD_NUMBER",
    "CREDIT_CARD_EXPIRATION",
    "CREDIT_CARD_SECURITY_CODE",
    "BANK_ACCOUNT_NUMBER",
    "IBAN",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "USA_SOCIAL_SECURITY_NUMBER",
    "USA_PASSPORT_NUMBER",
    "UK_NATIONAL_INSURANCE_NUMBER",
    "DRIVERS_LICENSE",
    "DATE_OF_BIRTH",
    "LATITUDE_LONGITUDE",
    "HTTP_COOKIE",
    "IP_ADDRESS",
    "AWS_ACCESS_KEY_ID",
    "AWS_CREDENTIALS",
    "OPENSSH_PRIVATE_KEY",
    "PKCS",
    "PGP_PRIVATE_KEY",
    "PUTTY_PRIVATE_KEY",
    "JSON_WEB_TOKEN",
    "HTTP_BASIC_AUTH_HEADER",
    "STRIPE_CREDENTIALS",
    "GITHUB_TOKEN",
    "SLACK_TOKEN",
    "GCP_API_KEY",
    "URL_WITH_CREDENTIALS",
    "CONNECTION_STRING_PASSWORD",
];

const LOOKALIKES: &[&str] = &[
    "invoice 4556737586899856 paid in full",
    "tracking number 1234 5678 9012 3456 assigned",
    "test card 4111111111111111 declined",
    "sandbox card 5555555555554444 approved",
    "reference DE89370400440532013001 closed",
    "reference GB82WEST12345698765433 closed",
    "ssn 666-12-3456 rejected as invalid",
    "ssn 000-12-3456 rejected as invalid",
    "ssn 123-00-4567 rejected as invalid",
    "order 536221234 shipped to the warehouse",
    "example key AKIAIOSFODNN7EXAMPLE from the documentation",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "version 1.2.3 released with fixes",
    "mail root@localhost about the backup",
    "token eyJub3RoaW5nIjoxfQ.eyJzdWIiOiIxMjMifQ.c2ln",
    "call extension 555-1234 for support",
    "the office opened in 1984",
    "meeting moved to 2024-05-06 at noon",
    "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 matches",
    "build 20240506123000 published",
    "price 4,556.73 per unit",
    "listening on 127.0.0.1 and 0.0.0.0",
    "Authorization: Basic bm9jb2xvbg==",
    "stripe example sk_test_4eC39HqLyjWDarjtT1zdp7dc in the guide",
    "account 0000000000 is a placeholder",
    "bank account 111111111111 placeholder",
];

#[derive(Default)]
struct Score {
    planted: u64,
    found: u64,
    false_hits: u64,
}

fn matches(kind: &str, reported: &str) -> bool {
    reported == kind || (kind == "IBAN" && reported.ends_with("_BANK_ACCOUNT_NUMBER"))
}

#[test]
fn recall_and_precision_per_identifier_on_a_labelled_corpus() {
    let detector = Detector::managed().expect("identifiers compile");
    let mut random = Random(0x5EED_1234_ABCD_0001);
    let per_kind = 100;
    let mut plants = Vec::new();
    for kind in KINDS {
        for _ in 0..per_kind {
            plants.push(plant(kind, &mut random));
        }
    }
    // Interleave kinds, as real data would.
    for index in (1..plants.len()).rev() {
        let other = random.below(index as u64 + 1) as usize;
        plants.swap(index, other);
    }
    let mut scores: BTreeMap<&str, Score> = BTreeMap::new();
    let mut lookalike_hits = Vec::new();

    // Text: one plant per line, lookalikes on their own lines, filler between.
    let mut text = String::new();
    let mut line_kind: Vec<Option<&str>> = vec![None]; // 1-based
    for (index, plant) in plants.iter().enumerate() {
        text.push_str(&format!("2026-11-29 INFO worker {index} finished the nightly batch\n"));
        line_kind.push(None);
        text.push_str(&format!("2026-11-29 INFO {}\n", plant.sentence));
        line_kind.push(Some(plant.kind));
        if index % 10 == 0 {
            text.push_str(&format!(
                "2026-11-29 WARN {}\n",
                LOOKALIKES[index / 10 % LOOKALIKES.len()]
            ));
            line_kind.push(Some("LOOKALIKE"));
        }
    }
    // The whole file finds every planted value (located occurrences stop at 15 per type, as
    // Macie's do, so lines are scored one scan per line).
    let whole = scan_object(&detector, "corpus.log", text.as_bytes(), Some(Format::Text));
    let whole_counts: BTreeMap<String, u64> = whole
        .detections
        .values()
        .flatten()
        .map(|(name, detail)| (name.clone(), detail.count))
        .collect();
    assert_eq!(
        whole.total(),
        plants.len() as u64,
        "one detection per planted value in the whole file: {whole_counts:?}"
    );
    let mut per_line: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let single = scan_object(&detector, "line.log", line.as_bytes(), Some(Format::Text));
        let found: Vec<String> = single
            .detections
            .values()
            .flat_map(|types| types.keys().cloned())
            .collect();
        per_line.insert(number as u64 + 1, found);
    }
    for (line, found) in &per_line {
        match line_kind[*line as usize] {
            None => {
                for name in found {
                    scores.entry("(filler)").or_default().false_hits += 1;
                    lookalike_hits.push(format!("filler line {line}: {name}"));
                }
            }
            Some("LOOKALIKE") => {
                for name in found {
                    lookalike_hits.push(format!("lookalike line {line}: {name}"));
                }
            }
            Some(kind) => {
                let score = scores.entry(kind).or_default();
                score.planted += 1;
                if found.iter().any(|name| matches(kind, name)) {
                    score.found += 1;
                }
                for name in found.iter().filter(|name| !matches(kind, name)) {
                    scores.entry(leak(name)).or_default().false_hits += 1;
                }
            }
        }
    }

    // CSV: the value alone in a column named for it (the header is the keyword), one row each.
    // Each kind gets its own file, so its column name can be its context.
    for kind in KINDS {
        let mine: Vec<&Plant> = plants.iter().filter(|plant| plant.kind == *kind).collect();
        let column = mine.first().map_or("value", |plant| plant.column);
        let mut csv = format!("row,note,{column}\n");
        for (index, plant) in mine.iter().enumerate() {
            let cell = if plant.value.contains(',') {
                format!("\"{}\"", plant.value)
            } else {
                plant.value.clone()
            };
            csv.push_str(&format!("{index},routine update,{cell}\n"));
        }
        let report = scan_object(&detector, "corpus.csv", csv.as_bytes(), Some(Format::Csv));
        let mut rows_found = std::collections::BTreeSet::new();
        for (name, detail) in report.detections.values().flatten() {
            if !matches(kind, name) {
                scores.entry(leak(name)).or_default().false_hits += detail.count;
            }
        }
        // Count rows with the planted type through per-row scans (15 located per type only).
        for (row, line) in csv.lines().enumerate().skip(1) {
            let single = scan_object(
                &detector,
                "row.csv",
                format!("row,note,{column}\n{line}\n").as_bytes(),
                Some(Format::Csv),
            );
            if single.detections.values().flatten().any(|(name, detail)| {
                matches(kind, name)
                    && detail
                        .located
                        .iter()
                        .any(|location| matches!(location, Location::Cell { row: 2, .. }))
            }) {
                rows_found.insert(row);
            }
        }
        let score = scores.entry(kind).or_default();
        score.planted += mine.len() as u64;
        score.found += rows_found.len() as u64;
    }

    // JSON lines: the value under its key name.
    for kind in KINDS {
        let mine: Vec<&Plant> = plants.iter().filter(|plant| plant.kind == *kind).collect();
        let mut found = 0;
        for plant in &mine {
            let line = serde_json::json!({"event": "update", "customer": {(plant.column): plant.value}}).to_string();
            let single = scan_object(&detector, "line.jsonl", line.as_bytes(), Some(Format::JsonLines));
            let names: Vec<String> = single
                .detections
                .values()
                .flat_map(|types| types.keys().cloned())
                .collect();
            if names.iter().any(|name| matches(kind, name)) {
                found += 1;
            }
            for name in names.iter().filter(|name| !matches(kind, name)) {
                scores.entry(leak(name)).or_default().false_hits += 1;
            }
        }
        let score = scores.entry(kind).or_default();
        score.planted += mine.len() as u64;
        score.found += found;
    }

    println!(
        "{:<30} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "identifier", "planted", "found", "false", "recall", "precision"
    );
    let mut failures = Vec::new();
    for (kind, score) in &scores {
        let recall = if score.planted == 0 {
            1.0
        } else {
            score.found as f64 / score.planted as f64
        };
        let precision = if score.found + score.false_hits == 0 {
            1.0
        } else {
            score.found as f64 / (score.found + score.false_hits) as f64
        };
        println!(
            "{kind:<30} {:>8} {:>8} {:>8} {recall:>9.3} {precision:>9.3}",
            score.planted, score.found, score.false_hits
        );
        if score.planted > 0 && recall < 0.99 {
            failures.push(format!("{kind}: recall {recall:.3}"));
        }
    }
    assert!(lookalike_hits.is_empty(), "lookalikes matched: {lookalike_hits:#?}");
    assert!(failures.is_empty(), "below 0.99 recall: {failures:?}");
}

fn leak(name: &str) -> &'static str {
    Box::leak(name.to_string().into_boxed_str())
}
