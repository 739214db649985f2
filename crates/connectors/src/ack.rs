//! What counts as a platform's affirmative acknowledgement of one batch (issue 12 item 1): a 2xx alone is
//! not one. Pure checks over the parsed reply, so each platform's rule is stated once and table-tested;
//! the clients turn a refusal into [`ConnectorError::InvalidResponse`](crate::ConnectorError) carrying
//! the reason and the (redacted) reply, so the batch is not recorded and the next run sends it again.
//!
//! - Meta `/users`, `/usersreplace` (Marketing API "Custom Audience Users"; the codegen spec
//!   facebook-business-sdk-codegen `api_specs/specs/CustomAudience.json` types the edge's reply only
//!   loosely, and the Graph API has sent counts as numbers and as numeric strings): `num_received` must
//!   equal the rows sent; `num_invalid_entries` (absent = 0) must not exceed it.
//! - Mailchimp (Marketing API OpenAPI, `POST /lists/{list_id}/segments/{segment_id}`): the reply carries
//!   `total_added` (adds) or `total_removed` (removals) and an `errors` array; `POST /lists/{list_id}`
//!   (batch subscribe) carries `total_created`, `total_updated` and `errors`.
//! - LinkedIn (`BATCH_CREATE` on `/dmpSegments/{id}/users`): one element status per element sent.
//! - TikTok, Google, Klaviyo, SendGrid are checked in their clients: code 0 envelope with the audience
//!   id in `data`, offline user data job `SUCCESS` / Data Manager `requestId`, and a job id in every
//!   import reply.

use serde_json::Value;

/// A count as platforms send it: a JSON number or a numeric string (`"10"`). `None` for anything else.
pub fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An `error` member in a 2xx reply (Graph API and others put the failure there).
fn error_member(reply: &Value) -> Option<String> {
    let e = reply.get("error")?;
    if e.is_null() {
        return None;
    }
    Some(
        e.get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string()),
    )
}

/// Meta: checks a `/users` or `/usersreplace` reply for `sent` rows and returns `num_invalid_entries`.
pub fn meta_users(reply: &Value, sent: usize) -> Result<u64, String> {
    if let Some(e) = error_member(reply) {
        return Err(format!("the reply carries an error: {e}"));
    }
    let received = reply
        .get("num_received")
        .ok_or_else(|| "no num_received: Meta did not say it took the rows".to_string())
        .and_then(|v| count(v).ok_or_else(|| format!("num_received is not a count: {v}")))?;
    if received != sent as u64 {
        return Err(format!("num_received {received} for {sent} rows sent"));
    }
    let invalid = match reply.get("num_invalid_entries") {
        None | Some(Value::Null) => 0,
        Some(v) => count(v).ok_or_else(|| format!("num_invalid_entries is not a count: {v}"))?,
    };
    if invalid > received {
        return Err(format!(
            "num_invalid_entries {invalid} exceeds num_received {received}"
        ));
    }
    Ok(invalid)
}

/// Mailchimp: checks a static-segment reply (`removing` = a `members_to_remove` call) for `sent`
/// addresses: the documented counters and the `errors` array must be there, and not count more than
/// was sent.
pub fn mailchimp_segment(reply: &Value, removing: bool, sent: usize) -> Result<(), String> {
    let key = if removing {
        "total_removed"
    } else {
        "total_added"
    };
    mailchimp_problem(reply)?;
    let done = reply
        .get(key)
        .and_then(count)
        .ok_or_else(|| format!("no {key}: Mailchimp did not say it changed the segment"))?;
    let errors = reply
        .get("errors")
        .and_then(Value::as_array)
        .ok_or_else(|| "no errors array in the reply".to_string())?;
    let refused: usize = errors
        .iter()
        .map(|e| {
            e.get("email_addresses")
                .and_then(Value::as_array)
                .map_or(1, Vec::len)
        })
        .sum();
    if done as usize + refused > sent {
        return Err(format!(
            "{key} {done} plus {refused} refused for {sent} addresses sent"
        ));
    }
    Ok(())
}

/// Mailchimp: checks a batch-subscribe reply for `sent` addresses.
pub fn mailchimp_subscribe(reply: &Value, sent: usize) -> Result<(), String> {
    mailchimp_problem(reply)?;
    let created = reply.get("total_created").and_then(count);
    let updated = reply.get("total_updated").and_then(count);
    let (Some(created), Some(updated)) = (created, updated) else {
        return Err(
            "no total_created/total_updated: Mailchimp did not say it took the members".into(),
        );
    };
    let errors = reply
        .get("errors")
        .and_then(Value::as_array)
        .ok_or_else(|| "no errors array in the reply".to_string())?;
    if (created + updated) as usize + errors.len() > sent {
        return Err(format!(
            "{created} created, {updated} updated and {} errors for {sent} addresses sent",
            errors.len()
        ));
    }
    Ok(())
}

/// A problem document (`{"type", "title", "status", "detail"}`) or `error` member in a 2xx reply.
fn mailchimp_problem(reply: &Value) -> Result<(), String> {
    if let Some(e) = error_member(reply) {
        return Err(format!("the reply carries an error: {e}"));
    }
    if reply.get("detail").is_some() && reply.get("status").is_some() {
        let title = reply
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("error");
        let detail = reply.get("detail").and_then(Value::as_str).unwrap_or("");
        return Err(format!(
            "the reply is a problem document: {title}: {detail}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_are_numbers_or_numeric_strings() {
        for (v, want) in [
            (json!(3), Some(3)),
            (json!("10"), Some(10)),
            (json!(" 7 "), Some(7)),
            (json!(-1), None),
            (json!("x"), None),
            (json!(1.5), None),
            (json!(null), None),
        ] {
            assert_eq!(count(&v), want, "{v}");
        }
    }

    #[test]
    fn meta_acknowledges_only_what_it_counted() {
        let table: Vec<(Value, usize, Result<u64, &str>)> = vec![
            (
                json!({"num_received": 3, "num_invalid_entries": 0}),
                3,
                Ok(0),
            ),
            (
                json!({"num_received": "3", "num_invalid_entries": "1"}),
                3,
                Ok(1),
            ),
            (json!({"num_received": 3}), 3, Ok(0)),
            (json!({}), 3, Err("no num_received")),
            (
                json!({"error": {"message": "boom", "code": 1}}),
                3,
                Err("boom"),
            ),
            (json!({"num_received": 2}), 3, Err("num_received 2 for 3")),
            (json!({"num_received": "three"}), 3, Err("not a count")),
            (
                json!({"num_received": 3, "num_invalid_entries": 4}),
                3,
                Err("exceeds"),
            ),
        ];
        for (reply, sent, want) in table {
            match (meta_users(&reply, sent), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{reply}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{reply}: {e}"),
                (got, w) => panic!("{reply}: got {got:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn mailchimp_needs_its_counters_and_errors() {
        let ok_add = json!({"members_added": [], "total_added": 2, "errors": [], "error_count": 0});
        assert!(mailchimp_segment(&ok_add, false, 2).is_ok());
        let partial =
            json!({"total_added": 1, "errors": [{"email_addresses": ["a@x"], "error": "no"}]});
        assert!(mailchimp_segment(&partial, false, 2).is_ok());
        let ok_remove = json!({"total_removed": 0, "errors": []});
        assert!(mailchimp_segment(&ok_remove, true, 2).is_ok());
        for (reply, removing, sent, why) in [
            (json!({}), false, 2, "no total_added"),
            (json!({"total_added": 2}), false, 2, "no errors array"),
            (
                json!({"total_added": 2, "errors": []}),
                true,
                2,
                "no total_removed",
            ),
            (
                json!({"total_added": 3, "errors": []}),
                false,
                2,
                "for 2 addresses",
            ),
            (json!({"error": "nope"}), false, 2, "nope"),
            (
                json!({"type": "t", "title": "Invalid Resource", "status": 400, "detail": "bad"}),
                false,
                2,
                "Invalid Resource",
            ),
        ] {
            let e = mailchimp_segment(&reply, removing, sent).expect_err(&reply.to_string());
            assert!(e.contains(why), "{reply}: {e}");
        }
        let ok = json!({"new_members": [], "updated_members": [], "errors": [], "total_created": 1, "total_updated": 1});
        assert!(mailchimp_subscribe(&ok, 2).is_ok());
        for (reply, why) in [
            (json!({}), "no total_created"),
            (
                json!({"total_created": 1, "total_updated": 0}),
                "no errors array",
            ),
            (
                json!({"total_created": 2, "total_updated": 1, "errors": []}),
                "for 2",
            ),
        ] {
            let e = mailchimp_subscribe(&reply, 2).expect_err(&reply.to_string());
            assert!(e.contains(why), "{reply}: {e}");
        }
    }
}
