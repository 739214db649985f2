//! Request bodies of the Klaviyo endpoints the fake serves, copied from klaviyo/openapi
//! `openapi/stable.json` at commit `f0a30ba41254904dc410d84ca497df68f8872276` (2026-07-23; `info.version`
//! **2026-07-15**, the newest published revision there): `ProfileImportJobCreateQuery` (Bulk Import
//! Profiles), `ListCreateQuery` (Create List), `ListMembersAddQuery` / `ListMembersDeleteQuery` (Add /
//! Remove Profiles to/from List), the Assign Template to Campaign Message query and the Query Campaign
//! Values query. `required` lists and `nullable` flags are the spec's; Klaviyo refuses attributes a
//! resource does not declare (`'x' is not a valid field for the resource 'profile'`), so the objects are
//! closed. `meta` of a profile (patch operations) is not modelled and taken as is.
//!
//! A child of `klaviyo`: only its fake reads these tables.

use crate::schema::{field, required, Shape};

/// The revision the tables (and so the fake) speak; any other `revision` header is refused.
pub const REVISION: &str = "2026-07-15";

const NSTR: Shape = Shape::Nullable(&Shape::Str);
const STR_OR_NUM: Shape = Shape::Any;

/// `ProfileLocation`.
const LOCATION: Shape = Shape::Nullable(&Shape::Object(&[
    field("address1", &NSTR),
    field("address2", &NSTR),
    field("city", &NSTR),
    field("country", &NSTR),
    field("latitude", &STR_OR_NUM),
    field("longitude", &STR_OR_NUM),
    field("region", &NSTR),
    field("zip", &NSTR),
    field("timezone", &NSTR),
    field("ip", &NSTR),
]));

/// `ProfileUpsertQueryResourceObject.attributes`.
const PROFILE_ATTRIBUTES: Shape = Shape::Object(&[
    field("email", &NSTR),
    field("phone_number", &NSTR),
    field("external_id", &NSTR),
    field("_kx", &NSTR),
    field("first_name", &NSTR),
    field("last_name", &NSTR),
    field("organization", &NSTR),
    field("locale", &NSTR),
    field("title", &NSTR),
    field("image", &NSTR),
    field("location", &LOCATION),
    field("properties", &Shape::Nullable(&Shape::Any)),
]);

/// `ProfileUpsertQueryResourceObject`.
const PROFILE_UPSERT: Shape = Shape::Object(&[
    required("type", &Shape::Enum(&["profile"])),
    field("id", &NSTR),
    required("attributes", &PROFILE_ATTRIBUTES),
    field("meta", &Shape::Any),
]);

/// A `{type: "list", id}` resource identifier.
const LIST_REF: Shape = Shape::Object(&[
    required("type", &Shape::Enum(&["list"])),
    required("id", &Shape::Str),
]);

/// `ProfileImportJobCreateQuery` (`POST /api/profile-bulk-import-jobs`).
pub const IMPORT_JOB: Shape = Shape::Object(&[required(
    "data",
    &Shape::Object(&[
        required("type", &Shape::Enum(&["profile-bulk-import-job"])),
        required(
            "attributes",
            &Shape::Object(&[required(
                "profiles",
                &Shape::Object(&[required("data", &Shape::Array(&PROFILE_UPSERT))]),
            )]),
        ),
        field(
            "relationships",
            &Shape::Object(&[field(
                "lists",
                &Shape::Object(&[field("data", &Shape::Array(&LIST_REF))]),
            )]),
        ),
    ]),
)]);

/// `ListCreateQuery` (`POST /api/lists`).
pub const LIST_CREATE: Shape = Shape::Object(&[required(
    "data",
    &Shape::Object(&[
        required("type", &Shape::Enum(&["list"])),
        required(
            "attributes",
            &Shape::Object(&[
                required("name", &Shape::Str),
                field(
                    "opt_in_process",
                    &Shape::Nullable(&Shape::Enum(&["double_opt_in", "single_opt_in"])),
                ),
            ]),
        ),
    ]),
)]);

/// `ListMembersAddQuery` and `ListMembersDeleteQuery` (the same shape).
pub const LIST_MEMBERS: Shape = Shape::Object(&[required(
    "data",
    &Shape::Array(&Shape::Object(&[
        required("type", &Shape::Enum(&["profile"])),
        required("id", &Shape::Str),
    ])),
)]);

/// Assign Template to Campaign Message (`POST /api/campaign-message-assign-template`).
pub const ASSIGN_TEMPLATE: Shape = Shape::Object(&[required(
    "data",
    &Shape::Object(&[
        required("type", &Shape::Enum(&["campaign-message"])),
        required("id", &Shape::Str),
        required(
            "relationships",
            &Shape::Object(&[required(
                "template",
                &Shape::Object(&[field(
                    "data",
                    &Shape::Object(&[
                        required("type", &Shape::Enum(&["template"])),
                        required("id", &Shape::Str),
                    ]),
                )]),
            )]),
        ),
    ]),
)]);

/// The `statistics` enum of the values reports.
pub const STATISTICS: &[&str] = &[
    "average_order_value",
    "bounce_rate",
    "bounced",
    "bounced_or_failed",
    "bounced_or_failed_rate",
    "click_rate",
    "click_to_open_rate",
    "clicks",
    "clicks_unique",
    "conversion_rate",
    "conversion_uniques",
    "conversion_value",
    "conversions",
    "delivered",
    "delivery_rate",
    "failed",
    "failed_rate",
    "message_segment_count_sum",
    "open_rate",
    "opens",
    "opens_unique",
    "recipients",
    "revenue_per_recipient",
    "spam_complaint_rate",
    "spam_complaints",
    "text_message_credit_usage_amount",
    "text_message_roi",
    "text_message_spend",
    "unsubscribe_rate",
    "unsubscribe_uniques",
    "unsubscribes",
];

/// Query Campaign Values (`POST /api/campaign-values-reports`). `timeframe` is a `oneOf` of `{key}` and
/// `{start, end}`; the fake models the custom one and checks it by hand.
pub const VALUES_REPORT: Shape = Shape::Object(&[required(
    "data",
    &Shape::Object(&[
        required("type", &Shape::Enum(&["campaign-values-report"])),
        required(
            "attributes",
            &Shape::Object(&[
                required("statistics", &Shape::Array(&Shape::Enum(STATISTICS))),
                required("timeframe", &Shape::Any),
                required("conversion_metric_id", &Shape::Str),
                field(
                    "group_by",
                    &Shape::Nullable(&Shape::Array(&Shape::Enum(&[
                        "campaign_id",
                        "campaign_message_id",
                        "campaign_message_name",
                        "group",
                        "group_name",
                        "send_channel",
                        "tag_id",
                        "tag_name",
                        "text_message_format",
                        "variation",
                        "variation_name",
                    ]))),
                ),
                field("filter", &NSTR),
            ]),
        ),
    ]),
)]);
