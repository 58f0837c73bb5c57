//! Parse + validate throughput over every public AWS sample (a benchmark, not a test).
//! `cargo bench -p sluice-core --bench validate`

use std::time::Instant;

use sluice_core::{Limits, definition_file, validate};

fn main() {
    let directory = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/dp-samples");
    let mut texts: Vec<String> = std::fs::read_dir(directory)
        .expect("samples beside the repository")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".json"))
        .map(|entry| std::fs::read_to_string(entry.path()).expect("readable"))
        .filter(|text| definition_file::parse(text).is_ok())
        .collect();
    texts.sort();
    let n_bytes: usize = texts.iter().map(String::len).sum();
    let limits = Limits::default();
    let rounds = 200;
    let started = Instant::now();
    let mut n_errors = 0usize;
    for _ in 0..rounds {
        for text in &texts {
            let definition = definition_file::parse(text).expect("parses");
            n_errors += validate(&definition, &limits).errors.len();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n_definitions = rounds * texts.len();
    println!(
        "parse+validate: {n_definitions} definitions ({:.1} MiB) in {elapsed:.3} s = {:.0} definitions/s, {:.1} µs each, {:.1} MiB/s (checksum {n_errors})",
        (rounds * n_bytes) as f64 / 1048576.0,
        n_definitions as f64 / elapsed,
        elapsed * 1e6 / n_definitions as f64,
        (rounds * n_bytes) as f64 / 1048576.0 / elapsed
    );
}
