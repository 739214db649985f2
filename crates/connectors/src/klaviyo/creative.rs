//! Creative rotation for Klaviyo (DESIGN §7): the object is a **campaign** and a creative a reusable
//! **template** id. A swap lists the campaign's messages (`GET /campaigns/{id}/campaign-messages`) and
//! assigns the template to each with `POST /campaign-message-assign-template` `{data: {type:
//! "campaign-message", id, relationships: {template: {data: {type: "template", id}}}}}` — Klaviyo clones
//! the template into a non-reusable copy on the message ("Assign Template to Campaign Message", revision
//! 2026-07-15). Klaviyo campaigns cannot be paused through the API, so `set_active` is unsupported.
//!
//! A child of `client` so it shares the destination's kit, key and revision header.

use super::{Collection, KlaviyoDestination};
use crate::error::ConnectorError;
use crate::traits::CreativeSwapper;
use async_trait::async_trait;
use reqwest::Method;
use serde_json::json;

/// Klaviyo ids are alphanumeric (campaigns: ULIDs; templates: short ids); refuse anything else before it
/// reaches a path.
pub(super) fn check_id(
    dest: &KlaviyoDestination,
    what: &str,
    id: &str,
) -> Result<(), ConnectorError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ConnectorError::Invalid {
            destination: dest.name.clone(),
            message: format!("{what} `{id}` is not a Klaviyo id"),
        });
    }
    Ok(())
}

#[async_trait]
impl CreativeSwapper for KlaviyoDestination {
    /// `object_id` = campaign id, `new_creative_id` = template id.
    async fn swap_creative(
        &self,
        object_id: &str,
        new_creative_id: &str,
    ) -> Result<(), ConnectorError> {
        const OP: &str = "list campaign messages";
        check_id(self, "campaign id", object_id)?;
        check_id(self, "template id", new_creative_id)?;
        let url = self
            .kit
            .url(&format!("campaigns/{object_id}/campaign-messages"));
        let body = self.send(OP, Method::GET, &url, &[], None).await?;
        let messages: Collection = self.kit.parse_json(OP, &body)?;
        if messages.data.is_empty() {
            return Err(ConnectorError::Invalid {
                destination: self.name.clone(),
                message: format!("campaign {object_id} has no message to assign a template to"),
            });
        }
        let url = self.kit.url("campaign-message-assign-template");
        for m in &messages.data {
            let body = json!({"data": {
                "type": "campaign-message",
                "id": m.id,
                "relationships": {"template": {"data": {"type": "template", "id": new_creative_id}}},
            }});
            self.send("assign template", Method::POST, &url, &[], Some(&body))
                .await?;
        }
        tracing::info!(destination = %self.name, campaign = object_id, template = new_creative_id, messages = messages.data.len(), "template assigned");
        Ok(())
    }

    async fn set_active(&self, _object_id: &str, _active: bool) -> Result<(), ConnectorError> {
        Err(ConnectorError::Unsupported {
            destination: self.name.clone(),
            operation: "pause/resume a campaign",
        })
    }
}
