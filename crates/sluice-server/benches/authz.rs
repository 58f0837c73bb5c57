//! Authorization decisions and SigV4 verification (a benchmark, not a test): a user with 100
//! attached policies (each three statements with conditions and wildcards; the one that allows
//! is the last), decided the way every call is decided; and a botocore-shaped DescribePipelines
//! request's signature verified. `cargo bench -p sluice-server --bench authz`

use std::hint::black_box;
use std::time::Instant;

use sluice_crypto::Secret;
use sluice_crypto::sigv4::{self, RequestParts};
use sluice_server::api::Principal;
use sluice_server::authz;
use sluice_store::IdentityRecord;
use sluice_wire::Operation;

fn policy(index: usize, allows: bool) -> sluice_policy::Policy {
    let action = if allows {
        "datapipeline:Describe*"
    } else {
        "datapipeline:Activate*"
    };
    let document = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Sid": "Own{index}", "Effect": "Allow", "Action": ["{action}", "datapipeline:Get*"],
              "Resource": "arn:aws:datapipeline:*:123456789012:pipeline/df-*",
              "Condition": {{"StringEquals": {{"datapipeline:Tag/team": "${{aws:PrincipalTag/team}}"}},
                             "IpAddress": {{"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16", "127.0.0.0/8"]}}}}}},
            {{"Sid": "Mfa{index}", "Effect": "Deny", "Action": "datapipeline:Delete*", "Resource": "*",
              "Condition": {{"BoolIfExists": {{"aws:MultiFactorAuthPresent": "false"}}}}}},
            {{"Sid": "Keys{index}", "Effect": "Allow", "Action": "iam:*AccessKey*",
              "Resource": "arn:aws:iam::*:user/${{aws:username}}"}}]}}"#
    );
    sluice_policy::parse(&document).expect("policy parses")
}

fn main() {
    let principal = Principal {
        identity: IdentityRecord {
            identity_id: "AIDAEXAMPLEEXAMPLE123".into(),
            account_id: "123456789012".into(),
            kind: "IAMUser".into(),
            name: "alice".into(),
            arn: "arn:aws:iam::123456789012:user/alice".into(),
        },
        access_key_id: "AKIAEXAMPLEEXAMPLE12".into(),
        policies: std::sync::Arc::new(sluice_policy::PolicySet::new(
            (0..100).map(|index| policy(index, index == 99)).collect(),
        )),
        tags: vec![("team".into(), "blue".into())],
        source_ip: Some("127.0.0.1".into()),
        secure_transport: true,
        request_time: "2026-11-28T12:00:00Z".into(),
        session: false,
        mfa_authenticated_at: None,
        mfa_missing: false,
        session_issuer: None,
    };
    let resource = "arn:aws:datapipeline:local:123456789012:pipeline/df-0123456789ABCDEFGHIJ";
    let extra = vec![
        (
            "datapipeline:PipelineCreator".to_string(),
            vec!["AIDAEXAMPLEEXAMPLE123".to_string()],
        ),
        ("datapipeline:Tag/team".to_string(), vec!["blue".to_string()]),
    ];
    assert!(authz::authorize_with(&principal, Operation::DescribePipelines, resource, &extra).is_ok());
    assert!(authz::authorize_with(&principal, Operation::DeletePipeline, resource, &extra).is_err());
    let rounds = 20_000;
    for (label, operation) in [
        ("allowed by the 100th policy", Operation::DescribePipelines),
        (
            "denied by an explicit Deny in the first policy",
            Operation::DeletePipeline,
        ),
        ("implicitly denied (nothing matches)", Operation::PutPipelineDefinition),
    ] {
        let started = Instant::now();
        for _ in 0..rounds {
            black_box(authz::authorize_with(black_box(&principal), operation, resource, &extra).is_ok());
        }
        let each = started.elapsed() / rounds;
        println!(
            "authorization, 100 policies, {label}: {:.2} µs",
            each.as_nanos() as f64 / 1000.0
        );
    }

    // SigV4: a DescribePipelines request as botocore signs it.
    let body = br#"{"pipelineIds": ["df-0123456789ABCDEFGHIJ"]}"#;
    let amz_date = "20261128T120000Z";
    let headers: Vec<(String, String)> = vec![
        ("content-type".into(), "application/x-amz-json-1.1".into()),
        ("host".into(), "localhost:8443".into()),
        (
            "user-agent".into(),
            "Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux lang/python#3.11.7".into(),
        ),
        ("x-amz-date".into(), amz_date.into()),
        ("x-amz-target".into(), "DataPipeline.DescribePipelines".into()),
    ];
    let signed: Vec<String> = vec![
        "content-type".into(),
        "host".into(),
        "x-amz-date".into(),
        "x-amz-target".into(),
    ];
    let secret = Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string());
    let parts = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    let signature = sigv4::signature(&parts, &signed, &secret, amz_date, "us-east-1", "datapipeline");
    let header = format!(
        "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEEXAMPLE12/20261128/us-east-1/datapipeline/aws4_request, SignedHeaders={}, Signature={signature}",
        signed.join(";")
    );
    let started = Instant::now();
    for _ in 0..rounds {
        let authorization = sigv4::parse_authorization(black_box(&header)).expect("parses");
        sigv4::verify(&authorization, &parts, &secret, amz_date).expect("verifies");
    }
    let each = started.elapsed() / rounds;
    println!(
        "SigV4 parse + verify, DescribePipelines: {:.2} µs",
        each.as_nanos() as f64 / 1000.0
    );
}
