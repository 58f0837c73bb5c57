//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA-1, 6 digits, 30-second
//! steps, as virtual MFA apps compute them. The HMAC is aws-lc-rs's, so the FIPS build verifies
//! codes inside the validated module (HMAC-SHA-1 is an approved use); that is why this is not a
//! general-purpose TOTP crate. The time and the seed are arguments.

use aws_lc_rs::{constant_time, hmac};

pub const STEP_SECONDS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Seed length in bytes (160 bits, as RFC 4226 recommends).
pub const SEED_BYTES: usize = 20;

/// The step a Unix time falls in.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The code for one step.
pub fn code_at(seed: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, seed);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let digest = tag.as_ref();
    let offset = (digest[digest.len() - 1] & 0x0f) as usize;
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:0width$}", value % 10u32.pow(DIGITS), width = DIGITS as usize)
}

fn same(code: &str, expected: &str) -> bool {
    constant_time::verify_slices_are_equal(code.as_bytes(), expected.as_bytes()).is_ok()
}

/// The step whose code `code` is, within `window` steps of now either way and later than
/// `last_step` (a code is never accepted twice), or `None`.
pub fn verify(seed: &[u8], code: &str, unix_seconds: i64, last_step: i64, window: i64) -> Option<i64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_seconds);
    let mut found = None;
    // Every candidate is computed, so the time taken does not say which one matched.
    for step in (now - window)..=(now + window) {
        if step > last_step && same(code, &code_at(seed, step)) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Two codes of consecutive steps (enrolment, resynchronisation), the first within `back` steps
/// before now (or one after); returns the second's step.
pub fn verify_consecutive(seed: &[u8], first: &str, second: &str, unix_seconds: i64, back: i64) -> Option<i64> {
    let now = step_of(unix_seconds);
    let mut found = None;
    for step in (now - back)..=now {
        if same(first, &code_at(seed, step)) && same(second, &code_at(seed, step + 1)) && found.is_none() {
            found = Some(step + 1);
        }
    }
    found
}

/// The seed as authenticator apps take it: unpadded RFC 4648 base32.
pub fn base32(seed: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(seed)
}

/// The `otpauth://` URI an app scans from a QR code.
pub fn otpauth_uri(issuer: &str, account: &str, seed: &[u8]) -> String {
    let escape = |text: &str| -> String {
        text.bytes()
            .map(|byte| {
                if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
                    (byte as char).to_string()
                } else {
                    format!("%{byte:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        escape(issuer),
        escape(account),
        base32(seed),
        escape(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_sha1_vectors_in_six_digits() {
        // Appendix B: 94287082, 07081804, 14050471, 89005924, 69279037, 65353130.
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(RFC_SEED, step_of(time)), code, "T={time}");
        }
    }

    #[test]
    fn codes_are_accepted_within_one_step_and_never_twice() {
        let now = 1_234_567_890;
        let step = step_of(now);
        let current = code_at(RFC_SEED, step);
        assert_eq!(verify(RFC_SEED, &current, now, -1, 1), Some(step));
        assert_eq!(verify(RFC_SEED, &current, now, step, 1), None, "replayed");
        let previous = code_at(RFC_SEED, step - 1);
        assert_eq!(verify(RFC_SEED, &previous, now, -1, 1), Some(step - 1));
        assert_eq!(
            verify(RFC_SEED, &code_at(RFC_SEED, step - 2), now, -1, 1),
            None,
            "too old"
        );
        assert_eq!(verify(RFC_SEED, "12345", now, -1, 1), None);
        assert_eq!(verify(RFC_SEED, "abcdef", now, -1, 1), None);
        let (first, second) = (code_at(RFC_SEED, step - 3), code_at(RFC_SEED, step - 2));
        assert_eq!(verify_consecutive(RFC_SEED, &first, &second, now, 10), Some(step - 2));
        assert_eq!(verify_consecutive(RFC_SEED, &second, &first, now, 10), None);
        assert_eq!(base32(b"\x00\x01\x02"), "AAAQE");
        assert!(otpauth_uri("Sluice", "alice@123", RFC_SEED).starts_with(
            "otpauth://totp/Sluice:alice@123?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Sluice&algorithm=SHA1"
        ));
    }
}
