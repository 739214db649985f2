//! Creative rotation for Mailchimp (DESIGN §7): the object is a campaign (a regular campaign not yet
//! sent, or a paused automation/RSS campaign) and a creative is a saved **template** id; a swap is
//! `PUT /campaigns/{campaign_id}/content` with `{"template": {"id": N}}`, which replaces the campaign's
//! content with the template's. Mailchimp has no pause/resume for regular campaigns, so `set_active` is
//! unsupported.
//!
//! A child of `client` so it shares the destination's kit, API key and connection cap.

use super::MailchimpDestination;
use crate::error::ConnectorError;
use crate::traits::CreativeSwapper;
use async_trait::async_trait;
use serde_json::json;

/// Mailchimp campaign ids are short lowercase hex/alphanumeric strings; anything else is refused before
/// it reaches a URL path.
pub(super) fn check_campaign_id(
    dest: &MailchimpDestination,
    id: &str,
) -> Result<(), ConnectorError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ConnectorError::Invalid {
            destination: dest.name.clone(),
            message: format!("campaign id `{id}` is not a Mailchimp campaign id"),
        });
    }
    Ok(())
}

#[async_trait]
impl CreativeSwapper for MailchimpDestination {
    /// `object_id` = campaign id, `new_creative_id` = numeric template id.
    async fn swap_creative(
        &self,
        object_id: &str,
        new_creative_id: &str,
    ) -> Result<(), ConnectorError> {
        check_campaign_id(self, object_id)?;
        let template: u64 =
            new_creative_id
                .trim()
                .parse()
                .map_err(|_| ConnectorError::Invalid {
                    destination: self.name.clone(),
                    message: format!("template id `{new_creative_id}` is not numeric"),
                })?;
        let url = self.kit.url(&format!("campaigns/{object_id}/content"));
        let body = json!({ "template": { "id": template } });
        self.send(
            "swap campaign template",
            reqwest::Method::PUT,
            &url,
            &[],
            Some(&body),
        )
        .await?;
        tracing::info!(destination = %self.name, campaign = object_id, template, "campaign template swapped");
        Ok(())
    }

    async fn set_active(&self, _object_id: &str, _active: bool) -> Result<(), ConnectorError> {
        Err(ConnectorError::Unsupported {
            destination: self.name.clone(),
            operation: "pause/resume a campaign",
        })
    }
}
