//! Creative rotation for TikTok (DESIGN §7): the rotated object is an **ad group** and each variant's
//! creative is an **ad** in it (TikTok ads carry their creative). A swap lists the group's ads with
//! `GET /ad/get/` (`filtering={"adgroup_ids": [...]}`, paged by `page_info.total_page`), enables the new ad
//! with `POST /ad/status/update/` `{advertiser_id, ad_ids, operation_status: "ENABLE"}` and then disables
//! the group's other enabled ads (`"DISABLE"`), so the group is never left without a running ad.
//! `set_active` enables or disables one ad. Envelope `code != 0` is an error even at HTTP 200.
//!
//! A child of `client` so it shares the destination's kit, token and envelope policy.

use super::{id_string, PageInfo, TikTokDestination, TikTokPolicy};
use crate::error::ConnectorError;
use crate::traits::CreativeSwapper;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

/// Ads requested per `/ad/get/` page.
const AD_PAGE_SIZE: usize = 100;

#[derive(Debug, Deserialize)]
struct AdList {
    #[serde(default)]
    list: Vec<AdEntry>,
    #[serde(default)]
    page_info: Option<PageInfo>,
}

#[derive(Debug, Deserialize)]
struct AdEntry {
    ad_id: Value,
    #[serde(default)]
    operation_status: String,
}

pub(super) fn digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// Ad ids `POST /ad/status/update/` takes in one call.
const MAX_STATUS_IDS: usize = 20;

impl TikTokDestination {
    pub(super) fn invalid(&self, message: String) -> ConnectorError {
        ConnectorError::Invalid {
            destination: self.name.clone(),
            message,
        }
    }

    /// A GET with the `Access-Token` header through the envelope policy.
    pub(super) async fn get_data<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ConnectorError> {
        let url = self.kit.url(path);
        let reply = self
            .kit
            .send_with_retry(operation, &TikTokPolicy, |c| c.get(&url).query(query))
            .await?;
        self.data(operation, &reply)
    }

    /// (ad id, operation status) of every ad in the ad group.
    async fn ads_in_group(
        &self,
        adgroup_id: &str,
    ) -> Result<Vec<(String, String)>, ConnectorError> {
        const OP: &str = "list ads";
        let mut out = Vec::new();
        let mut page = 1u64;
        loop {
            let query = [
                ("advertiser_id", self.advertiser_id.clone()),
                (
                    "filtering",
                    json!({ "adgroup_ids": [adgroup_id] }).to_string(),
                ),
                ("fields", json!(["ad_id", "operation_status"]).to_string()),
                ("page", page.to_string()),
                ("page_size", AD_PAGE_SIZE.to_string()),
            ];
            let data: AdList = self.get_data(OP, "ad/get/", &query).await?;
            for ad in &data.list {
                let id = id_string(&ad.ad_id)
                    .ok_or_else(|| self.invalid(format!("{OP}: an ad without ad_id")))?;
                out.push((id, ad.operation_status.clone()));
            }
            let total = data.page_info.and_then(|p| p.total_page).unwrap_or(0);
            if data.list.is_empty() || page >= total {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// Enables or disables ads, at most [`MAX_STATUS_IDS`] per call as TikTok requires.
    async fn set_status(&self, ad_ids: &[String], enable: bool) -> Result<(), ConnectorError> {
        for chunk in ad_ids.chunks(MAX_STATUS_IDS) {
            let body = json!({
                "advertiser_id": self.advertiser_id,
                "ad_ids": chunk,
                "operation_status": if enable { "ENABLE" } else { "DISABLE" },
            });
            self.post_json("update ad status", "ad/status/update/", &body)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl CreativeSwapper for TikTokDestination {
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
        let ads = self.ads_in_group(object_id).await?;
        if !ads.iter().any(|(id, _)| id == new_creative_id) {
            return Err(self.invalid(format!(
                "ad {new_creative_id} is not in ad group {object_id}"
            )));
        }
        self.set_status(&[new_creative_id.to_string()], true)
            .await?;
        let others: Vec<String> = ads
            .into_iter()
            .filter(|(id, status)| id != new_creative_id && status == "ENABLE")
            .map(|(id, _)| id)
            .collect();
        self.set_status(&others, false).await?;
        tracing::info!(destination = %self.name, adgroup = object_id, ad = new_creative_id, disabled = others.len(), "creative swapped");
        Ok(())
    }

    /// `object_id` = an ad id.
    async fn set_active(&self, object_id: &str, active: bool) -> Result<(), ConnectorError> {
        if !digits(object_id) {
            return Err(self.invalid(format!("ad `{object_id}` is not a numeric id")));
        }
        self.set_status(&[object_id.to_string()], active).await
    }
}
