//! The largest rules the parser accepts run in the real databases: SQLite (always) and Postgres
//! (with `CAMPAIGND_TEST_PG_URL`) recompute them without "Expression tree is too large", "too many
//! SQL variables" or "stack depth limit exceeded", and return exactly the reference evaluator's
//! members. Before the limits and the balanced SQL, a 1,000-term chain passed validation and then
//! failed here on SQLite; before compiled rules ran with JIT off, the widest did not finish within
//! 25 minutes on Postgres.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use campaignd_core::rules::{invariants, Dataset, Memberships, MAX_DEPTH, MAX_NODES};
use campaignd_core::synth::ShopGenerator;
use campaignd_engine::recompute::recompute;
use campaignd_engine::settings::{SegmentSettings, SegmentSource};
use campaignd_engine::Settings;
use campaignd_store::{testkit, Store};

fn as_of() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-15T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Comparisons that bind the most parameters per node (two subqueries of three each), varied so
/// the chain is not trivially true or false.
fn comparison(i: usize) -> String {
    match i % 4 {
        0 => format!(
            "events.count(\"visit\", {}d) > events.count(\"product_view\", 7d)",
            i % 90 + 1
        ),
        1 => format!("orders.sum({}d) > {}", i % 365 + 1, i % 300),
        2 => format!("customer.age == {}", 18 + i % 60),
        _ => format!("orders.last_at() < {}y ago", i % 5 + 1),
    }
}

/// The three largest shapes: the widest chain, the longest `in` list, the deepest nesting with a
/// wide chain at every level.
fn largest_rules() -> Vec<(&'static str, String)> {
    let widest = (0..(MAX_NODES - 1) / 3)
        .map(comparison)
        .collect::<Vec<_>>()
        .join("\n  or ");
    let list = (0..MAX_NODES - 2)
        .map(|i| (18 + i % 30).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let longest_in = format!("customer.age in ({list})");
    let mut deepest = String::from("customer.consent_ads");
    for level in 0..(MAX_DEPTH * 2 / 3) {
        let chain = (level..level + 12)
            .map(comparison)
            .collect::<Vec<_>>()
            .join(" or ");
        deepest = if level % 2 == 0 {
            format!("not ({deepest} and {chain}) == true")
        } else {
            format!("({chain} or {deepest}) != false")
        };
    }
    // Wrapped once more: 64 levels, the limit; the age keeps it from holding for everyone.
    let deepest = format!("customer.age >= 40 and ({deepest})");
    vec![
        ("widest", widest),
        ("longest_in", longest_in),
        ("deepest", deepest),
    ]
}

fn settings() -> Settings {
    let segments = largest_rules()
        .into_iter()
        .map(|(name, rule)| SegmentSettings {
            name: name.into(),
            description: None,
            rule: Some(rule),
            sql: None,
            template: None,
            params: BTreeMap::new(),
            exclude: Vec::new(),
        })
        .collect();
    Settings {
        segments,
        ..Settings::default()
    }
}

async fn run_backend(store: Store, backend: &str) {
    let mut generator = ShopGenerator::new(60, 7, as_of());
    let (mut customers, mut orders, mut events) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(chunk) = generator.next_chunk(100) {
        customers.extend(chunk.customers);
        orders.extend(chunk.orders);
        events.extend(chunk.events);
    }
    store.upsert_customers(&customers).await.unwrap();
    store.upsert_orders(&orders).await.unwrap();
    store.upsert_events(&events).await.unwrap();

    let settings = settings();
    let defs = settings.segment_defs().unwrap();
    let nodes: Vec<usize> = defs
        .iter()
        .map(|d| match &d.source {
            SegmentSource::Rule(r) => invariants::count_nodes(r.expr()),
            SegmentSource::Sql(_) => 0,
        })
        .collect();
    // The widest rules are at the node limit, not merely near it.
    assert_eq!(nodes[..2], [MAX_NODES, MAX_NODES], "{nodes:?}");
    recompute(&store, &settings, as_of(), None)
        .await
        .unwrap_or_else(|e| panic!("{backend}: {e}"));
    let data = Dataset {
        customers: &customers,
        orders: &orders,
        events: &events,
    };
    for def in &defs {
        let SegmentSource::Rule(rule) = &def.source else {
            panic!("rules only")
        };
        let expected = rule.evaluate(&[], &data, &Memberships::new(), as_of());
        let actual: BTreeSet<String> = store
            .segment_members(&def.name)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.customer_id)
            .collect();
        assert_eq!(actual, expected, "{backend} {}", def.name);
        assert!(
            !expected.is_empty() && expected.len() < customers.len(),
            "{backend} {}: {} of {} members proves little",
            def.name,
            expected.len(),
            customers.len()
        );
    }
}

#[tokio::test]
async fn sqlite_recomputes_the_largest_accepted_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = testkit::fresh_sqlite_store(dir.path()).await.unwrap();
    run_backend(store, "sqlite").await;
}

/// This did not finish within 25 minutes while Postgres JIT-compiled the widest rule's expression
/// (see `STAGE_JIT_OFF` in the store's segments module); with JIT off for compiled rules it takes
/// seconds.
#[tokio::test]
async fn postgres_recomputes_the_largest_accepted_rules() {
    let Some(store) = testkit::fresh_pg_store().await.unwrap() else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping the Postgres half");
        return;
    };
    run_backend(store, "postgres").await;
}
