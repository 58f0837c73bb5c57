//! Any text as an expression and as a template: parsing and evaluation must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::expression::{Scope, Value, evaluate, evaluate_template};

struct Everything;

impl Scope for Everything {
    fn resolve(&self, name: &str) -> Option<Value> {
        match name.len() % 4 {
            0 => Some(Value::Integer(name.len() as i64)),
            1 => Some(Value::String(name.to_string())),
            2 => Some(Value::List(vec![Value::Integer(1), Value::String("x".into())])),
            _ => Some(Value::Ref(name.to_string())),
        }
    }

    fn member(&self, object_id: &str, name: &str) -> Option<Value> {
        (object_id.len() > name.len()).then(|| Value::String(format!("{object_id}.{name}")))
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = evaluate(text, &Everything);
        let _ = evaluate_template(text, &Everything);
    }
});
