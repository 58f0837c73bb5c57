//! The single authorization point. Every operation maps to its IAM action in one exhaustive
//! `match` (no catch-all arm), so a new operation cannot compile without a decision here; the
//! decision is AWS's policy evaluation (`sluice-policy`) over the policies attached to the
//! caller: an explicit Deny beats an Allow, which beats the implicit deny. The root identity may
//! do everything.

use sluice_policy::{Decision, RequestContext};
use sluice_wire::{ApiError, ErrorKind, Operation};

use crate::api::Principal;

/// The IAM action a call needs: `datapipeline:<Op>`, or `cloudtrail:LookupEvents` for the audit trail.
pub fn action(operation: Operation) -> &'static str {
    match operation {
        Operation::ActivatePipeline => "datapipeline:ActivatePipeline",
        Operation::AddTags => "datapipeline:AddTags",
        Operation::CreatePipeline => "datapipeline:CreatePipeline",
        Operation::DeactivatePipeline => "datapipeline:DeactivatePipeline",
        Operation::DeletePipeline => "datapipeline:DeletePipeline",
        Operation::DescribeObjects => "datapipeline:DescribeObjects",
        Operation::DescribePipelines => "datapipeline:DescribePipelines",
        Operation::EvaluateExpression => "datapipeline:EvaluateExpression",
        Operation::GetPipelineDefinition => "datapipeline:GetPipelineDefinition",
        Operation::ListPipelines => "datapipeline:ListPipelines",
        Operation::PollForTask => "datapipeline:PollForTask",
        Operation::PutPipelineDefinition => "datapipeline:PutPipelineDefinition",
        Operation::QueryObjects => "datapipeline:QueryObjects",
        Operation::RemoveTags => "datapipeline:RemoveTags",
        Operation::ReportTaskProgress => "datapipeline:ReportTaskProgress",
        Operation::ReportTaskRunnerHeartbeat => "datapipeline:ReportTaskRunnerHeartbeat",
        Operation::SetStatus => "datapipeline:SetStatus",
        Operation::SetTaskStatus => "datapipeline:SetTaskStatus",
        Operation::ValidatePipelineDefinition => "datapipeline:ValidatePipelineDefinition",
        Operation::LookupEvents => "cloudtrail:LookupEvents",
        Operation::CreateUser => "iam:CreateUser",
        Operation::GetUser => "iam:GetUser",
        Operation::ListUsers => "iam:ListUsers",
        Operation::DeleteUser => "iam:DeleteUser",
        Operation::CreateAccessKey => "iam:CreateAccessKey",
        Operation::ListAccessKeys => "iam:ListAccessKeys",
        Operation::UpdateAccessKey => "iam:UpdateAccessKey",
        Operation::DeleteAccessKey => "iam:DeleteAccessKey",
        Operation::CreatePolicy => "iam:CreatePolicy",
        Operation::GetPolicy => "iam:GetPolicy",
        Operation::ListPolicies => "iam:ListPolicies",
        Operation::DeletePolicy => "iam:DeletePolicy",
        Operation::AttachUserPolicy => "iam:AttachUserPolicy",
        Operation::DetachUserPolicy => "iam:DetachUserPolicy",
        Operation::ListAttachedUserPolicies => "iam:ListAttachedUserPolicies",
        Operation::CreateLoginProfile => "iam:CreateLoginProfile",
        Operation::GetLoginProfile => "iam:GetLoginProfile",
        Operation::UpdateLoginProfile => "iam:UpdateLoginProfile",
        Operation::DeleteLoginProfile => "iam:DeleteLoginProfile",
        Operation::ChangePassword => "iam:ChangePassword",
        Operation::CreateVirtualMFADevice => "iam:CreateVirtualMFADevice",
        Operation::EnableMFADevice => "iam:EnableMFADevice",
        Operation::ResyncMFADevice => "iam:ResyncMFADevice",
        Operation::DeactivateMFADevice => "iam:DeactivateMFADevice",
        Operation::DeleteVirtualMFADevice => "iam:DeleteVirtualMFADevice",
        Operation::ListMFADevices => "iam:ListMFADevices",
        Operation::GetSessionToken => "sts:GetSessionToken",
        Operation::CreateGroup => "iam:CreateGroup",
        Operation::GetGroup => "iam:GetGroup",
        Operation::ListGroups => "iam:ListGroups",
        Operation::DeleteGroup => "iam:DeleteGroup",
        Operation::AddUserToGroup => "iam:AddUserToGroup",
        Operation::RemoveUserFromGroup => "iam:RemoveUserFromGroup",
        Operation::ListGroupsForUser => "iam:ListGroupsForUser",
        Operation::AttachGroupPolicy => "iam:AttachGroupPolicy",
        Operation::DetachGroupPolicy => "iam:DetachGroupPolicy",
        Operation::ListAttachedGroupPolicies => "iam:ListAttachedGroupPolicies",
        Operation::SimulatePrincipalPolicy => "iam:SimulatePrincipalPolicy",
        Operation::GetCallerIdentity => "sts:GetCallerIdentity",
        Operation::GetAccountSecuritySettings => "iam:GetAccountSecuritySettings",
        Operation::UpdateAccountSecuritySettings => "iam:UpdateAccountSecuritySettings",
        Operation::CreateRole => "iam:CreateRole",
        Operation::GetRole => "iam:GetRole",
        Operation::ListRoles => "iam:ListRoles",
        Operation::DeleteRole => "iam:DeleteRole",
        Operation::UpdateAssumeRolePolicy => "iam:UpdateAssumeRolePolicy",
        Operation::AttachRolePolicy => "iam:AttachRolePolicy",
        Operation::DetachRolePolicy => "iam:DetachRolePolicy",
        Operation::ListAttachedRolePolicies => "iam:ListAttachedRolePolicies",
        Operation::PutRoleSecret => "iam:PutRoleSecret",
        Operation::ListRoleSecrets => "iam:ListRoleSecrets",
        Operation::DeleteRoleSecret => "iam:DeleteRoleSecret",
        Operation::GetKeyStatus => "sluice:GetKeyStatus",
        Operation::RotateKeys => "sluice:RotateKeys",
        Operation::RewrapKeys => "sluice:RewrapKeys",
        Operation::VerifyAuditTrail => "sluice:VerifyAuditTrail",
        Operation::ReportFindings => "sluice:ReportFindings",
        Operation::ListFindings => "sluice:ListFindings",
        Operation::GetFindings => "sluice:GetFindings",
        Operation::StartClassificationJob => "sluice:StartClassificationJob",
        Operation::GetClassificationJob => "sluice:GetClassificationJob",
        Operation::ListClassificationJobs => "sluice:ListClassificationJobs",
        Operation::UpdateClassificationJob => "sluice:UpdateClassificationJob",
    }
}

/// The policies Sluice ships, attachable by these ARNs (`ListPolicies` with scope `AWS`).
pub const MANAGED_POLICIES: &[(&str, &str)] = &[
    (
        "AdministratorAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Everything","Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    ),
    (
        "SluiceReadOnlyAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadPipelines","Effect":"Allow","Action":["datapipeline:Describe*","datapipeline:Get*","datapipeline:List*","datapipeline:Query*","datapipeline:ValidatePipelineDefinition","datapipeline:EvaluateExpression","sluice:ListFindings","sluice:GetFindings","sluice:GetClassificationJob","sluice:ListClassificationJobs"],"Resource":"*"}]}"#,
    ),
    (
        "SluicePipelineOperator",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"OperatePipelines","Effect":"Allow","Action":["datapipeline:Describe*","datapipeline:Get*","datapipeline:List*","datapipeline:Query*","datapipeline:ValidatePipelineDefinition","datapipeline:EvaluateExpression","datapipeline:CreatePipeline","datapipeline:PutPipelineDefinition","datapipeline:ActivatePipeline","datapipeline:DeactivatePipeline","datapipeline:SetStatus","datapipeline:AddTags","datapipeline:RemoveTags","datapipeline:DeletePipeline","sluice:ListFindings","sluice:GetFindings","sluice:StartClassificationJob","sluice:GetClassificationJob","sluice:ListClassificationJobs","sluice:UpdateClassificationJob"],"Resource":"*"},{"Sid":"PassDefaultRoles","Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::*:role/DataPipelineDefault*"}]}"#,
    ),
    (
        "SluiceInProcessRunner",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"RunTasks","Effect":"Allow","Action":["datapipeline:PollForTask","datapipeline:ReportTaskProgress","datapipeline:SetTaskStatus","datapipeline:ReportTaskRunnerHeartbeat","sluice:ReportFindings"],"Resource":"*"}]}"#,
    ),
    (
        "SluiceTaskRunner",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"PollOwnWorkerGroup","Effect":"Allow","Action":"datapipeline:PollForTask","Resource":"*","Condition":{"StringEquals":{"datapipeline:workerGroup":"${aws:PrincipalTag/workerGroup}"}}},{"Sid":"ReportTasks","Effect":"Allow","Action":["datapipeline:ReportTaskProgress","datapipeline:SetTaskStatus","datapipeline:ReportTaskRunnerHeartbeat","sluice:ReportFindings"],"Resource":"*"}]}"#,
    ),
];

/// The ARN of a policy Sluice ships.
pub fn managed_policy_arn(name: &str) -> String {
    format!("arn:aws:iam::aws:policy/{name}")
}

/// A shipped policy by ARN: its name and document.
pub fn managed_policy(arn: &str) -> Option<(&'static str, &'static str)> {
    let name = arn.strip_prefix("arn:aws:iam::aws:policy/")?;
    MANAGED_POLICIES
        .iter()
        .copied()
        .find(|(candidate, _)| *candidate == name)
}

/// Context keys of the request beyond the caller's own (a pipeline's tags and creator, the worker
/// group polled, the tags a request sets).
pub type Extra<'a> = &'a [(String, Vec<String>)];

/// Permissions checked inside an operation rather than for a whole call. Under Sluice's own
/// prefix, so `datapipeline:*` or `datapipeline:Get*` never grant them by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read `*` fields and parameters in GetPipelineDefinition, DescribeObjects, QueryObjects
    /// selectors and EvaluateExpression, instead of the mask.
    RevealSecretFields,
    /// Name a role in a definition that is activated (`iam:PassRole` on the role, as on AWS).
    PassRole,
}

impl Permission {
    pub fn action(self) -> &'static str {
        match self {
            Permission::RevealSecretFields => "sluice:RevealSecretFields",
            Permission::PassRole => "iam:PassRole",
        }
    }
}

/// Whether the caller holds a permission (an Allow and no Deny; the root always does).
pub fn permits(principal: &Principal, permission: Permission, resource: &str, extra: Extra) -> bool {
    if principal.identity.kind == "Root" {
        return true;
    }
    if principal.mfa_missing {
        return false;
    }
    let context = context_for_action(principal, permission.action(), resource, extra);
    matches!(principal.policies.evaluate(&context), Decision::Allow { .. })
}

/// The request as policies see it.
pub fn request_context(principal: &Principal, operation: Operation, resource: &str, extra: Extra) -> RequestContext {
    context_for_action(principal, action(operation), resource, extra)
}

fn context_for_action(principal: &Principal, action: &str, resource: &str, extra: Extra) -> RequestContext {
    let identity = &principal.identity;
    let mut context = RequestContext::new(action, resource)
        .with("aws:username", identity.name.clone())
        .with("aws:userid", identity.identity_id.clone())
        // For a role session, AWS's aws:PrincipalArn is the role's ARN.
        .with(
            "aws:PrincipalArn",
            principal
                .session_issuer
                .as_ref()
                .map_or(identity.arn.clone(), |role| role.arn.clone()),
        )
        .with("aws:PrincipalAccount", identity.account_id.clone())
        .with(
            "aws:PrincipalType",
            match identity.kind.as_str() {
                "Root" => "Account",
                "AssumedRole" => "AssumedRole",
                _ => "User",
            },
        )
        .with(
            "aws:SecureTransport",
            if principal.secure_transport { "true" } else { "false" },
        )
        .with("aws:CurrentTime", principal.request_time.clone())
        .with(
            "aws:EpochTime",
            chrono::DateTime::parse_from_rfc3339(&principal.request_time)
                .map(|time| time.timestamp().to_string())
                .unwrap_or_default(),
        );
    // Present only for session credentials, as AWS does: long-term keys never carry MFA, so a
    // policy demanding MFA tests it with `BoolIfExists`.
    if principal.session {
        context = context.with(
            "aws:MultiFactorAuthPresent",
            if principal.mfa_authenticated_at.is_some() {
                "true"
            } else {
                "false"
            },
        );
        if let (Some(at), Ok(now)) = (
            principal.mfa_authenticated_at,
            chrono::DateTime::parse_from_rfc3339(&principal.request_time),
        ) {
            context = context.with(
                "aws:MultiFactorAuthAge",
                (now.timestamp() - at.timestamp()).max(0).to_string(),
            );
        }
    }
    if let Some(source_ip) = &principal.source_ip {
        context = context.with("aws:SourceIp", source_ip.clone());
    }
    for (key, value) in &principal.tags {
        context = context.with(&format!("aws:PrincipalTag/{key}"), value.clone());
    }
    for (key, values) in extra {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        context = context.with_values(key, &values);
    }
    context
}

pub fn authorize(principal: &Principal, operation: Operation, resource: &str) -> Result<(), ApiError> {
    authorize_with(principal, operation, resource, &[])
}

/// Authorizes a call with extra context keys. The denial names the action and the resource,
/// and says whether a Deny statement or the absence of an Allow decided it.
pub fn authorize_with(
    principal: &Principal,
    operation: Operation,
    resource: &str,
    extra: Extra,
) -> Result<(), ApiError> {
    if principal.identity.kind == "Root" {
        return Ok(());
    }
    if principal.mfa_missing && !sets_up_mfa(operation) {
        return Err(ApiError::new(
            ErrorKind::AccessDeniedException,
            format!(
                "User: {} is not authorized to perform: {} on resource: {resource} because this account requires MFA: call with session credentials from GetSessionToken with an MFA code (sluice iam session-token)",
                principal.identity.arn,
                action(operation)
            ),
        ));
    }
    let context = request_context(principal, operation, resource, extra);
    let why = match principal.policies.evaluate(&context) {
        Decision::Allow { .. } => return Ok(()),
        // As in AWS, any identity may get session credentials for itself unless a policy
        // explicitly denies it; and a user may change its own console password (AWS's "allow
        // users to change their own password" account setting, on in Sluice).
        Decision::ImplicitDeny if matches!(operation, Operation::GetSessionToken | Operation::ChangePassword) => {
            return Ok(());
        }
        // GetCallerIdentity needs no permission and cannot be denied (AWS's rule).
        _ if operation == Operation::GetCallerIdentity => return Ok(()),
        Decision::ExplicitDeny { .. } => "with an explicit deny in an identity-based policy".to_string(),
        Decision::ImplicitDeny => format!("because no identity-based policy allows the {} action", context.action),
    };
    Err(ApiError::new(
        ErrorKind::AccessDeniedException,
        format!(
            "User: {} is not authorized to perform: {} on resource: {resource} {why}",
            principal.identity.arn, context.action
        ),
    ))
}

/// What a user without MFA may still do where the account requires MFA: find out who it is,
/// set up a device and get MFA-bearing session credentials.
fn sets_up_mfa(operation: Operation) -> bool {
    matches!(
        operation,
        Operation::GetCallerIdentity
            | Operation::GetSessionToken
            | Operation::GetUser
            | Operation::CreateVirtualMFADevice
            | Operation::EnableMFADevice
            | Operation::ResyncMFADevice
            | Operation::ListMFADevices
    )
}

/// Whether a call would be allowed (for filtering what list operations show).
pub fn allows(principal: &Principal, operation: Operation, resource: &str, extra: Extra) -> bool {
    authorize_with(principal, operation, resource, extra).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_store::IdentityRecord;

    fn user(policies: &[&str], tags: &[(&str, &str)]) -> Principal {
        Principal {
            identity: IdentityRecord {
                identity_id: "AIDAEXAMPLE".into(),
                account_id: "123456789012".into(),
                kind: "IAMUser".into(),
                name: "runner".into(),
                arn: "arn:aws:iam::123456789012:user/runner".into(),
            },
            access_key_id: "AKIAEXAMPLE".into(),
            session_issuer: None,
            policies: std::sync::Arc::new(sluice_policy::PolicySet::new(
                policies
                    .iter()
                    .map(|name| {
                        sluice_policy::parse(managed_policy(&managed_policy_arn(name)).expect("shipped").1)
                            .expect("parses")
                    })
                    .collect(),
            )),
            tags: tags
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            source_ip: Some("127.0.0.1".into()),
            secure_transport: true,
            request_time: "2026-11-28T12:00:00Z".into(),
            session: false,
            mfa_authenticated_at: None,
            mfa_missing: false,
        }
    }

    #[test]
    fn every_shipped_policy_parses_and_means_what_it_says() {
        for (name, document) in MANAGED_POLICIES {
            assert!(sluice_policy::parse(document).is_ok(), "{name}");
        }
        let pipeline = "arn:aws:datapipeline:local:123456789012:pipeline/df-1";
        let reader = user(&["SluiceReadOnlyAccess"], &[]);
        assert!(authorize(&reader, Operation::DescribePipelines, pipeline).is_ok());
        assert!(authorize(&reader, Operation::GetPipelineDefinition, pipeline).is_ok());
        for write in [
            Operation::PutPipelineDefinition,
            Operation::ActivatePipeline,
            Operation::PollForTask,
        ] {
            assert!(authorize(&reader, write, pipeline).is_err(), "{write:?}");
        }
        let operator = user(&["SluicePipelineOperator"], &[]);
        assert!(authorize(&operator, Operation::ActivatePipeline, pipeline).is_ok());
        assert!(authorize(&operator, Operation::PollForTask, "*").is_err());
        assert!(authorize(&operator, Operation::CreateUser, "*").is_err());
        let runner = user(&["SluiceTaskRunner"], &[("workerGroup", "etl")]);
        let group = |name: &str| vec![("datapipeline:workerGroup".to_string(), vec![name.to_string()])];
        assert!(authorize_with(&runner, Operation::PollForTask, "*", &group("etl")).is_ok());
        assert!(authorize_with(&runner, Operation::PollForTask, "*", &group("other")).is_err());
        // Without the tag the variable resolves to nothing and nothing matches.
        let untagged = user(&["SluiceTaskRunner"], &[]);
        assert!(authorize_with(&untagged, Operation::PollForTask, "*", &group("")).is_err());
        let in_process = user(&["SluiceInProcessRunner"], &[]);
        assert!(authorize_with(&in_process, Operation::PollForTask, "*", &group("runsOn:*")).is_ok());
        assert!(authorize(&in_process, Operation::SetTaskStatus, "*").is_ok());
        for other in [
            Operation::GetPipelineDefinition,
            Operation::ListPipelines,
            Operation::CreateUser,
        ] {
            assert!(authorize(&in_process, other, "*").is_err(), "{other:?}");
        }
        let admin = user(&["AdministratorAccess"], &[]);
        assert!(authorize(&admin, Operation::DeleteUser, "arn:aws:iam::123456789012:user/x").is_ok());
        let error = authorize(&user(&[], &[]), Operation::ListPipelines, "*").expect_err("denied");
        assert_eq!(error.kind, ErrorKind::AccessDeniedException);
        assert_eq!(
            error.message,
            "User: arn:aws:iam::123456789012:user/runner is not authorized to perform: datapipeline:ListPipelines on resource: * because no identity-based policy allows the datapipeline:ListPipelines action"
        );
    }

    #[test]
    fn every_operation_has_an_action_in_its_service() {
        for operation in Operation::ALL {
            let action = action(operation);
            let prefix = match operation.signing_service() {
                "datapipeline" => "datapipeline:",
                "cloudtrail" => "cloudtrail:",
                "sts" => "sts:",
                "sluice" => "sluice:",
                _ => "iam:",
            };
            assert_eq!(action, format!("{prefix}{}", operation.name()));
        }
    }
}
