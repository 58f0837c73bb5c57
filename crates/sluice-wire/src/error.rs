//! Errors as AWS answers them: a `__type`, a `message`, and an HTTP status.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InternalServiceError,
    InvalidRequestException,
    PipelineNotFoundException,
    PipelineDeletedException,
    TaskNotFoundException,
    AccessDeniedException,
    MissingAuthenticationToken,
    IncompleteSignature,
    InvalidSignatureException,
    UnrecognizedClientException,
    RequestExpired,
    UnknownOperationException,
    SerializationException,
    RequestEntityTooLarge,
    ThrottlingException,
    InvalidLookupAttributesException,
    InvalidTimeRangeException,
    InvalidNextTokenException,
    InvalidMaxResultsException,
    /// Session credentials past their expiry.
    ExpiredTokenException,
    // The identity API's errors, by IAM's names.
    NoSuchEntity,
    EntityAlreadyExists,
    DeleteConflict,
    LimitExceeded,
    MalformedPolicyDocument,
    PasswordPolicyViolation,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InternalServiceError => "InternalServiceError",
            ErrorKind::InvalidRequestException => "InvalidRequestException",
            ErrorKind::PipelineNotFoundException => "PipelineNotFoundException",
            ErrorKind::PipelineDeletedException => "PipelineDeletedException",
            ErrorKind::TaskNotFoundException => "TaskNotFoundException",
            ErrorKind::AccessDeniedException => "AccessDeniedException",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationToken",
            ErrorKind::IncompleteSignature => "IncompleteSignature",
            ErrorKind::InvalidSignatureException => "InvalidSignatureException",
            ErrorKind::UnrecognizedClientException => "UnrecognizedClientException",
            ErrorKind::RequestExpired => "RequestExpired",
            ErrorKind::UnknownOperationException => "UnknownOperationException",
            ErrorKind::SerializationException => "SerializationException",
            ErrorKind::RequestEntityTooLarge => "RequestEntityTooLarge",
            ErrorKind::ThrottlingException => "ThrottlingException",
            ErrorKind::InvalidLookupAttributesException => "InvalidLookupAttributesException",
            ErrorKind::InvalidTimeRangeException => "InvalidTimeRangeException",
            ErrorKind::InvalidNextTokenException => "InvalidNextTokenException",
            ErrorKind::InvalidMaxResultsException => "InvalidMaxResultsException",
            ErrorKind::ExpiredTokenException => "ExpiredTokenException",
            ErrorKind::NoSuchEntity => "NoSuchEntity",
            ErrorKind::EntityAlreadyExists => "EntityAlreadyExists",
            ErrorKind::DeleteConflict => "DeleteConflict",
            ErrorKind::LimitExceeded => "LimitExceeded",
            ErrorKind::MalformedPolicyDocument => "MalformedPolicyDocument",
            ErrorKind::PasswordPolicyViolation => "PasswordPolicyViolation",
        }
    }

    /// The one mapping from error type to HTTP status (reference §a.2). Only server faults are
    /// 5xx, so clients retry those and nothing else.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InternalServiceError => 500,
            ErrorKind::MissingAuthenticationToken => 403,
            ErrorKind::AccessDeniedException => 400,
            ErrorKind::RequestEntityTooLarge => 413,
            ErrorKind::NoSuchEntity => 404,
            ErrorKind::EntityAlreadyExists | ErrorKind::DeleteConflict | ErrorKind::LimitExceeded => 409,
            ErrorKind::InvalidRequestException
            | ErrorKind::PipelineNotFoundException
            | ErrorKind::PipelineDeletedException
            | ErrorKind::TaskNotFoundException
            | ErrorKind::IncompleteSignature
            | ErrorKind::InvalidSignatureException
            | ErrorKind::UnrecognizedClientException
            | ErrorKind::RequestExpired
            | ErrorKind::UnknownOperationException
            | ErrorKind::SerializationException
            | ErrorKind::ThrottlingException
            | ErrorKind::InvalidLookupAttributesException
            | ErrorKind::InvalidTimeRangeException
            | ErrorKind::InvalidNextTokenException
            | ErrorKind::InvalidMaxResultsException
            | ErrorKind::MalformedPolicyDocument
            | ErrorKind::PasswordPolicyViolation
            | ErrorKind::ExpiredTokenException => 400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::InvalidRequestException, message)
    }

    pub fn pipeline_not_found(pipeline_id: &str) -> Self {
        ApiError::new(
            ErrorKind::PipelineNotFoundException,
            format!("Pipeline {pipeline_id} not found"),
        )
    }

    pub fn pipeline_deleted(pipeline_id: &str) -> Self {
        ApiError::new(
            ErrorKind::PipelineDeletedException,
            format!("Pipeline {pipeline_id} was deleted"),
        )
    }

    pub fn internal() -> Self {
        ApiError::new(
            ErrorKind::InternalServiceError,
            "an internal error occurred; the request was not applied",
        )
    }

    /// The JSON body: `{"__type": ..., "message": ...}`.
    pub fn body(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "__type")]
            error_type: &'a str,
            message: &'a str,
        }
        serde_json::to_string(&Body {
            error_type: self.kind.as_str(),
            message: &self.message,
        })
        .unwrap_or_else(|_| r#"{"__type":"InternalServiceError","message":"error"}"#.to_string())
    }
}
