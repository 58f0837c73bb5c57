//! Any text as an IAM policy: parsing and evaluation must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_policy::{RequestContext, evaluate, parse};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(policy) = parse(text)
    {
        let context = RequestContext::new("datapipeline:DeletePipeline", "arn:aws:datapipeline:us-east-1:1:pipeline/df-1")
            .with("aws:username", "alice")
            .with("aws:SourceIp", "203.0.113.7")
            .with("aws:CurrentTime", "2026-11-28T17:00:00Z")
            .with_values("aws:TagKeys", &["env", "team"]);
        let _ = evaluate(&[policy], &context);
    }
});
