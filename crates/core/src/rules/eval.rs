//! Reference evaluator: the rule semantics in plain Rust over in-memory rows.
//!
//! The SQL compiler is the production path; this evaluator is its executable specification. The
//! store's tests load the same generated data into SQLite and Postgres and assert that the database
//! returns exactly the members this function returns, so every rule of [`super::compile`] is
//! mirrored here: visibility up to `as_of` (whole seconds), half-open windows, two-valued logic
//! with missing values making comparisons false, cents arithmetic for sums and averages, NTILE(5)
//! for RFM with bytewise customer-id tie-breaking.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::ast::{CustomerAttr, EventFn, Expr, ExprKind, Literal, OrderFn, RfmScore, Term};
use super::compile::whole_seconds;
use crate::model::{Customer, Event, Order};

/// The shop's input rows, borrowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dataset<'a> {
    /// All customers (the candidates).
    pub customers: &'a [Customer],
    /// All orders, any order; rows after `as_of` are ignored.
    pub orders: &'a [Order],
    /// All events, any order; rows after `as_of` are ignored.
    pub events: &'a [Event],
}

/// Current members per segment name: what `in_segment` and `exclude` read (the store's
/// `segment_memberships`). A segment absent from the map has no members.
pub type Memberships = BTreeMap<String, BTreeSet<String>>;

/// Returns the customer ids the compiled query would return for `expr` with `excludes`, given the
/// same rows and memberships, at `as_of`.
pub fn evaluate(
    expr: &Expr,
    excludes: &[String],
    data: &Dataset<'_>,
    memberships: &Memberships,
    as_of: DateTime<Utc>,
) -> BTreeSet<String> {
    let as_of = whole_seconds(as_of);
    let now = as_of.timestamp();
    let mut orders: HashMap<&str, Vec<&Order>> = HashMap::new();
    for o in data.orders {
        if secs(o.placed_at) <= now {
            orders.entry(o.customer_id.as_str()).or_default().push(o);
        }
    }
    let mut events: HashMap<&str, Vec<&Event>> = HashMap::new();
    for e in data.events {
        if secs(e.occurred_at) <= now {
            events.entry(e.customer_id.as_str()).or_default().push(e);
        }
    }
    let rfm = if expr.uses_rfm() {
        rfm_scores(&orders)
    } else {
        HashMap::new()
    };
    let ctx = Ctx {
        as_of,
        now,
        orders,
        events,
        rfm,
        memberships,
    };
    let is_member = |seg: &str, id: &str| memberships.get(seg).is_some_and(|m| m.contains(id));
    data.customers
        .iter()
        .filter(|c| c.created_at.is_none_or(|t| secs(t) <= now))
        .filter(|c| ctx.condition(expr, c))
        .filter(|c| {
            !excludes
                .iter()
                .any(|x| is_member(x, &c.contact.customer_id))
        })
        .map(|c| c.contact.customer_id.clone())
        .collect()
}

/// Whole unix seconds, rounding toward the past like the store does for SQLite.
fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// A total in integer cents: what NUMERIC(14,2) stores and what SQLite's rounded REAL sums equal.
fn cents(total: f64) -> i64 {
    (total * 100.0).round() as i64
}

/// `round(num / den)` half away from zero, exactly (`den > 0`), like SQL `ROUND` on the exact value.
fn div_round_half_away(num: i64, den: i64) -> i64 {
    let (n, d) = (num as i128, den as i128);
    let q = (2 * n.abs() + d) / (2 * d);
    (if n < 0 { -q } else { q }) as i64
}

/// The bucket (1-based) of the `i`-th of `n` rows under `NTILE(5)`: the first `n % 5` buckets get
/// one row more than the others.
pub fn ntile5(i: usize, n: usize) -> i64 {
    let (q, r) = (n / 5, n % 5);
    let big = r * (q + 1);
    let bucket = if i < big {
        i / (q + 1)
    } else {
        r + (i - big) / q.max(1)
    };
    bucket as i64 + 1
}

#[derive(Clone, Copy)]
struct RfmRow {
    last: i64,
    count: i64,
    cents: i64,
}

fn rfm_scores(orders: &HashMap<&str, Vec<&Order>>) -> HashMap<String, [i64; 3]> {
    let rows: Vec<(&str, RfmRow)> = orders
        .iter()
        .filter(|(_, os)| !os.is_empty())
        .map(|(id, os)| {
            let row = RfmRow {
                last: os
                    .iter()
                    .map(|o| secs(o.placed_at))
                    .max()
                    .unwrap_or(i64::MIN),
                count: os.len() as i64,
                cents: os.iter().map(|o| cents(o.total)).sum(),
            };
            (*id, row)
        })
        .collect();
    let n = rows.len();
    let mut out: HashMap<String, [i64; 3]> = HashMap::new();
    let keys: [fn(&RfmRow) -> i64; 3] = [|r| r.last, |r| r.count, |r| r.cents];
    for (slot, key) in keys.iter().enumerate() {
        let mut sorted = rows.clone();
        sorted.sort_by(|a, b| key(&a.1).cmp(&key(&b.1)).then_with(|| a.0.cmp(b.0)));
        for (i, (id, _)) in sorted.iter().enumerate() {
            out.entry((*id).to_string()).or_insert([0; 3])[slot] = ntile5(i, n);
        }
    }
    out
}

/// A value during evaluation; `Null` is SQL's NULL (no orders, missing attribute, no RFM score).
#[derive(Debug, Clone, PartialEq)]
enum Val<'a> {
    Null,
    Num(f64),
    Str(&'a str),
    Bool(bool),
    Ts(i64),
}

impl Val<'_> {
    /// SQL comparison: `None` when either side is NULL (or the kinds differ, which the type checker
    /// rules out).
    fn compare(&self, other: &Val<'_>) -> Option<Ordering> {
        match (self, other) {
            (Val::Num(a), Val::Num(b)) => a.partial_cmp(b),
            (Val::Str(a), Val::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
            (Val::Ts(a), Val::Ts(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

struct Ctx<'a> {
    as_of: DateTime<Utc>,
    now: i64,
    orders: HashMap<&'a str, Vec<&'a Order>>,
    events: HashMap<&'a str, Vec<&'a Event>>,
    rfm: HashMap<String, [i64; 3]>,
    memberships: &'a Memberships,
}

impl<'a> Ctx<'a> {
    fn condition(&self, e: &'a Expr, c: &'a Customer) -> bool {
        match &e.kind {
            ExprKind::And(parts) => parts.iter().all(|p| self.condition(p, c)),
            ExprKind::Or(parts) => parts.iter().any(|p| self.condition(p, c)),
            ExprKind::Not(a) => !self.condition(a, c),
            ExprKind::Compare { op, lhs, rhs, .. } => {
                let (l, r) = (self.value(lhs, c), self.value(rhs, c));
                l.compare(&r).is_some_and(|ord| op.holds(ord))
            }
            ExprKind::In {
                negated,
                lhs,
                items,
                ..
            } => {
                let l = self.value(lhs, c);
                if l == Val::Null {
                    return false;
                }
                let found = items
                    .iter()
                    .any(|i| l.compare(&self.value(i, c)) == Some(Ordering::Equal));
                found != *negated
            }
            ExprKind::Literal(_) | ExprKind::Term(_) => self.value(e, c) == Val::Bool(true),
        }
    }

    fn window_start(&self, w: Option<super::ast::Duration>) -> i64 {
        w.map_or(i64::MIN, |d| d.before(self.as_of).timestamp())
    }

    fn value(&self, e: &'a Expr, c: &'a Customer) -> Val<'a> {
        match &e.kind {
            ExprKind::Literal(l) => match l {
                Literal::Int(v) => Val::Num(*v as f64),
                Literal::Float(v) => Val::Num(*v),
                Literal::Str(s) => Val::Str(s),
                Literal::Bool(b) => Val::Bool(*b),
                Literal::Timestamp(t) => Val::Ts(secs(*t)),
                Literal::Ago(d) => Val::Ts(d.before(self.as_of).timestamp()),
                Literal::Duration(d) => Val::Num(d.seconds() as f64),
            },
            ExprKind::Term(t) => self.term(t, c),
            _ => Val::Bool(self.condition(e, c)),
        }
    }

    fn term(&self, t: &'a Term, c: &'a Customer) -> Val<'a> {
        match t {
            Term::Customer(a) => customer_attr(*a, c, self.as_of.date_naive()),
            Term::Rfm(s) => {
                let slot = match s {
                    RfmScore::R => 0,
                    RfmScore::F => 1,
                    RfmScore::M => 2,
                };
                self.rfm
                    .get(&c.contact.customer_id)
                    .map_or(Val::Null, |v| Val::Num(v[slot] as f64))
            }
            Term::InSegment(name) => Val::Bool(
                self.memberships
                    .get(name)
                    .is_some_and(|m| m.contains(&c.contact.customer_id)),
            ),
            Term::Orders { func, window } => {
                let from = self.window_start(*window);
                let os: Vec<&Order> = self
                    .orders
                    .get(c.contact.customer_id.as_str())
                    .map(|v| {
                        v.iter()
                            .copied()
                            .filter(|o| secs(o.placed_at) > from)
                            .collect()
                    })
                    .unwrap_or_default();
                order_agg(*func, &os)
            }
            Term::Events { func, kind, window } => {
                let from = self.window_start(*window);
                let times = self
                    .events
                    .get(c.contact.customer_id.as_str())
                    .into_iter()
                    .flatten()
                    .filter(|e| kind.as_ref().is_none_or(|k| &e.kind == k))
                    .map(|e| secs(e.occurred_at))
                    .filter(|&t| t > from && t <= self.now);
                match func {
                    EventFn::Count => Val::Num(times.count() as f64),
                    EventFn::LastAt => times.max().map_or(Val::Null, Val::Ts),
                }
            }
        }
    }
}

/// An attribute's value; `today` is the UTC date of `as_of`, for `age`.
fn customer_attr(a: CustomerAttr, customer: &Customer, today: NaiveDate) -> Val<'_> {
    let c = &customer.contact;
    fn s(v: &Option<String>) -> Option<&str> {
        v.as_deref()
    }
    let text = match a {
        CustomerAttr::Id => Some(c.customer_id.as_str()),
        CustomerAttr::Email => s(&c.email),
        CustomerAttr::Phone => s(&c.phone),
        CustomerAttr::FirstName => s(&c.first_name),
        CustomerAttr::LastName => s(&c.last_name),
        CustomerAttr::Country => s(&c.country),
        CustomerAttr::City => s(&c.city),
        CustomerAttr::PostalCode => s(&c.postal_code),
        CustomerAttr::Gender => s(&c.gender),
        CustomerAttr::Age => {
            return c
                .birth_date
                .map_or(Val::Null, |b| Val::Num(age_on(b, today) as f64))
        }
        CustomerAttr::BirthDate => {
            return c
                .birth_date
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map_or(Val::Null, |t| Val::Ts(t.and_utc().timestamp()))
        }
        CustomerAttr::CreatedAt => {
            return customer.created_at.map_or(Val::Null, |t| Val::Ts(secs(t)))
        }
        CustomerAttr::ConsentAds => return Val::Bool(customer.consent_ads),
        CustomerAttr::ConsentEmail => return Val::Bool(customer.consent_email),
    };
    text.map_or(Val::Null, Val::Str)
}

/// Whole years from `birth` to `today`: the difference of the years, minus one while the birthday
/// (month, day) is still to come (someone born on 29 February turns a year older on 1 March in
/// other years). Negative for birth dates after `today`.
pub fn age_on(birth: NaiveDate, today: NaiveDate) -> i64 {
    let years = i64::from(today.year()) - i64::from(birth.year());
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years - 1
    } else {
        years
    }
}

fn order_agg<'a>(func: OrderFn, os: &[&Order]) -> Val<'a> {
    let n = os.len() as i64;
    let share = |pred: &dyn Fn(&Order) -> bool| {
        if n == 0 {
            Val::Null
        } else {
            Val::Num(os.iter().filter(|o| pred(o)).count() as f64 / n as f64)
        }
    };
    match func {
        OrderFn::Count => Val::Num(n as f64),
        OrderFn::Sum => Val::Num(os.iter().map(|o| cents(o.total)).sum::<i64>() as f64 / 100.0),
        OrderFn::Avg => {
            if n == 0 {
                Val::Null
            } else {
                let total: i64 = os.iter().map(|o| cents(o.total)).sum();
                Val::Num(div_round_half_away(total, n) as f64 / 100.0)
            }
        }
        OrderFn::LastAt => os
            .iter()
            .map(|o| secs(o.placed_at))
            .max()
            .map_or(Val::Null, Val::Ts),
        OrderFn::FirstAt => os
            .iter()
            .map(|o| secs(o.placed_at))
            .min()
            .map_or(Val::Null, Val::Ts),
        OrderFn::DiscountShare => {
            share(&|o: &Order| o.discount_code.as_deref().is_some_and(|d| !d.is_empty()))
        }
        OrderFn::FreeShippingShare => share(&|o: &Order| o.free_shipping),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Contact;
    use crate::rules::parse_rule;
    use chrono::{Duration as Span, NaiveDate, TimeZone};

    fn as_of() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
            .single()
            .expect("valid instant")
    }

    fn customer(id: &str) -> Customer {
        Customer {
            contact: Contact {
                customer_id: id.to_string(),
                ..Contact::default()
            },
            created_at: Some(as_of() - Span::days(400)),
            ..Customer::default()
        }
    }

    fn order(customer: &str, ago: Span, total: f64) -> Order {
        Order {
            id: format!("{customer}-{}-{total}", ago.num_seconds()),
            customer_id: customer.to_string(),
            placed_at: as_of() - ago,
            total,
            currency: None,
            discount_code: None,
            free_shipping: false,
        }
    }

    fn event(customer: &str, kind: &str, ago: Span) -> Event {
        Event {
            id: None,
            customer_id: customer.to_string(),
            kind: kind.to_string(),
            occurred_at: as_of() - ago,
            properties: None,
        }
    }

    struct Shop {
        customers: Vec<Customer>,
        orders: Vec<Order>,
        events: Vec<Event>,
        memberships: Memberships,
    }

    impl Shop {
        fn members(&self, src: &str, excludes: &[&str]) -> Vec<String> {
            let rule = parse_rule(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let excludes: Vec<String> = excludes.iter().map(|s| s.to_string()).collect();
            let data = Dataset {
                customers: &self.customers,
                orders: &self.orders,
                events: &self.events,
            };
            rule.evaluate(&excludes, &data, &self.memberships, as_of())
                .into_iter()
                .collect()
        }
    }

    /// a: two orders (10.00, 10.01), one with a discount code, one exactly 7 days ago.
    /// b: one order at `as_of` with free shipping and an empty discount code; US, consents.
    /// c: no orders; visits; created in the future → never a member.
    /// d: no orders, no created_at, country unknown, an add_to_cart yesterday.
    /// e: one order one second after `as_of` (invisible), born 1990-05-17.
    fn shop() -> Shop {
        let mut a = customer("a");
        a.contact.country = Some("FR".into());
        let mut b = customer("b");
        b.contact.country = Some("US".into());
        b.consent_ads = true;
        b.contact.city = Some("Austin".into());
        let mut c = customer("c");
        c.created_at = Some(as_of() + Span::seconds(1));
        let mut d = customer("d");
        d.created_at = None;
        let mut e = customer("e");
        e.contact.country = Some("CA".into());
        e.contact.birth_date = NaiveDate::from_ymd_opt(1990, 5, 17);
        let mut a1 = order("a", Span::days(7), 10.00);
        a1.discount_code = Some("SAVE".into());
        let a2 = order("a", Span::days(200), 10.01);
        let mut b1 = order("b", Span::zero(), 99.999);
        b1.free_shipping = true;
        b1.discount_code = Some(String::new());
        let e1 = order("e", Span::seconds(-1), 5.0);
        let mut memberships = Memberships::new();
        memberships.insert("vip".into(), ["a".to_string(), "b".to_string()].into());
        memberships.insert("staff".into(), ["b".to_string()].into());
        Shop {
            customers: vec![a, b, c, d, e],
            orders: vec![a1, a2, b1, e1],
            events: vec![
                event("c", "visit", Span::days(1)),
                event("d", "add_to_cart", Span::days(1)),
                event("d", "visit", Span::days(30)),
                event("d", "visit", Span::days(29)),
                event("b", "visit", Span::seconds(-5)),
            ],
            memberships,
        }
    }

    #[test]
    fn evaluates_rules_on_a_tiny_shop() {
        let shop = shop();
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("true", &[], &["a", "b", "d", "e"]),
            ("orders.count() == 0", &[], &["d", "e"]),
            ("orders.count(7d) >= 1", &[], &["b"]),
            ("orders.count(8d) == 1", &[], &["a", "b"]),
            ("orders.sum() == 20.01", &[], &["a"]),
            ("orders.sum() == 100", &[], &["b"]),
            ("orders.sum(1d) == 0", &[], &["a", "d", "e"]),
            ("orders.avg() == 10.01", &[], &["a"]),
            ("orders.avg() > 0 or orders.avg() <= 0", &[], &["a", "b"]),
            ("not orders.avg() > 0", &[], &["d", "e"]),
            ("orders.last_at() == 7d ago", &[], &["a"]),
            ("orders.first_at() < 199d ago", &[], &["a"]),
            ("orders.discount_share() == 0.5", &[], &["a"]),
            ("orders.discount_share() == 0", &[], &["b"]),
            ("orders.discount_share() < 1", &[], &["a", "b"]),
            (
                "not orders.discount_share() >= 1",
                &[],
                &["a", "b", "d", "e"],
            ),
            ("orders.free_shipping_share() == 1", &[], &["b"]),
            ("events.count(\"visit\") >= 1", &[], &["d"]),
            ("events.count(\"visit\", 30d) == 1", &[], &["d"]),
            ("events.count() == 3", &[], &["d"]),
            ("events.last_at(\"add_to_cart\") > 2d ago", &[], &["d"]),
            (
                "events.count(\"add_to_cart\", 7d) >= 1 and orders.count(7d) == 0",
                &[],
                &["d"],
            ),
            ("customer.country in (\"US\", \"CA\")", &[], &["b", "e"]),
            ("customer.country not in (\"US\")", &[], &["a", "e"]),
            ("customer.country != \"US\"", &[], &["a", "e"]),
            ("not customer.country == \"US\"", &[], &["a", "d", "e"]),
            ("customer.consent_ads", &[], &["b"]),
            ("customer.consent_ads == false", &[], &["a", "d", "e"]),
            ("customer.city < \"a\"", &[], &["b"]),
            ("customer.birth_date == 1990-05-17", &[], &["e"]),
            ("customer.created_at < 1d ago", &[], &["a", "b", "e"]),
            ("in_segment(\"vip\")", &[], &["a", "b"]),
            ("in_segment(\"vip\")", &["staff"], &["a"]),
            (
                "not in_segment(\"nobody\")",
                &["vip", "nobody"],
                &["d", "e"],
            ),
            ("rfm.r == 2 and rfm.f == 1 and rfm.m == 2", &[], &["b"]),
            ("rfm.r == 1 and rfm.f == 2 and rfm.m == 1", &[], &["a"]),
            ("not rfm.r >= 1", &[], &["d", "e"]),
            ("customer.age == 35", &[], &["e"]),
            ("customer.age >= 30 and customer.age <= 50", &[], &["e"]),
            ("customer.age in (34, 35.0)", &[], &["e"]),
            ("not customer.age >= 0", &[], &["a", "b", "d"]),
            ("customer.birth_date <= 35y ago", &[], &["e"]),
            ("customer.birth_date <= 36y ago", &[], &[]),
            ("orders.count(1y) == 2", &[], &["a"]),
            ("customer.created_at < 1y ago", &[], &["a", "b", "e"]),
        ];
        for (src, excludes, expected) in cases {
            assert_eq!(shop.members(src, excludes), *expected, "{src}");
        }
    }

    /// (birth date, today, age): whole years, 29 February turning a year older on 1 March.
    #[test]
    fn age_counts_whole_years() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let cases = [
            ("1990-05-17", "2025-05-16", 34),
            ("1990-05-17", "2025-05-17", 35),
            ("2000-02-29", "2030-02-28", 29),
            ("2000-02-29", "2030-03-01", 30),
            ("2000-02-29", "2004-02-29", 4),
            ("2000-12-31", "2001-01-01", 0),
            ("2026-01-01", "2025-06-01", -1),
        ];
        for (birth, today, age) in cases {
            assert_eq!(age_on(day(birth), day(today)), age, "{birth} {today}");
        }
    }

    /// `Ny ago` is the same date and time N calendar years earlier, so `birth_date <= Ny ago`
    /// agrees with `age >= N`.
    #[test]
    fn years_are_calendar_years() {
        use crate::rules::ast::{Duration, DurationUnit};
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("instant")
                .with_timezone(&Utc)
        };
        let years = |amount| Duration {
            amount,
            unit: DurationUnit::Years,
        };
        let cases = [
            ("2024-02-29T10:00:00Z", 1, "2023-02-28T10:00:00Z"),
            ("2024-02-29T10:00:00Z", 4, "2020-02-29T10:00:00Z"),
            ("2025-06-01T12:00:00Z", 30, "1995-06-01T12:00:00Z"),
            ("2025-06-01T12:00:00Z", 0, "2025-06-01T12:00:00Z"),
        ];
        for (now, n, then) in cases {
            assert_eq!(years(n).before(at(now)), at(then), "{now} - {n}y");
        }
        let now = at("2030-02-28T23:00:00Z");
        for birth in ["2000-02-28", "2000-02-29", "2000-03-01", "1999-12-31"] {
            let b = NaiveDate::parse_from_str(birth, "%Y-%m-%d").expect("date");
            let midnight = b.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            assert_eq!(
                midnight <= years(30).before(now),
                age_on(b, now.date_naive()) >= 30,
                "{birth}"
            );
        }
    }

    #[test]
    fn ntile_gives_the_first_buckets_the_extra_rows() {
        let buckets = |n: usize| (0..n).map(|i| ntile5(i, n)).collect::<Vec<_>>();
        assert_eq!(buckets(1), [1]);
        assert_eq!(buckets(3), [1, 2, 3]);
        assert_eq!(buckets(5), [1, 2, 3, 4, 5]);
        assert_eq!(buckets(7), [1, 1, 2, 2, 3, 4, 5]);
        assert_eq!(buckets(12), [1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5]);
    }

    #[test]
    fn rfm_ties_break_on_customer_id_bytewise() {
        // Seven customers with identical orders: only the id orders them (uppercase before
        // lowercase, as in SQLite BINARY and Postgres COLLATE "C").
        let ids = ["b", "B", "a", "c", "A", "d", "e"];
        let customers: Vec<Customer> = ids.iter().map(|id| customer(id)).collect();
        let orders: Vec<Order> = ids.iter().map(|id| order(id, Span::days(3), 1.0)).collect();
        let data = Dataset {
            customers: &customers,
            orders: &orders,
            events: &[],
        };
        let memberships = Memberships::new();
        let members = |src: &str| -> Vec<String> {
            let rule = parse_rule(src).unwrap_or_else(|e| panic!("{e}"));
            rule.evaluate(&[], &data, &memberships, as_of())
                .into_iter()
                .collect()
        };
        // Sorted: A B a b c d e → buckets 1 1 2 2 3 4 5.
        assert_eq!(members("rfm.f == 1"), ["A", "B"]);
        assert_eq!(members("rfm.m == 2"), ["a", "b"]);
        assert_eq!(members("rfm.r >= 3"), ["c", "d", "e"]);
    }

    #[test]
    fn averages_round_half_away_from_zero_on_exact_cents() {
        assert_eq!(div_round_half_away(2001, 2), 1001);
        assert_eq!(div_round_half_away(-2001, 2), -1001);
        assert_eq!(div_round_half_away(1999, 2), 1000);
        assert_eq!(div_round_half_away(10, 3), 3);
        assert_eq!(div_round_half_away(-10, 3), -3);
        assert_eq!(cents(19.99), 1999);
        assert_eq!(cents(0.1 + 0.2), 30);
        assert_eq!(cents(-19.99), -1999);
    }
}
