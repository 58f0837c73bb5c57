//! A deterministic stand-in for the fuzz targets that runs in every `cargo test`: every sample,
//! damaged in many small ways (truncated, bytes flipped, brackets dropped, values retyped), must
//! parse to a value or an error, and validate without panicking. The coverage-guided version lives
//! in `fuzz/` (`cargo fuzz run definition_file`).

use sluice_core::{Limits, definition_file, validate};

fn samples() -> Vec<(String, Vec<u8>)> {
    let directory = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/dp-samples");
    let mut files: Vec<_> = std::fs::read_dir(directory)
        .expect("samples beside the repository")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".json"))
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).expect("readable"),
            )
        })
        .collect();
    files.sort();
    files
}

/// xorshift: reproducible without a dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

#[test]
fn damaged_samples_never_panic() {
    let mut random = Random(0x5eed_2026_1128);
    let replacements: [&[u8]; 8] = [b"{", b"}", b"[", b"]", b"\"", b"#{", b"3", b"{\"ref\":\"Default\"}"];
    let mut n_parsed = 0;
    for (_, bytes) in samples() {
        for _ in 0..60 {
            let mut damaged = bytes.clone();
            match random.below(3) {
                0 => damaged.truncate(random.below(bytes.len())),
                1 => {
                    for _ in 0..1 + random.below(4) {
                        let position = random.below(damaged.len());
                        damaged[position] = (random.next() & 0x7f) as u8;
                    }
                }
                _ => {
                    let position = random.below(damaged.len());
                    let replacement = replacements[random.below(replacements.len())];
                    damaged.splice(position..(position + 1).min(damaged.len()), replacement.iter().copied());
                }
            }
            let Ok(text) = String::from_utf8(damaged) else {
                continue;
            };
            if let Ok(definition) = definition_file::parse(&text) {
                n_parsed += 1;
                let _ = validate(&definition, &Limits::default());
            }
        }
    }
    // Some damage leaves valid JSON, so validation really ran on odd definitions.
    assert!(n_parsed > 100, "only {n_parsed} damaged samples parsed");
}
