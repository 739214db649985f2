//! The database and the rule language's reference evaluator must agree: a generated shop is loaded
//! into SQLite (always) and Postgres (when `CAMPAIGND_TEST_PG_URL` is set), every template and a set of
//! hand-written rules is recomputed by the engine, and each segment's members must equal what the
//! plain-Rust evaluator computes over the same rows at the same pinned `as_of`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use campaignd_core::model::{Customer, Event, Order};
use campaignd_core::rules::{templates, Dataset, Memberships};
use campaignd_core::synth::ShopGenerator;
use campaignd_engine::recompute::recompute;
use campaignd_engine::settings::{SegmentSettings, SegmentSource};
use campaignd_engine::Settings;
use campaignd_store::{testkit, Store};

const CUSTOMERS: u64 = 3000;
const SEED: u64 = 20251;

fn as_of() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-15T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn segment(name: &str, rule: &str, exclude: &[&str]) -> SegmentSettings {
    SegmentSettings {
        name: name.into(),
        description: None,
        rule: Some(rule.into()),
        sql: None,
        template: None,
        params: BTreeMap::new(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
    }
}

fn settings() -> Settings {
    let mut segments: Vec<SegmentSettings> = templates::list()
        .iter()
        .map(|t| SegmentSettings {
            name: t.name.into(),
            description: None,
            rule: None,
            sql: None,
            template: Some(t.name.into()),
            params: BTreeMap::new(),
            exclude: Vec::new(),
        })
        .collect();
    let mut cart_short = segments[0].clone();
    cart_short.name = "cart_abandoner_3d".into();
    cart_short.template = Some("cart_abandoner".into());
    cart_short
        .params
        .insert("window".into(), serde_json::json!("3d"));
    segments.push(cart_short);
    let hand_written = [
        segment(
            "na_ads",
            r#"customer.country in ("US", "CA") and customer.consent_ads"#,
            &[],
        ),
        segment(
            "big_avg",
            "orders.avg() > 150 or orders.sum(90d) >= 400",
            &[],
        ),
        segment(
            "recent_signups",
            "customer.created_at >= 60d ago and not customer.consent_email",
            &[],
        ),
        segment(
            "first_order_old",
            "orders.first_at() < 2024-09-01T00:00:00Z and orders.count(30d) >= 1",
            &[],
        ),
        segment(
            "browsers",
            r#"events.count("product_view", 14d) >= 2 and events.last_at("visit") >= 7d ago"#,
            &[],
        ),
        segment("no_visit_ever", r#"not (events.count("visit") >= 1)"#, &[]),
        segment(
            "vip_active",
            r#"in_segment("high_value") and not in_segment("lapsed")"#,
            &[],
        ),
        segment(
            "repeat_not_vip",
            "orders.count() >= 2",
            &["high_value", "discount_hunter"],
        ),
        segment("rfm_mid", "rfm.m == 3 or (rfm.r <= 2 and rfm.f >= 3)", &[]),
        segment(
            "aged_30_50",
            "customer.age >= 30 and customer.age <= 50",
            &[],
        ),
        segment(
            "over_41_by_date",
            "customer.birth_date <= 40y ago and not customer.age in (40, 41)",
            &[],
        ),
        segment(
            "young_buyers",
            "customer.age < 30 and orders.count(1y) >= 1 or customer.created_at >= 1y ago and customer.age > 65",
            &[],
        ),
        segment(
            "shipping_share",
            "orders.free_shipping_share(365d) > 0.3 and orders.discount_share() != 1",
            &[],
        ),
    ];
    segments.extend(hand_written);
    Settings {
        segments,
        ..Settings::default()
    }
}

struct Shop {
    customers: Vec<Customer>,
    orders: Vec<Order>,
    events: Vec<Event>,
}

fn generate() -> Shop {
    generate_shop(CUSTOMERS, SEED)
}

fn generate_shop(customers: u64, seed: u64) -> Shop {
    let mut generator = ShopGenerator::new(customers, seed, as_of());
    let mut shop = Shop {
        customers: Vec::new(),
        orders: Vec::new(),
        events: Vec::new(),
    };
    while let Some(chunk) = generator.next_chunk(500) {
        shop.customers.extend(chunk.customers);
        shop.orders.extend(chunk.orders);
        shop.events.extend(chunk.events);
    }
    shop
}

async fn load(store: &Store, shop: &Shop) {
    store.upsert_customers(&shop.customers).await.unwrap();
    store.upsert_orders(&shop.orders).await.unwrap();
    store.upsert_events(&shop.events).await.unwrap();
}

/// The stored members of segment `name`.
async fn members(store: &Store, name: &str) -> BTreeSet<String> {
    store
        .segment_members(name)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.customer_id)
        .collect()
}

/// Recomputes at `at` and compares every segment with the evaluator.
async fn check_agreement(store: &Store, shop: &Shop, at: DateTime<Utc>, backend: &str) {
    let settings = settings();
    let report = recompute(store, &settings, at, None).await.unwrap();
    let defs = settings.segment_defs().unwrap();
    assert_eq!(report.segments.len(), defs.len());
    let data = Dataset {
        customers: &shop.customers,
        orders: &shop.orders,
        events: &shop.events,
    };
    let mut memberships: Memberships = BTreeMap::new();
    let mut nonempty = 0;
    for def in &defs {
        let SegmentSource::Rule(rule) = &def.source else {
            panic!("only rules here")
        };
        let expected = rule.evaluate(&def.exclude, &data, &memberships, at);
        let actual = members(store, &def.name).await;
        let missing: Vec<_> = expected.difference(&actual).take(5).collect();
        let extra: Vec<_> = actual.difference(&expected).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{backend} {} at {at}: db has {} members, evaluator {}; missing in db {missing:?}, extra in db {extra:?}\nrule: {}",
            def.name,
            actual.len(),
            expected.len(),
            def.source_text
        );
        if !expected.is_empty() {
            nonempty += 1;
        }
        memberships.insert(def.name.clone(), expected);
    }
    // A comparison of empty sets proves little: most segments must have members in this shop.
    assert!(
        nonempty >= defs.len() - 2,
        "{backend}: only {nonempty} of {} segments have members",
        defs.len()
    );
}

async fn run_backend(store: Store, backend: &str) {
    let shop = generate();
    load(&store, &shop).await;
    check_agreement(&store, &shop, as_of(), backend).await;
    // An earlier `as_of` must hide later rows; the recompute's diff path (joined/left) runs too.
    check_agreement(&store, &shop, as_of() - Duration::days(45), backend).await;
    check_agreement(&store, &shop, as_of(), backend).await;
    // 28 February of a year without 29 February: birthdays on the 29th have not come yet.
    let feb_28 = DateTime::parse_from_rfc3339("2025-02-28T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    check_agreement(&store, &shop, feb_28, backend).await;
}

#[tokio::test]
async fn sqlite_matches_reference_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let store = testkit::fresh_sqlite_store(dir.path()).await.unwrap();
    run_backend(store, "sqlite").await;
}

#[tokio::test]
async fn postgres_matches_reference_evaluator() {
    let Some(store) = testkit::fresh_pg_store().await.unwrap() else {
        eprintln!("CAMPAIGND_TEST_PG_URL not set: skipping the Postgres half");
        return;
    };
    run_backend(store, "postgres").await;
}

/// Every RFM tile of every score as its own segment.
fn rfm_tile_settings() -> Settings {
    let segments = ["r", "f", "m"]
        .iter()
        .flat_map(|s| (1..=5).map(move |tile| (s, tile)))
        .map(|(s, tile)| {
            segment(
                &format!("rfm_{s}_{tile}"),
                &format!("rfm.{s} == {tile}"),
                &[],
            )
        })
        .collect();
    Settings {
        segments,
        ..Settings::default()
    }
}

/// The RFM tiles of shops too small to fill five tiles evenly (fewer than five customers with
/// orders, remainders of 1 to 4) agree with the evaluator: `store` is made fresh for each size.
async fn check_small_shop_tiles<F, Fut>(fresh: F, backend: &str)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<Store>>,
{
    let settings = rfm_tile_settings();
    let defs = settings.segment_defs().unwrap();
    for customers in 1..=13 {
        let Some(store) = fresh().await else { return };
        let shop = generate_shop(customers, SEED + customers);
        load(&store, &shop).await;
        recompute(&store, &settings, as_of(), None).await.unwrap();
        let data = Dataset {
            customers: &shop.customers,
            orders: &shop.orders,
            events: &shop.events,
        };
        for def in &defs {
            let SegmentSource::Rule(rule) = &def.source else {
                panic!("only rules here")
            };
            let expected = rule.evaluate(&def.exclude, &data, &BTreeMap::new(), as_of());
            let actual = members(&store, &def.name).await;
            assert_eq!(
                actual, expected,
                "{backend}, {customers} customers: {}",
                def.name
            );
        }
        store.close().await;
    }
}

#[tokio::test]
async fn sqlite_rfm_tiles_of_small_shops_match_reference_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    let fresh = || async {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.path().join(i.to_string());
        std::fs::create_dir(&path).unwrap();
        Some(testkit::fresh_sqlite_store(&path).await.unwrap())
    };
    check_small_shop_tiles(fresh, "sqlite").await;
}

#[tokio::test]
async fn postgres_rfm_tiles_of_small_shops_match_reference_evaluator() {
    let fresh = || async { testkit::fresh_pg_store().await.unwrap() };
    check_small_shop_tiles(fresh, "postgres").await;
}
