//! Google Ads custom audiences (Customer Match user lists), over either of Google's two upload APIs,
//! chosen by `api` in the destination config.
//!
//! **`api = "data_manager"` is the default**: since 2026-04-01 the Google Ads API refuses new Customer Match
//! adopters and Google sends new integrations to the Data Manager API; `customer_match` stays for
//! developer tokens that are allowlisted.
//!
//! Request bodies checked against googleapis/googleapis at `f8291d2b` (2026-08-22):
//! `google/ads/googleads/v25/...` (`MutateUserListsRequest`, `UserList`, `CrmBasedUserListInfo`,
//! `CreateOfflineUserDataJobRequest`, `CustomerMatchUserListMetadata`, `AddOfflineUserDataJobOperationsRequest`,
//! `OfflineUserDataJobOperation`, `UserData`, `UserIdentifier`, `Consent`; v25 is the newest Ads version in
//! that snapshot — the googleapis mirror re-fetched on 2026-12-02 is still `f8291d2b` and has no
//! `google/ads/googleads/v26`, so campaignd pins **v25**, the version whose protos it was checked against,
//! rather than v26, whose protos could not be read) and `google/ads/datamanager/v1/...` (`IngestAudienceMembersRequest`,
//! `RemoveAudienceMembersRequest`, `AudienceMember`, `UserData`, `UserIdentifier`, `Destination`,
//! `ProductAccount`, `Consent`, `TermsOfService`, `UserList`, `IngestedUserListInfo`): proto3 JSON names
//! (lowerCamelCase), enums by name. The fake refuses unknown fields and wrong types the same way.
//!
//! **`api = "customer_match"`** — Google Ads API **v25** (`https://googleads.googleapis.com/v25`; see above
//! why not v26), REST with OAuth2 (refresh token → bearer, token endpoint
//! `https://oauth2.googleapis.com/token`), headers `developer-token` and optional `login-customer-id`:
//! - lists: `POST /customers/{cid}/googleAds:search` (GAQL over `user_list`, paged by `nextPageToken`),
//!   created with `POST /customers/{cid}/userLists:mutate` (`crmBasedUserList.uploadKeyType =
//!   CONTACT_INFO`, `membershipLifeSpan = 540`, the maximum: the proto allows 0..540 and Google refuses
//!   the old `10000` "no expiry");
//! - members: one `OfflineUserDataJob` per call — `offlineUserDataJobs:create` (`CUSTOMER_MATCH_USER_LIST`,
//!   consent `adUserData`/`adPersonalization` `GRANTED`: campaignd only sends consenting people), then
//!   `{job}:addOperations` (`create`/`remove` of `userIdentifiers` `hashedEmail`/`hashedPhoneNumber`,
//!   ≤ 10,000 people per request, `enablePartialFailure = true`; `partialFailureError` entries become
//!   rejections by operation index), `{job}:run`, and GAQL polls of `offline_user_data_job.status` every
//!   `job_poll_interval_ms` until `SUCCESS` or `FAILED`;
//! - replace-all: the first slice's job starts with `{removeAll: true}`;
//! - since 2026-04-01 a developer token that is not allowlisted gets
//!   `CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE`: reported as an error telling the user to set
//!   `api = "data_manager"`.
//!
//! **`api = "data_manager"`** — Data Manager API **v1** (`https://datamanager.googleapis.com/v1`, scope
//! `https://www.googleapis.com/auth/datamanager`), coded from Google's REST reference (`audienceMembers`,
//! `Destination`, `UserData`, `Consent`, `accountTypes.accounts.userLists`):
//! - `POST /audienceMembers:ingest` `{destinations: [{operatingAccount: {accountType: GOOGLE_ADS,
//!   accountId}, loginAccount?, productDestinationId: <user list id>}], audienceMembers: [{userData:
//!   {userIdentifiers: [{emailAddress}, {phoneNumber}]}}], consent: {adUserData, adPersonalization:
//!   CONSENT_GRANTED}, encoding: HEX, termsOfService: {customerMatchTermsOfServiceStatus: ACCEPTED}}`,
//!   ≤ 10,000 members per request; `POST /audienceMembers:remove` the same without consent and terms;
//! - the list is `user_list_id` when configured, else found by `displayName` in `GET
//!   /accountTypes/GOOGLE_ADS/accounts/{cid}/userLists` (paged by `pageToken`) or created with `POST` there
//!   (`ingestedUserListInfo.uploadKeyTypes = [CONTACT_ID]`, membership 540 days, the maximum);
//! - assumptions: Google validates a request as a whole, so a 400 whose `BadRequest.fieldViolations` name
//!   `audience_members[i]` turns those members into rejections and the rest is sent once more; processing
//!   no native replace-all is used (the engine does a full resync);
//! - processing is asynchronous: each request's `requestId` is stored as a remote job (like a Customer
//!   Match job) and polled with `GET /requestStatus:retrieve?requestId=…` every `job_poll_interval_ms`
//!   until `SUCCESS`, `PARTIAL_SUCCESS` or `FAILED` (see `request_status.rs` for the proto fields and how
//!   each status settles the rows); a restarted process polls the stored request instead of resending.
//!
//! **Creative rotation and metrics** always use the Google Ads API v25 (`ads_base_url`, defaulting to
//! `base_url` for `customer_match` and to [`DEFAULT_ADS_BASE_URL`] for `data_manager`; `developer_token`
//! required): the rotated object is an ad group and a creative is an ad id in it — a swap lists the group's
//! ads (`googleAds:search` over `ad_group_ad`) and sends one atomic `adGroupAds:mutate` enabling the new ad
//! and pausing the others (`updateMask: status`); metrics are one `googleAds:searchStream` GAQL query over
//! `ad_group_ad` (`segments.date`, `ad_group_ad.ad.id`, impressions, clicks, conversions, `cost_micros` →
//! major units, `conversions_value`) for the requested ad groups and date range.
//!
//! Layout: `client.rs` is the shared part (policy, config to destination, headers, the per-call choice of
//! API), `customer_match.rs` and `data_manager.rs` hold each API's calls, `request_status.rs` how a Data
//! Manager request status settles the rows.
//!
//! Both: 429 `RESOURCE_EXHAUSTED` waits `quotaErrorDetails.retryDelay` through the kit; a 401 refreshes the
//! token once. Identifiers: email trimmed and lower-cased, phone E.164 **with** `+`, both SHA-256 hex.
//! Channel: ads. Minimum audience: 1,000 matched people.

mod client;
mod config;
mod mapping;
mod request_status;

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod rotation_tests;

pub use client::{
    GoogleAdsDestination, GooglePolicy, MAX_MEMBERS_PER_CALL, MIN_AUDIENCE, NOT_ALLOWLISTED_HINT,
};
pub use config::{
    GoogleAdsConfig, GoogleApi, DEFAULT_ADS_BASE_URL, DEFAULT_DATA_MANAGER_BASE_URL,
    DEFAULT_TOKEN_URL,
};
pub use mapping::{cm_identifiers, dm_identifiers, prepare};
