//! Any bytes as the body of each identity-API operation: parsing and the constraint check must
//! return an answer or an error, never panic; a policy document that passes the check goes
//! through the policy parser as CreatePolicy does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_wire::iam::{AccessKeyInput, CreatePolicyInput, CreateUserInput, ListPoliciesInput, PolicyArnInput, UserNameInput};
use sluice_wire::parse_body;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = parse_body::<CreateUserInput>(data) {
        let _ = input.check();
    }
    if let Ok(input) = parse_body::<UserNameInput>(data) {
        let _ = input.check();
    }
    if let Ok(input) = parse_body::<AccessKeyInput>(data) {
        let _ = input.check(true);
        let _ = input.check(false);
    }
    if let Ok(input) = parse_body::<CreatePolicyInput>(data)
        && input.check().is_ok()
    {
        let _ = sluice_policy::parse(&input.policy_document);
    }
    if let Ok(input) = parse_body::<PolicyArnInput>(data) {
        let _ = input.check(true);
    }
    let _ = parse_body::<ListPoliciesInput>(data);
});
