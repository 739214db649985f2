//! `api = "customer_match"`: the Google Ads API v25 side of the destination (see the module docs in
//! `mod.rs` for the endpoints and the googleapis snapshot they were checked against): user lists found by
//! GAQL and created with `userLists:mutate`, members sent as one offline user data job per call
//! (`create`, `addOperations` in ≤ 10,000-person requests with partial failure, `run`) and the job polled
//! until it settles.

use super::{
    gaql_quote, last_segment, mapping, GoogleAdsDestination, Op, SearchPage, MAX_MEMBERS_PER_CALL,
};
use crate::common;
use crate::error::ConnectorError;
use crate::http::next_cursor;
use crate::model::{BatchOutcome, PreparedMember, Rejection, SubmittedJob};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Instant;

/// Customer Match `membershipLifeSpan` in days: 540, the maximum (`user_list.proto`: "must be between 0
/// and 540 inclusive"; the old "10000 = no expiry" is refused).
const CM_MEMBERSHIP_LIFE_SPAN_DAYS: i64 = 540;

impl GoogleAdsDestination {
    pub(super) async fn cm_find_list(&self, name: &str) -> Result<Option<String>, ConnectorError> {
        let path = format!("customers/{}/googleAds:search", self.customer_id);
        let query = "SELECT user_list.resource_name, user_list.id, user_list.name FROM user_list \
                     WHERE user_list.type = 'CRM_BASED'";
        let mut page_token: Option<String> = None;
        loop {
            let mut body = json!({ "query": query });
            if let Some(t) = &page_token {
                body["pageToken"] = json!(t);
            }
            let reply = self
                .send("list user lists", Method::POST, &path, &[], Some(&body))
                .await?;
            let page: SearchPage = self.kit.parse_json("list user lists", &reply.body)?;
            for row in &page.results {
                let list = row.get("userList").cloned().unwrap_or_default();
                if list.get("name").and_then(Value::as_str) == Some(name) {
                    let id = list
                        .get("resourceName")
                        .and_then(Value::as_str)
                        .and_then(last_segment);
                    return id.map(Some).ok_or_else(|| {
                        self.kit.invalid_response(
                            "list user lists",
                            "user list row without a resource name".into(),
                        )
                    });
                }
            }
            match next_cursor(
                page.next_page_token,
                page.results.is_empty(),
                page_token.as_ref(),
            ) {
                Some(t) => page_token = Some(t),
                None => return Ok(None),
            }
        }
    }

    pub(super) async fn cm_create_list(
        &self,
        name: &str,
        description: &str,
    ) -> Result<String, ConnectorError> {
        let path = format!("customers/{}/userLists:mutate", self.customer_id);
        let body = json!({"operations": [{"create": {
            "name": name,
            "description": description,
            "crmBasedUserList": {"uploadKeyType": "CONTACT_INFO"},
            "membershipLifeSpan": CM_MEMBERSHIP_LIFE_SPAN_DAYS,
        }}]});
        let reply = self
            .send("create user list", Method::POST, &path, &[], Some(&body))
            .await?;
        let parsed: Value = self.kit.parse_json("create user list", &reply.body)?;
        parsed
            .pointer("/results/0/resourceName")
            .and_then(Value::as_str)
            .and_then(last_segment)
            .ok_or_else(|| {
                self.kit
                    .invalid_response("create user list", "no resourceName in the reply".into())
            })
    }

    /// One offline user data job: create, add the operations (≤ [`MAX_MEMBERS_PER_CALL`] per call, partial
    /// failure on), run, poll to completion. `remove_all_first` prefixes the job with `removeAll`.
    pub(super) async fn cm_job(
        &self,
        op: Op,
        list_id: &str,
        members: &[PreparedMember],
        remove_all_first: bool,
    ) -> Result<BatchOutcome, ConnectorError> {
        common::submit_and_await(
            members,
            |m| self.cm_submit(op, list_id, m, remove_all_first),
            |job, held| async move { self.cm_finish(&job, &held).await },
        )
        .await
    }

    /// Creates an offline user data job, adds the operations and starts it (`:run`), without waiting;
    /// operations the partial failure names are refused up front, with Google's reason.
    pub(super) async fn cm_submit(
        &self,
        op: Op,
        list_id: &str,
        members: &[PreparedMember],
        remove_all_first: bool,
    ) -> Result<SubmittedJob, ConnectorError> {
        let mut outcome = BatchOutcome::default();
        let mut ops: Vec<(Option<usize>, Value)> = Vec::with_capacity(members.len() + 1);
        if remove_all_first {
            ops.push((None, json!({"removeAll": true})));
        }
        for (i, m) in members.iter().enumerate() {
            let Some(identifiers) = mapping::cm_identifiers(&m.payload) else {
                outcome.rejected.push(Rejection {
                    customer_id: m.customer_id.clone(),
                    reason: "stored payload is not a Google user identifier set".into(),
                });
                continue;
            };
            let data = json!({ "userIdentifiers": identifiers });
            ops.push((
                Some(i),
                if op == Op::Add {
                    json!({ "create": data })
                } else {
                    json!({ "remove": data })
                },
            ));
        }
        if ops.is_empty() {
            return Ok(SubmittedJob {
                job_id: None,
                rejected: outcome.rejected,
            });
        }
        let create_path = format!("customers/{}/offlineUserDataJobs:create", self.customer_id);
        let body = json!({"job": {
            "type": "CUSTOMER_MATCH_USER_LIST",
            "customerMatchUserListMetadata": {
                "userList": format!("customers/{}/userLists/{list_id}", self.customer_id),
                "consent": {"adUserData": "GRANTED", "adPersonalization": "GRANTED"},
            },
        }});
        let reply = self
            .send(
                "create offline user data job",
                Method::POST,
                &create_path,
                &[],
                Some(&body),
            )
            .await?;
        let created: Value = self
            .kit
            .parse_json("create offline user data job", &reply.body)?;
        let job = created
            .get("resourceName")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                self.kit
                    .invalid_response("create offline user data job", "no resourceName".into())
            })?;

        for chunk in ops.chunks(MAX_MEMBERS_PER_CALL) {
            let operations: Vec<&Value> = chunk.iter().map(|(_, v)| v).collect();
            let body = json!({"operations": operations, "enablePartialFailure": true});
            let reply = self
                .send(
                    "add job operations",
                    Method::POST,
                    &format!("{job}:addOperations"),
                    &[],
                    Some(&body),
                )
                .await?;
            let parsed: Value = self.kit.parse_json("add job operations", &reply.body)?;
            let Some(failure) = parsed.get("partialFailureError").filter(|v| !v.is_null()) else {
                continue;
            };
            let details = failure
                .get("details")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut attributed = 0usize;
            for err in details
                .iter()
                .filter_map(|d| d.get("errors").and_then(Value::as_array))
                .flatten()
            {
                let index = err
                    .pointer("/location/fieldPathElements")
                    .and_then(Value::as_array)
                    .and_then(|els| {
                        els.iter().find(|e| {
                            e.get("fieldName").and_then(Value::as_str) == Some("operations")
                        })
                    })
                    .and_then(|e| e.get("index"))
                    .and_then(|i| {
                        i.as_u64()
                            .or_else(|| i.as_str().and_then(|s| s.parse().ok()))
                    });
                let code = err
                    .get("errorCode")
                    .and_then(Value::as_object)
                    .and_then(|o| o.values().next())
                    .and_then(Value::as_str)
                    .unwrap_or("ERROR");
                let message = err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let reason = format!("{code}: {message}");
                match index.and_then(|i| chunk.get(i as usize)) {
                    Some((Some(owner), _)) => {
                        let cid = &members[*owner].customer_id;
                        if !outcome.rejected.iter().any(|r| &r.customer_id == cid) {
                            outcome.rejected.push(Rejection {
                                customer_id: cid.clone(),
                                reason,
                            });
                            attributed += 1;
                        }
                    }
                    Some((None, _)) => {
                        return Err(ConnectorError::Api {
                            destination: self.name.clone(),
                            operation: "add job operations".into(),
                            status: reply.status.as_u16(),
                            code: None,
                            message: format!("removeAll was refused: {reason}"),
                        })
                    }
                    None => {
                        tracing::warn!(destination = %self.name, reason = %reason, "partial failure without an operation index")
                    }
                }
            }
            if attributed == 0 {
                tracing::warn!(destination = %self.name, "partialFailureError named no operation we sent");
            }
        }

        self.send(
            "run offline user data job",
            Method::POST,
            &format!("{job}:run"),
            &[],
            Some(&json!({})),
        )
        .await?;
        Ok(SubmittedJob {
            job_id: Some(job),
            rejected: outcome.rejected,
        })
    }

    /// Waits for a started job; its rows (`members`) are held once it reports `SUCCESS`.
    pub(super) async fn cm_finish(
        &self,
        job: &str,
        members: &[PreparedMember],
    ) -> Result<BatchOutcome, ConnectorError> {
        self.cm_wait(job).await?;
        Ok(BatchOutcome {
            accepted: members.len(),
            rejected: Vec::new(),
        })
    }

    pub(super) async fn cm_wait(&self, job: &str) -> Result<(), ConnectorError> {
        let path = format!("customers/{}/googleAds:search", self.customer_id);
        let query = format!(
            "SELECT offline_user_data_job.resource_name, offline_user_data_job.status, \
             offline_user_data_job.failure_reason FROM offline_user_data_job \
             WHERE offline_user_data_job.resource_name = {}",
            gaql_quote(job)
        );
        let started = Instant::now();
        loop {
            let reply = self
                .send(
                    "poll offline user data job",
                    Method::POST,
                    &path,
                    &[],
                    Some(&json!({ "query": query })),
                )
                .await?;
            let page: SearchPage = self
                .kit
                .parse_json("poll offline user data job", &reply.body)?;
            let row = page
                .results
                .first()
                .and_then(|r| r.get("offlineUserDataJob"))
                .cloned()
                .unwrap_or_default();
            let status = row
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN");
            match status {
                "SUCCESS" => return Ok(()),
                "FAILED" => {
                    let reason = row
                        .get("failureReason")
                        .and_then(Value::as_str)
                        .unwrap_or("UNSPECIFIED");
                    return Err(ConnectorError::Api {
                        destination: self.name.clone(),
                        operation: "offline user data job".into(),
                        status: reply.status.as_u16(),
                        code: None,
                        message: format!("job {job} FAILED: {reason}"),
                    });
                }
                _ => {}
            }
            if started.elapsed() >= self.job_timeout {
                // The job keeps running on Google's side; resending the batch later is harmless.
                return Err(ConnectorError::Api {
                    destination: self.name.clone(),
                    operation: "offline user data job".into(),
                    status: 504,
                    code: None,
                    message: format!(
                        "job {job} still {status} after {}s",
                        self.job_timeout.as_secs()
                    ),
                });
            }
            tracing::debug!(destination = %self.name, job, status, "offline user data job not done yet");
            tokio::time::sleep(self.poll_interval).await;
        }
    }
}
