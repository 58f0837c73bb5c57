//! Scan throughput per core: every managed identifier on, over generated CSV, JSON lines and text
//! (realistic rows, about one in a thousand carrying a sensitive value).
//! `cargo bench -p sluice-detect --bench scan [-- MiB]`

use std::time::Instant;

use sluice_detect::{Detector, Format, scan_object};

fn corpus(target: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let names = [
        "Ada", "Grace", "Linus", "Barbara", "Ken", "Frances", "Edsger", "Margaret",
    ];
    let cities = ["Lisbon", "Oslo", "Austin", "Nairobi", "Osaka", "Lyon", "Quito", "Perth"];
    let (mut csv, mut jsonl, mut text) = (Vec::new(), Vec::new(), Vec::new());
    csv.extend_from_slice(b"order_id,customer,city,amount,status,notes\n");
    let mut row = 0u64;
    while csv.len() < target / 3 || jsonl.len() < target / 3 || text.len() < target / 3 {
        row += 1;
        let random = next();
        let name = names[(random % 8) as usize];
        let city = cities[((random >> 8) % 8) as usize];
        let amount = (random >> 16) % 100_000;
        let sensitive = random % 1000 == 0;
        let note = if sensitive {
            "card 4556 7375 8689 9855 exp 09/28"
        } else {
            "delivered to the front desk, signed by recipient"
        };
        csv.extend_from_slice(
            format!(
                "{row},{name},{city},{}.{:02},SHIPPED,{note}\n",
                amount / 100,
                amount % 100
            )
            .as_bytes(),
        );
        jsonl.extend_from_slice(
            format!(
                "{{\"order\":{row},\"customer\":{{\"name\":\"{name}\",\"city\":\"{city}\"}},\"amount\":{amount},\"note\":\"{note}\"}}\n"
            )
            .as_bytes(),
        );
        text.extend_from_slice(
            format!(
                "2026-11-29T00:00:{:02}Z INFO order {row} for {name} in {city}: {note}\n",
                row % 60
            )
            .as_bytes(),
        );
    }
    (csv, jsonl, text)
}

fn main() {
    let mebibytes: usize = std::env::args()
        .skip(1)
        .find_map(|argument| argument.parse().ok())
        .unwrap_or(256);
    let (csv, jsonl, text) = corpus(mebibytes << 20);
    // `-- MiB --write DIR`: the same data as files, for the side-by-side comparison script.
    let arguments: Vec<String> = std::env::args().collect();
    if let Some(position) = arguments.iter().position(|argument| argument == "--write") {
        let folder = std::path::PathBuf::from(arguments.get(position + 1).expect("--write DIR"));
        std::fs::create_dir_all(&folder).expect("folder");
        std::fs::write(folder.join("orders.csv"), &csv).expect("write");
        std::fs::write(folder.join("orders.jsonl"), &jsonl).expect("write");
        std::fs::write(folder.join("orders.log"), &text).expect("write");
        println!("wrote the corpus to {}", folder.display());
        return;
    }
    let detector = Detector::managed().expect("identifiers compile");
    let started = Instant::now();
    let candidates = detector.candidates(&text).count();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "trigger pass over the log: {candidates} candidate(s), {:.1} MiB/s",
        text.len() as f64 / 1048576.0 / seconds
    );
    let mut total_bytes = 0usize;
    let mut total_seconds = 0f64;
    for (name, bytes, format) in [
        ("orders.csv", &csv, Format::Csv),
        ("orders.jsonl", &jsonl, Format::JsonLines),
        ("orders.log", &text, Format::Text),
    ] {
        let started = Instant::now();
        let report = scan_object(&detector, name, bytes.as_slice(), Some(format));
        let seconds = started.elapsed().as_secs_f64();
        total_bytes += bytes.len();
        total_seconds += seconds;
        println!(
            "{name:<14} {:>7.1} MiB in {seconds:>6.3} s = {:>7.1} MiB/s, {} occurrence(s)",
            bytes.len() as f64 / 1048576.0,
            bytes.len() as f64 / 1048576.0 / seconds,
            report.total()
        );
    }
    println!(
        "all            {:>7.1} MiB in {total_seconds:>6.3} s = {:>7.1} MiB/s (one core)",
        total_bytes as f64 / 1048576.0,
        total_bytes as f64 / 1048576.0 / total_seconds
    );
}
