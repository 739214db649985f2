//! Creative rotation for LinkedIn (DESIGN §7): the rotated object is a **campaign** and each variant a
//! **creative** in it. A swap lists the campaign's creatives (`GET /adAccounts/{account}/creatives
//! ?q=criteria&campaigns=List(urn...)`), activates the new one, then pauses the campaign's other active
//! creatives, each by a Rest.li partial update: `POST /adAccounts/{account}/creatives/{encoded urn}` with
//! `X-RestLi-Method: PARTIAL_UPDATE` and `{"patch": {"$set": {"intendedStatus": "ACTIVE" | "PAUSED"}}}`
//! (204). Ids may be given as digits or URNs (`urn:li:sponsoredCampaign:N`, `urn:li:sponsoredCreative:N`).
//!
//! A child of `client` so it shares the destination's kit, OAuth token and version headers.

use super::LinkedInDestination;
use crate::error::ConnectorError;
use crate::traits::CreativeSwapper;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

/// Creatives requested from the finder (campaigns hold a handful; LinkedIn allows at most 100 per page).
const CREATIVE_PAGE: usize = 100;

#[derive(Debug, Deserialize)]
struct CreativePage {
    #[serde(default)]
    elements: Vec<CreativeEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreativeEntry {
    id: String,
    #[serde(default)]
    intended_status: String,
}

/// Percent-encodes a URN for a Rest.li path segment or a `List(...)` item (`:` → `%3A`).
pub(super) fn encode_urn(urn: &str) -> String {
    url::form_urlencoded::byte_serialize(urn.as_bytes()).collect()
}

impl LinkedInDestination {
    pub(super) fn invalid(&self, message: String) -> ConnectorError {
        ConnectorError::Invalid {
            destination: self.name.clone(),
            message,
        }
    }

    /// `digits` or `urn:li:{kind}:digits` → the URN.
    pub(super) fn urn(&self, kind: &str, id: &str) -> Result<String, ConnectorError> {
        let prefix = format!("urn:li:{kind}:");
        let digits = id.trim().strip_prefix(&prefix).unwrap_or(id.trim());
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(self.invalid(format!("`{id}` is not a {kind} id or URN")));
        }
        Ok(format!("{prefix}{digits}"))
    }

    /// The ad account's numeric id, for `/adAccounts/{id}` paths.
    pub(super) fn account_id(&self) -> &str {
        self.account.rsplit(':').next().unwrap_or(&self.account)
    }

    async fn set_intended_status(
        &self,
        creative_urn: &str,
        active: bool,
    ) -> Result<(), ConnectorError> {
        let path = format!(
            "adAccounts/{}/creatives/{}",
            self.account_id(),
            encode_urn(creative_urn)
        );
        let status = if active { "ACTIVE" } else { "PAUSED" };
        let body = json!({ "patch": { "$set": { "intendedStatus": status } } });
        self.send(
            "update creative status",
            reqwest::Method::POST,
            &path,
            &[],
            Some(&body),
            Some("PARTIAL_UPDATE"),
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl CreativeSwapper for LinkedInDestination {
    /// `object_id` = campaign id or URN, `new_creative_id` = creative id or URN in that campaign.
    async fn swap_creative(
        &self,
        object_id: &str,
        new_creative_id: &str,
    ) -> Result<(), ConnectorError> {
        const OP: &str = "list campaign creatives";
        let campaign = self.urn("sponsoredCampaign", object_id)?;
        let creative = self.urn("sponsoredCreative", new_creative_id)?;
        let path = format!(
            "adAccounts/{}/creatives?q=criteria&campaigns=List({})&count={CREATIVE_PAGE}",
            self.account_id(),
            encode_urn(&campaign)
        );
        let reply = self
            .send(OP, reqwest::Method::GET, &path, &[], None, None)
            .await?;
        let page: CreativePage = self.kit.parse_json(OP, &reply.body)?;
        if !page.elements.iter().any(|c| c.id == creative) {
            return Err(self.invalid(format!("{creative} is not a creative of {campaign}")));
        }
        self.set_intended_status(&creative, true).await?;
        let mut paused = 0usize;
        for other in page
            .elements
            .iter()
            .filter(|c| c.id != creative && c.intended_status == "ACTIVE")
        {
            self.set_intended_status(&other.id, false).await?;
            paused += 1;
        }
        tracing::info!(destination = %self.name, campaign = %campaign, creative = %creative, paused, "creative swapped");
        Ok(())
    }

    /// `object_id` = a creative id or URN.
    async fn set_active(&self, object_id: &str, active: bool) -> Result<(), ConnectorError> {
        let creative = self.urn("sponsoredCreative", object_id)?;
        self.set_intended_status(&creative, active).await
    }
}
