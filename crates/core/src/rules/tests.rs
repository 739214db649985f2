use super::*;
use chrono::TimeZone;

#[test]
fn gen() {
    let as_of = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
    let rows = [
        "orders.count() >= 2",
        "orders.count() == 0 and events.count(\"visit\", 30d) >= 1",
        "orders.sum(365d) >= 1000",
        "orders.avg() > 49.5",
        "orders.count() >= 1 and orders.last_at() < 180d ago",
        "orders.first_at(12w) >= 2025-01-01T00:00:00Z",
        "orders.discount_share(365d) >= 0.5",
        "orders.free_shipping_share() > 0.25",
        "events.count() > 3 or events.count(24h) >= 1",
        "events.last_at(\"email_open\") > 90m ago",
        "customer.country in (\"US\", \"CA\") and customer.consent_ads",
        "customer.country not in (\"FR\")",
        "customer.city < \"M\"",
        "customer.birth_date < 1990-01-01",
        "customer.created_at >= 2024-01-01T12:30:00+02:00",
        "not customer.consent_email",
        "customer.consent_ads == false",
        "in_segment(\"vip\") and not in_segment(\"lapsed\")",
        "(orders.count() > 1 or orders.count(7d) in (4, 5)) and not (customer.gender == \"f\" or customer.id != \"x\")",
        "orders.avg() <= -1.5",
    ];
    for src in rows {
        let r = parse_rule(src).unwrap();
        let l = r.compile(&[], Dialect::Sqlite, as_of);
        let p = r.compile(&[], Dialect::Postgres, as_of);
        assert_eq!(l.params, p.params);
        println!("        (\n            {:?},\n            {:?},\n            {:?},\n            vec!{:?},\n        ),", src, l.sql, p.sql, l.params);
    }
}
