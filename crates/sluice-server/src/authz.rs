//! The single authorization point. Every operation maps to its IAM action in one exhaustive
//! `match` (no catch-all arm), so a new operation cannot compile without a decision here.
//! Identities and policies arrive with [iam]; today the root identity may do everything and any
//! other identity nothing.

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
    }
}

pub fn authorize(principal: &Principal, operation: Operation, resource: &str) -> Result<(), ApiError> {
    let action = action(operation);
    if principal.identity.kind == "Root" {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorKind::AccessDeniedException,
        format!(
            "User: {} is not authorized to perform: {action} on resource: {resource}",
            principal.identity.arn
        ),
    ))
}
