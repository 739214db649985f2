//! Creative rotation for Meta (DESIGN §7): the object is an ad, and swapping means pointing the ad at an
//! existing ad creative with `POST /{ad_id}` `creative={"creative_id":"..."}`; pausing and resuming use
//! `status=PAUSED|ACTIVE` on the same endpoint. Both return `{"success": true}`.
//!
//! A child of `client` so it shares the destination's kit, token and Meta error policy.

use super::MetaDestination;
use crate::error::ConnectorError;
use crate::traits::CreativeSwapper;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
struct Success {
    #[serde(default)]
    success: bool,
}

/// Graph ids are digits; anything else would address a different endpoint, so refuse it before sending.
fn check_id(dest: &MetaDestination, what: &str, id: &str) -> Result<(), ConnectorError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(ConnectorError::Invalid {
            destination: dest.name.clone(),
            message: format!("{what} `{id}` is not a numeric Graph id"),
        });
    }
    Ok(())
}

impl MetaDestination {
    /// `POST /{ad_id}` with one form field; fails unless Meta answers `success: true`.
    async fn update_ad(
        &self,
        operation: &str,
        ad_id: &str,
        field: &str,
        value: &str,
    ) -> Result<(), ConnectorError> {
        let url = self.kit.url(ad_id);
        let form = [(field, value)];
        let parsed: Success = self
            .kit
            .send_json(operation, &self.policy, |c| c.post(&url).form(&form))
            .await?;
        if !parsed.success {
            return Err(self
                .kit
                .invalid_response(operation, "Meta did not confirm the update".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl CreativeSwapper for MetaDestination {
    async fn swap_creative(
        &self,
        object_id: &str,
        new_creative_id: &str,
    ) -> Result<(), ConnectorError> {
        check_id(self, "ad id", object_id)?;
        check_id(self, "creative id", new_creative_id)?;
        let creative = json!({ "creative_id": new_creative_id }).to_string();
        self.update_ad("swap creative", object_id, "creative", &creative)
            .await?;
        tracing::info!(destination = %self.name, ad = object_id, creative = new_creative_id, "creative swapped");
        Ok(())
    }

    async fn set_active(&self, object_id: &str, active: bool) -> Result<(), ConnectorError> {
        check_id(self, "ad id", object_id)?;
        let status = if active { "ACTIVE" } else { "PAUSED" };
        self.update_ad("set ad status", object_id, "status", status)
            .await
    }
}
