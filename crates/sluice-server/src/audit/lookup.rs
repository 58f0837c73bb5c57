//! CloudTrail's LookupEvents over the audit trail: one attribute at most, a time range, newest
//! first, 50 a page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime};
use sluice_store::{AuditAttribute, AuditQuery, Transaction};
use sluice_wire::shapes::{LookupEvent, LookupEventsInput, LookupEventsOutput, LookupResource};
use sluice_wire::{ApiError, ErrorKind, Operation, parse_body};

use crate::api::{Principal, authorize};

const MAX_RESULTS: i64 = 50;

fn attribute(key: &str) -> Result<AuditAttribute, ApiError> {
    Ok(match key {
        "EventId" => AuditAttribute::EventId,
        "EventName" => AuditAttribute::EventName,
        "ReadOnly" => AuditAttribute::ReadOnly,
        "Username" => AuditAttribute::Username,
        "ResourceType" => AuditAttribute::ResourceType,
        "ResourceName" => AuditAttribute::ResourceName,
        "EventSource" => AuditAttribute::EventSource,
        "AccessKeyId" => AuditAttribute::AccessKeyId,
        other => {
            return Err(ApiError::new(
                ErrorKind::InvalidLookupAttributesException,
                format!(
                    "AttributeKey '{other}' is not one of EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId"
                ),
            ));
        }
    })
}

fn epoch_to_event_time(seconds: f64, member: &str) -> Result<String, ApiError> {
    let whole = seconds.floor();
    DateTime::from_timestamp(whole as i64, 0)
        .filter(|_| seconds.is_finite())
        .map(super::render_event_time)
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::InvalidTimeRangeException,
                format!("{member} is not a valid time"),
            )
        })
}

pub async fn lookup_events(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: LookupEventsInput = parse_body(body)?;
    authorize(principal, Operation::LookupEvents, "*")?;
    if input.lookup_attributes.len() > 1 {
        return Err(ApiError::new(
            ErrorKind::InvalidLookupAttributesException,
            "LookupAttributes takes at most one attribute",
        ));
    }
    let attribute = match input.lookup_attributes.first() {
        Some(lookup) => {
            if lookup.attribute_value.is_empty() || lookup.attribute_value.chars().count() > 2000 {
                return Err(ApiError::new(
                    ErrorKind::InvalidLookupAttributesException,
                    "AttributeValue must have between 1 and 2000 characters",
                ));
            }
            Some((attribute(&lookup.attribute_key)?, lookup.attribute_value.clone()))
        }
        None => None,
    };
    if let Some(category) = &input.event_category
        && category != "insight"
    {
        return Err(ApiError::invalid_request(format!(
            "EventCategory '{category}' is not 'insight'"
        )));
    }
    let limit = input.max_results.unwrap_or(MAX_RESULTS);
    if !(1..=MAX_RESULTS).contains(&limit) {
        return Err(ApiError::new(
            ErrorKind::InvalidMaxResultsException,
            "MaxResults must be between 1 and 50",
        ));
    }
    let start_time = input
        .start_time
        .map(|time| epoch_to_event_time(time, "StartTime"))
        .transpose()?;
    let end_time = input
        .end_time
        .map(|time| epoch_to_event_time(time, "EndTime"))
        .transpose()?;
    if let (Some(start), Some(end)) = (&start_time, &end_time)
        && start > end
    {
        return Err(ApiError::new(
            ErrorKind::InvalidTimeRangeException,
            "StartTime is after EndTime",
        ));
    }
    let before_seq = match &input.next_token {
        None => None,
        Some(token) => Some(
            URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| text.strip_prefix("v1:").and_then(|seq| seq.parse::<i64>().ok()))
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorKind::InvalidNextTokenException,
                        "NextToken is not a token this service returned",
                    )
                })?,
        ),
    };
    // The insight category has no events here: Sluice records management events only.
    if input.event_category.is_some() {
        return serde_json::to_string(&LookupEventsOutput {
            events: Vec::new(),
            next_token: None,
        })
        .map_err(|_| ApiError::internal());
    }
    let query = AuditQuery {
        attribute,
        start_time,
        end_time,
        before_seq,
        limit: limit + 1,
    };
    let mut records = tx.lookup_audit(&query).await.map_err(|error| {
        tracing::error!(%error, "audit lookup failed");
        ApiError::internal()
    })?;
    let more = records.len() as i64 > limit;
    records.truncate(limit as usize);
    let next_token = if more {
        records
            .last()
            .map(|last| URL_SAFE_NO_PAD.encode(format!("v1:{}", last.seq)))
    } else {
        None
    };
    let events = records
        .into_iter()
        .map(|record| {
            let event_time = NaiveDateTime::parse_from_str(&record.event_time, "%Y-%m-%dT%H:%M:%SZ")
                .map(|time| time.and_utc().timestamp() as f64)
                .unwrap_or(0.0);
            LookupEvent {
                event_id: record.event_id,
                event_name: record.event_name,
                read_only: record.read_only.to_string(),
                access_key_id: record.access_key_id,
                event_time,
                event_source: record.event_source,
                username: record.username,
                resources: match (record.resource_type, record.resource_name) {
                    (Some(resource_type), Some(resource_name)) => vec![LookupResource {
                        resource_type,
                        resource_name,
                    }],
                    _ => Vec::new(),
                },
                cloud_trail_event: record.record,
            }
        })
        .collect();
    serde_json::to_string(&LookupEventsOutput { events, next_token }).map_err(|_| ApiError::internal())
}
