//! `api = "data_manager"`: the Data Manager API v1 side of the destination (see the module docs in
//! `mod.rs` for the request shapes and the reference they were coded from): user lists under
//! `accountTypes/GOOGLE_ADS/accounts/{cid}/userLists`, members sent with `audienceMembers:ingest` /
//! `:remove` (≤ 10,000 per request, field violations on single members turned into rejections) and each
//! request's `requestId` polled with `requestStatus:retrieve` until it settles.

use super::super::request_status::{dm_settle, DmSettled, RetrieveRequestStatusResponse};
use super::{mapping, member_violations, Envelope, GoogleAdsDestination, Op};
use crate::error::ConnectorError;
use crate::http::next_cursor;
use crate::model::{BatchOutcome, PreparedMember, Rejection, SubmittedJob};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Instant;

/// Data Manager user list membership: 540 days, the Customer Match maximum.
const DM_MEMBERSHIP_DURATION: &str = "46656000s";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DmUserListPage {
    #[serde(default)]
    user_lists: Vec<DmUserList>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DmUserList {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
}

impl DmUserList {
    fn list_id(&self) -> Option<String> {
        match &self.id {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => self
                .name
                .rsplit('/')
                .next()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        }
    }
}

impl GoogleAdsDestination {
    pub(super) async fn dm_find_list(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        let path = format!(
            "accountTypes/GOOGLE_ADS/accounts/{}/userLists",
            self.customer_id
        );
        let mut page_token: Option<String> = None;
        loop {
            let mut query = vec![("pageSize", "1000".to_string())];
            if let Some(t) = &page_token {
                query.push(("pageToken", t.clone()));
            }
            let reply = self
                .send("list user lists", Method::GET, &path, &query, None)
                .await?;
            let page: DmUserListPage = self.kit.parse_json("list user lists", &reply.body)?;
            if let Some(found) = page.user_lists.iter().find(|l| l.display_name == name) {
                return found.list_id().map(Some).ok_or_else(|| {
                    self.kit
                        .invalid_response("list user lists", "user list without an id".into())
                });
            }
            match next_cursor(
                page.next_page_token,
                page.user_lists.is_empty(),
                page_token.as_ref(),
            ) {
                Some(t) => page_token = Some(t),
                None => return Ok(None),
            }
        }
    }

    pub(super) async fn dm_create_list(
        &self,
        name: &str,
        description: &str,
    ) -> Result<String, ConnectorError> {
        let path = format!(
            "accountTypes/GOOGLE_ADS/accounts/{}/userLists",
            self.customer_id
        );
        let body = json!({
            "displayName": name,
            "description": description,
            "membershipDuration": DM_MEMBERSHIP_DURATION,
            "ingestedUserListInfo": {
                "uploadKeyTypes": ["CONTACT_ID"],
                "contactIdInfo": {"dataSourceType": "DATA_SOURCE_TYPE_FIRST_PARTY"},
            },
        });
        let reply = self
            .send("create user list", Method::POST, &path, &[], Some(&body))
            .await?;
        let created: DmUserList = self.kit.parse_json("create user list", &reply.body)?;
        created.list_id().ok_or_else(|| {
            self.kit
                .invalid_response("create user list", "no id in the reply".into())
        })
    }

    pub(super) fn dm_destination(&self, list_id: &str) -> Value {
        let mut d = json!({
            "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": self.customer_id},
            "productDestinationId": list_id,
        });
        if let Some(l) = &self.login_customer_id {
            d["loginAccount"] = json!({"accountType": "GOOGLE_ADS", "accountId": l});
        }
        d
    }

    /// Sends one Data Manager request (≤ [`MAX_MEMBERS_PER_CALL`] members) and returns its `requestId`
    /// without waiting for Google to process it. Google validates the whole request, so members named in
    /// field violations become rejections up front and the rest is sent once more.
    pub(super) async fn dm_submit(
        &self,
        op: Op,
        list_id: &str,
        chunk: &[PreparedMember],
    ) -> Result<SubmittedJob, ConnectorError> {
        let mut rejected = Vec::new();
        let mut pending: Vec<(&PreparedMember, Value)> = Vec::with_capacity(chunk.len());
        for m in chunk {
            match mapping::dm_identifiers(&m.payload) {
                Some(identifiers) => {
                    pending.push((m, json!({"userData": {"userIdentifiers": identifiers}})));
                }
                None => rejected.push(Rejection {
                    customer_id: m.customer_id.clone(),
                    reason: "stored payload is not a Google user identifier set".into(),
                }),
            }
        }
        let (path, label) = match op {
            Op::Add => ("audienceMembers:ingest", "ingest audience members"),
            Op::Remove => ("audienceMembers:remove", "remove audience members"),
        };
        for attempt in 0..2 {
            if pending.is_empty() {
                break;
            }
            let members: Vec<&Value> = pending.iter().map(|(_, v)| v).collect();
            let mut body = json!({
                "destinations": [self.dm_destination(list_id)],
                "audienceMembers": members,
                "encoding": "HEX",
            });
            if op == Op::Add {
                body["consent"] = json!({"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"});
                body["termsOfService"] = json!({"customerMatchTermsOfServiceStatus": "ACCEPTED"});
            }
            let reply = self
                .send(label, Method::POST, path, &[], Some(&body))
                .await?;
            if reply.status.is_success() {
                // `IngestAudienceMembersResponse` / `RemoveAudienceMembersResponse`: the id Google
                // assigned to the request, to poll with `requestStatus:retrieve`.
                let ack: Value = self.kit.parse_json(label, &reply.body)?;
                let Some(request_id) = ack
                    .get("requestId")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                else {
                    return Err(self.kit.invalid_response(
                        label,
                        format!(
                            "not acknowledged: no requestId in the reply: {}",
                            self.kit.excerpt(&reply.body)
                        ),
                    ));
                };
                return Ok(SubmittedJob {
                    job_id: Some(request_id.to_string()),
                    rejected,
                });
            }
            let env: Envelope = self.kit.parse_json(label, &reply.body)?;
            let violations = member_violations(&env.error.details);
            if attempt == 1 {
                return Err(ConnectorError::Api {
                    destination: self.name.clone(),
                    operation: label.into(),
                    status: reply.status.as_u16(),
                    code: env.error.code,
                    message: self.kit.redactor().redact(&env.error.describe()),
                });
            }
            let mut bad: Vec<usize> = violations
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| *i < pending.len())
                .collect();
            bad.sort_unstable();
            bad.dedup();
            for &i in bad.iter().rev() {
                let (m, _) = pending.remove(i);
                let reason = violations
                    .iter()
                    .filter(|(j, _)| *j == i)
                    .map(|(_, r)| r.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                rejected.push(Rejection {
                    customer_id: m.customer_id.clone(),
                    reason,
                });
            }
        }
        Ok(SubmittedJob {
            job_id: None,
            rejected,
        })
    }

    /// Polls `requestStatus:retrieve` for a submitted request every `job_poll_interval_ms` until Google
    /// reports a final status for its destination, and settles `members`, the rows the request held
    /// (see [`dm_settle`]). Still `PROCESSING` after `job_timeout_secs` is a transient error, so the
    /// engine keeps the request and polls it again next run.
    pub(super) async fn dm_finish(
        &self,
        request_id: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        const LABEL: &str = "retrieve request status";
        let started = Instant::now();
        loop {
            let reply = self
                .send(
                    LABEL,
                    Method::GET,
                    "requestStatus:retrieve",
                    &[("requestId", request_id.to_string())],
                    None,
                )
                .await?;
            let parsed: RetrieveRequestStatusResponse = self.kit.parse_json(LABEL, &reply.body)?;
            let status = parsed
                .request_status_per_destination
                .into_iter()
                .next()
                .ok_or_else(|| {
                    self.kit.invalid_response(
                        LABEL,
                        format!("request {request_id}: no requestStatusPerDestination"),
                    )
                })?;
            match dm_settle(&status, members) {
                DmSettled::Pending => {}
                DmSettled::Done(outcome) => {
                    for w in &status.warning_info.warning_counts {
                        tracing::warn!(destination = %self.name, request_id, reason = %w.reason, records = w.record_count, "Data Manager warning");
                    }
                    return Ok(outcome);
                }
                DmSettled::Failed(message) => {
                    return Err(ConnectorError::Api {
                        destination: self.name.clone(),
                        operation: LABEL.into(),
                        status: reply.status.as_u16(),
                        code: None,
                        message: format!("request {request_id} {message}"),
                    })
                }
            }
            if started.elapsed() >= self.job_timeout {
                return Err(ConnectorError::Api {
                    destination: self.name.clone(),
                    operation: LABEL.into(),
                    status: 504,
                    code: None,
                    message: format!(
                        "request {request_id} still PROCESSING after {}s",
                        self.job_timeout.as_secs()
                    ),
                });
            }
            tracing::debug!(destination = %self.name, request_id, "Data Manager request still processing");
            tokio::time::sleep(self.poll_interval).await;
        }
    }
}
