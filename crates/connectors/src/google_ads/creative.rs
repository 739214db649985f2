//! Creative rotation for Google Ads (DESIGN §7). Ads are mostly immutable, so the rotated object is an
//! **ad group** and each variant's creative id is the **ad id** of an ad already in it: a swap lists the
//! group's ads (`googleAds:search` over `ad_group_ad`), then one atomic `adGroupAds:mutate` sets the new
//! ad `ENABLED` and every other enabled ad `PAUSED` (`updateMask: status`), so the group never runs zero or
//! two rotated ads. `set_active` takes an ad group id (`adGroups:mutate`) or an ad group ad
//! `{ad_group_id}~{ad_id}` (`adGroupAds:mutate`).
//!
//! A child of `client` so it shares the destination's kit, OAuth token and Google error policy.

use super::{gaql_quote, GoogleAdsDestination, SearchPage};
use crate::error::ConnectorError;
use crate::http::{next_cursor, HttpReply};
use crate::traits::CreativeSwapper;
use async_trait::async_trait;
use reqwest::Method;
use serde_json::{json, Value};

fn digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// An `int64` as Google's JSON carries it: a string, sometimes a number.
pub(super) fn int_field(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl GoogleAdsDestination {
    /// A Google Ads API call (never Data Manager) with bearer, `developer-token` and `login-customer-id`.
    pub(super) async fn ads_send(
        &self,
        operation: &str,
        path: &str,
        body: &Value,
    ) -> Result<HttpReply, ConnectorError> {
        let Some(dev) = &self.developer_token else {
            return Err(ConnectorError::Invalid {
                destination: self.name.clone(),
                message: format!(
                    "{operation}: the Google Ads API needs `developer_token` in this destination"
                ),
            });
        };
        let url = format!("{}/{}", self.ads_base_url, path);
        self.kit
            .send_with_retry(operation, &self.policy, |c| {
                let mut req = c
                    .request(Method::POST, &url)
                    .header("developer-token", dev.expose())
                    .json(body);
                if let Some(l) = &self.login_customer_id {
                    req = req.header("login-customer-id", l);
                }
                req
            })
            .await
    }

    pub(super) fn invalid(&self, message: String) -> ConnectorError {
        ConnectorError::Invalid {
            destination: self.name.clone(),
            message,
        }
    }

    /// (ad id, status) of every non-removed ad in the ad group, all pages.
    async fn ad_group_ads(
        &self,
        ad_group_id: &str,
    ) -> Result<Vec<(String, String)>, ConnectorError> {
        const OP: &str = "list ad group ads";
        let path = format!("customers/{}/googleAds:search", self.customer_id);
        let query = format!(
            "SELECT ad_group_ad.resource_name, ad_group_ad.ad.id, ad_group_ad.status FROM ad_group_ad \
             WHERE ad_group.id = {ad_group_id} AND ad_group_ad.status != {}",
            gaql_quote("REMOVED")
        );
        let mut out = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut body = json!({ "query": query });
            if let Some(t) = &page_token {
                body["pageToken"] = json!(t);
            }
            let reply = self.ads_send(OP, &path, &body).await?;
            let page: SearchPage = self.kit.parse_json(OP, &reply.body)?;
            for row in &page.results {
                let ad = row.get("adGroupAd");
                let id = int_field(ad.and_then(|a| a.pointer("/ad/id")));
                let status = ad
                    .and_then(|a| a.get("status"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match id {
                    Some(id) => out.push((id, status.to_string())),
                    None => {
                        return Err(self
                            .kit
                            .invalid_response(OP, "ad_group_ad row without ad.id".into()))
                    }
                }
            }
            match next_cursor(
                page.next_page_token,
                page.results.is_empty(),
                page_token.as_ref(),
            ) {
                Some(t) => page_token = Some(t),
                None => return Ok(out),
            }
        }
    }

    fn status_op(resource: String, enabled: bool) -> Value {
        json!({
            "updateMask": "status",
            "update": {"resourceName": resource, "status": if enabled { "ENABLED" } else { "PAUSED" }},
        })
    }
}

#[async_trait]
impl CreativeSwapper for GoogleAdsDestination {
    /// `object_id` = ad group id, `new_creative_id` = the id of an ad in that group.
    async fn swap_creative(
        &self,
        object_id: &str,
        new_creative_id: &str,
    ) -> Result<(), ConnectorError> {
        if !digits(object_id) || !digits(new_creative_id) {
            return Err(self.invalid(format!(
                "ad group `{object_id}` and ad `{new_creative_id}` must be numeric ids"
            )));
        }
        let ads = self.ad_group_ads(object_id).await?;
        if !ads.iter().any(|(id, _)| id == new_creative_id) {
            return Err(self.invalid(format!(
                "ad {new_creative_id} is not in ad group {object_id} (create it there first)"
            )));
        }
        let resource =
            |ad: &str| format!("customers/{}/adGroupAds/{object_id}~{ad}", self.customer_id);
        let mut ops = vec![Self::status_op(resource(new_creative_id), true)];
        for (id, status) in &ads {
            if id != new_creative_id && status == "ENABLED" {
                ops.push(Self::status_op(resource(id), false));
            }
        }
        let path = format!("customers/{}/adGroupAds:mutate", self.customer_id);
        self.ads_send("swap creative", &path, &json!({ "operations": ops }))
            .await?;
        tracing::info!(destination = %self.name, ad_group = object_id, ad = new_creative_id, paused = ops.len() - 1, "creative swapped");
        Ok(())
    }

    /// `object_id` = an ad group id, or `{ad_group_id}~{ad_id}` for one ad.
    async fn set_active(&self, object_id: &str, active: bool) -> Result<(), ConnectorError> {
        let (path, resource) = match object_id.split_once('~') {
            Some((ag, ad)) if digits(ag) && digits(ad) => (
                format!("customers/{}/adGroupAds:mutate", self.customer_id),
                format!("customers/{}/adGroupAds/{ag}~{ad}", self.customer_id),
            ),
            None if digits(object_id) => (
                format!("customers/{}/adGroups:mutate", self.customer_id),
                format!("customers/{}/adGroups/{object_id}", self.customer_id),
            ),
            _ => {
                return Err(self.invalid(format!(
                    "`{object_id}` is neither an ad group id nor `ad_group_id~ad_id`"
                )))
            }
        };
        let body = json!({ "operations": [Self::status_op(resource, active)] });
        self.ads_send("set status", &path, &body).await?;
        Ok(())
    }
}
