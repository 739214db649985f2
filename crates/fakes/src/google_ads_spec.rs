//! Request shapes of the Google calls campaignd makes, transcribed from googleapis/googleapis at commit
//! `f8291d2b89f0017ab078a4c7378069bae5686f6f` (2026-08-22): `google/ads/googleads/v25/{resources/user_list,
//! services/user_list_service, services/offline_user_data_job_service, resources/offline_user_data_job,
//! common/offline_user_data, common/user_lists, common/consent}.proto` (v25 is the newest Ads version in
//! that snapshot, re-fetched on 2026-12-02 with no v26 directory: so v25 is what campaignd and this fake
//! pin) and
//! `google/ads/datamanager/v1/{ingestion_service, audience, user_data, destination, consent,
//! terms_of_service, user_list}.proto`. JSON names are the proto3 JSON (lowerCamelCase) names; enums by
//! name. Output-only and rarely used members are declared as [`Shape::Any`] so they are not refused.

use crate::schema::{field, Shape};

const STR: Shape = Shape::Str;
const INT: Shape = Shape::Int;
const BOOL: Shape = Shape::Bool;
const ANY: Shape = Shape::Any;
const STRS: Shape = Shape::Array(&STR);

// ---- Google Ads API (Customer Match) ----

const ADS_CONSENT_STATUS: Shape = Shape::Enum(&["UNSPECIFIED", "UNKNOWN", "GRANTED", "DENIED"]);
const ADS_CONSENT: Shape = Shape::Object(&[
    field("adUserData", &ADS_CONSENT_STATUS),
    field("adPersonalization", &ADS_CONSENT_STATUS),
]);
const CRM_BASED_USER_LIST: Shape = Shape::Object(&[
    field("appId", &STR),
    field(
        "uploadKeyType",
        &Shape::Enum(&[
            "UNSPECIFIED",
            "UNKNOWN",
            "CONTACT_INFO",
            "CRM_ID",
            "MOBILE_ADVERTISING_ID",
        ]),
    ),
    field(
        "dataSourceType",
        &Shape::Enum(&[
            "UNSPECIFIED",
            "UNKNOWN",
            "FIRST_PARTY",
            "THIRD_PARTY_CREDIT_BUREAU",
            "THIRD_PARTY_VOTER_FILE",
            "THIRD_PARTY_PARTNER_DATA",
        ]),
    ),
]);
const USER_LIST: Shape = Shape::Object(&[
    field("resourceName", &STR),
    field("id", &INT),
    field("readOnly", &BOOL),
    field("name", &STR),
    field("description", &STR),
    field(
        "membershipStatus",
        &Shape::Enum(&["UNSPECIFIED", "UNKNOWN", "OPEN", "CLOSED"]),
    ),
    field("integrationCode", &STR),
    field("membershipLifeSpan", &INT),
    field("sizeForDisplay", &INT),
    field("sizeRangeForDisplay", &ANY),
    field("sizeForSearch", &INT),
    field("sizeRangeForSearch", &ANY),
    field("type", &ANY),
    field("closingReason", &ANY),
    field("accessReason", &ANY),
    field("accountUserListStatus", &ANY),
    field("eligibleForSearch", &BOOL),
    field("eligibleForDisplay", &BOOL),
    field("matchRatePercentage", &INT),
    field("crmBasedUserList", &CRM_BASED_USER_LIST),
    field("similarUserList", &ANY),
    field("ruleBasedUserList", &ANY),
    field("logicalUserList", &ANY),
    field("basicUserList", &ANY),
    field("lookalikeUserList", &ANY),
]);
const USER_LIST_OPERATION: Shape = Shape::Object(&[
    field("updateMask", &STR),
    field("create", &USER_LIST),
    field("update", &USER_LIST),
    field("remove", &STR),
]);
/// `MutateUserListsRequest` (the customer id travels in the path).
pub const MUTATE_USER_LISTS: Shape = Shape::Object(&[
    field("customerId", &STR),
    field("operations", &Shape::Array(&USER_LIST_OPERATION)),
    field("partialFailure", &BOOL),
    field("validateOnly", &BOOL),
]);

const OFFLINE_USER_DATA_JOB: Shape = Shape::Object(&[
    field("resourceName", &STR),
    field("id", &INT),
    field("externalId", &INT),
    field(
        "type",
        &Shape::Enum(&[
            "UNSPECIFIED",
            "UNKNOWN",
            "STORE_SALES_UPLOAD_FIRST_PARTY",
            "STORE_SALES_UPLOAD_THIRD_PARTY",
            "CUSTOMER_MATCH_USER_LIST",
            "CUSTOMER_MATCH_WITH_ATTRIBUTES",
        ]),
    ),
    field("status", &ANY),
    field("failureReason", &ANY),
    field("operationMetadata", &ANY),
    field(
        "customerMatchUserListMetadata",
        &Shape::Object(&[field("userList", &STR), field("consent", &ADS_CONSENT)]),
    ),
    field("storeSalesMetadata", &ANY),
]);
/// `CreateOfflineUserDataJobRequest`.
pub const CREATE_OFFLINE_USER_DATA_JOB: Shape = Shape::Object(&[
    field("customerId", &STR),
    field("job", &OFFLINE_USER_DATA_JOB),
    field("validateOnly", &BOOL),
    field("enableMatchRateRangePreview", &BOOL),
]);

const OFFLINE_USER_ADDRESS_INFO: Shape = Shape::Object(&[
    field("hashedFirstName", &STR),
    field("hashedLastName", &STR),
    field("city", &STR),
    field("state", &STR),
    field("countryCode", &STR),
    field("postalCode", &STR),
    field("hashedStreetAddress", &STR),
]);
const ADS_USER_IDENTIFIER: Shape = Shape::Object(&[
    field(
        "userIdentifierSource",
        &Shape::Enum(&["UNSPECIFIED", "UNKNOWN", "FIRST_PARTY", "THIRD_PARTY"]),
    ),
    field("hashedEmail", &STR),
    field("hashedPhoneNumber", &STR),
    field("mobileId", &STR),
    field("thirdPartyUserId", &STR),
    field("addressInfo", &OFFLINE_USER_ADDRESS_INFO),
]);
const ADS_USER_DATA: Shape = Shape::Object(&[
    field("userIdentifiers", &Shape::Array(&ADS_USER_IDENTIFIER)),
    field("transactionAttribute", &ANY),
    field("userAttribute", &ANY),
    field("consent", &ADS_CONSENT),
]);
const OFFLINE_USER_DATA_JOB_OPERATION: Shape = Shape::OneOf(&[
    field("create", &ADS_USER_DATA),
    field("remove", &ADS_USER_DATA),
    field("removeAll", &BOOL),
]);
/// `AddOfflineUserDataJobOperationsRequest`.
pub const ADD_OFFLINE_USER_DATA_JOB_OPERATIONS: Shape = Shape::Object(&[
    field("resourceName", &STR),
    field("enablePartialFailure", &BOOL),
    field("enableWarnings", &BOOL),
    field(
        "operations",
        &Shape::Array(&OFFLINE_USER_DATA_JOB_OPERATION),
    ),
    field("validateOnly", &BOOL),
]);

// ---- Data Manager API v1 ----

const ACCOUNT_TYPE: Shape = Shape::Enum(&[
    "ACCOUNT_TYPE_UNSPECIFIED",
    "GOOGLE_ADS",
    "DISPLAY_VIDEO_PARTNER",
    "DISPLAY_VIDEO_ADVERTISER",
    "DATA_PARTNER",
    "GOOGLE_ANALYTICS_PROPERTY",
    "GOOGLE_AD_MANAGER_AUDIENCE_LINK",
    "FLOODLIGHT_CONFIG",
]);
const PRODUCT_ACCOUNT: Shape = Shape::Object(&[
    field("product", &ANY),
    field("accountId", &STR),
    field("accountType", &ACCOUNT_TYPE),
]);
const DESTINATION: Shape = Shape::Object(&[
    field("reference", &STR),
    field("loginAccount", &PRODUCT_ACCOUNT),
    field("linkedAccount", &PRODUCT_ACCOUNT),
    field("operatingAccount", &PRODUCT_ACCOUNT),
    field("productDestinationId", &STR),
]);
const DM_CONSENT_STATUS: Shape = Shape::Enum(&[
    "CONSENT_STATUS_UNSPECIFIED",
    "CONSENT_GRANTED",
    "CONSENT_DENIED",
]);
const DM_CONSENT: Shape = Shape::Object(&[
    field("adUserData", &DM_CONSENT_STATUS),
    field("adPersonalization", &DM_CONSENT_STATUS),
]);
const ADDRESS_INFO: Shape = Shape::Object(&[
    field("givenName", &STR),
    field("familyName", &STR),
    field("regionCode", &STR),
    field("postalCode", &STR),
    field("addressLine", &STR),
    field("city", &STR),
    field("administrativeArea", &STR),
]);
const DM_USER_IDENTIFIER: Shape = Shape::OneOf(&[
    field("emailAddress", &STR),
    field("phoneNumber", &STR),
    field("address", &ADDRESS_INFO),
]);
const DM_USER_DATA: Shape =
    Shape::Object(&[field("userIdentifiers", &Shape::Array(&DM_USER_IDENTIFIER))]);
const AUDIENCE_MEMBER: Shape = Shape::Object(&[
    field("destinationReferences", &STRS),
    field("userData", &DM_USER_DATA),
    field("pairData", &ANY),
    field("mobileData", &ANY),
    field("userIdData", &ANY),
    field("ppidData", &ANY),
    field("compositeData", &ANY),
    field("googleUserIdData", &ANY),
    field("partnerProvidedIdData", &ANY),
    field("consent", &DM_CONSENT),
]);
const ENCODING: Shape = Shape::Enum(&["ENCODING_UNSPECIFIED", "HEX", "BASE64"]);
/// `IngestAudienceMembersRequest`.
pub const INGEST_AUDIENCE_MEMBERS: Shape = Shape::Object(&[
    field("destinations", &Shape::Array(&DESTINATION)),
    field("audienceMembers", &Shape::Array(&AUDIENCE_MEMBER)),
    field("consent", &DM_CONSENT),
    field("validateOnly", &BOOL),
    field("encoding", &ENCODING),
    field("encryptionInfo", &ANY),
    field(
        "termsOfService",
        &Shape::Object(&[field(
            "customerMatchTermsOfServiceStatus",
            &Shape::Enum(&[
                "TERMS_OF_SERVICE_STATUS_UNSPECIFIED",
                "ACCEPTED",
                "REJECTED",
            ]),
        )]),
    ),
]);
/// `RemoveAudienceMembersRequest` (no consent, no terms of service).
pub const REMOVE_AUDIENCE_MEMBERS: Shape = Shape::Object(&[
    field("destinations", &Shape::Array(&DESTINATION)),
    field("audienceMembers", &Shape::Array(&AUDIENCE_MEMBER)),
    field("validateOnly", &BOOL),
    field("encoding", &ENCODING),
    field("encryptionInfo", &ANY),
]);
const DATA_SOURCE_TYPE: Shape = Shape::Enum(&[
    "DATA_SOURCE_TYPE_UNSPECIFIED",
    "DATA_SOURCE_TYPE_FIRST_PARTY",
    "DATA_SOURCE_TYPE_THIRD_PARTY_CREDIT_BUREAU",
    "DATA_SOURCE_TYPE_THIRD_PARTY_VOTER_FILE",
    "DATA_SOURCE_TYPE_THIRD_PARTY_PARTNER_DATA",
]);
const INGESTED_USER_LIST_INFO: Shape = Shape::Object(&[
    field(
        "uploadKeyTypes",
        &Shape::Array(&Shape::Enum(&[
            "UPLOAD_KEY_TYPE_UNSPECIFIED",
            "CONTACT_ID",
            "MOBILE_ID",
            "USER_ID",
            "PAIR_ID",
            "PSEUDONYMOUS_ID",
        ])),
    ),
    field(
        "contactIdInfo",
        &Shape::Object(&[
            field("dataSourceType", &DATA_SOURCE_TYPE),
            field("matchRatePercentage", &INT),
        ]),
    ),
    field("mobileIdInfo", &ANY),
    field("userIdInfo", &ANY),
    field("pairIdInfo", &ANY),
    field("pseudonymousIdInfo", &ANY),
    field("partnerAudienceInfo", &ANY),
]);
/// Data Manager `UserList` (the body of `userLists.create`).
pub const DM_USER_LIST: Shape = Shape::Object(&[
    field("name", &STR),
    field("id", &INT),
    field("readOnly", &BOOL),
    field("displayName", &STR),
    field("description", &STR),
    field(
        "membershipStatus",
        &Shape::Enum(&["MEMBERSHIP_STATUS_UNSPECIFIED", "OPEN", "CLOSED"]),
    ),
    field("integrationCode", &STR),
    field("membershipDuration", &STR),
    field("closingReason", &ANY),
    field("accessReason", &ANY),
    field("accountAccessStatus", &ANY),
    field("sizeInfo", &ANY),
    field("targetNetworkInfo", &ANY),
    field("ingestedUserListInfo", &INGESTED_USER_LIST_INFO),
]);
