use super::*;

const ACCOUNT: &str = "123456789012";

fn pipeline(id: &str) -> String {
    format!("arn:aws:datapipeline:us-east-1:{ACCOUNT}:pipeline/{id}")
}

fn decide(policy: &str, context: &RequestContext) -> &'static str {
    let policy = parse(policy).unwrap_or_else(|error| panic!("policy parses: {error}"));
    match evaluate(&[policy], context) {
        Decision::Allow { .. } => "allow",
        Decision::ExplicitDeny { .. } => "deny",
        Decision::ImplicitDeny => "implicit",
    }
}

fn request(action: &str, resource: &str) -> RequestContext {
    RequestContext::new(action, resource)
}

#[test]
fn actions_resources_and_effects() {
    let read_only = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["datapipeline:Describe*", "datapipeline:ListPipelines", "datapipeline:GetPipelineDefinition"], "Resource": "*"}]}"#;
    let cases = [
        (
            read_only,
            request("datapipeline:DescribePipelines", &pipeline("df-1")),
            "allow",
        ),
        (
            read_only,
            request("DATAPIPELINE:describeobjects", &pipeline("df-1")),
            "allow",
        ),
        (read_only, request("datapipeline:CreatePipeline", "*"), "implicit"),
        (read_only, request("datapipeline:ListPipelinesX", "*"), "implicit"),
        (
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}, {"Effect": "Deny", "Action": "datapipeline:DeletePipeline", "Resource": "*"}]}"#,
            request("datapipeline:DeletePipeline", &pipeline("df-1")),
            "deny",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "NotAction": "iam:*", "Resource": "*"}}"#,
            request("datapipeline:ListPipelines", "*"),
            "deny",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "NotAction": "iam:*", "Resource": "*"}}"#,
            request("iam:ListUsers", "*"),
            "implicit",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "datapipeline:*", "Resource": "arn:aws:datapipeline:*:123456789012:pipeline/df-?1*"}}"#,
            request("datapipeline:AddTags", &pipeline("df-a1b/c")),
            "allow",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "datapipeline:*", "Resource": "arn:aws:datapipeline:*:123456789012:pipeline/df-?1*"}}"#,
            request(
                "datapipeline:AddTags",
                "arn:aws:datapipeline:us-east-1:999999999999:pipeline/df-a1",
            ),
            "implicit",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "datapipeline:Delete*", "NotResource": "arn:aws:datapipeline:*:*:pipeline/df-prod*"}}"#,
            request("datapipeline:PutPipelineDefinition", &pipeline("df-dev1")),
            "allow",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "datapipeline:Delete*", "NotResource": "arn:aws:datapipeline:*:*:pipeline/df-prod*"}}"#,
            request("datapipeline:PutPipelineDefinition", &pipeline("df-prod1")),
            "implicit",
        ),
    ];
    for (index, (policy, context, expected)) in cases.iter().enumerate() {
        assert_eq!(
            decide(policy, context),
            *expected,
            "case {index}: {} on {}",
            context.action,
            context.resource
        );
    }
}

#[test]
fn conditions_absent_keys_negation_and_sets() {
    let mfa_guard = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "NoMfaNoDelete", "Effect": "Deny", "Action": "datapipeline:DeletePipeline", "Resource": "*",
         "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}]}"#;
    let delete = || request("datapipeline:DeletePipeline", &pipeline("df-1"));
    assert_eq!(
        decide(mfa_guard, &delete()),
        "deny",
        "a long-term key carries no MFA key: IfExists denies"
    );
    assert_eq!(
        decide(mfa_guard, &delete().with("aws:MultiFactorAuthPresent", "false")),
        "deny"
    );
    assert_eq!(
        decide(mfa_guard, &delete().with("AWS:multifactorauthpresent", "true")),
        "allow",
        "key names are case-insensitive"
    );

    let tagged = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "datapipeline:*", "Resource": "*",
        "Condition": {"StringEquals": {"datapipeline:Tag/environment": ["production", "staging"]}, "NumericLessThanEquals": {"aws:MultiFactorAuthAge": 3600}}}}"#;
    let call = || request("datapipeline:ActivatePipeline", &pipeline("df-1"));
    assert_eq!(
        decide(
            tagged,
            &call()
                .with("datapipeline:Tag/environment", "staging")
                .with("aws:MultiFactorAuthAge", "120")
        ),
        "allow"
    );
    assert_eq!(
        decide(
            tagged,
            &call()
                .with("datapipeline:Tag/environment", "staging")
                .with("aws:MultiFactorAuthAge", "7200")
        ),
        "implicit"
    );
    assert_eq!(
        decide(
            tagged,
            &call()
                .with("datapipeline:Tag/environment", "Production")
                .with("aws:MultiFactorAuthAge", "1")
        ),
        "implicit",
        "StringEquals is case-sensitive"
    );
    assert_eq!(
        decide(tagged, &call().with("aws:MultiFactorAuthAge", "1")),
        "implicit",
        "absent key: a positive operator is false"
    );

    let not_equals = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}}}"#;
    assert_eq!(
        decide(not_equals, &call()),
        "deny",
        "absent key: a negated operator is true"
    );
    assert_eq!(
        decide(not_equals, &call().with("aws:RequestedRegion", "eu-west-1")),
        "implicit",
        "matches one: not denied"
    );
    assert_eq!(
        decide(not_equals, &call().with("aws:RequestedRegion", "ap-south-1")),
        "deny"
    );

    let tag_keys = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "datapipeline:AddTags", "Resource": "*", "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}}}"#;
    let add = || request("datapipeline:AddTags", &pipeline("df-1"));
    assert_eq!(decide(tag_keys, &add().with_values("aws:TagKeys", &["env"])), "allow");
    assert_eq!(
        decide(tag_keys, &add().with_values("aws:TagKeys", &["env", "secret"])),
        "implicit"
    );
    assert_eq!(
        decide(tag_keys, &add()),
        "allow",
        "ForAllValues on an absent key is true (why it is never used with Allow alone)"
    );
    let any_key = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": "internal*"}}}}"#;
    assert_eq!(
        decide(any_key, &add()),
        "implicit",
        "ForAnyValue on an absent key is false"
    );
    assert_eq!(
        decide(any_key, &add().with_values("aws:TagKeys", &["env", "internal-cost"])),
        "deny"
    );

    let null = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Null": {"aws:TokenIssueTime": "true"}}}}"#;
    assert_eq!(
        decide(null, &call()),
        "deny",
        "long-term credentials have no token issue time"
    );
    assert_eq!(
        decide(null, &call().with("aws:TokenIssueTime", "2026-11-28T10:00:00Z")),
        "implicit"
    );

    let network_and_time = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
        "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}, "DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}, "Bool": {"aws:SecureTransport": true}}}}"#;
    let now = |ip: &str, time: &str| {
        call()
            .with("aws:SourceIp", ip)
            .with("aws:CurrentTime", time)
            .with("aws:SecureTransport", "true")
    };
    assert_eq!(
        decide(network_and_time, &now("203.0.113.77", "2026-11-28T17:00:00Z")),
        "allow"
    );
    assert_eq!(
        decide(network_and_time, &now("2001:db8:1::5", "2026-11-28T17:00:00Z")),
        "allow"
    );
    assert_eq!(
        decide(network_and_time, &now("198.51.100.1", "2026-11-28T17:00:00Z")),
        "implicit"
    );
    assert_eq!(
        decide(network_and_time, &now("203.0.113.77", "2027-02-01T00:00:00Z")),
        "implicit"
    );
    let not_ip = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}}"#;
    assert_eq!(decide(not_ip, &call().with("aws:SourceIp", "10.1.2.3")), "implicit");
    assert_eq!(decide(not_ip, &call().with("aws:SourceIp", "8.8.8.8")), "deny");

    let arn = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:user/ops-*"}}}}"#;
    assert_eq!(
        decide(
            arn,
            &call().with("aws:PrincipalArn", "arn:aws:iam::123456789012:user/ops-alice")
        ),
        "allow"
    );
    assert_eq!(
        decide(
            arn,
            &call().with("aws:PrincipalArn", "arn:aws:iam::999:123456789012:user/ops-alice")
        ),
        "implicit",
        "a * cannot swallow a colon"
    );
}

#[test]
fn policy_variables() {
    let own = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "datapipeline:*", "Resource": "*",
        "Condition": {"StringEquals": {"datapipeline:PipelineCreator": "${aws:userid}"}}},
        {"Effect": "Allow", "Action": "datapipeline:GetPipelineDefinition", "Resource": "arn:aws:datapipeline:*:*:pipeline/${aws:PrincipalTag/team, 'shared'}-*"}]}"#;
    let mine = request("datapipeline:DeletePipeline", &pipeline("df-1"))
        .with("aws:userid", "AIDAALICE")
        .with("datapipeline:PipelineCreator", "AIDAALICE");
    assert_eq!(decide(own, &mine), "allow");
    let theirs = request("datapipeline:DeletePipeline", &pipeline("df-1"))
        .with("aws:userid", "AIDAALICE")
        .with("datapipeline:PipelineCreator", "AIDABOB");
    assert_eq!(decide(own, &theirs), "implicit");
    let anonymous =
        request("datapipeline:DeletePipeline", &pipeline("df-1")).with("datapipeline:PipelineCreator", "AIDABOB");
    assert_eq!(
        decide(own, &anonymous),
        "implicit",
        "an unresolved variable matches nothing"
    );
    let team = request("datapipeline:GetPipelineDefinition", &pipeline("data-1")).with("aws:PrincipalTag/team", "data");
    assert_eq!(decide(own, &team), "allow");
    assert_eq!(
        decide(
            own,
            &request("datapipeline:GetPipelineDefinition", &pipeline("shared-1"))
        ),
        "allow",
        "the default applies"
    );
    let old_version = r#"{"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:datapipeline:*:*:pipeline/${aws:username}"}}"#;
    assert_eq!(
        decide(
            old_version,
            &request("x:y", "arn:aws:datapipeline:us-east-1:1:pipeline/alice").with("aws:username", "alice")
        ),
        "implicit"
    );
}

#[test]
fn malformed_policies_are_refused_with_the_place() {
    let cases = [
        (
            r#"{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEqualz": {"a": "b"}}}]}"#,
            "Statement[0].Condition.StringEqualz: 'StringEqualz' is not a condition operator",
        ),
        (
            r#"{"Statement": [{"Action": "*", "Resource": "*"}]}"#,
            "Statement[0].Effect: must be \"Allow\" or \"Deny\"",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "a:b", "Resource": "*"}]}"#,
            "Statement[0]: needs exactly one of Action and NotAction",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}"#,
            "Statement[0]: 'Principal' is not a statement element (identity policies name no principal)",
        ),
        (
            "{\"Statement\": [\n  {\"Effect\": \"Allow\",}\n]}",
            "line 2, column 22: trailing comma",
        ),
        (
            r#"{"Statement": [{"Sid": "A", "Effect": "Allow", "Action": "*", "Resource": "*"}, {"Sid": "A", "Effect": "Deny", "Action": "*", "Resource": "*"}]}"#,
            "Sid 'A' is used twice",
        ),
        (
            r#"{"Statement": []}"#,
            "Statement: must be a statement or a non-empty list of them",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Action": "ListPipelines", "Resource": "*"}]}"#,
            "Statement[0]: action 'ListPipelines' must look like service:Name",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "soon"}}}]}"#,
            "Statement[0].Condition.NumericLessThan: 'soon' is not a valid value for NumericLessThan on 'aws:MultiFactorAuthAge'",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"NullIfExists": {"a": "true"}}}]}"#,
            "Statement[0].Condition.NullIfExists: Null cannot take IfExists",
        ),
        (
            "{\"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"\u{2603}\"}]}",
            "the policy contains the character U+2603, outside what IAM accepts",
        ),
        (
            r#"{"Version": "2020-01-01", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#,
            "Version: must be \"2012-10-17\" or \"2008-10-17\"",
        ),
    ];
    for (policy, expected) in cases {
        assert_eq!(parse(policy).map(|_| ()).unwrap_err().to_string(), expected, "{policy}");
    }
    let huge = format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Action": "*", "Resource": "{}"}}]}}"#,
        "x".repeat(7000)
    );
    assert!(parse(&huge).unwrap_err().to_string().contains("the limit is 6144"));
}

#[test]
fn the_first_allowing_statement_is_named() {
    let policy = parse(r#"{"Version": "2012-10-17", "Statement": [{"Sid": "Reads", "Effect": "Allow", "Action": "datapipeline:List*", "Resource": "*"}]}"#).expect("parses");
    assert_eq!(
        evaluate(&[policy], &request("datapipeline:ListPipelines", "*")),
        Decision::Allow {
            policy: 0,
            statement: 0,
            sid: Some("Reads".into())
        }
    );
}

#[test]
fn explanations_say_why_each_statement_did_not_apply() {
    let policy = parse(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Sid": "Reads", "Effect": "Allow", "Action": "datapipeline:Describe*", "Resource": "*"},
            {"Sid": "Blue", "Effect": "Allow", "Action": "datapipeline:*", "Resource": "arn:aws:datapipeline:*:*:pipeline/df-*",
             "Condition": {"StringEquals": {"datapipeline:Tag/team": "blue"}}},
            {"Sid": "NoDelete", "Effect": "Deny", "Action": "datapipeline:DeletePipeline", "NotResource": "arn:aws:datapipeline:*:*:pipeline/df-TMP*"}]}"#,
    )
    .expect("parses");
    let context = request("datapipeline:ActivatePipeline", &pipeline("df-1")).with("datapipeline:Tag/team", "red");
    let (decision, reports) = explain(std::slice::from_ref(&policy), &context);
    assert_eq!(decision, Decision::ImplicitDeny);
    let reasons: Vec<String> = reports
        .iter()
        .map(|report| report.why_not.clone().unwrap_or_default())
        .collect();
    assert_eq!(reasons[0], "Action does not list datapipeline:ActivatePipeline");
    assert_eq!(
        reasons[1],
        r#"condition StringEquals on datapipeline:tag/team with ["blue"] does not hold: the request has ["red"]"#
    );
    assert_eq!(reasons[2], "Action does not list datapipeline:ActivatePipeline");
    let temporary = request("datapipeline:DeletePipeline", &pipeline("df-TMP1")).with("datapipeline:Tag/team", "blue");
    let (decision, reports) = explain(std::slice::from_ref(&policy), &temporary);
    assert!(matches!(decision, Decision::Allow { statement: 1, .. }));
    assert_eq!(
        reports[2].why_not.as_deref(),
        Some(format!("NotResource lists {}", pipeline("df-TMP1")).as_str())
    );
    assert_eq!(reports[1].why_not, None);
}
