//! The condition operators case by case, from a table written from AWS's documented rules
//! (`conditions.table`), and whole policies from `policies.table`.

use sluice_policy::{Decision, RequestContext, evaluate, parse};

fn context_with(mut context: RequestContext, key: &str, values: &str) -> RequestContext {
    match values {
        "-" => context,
        "[]" => context.with_values(key, &[]),
        values if values.contains(',') => {
            let values: Vec<&str> = values.split(',').collect();
            context.with_values(key, &values)
        }
        value => {
            context = context.with(key, value);
            context
        }
    }
}

#[test]
fn every_condition_case_in_the_table() {
    let table = include_str!("conditions.table");
    let mut failures = Vec::new();
    let mut cases = 0;
    for (number, line) in table.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let columns: Vec<&str> = line.split('|').collect();
        assert_eq!(columns.len(), 5, "line {}: {line}", number + 1);
        let (operator, key, policy_values, request_values, expected) =
            (columns[0], columns[1], columns[2], columns[3], columns[4]);
        let values: Vec<&str> = policy_values.split(',').collect();
        let document = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                           "Condition": {operator: {key: values}}}]
        });
        let policy = parse(&document.to_string()).unwrap_or_else(|error| panic!("line {}: {error}", number + 1));
        let context = context_with(
            RequestContext::new("datapipeline:ListPipelines", "*"),
            key,
            request_values,
        );
        let decision = evaluate(std::slice::from_ref(&policy), &context);
        assert_eq!(
            sluice_policy::PolicySet::new(vec![policy]).evaluate(&context),
            decision,
            "line {}: the index decides alike",
            number + 1
        );
        let holds = matches!(decision, Decision::Allow { .. });
        cases += 1;
        if holds != (expected == "T") {
            failures.push(format!(
                "line {}: {line} (got {})",
                number + 1,
                if holds { "T" } else { "F" }
            ));
        }
    }
    assert!(cases >= 200, "{cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_policy_case_in_the_table() {
    let table = include_str!("policies.table");
    let mut policies = std::collections::HashMap::new();
    let mut failures = Vec::new();
    let mut cases = 0;
    for (number, line) in table.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(definition) = line.strip_prefix("policy ") {
            let (name, document) = definition.split_once(' ').expect("policy NAME JSON");
            policies.insert(
                name.to_string(),
                parse(document).unwrap_or_else(|error| panic!("line {}: {error}", number + 1)),
            );
            continue;
        }
        // names (comma-separated) | action | resource | key=value;... | allow/deny/implicit
        let columns: Vec<&str> = line.split('|').collect();
        assert_eq!(columns.len(), 5, "line {}: {line}", number + 1);
        let chosen: Vec<_> = columns[0]
            .split(',')
            .map(|name| {
                policies
                    .get(name)
                    .unwrap_or_else(|| panic!("line {}: no policy {name}", number + 1))
                    .clone()
            })
            .collect();
        let mut context = RequestContext::new(columns[1], columns[2]);
        for pair in columns[3].split(';').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').expect("key=value");
            context = context_with(context, key, value);
        }
        let indexed = sluice_policy::PolicySet::new(chosen.clone()).evaluate(&context);
        assert_eq!(
            indexed,
            evaluate(&chosen, &context),
            "line {}: the index decides alike",
            number + 1
        );
        let got = match evaluate(&chosen, &context) {
            Decision::Allow { .. } => "allow",
            Decision::ExplicitDeny { .. } => "deny",
            Decision::ImplicitDeny => "implicit",
        };
        cases += 1;
        if got != columns[4] {
            failures.push(format!("line {}: {line} (got {got})", number + 1));
        }
    }
    assert!(cases >= 50, "{cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
