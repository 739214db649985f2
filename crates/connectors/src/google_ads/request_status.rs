//! Data Manager request status: what `GET /v1/requestStatus:retrieve?requestId=…` answers about an
//! `audienceMembers:ingest|remove` request, and how campaignd settles the request's rows from it.
//!
//! Shapes from googleapis/googleapis at `f8291d2b` (2026-08-22), `google/ads/datamanager/v1`:
//! `ingestion_service.proto` (`RetrieveRequestStatusRequest.request_id`,
//! `RetrieveRequestStatusResponse.request_status_per_destination`, one per destination in request order),
//! `request_status_per_destination.proto` (`RequestStatus` = `REQUEST_STATUS_UNKNOWN | SUCCESS |
//! PROCESSING | FAILED | PARTIAL_SUCCESS`; `error_info` only for `FAILED`/`PARTIAL_SUCCESS`, neither
//! `error_info` nor `warning_info` while `PROCESSING`; `audience_members_ingestion_status.
//! user_data_ingestion_status.record_count` / `audience_members_removal_status.user_data_removal_status.
//! record_count`) and `processing_errors.proto` (`ErrorInfo.error_counts[] {record_count, reason}`,
//! `WarningInfo.warning_counts[]`). Proto3 JSON: lowerCamelCase names, enums by name, `int64` as a decimal
//! string (numbers accepted too).
//!
//! Google reports failures as counts per reason, never per record, so a `PARTIAL_SUCCESS` request's
//! failed rows cannot be told apart from the ones it took: like Meta's unsampled invalid rows, none of
//! them is recorded as held — each is a rejection carrying Google's counts, and the next run sends them
//! again (ingest and remove are idempotent). A `FAILED` request is an error for the run; its rows, not in
//! the ledger, go out again next run.

use crate::model::{BatchOutcome, PreparedMember, Rejection};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `RetrieveRequestStatusResponse`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RetrieveRequestStatusResponse {
    /// One status per destination of the original request, in its order.
    #[serde(default)]
    pub request_status_per_destination: Vec<RequestStatusPerDestination>,
}

/// `RequestStatusPerDestination` (the fields campaignd reads).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestStatusPerDestination {
    /// `RequestStatus` by name; absent = `REQUEST_STATUS_UNKNOWN` (proto3 default).
    #[serde(default)]
    pub request_status: Option<String>,
    /// Errors by reason, for `FAILED` / `PARTIAL_SUCCESS`.
    #[serde(default)]
    pub error_info: CountsInfo,
    /// Warnings by reason.
    #[serde(default)]
    pub warning_info: CountsInfo,
    /// Ingest statistics (`record_count` of the request).
    #[serde(default)]
    pub audience_members_ingestion_status: Option<Value>,
    /// Removal statistics.
    #[serde(default)]
    pub audience_members_removal_status: Option<Value>,
}

/// `ErrorInfo` / `WarningInfo`: both are a list of `{recordCount, reason}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CountsInfo {
    /// `ErrorInfo.error_counts`.
    #[serde(default)]
    pub error_counts: Vec<ReasonCount>,
    /// `WarningInfo.warning_counts`.
    #[serde(default)]
    pub warning_counts: Vec<ReasonCount>,
}

/// `ErrorCount` / `WarningCount`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReasonCount {
    /// Records with this reason (`int64`: a JSON string or number).
    #[serde(default, deserialize_with = "int64")]
    pub record_count: u64,
    /// `ProcessingErrorReason` / `ProcessingWarningReason` by name.
    #[serde(default)]
    pub reason: String,
}

/// Proto3 JSON `int64`: a decimal string, numbers accepted too; anything else is refused.
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom(format!("not a count: {n}"))),
        Value::String(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("not a count: {s:?}"))),
        other => Err(serde::de::Error::custom(format!("not a count: {other}"))),
    }
}

impl RequestStatusPerDestination {
    /// `record_count` of the user data ingestion or removal status, when Google reported it.
    fn record_count(&self) -> Option<u64> {
        let ingest = self
            .audience_members_ingestion_status
            .as_ref()
            .and_then(|s| s.pointer("/userDataIngestionStatus/recordCount"));
        let remove = self
            .audience_members_removal_status
            .as_ref()
            .and_then(|s| s.pointer("/userDataRemovalStatus/recordCount"));
        ingest.or(remove).and_then(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
    }

    /// `REASON ×n, …` of the error counts, or `no error details` when Google gave none.
    fn errors(&self) -> String {
        if self.error_info.error_counts.is_empty() {
            return "no error details".to_string();
        }
        self.error_info
            .error_counts
            .iter()
            .map(|c| format!("{} ×{}", c.reason, c.record_count))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What one poll means for the request's rows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DmSettled {
    /// `PROCESSING` (or `REQUEST_STATUS_UNKNOWN`): poll again.
    Pending,
    /// Final: the rows Google holds and the ones it refused.
    Done(BatchOutcome),
    /// `FAILED` (or a status name this proto version does not define): the message for the error.
    Failed(String),
}

/// Settles `members`, the rows a request held, from its destination's status.
pub(crate) fn dm_settle(
    status: &RequestStatusPerDestination,
    members: &[PreparedMember],
) -> DmSettled {
    match status
        .request_status
        .as_deref()
        .unwrap_or("REQUEST_STATUS_UNKNOWN")
    {
        "PROCESSING" | "REQUEST_STATUS_UNKNOWN" => DmSettled::Pending,
        "SUCCESS" => DmSettled::Done(BatchOutcome {
            accepted: members.len(),
            rejected: Vec::new(),
        }),
        "PARTIAL_SUCCESS" => {
            let failed: u64 = status
                .error_info
                .error_counts
                .iter()
                .map(|c| c.record_count)
                .sum();
            let total = status.record_count().unwrap_or(members.len() as u64);
            let reason = format!(
                "Google processed the request with PARTIAL_SUCCESS: {failed} of {total} records failed ({}); \
                 Data Manager does not name them, so none is recorded as held",
                status.errors()
            );
            DmSettled::Done(BatchOutcome {
                accepted: 0,
                rejected: members
                    .iter()
                    .map(|m| Rejection {
                        customer_id: m.customer_id.clone(),
                        reason: reason.clone(),
                    })
                    .collect(),
            })
        }
        "FAILED" => DmSettled::Failed(format!("FAILED: {}", status.errors())),
        other => DmSettled::Failed(format!(
            "has request status {other:?}, which Data Manager v1 does not define"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<PreparedMember> {
        (0..n)
            .map(|i| PreparedMember {
                customer_id: format!("c{i}"),
                payload: serde_json::json!({}),
                fingerprint: format!("f{i}"),
                kinds: Default::default(),
            })
            .collect()
    }

    fn status(json: &str) -> RequestStatusPerDestination {
        let r: RetrieveRequestStatusResponse = serde_json::from_str(json).expect("parses");
        r.request_status_per_destination
            .into_iter()
            .next()
            .expect("one destination")
    }

    /// Replies shaped as `RetrieveRequestStatusResponse` in proto3 JSON (`int64` as strings).
    #[test]
    fn settles_each_request_status() {
        let three = members(3);
        let cases: &[(&str, &str)] = &[
            (
                r#"{"requestStatusPerDestination":[{"requestStatus":"PROCESSING"}]}"#,
                "pending",
            ),
            (r#"{"requestStatusPerDestination":[{}]}"#, "pending"),
            (
                r#"{"requestStatusPerDestination":[{"requestStatus":"SUCCESS","audienceMembersIngestionStatus":{"userDataIngestionStatus":{"recordCount":"3","userIdentifierCount":"4","uploadMatchRateRange":"MATCH_RATE_RANGE_51_TO_60"}}}]}"#,
                "done 3/0",
            ),
            (
                r#"{"requestStatusPerDestination":[{"requestStatus":"PARTIAL_SUCCESS","errorInfo":{"errorCounts":[{"recordCount":"1","reason":"PROCESSING_ERROR_REASON_INVALID_FORMAT"}]},"audienceMembersIngestionStatus":{"userDataIngestionStatus":{"recordCount":"3"}}}]}"#,
                "done 0/3",
            ),
            (
                r#"{"requestStatusPerDestination":[{"requestStatus":"FAILED","errorInfo":{"errorCounts":[{"recordCount":3,"reason":"PROCESSING_ERROR_REASON_NO_CONSENT"}]}}]}"#,
                "failed",
            ),
            (
                r#"{"requestStatusPerDestination":[{"requestStatus":"DONE_MAYBE"}]}"#,
                "failed",
            ),
        ];
        for (json, want) in cases {
            let got = match dm_settle(&status(json), &three) {
                DmSettled::Pending => "pending".to_string(),
                DmSettled::Done(o) => format!("done {}/{}", o.accepted, o.rejected.len()),
                DmSettled::Failed(_) => "failed".to_string(),
            };
            assert_eq!(&got, want, "{json}");
        }
    }

    #[test]
    fn reasons_and_counts_reach_the_messages() {
        let s = status(
            r#"{"requestStatusPerDestination":[{"requestStatus":"PARTIAL_SUCCESS","errorInfo":{"errorCounts":[{"recordCount":"2","reason":"PROCESSING_ERROR_REASON_INVALID_FORMAT"}]},"audienceMembersRemovalStatus":{"userDataRemovalStatus":{"recordCount":"5"}}}]}"#,
        );
        let DmSettled::Done(o) = dm_settle(&s, &members(5)) else {
            panic!("partial success settles");
        };
        assert!(
            o.rejected[0]
                .reason
                .contains("2 of 5 records failed (PROCESSING_ERROR_REASON_INVALID_FORMAT ×2)"),
            "{o:?}"
        );
        let f = status(
            r#"{"requestStatusPerDestination":[{"requestStatus":"FAILED","errorInfo":{"errorCounts":[{"recordCount":"5","reason":"PROCESSING_ERROR_REASON_NO_CONSENT"}]}}]}"#,
        );
        assert_eq!(
            dm_settle(&f, &members(5)),
            DmSettled::Failed("FAILED: PROCESSING_ERROR_REASON_NO_CONSENT ×5".into())
        );
        // A count that is neither a number nor a numeric string is corrupt, not zero.
        assert!(serde_json::from_str::<RetrieveRequestStatusResponse>(
            r#"{"requestStatusPerDestination":[{"errorInfo":{"errorCounts":[{"recordCount":"many"}]}}]}"#
        )
        .is_err());
    }
}
