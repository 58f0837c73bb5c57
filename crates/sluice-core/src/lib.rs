//! Pipeline definitions: the object model, the two JSON formats (the definition file the AWS CLI
//! reads and the API wire format), the object-type catalogue and validation.
//!
//! This crate owns the meaning of a definition. It must never do I/O, read the clock, the
//! environment or the OS random number generator: everything it needs is an argument.

pub mod catalogue;
pub mod definition_file;
pub mod expression;
pub mod expression_scan;
pub mod guard;
pub mod layout;
pub mod model;
pub mod runtime;
pub mod schedule;
pub mod secrets;
pub mod validate;
pub mod values;

pub use model::{
    Field, FieldValue, ParameterAttribute, ParameterObject, ParameterValue, PipelineDefinition, PipelineObject,
};
pub use validate::{Limits, ValidationReport, validate};
