//! Any bytes as a PutPipelineDefinition body: the wire parser, the constraint check and the
//! validator must return an answer or an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::{Limits, validate};
use sluice_wire::parse_body;
use sluice_wire::shapes::PutPipelineDefinitionInput;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = parse_body::<PutPipelineDefinitionInput>(data)
        && input.check().is_ok()
        && let Ok(definition) = input.to_definition()
    {
        let _ = validate(&definition, &Limits::default());
    }
});
