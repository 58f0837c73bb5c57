//! The 19 operations of Data Pipeline, CloudTrail's LookupEvents, Sluice's identity API and its
//! administration API,
//! parsed from `X-Amz-Target` before anything else happens.

use crate::{ApiError, ErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    ActivatePipeline,
    AddTags,
    CreatePipeline,
    DeactivatePipeline,
    DeletePipeline,
    DescribeObjects,
    DescribePipelines,
    EvaluateExpression,
    GetPipelineDefinition,
    ListPipelines,
    PollForTask,
    PutPipelineDefinition,
    QueryObjects,
    RemoveTags,
    ReportTaskProgress,
    ReportTaskRunnerHeartbeat,
    SetStatus,
    SetTaskStatus,
    ValidatePipelineDefinition,
    /// CloudTrail's LookupEvents over the audit trail, so `aws cloudtrail lookup-events` works.
    LookupEvents,
    // Sluice's identity API (`X-Amz-Target: SluiceIAM.<Op>`, AWS JSON 1.1, SigV4 service `iam`):
    // IAM's operations by IAM's names and member names.
    CreateUser,
    GetUser,
    ListUsers,
    DeleteUser,
    CreateAccessKey,
    ListAccessKeys,
    UpdateAccessKey,
    DeleteAccessKey,
    CreatePolicy,
    GetPolicy,
    ListPolicies,
    DeletePolicy,
    AttachUserPolicy,
    DetachUserPolicy,
    ListAttachedUserPolicies,
    CreateLoginProfile,
    GetLoginProfile,
    UpdateLoginProfile,
    DeleteLoginProfile,
    ChangePassword,
    CreateVirtualMFADevice,
    EnableMFADevice,
    ResyncMFADevice,
    DeactivateMFADevice,
    DeleteVirtualMFADevice,
    ListMFADevices,
    GetSessionToken,
    CreateGroup,
    GetGroup,
    ListGroups,
    DeleteGroup,
    AddUserToGroup,
    RemoveUserFromGroup,
    ListGroupsForUser,
    AttachGroupPolicy,
    DetachGroupPolicy,
    ListAttachedGroupPolicies,
    SimulatePrincipalPolicy,
    GetCallerIdentity,
    GetAccountSecuritySettings,
    UpdateAccountSecuritySettings,
    CreateRole,
    GetRole,
    ListRoles,
    DeleteRole,
    UpdateAssumeRolePolicy,
    AttachRolePolicy,
    DetachRolePolicy,
    ListAttachedRolePolicies,
    // Sluice's own: credentials for external systems a role carries.
    PutRoleSecret,
    ListRoleSecrets,
    DeleteRoleSecret,
    // Sluice's administration API (`X-Amz-Target: SluiceAdmin.<Op>`, AWS JSON 1.1, SigV4 service
    // `sluice`, IAM actions `sluice:<Op>`): keys at rest and the audit trail.
    GetKeyStatus,
    RotateKeys,
    RewrapKeys,
    VerifyAuditTrail,
    // Sluice's findings API (`X-Amz-Target: SluiceFindings.<Op>`, SigV4 service `sluice`, IAM
    // actions `sluice:<Op>`): sensitive data found in pipelines' outputs.
    ReportFindings,
    ListFindings,
    GetFindings,
    StartClassificationJob,
    GetClassificationJob,
    ListClassificationJobs,
    UpdateClassificationJob,
}

const CLOUDTRAIL_TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";
/// The target prefix of Sluice's identity API.
pub const IAM_TARGET_PREFIX: &str = "SluiceIAM.";
/// The target prefix of Sluice's findings API.
pub const FINDINGS_TARGET_PREFIX: &str = "SluiceFindings.";
/// The target prefix of Sluice's administration API.
pub const ADMIN_TARGET_PREFIX: &str = "SluiceAdmin.";

impl Operation {
    pub const ALL: [Operation; 83] = [
        Operation::ActivatePipeline,
        Operation::AddTags,
        Operation::CreatePipeline,
        Operation::DeactivatePipeline,
        Operation::DeletePipeline,
        Operation::DescribeObjects,
        Operation::DescribePipelines,
        Operation::EvaluateExpression,
        Operation::GetPipelineDefinition,
        Operation::ListPipelines,
        Operation::PollForTask,
        Operation::PutPipelineDefinition,
        Operation::QueryObjects,
        Operation::RemoveTags,
        Operation::ReportTaskProgress,
        Operation::ReportTaskRunnerHeartbeat,
        Operation::SetStatus,
        Operation::SetTaskStatus,
        Operation::ValidatePipelineDefinition,
        Operation::LookupEvents,
        Operation::CreateUser,
        Operation::GetUser,
        Operation::ListUsers,
        Operation::DeleteUser,
        Operation::CreateAccessKey,
        Operation::ListAccessKeys,
        Operation::UpdateAccessKey,
        Operation::DeleteAccessKey,
        Operation::CreatePolicy,
        Operation::GetPolicy,
        Operation::ListPolicies,
        Operation::DeletePolicy,
        Operation::AttachUserPolicy,
        Operation::DetachUserPolicy,
        Operation::ListAttachedUserPolicies,
        Operation::CreateLoginProfile,
        Operation::GetLoginProfile,
        Operation::UpdateLoginProfile,
        Operation::DeleteLoginProfile,
        Operation::ChangePassword,
        Operation::CreateVirtualMFADevice,
        Operation::EnableMFADevice,
        Operation::ResyncMFADevice,
        Operation::DeactivateMFADevice,
        Operation::DeleteVirtualMFADevice,
        Operation::ListMFADevices,
        Operation::GetSessionToken,
        Operation::CreateGroup,
        Operation::GetGroup,
        Operation::ListGroups,
        Operation::DeleteGroup,
        Operation::AddUserToGroup,
        Operation::RemoveUserFromGroup,
        Operation::ListGroupsForUser,
        Operation::AttachGroupPolicy,
        Operation::DetachGroupPolicy,
        Operation::ListAttachedGroupPolicies,
        Operation::SimulatePrincipalPolicy,
        Operation::GetCallerIdentity,
        Operation::GetAccountSecuritySettings,
        Operation::UpdateAccountSecuritySettings,
        Operation::CreateRole,
        Operation::GetRole,
        Operation::ListRoles,
        Operation::DeleteRole,
        Operation::UpdateAssumeRolePolicy,
        Operation::AttachRolePolicy,
        Operation::DetachRolePolicy,
        Operation::ListAttachedRolePolicies,
        Operation::PutRoleSecret,
        Operation::ListRoleSecrets,
        Operation::DeleteRoleSecret,
        Operation::GetKeyStatus,
        Operation::RotateKeys,
        Operation::RewrapKeys,
        Operation::VerifyAuditTrail,
        Operation::ReportFindings,
        Operation::ListFindings,
        Operation::GetFindings,
        Operation::StartClassificationJob,
        Operation::GetClassificationJob,
        Operation::ListClassificationJobs,
        Operation::UpdateClassificationJob,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::ActivatePipeline => "ActivatePipeline",
            Operation::AddTags => "AddTags",
            Operation::CreatePipeline => "CreatePipeline",
            Operation::DeactivatePipeline => "DeactivatePipeline",
            Operation::DeletePipeline => "DeletePipeline",
            Operation::DescribeObjects => "DescribeObjects",
            Operation::DescribePipelines => "DescribePipelines",
            Operation::EvaluateExpression => "EvaluateExpression",
            Operation::GetPipelineDefinition => "GetPipelineDefinition",
            Operation::ListPipelines => "ListPipelines",
            Operation::PollForTask => "PollForTask",
            Operation::PutPipelineDefinition => "PutPipelineDefinition",
            Operation::QueryObjects => "QueryObjects",
            Operation::RemoveTags => "RemoveTags",
            Operation::ReportTaskProgress => "ReportTaskProgress",
            Operation::ReportTaskRunnerHeartbeat => "ReportTaskRunnerHeartbeat",
            Operation::SetStatus => "SetStatus",
            Operation::SetTaskStatus => "SetTaskStatus",
            Operation::ValidatePipelineDefinition => "ValidatePipelineDefinition",
            Operation::LookupEvents => "LookupEvents",
            Operation::CreateUser => "CreateUser",
            Operation::GetUser => "GetUser",
            Operation::ListUsers => "ListUsers",
            Operation::DeleteUser => "DeleteUser",
            Operation::CreateAccessKey => "CreateAccessKey",
            Operation::ListAccessKeys => "ListAccessKeys",
            Operation::UpdateAccessKey => "UpdateAccessKey",
            Operation::DeleteAccessKey => "DeleteAccessKey",
            Operation::CreatePolicy => "CreatePolicy",
            Operation::GetPolicy => "GetPolicy",
            Operation::ListPolicies => "ListPolicies",
            Operation::DeletePolicy => "DeletePolicy",
            Operation::AttachUserPolicy => "AttachUserPolicy",
            Operation::DetachUserPolicy => "DetachUserPolicy",
            Operation::ListAttachedUserPolicies => "ListAttachedUserPolicies",
            Operation::CreateLoginProfile => "CreateLoginProfile",
            Operation::GetLoginProfile => "GetLoginProfile",
            Operation::UpdateLoginProfile => "UpdateLoginProfile",
            Operation::DeleteLoginProfile => "DeleteLoginProfile",
            Operation::ChangePassword => "ChangePassword",
            Operation::CreateVirtualMFADevice => "CreateVirtualMFADevice",
            Operation::EnableMFADevice => "EnableMFADevice",
            Operation::ResyncMFADevice => "ResyncMFADevice",
            Operation::DeactivateMFADevice => "DeactivateMFADevice",
            Operation::DeleteVirtualMFADevice => "DeleteVirtualMFADevice",
            Operation::ListMFADevices => "ListMFADevices",
            Operation::GetSessionToken => "GetSessionToken",
            Operation::CreateGroup => "CreateGroup",
            Operation::GetGroup => "GetGroup",
            Operation::ListGroups => "ListGroups",
            Operation::DeleteGroup => "DeleteGroup",
            Operation::AddUserToGroup => "AddUserToGroup",
            Operation::RemoveUserFromGroup => "RemoveUserFromGroup",
            Operation::ListGroupsForUser => "ListGroupsForUser",
            Operation::AttachGroupPolicy => "AttachGroupPolicy",
            Operation::DetachGroupPolicy => "DetachGroupPolicy",
            Operation::ListAttachedGroupPolicies => "ListAttachedGroupPolicies",
            Operation::SimulatePrincipalPolicy => "SimulatePrincipalPolicy",
            Operation::GetCallerIdentity => "GetCallerIdentity",
            Operation::GetAccountSecuritySettings => "GetAccountSecuritySettings",
            Operation::UpdateAccountSecuritySettings => "UpdateAccountSecuritySettings",
            Operation::CreateRole => "CreateRole",
            Operation::GetRole => "GetRole",
            Operation::ListRoles => "ListRoles",
            Operation::DeleteRole => "DeleteRole",
            Operation::UpdateAssumeRolePolicy => "UpdateAssumeRolePolicy",
            Operation::AttachRolePolicy => "AttachRolePolicy",
            Operation::DetachRolePolicy => "DetachRolePolicy",
            Operation::ListAttachedRolePolicies => "ListAttachedRolePolicies",
            Operation::PutRoleSecret => "PutRoleSecret",
            Operation::ListRoleSecrets => "ListRoleSecrets",
            Operation::DeleteRoleSecret => "DeleteRoleSecret",
            Operation::GetKeyStatus => "GetKeyStatus",
            Operation::RotateKeys => "RotateKeys",
            Operation::RewrapKeys => "RewrapKeys",
            Operation::VerifyAuditTrail => "VerifyAuditTrail",
            Operation::ReportFindings => "ReportFindings",
            Operation::ListFindings => "ListFindings",
            Operation::GetFindings => "GetFindings",
            Operation::StartClassificationJob => "StartClassificationJob",
            Operation::GetClassificationJob => "GetClassificationJob",
            Operation::ListClassificationJobs => "ListClassificationJobs",
            Operation::UpdateClassificationJob => "UpdateClassificationJob",
        }
    }

    /// The SigV4 signing name a client uses for this operation.
    pub fn signing_service(self) -> &'static str {
        match self {
            Operation::LookupEvents => "cloudtrail",
            Operation::GetSessionToken | Operation::GetCallerIdentity => "sts",
            operation if operation.is_iam() => "iam",
            operation if operation.is_admin() || operation.is_findings() => "sluice",
            _ => "datapipeline",
        }
    }

    /// CloudTrail's `eventSource` for calls of this operation.
    pub fn event_source(self) -> &'static str {
        match self {
            Operation::LookupEvents => "cloudtrail.amazonaws.com",
            Operation::GetSessionToken | Operation::GetCallerIdentity => "sts.amazonaws.com",
            operation if operation.is_iam() => "iam.amazonaws.com",
            operation if operation.is_admin() || operation.is_findings() => "sluice.amazonaws.com",
            _ => "datapipeline.amazonaws.com",
        }
    }

    /// An operation of the identity API.
    pub fn is_iam(self) -> bool {
        matches!(
            self,
            Operation::CreateUser
                | Operation::GetUser
                | Operation::ListUsers
                | Operation::DeleteUser
                | Operation::CreateAccessKey
                | Operation::ListAccessKeys
                | Operation::UpdateAccessKey
                | Operation::DeleteAccessKey
                | Operation::CreatePolicy
                | Operation::GetPolicy
                | Operation::ListPolicies
                | Operation::DeletePolicy
                | Operation::AttachUserPolicy
                | Operation::DetachUserPolicy
                | Operation::ListAttachedUserPolicies
                | Operation::CreateLoginProfile
                | Operation::GetLoginProfile
                | Operation::UpdateLoginProfile
                | Operation::DeleteLoginProfile
                | Operation::ChangePassword
                | Operation::CreateVirtualMFADevice
                | Operation::EnableMFADevice
                | Operation::ResyncMFADevice
                | Operation::DeactivateMFADevice
                | Operation::DeleteVirtualMFADevice
                | Operation::ListMFADevices
                | Operation::GetSessionToken
                | Operation::CreateGroup
                | Operation::GetGroup
                | Operation::ListGroups
                | Operation::DeleteGroup
                | Operation::AddUserToGroup
                | Operation::RemoveUserFromGroup
                | Operation::ListGroupsForUser
                | Operation::AttachGroupPolicy
                | Operation::DetachGroupPolicy
                | Operation::ListAttachedGroupPolicies
                | Operation::SimulatePrincipalPolicy
                | Operation::GetCallerIdentity
                | Operation::GetAccountSecuritySettings
                | Operation::UpdateAccountSecuritySettings
                | Operation::CreateRole
                | Operation::GetRole
                | Operation::ListRoles
                | Operation::DeleteRole
                | Operation::UpdateAssumeRolePolicy
                | Operation::AttachRolePolicy
                | Operation::DetachRolePolicy
                | Operation::ListAttachedRolePolicies
                | Operation::PutRoleSecret
                | Operation::ListRoleSecrets
                | Operation::DeleteRoleSecret
        )
    }

    /// An operation of the administration API.
    pub fn is_admin(self) -> bool {
        matches!(
            self,
            Operation::GetKeyStatus | Operation::RotateKeys | Operation::RewrapKeys | Operation::VerifyAuditTrail
        )
    }

    /// An operation of the findings API.
    pub fn is_findings(self) -> bool {
        matches!(
            self,
            Operation::ReportFindings
                | Operation::ListFindings
                | Operation::GetFindings
                | Operation::StartClassificationJob
                | Operation::GetClassificationJob
                | Operation::ListClassificationJobs
                | Operation::UpdateClassificationJob
        )
    }

    /// Whether the call only reads (CloudTrail's `readOnly`).
    pub fn read_only(self) -> bool {
        match self {
            Operation::DescribeObjects
            | Operation::DescribePipelines
            | Operation::EvaluateExpression
            | Operation::GetPipelineDefinition
            | Operation::ListPipelines
            | Operation::QueryObjects
            | Operation::ValidatePipelineDefinition
            | Operation::LookupEvents
            | Operation::GetUser
            | Operation::ListUsers
            | Operation::ListAccessKeys
            | Operation::GetPolicy
            | Operation::ListPolicies
            | Operation::ListAttachedUserPolicies
            | Operation::ListMFADevices
            | Operation::GetLoginProfile
            | Operation::GetGroup
            | Operation::ListGroups
            | Operation::ListGroupsForUser
            | Operation::ListAttachedGroupPolicies
            | Operation::SimulatePrincipalPolicy
            | Operation::GetCallerIdentity
            | Operation::GetAccountSecuritySettings
            | Operation::GetRole
            | Operation::ListRoles
            | Operation::ListAttachedRolePolicies
            | Operation::ListRoleSecrets
            | Operation::GetKeyStatus
            | Operation::VerifyAuditTrail
            | Operation::ListFindings
            | Operation::GetFindings
            | Operation::GetClassificationJob
            | Operation::ListClassificationJobs => true,
            Operation::ActivatePipeline
            | Operation::AddTags
            | Operation::CreatePipeline
            | Operation::DeactivatePipeline
            | Operation::DeletePipeline
            | Operation::PollForTask
            | Operation::PutPipelineDefinition
            | Operation::RemoveTags
            | Operation::ReportTaskProgress
            | Operation::ReportTaskRunnerHeartbeat
            | Operation::SetStatus
            | Operation::SetTaskStatus
            | Operation::CreateUser
            | Operation::DeleteUser
            | Operation::CreateAccessKey
            | Operation::UpdateAccessKey
            | Operation::DeleteAccessKey
            | Operation::CreatePolicy
            | Operation::DeletePolicy
            | Operation::AttachUserPolicy
            | Operation::DetachUserPolicy
            | Operation::CreateLoginProfile
            | Operation::UpdateLoginProfile
            | Operation::DeleteLoginProfile
            | Operation::ChangePassword
            | Operation::CreateVirtualMFADevice
            | Operation::EnableMFADevice
            | Operation::ResyncMFADevice
            | Operation::DeactivateMFADevice
            | Operation::DeleteVirtualMFADevice
            | Operation::GetSessionToken
            | Operation::CreateGroup
            | Operation::DeleteGroup
            | Operation::AddUserToGroup
            | Operation::RemoveUserFromGroup
            | Operation::AttachGroupPolicy
            | Operation::DetachGroupPolicy
            | Operation::UpdateAccountSecuritySettings
            | Operation::CreateRole
            | Operation::DeleteRole
            | Operation::UpdateAssumeRolePolicy
            | Operation::AttachRolePolicy
            | Operation::DetachRolePolicy
            | Operation::PutRoleSecret
            | Operation::DeleteRoleSecret
            | Operation::RotateKeys
            | Operation::RewrapKeys
            | Operation::ReportFindings
            | Operation::StartClassificationJob
            | Operation::UpdateClassificationJob => false,
        }
    }

    /// An IAM or STS operation named by the query protocol's `Action` (what `aws iam`,
    /// `aws sts` and boto3's IAM and STS clients send).
    pub fn from_query_action(action: &str) -> Result<Operation, ApiError> {
        // STS's two, and every operation of the identity API by IAM's name (`aws iam`).
        Operation::ALL
            .into_iter()
            .filter(|operation| operation.is_iam())
            .find(|operation| operation.name() == action)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::UnknownOperationException,
                    format!(
                        "'{}' is not an operation of Sluice's IAM or STS",
                        action.chars().take(64).collect::<String>()
                    ),
                )
            })
    }

    /// `DataPipeline.<Op>`, or the legacy `DataPipeline_20121129.<Op>` the Developer Guide shows.
    pub fn from_target(target: Option<&str>) -> Result<Operation, ApiError> {
        let Some(target) = target else {
            return Err(ApiError::new(
                ErrorKind::UnknownOperationException,
                "the X-Amz-Target header is missing; it must name the operation, e.g. DataPipeline.ListPipelines",
            ));
        };
        if let Some(name) = target.strip_prefix(CLOUDTRAIL_TARGET_PREFIX) {
            return match name {
                "LookupEvents" => Ok(Operation::LookupEvents),
                _ => Err(ApiError::new(
                    ErrorKind::UnknownOperationException,
                    "of the CloudTrail API, Sluice answers LookupEvents only",
                )),
            };
        }
        if let Some(name) = target.strip_prefix(IAM_TARGET_PREFIX) {
            return Operation::ALL
                .into_iter()
                .filter(|operation| operation.is_iam())
                .find(|operation| operation.name() == name)
                .ok_or_else(|| {
                    let shown: String = name.chars().take(64).collect();
                    ApiError::new(
                        ErrorKind::UnknownOperationException,
                        format!("'{shown}' is not an operation of Sluice's identity API"),
                    )
                });
        }
        if let Some(name) = target.strip_prefix(ADMIN_TARGET_PREFIX) {
            return Operation::ALL
                .into_iter()
                .filter(|operation| operation.is_admin())
                .find(|operation| operation.name() == name)
                .ok_or_else(|| {
                    let shown: String = name.chars().take(64).collect();
                    ApiError::new(
                        ErrorKind::UnknownOperationException,
                        format!("'{shown}' is not an operation of Sluice's administration API"),
                    )
                });
        }
        if let Some(name) = target.strip_prefix(FINDINGS_TARGET_PREFIX) {
            return Operation::ALL
                .into_iter()
                .filter(|operation| operation.is_findings())
                .find(|operation| operation.name() == name)
                .ok_or_else(|| {
                    let shown: String = name.chars().take(64).collect();
                    ApiError::new(
                        ErrorKind::UnknownOperationException,
                        format!("'{shown}' is not an operation of Sluice's findings API"),
                    )
                });
        }
        let name = target
            .strip_prefix("DataPipeline.")
            .or_else(|| target.strip_prefix("DataPipeline_20121129."));
        name.and_then(|name| {
            Operation::ALL
                .into_iter()
                .filter(|operation| operation.signing_service() == "datapipeline")
                .find(|operation| operation.name() == name)
        })
        .ok_or_else(|| {
            let shown: String = target.chars().take(128).collect();
            ApiError::new(
                ErrorKind::UnknownOperationException,
                format!("X-Amz-Target '{shown}' is not an operation of DataPipeline"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_target_prefixes_and_refuses_others() {
        assert_eq!(
            Operation::from_target(Some("DataPipeline.ListPipelines")),
            Ok(Operation::ListPipelines)
        );
        assert_eq!(
            Operation::from_target(Some("DataPipeline_20121129.ActivatePipeline")),
            Ok(Operation::ActivatePipeline)
        );
        assert_eq!(
            Operation::from_target(Some("SluiceAdmin.RotateKeys")),
            Ok(Operation::RotateKeys)
        );
        for bad in [
            None,
            Some("DynamoDB_20120810.ListTables"),
            Some("DataPipeline.DropEverything"),
            Some("SluiceAdmin.CreateUser"),
            Some("SluiceIAM.RotateKeys"),
            Some(""),
        ] {
            assert_eq!(
                Operation::from_target(bad).unwrap_err().kind,
                ErrorKind::UnknownOperationException
            );
        }
    }
}
