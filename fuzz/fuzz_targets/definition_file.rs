//! Any bytes as a definition file: parsing and validation must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::{Limits, definition_file, validate};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(definition) = definition_file::parse(text)
    {
        let _ = validate(&definition, &Limits::default());
        let _ = definition_file::from_value(&definition_file::to_value(&definition));
    }
});
