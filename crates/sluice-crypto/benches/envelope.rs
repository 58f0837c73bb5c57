//! AES-256-GCM sealing and opening throughput on one core, through the envelope format (a
//! benchmark, not a test). `cargo bench -p sluice-crypto --bench envelope`

use std::time::Instant;

use sluice_crypto::envelope::{self, Header, KeyMaterial};

fn main() {
    let key = KeyMaterial::from_bytes(&[7u8; 32]).expect("key");
    for size in [4 * 1024, 1024 * 1024] {
        let plaintext = vec![0x5a_u8; size];
        let rounds = (512 * 1024 * 1024) / size;
        let started = Instant::now();
        let mut sealed = Vec::new();
        for round in 0..rounds {
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&(round as u64).to_be_bytes());
            sealed =
                envelope::seal(&key, "dek:df-bench", 1, "pipeline/df-bench/output/0", nonce, &plaintext).expect("seal");
        }
        let seal_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(
                envelope::open(|_: &Header| Some(key.clone()), "pipeline/df-bench/output/0", &sealed).expect("open"),
            );
        }
        let open_seconds = started.elapsed().as_secs_f64();
        let gigabytes = (rounds * size) as f64 / 1e9;
        println!(
            "{:>7} KiB messages: seal {:.2} GB/s, open {:.2} GB/s",
            size / 1024,
            gigabytes / seal_seconds,
            gigabytes / open_seconds
        );
    }
}
